// Package e2e tests the whole workflow end to end on the real services, composed through the packages'
// public APIs and plain values the way a program using hpcship would:
//
//	imagebuild (Dockerfile with a RUN step, NewNamespaceRunner) ─► v1.Image
//	acr.Push with Azure AD credentials ─► docker-registry behind the ACR token emulation (internal/acrtest)
//	singularity.Pull ─► SIF; singularity.Inspect ─► offset of its squashfs partition
//	scheduler/sge ─► a "-pe mpi 2" job on the Grid Engine cell, as its unprivileged submit user:
//	    squashfuse -o offset=N image.sif mnt; trap 'fusermount -u mnt' EXIT
//	    mpiexec -machinefile $HPCSHIP_MACHINEFILE -np 2  ch-run mnt --  /opt/e2e/ranks …   (mpi.Launch)
//	                                                     └ Wrapper ─┘  (singularity exec in real use)
//	Result (qacct) ─► state and exit status
//
// It needs what scripts/test.sh sets up (scripts/services/e2e.sh and gridengine.sh): mpicc, busybox-static,
// docker-registry, squashfuse and fusermount with a /dev/fuse unprivileged users can open, Charliecloud's
// ch-run, MPICH's mpiexec, root, and the running Grid Engine cell with its user sgetest. Without them the test
// skips, or fails under HPCSHIP_INTEGRATION=1.
package e2e

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/singularity"
)

// The Grid Engine cell scripts/gridengine-setup.sh sets up, and its unprivileged submit user: Grid Engine
// runs root-owned jobs without TMPDIR, and a real user's job has no root to mount with.
const (
	cellRoot   = "/var/lib/gridengine"
	cellName   = "default"
	submitUser = "sgetest"
)

// Paths inside the image.
const (
	rankProgram = "/opt/e2e/ranks"
	markerFile  = "/opt/e2e/marker" // written by the RUN step; the host has no such file
)

// tools are the programs the test runs, as full paths.
type tools struct {
	mpicc, ldd, busybox, squashfuse, fusermount, chRun, mpiexec string
}

// TestWorkflow builds an image with an MPI program in it, pushes it to the ACR-emulating registry, pulls it
// as a SIF and runs two MPICH ranks in it from a Grid Engine job; once with every rank succeeding and once
// with rank 1 exiting 3.
func TestWorkflow(t *testing.T) {
	start := time.Now()
	tl, s, shared := requirements(t)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()

	// Build: FROM scratch, busybox, a RUN step that installs its applets and writes the marker, then the
	// MPI program with the libraries it links.
	token := randomToken(t)
	img, err := imagebuild.BuildDockerfile(ctx, buildContext(ctx, t, tl),
		imagebuild.WithCacheDir(t.TempDir()), // a cold cache: every run executes the RUN step
		imagebuild.WithBuildArg("TOKEN", token),
		imagebuild.WithRunner(imagebuild.NewNamespaceRunner()))
	require.NoError(t, err)
	built := time.Now()

	// Push with Azure AD credentials, exchanged for ACR tokens at the registry.
	reg := acrtest.Start(t)
	kc, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()))
	require.NoError(t, err)
	ref, err := name.ParseReference(reg.LoginServer() + "/hpc/e2e:latest")
	require.NoError(t, err)
	digest, err := acr.Push(ctx, ref, img, acr.WithKeychain(kc))
	require.NoError(t, err)
	pushed := time.Now()

	// Pull as a SIF into the directory the submit user shares, and find its squashfs partition. The
	// partition is stored uncompressed: under the race detector, as CI runs the tests, deflating the 45 MB
	// of MPICH and its libraries costs as much CPU as the rest of the workflow together (singularity's own
	// tests mount compressed partitions with squashfuse).
	sifPath, err := singularity.Pull(ctx, ref, shared, singularity.WithKeychain(kc), singularity.WithCacheDir(t.TempDir()),
		singularity.WithCompressionLevel(0))
	require.NoError(t, err)
	info, err := singularity.Inspect(sifPath)
	require.NoError(t, err)
	offset := int64(-1)
	for _, d := range info.Descriptors {
		if d.PartType == "*System" && d.FSType == "Squashfs" {
			offset = d.Offset
		}
	}
	require.Positive(t, offset, "the SIF has a primary squashfs partition: %+v", info.Descriptors)
	pulled := time.Now()
	t.Logf("image %s: build %v, push %v, pull as SIF %v", digest, built.Sub(start).Round(time.Millisecond),
		pushed.Sub(built).Round(time.Millisecond), pulled.Sub(pushed).Round(time.Millisecond))

	// The job's MPI environment, rendered by package mpi: the seed workflow's Intel MPI settings for H16r
	// (MPICH ignores them; they show that what mpi renders reaches every rank inside the container), and
	// the UCX settings the ranks need, as Debian's MPICH is built on UCX (ch4:ucx). ch-run gives every rank
	// a user namespace of its own, in which UCX's shared-memory transport cannot open the other rank's
	// /proc/PID/fd links (EACCES); UCX_POSIX_USE_PROC_LINK=n makes it use named segments instead.
	preset, err := mpi.AzurePreset("Standard_H16r")
	require.NoError(t, err)
	cfg, err := preset.IntelMPI(mpi.MustParseVersion("5.1.3.223"))
	require.NoError(t, err)
	env, err := cfg.Env()
	require.NoError(t, err)
	ucx, err := mpi.UCX{TLS: "self,sm"}.Env()
	require.NoError(t, err)
	env = append(append(env, ucx...), "UCX_POSIX_USE_PROC_LINK=n")

	w := workflow{tools: tl, sge: s, dir: shared, sif: sifPath, offset: offset, env: env}
	t.Run("jobs", func(t *testing.T) {
		t.Run("all ranks succeed", func(t *testing.T) {
			t.Parallel()
			res, ranks := w.run(ctx, t, "e2e_ok", "-")
			assert.Equal(t, scheduler.StateDone, res.State)
			assert.Equal(t, 0, res.ExitCode)
			w.checkRanks(t, ranks, token)
		})
		t.Run("rank 1 exits 3", func(t *testing.T) {
			t.Parallel()
			res, ranks := w.run(ctx, t, "e2e_fail", "1:3")
			assert.Equal(t, scheduler.StateFailed, res.State)
			assert.Equal(t, 3, res.ExitCode, "the job exits with the failing rank's status")
			w.checkRanks(t, ranks, token)
		})
	})
	t.Logf("whole workflow, both jobs: %v", time.Since(start).Round(time.Millisecond))
}

