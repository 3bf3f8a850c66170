package sge

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/shellquote"
	"github.com/hpcship/hpcship/scheduler"
)

// RemappedExitCode is the exit status a jobscript gives Grid Engine when its payload exits 99 or 100:
// Grid Engine requeues a job that exits 99 and leaves one that exits 100 in the error state Eqw, where it
// holds up every job that depends on it. The jobscript prints the payload's own status on stderr.
const RemappedExitCode = 1

// Jobscript renders j as a bash jobscript with #$ directives: the script Submit passes to qsub. Every value
// is validated against Grid Engine's rules or shell-quoted; a rejected value gives an error wrapping
// scheduler.ErrInvalidJob.
//
// The script runs the payload in the job's temporary directory setup: it uses $TMPDIR (which Grid Engine
// does not set for root-owned jobs) or makes one with mktemp. For a parallel job it writes the machinefile
// from $PE_HOSTFILE into $TMPDIR, exports its path as HPCSHIP_MACHINEFILE and puts it in place of
// scheduler.MachinefileArg in the command. It exits with the payload's status, except that 99 and 100
// become RemappedExitCode.
func (s *SGE) Jobscript(j scheduler.Job) ([]byte, error) {
	if err := s.validate(&j); err != nil {
		return nil, err
	}
	var b strings.Builder
	// The #! line counts where the queue's shell_start_mode is unix_behavior; -S where it is posix_compliant.
	b.WriteString("#!" + shellPath(&j) + "\n")
	for _, d := range directives(&j) {
		b.WriteString("#$ " + d + "\n")
	}
	b.WriteString(`
# Grid Engine gives jobs of ordinary users a private TMPDIR; make one where it does not.
if [ -z "${TMPDIR:-}" ] || [ ! -d "$TMPDIR" ] || [ ! -w "$TMPDIR" ]; then
	TMPDIR=$(mktemp -d /tmp/hpcship.XXXXXXXXXX) || exit 1
	hpcship_tmpdir=$TMPDIR
	trap 'rm -rf "$hpcship_tmpdir"' EXIT
fi
export TMPDIR
`)
	if j.ParallelEnv != "" {
		b.WriteString(machinefileBlock(&j))
	}
	if len(j.Source) > 0 || len(j.Env) > 0 {
		b.WriteString("\n")
	}
	for _, f := range j.Source {
		q, _ := shellquote.Quote(f) // validate rejected NUL bytes
		b.WriteString("source " + q + "\n")
	}
	for _, name := range slices.Sorted(maps.Keys(j.Env)) {
		q, _ := shellquote.Quote(j.Env[name])
		b.WriteString("export " + name + "=" + q + "\n")
	}
	// The payload's status is taken with "||", so that a "set -e" from a sourced file (or SHELLOPTS in the
	// environment) cannot end the jobscript with a status of 99 or 100 before the remapping below.
	b.WriteString("\nhpcship_status=0\n")
	if j.Script != "" {
		body := j.Script
		if !strings.HasSuffix(body, "\n") {
			body += "\n"
		}
		// A subshell, so that an exit in the script still reaches the exit status handling below.
		b.WriteString("(\n" + body + ") || hpcship_status=$?\n")
	} else {
		words := make([]string, len(j.Command))
		for i, a := range j.Command {
			if a == scheduler.MachinefileArg {
				// Not "$TMPDIR/…": Env or a sourced file may set TMPDIR after the machinefile was written.
				words[i] = `"$HPCSHIP_MACHINEFILE"`
				continue
			}
			words[i], _ = shellquote.Quote(a)
		}
		b.WriteString(strings.Join(words, " ") + " || hpcship_status=$?\n")
	}
	fmt.Fprintf(&b, `# Grid Engine requeues a job that exits 99 and puts one that exits 100 into the error state Eqw.
if [ "$hpcship_status" -eq 99 ] || [ "$hpcship_status" -eq 100 ]; then
	echo "hpcship: the payload exited $hpcship_status; the job exits %[1]d instead, as Grid Engine reserves 99 and 100" >&2
	hpcship_status=%[1]d
fi
exit "$hpcship_status"
`, RemappedExitCode)
	return []byte(b.String()), nil
}

