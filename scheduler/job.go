package scheduler

import (
	"errors"
	"fmt"
	"path"
	"strconv"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/envvar"
)

// JobID identifies a job to its scheduler: "123" for a job or an array job, "123.4" for one task of an array.
type JobID string

// MachinefileArg stands for "the machinefile this job gets" in Job.Command. An argument exactly equal to it
// becomes the path of the file the jobscript writes from the allocation (rendered as the double-quoted
// expansion "$HPCSHIP_MACHINEFILE", so the job sees the path, not the word); no other argument is
// interpreted. Pass it where a launcher takes its host file, as mpi.Launch's MachineFile. A Script payload
// reads the same path from the environment variable HPCSHIP_MACHINEFILE.
const MachinefileArg = "$HPCSHIP_MACHINEFILE"

// DefaultMachinefileName is the machinefile's name inside the job's temporary directory when
// Machinefile.Name is empty. It differs from "machines", which Grid Engine's startmpi.sh writes.
const DefaultMachinefileName = "hpcship_machines"

// MachinefileFormat says how the machinefile lists the hosts of a parallel job.
type MachinefileFormat int

const (
	// MachinefileHosts lists each host once, in allocation order: what `uniq $TMPDIR/machines` gives and
	// what `mpirun -machinefile … -ppn N` expects.
	MachinefileHosts MachinefileFormat = iota
	// MachinefileHostSlots lists each host once as "host:slots", the form of hydra's `-f`.
	MachinefileHostSlots
	// MachinefileSlots lists each host once per slot, as startmpi.sh without -unique does.
	MachinefileSlots
	// MachinefileOpenMPI lists each host once as "host slots=N", the form of Open MPI's --hostfile.
	MachinefileOpenMPI
)

// String returns the format's name.
func (f MachinefileFormat) String() string {
	switch f {
	case MachinefileHosts:
		return "hosts"
	case MachinefileHostSlots:
		return "host:slots"
	case MachinefileSlots:
		return "slots"
	case MachinefileOpenMPI:
		return "host slots=N"
	}
	return fmt.Sprintf("MachinefileFormat(%d)", int(f))
}

// Machinefile says where and how a parallel job's jobscript writes its hosts before the payload runs.
type Machinefile struct {
	// Name is the file's name in the job's temporary directory. The default is DefaultMachinefileName.
	Name string
	// Format is the file's layout. The default is MachinefileHosts.
	Format MachinefileFormat
}

// ArrayRange makes a job an array of tasks numbered First, First+Step, … up to Last.
type ArrayRange struct {
	First, Last, Step int
	// MaxRunning caps how many tasks run at once; zero means no cap.
	MaxRunning int
}

// Job describes one batch job independently of the scheduler that runs it. Exactly one of Script and
// Command is the payload. Every string is taken literally: values are quoted or validated by the backend,
// never interpreted by a shell, except Script, which is bash source.
type Job struct {
	// Name is the job's name. Backends restrict it (Grid Engine: printable ASCII without spaces, not
	// starting with a digit); a bad name is an error before anything is submitted.
	Name string
	// Script is a bash script body run as the payload.
	Script string
	// Command is the payload as an argument vector; the first element is the program.
	Command []string

	// ParallelEnv is the parallel environment (Grid Engine) of a multi-slot job, Slots its slot count. When
	// Command is an MPI launcher (a program named mpirun… or mpiexec…), Validate refuses a rank count
	// (-np N or -n N, the first one in Command) above Slots.
	ParallelEnv string
	Slots       int
	// Machinefile says where the hosts of a parallel job are written; see MachinefileArg.
	Machinefile Machinefile

	// Queue is the queue (Grid Engine) or partition (Slurm) to run in.
	Queue string
	// Walltime is the hard run-time limit; zero means none.
	Walltime time.Duration
	// MemoryPerSlot is the hard memory limit per slot in bytes; zero means none.
	MemoryPerSlot int64
	// Exclusive asks for whole nodes.
	Exclusive bool
	// Resources are further resource requests, name to value, in the backend's terms.
	Resources map[string]string

	// WorkDir is the absolute directory the job runs in; empty means the directory the submit command
	// runs in.
	WorkDir string
	// Stdout and Stderr are the paths of the job's output files; empty means the scheduler's default.
	Stdout, Stderr string
	// JoinOutput sends stderr to Stdout.
	JoinOutput bool

	// Source lists shell files the jobscript sources before the payload, such as an MPI's mpivars.sh.
	Source []string
	// Env is exported to the payload, as "NAME=VALUE" entries in the form of exec.Cmd.Env: names must be
	// shell variable names, values are any bytes but NUL. The jobscript exports them in this order, so a
	// later entry for a name wins, and the output of mpi's Config.Env can be appended as it is. Backends
	// whose jobscript is bash refuse the variables bash sets itself (PIPESTATUS, SHLVL, …). The values
	// are written into the jobscript, which the scheduler keeps and shows to its administrators: pass
	// secrets in files only the job's user can read, not here.
	Env []string
	// ExportSubmitEnv exports the whole environment of the submit command as well.
	ExportSubmitEnv bool
	// Shell is the absolute path of the bash that runs the jobscript. Empty means /bin/bash.
	Shell string

	// Array makes the job an array job.
	Array *ArrayRange
	// HoldJobs are jobs that must end before this one starts.
	HoldJobs []JobID
	// Hold submits the job in a user hold.
	Hold bool
	// Project and Account are the job's project and accounting string.
	Project, Account string

	// Native are backend-specific arguments added to the submit command line as they are.
	Native []string
}

