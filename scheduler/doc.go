// Package scheduler holds the batch-system-neutral side of running a job on an HPC cluster: the Job to run
// (payload, parallel environment and slots, limits, output, environment, array range, holds), the
// Scheduler interface a backend implements (Submit, Status, Wait, Cancel, Result), the JobState a job is
// in, the machinefile formats a backend's jobscript writes for MPI launchers, and the Runner through which a
// backend runs its client commands (LocalRunner on this machine; wrap it for sudo, runuser or SSH) with the
// CommandError of a command that failed. It holds no type of a particular batch system: Grid Engine's
// $PE_HOSTFILE parser is in scheduler/sge.
//
// It is the fourth step of the hpcship workflow (image → registry → SIF → job → MPI): the job that runs
// `mpirun … singularity exec image.sif …` on the hosts the scheduler allocated. Package scheduler/sge
// implements Scheduler for Grid Engine, package scheduler/slurm for Slurm (Slots as tasks, Queue as the
// partition, HoldJobs as dependencies).
//
// A job's states, as every backend reports them:
//
//	         submit
//	           │
//	           ▼
//	┌─────── pending ◄──── held          (user hold, or waiting for HoldJobs)
//	│          │
//	│          ▼
//	│       running ◄───► suspended
//	│          │
//	│     ┌────┼─────────┐
//	│     ▼    ▼         ▼
//	│   done  failed  cancelled ◄── Cancel (from any state before the end)
//	│
//	└──► error   (the scheduler cannot start it; it stays queued until someone deletes it)
//
// done, failed and cancelled are final (JobState.Ended); a job in error never ends by itself.
//
// Job takes what package mpi produces as it is: Config.Env's "NAME=VALUE" entries appended to Env (exported
// in that order), Launch.Argv as Command, Installation.MPIVars in Source. A parallel job's payload finds
// its hosts in a machinefile that the jobscript writes before it starts: put MachinefileArg in Command where
// the path belongs (mpi.Launch.MachineFile), and Validate checks the launcher's -np against Slots.
package scheduler
