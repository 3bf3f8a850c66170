package slurm_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/slurm"
)

// The integration tests submit to the single-host cluster that scripts/slurm-setup.sh sets up (partition
// hpc, 8 CPUs), as its unprivileged user.
const (
	partition  = "hpc"
	submitUser = "slurmtest"
)

// cluster returns a Slurm for the test cluster and a work directory the submit user can write. It skips
// (fails under HPCSHIP_INTEGRATION=1) when the cluster is not there.
func cluster(t *testing.T, opts ...slurm.Option) (*slurm.Slurm, string) {
	t.Helper()
	testenv.Require(t, "sbatch", "squeue", "sacct", "scancel", "scontrol", "runuser")
	testenv.RequireRoot(t)
	if _, err := user.Lookup(submitUser); err != nil {
		testenv.Skipf(t, "no user %s: run scripts/slurm-setup.sh", submitUser)
		return nil, ""
	}
	s, err := slurm.New(append([]slurm.Option{
		slurm.WithRunner(schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}}),
		slurm.WithPollInterval(200*time.Millisecond, time.Second),
		slurm.WithAccountingTimeout(30 * time.Second),
	}, opts...)...)
	require.NoError(t, err)
	schedulertest.RequireSlurm(t, scheduler.LocalRunner{})
	return s, schedulertest.UserDir(t, submitUser)
}

func TestPlainJob(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	out := filepath.Join(dir, "plain.out")
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name:    "plain",
		Command: []string{"/bin/sh", "-c", `echo "hello from $SLURM_JOB_NAME in $SLURM_JOB_PARTITION"; echo "cwd=$PWD"`},
		Queue:   partition,
		WorkDir: dir,
		Stdout:  out,
	})
	require.NoError(t, err)

	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateDone, res.State)
	assert.Equal(t, id, res.ID)
	assert.Equal(t, 0, res.ExitCode)
	assert.Empty(t, res.Failure)
	assert.NotEmpty(t, res.Host)
	assert.Equal(t, partition, res.Queue)
	assert.False(t, res.End.Before(res.Start))
	assert.Equal(t, "hello from plain in hpc\ncwd="+dir+"\n", schedulertest.ReadFile(t, out))

	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateDone, st.State)
	assert.Equal(t, "COMPLETED", st.Native)
	assert.Equal(t, "plain", st.Name)
	assert.Equal(t, submitUser, st.Owner)
}

// TestParallelJob runs MPICH's mpiexec on the machinefile the jobscript writes from SLURM_JOB_NODELIST, in
// each machinefile format, and checks it against Allocation.Machinefile of the job's own environment.
func TestParallelJob(t *testing.T) {
	t.Parallel()
	testenv.Require(t, "mpiexec")
	for _, format := range []scheduler.MachinefileFormat{scheduler.MachinefileHosts, scheduler.MachinefileHostSlots,
		scheduler.MachinefileSlots, scheduler.MachinefileOpenMPI} {
		t.Run(format.String(), func(t *testing.T) {
			t.Parallel()
			s, dir := cluster(t)
			out := filepath.Join(dir, "mpi.out")
			id, err := s.Submit(t.Context(), scheduler.Job{
				Name:        "mpi",
				ParallelEnv: "mpi",
				Slots:       2,
				Machinefile: scheduler.Machinefile{Name: "u_machines", Format: format},
				// Hydra reads every format but Open MPI's; its launcher inside a Slurm job is srun.
				Command: []string{"bash", "-c", `printf '%s\n%s\n' "$SLURM_JOB_NODELIST" "$SLURM_TASKS_PER_NODE" >alloc &&
cp "$1" machinefile && if [ "$2" = openmpi ]; then set -- ; else set -- -machinefile "$1"; fi &&
exec mpiexec "$@" -np 2 bash -c 'echo "rank $PMI_RANK of $PMI_SIZE"'`,
					"mpi", scheduler.MachinefileArg, map[bool]string{true: "openmpi", false: "hydra"}[format == scheduler.MachinefileOpenMPI]},
				WorkDir:  dir,
				Stdout:   out,
				Walltime: 2 * time.Minute,
			})
			require.NoError(t, err)

			res := schedulertest.Wait(t, s, id)
			output := schedulertest.ReadFile(t, out)
			require.Equal(t, scheduler.StateDone, res.State, "output:\n%s", output)
			assert.Equal(t, 2, res.Slots)
			assert.Contains(t, output, "rank 0 of 2")
			assert.Contains(t, output, "rank 1 of 2")

			alloc := strings.Split(schedulertest.ReadFile(t, filepath.Join(dir, "alloc")), "\n")
			a, err := slurm.ParseAllocation(alloc[0], alloc[1])
			require.NoError(t, err)
			assert.Equal(t, 2, a.Tasks())
			want, err := a.Machinefile(format)
			require.NoError(t, err)
			assert.Equal(t, string(want), schedulertest.ReadFile(t, filepath.Join(dir, "machinefile")),
				"the jobscript's machinefile and Allocation.Machinefile agree")
		})
	}
}

