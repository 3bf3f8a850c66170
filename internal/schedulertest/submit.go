package schedulertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

// SubmitBackend describes a backend's submission command for SubmitOutlivesContext.
type SubmitBackend struct {
	// Command is the submission command, such as "qsub".
	Command string
	// Accepted is what Command prints when it accepts a job whose id is ID.
	Accepted scheduler.Output
	ID       scheduler.JobID
	// Rejected is what Command prints when it rejects a job.
	Rejected scheduler.Output
	// Unavailable is the backend's error for a command that did not finish in time.
	Unavailable error
	// New returns the backend running its commands with r, giving each at most timeout.
	New func(r scheduler.Runner, timeout time.Duration) (scheduler.Scheduler, error)
}

// SubmitOutcome is what a caller of Submit observes.
type SubmitOutcome struct {
	// Ran lists the commands Submit ran, each followed by "without stdin" where it got no jobscript.
	Ran []string
	ID  scheduler.JobID
	// Failed says that Submit returned an error; the other fields say what it wraps.
	Failed, Canceled, Unavailable, Rejected bool
	// Submitted is the message of a *scheduler.SubmittedError, whose ID must be ID.
	Submitted string
}

// submitCase is a way the caller's ctx meets the submission command.
type submitCase struct {
	name string
	// cancelFirst ends the caller's ctx before Submit, cancel while the command runs.
	cancelFirst, cancel bool
	// answer is what the command does once it ran; LocalRunner kills a command whose ctx has ended.
	answer func(ctx context.Context, b SubmitBackend) (scheduler.Output, error)
	want   func(b SubmitBackend) SubmitOutcome
}

var submitCases = []submitCase{
	{name: "accepted", answer: answerWith(func(b SubmitBackend) scheduler.Output { return b.Accepted }),
		want: func(b SubmitBackend) SubmitOutcome { return SubmitOutcome{Ran: []string{b.Command}, ID: b.ID} }},
	{name: "accepted after ctx ended", cancel: true,
		answer: answerWith(func(b SubmitBackend) scheduler.Output { return b.Accepted }),
		want: func(b SubmitBackend) SubmitOutcome {
			return SubmitOutcome{Ran: []string{b.Command}, ID: b.ID, Failed: true, Canceled: true,
				Submitted: "job " + string(b.ID) + " was submitted, but context canceled"}
		}},
	{name: "rejected", answer: answerWith(func(b SubmitBackend) scheduler.Output { return b.Rejected }),
		want: func(b SubmitBackend) SubmitOutcome {
			return SubmitOutcome{Ran: []string{b.Command}, Failed: true, Rejected: true}
		}},
	{name: "rejected after ctx ended", cancel: true,
		answer: answerWith(func(b SubmitBackend) scheduler.Output { return b.Rejected }),
		want: func(b SubmitBackend) SubmitOutcome {
			return SubmitOutcome{Ran: []string{b.Command}, Failed: true, Canceled: true, Rejected: true}
		}},
	{name: "timed out after ctx ended", cancel: true,
		answer: func(ctx context.Context, b SubmitBackend) (scheduler.Output, error) {
			<-ctx.Done()
			return scheduler.Output{}, fmt.Errorf("running %s: %w", b.Command, ctx.Err())
		},
		want: func(b SubmitBackend) SubmitOutcome {
			return SubmitOutcome{Ran: []string{b.Command}, Failed: true, Canceled: true, Unavailable: true}
		}},
	{name: "ctx ended before", cancelFirst: true,
		answer: answerWith(func(b SubmitBackend) scheduler.Output { return b.Accepted }),
		want:   func(SubmitBackend) SubmitOutcome { return SubmitOutcome{Failed: true, Canceled: true} }},
}

// answerWith answers with what out gives, unless ctx has ended, when a command would have been killed.
func answerWith(out func(SubmitBackend) scheduler.Output) func(context.Context, SubmitBackend) (scheduler.Output, error) {
	return func(ctx context.Context, b SubmitBackend) (scheduler.Output, error) {
		if err := ctx.Err(); err != nil {
			return scheduler.Output{}, fmt.Errorf("running %s: %w", b.Command, err)
		}
		return out(b), nil
	}
}

// TB is the part of *testing.T that SubmitOutlivesContext uses.
type TB interface {
	assert.TestingT
	Helper()
	Context() context.Context
}

// SubmitOutlivesContext checks what Submit returns when its ctx ends while the submission command runs: the
// command is not killed but runs to its end, so that the id of a job the scheduler accepted is returned with
// a *scheduler.SubmittedError; a rejection or a timeout is reported with ctx's error; a ctx that ended before
// Submit runs nothing. The runner answers as scheduler.LocalRunner would: a command whose ctx ends is killed
// and its output lost.
func SubmitOutlivesContext(t TB, b SubmitBackend) {
	t.Helper()
	for _, c := range submitCases {
		got, err := observeSubmit(t.Context(), b, c)
		if assert.NoError(t, err, c.name) {
			assert.Equal(t, c.want(b), got, c.name)
		}
	}
}

