package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// recorder stands in for *testing.T so the test can observe skip and fail decisions
// without ending itself.
type recorder struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (r *recorder) Helper() {}
func (r *recorder) Skip(args ...any) {
	r.skipped = true
	r.msg = args[0].(string)
}
func (r *recorder) Fatalf(format string, args ...any) {
	r.failed = true
	r.msg = fmt.Sprintf(format, args...)
}

func TestRequire(t *testing.T) {
	sh, err := exec.LookPath("sh")
	require.NoError(t, err)

	tests := []struct {
		name        string
		integration string
		programs    []string
		wantSkip    bool
		wantFail    bool
	}{
		{name: "present", programs: []string{"sh"}},
		{name: "missing locally skips", programs: []string{"sh", "hpcship-no-such-program"}, wantSkip: true},
		{name: "missing in integration fails", integration: "1", programs: []string{"hpcship-no-such-program"}, wantFail: true},
		{name: "other values do not count", integration: "true", programs: []string{"hpcship-no-such-program"}, wantSkip: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv(IntegrationEnv, tt.integration)
			r := &recorder{TB: t}
			got := Require(r, tt.programs...)
			assert.Equal(t, tt.wantSkip, r.skipped, "skipped")
			assert.Equal(t, tt.wantFail, r.failed, "failed")
			if !tt.wantSkip && !tt.wantFail {
				assert.Equal(t, []string{sh}, got)
			} else {
				assert.Contains(t, r.msg, "hpcship-no-such-program")
			}
		})
	}
}

// childEnv makes TestHelperChild call one of the package's functions with a real *testing.T, for
// TestReportsAtCaller to read the test's verdict from the outside.
const childEnv = "HPCSHIP_TESTENV_CHILD"

// TestHelperChild is TestReportsAtCaller's child; it does nothing unless childEnv says what to call.
func TestHelperChild(t *testing.T) {
	switch os.Getenv(childEnv) {
	case "skipf":
		Skipf(t, "needs %s", "a cluster")
	case "require":
		Require(t, "hpcship-no-such-program")
	case "root":
		RequireRoot(t)
	case "leftopen":
		FilesLeftOpen(t, "/hpcship-no-such-dir", func() {})
	case "command":
		os.Args[0] = "/hpcship-no-such-test-binary"
		Command(t)
	}
}

// TestReportsAtCaller runs the requirements in a child test process: a missing one skips the test, or
// fails it under HPCSHIP_INTEGRATION=1, and either way the message points at the line of the test that
// states the requirement, not at this package. RequireRoot is checked as an ordinary user: as uid 65534
// when the test runs as root, as the test's own user otherwise.
func TestReportsAtCaller(t *testing.T) {
	bin := os.Args[0]
	uid := os.Geteuid()
	var cred *syscall.Credential
	if uid == 0 {
		// The test binary lives in a directory only root may enter; give the ordinary user a copy.
		dir, err := os.MkdirTemp("", "testenv-")
		require.NoError(t, err)
		t.Cleanup(func() { os.RemoveAll(dir) })
		require.NoError(t, os.Chmod(dir, 0o755))
		data, err := os.ReadFile(os.Args[0])
		require.NoError(t, err)
		bin = filepath.Join(dir, "testenv.test")
		require.NoError(t, os.WriteFile(bin, data, 0o755))
		uid, cred = 65534, &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	for _, tt := range []struct {
		call string
		want string
		// fails says that the call fails the test whether or not integration requirements apply.
		fails bool
	}{
		{call: "skipf", want: "needs a cluster"},
		{call: "require", want: "hpcship-no-such-program not found on PATH"},
		{call: "root", want: fmt.Sprintf("test needs root (running as uid %d)", uid)},
		{call: "leftopen", want: "checking files left open: lstat /hpcship-no-such-dir", fails: true},
		{call: "command", want: "running /hpcship-no-such-test-binary as its command: ", fails: true},
	} {
		for _, integration := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s integration=%t", tt.call, integration), func(t *testing.T) {
				cmd := exec.CommandContext(t.Context(), bin, "-test.run=^TestHelperChild$", "-test.v", "-test.count=1")
				cmd.Dir = os.TempDir()
				on := ""
				if integration {
					on = "1"
				}
				cmd.Env = append(os.Environ(), childEnv+"="+tt.call, IntegrationEnv+"="+on)
				if tt.call == "root" {
					cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
				}
				out, err := cmd.CombinedOutput()
				verdict := "--- SKIP: TestHelperChild"
				if integration || tt.fails {
					verdict = "--- FAIL: TestHelperChild"
					assert.Error(t, err)
				} else {
					assert.NoError(t, err)
				}
				assert.Contains(t, string(out), verdict)
				assert.Regexp(t, `testenv_test\.go:\d+: `+regexp.QuoteMeta(tt.want), string(out), "reported at the test's line")
				assert.NotContains(t, string(out), "testenv.go:")
			})
		}
	}
}

func TestRequireRoot(t *testing.T) {
	t.Setenv(IntegrationEnv, "")
	r := &recorder{TB: t}
	RequireRoot(r)
	assert.Equal(t, os.Geteuid() != 0, r.skipped, "skipped as uid %d", os.Geteuid())
	assert.False(t, r.failed)
}
