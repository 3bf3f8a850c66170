package schedulertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

// recorder records the commands it is given and answers each with out.
type recorder struct {
	got []scheduler.Command
	out scheduler.Output
}

func (r *recorder) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	r.got = append(r.got, c)
	return r.out, nil
}

func TestUserRunner(t *testing.T) {
	rec := &recorder{out: scheduler.Output{Stdout: []byte("17\n")}}
	out, err := UserRunner{User: "sgetest", Runner: rec}.Run(t.Context(),
		scheduler.Command{Name: "qsub", Args: []string{"-terse", "-N", "x"}, Env: []string{"SGE_CELL=default"}})
	require.NoError(t, err)
	assert.Equal(t, "17\n", string(out.Stdout))
	require.Len(t, rec.got, 1)
	assert.Equal(t, "runuser", rec.got[0].Name)
	assert.Equal(t, []string{"-u", "sgetest", "--", "qsub", "-terse", "-N", "x"}, rec.got[0].Args)
	assert.Equal(t, []string{"SGE_CELL=default"}, rec.got[0].Env)
}

func TestOutageRunner(t *testing.T) {
	for _, tc := range []struct {
		name     string
		duration time.Duration
		down     bool
	}{
		{"during the outage", time.Hour, true},
		{"no outage", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			r := &OutageRunner{Runner: rec, Commands: []string{"qstat"}, Env: []string{"SGE_QMASTER_PORT=1"}, Duration: tc.duration}
			env := make([]string, 1, 4)
			env[0] = "SGE_CELL=default"
			for _, name := range []string{"qstat", "qacct", "qstat"} {
				_, err := r.Run(t.Context(), scheduler.Command{Name: name, Env: env})
				require.NoError(t, err)
			}
			failing := []string{"SGE_CELL=default", "SGE_QMASTER_PORT=1"}
			want := [][]string{failing, env, failing}
			failures := 2
			if !tc.down {
				want, failures = [][]string{env, env, env}, 0
			}
			for i, c := range rec.got {
				assert.Equal(t, want[i], c.Env, "command %d (%s)", i, c.Name)
			}
			assert.Equal(t, failures, r.Failures())
			assert.Empty(t, env[:2][1], "the caller's environment is not written to")
		})
	}
}

func TestGolden(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.Mkdir("testdata", 0o755))
	script := []byte("#!/bin/bash\necho hello\n")
	Golden(t, "job.sh", script, true)
	assert.Equal(t, string(script), ReadFile(t, filepath.Join("testdata", "job.sh")))
	Golden(t, "job.sh", script, false)
}

func TestUserDir(t *testing.T) {
	testenv.RequireRoot(t)
	u, err := user.Lookup("nobody")
	require.NoError(t, err)
	var dir string
	t.Run("made", func(t *testing.T) {
		dir = UserDir(t, "nobody")
		var st syscall.Stat_t
		require.NoError(t, syscall.Stat(dir, &st))
		assert.Equal(t, u.Uid, strconv.Itoa(int(st.Uid)))
		assert.Equal(t, u.Gid, strconv.Itoa(int(st.Gid)))
	})
	_, err = os.Stat(dir)
	assert.ErrorIs(t, err, os.ErrNotExist, "removed when the test ends")
}

// TestUserDirUnknownUser: a user the system does not know fails the test; it makes no directory.
func TestUserDirUnknownUser(t *testing.T) {
	got := failuresOf(t, func(tb testing.TB) { UserDir(tb, "hpcship-no-such-user") })
	require.Len(t, got, 1)
	assert.Contains(t, got[0], "hpcship-no-such-user")
}

// skips stands in for a test's *testing.T and records whether it was skipped or failed, and why.
type skips struct {
	testing.TB
	skipped, failed bool
	msg             string
}

func (s *skips) Skip(args ...any) { s.skipped, s.msg = true, fmt.Sprint(args...) }
func (s *skips) Fatalf(format string, args ...any) {
	s.failed, s.msg = true, fmt.Sprintf(format, args...)
}

