package sge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os/exec"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
)

// rdmaJob is the seed workflow's `qsub -pe mpi 32 rdma.job`: Intel MPI 5.1.3 over DAPL on Azure's
// InfiniBand, running the IMB PingPong benchmark inside a Singularity image on two of the hosts.
func rdmaJob() scheduler.Job {
	return scheduler.Job{
		Name:        "rdma",
		ParallelEnv: "mpi",
		Slots:       32,
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

// The jobscript for the seed's rdma.job: the directives, and the lines that configure Intel MPI and run
// the container (the TMPDIR and machinefile set-up between them is left out here).
func ExampleSGE_Jobscript() {
	s, err := sge.New()
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
	// #$ -N rdma
	// #$ -S /bin/bash
	// #$ -cwd
	// #$ -pe mpi 32
	// #$ -j y
	// source /opt/intel/impi/5.1.3.223/bin64/mpivars.sh
	// export I_MPI_FABRICS=shm:dapl
	// export I_MPI_DAPL_PROVIDER=ofa-v2-ib0
	// export I_MPI_DYNAMIC_CONNECTION=0
	// export SINGULARITY_BINDPATH=/etc/rdma/dat.conf
	// mpirun -machinefile "$HPCSHIP_MACHINEFILE" -np 2 -ppn 1 singularity exec ./rdma-latest.simg /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong || hpcship_status=$?
}

// Submitting rdma.job on an Azure CycleCloud cluster and waiting for it. The client commands run with the
// cluster's settings; WithCycleCloud insists on the single queue CycleCloud's autoscaler needs.
func ExampleSGE_Submit() {
	ctx := context.Background()
	s, err := sge.New(sge.WithSettingsFile("/etc/cluster-setup.sh"), sge.WithCycleCloud())
	if err != nil {
		log.Fatal(err)
	}
	job := rdmaJob()
	job.Queue = "hpc.q"
	id, err := s.Submit(ctx, job)
	if err != nil {
		log.Fatal(err)
	}
	res, err := s.Wait(ctx, id)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("job %s %s with exit status %d on %s after %s\n", id, res.State, res.ExitCode, res.Host, res.Wallclock)
}

// sshRunner runs the Grid Engine commands on a submit host over ssh. ssh hands the remote shell one
// command line, so every word is single-quoted, and the cell's environment travels through env(1).
type sshRunner struct {
	host string
}

func (r sshRunner) Run(ctx context.Context, c sge.Command) (sge.Output, error) {
	words := []string{"env"}
	words = append(words, c.Env...)
	words = append(words, c.Name)
	words = append(words, c.Args...)
	for i, w := range words {
		words[i] = "'" + strings.ReplaceAll(w, "'", `'\''`) + "'"
	}
	cmd := exec.CommandContext(ctx, "ssh", "-o", "BatchMode=yes", r.host, strings.Join(words, " "))
	cmd.Stdin = bytes.NewReader(c.Stdin)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	out := sge.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != 255 { // 255: ssh itself failed
		out.ExitCode = exit.ExitCode()
		return out, nil
	}
	return out, err
}

// Driving a cell from a machine without Grid Engine: the commands run on the cluster's head node.
func ExampleRunner() {
	s, err := sge.New(sge.WithRunner(sshRunner{host: "headnode"}), sge.WithCell("/sched/sge/sge-2011.11", "default"),
		sge.WithPorts(537, 538))
	if err != nil {
		log.Fatal(err)
	}
	st, err := s.Status(context.Background(), "17")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(st.State)
}
