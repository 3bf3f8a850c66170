package mpi

import (
	"slices"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// Flavor is an MPI implementation whose launcher Launch knows how to drive.
type Flavor int

// The launcher flavours.
const (
	// IntelMPI is Intel MPI's hydra mpirun/mpiexec.hydra.
	IntelMPI Flavor = iota + 1
	// MPICH is MPICH's hydra mpiexec (Debian's mpich package), which shares most of
	// Intel's options but rejects Intel-only ones such as -perhost and -rr.
	MPICH
	// OpenMPI is Open MPI's (and HPC-X's) mpirun.
	OpenMPI
)

func (f Flavor) String() string {
	switch f {
	case IntelMPI:
		return "Intel MPI"
	case MPICH:
		return "MPICH"
	case OpenMPI:
		return "Open MPI"
	}
	return "Flavor(" + strconv.Itoa(int(f)) + ")"
}

// mpichBootstraps are MPICH hydra's launchers (-launcher), from its configure.ac. Never
// modified.
var mpichBootstraps = []string{"ssh", "rsh", "fork", "slurm", "ll", "lsf", "sge", "pbs", "manual", "persist"}

// intelOnlyOptions are Intel MPI options MPICH hydra's parser rejects as "unrecognized
// argument", in the lower case MPICH matches them in (it strips leading dashes and
// compares case-insensitively). Never modified.
var intelOnlyOptions = []string{"perhost", "rr", "grr", "rdma", "dapl"}

// Launch is one MPI launch: the launcher, where and how many ranks to start, the
// environment every rank gets, an optional wrapper in between (a container runtime's
// exec argv), and the program. Argv renders it.
//
// In the hybrid model the launcher on the host starts one container per rank and the
// MPI library inside the container talks to it:
//
//	mpirun -machinefile hosts -np 2 -ppn 1  singularity exec image  IMB-MPI1 PingPong
//	└──────── launcher (Flavor) ─────────┘  └──── Wrapper ───────┘  └─── Command ──┘
type Launch struct {
	// Flavor selects the launcher's option syntax. Required.
	Flavor Flavor
	// Launcher is the launcher program. Empty means mpiexec for MPICH and mpirun for
	// Intel MPI and Open MPI.
	Launcher string
	// MachineFile is passed as -machinefile (Intel MPI, MPICH) or --hostfile (Open
	// MPI), as one argument, never expanded by a shell. In a batch job, pass
	// scheduler.MachinefileArg ("$HPCSHIP_MACHINEFILE"): the jobscript writes the
	// job's machinefile from its allocation and puts that file's path in its place.
	// Empty leaves host selection to the launcher (or the scheduler).
	MachineFile string
	// Ranks is the total number of ranks, -np. Required. In a scheduler.Job, Validate
	// refuses more ranks than the job's Slots.
	Ranks int
	// RanksPerNode places this many consecutive ranks on each host: -ppn (Intel MPI,
	// MPICH) or --map-by ppr:N:node (Open MPI). 0 leaves placement to the launcher;
	// more than Ranks is an error.
	RanksPerNode int
	// Bootstrap is how the launcher starts its proxies on the hosts: -bootstrap for
	// Intel MPI, -launcher for MPICH (fork runs everything on the local host). Open MPI
	// has no such option.
	Bootstrap string
	// PerHost is Intel MPI's -perhost; more than Ranks is an error. MPICH and Open MPI
	// reject it; use RanksPerNode.
	PerHost int
	// RoundRobin is Intel MPI's -rr (one rank per host in turn). MPICH and Open MPI
	// reject it; use RanksPerNode 1.
	RoundRobin bool
	// Env holds KEY=VALUE pairs every rank gets: -genv KEY VALUE for Intel MPI and
	// MPICH, -x KEY=VALUE for Open MPI. Config.Env's output goes here when the
	// environment is to travel on the command line rather than be exported by the job.
	// A name given twice is an error.
	Env []string
	// Options are further launcher options, placed after the ones above. For MPICH,
	// Intel-only options here are rejected as well.
	Options []string
	// Wrapper is an argv prefix every rank runs Command through, put between the
	// launcher's options and Command as it is: a container runtime's exec argv, such as
	// "singularity exec ./rdma-latest.simg" or "apptainer exec --bind /etc/rdma app.sif"
	// (package singularity renders those). Empty runs Command directly.
	Wrapper []string
	// Command is the program each rank runs and its arguments. Required.
	Command []string
}

// Argv renders the launch as an argument vector, program first, ready for
// exec.CommandContext or for quoting into a job script. It never builds a shell
// string. A setting the flavour does not support is a *FlagError; a missing or
// malformed one a *SettingError.
func (l Launch) Argv() ([]string, error) {
	if err := l.validate(); err != nil {
		return nil, err
	}
	argv := []string{l.launcher()}
	if l.Bootstrap != "" {
		if l.Flavor == MPICH {
			argv = append(argv, "-launcher", l.Bootstrap)
		} else {
			argv = append(argv, "-bootstrap", l.Bootstrap)
		}
	}
	if l.MachineFile != "" {
		if l.Flavor == OpenMPI {
			argv = append(argv, "--hostfile", l.MachineFile)
		} else {
			argv = append(argv, "-machinefile", l.MachineFile)
		}
	}
	argv = append(argv, "-np", strconv.Itoa(l.Ranks))
	if l.RanksPerNode > 0 {
		if l.Flavor == OpenMPI {
			argv = append(argv, "--map-by", "ppr:"+strconv.Itoa(l.RanksPerNode)+":node")
		} else {
			argv = append(argv, "-ppn", strconv.Itoa(l.RanksPerNode))
		}
	}
	if l.PerHost > 0 {
		argv = append(argv, "-perhost", strconv.Itoa(l.PerHost))
	}
	if l.RoundRobin {
		argv = append(argv, "-rr")
	}
	for _, kv := range l.Env {
		name, value, _ := strings.Cut(kv, "=")
		if l.Flavor == OpenMPI {
			argv = append(argv, "-x", kv)
		} else {
			argv = append(argv, "-genv", name, value)
		}
	}
	argv = append(argv, l.Options...)
	argv = append(argv, l.Wrapper...)
	return append(argv, l.Command...), nil
}

func (l Launch) launcher() string {
	switch {
	case l.Launcher != "":
		return l.Launcher
	case l.Flavor == MPICH:
		return "mpiexec"
	}
	return "mpirun"
}

func (l Launch) validate() error {
	switch l.Flavor {
	case IntelMPI, MPICH, OpenMPI:
	default:
		return &SettingError{Variable: "Flavor", Value: l.Flavor.String(), Reason: "want IntelMPI, MPICH or OpenMPI", Err: ErrInvalidSetting}
	}
	if l.Ranks <= 0 {
		return &SettingError{Variable: "-np", Value: strconv.Itoa(l.Ranks), Reason: "the number of ranks must be positive", Err: ErrInvalidSetting}
	}
	if l.RanksPerNode < 0 {
		return &SettingError{Variable: "-ppn", Value: strconv.Itoa(l.RanksPerNode), Reason: "must not be negative", Err: ErrInvalidSetting}
	}
	if l.RanksPerNode > l.Ranks {
		return &SettingError{Variable: "-ppn", Value: strconv.Itoa(l.RanksPerNode), Err: ErrInvalidSetting,
			Reason: "more ranks per node than the " + strconv.Itoa(l.Ranks) + " ranks of the launch"}
	}
	if l.PerHost > l.Ranks {
		return &SettingError{Variable: "-perhost", Value: strconv.Itoa(l.PerHost), Err: ErrInvalidSetting,
			Reason: "more ranks per host than the " + strconv.Itoa(l.Ranks) + " ranks of the launch"}
	}
	if len(l.Command) == 0 || l.Command[0] == "" {
		return &SettingError{Variable: "Command", Reason: "the program to run is required", Err: ErrInvalidSetting}
	}
	if len(l.Wrapper) > 0 && (l.Wrapper[0] == "" || strings.HasPrefix(l.Wrapper[0], "-")) {
		return &SettingError{Variable: "Wrapper", Value: l.Wrapper[0], Reason: "the wrapper's program must be a non-empty name not starting with '-': the launcher would read it as an option", Err: ErrInvalidSetting}
	}
	if len(l.Wrapper) == 0 && strings.HasPrefix(l.Command[0], "-") {
		return &SettingError{Variable: "Command", Value: l.Command[0], Reason: "the program must not start with '-': the launcher would read it as an option", Err: ErrInvalidSetting}
	}
	if l.MachineFile != "" && strings.HasPrefix(l.MachineFile, "-") {
		return &SettingError{Variable: "MachineFile", Value: l.MachineFile, Reason: "must not start with '-'", Err: ErrInvalidSetting}
	}
	if err := l.validateFlavorOptions(); err != nil {
		return err
	}
	seen := make(map[string]bool, len(l.Env))
	for i, kv := range l.Env {
		name, _, err := envvar.Split(kv)
		if err != nil {
			return &SettingError{Variable: "Env[" + strconv.Itoa(i) + "]", Reason: err.Error(), Err: ErrInvalidSetting}
		}
		if seen[name] {
			return &SettingError{Variable: "Env[" + strconv.Itoa(i) + "]", Value: name, Reason: "set twice in Env; the launcher would keep only one", Err: ErrConflict}
		}
		seen[name] = true
	}
	return nil
}

func (l Launch) validateFlavorOptions() error {
	if l.PerHost < 0 {
		return &SettingError{Variable: "-perhost", Value: strconv.Itoa(l.PerHost), Reason: "must not be negative", Err: ErrInvalidSetting}
	}
	if l.Flavor != IntelMPI {
		if l.PerHost > 0 {
			return &FlagError{Flavor: l.Flavor, Flag: "-perhost", Reason: "Intel MPI only; use RanksPerNode"}
		}
		if l.RoundRobin {
			return &FlagError{Flavor: l.Flavor, Flag: "-rr", Reason: "Intel MPI only; use RanksPerNode 1"}
		}
	}
	if l.RanksPerNode > 0 && (l.PerHost > 0 || l.RoundRobin) {
		return &SettingError{Variable: "-ppn", Value: strconv.Itoa(l.RanksPerNode), Err: ErrConflict,
			Reason: "RanksPerNode, PerHost and RoundRobin all set ranks per host; set one"}
	}
	if l.PerHost > 0 && l.RoundRobin {
		return &SettingError{Variable: "-perhost", Value: strconv.Itoa(l.PerHost), Err: ErrConflict,
			Reason: "-rr is -perhost 1; set one"}
	}
	switch l.Flavor {
	case IntelMPI:
		if l.Bootstrap != "" && !slices.Contains(intelBootstraps, l.Bootstrap) {
			return &SettingError{Variable: "-bootstrap", Value: l.Bootstrap, Err: ErrInvalidSetting,
				Reason: "unknown bootstrap (known: " + strings.Join(intelBootstraps, ", ") + ")"}
		}
	case MPICH:
		if l.Bootstrap != "" && !slices.Contains(mpichBootstraps, l.Bootstrap) {
			return &SettingError{Variable: "-launcher", Value: l.Bootstrap, Err: ErrInvalidSetting,
				Reason: "unknown launcher (known: " + strings.Join(mpichBootstraps, ", ") + ")"}
		}
		for _, o := range l.Options {
			if !strings.HasPrefix(o, "-") {
				continue
			}
			name, _, _ := strings.Cut(strings.ToLower(strings.TrimLeft(o, "-")), "=")
			if slices.Contains(intelOnlyOptions, name) {
				return &FlagError{Flavor: l.Flavor, Flag: o, Reason: "Intel MPI only; MPICH hydra rejects it as an unrecognized argument"}
			}
		}
	case OpenMPI:
		if l.Bootstrap != "" {
			return &FlagError{Flavor: l.Flavor, Flag: "-bootstrap", Reason: "Open MPI has no bootstrap option; select its launcher with --mca plm in Options"}
		}
	}
	return nil
}
