// Package cmdrun runs the client commands of a batch system (qsub, sbatch, …) on this machine, for
// scheduler.LocalRunner, which scheduler/sge and scheduler/slurm use by default: one way to start a command, kill it with everything it started
// when its context ends, and tell "ran and failed" from "could not run".
package cmdrun

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"strings"
	"syscall"
	"time"
)

// waitDelay bounds how long Run waits for the output of a killed command.
const waitDelay = 5 * time.Second

// maxMessage bounds Message's result.
const maxMessage = 4 << 10

// Result is what a command printed and how it exited.
type Result struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Run runs name with args, the environment env (nil: this process's) and stdin (nil: none). The command runs
// in a process group of its own, which is killed as a whole when ctx ends, so that a wrapper (sudo, runuser, a
// settings script) cannot leave the client command running and holding its output. It returns an error only
// when the command could not run or ctx ended; a command that ran and failed reports its ExitCode.
func Run(ctx context.Context, name string, args, env []string, stdin []byte) (Result, error) {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = waitDelay
	cmd.Env = env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	res := Result{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	switch {
	case err == nil:
	case ctx.Err() != nil:
		return res, fmt.Errorf("running %s: %w", name, ctx.Err())
	case errors.As(err, &exit) && exit.ExitCode() >= 0:
		res.ExitCode = exit.ExitCode()
	default:
		return res, fmt.Errorf("running %s: %w", name, err)
	}
	return res, nil
}

// Message is what a failed command said: its stderr trimmed, or its stdout where stderr is empty (qstat and
// qdel report some failures there), cut to 4 KiB.
func Message(stdout, stderr []byte) string {
	msg := strings.TrimSpace(string(stderr))
	if msg == "" {
		msg = strings.TrimSpace(string(stdout))
	}
	if len(msg) > maxMessage {
		msg = msg[:maxMessage] + "…"
	}
	return msg
}
