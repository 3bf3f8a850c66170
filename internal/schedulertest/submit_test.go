package schedulertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
)

// complaints stands in for *testing.T and records what SubmitOutlivesContext reports, and who marked
// themselves as helpers.
type complaints struct {
	ctx    context.Context
	got    []string
	marked []string
}

func (c *complaints) Errorf(format string, args ...any) {
	c.got = append(c.got, fmt.Sprintf(format, args...))
}
func (c *complaints) Helper()                  { c.marked = append(c.marked, helperName()) }
func (c *complaints) Context() context.Context { return c.ctx }

// dropsLateID is a backend that loses the id of a job submitted after its caller's ctx ended.
type dropsLateID struct{ scheduler.Scheduler }

func (d dropsLateID) Submit(ctx context.Context, j scheduler.Job) (scheduler.JobID, error) {
	id, err := d.Scheduler.Submit(ctx, j)
	if ctx.Err() != nil {
		return "", err
	}
	return id, err
}

func gridEngine(wrap func(scheduler.Scheduler) scheduler.Scheduler) SubmitBackend {
	return SubmitBackend{
		Command:     "qsub",
		Accepted:    scheduler.Output{Stdout: []byte("17\n")},
		ID:          "17",
		Rejected:    scheduler.Output{ExitCode: 1, Stderr: []byte("Unable to run job: denied\n")},
		Unavailable: sge.ErrUnavailable,
		New: func(r scheduler.Runner, timeout time.Duration) (scheduler.Scheduler, error) {
			s, err := sge.New(sge.WithRunner(r), sge.WithCommandTimeout(timeout))
			if err != nil {
				return nil, err
			}
			return wrap(s), nil
		},
	}
}

func TestSubmitOutlivesContext(t *testing.T) {
	SubmitOutlivesContext(t, gridEngine(func(s scheduler.Scheduler) scheduler.Scheduler { return s }))
}

func TestSubmitOutlivesContextReports(t *testing.T) {
	c := &complaints{ctx: t.Context()}
	SubmitOutlivesContext(c, gridEngine(func(s scheduler.Scheduler) scheduler.Scheduler { return dropsLateID{s} }))
	assert.Len(t, c.got, 1, "only the job accepted after ctx ended is lost: %q", c.got)
	for _, msg := range c.got {
		assert.Contains(t, msg, "accepted after ctx ended")
	}
	assert.Contains(t, c.marked, "SubmitOutlivesContext", "its failures are reported at the caller's line")

	c = &complaints{ctx: t.Context()}
	b := gridEngine(nil)
	refused := errors.New("no such cell")
	b.New = func(scheduler.Runner, time.Duration) (scheduler.Scheduler, error) { return nil, refused }
	SubmitOutlivesContext(c, b)
	assert.Len(t, c.got, len(submitCases), "every case reports the backend that cannot be made: %q", c.got)
	for _, msg := range c.got {
		assert.Contains(t, msg, refused.Error())
	}
}