// TestSrunPMI2 starts two ranks of a real MPI program with srun --mpi=pmi2, which needs no machinefile.
func TestSrunPMI2(t *testing.T) {
	t.Parallel()
	mpicc := testenv.Require(t, "mpicc")
	s, dir := cluster(t)
	src := filepath.Join(dir, "hello.c")
	require.NoError(t, os.WriteFile(src, []byte(`#include <mpi.h>
#include <stdio.h>
int main(int argc, char **argv) {
	int rank, size;
	MPI_Init(&argc, &argv);
	MPI_Comm_rank(MPI_COMM_WORLD, &rank);
	MPI_Comm_size(MPI_COMM_WORLD, &size);
	printf("hello from rank %d of %d\n", rank, size);
	MPI_Finalize();
	return 0;
}
`), 0o644))
	bin := filepath.Join(dir, "hello")
	out, err := exec.CommandContext(t.Context(), mpicc[0], "-o", bin, src).CombinedOutput()
	require.NoError(t, err, "%s", out)

	argv, err := mpi.Launch{Flavor: mpi.Srun, Ranks: 2, Command: []string{bin}}.Argv()
	require.NoError(t, err)
	stdout := filepath.Join(dir, "srun.out")
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name: "srun", ParallelEnv: "mpi", Slots: 2,
		Command: argv,
		WorkDir: dir, Stdout: stdout, Walltime: 2 * time.Minute,
	})
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	output := schedulertest.ReadFile(t, stdout)
	require.Equal(t, scheduler.StateDone, res.State, "output:\n%s", output)
	assert.Contains(t, output, "hello from rank 0 of 2\n")
	assert.Contains(t, output, "hello from rank 1 of 2\n")
}

func TestFailingPayload(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	out := filepath.Join(dir, "fail.out")
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name: "fail", Script: "echo run >>runs\nexit 3\n", WorkDir: dir, Stdout: out,
	})
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 3, res.ExitCode)
	assert.Empty(t, res.Failure, "Slurm itself did not end the job")
	assert.Equal(t, "run\n", schedulertest.ReadFile(t, filepath.Join(dir, "runs")))
}

