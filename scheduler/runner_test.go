package scheduler_test

import (
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

func TestLocalRunner(t *testing.T) {
	t.Setenv("HPCSHIP_RUNNER_A", "inherited")
	t.Setenv("HPCSHIP_RUNNER_B", "inherited")
	for _, tt := range []struct {
		name     string
		c        scheduler.Command
		wantOut  string
		wantErr  string
		wantExit int
	}{
		{name: "output and exit code", c: scheduler.Command{Name: "sh", Args: []string{"-c", "echo out; echo err >&2; exit 3"}},
			wantOut: "out\n", wantErr: "err\n", wantExit: 3},
		{name: "stdin reaches the command", c: scheduler.Command{Name: "cat", Stdin: []byte("#!/bin/sh\necho job\n")},
			wantOut: "#!/bin/sh\necho job\n"},
		{name: "no stdin reads as empty", c: scheduler.Command{Name: "cat"}},
		{name: "this process's environment", c: scheduler.Command{Name: "sh", Args: []string{"-c", `echo "$HPCSHIP_RUNNER_A $HPCSHIP_RUNNER_B"`}},
			wantOut: "inherited inherited\n"},
		{name: "Env is added and wins", c: scheduler.Command{Name: "sh", Args: []string{"-c", `echo "$HPCSHIP_RUNNER_A $HPCSHIP_RUNNER_C"`},
			Env: []string{"HPCSHIP_RUNNER_A=set", "HPCSHIP_RUNNER_C=new"}}, wantOut: "set new\n"},
		{name: "UnsetPrefixes removes inherited variables", c: scheduler.Command{Name: "sh",
			Args:          []string{"-c", `echo "[${HPCSHIP_RUNNER_A-unset}] [${HPCSHIP_RUNNER_B-unset}] $PATH"`},
			UnsetPrefixes: []string{"HPCSHIP_RUNNER_A", "NO_SUCH_"}},
			wantOut: "[unset] [inherited] " + strings.TrimSpace(mustOutput(t, "sh", "-c", "echo $PATH")) + "\n"},
		{name: "UnsetPrefixes leaves Env alone", c: scheduler.Command{Name: "sh", Args: []string{"-c", `echo "$HPCSHIP_RUNNER_A"`},
			Env: []string{"HPCSHIP_RUNNER_A=set"}, UnsetPrefixes: []string{"HPCSHIP_RUNNER_"}}, wantOut: "set\n"},
		{name: "more Env entries than the environment has", c: scheduler.Command{Name: "sh", Args: []string{"-c", `echo "$HPCSHIP_RUNNER_999"`},
			Env: manyVars(1000)}, wantOut: "999\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := scheduler.LocalRunner{}.Run(t.Context(), tt.c)
			require.NoError(t, err)
			assert.Equal(t, tt.wantOut, string(out.Stdout))
			assert.Equal(t, tt.wantErr, string(out.Stderr))
			assert.Equal(t, tt.wantExit, out.ExitCode)
		})
	}
}

// manyVars returns n entries HPCSHIP_RUNNER_i=i.
func manyVars(n int) []string {
	env := make([]string, n)
	for i := range env {
		env[i] = fmt.Sprintf("HPCSHIP_RUNNER_%d=%d", i, i)
	}
	return env
}

func mustOutput(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), name, args...).Output()
	require.NoError(t, err)
	return string(out)
}

// TestLocalRunnerCannotRun: a command that cannot start is an error, not an exit code.
func TestLocalRunnerCannotRun(t *testing.T) {
	_, err := scheduler.LocalRunner{}.Run(t.Context(), scheduler.Command{Name: "hpcship-no-such-command"})
	require.ErrorIs(t, err, exec.ErrNotFound)
}

// TestLocalRunnerKillsTheWholeCommand: when ctx ends, a command whose child holds its output (as runuser's,
// sudo's or ssh's child does) must not keep Run waiting until the child exits.
func TestLocalRunnerKillsTheWholeCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := scheduler.LocalRunner{}.Run(ctx, scheduler.Command{Name: "sh", Args: []string{"-c", "sleep 120 & wait"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 60*time.Second, "Run waited for the orphaned child")
}

func TestCommandError(t *testing.T) {
	for _, tt := range []struct {
		name string
		out  scheduler.Output
		want string
		msg  string
	}{
		{name: "stderr, blanks folded", out: scheduler.Output{ExitCode: 1, Stdout: []byte("ignored"),
			Stderr: []byte("  Unable to run job:\n  parallel environment \"x\" does not exist.\n")},
			want: `qsub -terse exited 1: Unable to run job: parallel environment "x" does not exist.`,
			msg:  "Unable to run job:\n  parallel environment \"x\" does not exist."},
		{name: "stdout where stderr is empty", out: scheduler.Output{ExitCode: 2, Stdout: []byte("denied\n"), Stderr: []byte("\n")},
			want: "qsub -terse exited 2: denied", msg: "denied"},
		{name: "nothing said", out: scheduler.Output{ExitCode: 255}, want: "qsub -terse exited 255: no error output"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := error(scheduler.NewCommandError(scheduler.Command{Name: "qsub", Args: []string{"-terse"}, Stdin: []byte("script")}, tt.out))
			assert.EqualError(t, err, tt.want)
			var ce *scheduler.CommandError
			require.True(t, errors.As(err, &ce))
			assert.Equal(t, "qsub -terse", ce.Command)
			assert.Equal(t, tt.out.ExitCode, ce.ExitCode)
			assert.Equal(t, tt.msg, ce.Stderr)
		})
	}
	assert.Equal(t, "sbatch", scheduler.Command{Name: "sbatch"}.String())
}

func TestSubmittedError(t *testing.T) {
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded} {
		err := error(&scheduler.SubmittedError{ID: "17", Err: cause})
		assert.EqualError(t, err, "job 17 was submitted, but "+cause.Error())
		assert.ErrorIs(t, err, cause)
		var se *scheduler.SubmittedError
		require.ErrorAs(t, fmt.Errorf("running the workflow: %w", err), &se)
		assert.Equal(t, scheduler.JobID("17"), se.ID)
	}
}