// TestRequireService: a cell or cluster that does not answer skips the test, or fails it under
// HPCSHIP_INTEGRATION=1, and says why and how to start it.
func TestRequireService(t *testing.T) {
	down := errors.New("exec: \"qstat\": executable file not found in $PATH")
	for _, tc := range []struct {
		name    string
		out     scheduler.Output
		err     error
		skipped bool
		want    string
	}{
		{name: "answers"},
		{name: "fails", out: scheduler.Output{ExitCode: 1, Stderr: []byte("error: commlib error")}, skipped: true,
			want: "(<nil>, exit status 1: error: commlib error): run scripts/"},
		{name: "cannot run", err: down, skipped: true, want: "(" + down.Error() + ", exit status 0: ): run scripts/"},
	} {
		for _, integration := range []string{"", "1"} {
			t.Run(tc.name+" integration="+integration, func(t *testing.T) {
				t.Setenv(testenv.IntegrationEnv, integration)
				var ran []scheduler.Command
				r := RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
					ran = append(ran, c)
					return tc.out, tc.err
				})
				ge, sl := &skips{TB: t}, &skips{TB: t}
				RequireGridEngine(ge, r, "/var/lib/gridengine", "default")
				RequireSlurm(sl, r)
				assert.Equal(t, []scheduler.Command{
					{Name: "qstat", Env: []string{"SGE_ROOT=/var/lib/gridengine", "SGE_CELL=default"}},
					{Name: "sacct", Args: []string{"-n", "-X", "-j", "1"}},
				}, ran)
				for _, s := range []*skips{ge, sl} {
					assert.Equal(t, tc.skipped && integration == "", s.skipped)
					assert.Equal(t, tc.skipped && integration == "1", s.failed)
				}
				if tc.skipped {
					assert.Contains(t, ge.msg, "no Grid Engine cell answers "+tc.want+"gridengine-setup.sh")
					assert.Contains(t, sl.msg, "no Slurm cluster with accounting answers "+tc.want+"slurm-setup.sh")
				}
			})
		}
	}
}

// TestUserDirWithoutTMPDIR: a temporary directory that cannot be made fails the test with why.
func TestUserDirWithoutTMPDIR(t *testing.T) {
	me, err := user.Current()
	require.NoError(t, err)
	missing := filepath.Join(t.TempDir(), "missing")
	t.Setenv("TMPDIR", missing)
	got := failuresOf(t, func(tb testing.TB) { UserDir(tb, me.Username) })
	require.Len(t, got, 1)
	assert.Contains(t, got[0], missing)
}

// waiter is a Scheduler whose Wait reports its ctx's deadline.
type waiter struct {
	scheduler.Scheduler
	deadline time.Time
}

func (w *waiter) Wait(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	w.deadline, _ = ctx.Deadline()
	return scheduler.Result{ID: id, State: scheduler.StateDone}, nil
}

func TestWaitIsBounded(t *testing.T) {
	w := &waiter{}
	start := time.Now()
	res := Wait(t, w, "17")
	assert.Equal(t, scheduler.Result{ID: "17", State: scheduler.StateDone}, res)
	require.False(t, w.deadline.IsZero(), "Wait has a deadline")
	assert.False(t, w.deadline.After(start.Add(3*time.Minute).Add(time.Second)), "at most 3 minutes away: %v", w.deadline.Sub(start))
}

// failures stands in for a test's *testing.T and records its failures; a fatal one ends the goroutine.
type failures struct {
	testing.TB
	got []string
}

func (f *failures) Errorf(format string, args ...any) {
	f.got = append(f.got, fmt.Sprintf(format, args...))
}
func (f *failures) FailNow() { runtime.Goexit() }

// failuresOf runs check with a failures and returns what it recorded.
func failuresOf(t *testing.T, check func(tb testing.TB)) []string {
	f := &failures{TB: t}
	done := make(chan struct{})
	go func() {
		defer close(done)
		check(f)
	}()
	<-done
	return f.got
}

// helpers stands in for a test's *testing.T and records the functions that marked themselves as helpers,
// whose failures the test then reports at their caller's line.
type helpers struct {
	testing.TB
	marked []string
}

func (h *helpers) Helper() { h.marked = append(h.marked, helperName()) }

// helperName names the function that called Helper, this package's without their package path:
// "UserDir", "(*LateCancelRunner).Printed".
func helperName() string {
	pc, _, _, _ := runtime.Caller(2)
	return strings.TrimPrefix(runtime.FuncForPC(pc).Name(), "github.com/hpcship/hpcship/internal/schedulertest.")
}

