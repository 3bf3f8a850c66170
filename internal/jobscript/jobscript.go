// Package jobscript renders the parts of a bash jobscript that do not depend on the batch system, so that
// every scheduler backend (scheduler/sge, scheduler/slurm) writes them the same way: the private TMPDIR, the
// machinefile written from the allocation, sourced files, the exported environment, the payload (a quoted
// command or a script in a subshell) with its exit status, and the remapping of exit statuses the batch
// system reserves. A backend adds its directives in front and says where the allocation comes from.
//
//	#!/bin/bash
//	<directives>                     the backend's own (#$, #SBATCH)
//	TmpDir()                         $TMPDIR, or one made with mktemp and removed on exit
//	Machinefile(j, "PE_HOSTFILE")    "host slots …" lines → $HPCSHIP_MACHINEFILE, bounded
//	Setup(j)                         source …; export NAME=value (in Job.Env's order)
//	Payload(j, exit)                 the command or script, then the exit status, remapped
package jobscript

import (
	"fmt"
	"strings"

	"github.com/hpcship/hpcship/internal/shellquote"
	"github.com/hpcship/hpcship/scheduler"
)

// MachinefileVar is the environment variable holding the machinefile's path in a parallel job.
const MachinefileVar = "HPCSHIP_MACHINEFILE"

// TmpDir returns the block that gives the job a private, writable TMPDIR: the one the batch system set, or
// one made with mktemp and removed when the jobscript exits.
func TmpDir() string {
	return `
# Use the private TMPDIR the batch system gives the job (Grid Engine does, for ordinary users); make one where
# there is none.
if [ -z "${TMPDIR:-}" ] || [ ! -d "$TMPDIR" ] || [ ! -w "$TMPDIR" ]; then
	TMPDIR=$(mktemp -d /tmp/hpcship.XXXXXXXXXX) || exit 1
	hpcship_tmpdir=$TMPDIR
	trap 'rm -rf "$hpcship_tmpdir"' EXIT
fi
export TMPDIR
`
}

// Setup returns the lines that source j.Source and export j.Env, in their order. j must have passed
// Job.Validate and CheckEnv.
func Setup(j *scheduler.Job) string {
	if len(j.Source) == 0 && len(j.Env) == 0 {
		return ""
	}
	var b strings.Builder
	b.WriteString("\n")
	for _, f := range j.Source {
		q, _ := shellquote.Quote(f) // Validate rejected NUL bytes
		b.WriteString("source " + q + "\n")
	}
	for _, kv := range j.Env {
		name, value, _ := strings.Cut(kv, "=")
		q, _ := shellquote.Quote(value)
		b.WriteString("export " + name + "=" + q + "\n")
	}
	return b.String()
}

// Exit says which exit statuses of the payload the batch system reserves, and what the jobscript exits
// with instead.
type Exit struct {
	// Reserved are the statuses the jobscript must not exit with; empty means none.
	Reserved []int
	// Instead is the status the jobscript exits with when the payload exits with a reserved one.
	Instead int
	// Why ends the message on stderr that reports a remapped status, e.g. "as Grid Engine reserves 99 and
	// 100".
	Why string
	// Comment is the comment above the remapping, without "# ".
	Comment string
}

// Payload returns the lines that run j's payload and exit with its status, remapped as e says. The status is
// taken with "||", so that a "set -e" from a sourced file (or SHELLOPTS in the environment) cannot end the
// jobscript with a reserved status before the remapping; a Script runs in a subshell, so that its exit still
// reaches it.
func Payload(j *scheduler.Job, e Exit) string {
	var b strings.Builder
	b.WriteString("\nhpcship_status=0\n")
	if j.Script != "" {
		body := j.Script
		if !strings.HasSuffix(body, "\n") {
			body += "\n"
		}
		b.WriteString("(\n" + body + ") || hpcship_status=$?\n")
	} else {
		b.WriteString(Command(j.Command) + " || hpcship_status=$?\n")
	}
	if len(e.Reserved) > 0 {
		tests := make([]string, len(e.Reserved))
		codes := make([]string, len(e.Reserved))
		for i, c := range e.Reserved {
			tests[i] = fmt.Sprintf(`[ "$hpcship_status" -eq %d ]`, c)
			codes[i] = fmt.Sprint(c)
		}
		fmt.Fprintf(&b, `# %s
if %s; then
	echo "hpcship: the payload exited $hpcship_status; the job exits %d instead, %s" >&2
	hpcship_status=%[3]d
fi
`, e.Comment, strings.Join(tests, " || "), e.Instead, e.Why)
	}
	b.WriteString(`exit "$hpcship_status"` + "\n")
	return b.String()
}

