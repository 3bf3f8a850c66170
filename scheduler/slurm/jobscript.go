package slurm

import (
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/jobscript"
	"github.com/hpcship/hpcship/scheduler"
)

// Jobscript renders j as a bash jobscript with #SBATCH directives: the script Submit passes to sbatch. Every
// directive value is checked against sbatch's parsing rules and quoted for them; a rejected value gives an
// error wrapping scheduler.ErrInvalidJob. The Job maps onto sbatch options as follows:
//
//	Name            --job-name          Walltime       --time (rounded up to a second)
//	Queue           --partition         MemoryPerSlot  --mem-per-cpu (rounded up to a MiB)
//	Slots           --ntasks            Exclusive      --exclusive
//	WorkDir         --chdir             Resources      --NAME=VALUE, for sbatch's resource options
//	Stdout, Stderr  --output, --error   ExportSubmitEnv --export=ALL, else --export=NONE
//	Array           --array             HoldJobs       --dependency=afterany:ID:…
//	Hold            --hold              Account        --account
//	Native          one #SBATCH line of its own, each argument quoted
//
// ParallelEnv names Grid Engine's parallel environment and has no Slurm counterpart: it is checked but not
// rendered. Project has none either and is refused. Output paths keep Slurm's patterns (%j, %A, %a, …). With
// JoinOutput, or without Stderr, Slurm writes stderr to the output file.
//
// The script makes a private directory for the job (mktemp under $TMPDIR, else /tmp, which Slurm shares
// between jobs) and removes it on exit. For a parallel job it writes the machinefile there from
// $SLURM_JOB_NODELIST (expanded by `scontrol show hostnames`, at most MaxHostlistHosts hosts) and
// $SLURM_TASKS_PER_NODE, exports its path as HPCSHIP_MACHINEFILE and puts it in place of
// scheduler.MachinefileArg in the command; an allocation outside those bounds or the shared machinefile
// bounds of the Grid Engine backend ends the job with status 1 and the reason on its stderr. It sets
// SLURM_EXPORT_ENV=ALL, so that srun steps see the jobscript's environment even in a job submitted with
// --export=NONE. It sources Job.Source and exports Job.Env in their order and runs the payload exactly as
// the Grid Engine backend does, and exits with the payload's status: Slurm reserves none.
func (s *Slurm) Jobscript(j scheduler.Job) ([]byte, error) {
	if err := s.validate(&j); err != nil {
		return nil, err
	}
	var b strings.Builder
	b.WriteString("#!" + shellPath(&j) + "\n")
	for _, d := range directives(&j) {
		b.WriteString("#SBATCH " + d + "\n")
	}
	if len(j.Native) > 0 {
		words := make([]string, len(j.Native))
		for i, a := range j.Native {
			words[i] = quoteDirective(a)
		}
		b.WriteString("#SBATCH " + strings.Join(words, " ") + "\n")
	}
	b.WriteString(`
# Slurm's TMPDIR (/tmp unless the site sets one) is shared between jobs, and srun steps on other nodes use
# it as well: this job's own files go to a private directory instead, removed on exit.
hpcship_jobdir=$(mktemp -d "${TMPDIR:-/tmp}/hpcship.${SLURM_JOB_ID:-job}.XXXXXXXXXX") || exit 1
trap 'rm -rf "$hpcship_jobdir"' EXIT
# srun steps see the jobscript's environment, also in a job submitted with --export=NONE.
export SLURM_EXPORT_ENV=ALL
`)
	if j.ParallelEnv != "" {
		b.WriteString(allocationBlock())
		// The shared block writes the machinefile to $TMPDIR: point it at the private directory meanwhile.
		b.WriteString(`hpcship_tmpdir_set=${TMPDIR+set} hpcship_tmpdir=${TMPDIR-}
TMPDIR=$hpcship_jobdir
`)
		b.WriteString(jobscript.Machinefile(&j, "hpcship_allocation"))
		b.WriteString(`if [ -n "$hpcship_tmpdir_set" ]; then TMPDIR=$hpcship_tmpdir; else unset TMPDIR; fi
`)
	}
	b.WriteString(jobscript.Setup(&j))
	b.WriteString(jobscript.Payload(&j, jobscript.Exit{}))
	return []byte(b.String()), nil
}

