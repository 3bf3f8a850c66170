package main

import (
	"bytes"
	"context"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
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

// The single-host Grid Engine cell of scripts/gridengine-setup.sh and the Slurm cluster of
// scripts/slurm-setup.sh, each with its unprivileged submit user: Grid Engine gives root-owned jobs no
// TMPDIR, and Slurm's tests run as a user too.
const (
	cellRoot        = "/var/lib/gridengine"
	cellName        = "default"
	sgeSubmitUser   = "sgetest"
	slurmSubmitUser = "slurmtest"
	slurmPartition  = "hpc"
)

// asUser runs the backends' commands as user, as a site's submit wrapper would.
func asUser(user string) schedulertest.UserRunner {
	return schedulertest.UserRunner{User: user, Runner: scheduler.LocalRunner{}}
}

// gridEngine returns the test cell's backend, or skips (fails under HPCSHIP_INTEGRATION=1) without it.
func gridEngine(t *testing.T) batchSystem {
	t.Helper()
	testenv.Require(t, "qsub", "qstat", "qacct", "runuser")
	runner := asUser(sgeSubmitUser)
	schedulertest.RequireGridEngine(t, runner, cellRoot, cellName)
	s, err := sge.New(sge.WithRunner(runner), sge.WithCell(cellRoot, cellName),
		sge.WithPollInterval(100*time.Millisecond, 500*time.Millisecond), sge.WithAccountingTimeout(30*time.Second))
	require.NoError(t, err)
	return s
}

// slurmCluster returns the test cluster's backend, or skips (fails under HPCSHIP_INTEGRATION=1) without it.
func slurmCluster(t *testing.T) batchSystem {
	t.Helper()
	testenv.Require(t, "sbatch", "squeue", "sacct", "scontrol", "runuser")
	schedulertest.RequireSlurm(t, scheduler.LocalRunner{})
	s, err := slurm.New(slurm.WithRunner(asUser(slurmSubmitUser)),
		slurm.WithPollInterval(100*time.Millisecond, 500*time.Millisecond), slurm.WithAccountingTimeout(30*time.Second))
	require.NoError(t, err)
	return s
}

// sharedWorkdir is a directory the submit user can write, as a cluster's shared file system is.
func sharedWorkdir(t *testing.T, submitUser string) string {
	t.Helper()
	u, err := user.Lookup(submitUser)
	if err != nil {
		testenv.Skipf(t, "no user %s: run the batch system's setup script", submitUser)
		return ""
	}
	dir, err := os.MkdirTemp("", "hpcship-rdma-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	require.NoError(t, os.Chown(dir, uid, gid))
	return dir
}

// TestWorkflowCluster runs every step for real: emulated Azure, then the job submitted to the real Grid
// Engine cell or Slurm cluster and waited for. Neither has Intel MPI, Singularity or InfiniBand, so the job
// fails; the program must find the job's output file where the batch system wrote it, report the failure
// with its exit status, exit 1, and print no results.
func TestWorkflowCluster(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	testenv.Require(t, "mpirun") // MPICH's stands in for Intel MPI's launcher: it tries the wrapper on each rank
	tests := []struct {
		name   string
		user   string
		batch  func(*testing.T) batchSystem
		args   []string
		output string // the output file's name, with ID for the job id
		wait   string
	}{
		{name: "sge", user: sgeSubmitUser, batch: gridEngine, output: "rdma.oID", wait: "qstat -j ID; qacct -j ID"},
		{name: "slurm", user: slurmSubmitUser, batch: slurmCluster, args: []string{"-scheduler", "slurm", "-queue", slurmPartition},
			output: "slurm-ID.out", wait: "squeue -j ID; sacct -j ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			d := newEmulatedAzure(t).deps(t)
			d.batch = tt.batch(t)
			workdir := sharedWorkdir(t, tt.user)
			ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
			defer cancel()
			var stdout, stderr bytes.Buffer
			args := append([]string{"-subscription", "sub", "-resource-group", "hpc-rg", "-registry", "rdmaacr",
				"-create", "-location", "westeurope", "-context", buildContext(t), "-cache-dir", t.TempDir(),
				"-workdir", workdir, "-slots", "2"}, tt.args...)
			code := run(ctx, args, &stdout, &stderr, d)
			require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", &stdout, &stderr)

			m := regexp.MustCompile(`(?m)^      job (\d+)$`).FindStringSubmatch(stdout.String())
			require.NotNil(t, m, "no job id in:\n%s", &stdout)
			id := m[1]
			idRE := regexp.MustCompile("ID")
			assert.Contains(t, stdout.String(), "[8/9] Wait for it\n      $ "+idRE.ReplaceAllLiteralString(tt.wait, id))
			assert.Regexp(t, `job `+id+` failed, exit status [1-9]\d*, on \S+ after`, stdout.String())
			output := filepath.Join(workdir, idRE.ReplaceAllLiteralString(tt.output, id))
			assert.Contains(t, stdout.String(), "$ less "+output)
			assert.Regexp(t, `rdma: job `+id+` failed with exit status [1-9]\d*; see `+regexp.QuoteMeta(output), stderr.String())
			assert.NotContains(t, stdout.String(), "PingPong, 2 processes")

			// The batch system wrote the job's output where the program looked: the jobscript ran, and its
			// payload failed.
			body, err := os.ReadFile(output)
			require.NoError(t, err)
			assert.Contains(t, string(body), "singularity")
		})
	}
}

// cancelOnJob is stdout that ends the run's context once the program reports the job it submitted, as a
// user's Ctrl-C while it waits would.
type cancelOnJob struct {
	bytes.Buffer
	cancel context.CancelFunc
}

var submittedRE = regexp.MustCompile(`(?m)^      job (\d+)$`)

func (w *cancelOnJob) Write(p []byte) (int, error) {
	n, err := w.Buffer.Write(p)
	if submittedRE.Match(w.Bytes()) {
		w.cancel()
	}
	return n, err
}

// TestWaitInterrupted checks that an interrupted wait says the job keeps going and how to cancel it.
func TestWaitInterrupted(t *testing.T) {
	t.Parallel()
	testenv.RequireRoot(t)
	d := newEmulatedAzure(t).deps(t)
	d.batch = gridEngine(t)
	workdir := sharedWorkdir(t, sgeSubmitUser)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	stdout := &cancelOnJob{cancel: cancel}
	var stderr bytes.Buffer
	// 64 slots of the cell's 8: the job stays pending.
	code := run(ctx, []string{"-subscription", "sub", "-resource-group", "hpc-rg", "-registry", "rdmaacr", "-create",
		"-location", "westeurope", "-context", buildContext(t), "-cache-dir", t.TempDir(), "-workdir", workdir,
		"-slots", "64"}, stdout, &stderr, d)
	m := submittedRE.FindStringSubmatch(stdout.String())
	require.NotNil(t, m, "stdout:\n%s\nstderr:\n%s", stdout, &stderr)
	id := m[1]
	t.Cleanup(func() {
		out, err := asUser(sgeSubmitUser).Run(context.Background(),
			scheduler.Command{Name: "qdel", Args: []string{id}, Env: []string{"SGE_ROOT=" + cellRoot, "SGE_CELL=" + cellName}})
		if err != nil || out.ExitCode != 0 {
			t.Logf("qdel %s: %v %s", id, err, out.Stderr)
		}
	})
	assert.Equal(t, 1, code)
	assert.Contains(t, stderr.String(), "rdma: stopped waiting for job "+id+", which keeps going (qdel "+id+" cancels it): ")
	assert.Contains(t, stderr.String(), "context canceled")
}