func TestCancel(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	running, err := s.Submit(t.Context(), scheduler.Job{Name: "to_cancel", Command: []string{"sleep", "300"}, WorkDir: dir, Stdout: "/dev/null"})
	require.NoError(t, err)
	held, err := s.Submit(t.Context(), scheduler.Job{Name: "held", Command: []string{"true"}, Hold: true, WorkDir: dir, Stdout: "/dev/null"})
	require.NoError(t, err)

	require.EventuallyWithT(t, func(c *assert.CollectT) {
		st, err := s.Status(t.Context(), running)
		require.NoError(c, err)
		assert.Equal(c, scheduler.StateRunning, st.State)
	}, time.Minute, 200*time.Millisecond)
	st, err := s.Status(t.Context(), held)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateHeld, st.State)
	assert.Equal(t, "PENDING", st.Native)
	assert.Equal(t, "JobHeldUser", st.Message)

	_, err = s.Result(t.Context(), running)
	require.ErrorIs(t, err, scheduler.ErrNotEnded)

	require.NoError(t, s.Cancel(t.Context(), running))
	require.NoError(t, s.Cancel(t.Context(), held))
	for _, id := range []scheduler.JobID{running, held} {
		res := schedulertest.Wait(t, s, id)
		assert.Equal(t, scheduler.StateCancelled, res.State, "job %s", id)
	}

	require.ErrorIs(t, s.Cancel(t.Context(), "9999999"), scheduler.ErrJobNotFound)
	require.ErrorIs(t, s.Release(t.Context(), "9999999"), scheduler.ErrJobNotFound)
}

func TestHoldRelease(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "held", Command: []string{"true"}, Hold: true, WorkDir: dir, Stdout: "/dev/null"})
	require.NoError(t, err)
	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	require.Equal(t, scheduler.StateHeld, st.State)
	require.NoError(t, s.Release(t.Context(), id))
	assert.Equal(t, scheduler.StateDone, schedulertest.Wait(t, s, id).State)
}

func TestArrayJob(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	id, err := s.Submit(t.Context(), scheduler.Job{
		Name:    "array",
		Script:  `echo "task $SLURM_ARRAY_TASK_ID" >"task.$SLURM_ARRAY_TASK_ID"; exit $((SLURM_ARRAY_TASK_ID == 3))`,
		Array:   &scheduler.ArrayRange{First: 1, Last: 3, Step: 1},
		WorkDir: dir,
		Stdout:  "/dev/null",
	})
	require.NoError(t, err)
	_, err = strconv.Atoi(string(id))
	require.NoError(t, err, "the id of the whole array")

	res := schedulertest.Wait(t, s, id)
	require.Len(t, res.Tasks, 3)
	for i, task := range res.Tasks {
		assert.Equal(t, i+1, task.Task)
		assert.Equal(t, scheduler.JobID(fmt.Sprintf("%s.%d", id, i+1)), task.ID)
		assert.Equal(t, fmt.Sprintf("task %d\n", i+1), schedulertest.ReadFile(t, filepath.Join(dir, fmt.Sprintf("task.%d", i+1))))
	}
	assert.Equal(t, scheduler.StateDone, res.Tasks[0].State)
	assert.Equal(t, scheduler.StateFailed, res.Tasks[2].State)
	assert.Equal(t, 1, res.Tasks[2].ExitCode)
	assert.Equal(t, scheduler.StateFailed, res.State)

	for _, taskID := range []string{string(id) + ".2", string(id) + "_2"} {
		one, err := s.Result(t.Context(), scheduler.JobID(taskID))
		require.NoError(t, err)
		assert.Equal(t, scheduler.StateDone, one.State)
		assert.Equal(t, 2, one.Task)
		assert.Equal(t, scheduler.JobID(taskID), one.ID)
	}
}