// requirements checks what the test needs and returns the programs, a driver for the cell that runs its
// commands as the submit user, and a directory that user owns and the test can write.
func requirements(t *testing.T) (tools, *sge.SGE, string) {
	t.Helper()
	p := testenv.Require(t, "mpicc", "ldd", "busybox", "squashfuse", "fusermount", "ch-run", "mpiexec",
		"qsub", "qstat", "qacct", "runuser", "docker-registry")
	tl := tools{mpicc: p[0], ldd: p[1], busybox: p[2], squashfuse: p[3], fusermount: p[4], chRun: p[5], mpiexec: p[6]}
	testenv.RequireRoot(t)
	// squashfuse opens /dev/fuse as the job's user; fusermount, which could do it for that user, is only
	// tried by libfuse when the open fails for want of the device, not of permission.
	if fi, err := os.Stat("/dev/fuse"); err != nil || fi.Mode().Perm()&0o006 != 0o006 {
		testenv.Skipf(t, "/dev/fuse is not open to unprivileged users (%v): scripts/services/e2e.sh makes it 0666 as udev does", statMode(fi, err))
	}
	if _, err := os.Stat(markerFile); err == nil {
		t.Fatalf("%s exists on this machine: it must be found only in the image", markerFile)
	}
	if _, err := user.Lookup(submitUser); err != nil {
		testenv.Skipf(t, "no user %s: run scripts/gridengine-setup.sh", submitUser)
	}
	r := schedulertest.UserRunner{User: submitUser, Runner: scheduler.LocalRunner{}}
	out, err := r.Run(t.Context(), scheduler.Command{Name: "qstat", Env: []string{"SGE_ROOT=" + cellRoot, "SGE_CELL=" + cellName}})
	if err != nil || out.ExitCode != 0 {
		testenv.Skipf(t, "no Grid Engine cell answers (%v %s): run scripts/gridengine-setup.sh", err, out.Stderr)
	}
	s, err := sge.New(sge.WithRunner(r), sge.WithCell(cellRoot, cellName),
		sge.WithPollInterval(200*time.Millisecond, time.Second), sge.WithAccountingTimeout(20*time.Second))
	require.NoError(t, err)

	dir, err := os.MkdirTemp("", "hpcship-e2e-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	giveToSubmitUser(t, dir)
	return tl, s, dir
}

func statMode(fi os.FileInfo, err error) string {
	if err != nil {
		return err.Error()
	}
	return fmt.Sprintf("mode %#o", fi.Mode().Perm())
}

func randomToken(t *testing.T) string {
	b := make([]byte, 8)
	_, err := rand.Read(b)
	require.NoError(t, err)
	return "hpcship-e2e-" + hex.EncodeToString(b)
}

// buildContext writes the build context: busybox, the MPI program compiled with mpicc and every shared
// library it loads (as ldd lists them, at the same paths), and the Dockerfile, whose path it returns.
func buildContext(ctx context.Context, t *testing.T, tl tools) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	prog := filepath.Join(root, rankProgram)
	require.NoError(t, os.MkdirAll(filepath.Dir(prog), 0o755))
	src, err := filepath.Abs(filepath.Join("testdata", "ranks.c"))
	require.NoError(t, err)
	out, err := exec.CommandContext(ctx, tl.mpicc, "-O2", "-o", prog, src).CombinedOutput()
	require.NoError(t, err, "mpicc: %s", out)

	out, err = exec.CommandContext(ctx, tl.ldd, prog).Output()
	require.NoError(t, err, "ldd %s", prog)
	libs := 0
	for line := range strings.Lines(string(out)) {
		// "libmpich.so.12 => /lib/x86_64-linux-gnu/libmpich.so.12 (0x…)" or "/lib64/ld-linux-x86-64.so.2 (0x…)"
		require.NotContains(t, line, "not found", "ldd %s", prog)
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				copyFile(t, f, filepath.Join(root, f), 0o755)
				libs++
			}
		}
	}
	require.Positive(t, libs, "ldd found no library: %s", out)
	copyFile(t, tl.busybox, filepath.Join(dir, "busybox"), 0o755)

	df := filepath.Join(dir, "Dockerfile")
	require.NoError(t, os.WriteFile(df, []byte(`FROM scratch
COPY busybox /bin/busybox
ARG TOKEN
RUN ["/bin/busybox", "sh", "-c", "/bin/busybox mkdir -p /etc /sbin /usr/bin /usr/sbin `+filepath.Dir(markerFile)+` && /bin/busybox --install -s && echo root:x:0:0:root:/root:/bin/sh >/etc/passwd && echo root:x:0: >/etc/group && echo \"$TOKEN\" >`+markerFile+`"]
COPY rootfs/ /
ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
CMD ["/bin/sh"]
`), 0o644))
	return df
}

