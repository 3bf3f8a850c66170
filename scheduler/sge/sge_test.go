package sge

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/scheduler"
)

// funcRunner answers every command with a function; it is safe for concurrent use if the function is.
type funcRunner func(c scheduler.Command) scheduler.Output

func (f funcRunner) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	return f(c), nil
}

// TestCancelRefusedIsNotCancelled: when qdel refuses, the job runs on and ends on its own; a job that exited 1
// must be reported as failed, not as cancelled.
func TestCancelRefusedIsNotCancelled(t *testing.T) {
	qacct := strings.Replace(string(readTestdata(t, "qacct-qdel.txt")), "failed       100 : assumedly after job", "failed       0", 1)
	qacct = strings.Replace(qacct, "exit_status  137                  (Killed)", "exit_status  1", 1)
	r := funcRunner(func(c scheduler.Command) scheduler.Output {
		switch c.Name {
		case "qdel":
			return scheduler.Output{ExitCode: 1, Stderr: []byte(`sgetest - you do not have the necessary privileges to delete the job "1"`)}
		case "qacct":
			return scheduler.Output{Stdout: []byte(qacct)}
		}
		return scheduler.Output{ExitCode: 2}
	})
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	err = s.Cancel(t.Context(), "1")
	require.ErrorContains(t, err, "privileges")
	res, err := s.Result(t.Context(), "1")
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 1, res.ExitCode)
}

// TestCancelUnreachable: a qdel that cannot run is reported with its error, not as a job that does not
// exist, and the job is not taken for cancelled.
func TestCancelUnreachable(t *testing.T) {
	down := errors.New("exec: \"qdel\": executable file not found in $PATH")
	s, err := New(WithRunner(schedulertest.RunnerFunc(func(context.Context, scheduler.Command) (scheduler.Output, error) {
		return scheduler.Output{}, down
	})))
	require.NoError(t, err)
	err = s.Cancel(t.Context(), "1")
	require.ErrorIs(t, err, down)
	assert.NotErrorIs(t, err, scheduler.ErrJobNotFound)
	assert.False(t, s.wasCancelled(1))
}

func TestCancelledIsBounded(t *testing.T) {
	s, err := New(WithRunner(funcRunner(func(scheduler.Command) scheduler.Output { return scheduler.Output{} })))
	require.NoError(t, err)
	for n := 1; n <= maxCancelled+100; n++ {
		require.NoError(t, s.Cancel(t.Context(), scheduler.JobID(fmt.Sprint(n))))
	}
	require.NoError(t, s.Cancel(t.Context(), scheduler.JobID(fmt.Sprint(maxCancelled+100))), "cancelling twice")
	assert.Len(t, s.cancelled, maxCancelled)
	assert.Len(t, s.cancelOrder, maxCancelled)
	assert.False(t, s.wasCancelled(100))
	assert.True(t, s.wasCancelled(101))
	assert.True(t, s.wasCancelled(maxCancelled+100))
}

