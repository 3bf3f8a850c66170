package sge

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

// funcRunner answers every command with a function; it is safe for concurrent use if the function is.
type funcRunner func(c Command) Output

func (f funcRunner) Run(_ context.Context, c Command) (Output, error) { return f(c), nil }

// TestCancelRefusedIsNotCancelled: when qdel refuses, the job runs on and ends on its own; a job that exited 1
// must be reported as failed, not as cancelled.
func TestCancelRefusedIsNotCancelled(t *testing.T) {
	qacct := strings.Replace(string(readTestdata(t, "qacct-qdel.txt")), "failed       100 : assumedly after job", "failed       0", 1)
	qacct = strings.Replace(qacct, "exit_status  137                  (Killed)", "exit_status  1", 1)
	r := funcRunner(func(c Command) Output {
		switch c.Name {
		case "qdel":
			return Output{ExitCode: 1, Stderr: []byte(`sgetest - you do not have the necessary privileges to delete the job "1"`)}
		case "qacct":
			return Output{Stdout: []byte(qacct)}
		}
		return Output{ExitCode: 2}
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

func TestCancelledIsBounded(t *testing.T) {
	s, err := New(WithRunner(funcRunner(func(Command) Output { return Output{} })))
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
	r := funcRunner(func(c Command) Output {
		if c.Name == "qstat" && len(c.Args) > 0 && c.Args[0] == "-xml" {
			listings.Add(1)
			time.Sleep(20 * time.Millisecond) // long enough for the Waits to overlap
			return Output{Stdout: []byte(listing.String())}
		}
		return Output{Stdout: eqw}
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
	r := runnerFunc(func(ctx context.Context, c Command) (Output, error) {
		if calls.Add(1) == 1 {
			close(started)
			<-ctx.Done()
			return Output{}, ctx.Err()
		}
		return Output{Stdout: []byte("<job_info></job_info>")}, nil
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

type runnerFunc func(ctx context.Context, c Command) (Output, error)

func (f runnerFunc) Run(ctx context.Context, c Command) (Output, error) { return f(ctx, c) }

// TestLocalRunnerKillsTheWholeCommand: when ctx ends, a command whose child holds its output (as runuser's
// or sudo's child does) must not keep Run waiting until the child exits.
func TestLocalRunnerKillsTheWholeCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := LocalRunner{}.Run(ctx, Command{Name: "sh", Args: []string{"-c", "sleep 120 & wait"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 60*time.Second, "Run waited for the orphaned child")
}
