// Package mpi configures and launches MPI jobs on Azure HPC VMs, the last step of
// the hpcship workflow: it renders the Intel MPI environment that selects the right
// fabric for the VM family and Intel MPI version, and builds the launcher command line
// that starts the containerized program on every node. Subpackage imb parses the
// benchmark output such a job prints.
//
// Everything it produces is plain data — environment as []string KEY=VALUE, command
// lines as []string argv, paths and bind specs as strings — so it goes into a
// scheduler.Job (Env, Command, Source) or exec.CommandContext as it is, without
// importing this package's types. The container runtime's side (the exec argv and the
// BINDPATH variable rendered from Preset.Binds) belongs to package singularity and comes
// in as the plain Launch.Wrapper argv; the machinefile belongs to the scheduler, whose
// placeholder scheduler.MachinefileArg goes into Launch.MachineFile.
//
//	AzurePreset("Standard_H16r") ─► Preset ─.IntelMPI(v)─► Config ─.Env()─► I_MPI_FABRICS=shm:dapl …  ─► Job.Env
//	                                   │ .Binds ("/etc/rdma/dat.conf")                                     ▲
//	                                   ▼                                                                   │
//	                   singularity: exec argv, SINGULARITY_BINDPATH=… ─────────────────────────────────────┘
//	                                   │ Wrapper
//	                                   ▼
//	Launch{Flavor, MachineFile, Ranks, RanksPerNode, Env, Wrapper, Command}.Argv()  ─────────────────► Job.Command
//
//	  mpirun -machinefile "$HPCSHIP_MACHINEFILE" -np 2 -ppn 1 │ singularity exec ./rdma-latest.simg │ …/IMB-MPI1 PingPong
//	  launcher on the host, a proxy per node                  │ Wrapper, one per rank               │ program in the image
//	  (Intel MPI, MPICH or Open MPI syntax)                   │ (singularity or apptainer)          │ (Installation.Program)
//	                 ── environment flows from the job through the launcher to every rank ──►
//
// This is the hybrid model: the launcher runs on the host, starts one container per
// rank, and the MPI library inside the image (the same Intel MPI, copied in) talks
// back to it.
//
// Intel MPI changed fundamentally in 2019: versions up to 2018 choose among the shm,
// dapl, tcp, tmi, ofa and ofi fabrics and have DAPL tuning variables; 2019 and later
// speak only libfabric (I_MPI_FABRICS=shm:ofi plus a provider). Config.Validate
// rejects settings the configured version does not have — I_MPI_FALLBACK or a dapl
// fabric for 2019, say — with a *VersionSupportError that names the replacement,
// rather than letting Intel MPI print a warning and run on a slower fabric.
//
// The Azure presets carry the settings Microsoft documents for each RDMA-capable VM
// family; the doc comment of Preset.IntelMPI lists each setting with its source.
// Nothing here needs an MPI installation; the launch test runs the argv it builds
// under MPICH's hydra mpiexec.
package mpi
