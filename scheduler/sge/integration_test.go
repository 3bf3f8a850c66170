package sge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
)

// The integration tests submit to the single-host cell that scripts/gridengine-setup.sh sets up, as its
// unprivileged user: Grid Engine runs root-owned jobs without TMPDIR.
const (
	cellRoot   = "/var/lib/gridengine"
	cellName   = "default"
	submitUser = "sgetest"
)

// cell returns an SGE for the test cell and a work directory the submit user can write. It skips (fails
// under HPCSHIP_INTEGRATION=1) when the cell is not there.
func cell(t *testing.T, opts ...sge.Option) (*sge.SGE, string) {
	t.Helper()
	testenv.Require(t, "qsub", "qstat", "qacct", "qdel", "runuser", "mpiexec")
	testenv.RequireRoot(t)
	if _, err := user.Lookup(submitUser); err != nil {
		testenv.Skipf(t, "no user %s: run scripts/gridengine-setup.sh", submitUser)
		return nil, ""
	}
	r := schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}}
	schedulertest.RequireGridEngine(t, r, cellRoot, cellName)
	s, err := sge.New(append([]sge.Option{
		sge.WithRunner(r),
		sge.WithCell(cellRoot, cellName),
		sge.WithPollInterval(200*time.Millisecond, time.Second),
		sge.WithAccountingTimeout(20 * time.Second),
	}, opts...)...)
	require.NoError(t, err)
	return s, schedulertest.UserDir(t, submitUser)
}

func TestPlainJob(t *testing.T) {
	t.Parallel()
	s, dir := cell(t, sge.WithSettingsFile(filepath.Join(cellRoot, cellName, "common", "settings.sh")))
	out := filepath.Join(dir, "plain.out")
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name:       "plain",
		Command:    []string{"/bin/sh", "-c", `echo "hello from $JOB_NAME"; echo "tmpdir=$TMPDIR"`},
		WorkDir:    dir,
		Stdout:     out,
		JoinOutput: true,
	})
	require.NoError(t, err)

	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateDone, res.State)
	assert.Equal(t, 0, res.ExitCode)
	assert.Equal(t, 0, res.FailureCode)
	assert.NotEmpty(t, res.Host)
	assert.Equal(t, "all.q", res.Queue)
	assert.False(t, res.End.Before(res.Start))
	assert.Contains(t, schedulertest.ReadFile(t, out), "hello from plain\n")
	assert.Regexp(t, `tmpdir=/tmp/`+string(id)+`\.1\.all\.q`, schedulertest.ReadFile(t, out), "Grid Engine's own TMPDIR")

	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateDone, st.State)
}

// TestParallelJob runs MPICH's mpiexec on the machinefile the jobscript writes from $PE_HOSTFILE, on the PE
// with startmpi.sh (mpi) and on the two without (mpislots, smpslots), in each machinefile format.
func TestParallelJob(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		pe     string
		format scheduler.MachinefileFormat
	}{
		{"mpi", scheduler.MachinefileHosts},
		{"mpislots", scheduler.MachinefileHostSlots},
		{"smpslots", scheduler.MachinefileSlots},
	} {
		t.Run(tc.pe, func(t *testing.T) {
			t.Parallel()
			s, dir := cell(t)
			out := filepath.Join(dir, "mpi.out")
			id, err := s.Submit(t.Context(), scheduler.Job{
				Name:        "mpi_" + tc.pe,
				ParallelEnv: tc.pe,
				Slots:       2,
				Machinefile: scheduler.Machinefile{Name: "u_machines", Format: tc.format},
				Command: []string{"bash", "-c", `cp "$PE_HOSTFILE" pe_hostfile && cp "$1" machinefile &&
exec mpiexec -machinefile "$1" -np 2 bash -c 'echo "rank $PMI_RANK of $PMI_SIZE on $(hostname)"'`,
					"mpi", scheduler.MachinefileArg},
				WorkDir:    dir,
				Stdout:     out,
				JoinOutput: true,
				Walltime:   2 * time.Minute,
			})
			require.NoError(t, err)

			res := schedulertest.Wait(t, s, id)
			output := schedulertest.ReadFile(t, out)
			require.Equal(t, scheduler.StateDone, res.State, "output:\n%s", output)
			assert.Equal(t, tc.pe, res.ParallelEnv)
			assert.Equal(t, 2, res.Slots)
			assert.Contains(t, output, "rank 0 of 2 on ")
			assert.Contains(t, output, "rank 1 of 2 on ")

			f, err := os.Open(filepath.Join(dir, "pe_hostfile"))
			require.NoError(t, err)
			defer f.Close()
			hf, err := sge.ParsePEHostfile(f)
			require.NoError(t, err)
			assert.Equal(t, 2, hf.Slots())
			mf, err := hf.Machinefile(tc.format)
			require.NoError(t, err)
			assert.Equal(t, string(mf), schedulertest.ReadFile(t, filepath.Join(dir, "machinefile")),
				"the jobscript's machinefile and PEHostfile.Machinefile agree")
		})
	}
}