// TestWaitsShareOneListing runs 20 Waits at once on jobs qstat lists in Eqw: each needs one poll, and all
// of them together one `qstat -xml -u '*'`, not one each. A direct Status asks for a listing of its own.
func TestWaitsShareOneListing(t *testing.T) {
	const n = 20
	var listing strings.Builder
	listing.WriteString("<?xml version='1.0'?>\n<job_info>\n<job_info>\n")
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&listing, "<job_list state=\"pending\"><JB_job_number>%d</JB_job_number><JB_name>j</JB_name><JB_owner>u</JB_owner><state>Eqw</state><queue_name></queue_name><slots>1</slots></job_list>\n", i)
	}
	listing.WriteString("</job_info>\n</job_info>\n")
	eqw, err := os.ReadFile("testdata/qstatj-eqw.xml")
	require.NoError(t, err)
	var listings atomic.Int32
	r := funcRunner(func(c scheduler.Command) scheduler.Output {
		if c.Name == "qstat" && len(c.Args) > 0 && c.Args[0] == "-xml" {
			listings.Add(1)
			time.Sleep(20 * time.Millisecond) // long enough for the Waits to overlap
			return scheduler.Output{Stdout: []byte(listing.String())}
		}
		return scheduler.Output{Stdout: eqw}
	})
	s, err := New(WithRunner(r), WithPollInterval(time.Hour, time.Hour))
	require.NoError(t, err)
	var wg sync.WaitGroup
	for i := 1; i <= n; i++ {
		wg.Go(func() {
			res, err := s.Wait(t.Context(), scheduler.JobID(fmt.Sprint(i)))
			assert.NoError(t, err)
			assert.Equal(t, scheduler.StateError, res.State)
		})
	}
	wg.Wait()
	assert.Equal(t, int32(1), listings.Load())

	for range 2 {
		st, err := s.Status(t.Context(), "3")
		require.NoError(t, err)
		assert.Equal(t, scheduler.StateError, st.State)
	}
	assert.Equal(t, int32(3), listings.Load(), "Status asks for a listing that started after it was called")
}

// TestListingFailedOnAnotherContext: a listing that failed because its caller gave up is not handed to a
// caller whose own ctx is fine.
func TestListingFailedOnAnotherContext(t *testing.T) {
	started := make(chan struct{})
	var calls atomic.Int32
	r := schedulertest.RunnerFunc(func(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done()
			return scheduler.Output{}, ctx.Err()
		}
		return scheduler.Output{Stdout: []byte("<job_info></job_info>")}, nil
	})
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	errs := make(chan error, 1)
	go func() {
		_, err := s.list(ctx, time.Now())
		errs <- err
	}()
	<-started
	second := make(chan error, 1)
	go func() {
		_, err := s.list(t.Context(), time.Now().Add(-time.Hour))
		second <- err
	}()
	cancel()
	require.ErrorIs(t, <-errs, context.Canceled)
	require.NoError(t, <-second)
	assert.Equal(t, int32(2), calls.Load())
}

// outageCell answers like a cell running job 1 for a few listings, whose qmaster then stops answering qstat
// for failures listings, after which job 1 has ended with exit code 3.
type outageCell struct {
	failures int

	mu       sync.Mutex
	listings int
	failed   int
	qacct    string
}

const qmasterDown = "error: commlib error: got select error (Connection refused)\n" +
	"unable to contact qmaster using port 6444 on host \"vm\"\n"

func (c *outageCell) Run(_ context.Context, cmd scheduler.Command) (scheduler.Output, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case cmd.Name == "qstat" && cmd.Args[0] == "-xml":
		c.listings++
		switch {
		case c.listings <= 2:
			return scheduler.Output{Stdout: c.running()}, nil
		case c.listings <= 2+c.failures:
			c.failed++
			return scheduler.Output{ExitCode: 1, Stderr: []byte(qmasterDown)}, nil
		}
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<job_info><queue_info></queue_info><job_info></job_info></job_info>\n")}, nil
	case cmd.Name == "qstat":
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<unknown_jobs><ST_name>1</ST_name></unknown_jobs>\n")}, nil
	case cmd.Name == "qacct":
		return scheduler.Output{Stdout: []byte(c.qacct)}, nil
	}
	return scheduler.Output{ExitCode: 2}, nil
}

func (c *outageCell) running() []byte {
	b, _ := os.ReadFile("testdata/qstat.xml")
	return b
}

