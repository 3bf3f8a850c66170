package slurm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/scheduler"
)

// recorder is a Runner that records the commands it is given and answers each by its name.
type recorder struct {
	mu      sync.Mutex
	cmds    []scheduler.Command
	answers map[string]scheduler.Output
	err     error
}

func (r *recorder) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.cmds = append(r.cmds, c)
	return r.answers[c.Name], r.err
}

const (
	// invalidJob is what squeue, scancel -v and scontrol print for a job slurmctld does not know.
	invalidJob = "slurm_load_jobs error: Invalid job id specified\n"
	// controllerDown is what squeue prints when slurmctld does not answer.
	controllerDown = "slurm_load_jobs error: Unable to contact slurm controller (connect failure)\n"
	// sacctDone is the accounting record of job 17, which ended with exit status 0.
	sacctDone = "17|17|COMPLETED|0:0|00:01:02|2026-12-01T10:24:12|2026-12-01T10:25:14|vm|hpc|2||\n" +
		"17.batch|17.batch|COMPLETED|0:0|00:01:02|2026-12-01T10:24:12|2026-12-01T10:25:14|vm||2|4032K|6440K\n"
)

func TestSubmitCommand(t *testing.T) {
	r := &recorder{answers: map[string]scheduler.Output{"sbatch": {Stdout: []byte("Submitted through a wrapper\n17;cluster\n")}}}
	s, err := New(WithRunner(r), WithConfig("/etc/slurm/other.conf"))
	require.NoError(t, err)
	j := scheduler.Job{Command: []string{"true"}, Queue: "hpc"}
	id, err := s.Submit(t.Context(), j)
	require.NoError(t, err)
	assert.Equal(t, scheduler.JobID("17"), id)
	require.Len(t, r.cmds, 1)
	c := r.cmds[0]
	assert.Equal(t, "sbatch", c.Name)
	assert.Equal(t, []string{"--parsable"}, c.Args)
	assert.Equal(t, []string{"SLURM_CONF=/etc/slurm/other.conf"}, c.Env)
	assert.Equal(t, []string{"SBATCH_"}, c.UnsetPrefixes, "SBATCH_* would override the jobscript's directives")
	script, err := s.Jobscript(j)
	require.NoError(t, err)
	assert.Equal(t, script, c.Stdin, "the jobscript goes to sbatch's standard input")

	_, err = s.Submit(t.Context(), scheduler.Job{Name: "a\nb", Command: []string{"true"}})
	require.ErrorIs(t, err, scheduler.ErrInvalidJob)
	assert.Len(t, r.cmds, 1, "nothing runs for an invalid job")
}

// TestSbatchVariablesNeverReachSbatch runs the default runner: an SBATCH_JOB_NAME in this process's
// environment would rename the job.
func TestSbatchVariablesNeverReachSbatch(t *testing.T) {
	t.Setenv("SBATCH_JOB_NAME", "renamed")
	// An sbatch that prints what it sees of SBATCH_JOB_NAME and SLURM_CONF instead of a job id.
	sbatch := commandAs{name: "sbatch", as: []string{"/bin/sh", "-c", `echo "[${SBATCH_JOB_NAME-}] $SLURM_CONF" >&2; exit 1`}}
	s, err := New(WithConfig("/etc/slurm/slurm.conf"), WithRunner(sbatch))
	require.NoError(t, err)
	_, err = s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}})
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "[] /etc/slurm/slurm.conf", ce.Stderr)
}

// commandAs runs the command named name as the argv as, through scheduler.LocalRunner.
type commandAs struct {
	name string
	as   []string
}

func (r commandAs) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
	if c.Name == r.name {
		c.Name, c.Args = r.as[0], r.as[1:]
	}
	return scheduler.LocalRunner{}.Run(ctx, c)
}

func TestParseSubmitIDLimits(t *testing.T) {
	for out, want := range map[string]string{"1\n": "1", "17;c1\n": "17", "x\n17\n": "17", "123456789012345678": "123456789012345678"} {
		id, err := parseSubmitID([]byte(out))
		require.NoError(t, err, "%q", out)
		assert.Equal(t, scheduler.JobID(want), id)
	}
	for _, out := range []string{"", "\n", "0\n", "017\n", "17x\n", "1234567890123456789\n", "17\nwarning\n"} {
		_, err := parseSubmitID([]byte(out))
		assert.Error(t, err, "%q", out)
	}
}