// machinefileBlock writes the hosts of $PE_HOSTFILE in the job's machinefile format.
func machinefileBlock(j *scheduler.Job) string {
	var b strings.Builder
	b.WriteString(`
# The machinefile (` + j.Machinefile.Format.String() + `), from $PE_HOSTFILE: one "host slots queue processors" line
# per host. $TMPDIR/machines exists only where the parallel environment runs startmpi.sh.
export HPCSHIP_MACHINEFILE="$TMPDIR/` + j.MachinefileName() + `"
if [ ! -r "${PE_HOSTFILE:-}" ]; then
	echo "hpcship: no readable \$PE_HOSTFILE in a parallel job" >&2
	exit 1
fi
hpcship_hosts=()
declare -A hpcship_host_slots=()
while read -r hpcship_host hpcship_slots _ || [ -n "$hpcship_host" ]; do
	[ -n "$hpcship_host" ] || continue
	case $hpcship_slots in
	'' | *[!0-9]*)
		echo "hpcship: bad slot count in $PE_HOSTFILE: $hpcship_slots" >&2
		exit 1
		;;
	esac
`)
	if j.Machinefile.Format == scheduler.MachinefileSlots {
		b.WriteString(`	for ((hpcship_i = 0; hpcship_i < 10#$hpcship_slots; hpcship_i++)); do
		printf '%s\n' "$hpcship_host"
	done
done <"$PE_HOSTFILE" >"$HPCSHIP_MACHINEFILE" || exit 1
`)
		return b.String()
	}
	line := `'%s\n' "$hpcship_host"`
	if j.Machinefile.Format == scheduler.MachinefileHostSlots {
		line = `'%s:%s\n' "$hpcship_host" "${hpcship_host_slots[$hpcship_host]}"`
	}
	b.WriteString(`	[ -n "${hpcship_host_slots[$hpcship_host]+set}" ] || hpcship_hosts+=("$hpcship_host")
	hpcship_host_slots[$hpcship_host]=$((${hpcship_host_slots[$hpcship_host]:-0} + 10#$hpcship_slots))
done <"$PE_HOSTFILE"
for hpcship_host in "${hpcship_hosts[@]}"; do
	printf ` + line + `
done >"$HPCSHIP_MACHINEFILE" || exit 1
`)
	return b.String()
}

// directives returns the #$ options for a validated job, in a fixed order.
func directives(j *scheduler.Job) []string {
	var d []string
	if j.Name != "" {
		d = append(d, "-N "+j.Name)
	}
	d = append(d, "-S "+shellPath(j))
	if j.WorkDir != "" {
		d = append(d, "-wd "+j.WorkDir)
	} else {
		d = append(d, "-cwd")
	}
	if j.ParallelEnv != "" {
		d = append(d, fmt.Sprintf("-pe %s %d", j.ParallelEnv, j.Slots))
	}
	if j.Queue != "" {
		d = append(d, "-q "+j.Queue)
	}
	if j.Walltime > 0 {
		d = append(d, "-l h_rt="+walltime(j.Walltime))
	}
	if j.MemoryPerSlot > 0 {
		d = append(d, "-l h_vmem="+memory(j.MemoryPerSlot))
	}
	if j.Exclusive {
		d = append(d, "-l exclusive=true")
	}
	for _, k := range slices.Sorted(maps.Keys(j.Resources)) {
		d = append(d, "-l "+k+"="+j.Resources[k])
	}
	if j.Stdout != "" {
		d = append(d, "-o "+j.Stdout)
	}
	if j.Stderr != "" {
		d = append(d, "-e "+j.Stderr)
	}
	if j.JoinOutput {
		d = append(d, "-j y")
	}
	if j.ExportSubmitEnv {
		d = append(d, "-V")
	}
	if a := j.Array; a != nil {
		d = append(d, fmt.Sprintf("-t %d-%d:%d", a.First, a.Last, a.Step))
		if a.MaxRunning > 0 {
			d = append(d, "-tc "+strconv.Itoa(a.MaxRunning))
		}
	}
	if len(j.HoldJobs) > 0 {
		ids := make([]string, len(j.HoldJobs))
		for i, id := range j.HoldJobs {
			ids[i] = string(id)
		}
		d = append(d, "-hold_jid "+strings.Join(ids, ","))
	}
	if j.Hold {
		d = append(d, "-h")
	}
	if j.Project != "" {
		d = append(d, "-P "+j.Project)
	}
	if j.Account != "" {
		d = append(d, "-A "+j.Account)
	}
	return d
}

// shellPath returns the bash that runs the jobscript.
func shellPath(j *scheduler.Job) string {
	if j.Shell == "" {
		return "/bin/bash"
	}
	return j.Shell
}

// walltime renders d as h_rt's hours:minutes:seconds, rounding up to a whole second.
func walltime(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// memory renders n bytes with the largest binary suffix Grid Engine knows (K, M, G are powers of 1024)
// that divides it.
func memory(n int64) string {
	for _, u := range []struct {
		suffix string
		size   int64
	}{{"G", 1 << 30}, {"M", 1 << 20}, {"K", 1 << 10}} {
		if n%u.size == 0 {
			return strconv.FormatInt(n/u.size, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}
