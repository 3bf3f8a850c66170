package scheduler

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/hpcship/hpcship/internal/cmdrun"
)

// Command is one client command of a batch system to run, such as qsub or sbatch.
type Command struct {
	// Name is the program, such as "qsub".
	Name string
	Args []string
	// Env holds "NAME=value" entries added to the environment the runner gives commands.
	Env []string
	// UnsetPrefixes holds name prefixes, such as "SBATCH_": the runner gives the command its environment
	// less every variable whose name starts with one of them, then adds Env.
	UnsetPrefixes []string
	// Stdin is the command's standard input; nil means none.
	Stdin []byte
}

// String returns the program and its arguments separated by blanks, as errors and logs show them.
func (c Command) String() string {
	return strings.Join(append([]string{c.Name}, c.Args...), " ")
}

// Output is what a command printed and how it exited.
type Output struct {
	Stdout, Stderr []byte
	ExitCode       int
}

// Runner runs the client commands of a batch system for a backend such as scheduler/sge or scheduler/slurm.
// It returns an error only when the command could not run at all (not found, ctx ended); a command that ran
// and failed reports its ExitCode. A runner can prefix commands (sudo, runuser) or send them to a submit host
// or login node over SSH; one that hands its environment on honours Command.UnsetPrefixes.
type Runner interface {
	Run(ctx context.Context, c Command) (Output, error)
}

// LocalRunner runs commands on this machine, with this process's environment less Command.UnsetPrefixes,
// plus Command.Env. Each command runs in a process group of its own, which is killed as a whole when ctx
// ends, so that a wrapper (sudo, runuser, ssh, a settings script) cannot leave the client command running
// and holding its output.
type LocalRunner struct{}

// Run implements Runner.
func (LocalRunner) Run(ctx context.Context, c Command) (Output, error) {
	environ := os.Environ()
	// Never nil: a nil environment would make the command inherit the variables just removed.
	env := make([]string, 0, len(environ)+len(c.Env))
	for _, kv := range environ {
		if !hasAnyPrefix(kv, c.UnsetPrefixes) {
			env = append(env, kv)
		}
	}
	res, err := cmdrun.Run(ctx, c.Name, c.Args, append(env, c.Env...), c.Stdin)
	return Output(res), err
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}

// CommandError is a client command that exited non-zero, such as qsub or sbatch rejecting a job.
type CommandError struct {
	// Command is the program and its arguments, without the jobscript.
	Command  string
	ExitCode int
	// Stderr is what the command printed on stderr (or on stdout where stderr was empty), trimmed and cut
	// to 4 KiB.
	Stderr string
}

// NewCommandError returns the error of c, which ran and exited non-zero with out.
func NewCommandError(c Command, out Output) *CommandError {
	return &CommandError{Command: c.String(), ExitCode: out.ExitCode, Stderr: cmdrun.Message(out.Stdout, out.Stderr)}
}

func (e *CommandError) Error() string {
	msg := strings.Join(strings.Fields(e.Stderr), " ")
	if msg == "" {
		msg = "no error output"
	}
	return fmt.Sprintf("%s exited %d: %s", e.Command, e.ExitCode, msg)
}