// TestHelpersReportAtTheCaller: a failure in any of the package's checks is reported at the line of the
// test that called it, as for testify's own.
func TestHelpersReportAtTheCaller(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.Mkdir("testdata", 0o755))
	script := []byte("echo a\n")
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "job.sh"), script, 0o644))
	me, err := user.Current()
	require.NoError(t, err)
	answers := RunnerFunc(func(context.Context, scheduler.Command) (scheduler.Output, error) { return scheduler.Output{}, nil })
	for name, check := range map[string]func(tb testing.TB){
		"UserDir":                     func(tb testing.TB) { UserDir(tb, me.Username) },
		"Wait":                        func(tb testing.TB) { Wait(tb, &waiter{}, "17") },
		"ReadFile":                    func(tb testing.TB) { ReadFile(tb, filepath.Join("testdata", "job.sh")) },
		"Golden":                      func(tb testing.TB) { Golden(tb, "job.sh", script, false) },
		"BashSyntax":                  func(tb testing.TB) { BashSyntax(tb, script) },
		"(*LateCancelRunner).Printed": func(tb testing.TB) { (&LateCancelRunner{Dir: t.TempDir()}).Printed(tb) },
		"RequireGridEngine":           func(tb testing.TB) { RequireGridEngine(tb, answers, "/var/lib/gridengine", "default") },
		"RequireSlurm":                func(tb testing.TB) { RequireSlurm(tb, answers) },
	} {
		h := &helpers{TB: t}
		check(h)
		assert.Contains(t, h.marked, name)
	}
}

func TestBashSyntax(t *testing.T) {
	assert.Empty(t, failuresOf(t, func(tb testing.TB) { BashSyntax(tb, []byte("if true; then echo ok; fi\n")) }))
	assert.Len(t, failuresOf(t, func(tb testing.TB) { BashSyntax(tb, []byte("if true; then echo ok\n")) }), 1)
}

// TestGoldenFails: a jobscript that differs from its golden file, or that bash cannot read, fails the test.
func TestGoldenFails(t *testing.T) {
	t.Chdir(t.TempDir())
	require.NoError(t, os.Mkdir("testdata", 0o755))
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "job.sh"), []byte("echo a\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join("testdata", "bad.sh"), []byte("fi\n"), 0o644))
	assert.Len(t, failuresOf(t, func(tb testing.TB) { Golden(tb, "job.sh", []byte("echo b\n"), false) }), 1, "differs")
	assert.Len(t, failuresOf(t, func(tb testing.TB) { Golden(tb, "bad.sh", []byte("fi\n"), false) }), 1, "bad syntax")
	assert.Len(t, failuresOf(t, func(tb testing.TB) { Golden(tb, "none.sh", []byte("echo\n"), false) }), 1, "no golden file")
	assert.Empty(t, failuresOf(t, func(tb testing.TB) { Golden(tb, "job.sh", []byte("echo a\n"), false) }))
}

// TestRecorded: Recorded answers Submit and Wait from its fields, and an interrupt ends Wait only with
// its ctx.
func TestRecorded(t *testing.T) {
	refused := errors.New("qsub: denied")
	r := &Recorded{SubmitErr: refused}
	_, err := r.Submit(t.Context(), scheduler.Job{Name: "a"})
	require.ErrorIs(t, err, refused)
	assert.Empty(t, r.Submitted, "a refused job is not recorded")

	r = &Recorded{Ended: scheduler.Result{State: scheduler.StateFailed, ExitCode: 3}, Script: []byte("#!/bin/sh\n")}
	id, err := r.Submit(t.Context(), scheduler.Job{Name: "a"})
	require.NoError(t, err)
	assert.Equal(t, scheduler.JobID("42"), id)
	assert.Equal(t, []scheduler.Job{{Name: "a"}}, r.Submitted)
	script, err := r.Jobscript(scheduler.Job{})
	require.NoError(t, err)
	assert.Equal(t, "#!/bin/sh\n", string(script))
	res, err := r.Wait(t.Context(), "7")
	require.NoError(t, err)
	assert.Equal(t, scheduler.Result{ID: "7", State: scheduler.StateFailed, ExitCode: 3}, res)

	lost := errors.New("qstat: no qmaster")
	r.WaitErr = lost
	res, err = r.Wait(t.Context(), "7")
	require.ErrorIs(t, err, lost)
	assert.Equal(t, scheduler.Result{}, res)

	ctx, cancel := context.WithCancel(t.Context())
	interrupted := 0
	r.Interrupt = func() {
		interrupted++
		time.AfterFunc(10*time.Millisecond, cancel)
	}
	res, err = r.Wait(ctx, "7")
	require.ErrorIs(t, err, context.Canceled, "Wait waits for ctx to end, and returns its error")
	assert.Equal(t, scheduler.Result{}, res)
	assert.Equal(t, 1, interrupted)
}