// TestCommandFailures maps every way a command can fail to what the caller sees.
func TestCommandFailures(t *testing.T) {
	for name, tc := range map[string]struct {
		out         scheduler.Output
		err         error
		unavailable bool
		commandErr  bool
		notFound    bool
	}{
		"controller down":  {out: scheduler.Output{ExitCode: 1, Stderr: []byte(controllerDown)}, unavailable: true, commandErr: true},
		"socket timed out": {out: scheduler.Output{ExitCode: 1, Stderr: []byte("squeue: error: Socket timed out on send/recv operation\n")}, unavailable: true, commandErr: true},
		"database":         {out: scheduler.Output{ExitCode: 1, Stderr: []byte("sacct: error: Problem talking to the database: Connection refused\n")}, unavailable: true, commandErr: true},
		"rejected":         {out: scheduler.Output{ExitCode: 1, Stderr: []byte("squeue: error: Invalid user: nobody\n")}, commandErr: true},
		"unknown job":      {out: scheduler.Output{ExitCode: 1, Stderr: []byte(invalidJob)}, notFound: true},
		"runner failed":    {err: errors.New("ssh: connect to host login1 port 22: Connection timed out"), unavailable: true},
		"no squeue":        {err: fmt.Errorf("running squeue: %w", exec.ErrNotFound)},
	} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{answers: map[string]scheduler.Output{"squeue": tc.out, "sacct": {}}, err: tc.err}
			s, err := New(WithRunner(r))
			require.NoError(t, err)
			_, err = s.Status(t.Context(), "17")
			require.Error(t, err)
			assert.Equal(t, tc.unavailable, errors.Is(err, ErrUnavailable), "ErrUnavailable: %v", err)
			assert.Equal(t, tc.notFound, errors.Is(err, scheduler.ErrJobNotFound), "ErrJobNotFound: %v", err)
			var ce *scheduler.CommandError
			assert.Equal(t, tc.commandErr, errors.As(err, &ce), "CommandError: %v", err)
			if tc.err != nil {
				assert.ErrorIs(t, err, tc.err)
			}
		})
	}
}

func TestCommandTimeout(t *testing.T) {
	r := schedulertest.RunnerFunc(func(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
		<-ctx.Done()
		return scheduler.Output{}, fmt.Errorf("running %s: %w", c.Name, ctx.Err())
	})
	s, err := New(WithRunner(r), WithCommandTimeout(10*time.Millisecond))
	require.NoError(t, err)
	_, err = s.Status(t.Context(), "17")
	require.ErrorIs(t, err, ErrUnavailable)
	assert.Contains(t, err.Error(), "squeue did not finish in 10ms")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Status(ctx, "17")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrUnavailable)
}