// TestEnvRoundTrip sends 10,000 random strings (every byte but NUL) through one real job, half as
// environment values and half as arguments, and compares what the job saw byte for byte.
func TestEnvRoundTrip(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	bash := testenv.Require(t, "bash")[0]
	r := rand.New(rand.NewPCG(1, 2))
	const special = "'\"\\$`!*?[]{}()<>|&;#~=% \t\n\r\x7f\xff#$-:%"
	random := func() string {
		b := make([]byte, r.IntN(32))
		for i := range b {
			if r.IntN(2) == 0 {
				b[i] = special[r.IntN(len(special))]
			} else {
				b[i] = byte(1 + r.IntN(255))
			}
		}
		return string(b)
	}
	env := make([]string, 5000)
	for i := range env {
		env[i] = fmt.Sprintf("HPCSHIP_RT_%04d=%s", i, random())
	}
	args := make([]string, 5000)
	for i := range args {
		args[i] = random()
	}
	j := scheduler.Job{
		Name: "roundtrip",
		Command: append([]string{"bash", "-c", `printf '%s\0' "$@" >args.out && env -0 >env.out`, "roundtrip"},
			args...),
		Env:     env,
		WorkDir: dir,
		Stdout:  filepath.Join(dir, "job.out"),
	}
	script, err := s.Jobscript(j)
	require.NoError(t, err)
	cmd := exec.CommandContext(t.Context(), bash, "-n")
	cmd.Stdin = bytes.NewReader(script)
	syntax, err := cmd.CombinedOutput()
	require.NoError(t, err, "bash -n: %s", syntax)

	id, err := s.Submit(t.Context(), j)
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	require.Equal(t, scheduler.StateDone, res.State, schedulertest.ReadFile(t, filepath.Join(dir, "job.out")))

	gotArgs := strings.Split(strings.TrimSuffix(schedulertest.ReadFile(t, filepath.Join(dir, "args.out")), "\x00"), "\x00")
	require.Len(t, gotArgs, len(args))
	for i := range args {
		if args[i] != gotArgs[i] {
			require.Equal(t, []byte(args[i]), []byte(gotArgs[i]), "argument %d", i)
		}
	}
	gotEnv := map[string]string{}
	for _, kv := range strings.Split(schedulertest.ReadFile(t, filepath.Join(dir, "env.out")), "\x00") {
		if name, value, ok := strings.Cut(kv, "="); ok && strings.HasPrefix(name, "HPCSHIP_RT_") {
			gotEnv[name] = value
		}
	}
	require.Len(t, gotEnv, len(env))
	for _, kv := range env {
		name, value, _ := strings.Cut(kv, "=")
		if value != gotEnv[name] {
			require.Equal(t, []byte(value), []byte(gotEnv[name]), "variable %s", name)
		}
	}
}

func TestWaitStopsOnContextCancel(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "long", Command: []string{"sleep", "300"}, WorkDir: dir, Stdout: "/dev/null"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = s.Cancel(context.WithoutCancel(t.Context()), id) })

	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()
	start := time.Now()
	_, err = s.Wait(ctx, id)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 10*time.Second)
}

func TestSubmitErrors(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	_, err := s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}, Queue: "nosuch", WorkDir: dir})
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, 1, ce.ExitCode)
	assert.Contains(t, ce.Stderr, "invalid partition specified: nosuch")
	assert.Equal(t, "sbatch --parsable", ce.Command)
	assert.NotErrorIs(t, err, slurm.ErrUnavailable)

	_, err = s.Submit(t.Context(), scheduler.Job{Name: "a\nb", Command: []string{"true"}})
	require.ErrorIs(t, err, scheduler.ErrInvalidJob, "rejected before sbatch")

	s, _ = cluster(t, slurm.WithAccountingTimeout(time.Second))
	_, err = s.Status(t.Context(), "9999999")
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
	_, err = s.Result(t.Context(), "9999999")
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
}

// TestSubmitOutlivesItsContextOnTheCluster ends Submit's ctx after sbatch has handed the job to slurmctld but before it
// exits: the caller still gets the job's id, and Slurm knows the job.
func TestSubmitOutlivesItsContextOnTheCluster(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	r := &schedulertest.LateCancelRunner{
		Runner:  schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}},
		Command: "sbatch",
		Cancel:  cancel,
	}
	s, dir := cluster(t, slurm.WithRunner(r))
	r.Dir = dir
	t.Cleanup(func() {
		if id := strings.TrimSpace(r.Printed(t)); id != "" {
			_ = s.Cancel(context.WithoutCancel(t.Context()), scheduler.JobID(id))
		}
	})

	id, err := s.Submit(ctx, scheduler.Job{Name: "late", Command: []string{"true"}, Hold: true, WorkDir: dir, Stdout: "/dev/null"})
	require.ErrorIs(t, err, context.Canceled)
	var se *scheduler.SubmittedError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, strings.TrimSpace(r.Printed(t)), string(id))
	assert.Equal(t, id, se.ID)
	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateHeld, st.State)
	assert.Equal(t, "late", st.Name)
}

