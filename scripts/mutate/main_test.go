package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

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
			assert.NotContains(t, out, "run last:", "TestSlow is left out of the unmutated run too")
		})
	}

	out, _, err := mutate(t, "-skip", "^TestSlow$", "-at", "nowhere.go:1:1", "./testdata/fixture")
	require.NoError(t, err)
	assert.Contains(t, out, "0 sampled (seed 1)")
	assert.Contains(t, out, "fixture: score 100.0 % (killed 0, timeout 0, survived 0, compile error 0)",
		"no mutant to score is no survivor")

	out, _, err = mutate(t, "-list", "-n", "3", "-seed", "2", "./testdata/fixture")
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

	// The tests get the command's environment too.
	t.Setenv("HPCSHIP_FIXTURE_ALLOW", "1")
	out, _, err = mutate(t, "-integration", "./testdata/failing")
	require.NoError(t, err)
	assert.Contains(t, out, "failing: score 0.0 % (killed 0, timeout 0, survived 1, compile error 0)",
		"under HPCSHIP_INTEGRATION=1, == → != passes")
}

// TestWorkDirRemoved: a work directory that disappears while the command runs, between packages or
// before a mutant is written, stops it with the error.
func TestWorkDirRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	_, _, err := mutate(t, "-at", "nowhere.go:1:1", "./testdata/vandal", "./testdata/fixture")
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Regexp(t, `^github.com/hpcship/hpcship/scripts/mutate/testdata/fixture: stat `+regexp.QuoteMeta(tmp)+`/mutate-\d+: `, err.Error())

	_, _, err = mutate(t, "./testdata/vandal")
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Regexp(t, `^github.com/hpcship/hpcship/scripts/mutate/testdata/vandal: open `+regexp.QuoteMeta(tmp)+`/mutate-\d+/pkg-\d+/vandal.go: `, err.Error())
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, entries, "nothing is left behind")
}

// TestCancel: a ctx that ends while a mutant's tests run stops the command with ctx's error, rather than
// counting the mutant as timed out.
func TestCancel(t *testing.T) {
	testenv.Require(t, "go")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	t.Setenv(testenv.IntegrationEnv, "")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// The mutant deleting n = n - 1 never ends: cancel once its test binary is there.
		for ctx.Err() == nil {
			if m, _ := filepath.Glob(filepath.Join(tmp, "mutate-*", "pkg-*", "mutant.test")); len(m) > 0 {
				time.Sleep(200 * time.Millisecond)
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	var out bytes.Buffer
	err := run(ctx, []string{"-skip", "^TestSlow$", "-min-timeout", "10m", "-at", fixture + ":11:3", "./testdata/fixture"}, &out, io.Discard)
	require.ErrorIs(t, err, context.Canceled)
	assert.NotContains(t, out.String(), "score", "no score for a run that did not end")
}

// TestTimeoutKillsTheGroup: a test binary that outlives its timeout is killed with the processes it
// started, so that no child of a hanging mutant stays behind.
func TestTimeoutKillsTheGroup(t *testing.T) {
	testenv.Require(t, "sh", "sleep")
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "pid")
	bin := filepath.Join(dir, "pkg.test")
	require.NoError(t, os.WriteFile(bin, []byte("#!/bin/sh\nsleep 60 &\necho $! >"+pidFile+"\nwait\n"), 0o755))
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	assert.Equal(t, timedOut, test(ctx, config{}, pkg{Dir: dir}, bin))
	b, err := os.ReadFile(pidFile)
	require.NoError(t, err)
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	require.NoError(t, err)
	t.Cleanup(func() { syscall.Kill(pid, syscall.SIGKILL) })
	assert.Eventually(t, func() bool {
		// Gone, or a zombie waiting for init to reap it.
		stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		return err != nil || strings.Contains(string(stat), ") Z ")
	}, 5*time.Second, 20*time.Millisecond, "the test binary's child %d is killed", pid)
}

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// TestMainExit: the command exits 2 with its error on stderr, and 0 when it ran, whatever the score.
func TestMainExit(t *testing.T) {
	testenv.Require(t, "go")
	t.Setenv(testenv.IntegrationEnv, "")
	code, _, stderr := testenv.Command(t)
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "mutate: no package given")
	code, stdout, stderr := testenv.Command(t, "-list", "-n", "1", "./testdata/fixture")
	require.Equal(t, 0, code, stderr)
	assert.Contains(t, stdout, fixture+":")
}

// TestTestsThatDoNotRun: a mutant that makes the test binary exit 0 before its tests run is killed.
func TestTestsThatDoNotRun(t *testing.T) {
	t.Setenv("HPCSHIP_FIXTURE_OFF", "")
	out, _, err := mutate(t, "./testdata/exiter")
	require.NoError(t, err)
	assert.Contains(t, out, "exiter: score 100.0 % (killed 1, timeout 0, survived 0, compile error 0)")
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
		{[]string{"./testdata/none"}, "go list: exit status 1: stat "},
		{[]string{"./testdata/broken"}, "scripts/mutate/testdata/broken: building the unmutated tests: exit status 1: "},
	} {
		_, stderr, err := mutate(t, tc.args...)
		require.ErrorContains(t, err, tc.want, tc.args)
		switch {
		case tc.args == nil:
			assert.Contains(t, stderr, "usage: mutate [flags] PKG...\n")
			assert.Contains(t, stderr, "  -timeout-factor float\n", "the flags follow")
		case tc.args[0] == "-no-such-flag":
			// The flag package prints its error, then the usage.
			assert.Contains(t, stderr, tc.want+"\nusage: mutate [flags] PKG...")
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