// TestWaitRidesOutQmasterOutage: qstat failing because the qmaster is unreachable for a few polls mid-wait
// does not end Wait, which returns the job's result once the qmaster answers again; with no tolerance the
// first failure ends it with ErrUnavailable.
func TestWaitRidesOutQmasterOutage(t *testing.T) {
	qacct := strings.Replace(string(readTestdata(t, "qacct-qdel.txt")), "failed       100 : assumedly after job", "failed       0", 1)
	qacct = strings.Replace(qacct, "exit_status  137                  (Killed)", "exit_status  3", 1)

	c := &outageCell{failures: 3, qacct: qacct}
	s, err := New(WithRunner(c), WithPollInterval(time.Millisecond, 5*time.Millisecond))
	require.NoError(t, err)
	res, err := s.Wait(t.Context(), "1")
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, 3, c.failed, "the outage happened during Wait")

	c = &outageCell{failures: 1000, qacct: qacct}
	s, err = New(WithRunner(c), WithPollInterval(time.Millisecond, 5*time.Millisecond), WithOutageTolerance(0))
	require.NoError(t, err)
	_, err = s.Wait(t.Context(), "1")
	require.ErrorIs(t, err, ErrUnavailable)
	require.NotErrorIs(t, err, scheduler.ErrJobNotFound)
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Contains(t, ce.Stderr, "unable to contact qmaster")
	assert.Equal(t, 1, c.failed)
}