// TestObserveSubmit: what a caller observes of backends that get each part wrong.
func TestObserveSubmit(t *testing.T) {
	b := gridEngine(func(s scheduler.Scheduler) scheduler.Scheduler { return s })
	for _, tc := range []struct {
		name   string
		submit func(ctx context.Context, r scheduler.Runner) (scheduler.JobID, error)
		want   SubmitOutcome
	}{
		{name: "runs twice without stdin", submit: func(ctx context.Context, r scheduler.Runner) (scheduler.JobID, error) {
			r.Run(ctx, scheduler.Command{Name: "qsub"})
			r.Run(ctx, scheduler.Command{Name: "qsub"})
			return "17", nil
		}, want: SubmitOutcome{Ran: []string{"qsub", "without stdin", "qsub", "without stdin"}, ID: "17"}},
		{name: "a SubmittedError of another job", submit: func(ctx context.Context, r scheduler.Runner) (scheduler.JobID, error) {
			return "17", fmt.Errorf("x: %w", &scheduler.SubmittedError{ID: "18", Err: context.Canceled})
		}, want: SubmitOutcome{ID: "17", Failed: true, Canceled: true,
			Submitted: "job 18 was submitted, but context canceled (its ID 18 is not the id returned)"}},
		{name: "every error", submit: func(ctx context.Context, r scheduler.Runner) (scheduler.JobID, error) {
			return "", errors.Join(context.Canceled, sge.ErrUnavailable, &scheduler.CommandError{Command: "qsub"})
		}, want: SubmitOutcome{Failed: true, Canceled: true, Unavailable: true, Rejected: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b.New = func(r scheduler.Runner, _ time.Duration) (scheduler.Scheduler, error) {
				return submitFunc(func(ctx context.Context) (scheduler.JobID, error) { return tc.submit(ctx, r) }), nil
			}
			got, err := observeSubmit(t.Context(), b, submitCases[0])
			assert.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// TestObserveSubmitKillsWithTheCallersContext: a backend that runs qsub on its caller's ctx sees it killed
// when that ctx ends, as LocalRunner would kill it, and loses the job it submitted.
func TestObserveSubmitKillsWithTheCallersContext(t *testing.T) {
	b := gridEngine(nil)
	b.New = func(r scheduler.Runner, _ time.Duration) (scheduler.Scheduler, error) {
		return submitFunc(func(ctx context.Context) (scheduler.JobID, error) {
			out, err := r.Run(ctx, scheduler.Command{Name: "qsub", Stdin: []byte("true\n")})
			if err != nil {
				return "", err
			}
			return scheduler.JobID(strings.TrimSpace(string(out.Stdout))), nil
		}), nil
	}
	late := submitCases[slices.IndexFunc(submitCases, func(c submitCase) bool { return c.name == "accepted after ctx ended" })]
	got, err := observeSubmit(t.Context(), b, late)
	require.NoError(t, err)
	assert.Equal(t, SubmitOutcome{Ran: []string{"qsub"}, Failed: true, Canceled: true}, got)
}

// submitFunc is a Scheduler whose Submit is a function.
type submitFunc func(ctx context.Context) (scheduler.JobID, error)

func (f submitFunc) Submit(ctx context.Context, _ scheduler.Job) (scheduler.JobID, error) {
	return f(ctx)
}
func (submitFunc) Status(context.Context, scheduler.JobID) (scheduler.JobStatus, error) {
	return scheduler.JobStatus{}, errors.ErrUnsupported
}
func (submitFunc) Wait(context.Context, scheduler.JobID) (scheduler.Result, error) {
	return scheduler.Result{}, errors.ErrUnsupported
}
func (submitFunc) Cancel(context.Context, scheduler.JobID) error { return errors.ErrUnsupported }
func (submitFunc) Result(context.Context, scheduler.JobID) (scheduler.Result, error) {
	return scheduler.Result{}, errors.ErrUnsupported
}

func TestLateCancelRunner(t *testing.T) {
	testenv.Require(t, "sh")
	for _, tc := range []struct {
		name string
		// detached runs the command on a ctx the cancel does not end, as Submit does.
		detached bool
		command  string
		wantOut  string
		wantExit int
		wantKill bool
		printed  string
		passedBy bool
	}{
		{name: "finishes", detached: true, command: "echo", wantOut: "17\n", printed: "17\n"},
		{name: "killed with its ctx", command: "echo", wantKill: true, printed: "17\n"},
		{name: "fails", detached: true, command: "false", wantExit: 1},
		{name: "other commands", detached: true, command: "printf", wantOut: "17", passedBy: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			r := &LateCancelRunner{Runner: scheduler.LocalRunner{}, Command: "echo", Cancel: cancel, Dir: t.TempDir()}
			if tc.command == "false" {
				r.Command = "false"
			}
			runCtx := ctx
			if tc.detached {
				runCtx = context.WithoutCancel(ctx)
			}
			var out scheduler.Output
			var err error
			left := testenv.FilesLeftOpen(t, r.Dir, func() {
				out, err = r.Run(runCtx, scheduler.Command{Name: tc.command, Args: []string{"17"}})
			})
			assert.Empty(t, left, "files left open")
			assert.Equal(t, tc.printed, r.Printed(t))
			if tc.passedBy {
				require.NoError(t, err)
				assert.Equal(t, tc.wantOut, string(out.Stdout))
				assert.NoError(t, ctx.Err(), "not cancelled")
				return
			}
			assert.ErrorIs(t, ctx.Err(), context.Canceled, "cancelled after the command ran")
			if tc.wantKill {
				require.ErrorIs(t, err, context.Canceled)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.wantOut, string(out.Stdout))
			assert.Equal(t, tc.wantExit, out.ExitCode)
		})
	}
}

func TestLateCancelRunnerCannotStart(t *testing.T) {
	refused := errors.New("ssh: connect to host login1 port 22: Connection refused")
	cancelled := false
	r := &LateCancelRunner{
		Runner: RunnerFunc(func(context.Context, scheduler.Command) (scheduler.Output, error) {
			return scheduler.Output{}, refused
		}),
		Command: "qsub", Cancel: func() { cancelled = true }, Dir: t.TempDir(),
	}
	_, err := r.Run(t.Context(), scheduler.Command{Name: "qsub"})
	require.ErrorIs(t, err, refused)
	assert.False(t, cancelled, "nothing ran that the caller could have given up on")
	assert.Empty(t, r.Printed(t))
}

// TestLateCancelRunnerNeedsItsDir: without a directory to make its FIFOs in, the runner runs nothing and
// cancels nothing.
func TestLateCancelRunnerNeedsItsDir(t *testing.T) {
	cancelled := false
	r := &LateCancelRunner{
		Runner: RunnerFunc(func(context.Context, scheduler.Command) (scheduler.Output, error) {
			t.Error("the command ran")
			return scheduler.Output{}, nil
		}),
		Command: "qsub", Cancel: func() { cancelled = true }, Dir: filepath.Join(t.TempDir(), "missing"),
	}
	_, err := r.Run(t.Context(), scheduler.Command{Name: "qsub"})
	require.ErrorIs(t, err, os.ErrNotExist)
	assert.Contains(t, err.Error(), "making ")
	assert.False(t, cancelled)
}
