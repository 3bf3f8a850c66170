// Package slurm runs scheduler.Jobs on Slurm (22.05 and later, as on Azure CycleCloud Workspace for Slurm)
// through its client commands: the same Job that package scheduler/sge submits to Grid Engine, so that
// switching batch systems is one constructor.
//
// Submit renders the job as a bash jobscript (Slurm.Jobscript) and pipes it to `sbatch --parsable`:
//
//	#!/bin/bash
//	#SBATCH --job-name='rdma'     directives: every value checked against sbatch's parser (no newline, CR or
//	#SBATCH --ntasks=32           control byte, no leading ':') and quoted for it ('…', \' and \\)
//	#SBATCH --partition='hpc'
//	#SBATCH --export=NONE         ExportSubmitEnv gives ALL; SBATCH_* of the caller never override these
//	private job directory       mktemp under $TMPDIR; Slurm's /tmp is shared by all jobs
//	SLURM_JOB_NODELIST ×        "node[01-04,07]" via scontrol show hostnames, "2(x3),1" → $u_machines
//	SLURM_TASKS_PER_NODE        in the job's format (host, host:N, host per task, host slots=N), bounded
//	source …/mpivars.sh         Job.Source, quoted        } written by the same code as the
//	export I_MPI_FABRICS=…      Job.Env, in order, quoted  } Grid Engine jobscript, so any bytes but
//	mpirun -machinefile "$HPCSHIP_MACHINEFILE" …          } NUL reach the payload unchanged
//
// The job then moves through Slurm like this, watched with these commands:
//
//	sbatch --parsable ──► 17 (an array job too; its tasks are 17.1 or 17_1)
//	                       │
//	squeue -h -r -t all -j 17 -o '%i|%F|%K|%T|%r|…|%j'
//	                       │   PENDING → pending, or held (JobHeldUser, JobHeldAdmin, Dependency), or error
//	                       │   (DependencyNeverSatisfied, …); RUNNING, COMPLETING → running; SUSPENDED →
//	                       │   suspended; COMPLETED → done; FAILED, TIMEOUT, OUT_OF_MEMORY, … → failed;
//	                       │   CANCELLED → cancelled. After MinJobAge squeue forgets the job:
//	                       ▼
//	sacct -P -n -j 17 -o JobID,JobIDRaw,State,ExitCode,Elapsed,…,MaxRSS,MaxVMSize
//	                           the allocation row and its steps; ExitCode "N:M" is exit status N, signal M
//	                           (→ 128+M); "CANCELLED by <uid>" is cancelled; retried while slurmdbd lags
//
// Not `squeue --json` (22.05 ignores -j there and prints every job, 2–3 KB each) and not `sacct --json`
// (22.05 reports every exited job as return code 0).
//
// Wait polls that sequence with a backoff and honours ctx. It tells a failure to reach Slurm (controller or
// slurmdbd down, a timeout: ErrUnavailable) from a final one (an unknown job: scheduler.ErrJobNotFound) and
// rides out the first kind for WithOutageTolerance. Cancel runs scancel, Hold and Release scontrol; scancel's
// silent success for an unknown job becomes scheduler.ErrJobNotFound. Commands run through a scheduler.Runner
// (scheduler.LocalRunner by default) without the SBATCH_* variables of its environment, which would override
// the jobscript's directives; a failing command is a *scheduler.CommandError with its exit code and stderr.
// ExpandHostlist, ParseTasksPerNode and Allocation give programs running inside a job the hosts the
// jobscript's machinefile lists.
//
// The package needs the Slurm client commands (sbatch, squeue, sacct, scancel, scontrol) where the Runner
// runs them, slurmdbd accounting for Result, and scontrol on the batch host of a parallel job. Its
// integration tests use a single-host cluster made by scripts/slurm-setup.sh.
package slurm
