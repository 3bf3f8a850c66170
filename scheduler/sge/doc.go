// Package sge runs scheduler.Jobs on Grid Engine (Son of Grid Engine 8.1, Open Grid Scheduler, and the
// Altair/Univa Grid Engine of Azure CycleCloud clusters) through its client commands.
//
// Submit renders the job as a bash jobscript (SGE.Jobscript) and pipes it to `qsub -terse`:
//
//	#!/bin/bash
//	#$ -N rdma                 directives: every value checked against Grid Engine's rules first
//	#$ -S /bin/bash
//	#$ -cwd
//	#$ -pe mpi 32
//	TMPDIR fallback            Grid Engine sets none for root-owned jobs: mktemp -d, removed on exit
//	$PE_HOSTFILE → machinefile  "host slots queue processors" → $TMPDIR/u_machines, on any PE,
//	                           with or without startmpi.sh; ParsePEHostfile's bounds, else exit 1
//	source …/mpivars.sh        Job.Source, quoted
//	export I_MPI_FABRICS=…     Job.Env in its order, quoted: any bytes but NUL arrive unchanged
//	mpirun -machinefile "$HPCSHIP_MACHINEFILE" …  Job.Command, quoted, or Job.Script in a subshell
//	exit status 99 → 1, 100 → 1   Grid Engine would requeue (99) or hold in Eqw (100) the job
//
// Job.Env and Job.Command are what package mpi renders (Config.Env, Launch.Argv with
// scheduler.MachinefileArg as its MachineFile), taken as they are; the Example renders the complete
// rdma.job of an Azure H16r cluster that way. A program running inside a job reads the same allocation with
// ParsePEHostfile.
//
// The job then moves through Grid Engine like this, and SGE watches it with these commands:
//
//	qsub -terse ──► 17 (array: 17.1-3:1)
//	                 │
//	qstat -xml -u '*'   <state>: qw, hqw → pending, held; r, t → running; s, S, T → suspended;
//	                 │           Eqw → error (reason from qstat -j 17 -xml); one listing shared by
//	                 │           concurrent Status calls and by the polls of all Waits
//	                 ▼
//	qstat -j 17 -xml    <unknown_jobs>: the job has left the queue
//	                 │
//	                 ▼
//	qacct -j 17         failed, exit_status, ru_wallclock, maxvmem, hostname, one record per task;
//	                    retried while Grid Engine has not flushed the record yet
//
// Wait polls that sequence with a backoff and honours ctx; Cancel runs qdel, and a job it deleted is
// reported as cancelled. Commands run through a scheduler.Runner
// (scheduler.LocalRunner by default), with the cell set by WithCell, WithPorts or WithSettingsFile; a failing
// command is a *scheduler.CommandError with its exit code and stderr. Wait tells a passing failure (the qmaster does
// not answer, the runner cannot run the command, a command over WithCommandTimeout: ErrUnavailable) from a
// final one (an unknown job: scheduler.ErrJobNotFound) and rides out the first kind for WithOutageTolerance,
// as scheduler/slurm does.
//
// The package needs the Grid Engine client commands (qsub, qstat, qacct, qdel) on the machine the Runner
// reaches, and a cell that accepts jobs from the user they run as. Its integration tests use a single-host
// cell made by scripts/gridengine-setup.sh.
package sge