func TestErrorClassification(t *testing.T) {
	unknown := []byte("<?xml version='1.0'?>\n<unknown_jobs><ST_name>7</ST_name></unknown_jobs>\n")
	for name, tc := range map[string]struct {
		qacct       scheduler.Output
		runErr      error
		unavailable bool
		notFound    bool
	}{
		"qmaster down":        {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte(qmasterDown)}, unavailable: true},
		"runner failed":       {runErr: errors.New("ssh: connect to host login1 port 22: Connection timed out"), unavailable: true},
		"not found":           {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte("error: job id 7 not found\n")}, notFound: true},
		"other qacct failure": {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte("sh: 1: qacct: not found\n")}},
		"missing command":     {runErr: fmt.Errorf("running qacct: %w", exec.ErrNotFound)},
		"commlib error": {qacct: scheduler.Output{ExitCode: 1,
			Stderr: []byte("error: commlib error: endpoint is not unique\n")}, unavailable: true},
		"select error":           {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte("got select error\n")}, unavailable: true},
		"refused":                {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte("Connection refused\n")}, unavailable: true},
		"no gdi answer":          {qacct: scheduler.Output{ExitCode: 1, Stderr: []byte("failed receiving gdi request response for mid=1 (got no message).\n")}, unavailable: true},
		"qmaster down on stdout": {qacct: scheduler.Output{ExitCode: 1, Stdout: []byte(qmasterDown)}, unavailable: true},
	} {
		t.Run(name, func(t *testing.T) {
			r := schedulertest.RunnerFunc(func(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
				if c.Name == "qstat" {
					return scheduler.Output{Stdout: unknown}, nil
				}
				return tc.qacct, tc.runErr
			})
			s, err := New(WithRunner(r), WithAccountingTimeout(0))
			require.NoError(t, err)
			_, err = s.Result(t.Context(), "7")
			require.Error(t, err)
			assert.Equal(t, tc.unavailable, errors.Is(err, ErrUnavailable), "%v", err)
			assert.Equal(t, tc.notFound, errors.Is(err, scheduler.ErrJobNotFound), "%v", err)
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
	_, err = s.Status(t.Context(), "1")
	require.ErrorIs(t, err, ErrUnavailable)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = s.Status(ctx, "1")
	require.ErrorIs(t, err, context.Canceled)
	require.NotErrorIs(t, err, ErrUnavailable)
}

// TestStatusFromListing reads a listing of a real cell: a running job, an array job's tasks, a job in
// error and a held job, as Status reports them.
func TestStatusFromListing(t *testing.T) {
	listing := readTestdata(t, "qstat.xml")
	eqw := readTestdata(t, "qstatj-eqw.xml")
	r := funcRunner(func(c scheduler.Command) scheduler.Output {
		if c.Args[0] == "-xml" {
			return scheduler.Output{Stdout: listing}
		}
		return scheduler.Output{Stdout: eqw}
	})
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	for _, tc := range []struct {
		id   scheduler.JobID
		want scheduler.JobStatus
	}{
		{"1", scheduler.JobStatus{ID: "1", State: scheduler.StateRunning, Native: "r", Name: "sleeper", Owner: "sgetest",
			Queue: "all.q@vm", Slots: 2}},
		{"2", scheduler.JobStatus{ID: "2", State: scheduler.StateRunning, Native: "r", Name: "arr", Owner: "sgetest",
			Queue: "all.q@vm", Slots: 1, Tasks: []scheduler.TaskStatus{
				{IDs: "1", State: scheduler.StateRunning, Native: "r", Queue: "all.q@vm"},
				{IDs: "2", State: scheduler.StateRunning, Native: "r", Queue: "all.q@vm"},
				{IDs: "3", State: scheduler.StateRunning, Native: "r", Queue: "all.q@vm"},
			}}},
		{"2.3", scheduler.JobStatus{ID: "2.3", State: scheduler.StateRunning, Native: "r", Name: "arr", Owner: "sgetest",
			Queue: "all.q@vm", Slots: 1, Tasks: []scheduler.TaskStatus{
				{IDs: "3", State: scheduler.StateRunning, Native: "r", Queue: "all.q@vm"},
			}}},
		{"3", scheduler.JobStatus{ID: "3", State: scheduler.StateHeld, Native: "hqw", Name: "held", Owner: "sgetest", Slots: 1}},
	} {
		t.Run(string(tc.id), func(t *testing.T) {
			got, err := s.Status(t.Context(), tc.id)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
	st, err := s.Status(t.Context(), "4")
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateError, st.State)
	assert.Equal(t, "Eqw", st.Native)
	assert.Contains(t, st.Message, "can't chdir")
}

// TestWaitForAJobNobodyKnows: a job that neither qstat nor qacct knows ends Wait with ErrJobNotFound once
// the accounting timeout has passed, not at the first look and not never.
func TestWaitForAJobNobodyKnows(t *testing.T) {
	unknown := readTestdata(t, "qstatj-unknown.xml")
	var qaccts atomic.Int32
	r := funcRunner(func(c scheduler.Command) scheduler.Output {
		switch {
		case c.Name == "qacct":
			qaccts.Add(1)
			return scheduler.Output{ExitCode: 1, Stderr: []byte("error: job id 999 not found\n")}
		case c.Args[0] == "-j":
			return scheduler.Output{Stdout: unknown}
		}
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<job_info><queue_info></queue_info><job_info></job_info></job_info>\n")}
	})
	s, err := New(WithRunner(r), WithPollInterval(time.Millisecond, time.Millisecond), WithAccountingTimeout(50*time.Millisecond))
	require.NoError(t, err)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	_, err = s.Wait(ctx, "999")
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
	assert.Greater(t, qaccts.Load(), int32(1), "Wait looked again for the record before giving up")
}

// TestStatusOfABrokenListing: output that is not a qstat listing is an error that says so.
func TestStatusOfABrokenListing(t *testing.T) {
	r := funcRunner(func(scheduler.Command) scheduler.Output {
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<job_info><queue_info><job_list state=\"running\"><JB_job_number>x")}
	})
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	_, err = s.Status(t.Context(), "1")
	require.Error(t, err)
	assert.Contains(t, err.Error(), "parsing qstat -xml output")
	require.NotErrorIs(t, err, scheduler.ErrJobNotFound)
}

func TestSubmitOutlivesItsContext(t *testing.T) {
	schedulertest.SubmitOutlivesContext(t, schedulertest.SubmitBackend{
		Command:     "qsub",
		Accepted:    scheduler.Output{Stdout: []byte("17\n")},
		ID:          "17",
		Rejected:    scheduler.Output{ExitCode: 1, Stderr: []byte("Unable to run job: parallel environment \"nosuchpe\" does not exist.\nExiting.\n")},
		Unavailable: ErrUnavailable,
		New: func(r scheduler.Runner, timeout time.Duration) (scheduler.Scheduler, error) {
			return New(WithRunner(r), WithCommandTimeout(timeout))
		},
	})
}
