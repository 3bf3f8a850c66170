package sge_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log"
	"os/exec"
	"slices"
	"strings"

	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/singularity"
)

// rdmaJob is the seed workflow's `qsub -pe mpi 32 rdma.job`, composed from package mpi's output alone:
// Intel MPI 5.1.3 over DAPL on Azure's InfiniBand, running the IMB PingPong benchmark inside a Singularity
// image on two of the hosts.
func rdmaJob() scheduler.Job {
	preset, err := mpi.AzurePreset("Standard_H16r")
	if err != nil {
		log.Fatal(err)
	}
	impi := mpi.Installation{Version: mpi.MustParseVersion("5.1.3.223")}
	cfg, err := preset.IntelMPI(impi.Version)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Debug = 6
	env, err := cfg.Env()
	if err != nil {
		log.Fatal(err)
	}

	// The container's part: the bind path the preset needs, and the runtime's exec argv as the launcher's
	// wrapper.
	bindPath, err := singularity.BindPathEnv(singularity.Singularity, preset.Binds...)
	if err != nil {
		log.Fatal(err)
	}
	if bindPath != "" {
		env = append(env, bindPath)
	}
	wrapper, err := singularity.Exec{Runtime: singularity.Singularity, Image: "./rdma-latest.simg"}.Argv()
	if err != nil {
		log.Fatal(err)
	}

	argv, err := mpi.Launch{
		Flavor:       mpi.IntelMPI,
		MachineFile:  scheduler.MachinefileArg,
		Ranks:        2,
		RanksPerNode: 1,
		Wrapper:      wrapper,
		Command:      []string{impi.Program("IMB-MPI1"), "PingPong"},
	}.Argv()
	if err != nil {
		log.Fatal(err)
	}
	return scheduler.Job{
		Name:        "rdma",
		ParallelEnv: "mpi",
		Slots:       32,
		Machinefile: scheduler.Machinefile{Name: "u_machines"},
		JoinOutput:  true,
		Source:      []string{impi.MPIVars()},
		Env:         env,
		Command:     argv,
	}
}

