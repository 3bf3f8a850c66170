// Package schedulertest holds what the tests of scheduler, scheduler/sge and scheduler/slurm share: a runner
// that runs the client commands as the unprivileged user a setup script creates, a work directory that user
// owns, a bounded Wait, a runner that makes status commands fail as they do in an outage, a runner that
// ends the caller's context while the submission command runs and the checks of what Submit then returns,
// golden-file checks of jobscripts, and a batch system that answers from recorded results, for the programs
// built on them.
package schedulertest

import (
	"context"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

// UserRunner runs every command as User through runuser, as a site's submit wrapper or sudo rule would.
type UserRunner struct {
	User string
	scheduler.Runner
}

// Run implements scheduler.Runner.
func (r UserRunner) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
	c.Args = append([]string{"-u", r.User, "--", c.Name}, c.Args...)
	c.Name = "runuser"
	return r.Runner.Run(ctx, c)
}

// UserDir makes a temporary directory that the user name owns, removed when the test ends.
func UserDir(t testing.TB, name string) string {
	t.Helper()
	u, err := user.Lookup(name)
	require.NoError(t, err)
	dir, err := os.MkdirTemp("", "hpcship-"+name+"-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, err := strconv.Atoi(u.Uid)
	require.NoError(t, err)
	gid, err := strconv.Atoi(u.Gid)
	require.NoError(t, err)
	require.NoError(t, os.Chown(dir, uid, gid))
	return dir
}

// RequireGridEngine skips t, or fails it under HPCSHIP_INTEGRATION=1, unless the Grid Engine cell at root/cell
// answers qstat run through r, such as a UserRunner of the cell's submit user.
func RequireGridEngine(t testing.TB, r scheduler.Runner, root, cell string) {
	t.Helper()
	out, err := r.Run(t.Context(), scheduler.Command{Name: "qstat", Env: []string{"SGE_ROOT=" + root, "SGE_CELL=" + cell}})
	if err != nil || out.ExitCode != 0 {
		testenv.Skipf(t, "no Grid Engine cell answers (%v, exit status %d: %s): run scripts/gridengine-setup.sh", err, out.ExitCode, out.Stderr)
	}
}

// RequireSlurm skips t, or fails it under HPCSHIP_INTEGRATION=1, unless a Slurm cluster with accounting
// answers sacct run through r.
func RequireSlurm(t testing.TB, r scheduler.Runner) {
	t.Helper()
	out, err := r.Run(t.Context(), scheduler.Command{Name: "sacct", Args: []string{"-n", "-X", "-j", "1"}})
	if err != nil || out.ExitCode != 0 {
		testenv.Skipf(t, "no Slurm cluster with accounting answers (%v, exit status %d: %s): run scripts/slurm-setup.sh", err, out.ExitCode, out.Stderr)
	}
}

// Wait waits for the job for at most 3 minutes, so that a stuck job fails its test rather than the whole run.
func Wait(t testing.TB, s scheduler.Scheduler, id scheduler.JobID) scheduler.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	res, err := s.Wait(ctx, id)
	require.NoError(t, err)
	return res
}

// ReadFile returns the content of path.
func ReadFile(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return string(b)
}

// OutageRunner makes the commands named in Commands fail as they do while the scheduler's controller is
// down, for Duration after the first of them: it adds Env to their environment, which points them at a port
// nothing listens on, so that the failures are the scheduler's own.
type OutageRunner struct {
	scheduler.Runner
	Commands []string
	Env      []string
	Duration time.Duration

	mu       sync.Mutex
	start    time.Time
	failures int
}

// Run implements scheduler.Runner.
func (r *OutageRunner) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
	if slices.Contains(r.Commands, c.Name) {
		r.mu.Lock()
		if r.start.IsZero() {
			r.start = time.Now()
		}
		down := time.Since(r.start) < r.Duration
		if down {
			r.failures++
		}
		r.mu.Unlock()
		if down {
			c.Env = append(slices.Clip(c.Env), r.Env...)
		}
	}
	return r.Runner.Run(ctx, c)
}

// Failures returns how many commands the outage has failed so far.
func (r *OutageRunner) Failures() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.failures
}

// Golden compares a jobscript with the file testdata/name, which it rewrites first with update (the test
// package's -update flag: a flag of this package would clash with it), and checks its syntax with bash -n.
func Golden(t testing.TB, name string, got []byte, update bool) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if update {
		require.NoError(t, os.WriteFile(path, got, 0o644))
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, string(want), string(got))
	BashSyntax(t, got)
}

// BashSyntax checks script with bash -n.
func BashSyntax(t testing.TB, script []byte) {
	t.Helper()
	bash := testenv.Require(t, "bash")[0]
	cmd := exec.CommandContext(t.Context(), bash, "-n")
	cmd.Stdin = strings.NewReader(string(script))
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "bash -n: %s", out)
}

// RunnerFunc is a scheduler.Runner made of a function, for unit tests that answer commands themselves.
type RunnerFunc func(ctx context.Context, c scheduler.Command) (scheduler.Output, error)

// Run implements scheduler.Runner.
func (f RunnerFunc) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
	return f(ctx, c)
}

// Recorded is a batch system that answers Submit and Wait from its fields, for tests of what a program
// does with each way a job can end. Its other methods are the embedded Scheduler's (nil: they panic).
type Recorded struct {
	scheduler.Scheduler
	// SubmitErr is Submit's error; without one, Submit records the job and returns the id "42".
	SubmitErr error
	// Ended is what Wait returns, with the job's id, or WaitErr when set.
	Ended   scheduler.Result
	WaitErr error
	// Interrupt, when set, is called by Wait, which then returns ctx's error once ctx ends: an interrupt
	// arriving while Wait polls.
	Interrupt func()
	// Submitted are the jobs Submit accepted.
	Submitted []scheduler.Job
	// Script is what Jobscript returns for any job.
	Script []byte
}

// Jobscript returns Script.
func (r *Recorded) Jobscript(scheduler.Job) ([]byte, error) { return r.Script, nil }

// Submit records j and returns the id "42", or fails with SubmitErr.
func (r *Recorded) Submit(_ context.Context, j scheduler.Job) (scheduler.JobID, error) {
	if r.SubmitErr != nil {
		return "", r.SubmitErr
	}
	r.Submitted = append(r.Submitted, j)
	return "42", nil
}

// Wait returns Ended or WaitErr, or ctx's error after Interrupt.
func (r *Recorded) Wait(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	if r.Interrupt != nil {
		r.Interrupt()
		<-ctx.Done()
		return scheduler.Result{}, ctx.Err()
	}
	if r.WaitErr != nil {
		return scheduler.Result{}, r.WaitErr
	}
	res := r.Ended
	res.ID = id
	return res, nil
}