// observeSubmit submits a job to the backend as c says and returns what its caller observes.
func observeSubmit(ctx context.Context, b SubmitBackend, c submitCase) (SubmitOutcome, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var o SubmitOutcome
	r := RunnerFunc(func(rctx context.Context, cmd scheduler.Command) (scheduler.Output, error) {
		o.Ran = append(o.Ran, cmd.Name)
		if len(cmd.Stdin) == 0 {
			o.Ran = append(o.Ran, "without stdin")
		}
		if c.cancel {
			cancel()
		}
		return c.answer(rctx, b)
	})
	s, err := b.New(r, 50*time.Millisecond)
	if err != nil {
		return o, err
	}
	if c.cancelFirst {
		cancel()
	}
	id, err := s.Submit(ctx, scheduler.Job{Name: "late", Command: []string{"true"}})
	o.ID = id
	o.Failed = err != nil
	o.Canceled = errors.Is(err, context.Canceled)
	o.Unavailable = errors.Is(err, b.Unavailable)
	var ce *scheduler.CommandError
	o.Rejected = errors.As(err, &ce)
	if se := (*scheduler.SubmittedError)(nil); errors.As(err, &se) {
		o.Submitted = se.Error()
		if se.ID != id {
			o.Submitted += fmt.Sprintf(" (its ID %s is not the id returned)", se.ID)
		}
	}
	return o, nil
}

// LateCancelRunner runs Command (the submission command, such as "qsub") so that Cancel, the caller's ctx
// cancel function, is called after Command has done its work but before it exits: the job is then submitted
// whether or not its id reaches the caller. Printed returns what Command printed. Other commands run as they
// are. Dir must be a directory the command's user can write.
type LateCancelRunner struct {
	scheduler.Runner
	Command string
	Cancel  context.CancelFunc
	Dir     string
}

// lateCancelScript runs the command ($0 with its arguments) with its output saved to $OUT, tells the test it
// has exited through the FIFO $DONE, then waits for a line on the FIFO $GATE, which it opened first so that
// the test can write to it at any time, and prints the saved output.
const lateCancelScript = `exec 3<>"$GATE"
"$0" "$@" >"$OUT"
status=$?
echo >"$DONE"
read -r _ <&3
cat "$OUT"
exit $status`

// Run implements scheduler.Runner.
func (r *LateCancelRunner) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
	if c.Name != r.Command {
		return r.Runner.Run(ctx, c)
	}
	done, gate := filepath.Join(r.Dir, "done"), filepath.Join(r.Dir, "gate")
	for _, fifo := range []string{done, gate} {
		if err := syscall.Mkfifo(fifo, 0o600); err != nil {
			return scheduler.Output{}, fmt.Errorf("making %s: %w", fifo, err)
		}
		if err := os.Chmod(fifo, 0o666); err != nil {
			return scheduler.Output{}, err
		}
	}
	c.Args = append([]string{"-c", lateCancelScript, c.Name}, c.Args...)
	c.Name = "/bin/sh"
	c.Env = append(slices.Clip(c.Env), "OUT="+r.printed(), "DONE="+done, "GATE="+gate)
	// Held open for reading and writing, DONE never blocks the script and never reads as ended.
	signal, err := os.OpenFile(done, os.O_RDWR, 0)
	if err != nil {
		return scheduler.Output{}, err
	}
	defer signal.Close()
	type result struct {
		out scheduler.Output
		err error
	}
	ran := make(chan result, 1)
	go func() {
		out, err := r.Runner.Run(ctx, c)
		ran <- result{out, err}
	}()
	signalled := make(chan error, 1)
	go func() {
		_, err := signal.Read(make([]byte, 1))
		signalled <- err
	}()
	select {
	case res := <-ran:
		// The script ended without running the command, as when runuser fails.
		return res.out, res.err
	case err := <-signalled:
		if err != nil {
			return scheduler.Output{}, err
		}
	}
	r.Cancel()
	// A script that was killed meanwhile no longer holds GATE open: there is nobody to let go on.
	if g, err := os.OpenFile(gate, os.O_WRONLY|syscall.O_NONBLOCK, 0); err == nil {
		_, err = g.WriteString("\n")
		g.Close()
		if err != nil {
			return scheduler.Output{}, err
		}
	}
	res := <-ran
	return res.out, res.err
}

func (r *LateCancelRunner) printed() string { return filepath.Join(r.Dir, "printed") }

// Printed returns what Command printed, such as the id of the job it submitted; nothing if it did not run.
func (r *LateCancelRunner) Printed(t testing.TB) string {
	t.Helper()
	b, err := os.ReadFile(r.printed())
	if errors.Is(err, os.ErrNotExist) {
		return ""
	}
	require.NoError(t, err)
	return string(b)
}
