package sge

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
// scheduler.MachinefileArg in the command; a $PE_HOSTFILE outside ParsePEHostfile's bounds ends the job
// with status 1 and the reason on its stderr. It sources Job.Source and exports Job.Env in their order, and
// runs Command with every word quoted (the program also when it is a bash reserved word such as time) or
// Script in a subshell. It exits with the payload's status, except that 99 and 100 become
// RemappedExitCode.
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
	b.WriteString(jobscript.TmpDir())
	if j.ParallelEnv != "" {
		b.WriteString(jobscript.Machinefile(&j, "PE_HOSTFILE"))
	}
	b.WriteString(jobscript.Setup(&j))
	b.WriteString(jobscript.Payload(&j, jobscript.Exit{
		Reserved: []int{99, 100},
		Instead:  RemappedExitCode,
		Why:      "as Grid Engine reserves 99 and 100",
		Comment:  "Grid Engine requeues a job that exits 99 and puts one that exits 100 into the error state Eqw.",
	}))
	return []byte(b.String()), nil
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