func TestFailingPayload(t *testing.T) {
	t.Parallel()
	for _, code := range []int{3, 99, 100} {
		t.Run(strconv.Itoa(code), func(t *testing.T) {
			t.Parallel()
			s, dir := cell(t)
			out := filepath.Join(dir, "fail.out")
			// Every run appends a line, so a requeued job would show two.
			id, err := s.Submit(t.Context(), scheduler.Job{
				Name:       "fail" + strconv.Itoa(code),
				Script:     fmt.Sprintf("echo run >>runs\nexit %d\n", code),
				WorkDir:    dir,
				Stdout:     out,
				JoinOutput: true,
			})
			require.NoError(t, err)

			res := schedulertest.Wait(t, s, id)
			want := code
			if code == 99 || code == 100 {
				want = sge.RemappedExitCode
				assert.Contains(t, schedulertest.ReadFile(t, out), fmt.Sprintf("the payload exited %d", code))
			}
			assert.Equal(t, scheduler.StateFailed, res.State)
			assert.Equal(t, want, res.ExitCode)
			assert.Equal(t, 0, res.FailureCode, "the scheduler itself did not fail: %s", res.Failure)
			assert.Equal(t, "run\n", schedulertest.ReadFile(t, filepath.Join(dir, "runs")), "ran once, not requeued")
		})
	}
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s, dir := cell(t)
	running, err := s.Submit(t.Context(), scheduler.Job{Name: "to_cancel", Command: []string{"sleep", "300"}, WorkDir: dir, Stdout: "/dev/null", JoinOutput: true})
	require.NoError(t, err)
	held, err := s.Submit(t.Context(), scheduler.Job{Name: "held", Command: []string{"true"}, Hold: true, WorkDir: dir, Stdout: "/dev/null", JoinOutput: true})
	require.NoError(t, err)

	// CollectT, not t: a require on t from Eventually's goroutine would not stop the test.
	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := s.Status(t.Context(), running)
		require.NoError(c, err)
		assert.Equal(c, scheduler.StateRunning, st.State)
	}, time.Minute, 200*time.Millisecond)
	st, err := s.Status(t.Context(), held)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateHeld, st.State)
	assert.Equal(t, "hqw", st.Native)

	_, err = s.Result(t.Context(), running)
	require.ErrorIs(t, err, scheduler.ErrNotEnded)

	require.NoError(t, s.Cancel(t.Context(), running))
	require.NoError(t, s.Cancel(t.Context(), held))
	for _, id := range []scheduler.JobID{running, held} {
		res := schedulertest.Wait(t, s, id)
		assert.Equal(t, scheduler.StateCancelled, res.State, "job %s", id)
	}

	err = s.Cancel(t.Context(), "999999")
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.ExitCode)
}