// The seed's complete rdma.job, rendered from mpi's output for an Azure H16r VM: the directives, the
// private TMPDIR, the machinefile written from $PE_HOSTFILE (what `uniq $TMPDIR/machines >
// $TMPDIR/u_machines` did, on any parallel environment), Intel MPI's environment in the order mpi renders
// it, and the launcher with the machinefile's path in place of scheduler.MachinefileArg.
func ExampleSGE_Jobscript() {
	s, err := sge.New()
	if err != nil {
		log.Fatal(err)
	}
	script, err := s.Jobscript(rdmaJob())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Print(string(script))
	// Output:
	// #!/bin/bash
	// #$ -N rdma
	// #$ -S /bin/bash
	// #$ -cwd
	// #$ -pe mpi 32
	// #$ -j y
	//
	// # Use the private TMPDIR the batch system gives the job (Grid Engine does, for ordinary users); make one where
	// # there is none.
	// if [ -z "${TMPDIR:-}" ] || [ ! -d "$TMPDIR" ] || [ ! -w "$TMPDIR" ]; then
	// 	TMPDIR=$(mktemp -d /tmp/hpcship.XXXXXXXXXX) || exit 1
	// 	hpcship_tmpdir=$TMPDIR
	// 	trap 'rm -rf "$hpcship_tmpdir"' EXIT
	// fi
	// export TMPDIR
	//
	// # The machinefile (hosts), from $PE_HOSTFILE: "host slots [queue [processors]]" lines, at most
	// # 16777216 bytes, 65536 hosts and 1048576 slots in all. $TMPDIR/machines exists only where the parallel
	// # environment runs startmpi.sh.
	// export HPCSHIP_MACHINEFILE="$TMPDIR/u_machines"
	// hpcship_hostfile=${PE_HOSTFILE:-}
	// hpcship_fail() {
	// 	echo "hpcship: \$PE_HOSTFILE: $*" >&2
	// 	exit 1
	// }
	// if [ ! -r "$hpcship_hostfile" ]; then
	// 	echo "hpcship: no readable \$PE_HOSTFILE in a parallel job" >&2
	// 	exit 1
	// fi
	// hpcship_size=$(wc -c <"$hpcship_hostfile") || exit 1
	// [ "$hpcship_size" -le 16777216 ] || hpcship_fail "$hpcship_size bytes, more than 16777216"
	// if LC_ALL=C grep -aq '[^	 -~]' "$hpcship_hostfile"; then
	// 	hpcship_fail "holds a byte that is not printable ASCII"
	// fi
	// hpcship_hosts=()
	// hpcship_lines=()
	// declare -A hpcship_host_slots=()
	// hpcship_lineno=0
	// hpcship_entries=0
	// hpcship_total=0
	// while read -r hpcship_host hpcship_n hpcship_queue hpcship_cpus hpcship_extra || [ -n "$hpcship_host" ]; do
	// 	hpcship_lineno=$((hpcship_lineno + 1))
	// 	[ -n "$hpcship_host" ] || continue
	// 	hpcship_entries=$((hpcship_entries + 1))
	// 	[ "$hpcship_entries" -le 65536 ] || hpcship_fail "line $hpcship_lineno: more than 65536 lines of hosts"
	// 	[ -n "$hpcship_n" ] || hpcship_fail "line $hpcship_lineno: want 2 to 4 fields, got 1"
	// 	[ -z "$hpcship_extra" ] || hpcship_fail "line $hpcship_lineno: want 2 to 4 fields, got more"
	// 	hpcship_size=$((${#hpcship_host} + ${#hpcship_n} + ${#hpcship_queue} + ${#hpcship_cpus}))
	// 	[ "$hpcship_size" -le 65536 ] || hpcship_fail "line $hpcship_lineno: fields of $hpcship_size bytes, more than 65536"
	// 	case $hpcship_host in
	// 	*[!a-zA-Z0-9._-]*) hpcship_fail "line $hpcship_lineno: host name holds a byte other than letters, digits, '.', '_' and '-'" ;;
	// 	esac
	// 	[ "${#hpcship_host}" -le 255 ] || hpcship_fail "line $hpcship_lineno: host name longer than 255 bytes"
	// 	case $hpcship_n in
	// 	*[!0-9]*) hpcship_fail "line $hpcship_lineno: slot count is not a number from 1 to 1048576" ;;
	// 	esac
	// 	if [ "${#hpcship_n}" -gt 7 ] || [ $((10#$hpcship_n)) -lt 1 ] || [ $((10#$hpcship_n)) -gt 1048576 ]; then
	// 		hpcship_fail "line $hpcship_lineno: slot count is not a number from 1 to 1048576"
	// 	fi
	// 	hpcship_n=$((10#$hpcship_n))
	// 	hpcship_total=$((hpcship_total + hpcship_n))
	// 	[ "$hpcship_total" -le 1048576 ] || hpcship_fail "line $hpcship_lineno: more than 1048576 slots in all"
	// 	[ -n "${hpcship_host_slots[$hpcship_host]+set}" ] || hpcship_hosts+=("$hpcship_host")
	// 	hpcship_host_slots[$hpcship_host]=$((${hpcship_host_slots[$hpcship_host]:-0} + hpcship_n))
	// done <"$hpcship_hostfile"
	// hpcship_size=0
	// for hpcship_host in "${hpcship_hosts[@]}"; do
	// 	hpcship_n=${hpcship_host_slots[$hpcship_host]}
	// 	hpcship_size=$((hpcship_size + ${#hpcship_host} + 1))
	// done
	// [ "$hpcship_size" -le 16777216 ] || hpcship_fail "the machinefile would take $hpcship_size bytes, more than 16777216"
	// for hpcship_host in "${hpcship_hosts[@]}"; do
	// 	hpcship_n=${hpcship_host_slots[$hpcship_host]}
	// 	printf '%s\n' "$hpcship_host"
	// done >"$HPCSHIP_MACHINEFILE" || exit 1
	//
	// source /opt/intel/impi/5.1.3.223/bin64/mpivars.sh
	// export I_MPI_FABRICS=shm:dapl
	// export I_MPI_FALLBACK=0
	// export I_MPI_DAPL_PROVIDER=ofa-v2-ib0
	// export I_MPI_DYNAMIC_CONNECTION=0
	// export I_MPI_DAPL_TRANSLATION_CACHE=0
	// export I_MPI_DEBUG=6
	// export SINGULARITY_BINDPATH=/etc/rdma/dat.conf
	//
	// hpcship_status=0
	// mpirun -machinefile "$HPCSHIP_MACHINEFILE" -np 2 -ppn 1 singularity exec ./rdma-latest.simg /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong || hpcship_status=$?
	// # Grid Engine requeues a job that exits 99 and puts one that exits 100 into the error state Eqw.
	// if [ "$hpcship_status" -eq 99 ] || [ "$hpcship_status" -eq 100 ]; then
	// 	echo "hpcship: the payload exited $hpcship_status; the job exits 1 instead, as Grid Engine reserves 99 and 100" >&2
	// 	hpcship_status=1
	// fi
	// exit "$hpcship_status"
}

