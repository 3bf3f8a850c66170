package sge

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hpcship/hpcship/internal/cmdrun"
)

// Command is one Grid Engine client command to run.
type Command struct {
	// Name is the program, such as "qsub".
	Name string
	Args []string
	// Env holds "NAME=value" entries added to the environment the runner gives commands.
	Env []string
	// Stdin is the command's standard input; nil means none.
	Stdin []byte
}

// Output is what a command printed and how it exited.
type Output struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Runner runs Grid Engine client commands. It returns an error only when the command could not run at all
// (not found, ctx ended); a command that ran and failed reports its ExitCode. A runner can prefix commands
// (sudo, runuser) or send them to a submit host over SSH.
type Runner interface {
	Run(ctx context.Context, c Command) (Output, error)
}

// LocalRunner runs commands on this machine, with this process's environment plus Command.Env. Each
// command runs in a process group of its own, which is killed as a whole when ctx ends, so that a wrapper
// (sudo, runuser, a settings script) cannot leave the Grid Engine command running and holding its output.
type LocalRunner struct{}

// Run implements Runner.
func (LocalRunner) Run(ctx context.Context, c Command) (Output, error) {
	var env []string
	if len(c.Env) > 0 {
		env = append(os.Environ(), c.Env...)
	}
	res, err := cmdrun.Run(ctx, c.Name, c.Args, env, c.Stdin)
	return Output(res), err
}

// CommandError is a Grid Engine command that exited non-zero, such as qsub rejecting a job.
type CommandError struct {
	// Command is the program and its arguments, without the jobscript.
	Command  string
	ExitCode int
	// Stderr is what the command printed on stderr, trimmed and cut to 4 KiB.
	Stderr string
}

func (e *CommandError) Error() string {
	msg := strings.Join(strings.Fields(e.Stderr), " ")
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.ExitCode, msg)
}

func newCommandError(c Command, out Output) *CommandError {
	return &CommandError{Command: strings.Join(append([]string{c.Name}, c.Args...), " "), ExitCode: out.ExitCode,
		Stderr: cmdrun.Message(out.Stdout, out.Stderr)}
}