func TestCancelAndControl(t *testing.T) {
	for name, tc := range map[string]struct {
		out      scheduler.Output
		notFound bool
		fails    bool
	}{
		"cancelled":    {},
		"unknown job":  {out: scheduler.Output{Stderr: []byte("scancel: error: Kill job error on job id 17: Invalid job id specified\n")}, notFound: true, fails: true},
		"refused":      {out: scheduler.Output{ExitCode: 1, Stderr: []byte("scancel: error: Kill job error on job id 17: Access/permission denied\n")}, fails: true},
		"already done": {out: scheduler.Output{Stderr: []byte("scancel: Terminating job 17\n")}},
	} {
		t.Run(name, func(t *testing.T) {
			r := &recorder{answers: map[string]scheduler.Output{"scancel": tc.out}}
			s, err := New(WithRunner(r))
			require.NoError(t, err)
			err = s.Cancel(t.Context(), "17.2")
			assert.Equal(t, tc.fails, err != nil, "%v", err)
			assert.Equal(t, tc.notFound, errors.Is(err, scheduler.ErrJobNotFound), "%v", err)
			require.Len(t, r.cmds, 1)
			assert.Equal(t, []string{"-v", "17_2"}, r.cmds[0].Args, "Slurm's form of task 2")
		})
	}

	r := &recorder{answers: map[string]scheduler.Output{"scontrol": {ExitCode: 1, Stderr: []byte(invalidJob)}}}
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	require.ErrorIs(t, s.Hold(t.Context(), "17"), scheduler.ErrJobNotFound)
	require.ErrorIs(t, s.Release(t.Context(), "17"), scheduler.ErrJobNotFound)
	assert.Equal(t, []string{"hold", "17"}, r.cmds[0].Args)
	assert.Equal(t, []string{"release", "17"}, r.cmds[1].Args)
	r.answers["scontrol"] = scheduler.Output{ExitCode: 1, Stderr: []byte("scontrol: error: Access/permission denied\n")}
	err = s.Hold(t.Context(), "17")
	require.Error(t, err)
	require.NotErrorIs(t, err, scheduler.ErrJobNotFound)

	n := len(r.cmds)
	require.Error(t, s.Release(t.Context(), "x"))
	require.Error(t, s.Cancel(t.Context(), "17.x"))
	_, err = s.Status(t.Context(), "17_")
	require.Error(t, err)
	_, err = s.Result(t.Context(), "")
	require.Error(t, err)
	_, err = s.Wait(t.Context(), "-1")
	require.Error(t, err)
	assert.Len(t, r.cmds, n, "an invalid id runs nothing")
}

// TestStatusFromQueue: an array job is listed once per task or range of pending tasks; Status sums them
// up, or reports the one task asked for.
func TestStatusFromQueue(t *testing.T) {
	queue := "7_2|7|2|RUNNING|None|hpc|n1|16|u|arr\n" +
		"7_[3-4]|7|3-4|PENDING|Priority|hpc||16|u|arr\n" +
		"7_1|7|1|COMPLETED|None|hpc|n1|16|u|arr\n" +
		"9|9|N/A|PENDING|JobHeldUser|htc||1|v|held\n" +
		"10|10|N/A|PENDING|DependencyNeverSatisfied|htc||1|v|orphan\n" +
		"11_[2-3]|11|2-3|PENDING|Priority|hpc||4|u|mixed\n" +
		"11_1|11|1|RUNNING|None|hpc|n2|4|u|mixed\n"
	r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
		return scheduler.Output{Stdout: []byte(queue)}, nil
	})
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	for _, tc := range []struct {
		id   scheduler.JobID
		want scheduler.JobStatus
	}{
		{"7", scheduler.JobStatus{ID: "7", State: scheduler.StateRunning, Native: "RUNNING", Name: "arr", Owner: "u",
			Queue: "hpc", Slots: 16, Tasks: []scheduler.TaskStatus{
				{IDs: "2", State: scheduler.StateRunning, Native: "RUNNING", Queue: "hpc"},
				{IDs: "3-4", State: scheduler.StatePending, Native: "PENDING", Queue: "hpc"},
				{IDs: "1", State: scheduler.StateDone, Native: "COMPLETED", Queue: "hpc"},
			}}},
		{"7.1", scheduler.JobStatus{ID: "7.1", State: scheduler.StateDone, Native: "COMPLETED", Name: "arr", Owner: "u",
			Queue: "hpc", Slots: 16}},
		{"9", scheduler.JobStatus{ID: "9", State: scheduler.StateHeld, Native: "PENDING", Message: "JobHeldUser", Name: "held",
			Owner: "v", Queue: "htc", Slots: 1}},
		{"10", scheduler.JobStatus{ID: "10", State: scheduler.StateError, Native: "PENDING", Message: "DependencyNeverSatisfied",
			Name: "orphan", Owner: "v", Queue: "htc", Slots: 1}},
		// The running task is more pressing than the pending ones listed first, and it has no reason.
		{"11", scheduler.JobStatus{ID: "11", State: scheduler.StateRunning, Native: "RUNNING", Name: "mixed", Owner: "u",
			Queue: "hpc", Slots: 4, Tasks: []scheduler.TaskStatus{
				{IDs: "2-3", State: scheduler.StatePending, Native: "PENDING", Queue: "hpc"},
				{IDs: "1", State: scheduler.StateRunning, Native: "RUNNING", Queue: "hpc"},
			}}},
	} {
		t.Run(string(tc.id), func(t *testing.T) {
			got, err := s.Status(t.Context(), tc.id)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	_, err = s.Result(t.Context(), "7")
	require.ErrorIs(t, err, scheduler.ErrNotEnded)
	res, err := s.Wait(t.Context(), "10")
	require.NoError(t, err, "a job in an error state ends Wait")
	assert.Equal(t, scheduler.Result{ID: "10", State: scheduler.StateError, Failure: "DependencyNeverSatisfied"}, res)
}

// TestResultWaitsForEveryTask: slurmdbd records an array's tasks one by one; Result waits until it has as
// many as squeue listed.
func TestResultWaitsForEveryTask(t *testing.T) {
	var sacctCalls int
	r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
		switch c.Name {
		case "squeue":
			return scheduler.Output{Stdout: []byte("7_1|7|1|COMPLETED|None|hpc|n1|1|u|arr\n7_2|7|2|COMPLETED|None|hpc|n1|1|u|arr\n")}, nil
		case "sacct":
			sacctCalls++
			rows := "7_1|7|COMPLETED|0:0|00:00:02|2026-12-01T10:27:27|2026-12-01T10:27:29|n1|hpc|1||\n"
			if sacctCalls > 1 {
				rows += "7_2|8|FAILED|3:0|00:00:03|2026-12-01T10:27:27|2026-12-01T10:27:30|n1|hpc|1||\n"
			}
			return scheduler.Output{Stdout: []byte(rows)}, nil
		}
		return scheduler.Output{ExitCode: 1}, nil
	})
	s, err := New(WithRunner(r), WithPollInterval(time.Millisecond, time.Millisecond))
	require.NoError(t, err)
	res, err := s.Result(t.Context(), "7")
	require.NoError(t, err)
	require.Len(t, res.Tasks, 2)
	assert.Equal(t, 2, sacctCalls)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, scheduler.JobID("7.2"), res.Tasks[1].ID)
	assert.Equal(t, 3*time.Second, res.Wallclock)
	assert.Equal(t, "hpc", res.Queue, "the array's partition, nodes and CPUs are its first task's")
	assert.Equal(t, "n1", res.Host)
	assert.Equal(t, 1, res.Slots)
}

