package slurm_test

import (
	"context"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/slurm"
)

// rdmaJob is the seed workflow's `qsub -pe mpi 32 rdma.job`: Intel MPI 5.1.3 over DAPL on Azure's
// InfiniBand, running the IMB PingPong benchmark inside a Singularity image on two of the hosts. The same
// Job runs on Slurm: Slots become --ntasks, Queue the partition.
func rdmaJob() scheduler.Job {
	return scheduler.Job{
		Name:        "rdma",
		ParallelEnv: "mpi",
		Slots:       32,
		Queue:       "hpc",
		Machinefile: scheduler.Machinefile{Name: "u_machines"},
		JoinOutput:  true,
		Source:      []string{"/opt/intel/impi/5.1.3.223/bin64/mpivars.sh"},
		Env: []string{
			"I_MPI_FABRICS=shm:dapl",
			"I_MPI_DAPL_PROVIDER=ofa-v2-ib0",
			"I_MPI_DYNAMIC_CONNECTION=0",
			"SINGULARITY_BINDPATH=/etc/rdma/dat.conf",
		},
		Command: []string{
			"mpirun", "-machinefile", scheduler.MachinefileArg, "-np", "2", "-ppn", "1",
			"singularity", "exec", "./rdma-latest.simg", "/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1", "PingPong",
		},
	}
}

// The seed's rdma.job rendered for Slurm: the directives, and the lines that configure Intel MPI and run the
// container (the machinefile set-up between them is left out here).
func ExampleSlurm_Jobscript() {
	s, err := slurm.New()
	if err != nil {
		log.Fatal(err)
	}
	script, err := s.Jobscript(rdmaJob())
	if err != nil {
		log.Fatal(err)
	}
	for _, line := range strings.Split(string(script), "\n") {
		if strings.HasPrefix(line, "#") && !strings.HasPrefix(line, "# ") ||
			strings.HasPrefix(line, "source ") || strings.HasPrefix(line, "export I_MPI") ||
			strings.HasPrefix(line, "export SINGULARITY") || strings.HasPrefix(line, "mpirun ") {
			fmt.Println(line)
		}
	}
	// Output:
	// #!/bin/bash
	// #SBATCH --job-name='rdma'
	// #SBATCH --ntasks=32
	// #SBATCH --partition='hpc'
	// #SBATCH --export=NONE
	// source /opt/intel/impi/5.1.3.223/bin64/mpivars.sh
	// export I_MPI_FABRICS=shm:dapl
	// export I_MPI_DAPL_PROVIDER=ofa-v2-ib0
	// export I_MPI_DYNAMIC_CONNECTION=0
	// export SINGULARITY_BINDPATH=/etc/rdma/dat.conf
	// mpirun -machinefile "$HPCSHIP_MACHINEFILE" -np 2 -ppn 1 singularity exec ./rdma-latest.simg /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong || hpcship_status=$?
}

// recordedCluster is a Runner that prints each command it is given and answers it as a Slurm cluster
// answered for a job that ran for a minute and ended: sbatch with the job's id, squeue with a job it no
// longer knows, sacct with the job's record. A Runner is the place to put a dry run, a log of commands or
// a remote login node.
type recordedCluster struct{}

func (recordedCluster) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	words := append([]string{c.Name}, c.Args...)
	for i, w := range words {
		if strings.ContainsAny(w, "|%") {
			words[i] = "'" + w + "'"
		}
	}
	if c.Stdin != nil {
		words = append(words, "<rdma.sbatch")
	}
	fmt.Println("$", strings.Join(words, " "))
	switch c.Name {
	case "sbatch":
		return scheduler.Output{Stdout: []byte("17\n")}, nil
	case "squeue":
		return scheduler.Output{ExitCode: 1, Stderr: []byte("slurm_load_jobs error: Invalid job id specified\n")}, nil
	case "sacct":
		return scheduler.Output{Stdout: []byte(`17|17|COMPLETED|0:0|00:01:02|2026-12-01T10:24:12|2026-12-01T10:25:14|hb[001-016]|hpc|32||
17.batch|17.batch|COMPLETED|0:0|00:01:02|2026-12-01T10:24:12|2026-12-01T10:25:14|hb001||2|4032K|6440K
`)}, nil
	}
	return scheduler.Output{ExitCode: 1, Stderr: []byte("unexpected command")}, nil
}

// Submitting rdma.job to an Azure CycleCloud Slurm cluster and waiting for it, riding out up to half an hour
// of controller trouble: the commands Submit and Wait run.
func ExampleSlurm_Submit() {
	ctx := context.Background()
	s, err := slurm.New(slurm.WithOutageTolerance(30*time.Minute), slurm.WithRunner(recordedCluster{}))
	if err != nil {
		log.Fatal(err)
	}
	id, err := s.Submit(ctx, rdmaJob())
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("job %s %s with exit status %d on %s after %s\n", id, res.State, res.ExitCode, res.Host, res.Wallclock)
	// Output:
	// $ sbatch --parsable <rdma.sbatch
	// $ squeue -h -r -t all -j 17 -o '%i|%F|%K|%T|%r|%P|%N|%C|%u|%j'
	// $ sacct -P -n -j 17 -o JobID,JobIDRaw,State,ExitCode,Elapsed,Start,End,NodeList,Partition,AllocCPUS,MaxRSS,MaxVMSize
	// $ squeue -h -r -t all -j 17 -o '%i|%F|%K|%T|%r|%P|%N|%C|%u|%j'
	// $ sacct -P -n -j 17 -o JobID,JobIDRaw,State,ExitCode,Elapsed,Start,End,NodeList,Partition,AllocCPUS,MaxRSS,MaxVMSize
	// job 17 done with exit status 0 on hb[001-016] after 1m2s
}

// A program running inside a job finds its hosts as the jobscript's machinefile lists them.
func ExampleParseAllocation() {
	// In a job: slurm.AllocationFromEnv(), from SLURM_JOB_NODELIST and SLURM_TASKS_PER_NODE.
	a, err := slurm.ParseAllocation("hb[001-002],hc7", "2(x2),1")
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range []scheduler.MachinefileFormat{scheduler.MachinefileHostSlots, scheduler.MachinefileOpenMPI} {
		mf, err := a.Machinefile(f)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Print(string(mf))
	}
	// Output:
	// hb001:2
	// hb002:2
	// hc7:1
	// hb001 slots=2
	// hb002 slots=2
	// hc7 slots=1
}