func TestArrayJob(t *testing.T) {
	t.Parallel()
	s, dir := cell(t)
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name:       "array",
		Script:     `echo "task $SGE_TASK_ID" >"task.$SGE_TASK_ID"; exit $((SGE_TASK_ID == 3))`,
		Array:      &scheduler.ArrayRange{First: 1, Last: 3, Step: 1},
		WorkDir:    dir,
		Stdout:     "/dev/null",
		JoinOutput: true,
	})
	require.NoError(t, err)
	assert.NotContains(t, string(id), ".", "the id of the whole array")

	res := schedulertest.Wait(t, s, id)
	require.Len(t, res.Tasks, 3)
	for i, task := range res.Tasks {
		assert.Equal(t, i+1, task.Task)
		assert.Equal(t, scheduler.JobID(fmt.Sprintf("%s.%d", id, i+1)), task.ID)
		assert.Equal(t, fmt.Sprintf("task %d\n", i+1), schedulertest.ReadFile(t, filepath.Join(dir, fmt.Sprintf("task.%d", i+1))))
	}
	assert.Equal(t, scheduler.StateDone, res.Tasks[0].State)
	assert.Equal(t, scheduler.StateFailed, res.Tasks[2].State)
	assert.Equal(t, scheduler.StateFailed, res.State)

	one, err := s.Result(t.Context(), scheduler.JobID(string(id)+".2"))
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateDone, one.State)
	assert.Equal(t, 2, one.Task)
}

// TestEnvRoundTrip sends 10,000 random strings (every byte but NUL) through one real job, half as
// environment values and half as arguments, and compares what the job saw byte for byte.
func TestEnvRoundTrip(t *testing.T) {
	t.Parallel()
	s, dir := cell(t)
	bash := testenv.Require(t, "bash")[0]
	r := rand.New(rand.NewPCG(1, 2))
	const special = "'\"\\$`!*?[]{}()<>|&;#~=% \t\n\r\x7f\xff#$-"
	random := func() string {
		b := make([]byte, r.IntN(32))
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = special[r.IntN(len(special))]
			} else {
				b[i] = byte(1 + r.IntN(255))
			}
		}
		return string(b)
	}
	want := map[string]string{}
	var env []string
	for i := range 5000 {
		name := fmt.Sprintf("HPCSHIP_RT_%04d", i)
		want[name] = random()
		env = append(env, name+"="+want[name])
	}
	args := make([]string, 5000)
	for i := range args {
		args[i] = random()
	}
	j := scheduler.Job{
		Name: "roundtrip",
		Command: append([]string{"bash", "-c", `printf '%s\0' "$@" >args.out && env -0 >env.out`, "roundtrip"},
			args...),
		Env:        env,
		WorkDir:    dir,
		Stdout:     filepath.Join(dir, "job.out"),
		JoinOutput: true,
	}
	script, err := s.Jobscript(j)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), bash, "-n")
	cmd.Stdin = bytes.NewReader(script)
	syntax, err := cmd.CombinedOutput()
	require.NoError(t, err, "bash -n: %s", syntax)

	id, err := s.Submit(t.Context(), j)
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	require.Equal(t, scheduler.StateDone, res.State, schedulertest.ReadFile(t, filepath.Join(dir, "job.out")))

	gotArgs := strings.Split(strings.TrimSuffix(schedulertest.ReadFile(t, filepath.Join(dir, "args.out")), "\x00"), "\x00")
	require.Len(t, gotArgs, len(args))
	for i := range args {
		if args[i] != gotArgs[i] {
			require.Equal(t, []byte(args[i]), []byte(gotArgs[i]), "argument %d", i)
		}
	}
	gotEnv := map[string]string{}
	for _, kv := range strings.Split(schedulertest.ReadFile(t, filepath.Join(dir, "env.out")), "\x00") {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "HPCSHIP_RT_") {
			gotEnv[name] = value
		}
	}
	require.Len(t, gotEnv, len(want))
	for _, name := range slices.Sorted(maps.Keys(want)) {
		if want[name] != gotEnv[name] {
			require.Equal(t, []byte(want[name]), []byte(gotEnv[name]), "variable %s", name)
		}
	}
}