// copyFile copies the content of src (following symbolic links) to dst, creating its directory.
func copyFile(t *testing.T, src, dst string, mode os.FileMode) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Dir(dst), 0o755))
	in, err := os.Open(src)
	require.NoError(t, err)
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	require.NoError(t, err)
	_, err = io.Copy(out, in)
	require.NoError(t, err)
	require.NoError(t, out.Close())
}

// workflow is what the jobs share: the SIF in the submit user's directory and the MPI environment.
type workflow struct {
	tools
	sge    *sge.SGE
	dir    string
	sif    string
	offset int64
	env    []string
}

// mountAndRun is the job's payload: it mounts the SIF's squashfs partition, unmounts it when it exits, and
// runs the launcher, whose exit status becomes the job's.
const mountAndRun = `squashfuse=$1 fusermount=$2 mnt=$3 sif=$4 offset=$5
shift 5
"$squashfuse" -o "offset=$offset" "$sif" "$mnt" || exit
trap '"$fusermount" -u "$mnt"' EXIT
"$@"`

// run submits a -pe mpi 2 job that runs the MPI program's two ranks in the SIF through ch-run, waits for
// it, and returns its result and what each rank printed.
func (w workflow) run(ctx context.Context, t *testing.T, jobName, exit string) (scheduler.Result, map[int]map[string]string) {
	t.Helper()
	dir := filepath.Join(w.dir, jobName)
	mnt := filepath.Join(dir, "image")
	require.NoError(t, os.MkdirAll(mnt, 0o755))
	giveToSubmitUser(t, dir, mnt)
	t.Cleanup(func() { unmountIfMounted(t, w.fusermount, mnt) })

	names := make([]string, 0, len(w.env))
	for _, kv := range w.env {
		n, _, _ := strings.Cut(kv, "=")
		names = append(names, n)
	}
	launch, err := mpi.Launch{
		Flavor:      mpi.MPICH,
		Launcher:    w.mpiexec,
		MachineFile: scheduler.MachinefileArg,
		Ranks:       2,
		Wrapper:     []string{w.chRun, mnt, "--"},
		Command:     append([]string{rankProgram, markerFile, exit}, names...),
	}.Argv()
	require.NoError(t, err)

	out := filepath.Join(dir, "job.out")
	id, err := w.sge.Submit(ctx, scheduler.Job{
		Name:        jobName,
		ParallelEnv: "mpi",
		Slots:       2,
		Machinefile: scheduler.Machinefile{Name: "u_machines"},
		Env:         w.env,
		Command: append([]string{"/bin/bash", "-c", mountAndRun, jobName,
			w.squashfuse, w.fusermount, mnt, w.sif, strconv.FormatInt(w.offset, 10)}, launch...),
		WorkDir:    dir,
		Stdout:     out,
		JoinOutput: true,
		Walltime:   2 * time.Minute,
	})
	require.NoError(t, err)
	submitted := time.Now()

	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	res, err := w.sge.Wait(wctx, id)
	if err != nil {
		_ = w.sge.Cancel(context.WithoutCancel(ctx), id)
	}
	require.NoError(t, err)
	b, err := os.ReadFile(out)
	require.NoError(t, err)
	t.Logf("job %s: %s, exit %d; submitted %s, started %s, ended %s, Wait returned %s on %s; output:\n%s", id, res.State, res.ExitCode,
		submitted.Format(time.StampMilli), res.Start.Format(time.StampMilli), res.End.Format(time.StampMilli), time.Now().Format(time.StampMilli), res.Host, b)
	assert.Equal(t, 0, res.FailureCode, "Grid Engine itself did not fail: %s", res.Failure)
	assert.Equal(t, "mpi", res.ParallelEnv)
	assert.Equal(t, 2, res.Slots)
	assert.False(t, mounted(t, mnt), "the jobscript unmounted %s on exit", mnt)
	return res, parseRanks(t, b)
}