// Command renders argv as a bash simple command that runs exactly argv: every word quoted as needed, the
// program also when it is one of bash's reserved words (a program named "time" or "if" runs, not the
// keyword), and scheduler.MachinefileArg as "$HPCSHIP_MACHINEFILE". argv must be free of NUL bytes.
func Command(argv []string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		switch {
		case a == scheduler.MachinefileArg:
			// Not "$TMPDIR/…": Env or a sourced file may set TMPDIR after the machinefile was written.
			words[i] = `"$` + MachinefileVar + `"`
		case i == 0 && isReservedWord(a):
			words[i] = "'" + a + "'"
		default:
			words[i], _ = shellquote.Quote(a)
		}
	}
	return strings.Join(words, " ")
}

// isReservedWord reports whether bash reads w as a reserved word when it stands first in a command and is
// unquoted (bash(1), RESERVED WORDS). The ones of punctuation are quoted by shellquote anyway.
func isReservedWord(w string) bool {
	switch w {
	case "!", "case", "coproc", "do", "done", "elif", "else", "esac", "fi", "for", "function", "if", "in",
		"select", "then", "until", "while", "{", "}", "time", "[[", "]]":
		return true
	}
	return false
}

// CheckEnv rejects the entries of a validated Job.Env that a bash jobscript cannot export as given, by
// position: the variables bash sets itself and the jobscript's own (HPCSHIP_MACHINEFILE, hpcship_…). The
// error is a *scheduler.JobError for field "Env[i]".
func CheckEnv(env []string) error {
	for i, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		var reason string
		switch {
		case bashSets(name):
			reason = name + " is set by bash itself; an export is lost or refused"
		case name == MachinefileVar || strings.HasPrefix(name, "hpcship_"):
			reason = name + " is reserved for the jobscript"
		default:
			continue
		}
		return &scheduler.JobError{Field: fmt.Sprintf("Env[%d]", i), Reason: reason}
	}
	return nil
}

// bashSets reports whether name is one of the variables bash's manual lists as "set by the shell" (bash 5.2,
// PARAMETERS, Shell Variables). Bash keeps some read-only (an export fails), recomputes others on every
// reference or command (BASH_COMMAND, LINENO, PIPESTATUS, which is an array once a command ran, and arrays
// are never exported), and sets the rest when it starts or changes directory; none reaches the payload
// reliably from an export.
func bashSets(name string) bool {
	switch name {
	case "_", "BASH", "BASHOPTS", "BASHPID", "BASH_ALIASES", "BASH_ARGC", "BASH_ARGV", "BASH_ARGV0",
		"BASH_CMDS", "BASH_COMMAND", "BASH_EXECUTION_STRING", "BASH_LINENO", "BASH_LOADABLES_PATH",
		"BASH_REMATCH", "BASH_SOURCE", "BASH_SUBSHELL", "BASH_VERSINFO", "BASH_VERSION", "COMP_CWORD",
		"COMP_KEY", "COMP_LINE", "COMP_POINT", "COMP_TYPE", "COMP_WORDBREAKS", "COMP_WORDS", "COPROC",
		"DIRSTACK", "EPOCHREALTIME", "EPOCHSECONDS", "EUID", "FUNCNAME", "GROUPS", "HISTCMD", "HOSTNAME",
		"HOSTTYPE", "LINENO", "MACHTYPE", "MAPFILE", "OLDPWD", "OPTARG", "OPTIND", "OSTYPE", "PIPESTATUS",
		"PPID", "PWD", "RANDOM", "READLINE_ARGUMENT", "READLINE_LINE", "READLINE_MARK", "READLINE_POINT",
		"REPLY", "SECONDS", "SHELLOPTS", "SHLVL", "SRANDOM", "UID":
		return true
	}
	return false
}