func TestWaitStopsOnContextCancel(t *testing.T) {
	t.Parallel()
	s, dir := cell(t)
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "long", Command: []string{"sleep", "300"}, WorkDir: dir, Stdout: "/dev/null", JoinOutput: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Cancel(context.WithoutCancel(t.Context()), id) })

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s.Wait(ctx, id)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestErrorState(t *testing.T) {
	t.Parallel()
	s, _ := cell(t)
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "badwd", Command: []string{"true"}, WorkDir: "/nonexistent/hpcship", Stdout: "/dev/null", JoinOutput: true})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Cancel(context.WithoutCancel(t.Context()), id) })

	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateError, res.State)
	assert.Contains(t, res.Failure, "can't chdir to /nonexistent/hpcship")
}

func TestSubmitErrors(t *testing.T) {
	t.Parallel()
	s, dir := cell(t)
	_, err := s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}, ParallelEnv: "nosuchpe", Slots: 2, WorkDir: dir})
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.ExitCode)
	assert.Contains(t, ce.Stderr, `parallel environment "nosuchpe" does not exist`)
	assert.Contains(t, ce.Command, "qsub -terse")

	_, err = s.Submit(t.Context(), scheduler.Job{Name: "1bad", Command: []string{"true"}})
	require.ErrorIs(t, err, scheduler.ErrInvalidJob, "rejected before qsub")

	// A job neither qstat nor qacct knows; the short accounting timeout keeps Result from waiting long.
	s, _ = cell(t, sge.WithAccountingTimeout(time.Second))
	_, err = s.Status(t.Context(), "999999")
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
	_, err = s.Result(t.Context(), "999999")
	require.True(t, errors.Is(err, scheduler.ErrJobNotFound), "%v", err)
}

// TestSubmitOutlivesItsContextOnTheCell ends Submit's ctx after qsub has handed the job to the qmaster but before it
// exits: the caller still gets the job's id, and the job is in the cell.
func TestSubmitOutlivesItsContextOnTheCell(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &schedulertest.LateCancelRunner{
		Runner:  schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}},
		Command: "qsub",
		Cancel:  cancel,
	}
	s, dir := cell(t, sge.WithRunner(r))
	r.Dir = dir
	t.Cleanup(func() {
		if id := strings.TrimSpace(r.Printed(t)); id != "" {
			_ = s.Cancel(context.WithoutCancel(t.Context()), scheduler.JobID(id))
		}
	})

	id, err := s.Submit(ctx, scheduler.Job{Name: "late", Command: []string{"true"}, Hold: true, WorkDir: dir, Stdout: "/dev/null", JoinOutput: true})
	require.ErrorIs(t, err, context.Canceled)
	var se *scheduler.SubmittedError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, strings.TrimSpace(r.Printed(t)), string(id))
	assert.Equal(t, id, se.ID)
	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateHeld, st.State)
	assert.Equal(t, "late", st.Name)
}

// qmasterOutage makes qstat fail as it does when the qmaster is down, for d after the first qstat: it points
// qstat at a qmaster port nothing listens on.
func qmasterOutage(d time.Duration) *schedulertest.OutageRunner {
	return &schedulertest.OutageRunner{
		Runner:   schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}},
		Commands: []string{"qstat"},
		Env:      []string{"SGE_QMASTER_PORT=1"},
		Duration: d,
	}
}

// TestWaitSurvivesQmasterOutage makes every qstat fail for 5 s while Wait polls a running job.
func TestWaitSurvivesQmasterOutage(t *testing.T) {
	t.Parallel()
	r := qmasterOutage(5 * time.Second)
	s, dir := cell(t, sge.WithRunner(r), sge.WithCommandTimeout(30*time.Second))
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "outage", Command: []string{"sh", "-c", "sleep 8; exit 7"}, WorkDir: dir, Stdout: "/dev/null", Stderr: "/dev/null"})
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 7, res.ExitCode)
	assert.Positive(t, r.Failures(), "the outage happened during Wait")

	// The same outage with no tolerance ends Wait at the first failure, as a transient error.
	s2, _ := cell(t, sge.WithRunner(qmasterOutage(time.Minute)), sge.WithOutageTolerance(0))
	_, err = s2.Wait(t.Context(), id)
	require.ErrorIs(t, err, sge.ErrUnavailable)
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	t.Logf("transient failure: %v", err)
	assert.NotErrorIs(t, err, scheduler.ErrJobNotFound)
}