// checkRanks asserts that both ranks wired up, read the file only the image has and saw the job's MPI
// environment.
func (w workflow) checkRanks(t *testing.T, ranks map[int]map[string]string, token string) {
	t.Helper()
	require.Len(t, ranks, 2, "want output from ranks 0 and 1")
	for _, rank := range []int{0, 1} {
		got := ranks[rank]
		require.NotNil(t, got, "rank %d printed nothing", rank)
		assert.Equal(t, "2", got["size"], "rank %d", rank)
		assert.Equal(t, "1", got["sum"], "rank %d: Allreduce of the ranks", rank)
		assert.Equal(t, token, got["file"], "rank %d read %s, which the RUN step wrote into the image", rank, markerFile)
		for _, kv := range w.env {
			n, v, _ := strings.Cut(kv, "=")
			assert.Equal(t, v, got[n], "rank %d: %s", rank, n)
		}
	}
}

// parseRanks collects the program's "hpcship-e2e<TAB>rank<TAB>key<TAB>value" lines from the job's output,
// which also holds whatever the launcher and the ranks' libraries printed.
func parseRanks(t *testing.T, out []byte) map[int]map[string]string {
	t.Helper()
	ranks := map[int]map[string]string{}
	sc := bufio.NewScanner(strings.NewReader(string(out)))
	for sc.Scan() {
		f := strings.SplitN(sc.Text(), "\t", 4)
		if len(f) != 4 || f[0] != "hpcship-e2e" {
			continue
		}
		rank, err := strconv.Atoi(f[1])
		require.NoError(t, err, "line %q", sc.Text())
		if ranks[rank] == nil {
			ranks[rank] = map[string]string{}
		}
		ranks[rank][f[2]] = f[3]
	}
	require.NoError(t, sc.Err())
	return ranks
}

// giveToSubmitUser makes the submit user the owner of paths.
func giveToSubmitUser(t *testing.T, paths ...string) {
	t.Helper()
	u, err := user.Lookup(submitUser)
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	for _, p := range paths {
		require.NoError(t, os.Chown(p, uid, gid))
	}
}

// mounted reports whether path is a mount point, from /proc/self/mountinfo.
func mounted(t *testing.T, path string) bool {
	t.Helper()
	b, err := os.ReadFile("/proc/self/mountinfo")
	require.NoError(t, err)
	for line := range strings.Lines(string(b)) {
		// "36 35 98:0 /mnt1 /mnt/parent rw,noatime master:1 - ext3 /dev/root rw,errors=continue"
		if f := strings.Fields(line); len(f) > 4 && f[4] == path {
			return true
		}
	}
	return false
}

// unmountIfMounted removes a mount a failed job left behind, so that the directory can be removed.
func unmountIfMounted(t *testing.T, fusermount, mnt string) {
	if mounted(t, mnt) {
		out, err := exec.Command(fusermount, "-u", "-z", mnt).CombinedOutput()
		if err != nil {
			t.Logf("unmounting %s: %v %s", mnt, err, out)
		}
	}
}