// ErrInvalidJob is wrapped by every error that rejects a Job before it is submitted.
var ErrInvalidJob = errors.New("invalid job")

// JobError rejects one field of a Job. Reason never contains the field's value, which may be a secret.
type JobError struct {
	Field  string
	Reason string
}

func (e *JobError) Error() string { return fmt.Sprintf("invalid job: %s: %s", e.Field, e.Reason) }

// Unwrap returns ErrInvalidJob.
func (e *JobError) Unwrap() error { return ErrInvalidJob }

// usesMachinefile reports whether the job's command refers to MachinefileArg.
func (j *Job) usesMachinefile() bool {
	for _, a := range j.Command {
		if a == MachinefileArg {
			return true
		}
	}
	return false
}

// Validate checks what every backend requires of a Job and returns a *JobError for the first problem, in
// field order and, within a list, by position.
func (j *Job) Validate() error {
	bad := func(field, format string, args ...any) error {
		return &JobError{Field: field, Reason: fmt.Sprintf(format, args...)}
	}
	switch {
	case j.Script == "" && len(j.Command) == 0:
		return bad("Script", "a job needs a Script or a Command")
	case j.Script != "" && len(j.Command) > 0:
		return bad("Command", "a job has a Script or a Command, not both")
	case len(j.Command) > 0 && j.Command[0] == "":
		return bad("Command", "the program is empty")
	case strings.IndexByte(j.Script, 0) >= 0:
		return bad("Script", "holds a NUL byte")
	}
	for i, a := range j.Command {
		if strings.IndexByte(a, 0) >= 0 {
			return bad(fmt.Sprintf("Command[%d]", i), "holds a NUL byte")
		}
	}
	for i, f := range j.Source {
		if f == "" || strings.IndexByte(f, 0) >= 0 {
			return bad(fmt.Sprintf("Source[%d]", i), "must be a non-empty path without NUL bytes")
		}
	}
	switch {
	case j.Slots < 0:
		return bad("Slots", "negative: %d", j.Slots)
	case j.ParallelEnv != "" && j.Slots == 0:
		return bad("Slots", "a parallel environment needs a slot count")
	case j.ParallelEnv == "" && j.Slots > 0:
		return bad("ParallelEnv", "a slot count needs a parallel environment")
	case j.ParallelEnv == "" && j.usesMachinefile():
		return bad("Command", "%s needs a parallel environment", MachinefileArg)
	case j.Machinefile.Format < MachinefileHosts || j.Machinefile.Format > MachinefileOpenMPI:
		return bad("Machinefile.Format", "unknown format %d", int(j.Machinefile.Format))
	case j.Machinefile.Name != "" && !isFileName(j.Machinefile.Name):
		return bad("Machinefile.Name", "must be a plain file name of letters, digits, '.', '_' and '-'")
	case j.Walltime < 0:
		return bad("Walltime", "negative")
	case j.MemoryPerSlot < 0:
		return bad("MemoryPerSlot", "negative")
	case j.Shell != "" && !strings.HasPrefix(j.Shell, "/"):
		return bad("Shell", "must be an absolute path")
	case j.WorkDir != "" && !strings.HasPrefix(j.WorkDir, "/"):
		return bad("WorkDir", "must be an absolute path")
	}
	if n, ok := launcherRanks(j.Command); ok && j.Slots > 0 && n > j.Slots {
		return bad("Command", "the launcher starts %d ranks, more than the job's %d slots", n, j.Slots)
	}
	for i, kv := range j.Env {
		if _, _, err := envvar.Split(kv); err != nil {
			return bad(fmt.Sprintf("Env[%d]", i), "%s", err)
		}
	}
	if a := j.Array; a != nil {
		switch {
		case a.First < 1:
			return bad("Array.First", "task ids start at 1, got %d", a.First)
		case a.Last < a.First:
			return bad("Array.Last", "%d is before the first task %d", a.Last, a.First)
		case a.Step < 1:
			return bad("Array.Step", "must be positive, got %d", a.Step)
		case a.MaxRunning < 0:
			return bad("Array.MaxRunning", "negative")
		}
	}
	for i, id := range j.HoldJobs {
		if id == "" {
			return bad(fmt.Sprintf("HoldJobs[%d]", i), "empty job id")
		}
	}
	return nil
}

// launcherRanks returns the rank count an MPI launcher command asks for: the value of the first -np or -n
// in argv when the program is named mpirun… or mpiexec… (mpirun, mpiexec.hydra, mpirun.openmpi). Any other
// command, or a count that is not a number, gives false: the launcher itself reports those.
func launcherRanks(argv []string) (int, bool) {
	if len(argv) == 0 {
		return 0, false
	}
	prog := path.Base(argv[0])
	if !strings.HasPrefix(prog, "mpirun") && !strings.HasPrefix(prog, "mpiexec") {
		return 0, false
	}
	for i := 1; i+1 < len(argv); i++ {
		if argv[i] == "-np" || argv[i] == "-n" {
			n, err := strconv.Atoi(argv[i+1])
			return n, err == nil
		}
	}
	return 0, false
}

func isFileName(s string) bool {
	if s == "" || s == "." || s == ".." {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("._-", c) >= 0) {
			return false
		}
	}
	return true
}