// TestWaitRidesOutControllerOutage: squeue failing because slurmctld does not answer for a few polls does
// not end Wait; with no tolerance the first failure ends it with ErrUnavailable.
func TestWaitRidesOutControllerOutage(t *testing.T) {
	for _, tc := range []struct {
		name      string
		tolerance time.Duration
		wantErr   bool
	}{
		{"tolerated", time.Hour, false},
		{"no tolerance", 0, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var squeueCalls int
			r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
				switch c.Name {
				case "squeue":
					squeueCalls++
					if squeueCalls <= 3 {
						return scheduler.Output{ExitCode: 1, Stderr: []byte(controllerDown)}, nil
					}
					return scheduler.Output{ExitCode: 1, Stderr: []byte(invalidJob)}, nil
				case "sacct":
					return scheduler.Output{Stdout: []byte(sacctDone)}, nil
				}
				return scheduler.Output{ExitCode: 1}, nil
			})
			s, err := New(WithRunner(r), WithPollInterval(time.Millisecond, time.Millisecond), WithOutageTolerance(tc.tolerance))
			require.NoError(t, err)
			res, err := s.Wait(t.Context(), "17")
			if tc.wantErr {
				require.ErrorIs(t, err, ErrUnavailable)
				assert.Contains(t, err.Error(), "job 17: slurm failing for")
				assert.Equal(t, 1, squeueCalls)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, scheduler.StateDone, res.State)
			assert.Equal(t, 62*time.Second, res.Wallclock)
		})
	}
}

