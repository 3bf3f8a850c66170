package scheduler_test

import (
	"context"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/slurm"
)

// backend is one scheduler under test, reached as the unprivileged user its setup script creates.
type backend struct {
	name string
	s    scheduler.Scheduler
	user string
}

// backends returns the Grid Engine cell of scripts/gridengine-setup.sh and the Slurm cluster of
// scripts/slurm-setup.sh; it skips (fails under HPCSHIP_INTEGRATION=1) unless both are there.
func backends(t *testing.T) []backend {
	t.Helper()
	testenv.Require(t, "qsub", "qstat", "qacct", "qdel", "sbatch", "squeue", "sacct", "scancel", "runuser")
	testenv.RequireRoot(t)
	for _, u := range []string{"sgetest", "slurmtest"} {
		if _, err := user.Lookup(u); err != nil {
			testenv.Skipf(t, "no user %s: run scripts/gridengine-setup.sh and scripts/slurm-setup.sh", u)
			return nil
		}
	}
	g, err := sge.New(sge.WithRunner(schedulertest.UserRunner{User: "sgetest", Runner: scheduler.LocalRunner{}}), sge.WithCell("/var/lib/gridengine", "default"),
		sge.WithPollInterval(200*time.Millisecond, time.Second), sge.WithAccountingTimeout(30*time.Second))
	require.NoError(t, err)
	s, err := slurm.New(slurm.WithRunner(schedulertest.UserRunner{User: "slurmtest", Runner: scheduler.LocalRunner{}}),
		slurm.WithPollInterval(200*time.Millisecond, time.Second), slurm.WithAccountingTimeout(30*time.Second))
	require.NoError(t, err)
	return []backend{{"sge", g, "sgetest"}, {"slurm", s, "slurmtest"}}
}

// outcome is what a caller of either backend observes of a job: its Result's state and exit status, its
// tasks', and the files it wrote.
type outcome struct {
	State    scheduler.JobState
	ExitCode int
	Tasks    []scheduler.JobState
	Files    map[string]string
}

// TestSameJobBothBackends runs one table of Jobs on Grid Engine and on Slurm and requires the same outcome.
func TestSameJobBothBackends(t *testing.T) {
	bs := backends(t)
	if bs == nil {
		return
	}
	// {dir} becomes the backend's work directory; files lists what the job writes there.
	tests := []struct {
		name   string
		job    scheduler.Job
		cancel bool
		files  []string
	}{
		{name: "command", files: []string{"out"}, job: scheduler.Job{
			Name:    "command",
			Command: []string{"printf", "%s|", "a b", "it's", `"q"`, "$HOME", "*"},
			Stdout:  "{dir}/out", JoinOutput: true,
		}},
		{name: "exit 3", job: scheduler.Job{
			Name: "exit3", Script: "exit 3", Stdout: "/dev/null", JoinOutput: true,
		}},
		{name: "env and source", files: []string{"env"}, job: scheduler.Job{
			Name:   "env",
			Source: []string{"{dir}/vars.sh"},
			Env:    []string{"A=first", "B=x y\nz", "A=second", "C="},
			Script: `printf '%s|%s|%s|%s\n' "$A" "$B" "${C-unset}" "$FROM_SOURCE" >env`,
			Stdout: "/dev/null", JoinOutput: true, Walltime: 5 * time.Minute, MemoryPerSlot: 1 << 30,
		}},
		{name: "parallel", files: []string{"machinefile", "ranks"}, job: scheduler.Job{
			Name: "parallel", ParallelEnv: "mpislots", Slots: 2,
			Machinefile: scheduler.Machinefile{Name: "hosts", Format: scheduler.MachinefileHostSlots},
			Command: []string{"bash", "-c", `sed "s/^$(hostname)/HOST/" "$1" >machinefile &&
mpiexec -launcher fork -machinefile "$1" -np 2 bash -c 'echo "rank $PMI_RANK"' | sort >ranks`, "x", scheduler.MachinefileArg},
			Stdout: "/dev/null", JoinOutput: true,
		}},
		{name: "array", files: []string{"t1", "t2", "t3"}, job: scheduler.Job{
			Name:   "array",
			Array:  &scheduler.ArrayRange{First: 1, Last: 3, Step: 1},
			Script: `t=${SGE_TASK_ID:-$SLURM_ARRAY_TASK_ID}; echo "task $t" >"t$t"; exit $((t == 2 ? 4 : 0))`,
			Stdout: "/dev/null", JoinOutput: true,
		}},
		{name: "held and cancelled", cancel: true, job: scheduler.Job{
			Name: "held", Command: []string{"true"}, Hold: true, Stdout: "/dev/null", JoinOutput: true,
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			outcomes := make([]outcome, len(bs))
			var wg sync.WaitGroup
			for i, b := range bs {
				wg.Add(1)
				go func() {
					defer wg.Done()
					outcomes[i] = run(t, b, tc.job, tc.cancel, tc.files)
				}()
			}
			wg.Wait()
			if t.Failed() {
				return
			}
			assert.Equal(t, outcomes[0], outcomes[1], "%s (want) against %s (got)", bs[0].name, bs[1].name)
		})
	}
}

// run submits j to b in a fresh directory and returns what it observes.
func run(t *testing.T, b backend, j scheduler.Job, cancel bool, files []string) outcome {
	dir := schedulertest.UserDir(t, b.user)
	require.NoError(t, os.WriteFile(filepath.Join(dir, "vars.sh"), []byte("FROM_SOURCE=sourced\n"), 0o644))
	j.WorkDir = dir
	j.Stdout = strings.ReplaceAll(j.Stdout, "{dir}", dir)
	j.Source = slices.Clone(j.Source) // the table's slice is shared by both backends
	for i, f := range j.Source {
		j.Source[i] = strings.ReplaceAll(f, "{dir}", dir)
	}
	ctx, stop := context.WithTimeout(t.Context(), 3*time.Minute)
	defer stop()
	id, err := b.s.Submit(ctx, j)
	if !assert.NoError(t, err, b.name) {
		return outcome{}
	}
	if cancel {
		assert.NoError(t, b.s.Cancel(ctx, id), b.name)
	}
	res, err := b.s.Wait(ctx, id)
	if !assert.NoError(t, err, b.name) {
		return outcome{}
	}
	o := outcome{State: res.State, ExitCode: res.ExitCode, Files: map[string]string{}}
	for _, task := range res.Tasks {
		o.Tasks = append(o.Tasks, task.State)
	}
	for _, f := range files {
		content, err := os.ReadFile(filepath.Join(dir, f))
		assert.NoError(t, err, "%s: %s", b.name, f)
		o.Files[f] = string(content)
	}
	return o
}