// recordedCell is a Runner that prints each command it is given and answers it as a CycleCloud cell
// answered for a job that ran for a minute and ended: qsub with the job's id, qstat with no such job
// any more, qacct with the job's record. A Runner is the place to put a dry run, a log of commands or a
// remote submit host.
type recordedCell struct{}

func (recordedCell) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	words := append([]string{c.Name}, c.Args...)
	for i, w := range words {
		if strings.ContainsAny(w, " \"$*>&") {
			words[i] = "'" + w + "'"
		}
	}
	if c.Stdin != nil {
		words = append(words, "<rdma.job")
	}
	fmt.Println("$", strings.Join(words, " "))
	switch {
	case slices.Contains(c.Args, "qsub"):
		return scheduler.Output{Stdout: []byte("17\n")}, nil
	case slices.Contains(c.Args, "-j") && slices.Contains(c.Args, "qstat"):
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<unknown_jobs><ST_name>17</ST_name></unknown_jobs>\n")}, nil
	case slices.Contains(c.Args, "qstat"):
		return scheduler.Output{Stdout: []byte("<?xml version='1.0'?>\n<job_info><queue_info></queue_info><job_info></job_info></job_info>\n")}, nil
	case slices.Contains(c.Args, "qacct"):
		return scheduler.Output{Stdout: []byte(`==============================================================
qname        hpc.q
hostname     ip-0A000004
jobname      rdma
jobnumber    17
taskid       undefined
granted_pe   mpi
slots        32
failed       0
exit_status  0
ru_wallclock 62s
`)}, nil
	}
	return scheduler.Output{ExitCode: 1, Stderr: []byte("unexpected command")}, nil
}

// Submitting rdma.job on an Azure CycleCloud cluster and waiting for it: the commands Submit and Wait run,
// each with the cluster's settings sourced first. WithCycleCloud insists on the single queue CycleCloud's
// autoscaler needs.
func ExampleSGE_Submit() {
	ctx := context.Background()
	s, err := sge.New(sge.WithSettingsFile("/etc/cluster-setup.sh"), sge.WithCycleCloud(), sge.WithRunner(recordedCell{}))
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
	// Output:
	// $ /bin/sh -c '. "$0" >/dev/null && exec "$@"' /etc/cluster-setup.sh qsub -terse <rdma.job
	// $ /bin/sh -c '. "$0" >/dev/null && exec "$@"' /etc/cluster-setup.sh qstat -xml -u '*'
	// $ /bin/sh -c '. "$0" >/dev/null && exec "$@"' /etc/cluster-setup.sh qstat -j 17 -xml
	// $ /bin/sh -c '. "$0" >/dev/null && exec "$@"' /etc/cluster-setup.sh qacct -j 17
	// job 17 done with exit status 0 on ip-0A000004 after 1m2s
}

// sshRunner runs the Grid Engine commands on a submit host over ssh. ssh hands the remote shell one
// command line, so every word is single-quoted, and the cell's environment travels through env(1).
type sshRunner struct {
	host string
}

func (r sshRunner) Run(ctx context.Context, c scheduler.Command) (scheduler.Output, error) {
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
	out := scheduler.Output{Stdout: stdout.Bytes(), Stderr: stderr.Bytes()}
	var exit *exec.ExitError
	if errors.As(err, &exit) && exit.ExitCode() != 255 { // 255: ssh itself failed
		out.ExitCode = exit.ExitCode()
		return out, nil
	}
	return out, err
}

// Driving a cell from a machine without Grid Engine: the commands run on the cluster's head node. This
// example is compiled but not run (it has no Output): it needs ssh and a head node that accepts the key.
func ExampleWithRunner_ssh() {
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
