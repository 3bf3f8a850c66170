package main

import (
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

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler/sge"
)

// The single-host cell of scripts/gridengine-setup.sh, and its unprivileged user: Grid Engine gives
// root-owned jobs no TMPDIR.
const (
	cellRoot   = "/var/lib/gridengine"
	cellName   = "default"
	submitUser = "sgetest"
)

// userRunner runs the Grid Engine commands as another user, as a site's submit wrapper would.
type userRunner struct{ user string }

func (r userRunner) Run(ctx context.Context, c sge.Command) (sge.Output, error) {
	c.Args = append([]string{"-u", r.user, "--", c.Name}, c.Args...)
	c.Name = "runuser"
	return sge.LocalRunner{}.Run(ctx, c)
}

// TestWorkflowGridEngine runs every step for real: emulated Azure, then the job submitted to the real Grid
// Engine cell and waited for. The cell has no Intel MPI, Singularity or InfiniBand, so the job fails; the
// program must find the job's output file where Grid Engine wrote it and report the failure with its exit
// status, exit 1, and print no results.
func TestWorkflowGridEngine(t *testing.T) {
	t.Parallel()
	testenv.Require(t, "qsub", "qstat", "qacct", "runuser")
	testenv.RequireRoot(t)
	u, err := user.Lookup(submitUser)
	if err != nil {
		testenv.Skipf(t, "no user %s: run scripts/gridengine-setup.sh", submitUser)
		return
	}
	runner := userRunner{user: submitUser}
	out, err := runner.Run(t.Context(), sge.Command{Name: "qstat", Env: []string{"SGE_ROOT=" + cellRoot, "SGE_CELL=" + cellName}})
	if err != nil || out.ExitCode != 0 {
		testenv.Skipf(t, "no Grid Engine cell answers (%v %s): run scripts/gridengine-setup.sh", err, out.Stderr)
		return
	}
	batch, err := sge.New(sge.WithRunner(runner), sge.WithCell(cellRoot, cellName),
		sge.WithPollInterval(100*time.Millisecond, 500*time.Millisecond), sge.WithAccountingTimeout(30*time.Second))
	require.NoError(t, err)

	// The job runs as the submit user in a directory it can write, as on a cluster's shared file system.
	workdir, err := os.MkdirTemp("", "hpcship-rdma-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(workdir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	require.NoError(t, os.Chown(workdir, uid, gid))

	az := newEmulatedAzure(t)
	d := az.deps(t)
	d.batch = batch
	code, stdout, stderr := runRdma(t, d, "-subscription", "sub", "-resource-group", "hpc-rg", "-registry", "rdmaacr",
		"-create", "-location", "westeurope", "-context", buildContext(t), "-cache-dir", t.TempDir(),
		"-workdir", workdir, "-slots", "2")
	require.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)

	m := regexp.MustCompile(`(?m)^      job (\d+)$`).FindStringSubmatch(stdout)
	require.NotNil(t, m, "no job id in:\n%s", stdout)
	id := m[1]
	assert.Contains(t, stdout, "[8/9] Wait for it\n      $ qstat -j "+id+"; qacct -j "+id)
	assert.Regexp(t, `job `+id+` failed, exit status [1-9]\d*, on \S+ after`, stdout)
	output := filepath.Join(workdir, "rdma.o"+id)
	assert.Contains(t, stdout, "$ less "+output)
	assert.Regexp(t, `rdma: job `+id+` failed with exit status [1-9]\d*; see `+regexp.QuoteMeta(output), stderr)
	assert.NotContains(t, stdout, "PingPong, 2 processes")

	// Grid Engine wrote the job's output where the program looked: the jobscript ran and its payload failed.
	body, err := os.ReadFile(output)
	require.NoError(t, err)
	assert.NotEmpty(t, body)
}
