package main

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
)

// mutate runs the command on args as scripts/mutate.sh would from this directory, with
// HPCSHIP_INTEGRATION unset, and returns what it printed and its error.
func mutate(t *testing.T, args ...string) (stdout, stderr string, err error) {
	t.Helper()
	testenv.Require(t, "go")
	t.Setenv(testenv.IntegrationEnv, "")
	var out, errOut bytes.Buffer
	err = run(t.Context(), args, &out, &errOut)
	return out.String(), errOut.String(), err
}

const fixture = "testdata/fixture/fixture.go"

// TestScore runs every mutant of a package whose mutants are each killed, killed only by its slow test,
// time out, survive or do not compile, as its comments say, and checks what the command prints.
func TestScore(t *testing.T) {
	// The fixture's tests take a little over a second, its slow test: the two mutants that never end
	// time out after about three.
	out, _, err := mutate(t, "-v", "-min-timeout", "1ms", "./testdata/fixture", "./testdata/notests")
	require.NoError(t, err)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	require.Len(t, lines, 14, out)
	assert.Regexp(t, `^github.com/hpcship/hpcship/scripts/mutate/testdata/fixture: 9 mutants, 9 sampled \(seed 1\); tests take [\d.]+s, timeout [\d.]+s$`, lines[0])
	assert.Equal(t, "  run last: TestSlow", lines[1])
	assert.Equal(t, []string{
		"  [1/9] " + fixture + ":10:8: > → >=: killed (score so far 1/1)",
		"  [2/9] " + fixture + ":11:3: delete n = n - 1: timeout (score so far 2/2)",
		"  [3/9] " + fixture + ":11:9: - → +: timeout (score so far 3/3)",
		"  [4/9] " + fixture + ":12:3: delete steps++: killed (score so far 4/4)",
		"  [5/9] " + fixture + ":19:5: if n < 0 → if !(…): killed (score so far 5/5)",
		"  [6/9] " + fixture + ":19:7: < → <=: survived (score so far 5/6)",
		"  [7/9] " + fixture + ":20:10: return errors.New(\"negative\") → return nil: killed (score so far 6/7)",
		"  [8/9] " + fixture + ":27:11: + → -: killed (score so far 7/8)",
		"  [9/9] " + fixture + ":33:2: delete _ = y: compile error (score so far 7/8)",
		"github.com/hpcship/hpcship/scripts/mutate/testdata/fixture: score 87.5 % (killed 5, timeout 2, survived 1, compile error 1)",
		"  survived " + fixture + ":19:7: < → <=",
		"github.com/hpcship/hpcship/scripts/mutate/testdata/notests: no test files",
	}, lines[2:])
}

// TestNarrowing: -run and -skip narrow the tests every mutant runs, and -at the mutants; -n samples.
// TestSlow, which only kills another mutant, is skipped to keep the test short.
func TestNarrowing(t *testing.T) {
	steps := fixture + ":12:3"
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"all tests", []string{"-skip", "^TestSlow$", "-at", steps}, "killed 1, timeout 0, survived 0"},
		{"-run", []string{"-run", "^TestCheck$", "-at", steps}, "killed 0, timeout 0, survived 1"},
		{"-skip", []string{"-skip", "^(TestCountdown|TestSlow)$", "-at", steps}, "killed 0, timeout 0, survived 1"},
		{"-at two", []string{"-run", "^TestCheck$", "-at", steps + ", " + fixture + ":19:5"}, "killed 1, timeout 0, survived 1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			out, _, err := mutate(t, append(tc.args, "./testdata/fixture")...)
			require.NoError(t, err)
			assert.Contains(t, out, tc.want+", compile error 0)")
		})
	}

	out, _, err := mutate(t, "-list", "-n", "3", "-seed", "2", "./testdata/fixture")
	require.NoError(t, err)
	again, _, err := mutate(t, "-list", "-n", "3", "-seed", "2", "./testdata/fixture")
	require.NoError(t, err)
	assert.Equal(t, out, again, "a seed draws the same sample")
	assert.Len(t, strings.Split(strings.TrimSpace(out), "\n"), 3, out)
	assert.Regexp(t, `^`+fixture+`:\d+:\d+: `, out)
	all, _, err := mutate(t, "-list", "-n", "0", "testdata/fixture")
	require.NoError(t, err)
	assert.Len(t, strings.Split(strings.TrimSpace(all), "\n"), 9, "-n 0 lists them all; a directory needs no ./")
}

// TestIntegrationFlag: -integration sets HPCSHIP_INTEGRATION=1 for the tests, and tests that fail unmutated
// stop the command.
func TestIntegrationFlag(t *testing.T) {
	out, _, err := mutate(t, "./testdata/failing")
	require.NoError(t, err)
	assert.Contains(t, out, "failing: score 100.0 % (killed 1, timeout 0, survived 0, compile error 0)",
		"its one mutant, == → !=, fails its test without HPCSHIP_INTEGRATION=1")
	_, _, err = mutate(t, "-integration", "./testdata/failing")
	require.ErrorContains(t, err, "scripts/mutate/testdata/failing: the unmutated tests fail")
	assert.Contains(t, err.Error(), "HPCSHIP_INTEGRATION=1")
}

func TestUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{nil, "no package given"},
		{[]string{"-n", "-1", "./testdata/fixture"}, "-n must not be negative, got -1"},
		{[]string{"-timeout-factor", "0.9", "./testdata/fixture"}, "-timeout-factor must be at least 1, got 0.9"},
		{[]string{"-no-such-flag"}, "flag provided but not defined: -no-such-flag"},
		{[]string{"./testdata/none"}, "go list: exit status 1"},
	} {
		_, stderr, err := mutate(t, tc.args...)
		require.ErrorContains(t, err, tc.want, tc.args)
		if tc.args == nil {
			assert.Contains(t, stderr, "usage: mutate [flags] PKG...")
		}
	}
	// -timeout-factor 1 is the least allowed.
	_, _, err := mutate(t, "-timeout-factor", "1", "-list", "./testdata/fixture")
	require.NoError(t, err)
}

// TestScriptRunsFromAnywhere: scripts/mutate.sh runs the command from the repository's root.
func TestScriptRunsFromAnywhere(t *testing.T) {
	testenv.Require(t, "bash", "go")
	script, err := filepath.Abs(filepath.Join("..", "mutate.sh"))
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), "bash", script, "-list", "-n", "1", "scripts/mutate/testdata/fixture")
	cmd.Dir = t.TempDir()
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", out)
	assert.Regexp(t, `^scripts/mutate/testdata/fixture/fixture\.go:\d+:\d+: `, string(out))
}