// allocationBlock writes the job's allocation as "host tasks" lines, the form of Grid Engine's $PE_HOSTFILE
// that the shared machinefile block reads, to $hpcship_allocation: the hosts of $SLURM_JOB_NODELIST
// (expanded by `scontrol show hostnames`, at most MaxHostlistHosts) with the counts of $SLURM_TASKS_PER_NODE
// (as ParseTasksPerNode reads them), or one task per host without a task count.
func allocationBlock() string {
	return strings.NewReplacer(
		"@MAXHOSTS@", strconv.Itoa(MaxHostlistHosts),
		"@MAXTASKS@", strconv.Itoa(maxNodeTasks),
	).Replace(`
# The allocation, from $SLURM_JOB_NODELIST ("node[01-04,07]", expanded by scontrol) and $SLURM_TASKS_PER_NODE
# ("2(x3),1": the tasks on each node, in the same order), as "host tasks" lines.
hpcship_allocation="$hpcship_jobdir/allocation"
if [ -z "${SLURM_JOB_NODELIST:-}" ]; then
	echo "hpcship: no \$SLURM_JOB_NODELIST in a parallel job" >&2
	exit 1
fi
hpcship_hosts=()
while IFS= read -r hpcship_host; do
	[ -n "$hpcship_host" ] || continue
	if [ ${#hpcship_hosts[@]} -ge @MAXHOSTS@ ]; then
		echo "hpcship: \$SLURM_JOB_NODELIST has more than @MAXHOSTS@ hosts" >&2
		exit 1
	fi
	hpcship_hosts+=("$hpcship_host")
done < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
if [ ${#hpcship_hosts[@]} -eq 0 ]; then
	echo "hpcship: scontrol show hostnames listed no host for $SLURM_JOB_NODELIST" >&2
	exit 1
fi
hpcship_tasks=()
IFS=, read -r -a hpcship_parts <<<"${SLURM_TASKS_PER_NODE:-}"
for hpcship_part in "${hpcship_parts[@]}"; do
	hpcship_count=${hpcship_part%%(*} hpcship_repeat=1
	case $hpcship_part in
	*'(x'*')') hpcship_repeat=${hpcship_part#*(x} hpcship_repeat=${hpcship_repeat%)} ;;
	*'('*) hpcship_repeat=bad ;;
	esac
	case $hpcship_count:$hpcship_repeat in
	:* | *: | *[!0-9:]* | ????????*:* | *:????????*)
		echo "hpcship: bad \$SLURM_TASKS_PER_NODE: $SLURM_TASKS_PER_NODE" >&2
		exit 1
		;;
	esac
	if ((10#$hpcship_count < 1 || 10#$hpcship_count > @MAXTASKS@ || 10#$hpcship_repeat < 1 ||
		10#$hpcship_repeat > ${#hpcship_hosts[@]} - ${#hpcship_tasks[@]})); then
		echo "hpcship: \$SLURM_TASKS_PER_NODE $SLURM_TASKS_PER_NODE does not fit the ${#hpcship_hosts[@]} hosts" >&2
		exit 1
	fi
	for ((hpcship_i = 0; hpcship_i < 10#$hpcship_repeat; hpcship_i++)); do
		hpcship_tasks+=($((10#$hpcship_count)))
	done
done
if [ ${#hpcship_tasks[@]} -eq 0 ]; then
	for hpcship_host in "${hpcship_hosts[@]}"; do
		hpcship_tasks+=(1)
	done
elif [ ${#hpcship_tasks[@]} -ne ${#hpcship_hosts[@]} ]; then
	echo "hpcship: ${#hpcship_tasks[@]} task counts in \$SLURM_TASKS_PER_NODE for ${#hpcship_hosts[@]} hosts" >&2
	exit 1
fi
for hpcship_i in "${!hpcship_hosts[@]}"; do
	printf '%s %s\n' "${hpcship_hosts[hpcship_i]}" "${hpcship_tasks[hpcship_i]}"
done >"$hpcship_allocation" || exit 1
`)
}

// directives returns the #SBATCH options for a validated job, in a fixed order.
func directives(j *scheduler.Job) []string {
	var d []string
	opt := func(name, value string) { d = append(d, "--"+name+"="+quoteDirective(value)) }
	if j.Name != "" {
		opt("job-name", j.Name)
	}
	if j.WorkDir != "" {
		opt("chdir", j.WorkDir)
	}
	if j.Slots > 0 {
		d = append(d, "--ntasks="+strconv.Itoa(j.Slots))
	}
	if j.Queue != "" {
		opt("partition", j.Queue)
	}
	if j.Walltime > 0 {
		d = append(d, "--time="+walltime(j.Walltime))
	}
	if j.MemoryPerSlot > 0 {
		d = append(d, "--mem-per-cpu="+memory(j.MemoryPerSlot))
	}
	if j.Exclusive {
		d = append(d, "--exclusive")
	}
	for _, k := range slices.Sorted(maps.Keys(j.Resources)) {
		opt(k, j.Resources[k])
	}
	if j.Stdout != "" {
		opt("output", j.Stdout)
	}
	if j.Stderr != "" {
		opt("error", j.Stderr)
	}
	if j.ExportSubmitEnv {
		d = append(d, "--export=ALL")
	} else {
		d = append(d, "--export=NONE")
	}
	if a := j.Array; a != nil {
		spec := fmt.Sprintf("%d-%d:%d", a.First, a.Last, a.Step)
		if a.MaxRunning > 0 {
			spec += "%" + strconv.Itoa(a.MaxRunning)
		}
		d = append(d, "--array="+spec)
	}
	if len(j.HoldJobs) > 0 {
		ids := make([]string, len(j.HoldJobs))
		for i, id := range j.HoldJobs {
			ids[i] = string(id)
		}
		d = append(d, "--dependency=afterany:"+strings.Join(ids, ":"))
	}
	if j.Hold {
		d = append(d, "--hold")
	}
	if j.Account != "" {
		opt("account", j.Account)
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

// walltime renders d in sbatch's "days-hours:minutes:seconds", rounding up to a whole second. Slurm itself
// rounds a limit up to whole minutes.
func walltime(d time.Duration) string {
	s := int64((d + time.Second - 1) / time.Second)
	if days := s / 86400; days > 0 {
		return fmt.Sprintf("%d-%02d:%02d:%02d", days, s/3600%24, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
}

// memory renders n bytes in sbatch's units (M, G and T are powers of 1024), rounded up to a whole MiB, with
// the largest unit that divides it.
func memory(n int64) string {
	mib := (n + 1<<20 - 1) >> 20
	switch {
	case mib%(1<<20) == 0:
		return strconv.FormatInt(mib>>20, 10) + "T"
	case mib%(1<<10) == 0:
		return strconv.FormatInt(mib>>10, 10) + "G"
	}
	return strconv.FormatInt(mib, 10) + "M"
}