// TestWaitForgetsAnOutageThatEnded: the outage tolerance applies to each outage on its own; answers in
// between start the count again, however long the failures add up to.
func TestWaitForgetsAnOutageThatEnded(t *testing.T) {
	const running = "17|17|N/A|RUNNING|None|hpc|n1|1|u|job\n"
	var squeueCalls int
	r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
		switch c.Name {
		case "squeue":
			squeueCalls++
			time.Sleep(60 * time.Millisecond)
			switch {
			case squeueCalls > 10:
				return scheduler.Output{ExitCode: 1, Stderr: []byte(invalidJob)}, nil
			case squeueCalls%2 == 1:
				return scheduler.Output{ExitCode: 1, Stderr: []byte(controllerDown)}, nil
			}
			return scheduler.Output{Stdout: []byte(running)}, nil
		case "sacct":
			return scheduler.Output{Stdout: []byte(sacctDone)}, nil
		}
		return scheduler.Output{ExitCode: 1}, nil
	})
	s, err := New(WithRunner(r), WithPollInterval(time.Millisecond, time.Millisecond), WithOutageTolerance(100*time.Millisecond))
	require.NoError(t, err)
	res, err := s.Wait(t.Context(), "17")
	require.NoError(t, err, "5 outages of one failed poll each, 120 ms apart and 600 ms in all")
	assert.Equal(t, scheduler.StateDone, res.State)
	assert.Greater(t, squeueCalls, 10, "polled past every outage")
}

// TestLogger: WithLogger logs every command with its arguments and every retried failure at debug level,
// never the jobscript.
func TestLogger(t *testing.T) {
	var logs bytes.Buffer
	var squeueCalls int
	r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
		switch c.Name {
		case "sbatch":
			return scheduler.Output{Stdout: []byte("17\n")}, nil
		case "squeue":
			squeueCalls++
			if squeueCalls == 1 {
				return scheduler.Output{ExitCode: 1, Stderr: []byte(controllerDown)}, nil
			}
			return scheduler.Output{ExitCode: 1, Stderr: []byte(invalidJob)}, nil
		case "sacct":
			return scheduler.Output{Stdout: []byte(sacctDone)}, nil
		}
		return scheduler.Output{ExitCode: 1}, nil
	})
	s, err := New(WithRunner(r), WithPollInterval(time.Millisecond, time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "a", Command: []string{"echo", "payload-marker"}})
	require.NoError(t, err)
	_, err = s.Wait(t.Context(), id)
	require.NoError(t, err)
	assert.Contains(t, logs.String(), "msg=running command=sbatch args=[--parsable]")
	assert.Contains(t, logs.String(), "msg=running command=squeue")
	assert.Contains(t, logs.String(), "msg=running command=sacct")
	assert.Contains(t, logs.String(), "msg=retrying job=17")
	assert.NotContains(t, logs.String(), "payload-marker", "the jobscript is not logged")
}

// TestResultStopsWithItsContext: a Result waiting for slurmdbd's record returns ctx's error when ctx ends,
// never an empty Result.
func TestResultStopsWithItsContext(t *testing.T) {
	r := &recorder{answers: map[string]scheduler.Output{"squeue": {ExitCode: 1, Stderr: []byte(invalidJob)}, "sacct": {}}}
	s, err := New(WithRunner(r), WithPollInterval(10*time.Millisecond, 10*time.Millisecond), WithAccountingTimeout(time.Hour))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	_, err = s.Result(ctx, "17")
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestSubmitOutlivesItsContext(t *testing.T) {
	schedulertest.SubmitOutlivesContext(t, schedulertest.SubmitBackend{
		Command:     "sbatch",
		Accepted:    scheduler.Output{Stdout: []byte("17\n")},
		ID:          "17",
		Rejected:    scheduler.Output{ExitCode: 1, Stderr: []byte("sbatch: error: invalid partition specified: nosuch\nsbatch: error: Batch job submission failed: Invalid partition name specified\n")},
		Unavailable: ErrUnavailable,
		New: func(r scheduler.Runner, timeout time.Duration) (scheduler.Scheduler, error) {
			return New(WithRunner(r), WithCommandTimeout(timeout))
		},
	})
}