// controllerOutage makes squeue and sacct fail as they do when slurmctld and slurmdbd are down, for d after
// the first of them: it points them at conf, a copy of slurm.conf whose controller and accounting ports
// nothing listens on.
func controllerOutage(conf string, d time.Duration) *schedulertest.OutageRunner {
	return &schedulertest.OutageRunner{
		Runner:   schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}},
		Commands: []string{"squeue", "sacct"},
		Env:      []string{"SLURM_CONF=" + conf},
		Duration: d,
	}
}

// deadConf writes a slurm.conf that names ports nothing listens on, readable by the submit user.
func deadConf(t *testing.T, dir string) string {
	t.Helper()
	conf, err := os.ReadFile("/etc/slurm/slurm.conf")
	require.NoError(t, err)
	var b strings.Builder
	for _, line := range strings.Split(string(conf), "\n") {
		switch {
		case strings.HasPrefix(line, "SlurmctldPort="):
			line = "SlurmctldPort=1"
		case strings.HasPrefix(line, "AccountingStoragePort="):
			line = "AccountingStoragePort=1"
		}
		b.WriteString(line + "\n")
	}
	path := filepath.Join(dir, "dead.conf")
	require.NoError(t, os.WriteFile(path, []byte(b.String()), 0o644))
	return path
}

// TestWaitSurvivesOutage makes every status command fail for 5 s while Wait polls a running job.
func TestWaitSurvivesOutage(t *testing.T) {
	t.Parallel()
	_, dir := cluster(t)
	conf := deadConf(t, dir)
	r := controllerOutage(conf, 5*time.Second)
	s, _ := cluster(t, slurm.WithRunner(r), slurm.WithCommandTimeout(20*time.Second))
	id, err := s.Submit(t.Context(), scheduler.Job{Name: "outage", Command: []string{"sleep", "8"}, WorkDir: dir, Stdout: "/dev/null"})
	require.NoError(t, err)
	res := schedulertest.Wait(t, s, id)
	assert.Equal(t, scheduler.StateDone, res.State)
	assert.Positive(t, r.Failures(), "the outage happened during Wait")

	// The same outage with no tolerance ends Wait at the first failure, as a transient error.
	s2, _ := cluster(t, slurm.WithRunner(controllerOutage(conf, time.Minute)), slurm.WithOutageTolerance(0))
	_, err = s2.Wait(t.Context(), id)
	require.ErrorIs(t, err, slurm.ErrUnavailable)
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	t.Logf("transient failure: %v", err)
	assert.False(t, errors.Is(err, scheduler.ErrJobNotFound))
}

// TestDirectiveQuoting submits held jobs whose directive values hold what sbatch's parser treats specially
// (quotes, backslashes, '#', blanks, shell syntax) and reads them back from Slurm.
func TestDirectiveQuoting(t *testing.T) {
	t.Parallel()
	s, dir := cluster(t)
	for _, name := range []string{
		`all "fields" it's #1 \o/`,
		"$(whoami);x`y`|z&w>v",
		"two  blanks ",
		`trailing\`,
		"hetjob",
		"-J",
	} {
		comment := "c:" + name
		id, err := s.Submit(t.Context(), scheduler.Job{Name: name, Command: []string{"true"}, Hold: true,
			WorkDir: dir, Stdout: "/dev/null", Native: []string{"--comment", comment}})
		require.NoError(t, err, "name %q", name)
		st, err := s.Status(t.Context(), id)
		require.NoError(t, err)
		assert.Equal(t, name, st.Name)
		out, err := exec.CommandContext(t.Context(), "squeue", "-h", "-j", string(id), "-o", "%k").Output()
		require.NoError(t, err)
		assert.Equal(t, comment+"\n", string(out))
		require.NoError(t, s.Cancel(t.Context(), id))
	}
}
