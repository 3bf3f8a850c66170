package slurm_test

import (
	"context"
	"fmt"
	"log"
	"strings"

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

// Submitting rdma.job to an Azure CycleCloud Slurm cluster and waiting for it, riding out up to half an hour
// of controller trouble.
func ExampleSlurm_Submit() {
	ctx := context.Background()
	s, err := slurm.New(slurm.WithOutageTolerance(30 * 60e9))
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
