package main

import (
	"bytes"
	"context"
	"flag"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/slurm"
	"github.com/hpcship/hpcship/singularity"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// golden compares got with testdata/name, or rewrites the file under -update.
func golden(t *testing.T, name, got string) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
		return
	}
	want, err := os.ReadFile(path)
	require.NoError(t, err, "run go test -update to create it")
	assert.Equal(t, string(want), got, "differs from %s (go test -update rewrites it)", path)
}

// quickstartIn runs the quickstart with args in workdir and returns what it printed.
func quickstartIn(t *testing.T, workdir string, cfgEdit func(*config), args ...string) (*summary, string, error) {
	t.Helper()
	var stderr bytes.Buffer
	cfg, err := parseFlags(append([]string{"-workdir", workdir}, args...), &stderr)
	require.NoError(t, err, "%s", stderr.String())
	if cfgEdit != nil {
		cfgEdit(&cfg)
	}
	var out bytes.Buffer
	ctx, cancel := context.WithTimeout(t.Context(), 4*time.Minute)
	defer cancel()
	sum, err := quickstart(ctx, cfg, newConsole(&out))
	t.Logf("quickstart %s:\n%s", strings.Join(args, " "), out.String())
	return sum, out.String(), err
}

// TestDefaults runs the whole workflow on its defaults and reads back everything it wrote: the summary,
// the image in the registry (through the SIF made from it), the SIF with the sif reader and unsquashfs,
// the oras copy, and the jobscript.
func TestDefaults(t *testing.T) {
	t.Parallel()
	unsquashfs := testenv.Require(t, "unsquashfs")
	if unsquashfs == nil {
		return
	}
	workdir := t.TempDir()
	sum, out, err := quickstartIn(t, workdir, nil)
	require.NoError(t, err)

	// The summary names what the run made, and the image is the same on every run.
	sifPath := filepath.Join(workdir, "rdma_latest.sif")
	jobPath := filepath.Join(workdir, "rdma.job")
	assert.Equal(t, workdir, sum.workdir)
	assert.Equal(t, sifPath, sum.sif)
	assert.Equal(t, jobPath, sum.jobscript)
	assert.Regexp(t, `build +built an image of 2 layers, [\d.]+ [kMG]?B compressed \(`, out)
	assert.Regexp(t, `oras +pushed oras://\S+, pulled back to `+regexp.QuoteMeta(filepath.Join(workdir, "oras", "rdma-sif_latest.sif"))+`: identical \(`, out)
	assert.Empty(t, sum.jobID)
	golden(t, "image.digest", sum.image.DigestStr()+"\n")
	summaryAt := strings.Index(out, "\nSummary\n")
	require.NotEqual(t, -1, summaryAt, "no summary")
	summaryText := out[summaryAt:]
	assert.Contains(t, summaryText, "  image:     "+sum.image.String()+"\n")
	fi, err := os.Stat(sifPath)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), sum.sifSize)
	assert.Contains(t, summaryText, "  sif:       "+sifPath+" ("+strconv.FormatInt(fi.Size(), 10)+" bytes")
	assert.Contains(t, summaryText, "  oras:      oras://"+sum.oras.String()+"\n")
	assert.Contains(t, summaryText, "  jobscript: "+jobPath+"\n")
	assert.Contains(t, summaryText, "  job:       not submitted: qsub "+jobPath+"\n")
	assert.Regexp(t, `  stages:    registry \S+, intel \S+, build \S+, push \S+, sif \S+, oras \S+, jobscript \S+, total \S+\n$`, summaryText)
	assert.Contains(t, out, "\nSubmit it with", "the jobscript and the qsub line are printed")
	assert.Contains(t, out, "workdir   "+workdir+"\n")
	if _, err := exec.LookPath("qsub"); err == nil {
		assert.Contains(t, out, "(or run again with -submit)", "qsub is on PATH")
	} else {
		assert.NotContains(t, out, "(or run again with -submit)", "qsub is not on PATH")
	}

	// The SIF: the image's config and a squashfs root holding the stand-in Intel tree.
	info, err := singularity.Inspect(sifPath)
	require.NoError(t, err)
	require.NotNil(t, info.OCIConfig)
	assert.Equal(t, []string{"/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1", "PingPong"}, info.OCIConfig.Cmd)
	assert.Equal(t, "/app", info.OCIConfig.WorkingDir)
	assert.Contains(t, info.OCIConfig.Env, "LD_LIBRARY_PATH="+intelLibDir)
	var root *singularity.Descriptor
	for i, d := range info.Descriptors {
		if d.PartType == "*System" {
			root = &info.Descriptors[i]
		}
	}
	require.NotNil(t, root, "no system partition in %+v", info.Descriptors)
	assert.Equal(t, "Squashfs", root.FSType)
	off := strconv.FormatInt(root.Offset, 10)
	listing, err := exec.CommandContext(t.Context(), unsquashfs[0], "-o", off, "-lln", sifPath).CombinedOutput()
	require.NoError(t, err, "%s", listing)
	lib := "squashfs-root/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/"
	for _, want := range []string{
		`drwxr-xr-x 0/0 +\d+ \S+ \S+ squashfs-root/app\n`,
		`-rw-r--r-- 0/0 +\d+ \S+ \S+ squashfs-root/opt/intel/impi/5.1.3.223/bin64/mpivars.sh\n`,
		`-rwxr-xr-x 0/0 +\d+ \S+ \S+ squashfs-root/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1\n`,
		`-rwxr-xr-x 0/0 +1572864 \S+ \S+ ` + regexp.QuoteMeta(lib+"libmpi.so.12.0") + `\n`,
		`lrwxrwxrwx 0/0 +\d+ \S+ \S+ ` + regexp.QuoteMeta(lib+"libmpi.so.12 -> libmpi.so.12.0") + `\n`,
	} {
		assert.Regexp(t, want, string(listing))
	}
	mpivars, err := exec.CommandContext(t.Context(), unsquashfs[0], "-o", off, "-cat", sifPath,
		"/opt/intel/impi/5.1.3.223/bin64/mpivars.sh").CombinedOutput()
	require.NoError(t, err, "%s", mpivars)
	assert.Equal(t, standIn()[0].text, string(mpivars))

	// The oras round trip: an identical copy.
	copyBytes, err := os.ReadFile(filepath.Join(workdir, "oras", "rdma-sif_latest.sif"))
	require.NoError(t, err)
	sifBytes, err := os.ReadFile(sifPath)
	require.NoError(t, err)
	assert.True(t, bytes.Equal(sifBytes, copyBytes), "the SIF pulled back from oras:// differs")

	// The jobscript: the seed's rdma.job for Grid Engine, as printed.
	script, err := os.ReadFile(jobPath)
	require.NoError(t, err)
	assert.Contains(t, out, string(script))
	golden(t, "rdma.job", strings.ReplaceAll(string(script), workdir, "WORKDIR"))
}

// TestSlurmJobscript checks that -scheduler slurm renders the same job for sbatch.
func TestSlurmJobscript(t *testing.T) {
	cfg, err := parseFlags([]string{"-scheduler", "slurm", "-slots", "4", "-queue", "hpc"}, &bytes.Buffer{})
	require.NoError(t, err)
	job, err := rdmaJob(cfg, "/shared/run", "rdma_latest.sif")
	require.NoError(t, err)
	s, err := newScheduler(cfg)
	require.NoError(t, err)
	script, err := s.Jobscript(job)
	require.NoError(t, err)
	golden(t, "rdma.slurm.job", string(script))
	assert.Equal(t, "sbatch", submitProgram(cfg.scheduler))
}

// submitUser runs the scheduler's commands as name, an unprivileged user of the test cluster.
func submitUser(name string) schedulertest.UserRunner {
	return schedulertest.UserRunner{User: name, Runner: scheduler.LocalRunner{}}
}

// requireBatchSystem skips t, or fails it under HPCSHIP_INTEGRATION=1, unless the test cell or cluster of
// scheduler answers its user.
func requireBatchSystem(t *testing.T, scheduler, user string) {
	t.Helper()
	if scheduler == "sge" {
		schedulertest.RequireGridEngine(t, submitUser(user), "/var/lib/gridengine", "default")
		return
	}
	schedulertest.RequireSlurm(t, submitUser(user))
}

// sharedWorkdir makes a work directory the submit user owns, as a cluster's shared directory would be.
func sharedWorkdir(t *testing.T, userName string) string {
	t.Helper()
	u, err := user.Lookup(userName)
	if err != nil {
		testenv.Skipf(t, "no user %s: run scripts/gridengine-setup.sh and scripts/slurm-setup.sh", userName)
		return ""
	}
	dir, err := os.MkdirTemp("", "hpcship-quickstart-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	require.NoError(t, os.Chown(dir, uid, gid))
	return dir
}

// TestSubmit runs the workflow with -submit on the real Grid Engine cell and Slurm cluster, as their
// unprivileged users, with 2 slots. This machine has neither Intel MPI nor Singularity, so the job runs
// the seed's launcher line and fails there: the run reports the job's id, state and exit status from
// the scheduler's accounting, and fails.
func TestSubmit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		scheduler, user string
		programs        []string
		edit            func(cfg *config, r scheduler.Runner)
	}{
		{"sge", "sgetest", []string{"qsub", "qstat", "qacct", "runuser"}, func(cfg *config, r scheduler.Runner) {
			cfg.sgeOptions = append(cfg.sgeOptions, sge.WithRunner(r),
				sge.WithPollInterval(200*time.Millisecond, time.Second))
		}},
		{"slurm", "slurmtest", []string{"sbatch", "squeue", "sacct", "runuser"}, func(cfg *config, r scheduler.Runner) {
			cfg.slurmOptions = append(cfg.slurmOptions, slurm.WithRunner(r),
				slurm.WithPollInterval(200*time.Millisecond, time.Second))
		}},
	} {
		t.Run(tc.scheduler, func(t *testing.T) {
			t.Parallel()
			if testenv.Require(t, tc.programs...) == nil {
				return
			}
			testenv.RequireRoot(t)
			requireBatchSystem(t, tc.scheduler, tc.user)
			workdir := sharedWorkdir(t, tc.user)
			sum, out, err := quickstartIn(t, workdir, func(cfg *config) { tc.edit(cfg, submitUser(tc.user)) },
				"-scheduler", tc.scheduler, "-submit", "-slots", "2")
			require.NotEmpty(t, sum.jobID, "no job submitted: %v", err)
			require.NotNil(t, sum.result, "no result: %v", err)
			res := sum.result
			assert.Equal(t, sum.jobID, res.ID)
			assert.Equal(t, 2, res.Slots)
			if tc.scheduler == "sge" {
				assert.Equal(t, "mpi", res.ParallelEnv)
			}
			assert.Contains(t, out, "  job:       "+string(sum.jobID)+" "+res.State.String()+", exit status "+strconv.Itoa(res.ExitCode)+"\n")
			output, readErr := os.ReadFile(filepath.Join(workdir, "rdma.out"))
			require.NoError(t, readErr)
			if _, lookErr := exec.LookPath("singularity"); lookErr != nil {
				assert.Equal(t, scheduler.StateFailed, res.State)
				assert.NotZero(t, res.ExitCode)
				require.Error(t, err)
				assert.Contains(t, err.Error(), "job "+string(sum.jobID)+" failed with exit status "+strconv.Itoa(res.ExitCode))
				assert.Contains(t, string(output), "mpivars.sh", "the job sources Intel MPI's environment first")
				if _, lookErr := exec.LookPath("mpirun"); lookErr == nil {
					assert.Contains(t, string(output), "singularity", "then starts the ranks in singularity exec")
				}
			}
		})
	}
}

// TestRegistryFlag pushes to a registry named with -registry, a real docker-registry behind the ACR token
// emulation, with the admin keys in APPTAINER_DOCKER_USERNAME/PASSWORD, as a user of a real ACR would, and
// builds on a base image given with -base from an Intel tree given with -intel.
func TestRegistryFlag(t *testing.T) {
	reg := acrtest.Start(t)
	if reg == nil {
		return
	}
	user, password := reg.AdminCredentials()
	t.Setenv("APPTAINER_DOCKER_USERNAME", user)
	t.Setenv("APPTAINER_DOCKER_PASSWORD", password)
	// An Intel tree of the host's, here a copy of the stand-in made elsewhere, and a base image in the
	// same registry.
	intel, err := writeStandIn(t.Context(), t.TempDir())
	require.NoError(t, err)
	auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
	base, err := random.Image(4096, 1)
	require.NoError(t, err)
	baseRef, err := name.NewTag(reg.LoginServer() + "/base:1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(baseRef, base, auth, remote.WithContext(t.Context())))

	workdir := t.TempDir()
	sum, out, err := quickstartIn(t, workdir, nil, "-registry", reg.LoginServer(), "-image", "hpc/rdma:v1", "-intel", intel,
		"-base", baseRef.String())
	require.NoError(t, err)
	assert.Contains(t, out, "registry  "+reg.LoginServer()+" with acr's keychain")
	assert.Contains(t, out, "intel     using "+intel+" (")
	assert.NoDirExists(t, filepath.Join(workdir, "intel"), "no stand-in generated")
	assert.NotContains(t, out, password)
	assert.Equal(t, reg.LoginServer()+"/hpc/rdma", sum.image.Context().Name())
	pushed, err := remote.Image(sum.image, auth, remote.WithContext(t.Context()))
	require.NoError(t, err)
	layers, err := pushed.Layers()
	require.NoError(t, err)
	baseLayers, err := base.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3, "the base's layer, then WORKDIR's and the Intel tree's")
	want, err := baseLayers[0].Digest()
	require.NoError(t, err)
	got, err := layers[0].Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got, "the image starts with the base's layer")
	assert.Equal(t, reg.LoginServer()+"/hpc/rdma-sif", sum.oras.Context().Name())
	_, err = os.Stat(filepath.Join(workdir, "rdma_v1.sif"))
	assert.NoError(t, err)
}

// TestInterruptedWait stops waiting for a job that cannot start (it is held) and checks that the run says
// the job stays queued and how to remove it.
func TestInterruptedWait(t *testing.T) {
	t.Parallel()
	if testenv.Require(t, "qsub", "qstat", "qacct", "qdel", "runuser") == nil {
		return
	}
	testenv.RequireRoot(t)
	requireBatchSystem(t, "sge", "sgetest")
	workdir := sharedWorkdir(t, "sgetest")
	cfg, err := parseFlags([]string{"-workdir", workdir, "-slots", "2"}, &bytes.Buffer{})
	require.NoError(t, err)
	cfg.sgeOptions = []sge.Option{sge.WithRunner(submitUser("sgetest"))}
	s, err := newScheduler(cfg)
	require.NoError(t, err)
	job, err := rdmaJob(cfg, workdir, "rdma_latest.sif")
	require.NoError(t, err)
	job.Hold = true // it never starts, whatever the cell
	// Interrupted as a user would, once the run says the job is submitted.
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	wf := &workflow{cfg: cfg, con: newConsole(writerFunc(func(p []byte) (int, error) {
		if bytes.HasPrefix(p, []byte("submitted job ")) {
			time.AfterFunc(time.Second, cancel)
		}
		return len(p), nil
	}))}
	wf.sum.submitLine = "qsub " + filepath.Join(workdir, "rdma.job")

	_, err = wf.submitAndWait(ctx, s, job)
	id := wf.sum.jobID
	require.NotEmpty(t, id, "not submitted: %v", err)
	t.Cleanup(func() { assert.NoError(t, s.Cancel(context.Background(), id)) })
	require.ErrorIs(t, err, context.Canceled)
	assert.Contains(t, err.Error(), "stopped waiting for job "+string(id)+", which stays queued (qdel "+string(id)+" removes it)")
	st, err := s.Status(t.Context(), id)
	require.NoError(t, err)
	assert.False(t, st.State.Ended(), "the job is still there: %v", st.State)
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// TestFlagErrors checks that bad flags stop the run before it starts, with exit status 2 and a message
// naming the flag.
func TestFlagErrors(t *testing.T) {
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	for _, tc := range []struct {
		args []string
		path string // PATH for the run; empty keeps the test's
		want string
	}{
		{args: []string{"-scheduler", "pbs"}, want: `-scheduler "pbs": want sge or slurm`},
		{args: []string{"-slots", "0"}, want: "-slots 0: want at least 1"},
		{args: []string{"-slots", "1"}, want: "-slots 1: the job runs 2 ranks"},
		{args: []string{"-registry", "myacr.azurecr.io/rdma"}, want: `-registry "myacr.azurecr.io/rdma": want a registry host`},
		{args: []string{"-registry", "my acr"}, want: `-registry "my acr": want a registry host`},
		{args: []string{"-image", "RDMA:latest"}, want: `-image "RDMA:latest": want repository:tag`},
		{args: []string{"-base", "centos::7"}, want: `-base "centos::7"`},
		{args: []string{"-intel", filepath.Join(t.TempDir(), "missing")}, want: "-intel: stat "},
		{args: []string{"-intel", file}, want: "-intel " + file + ": not a directory"},
		{args: []string{"-submit"}, path: t.TempDir(), want: `-submit: exec: "qsub": executable file not found`},
		{args: []string{"-submit", "-scheduler", "slurm"}, path: t.TempDir(), want: `-submit: exec: "sbatch": executable file not found`},
		{args: []string{"-slots", "many"}, want: `invalid value "many" for flag -slots`},
		{args: []string{"-nope"}, want: "flag provided but not defined: -nope"},
		{args: []string{"extra"}, want: `unexpected argument "extra"`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			if tc.path != "" {
				t.Setenv("PATH", tc.path)
			}
			var stdout, stderr bytes.Buffer
			code := run(t.Context(), tc.args, &stdout, &stderr)
			assert.Equal(t, 2, code)
			assert.Contains(t, stderr.String(), tc.want)
			assert.Empty(t, stdout.String(), "nothing runs")
		})
	}
}

// TestRunExitCodes: run exits 0 after a run that worked and 1 after one that failed, with the reason on
// stderr.
func TestRunExitCodes(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run(t.Context(), []string{"-workdir", t.TempDir()}, &stdout, &stderr), stderr.String())
	assert.Contains(t, stdout.String(), "\nSummary\n")
	assert.Empty(t, stderr.String())
	stdout.Reset()
	stderr.Reset()
	assert.Equal(t, 1, run(t.Context(), []string{"-workdir", "/proc/hpcship-quickstart"}, &stdout, &stderr))
	assert.True(t, strings.HasPrefix(stderr.String(), "quickstart: "), stderr.String())
	assert.NotContains(t, stdout.String(), "Summary")
}

// TestSIFIntoADirectory: a directory where the SIF goes gets the SIF inside it, as singularity pull does,
// and the summary and the later stages use that file.
func TestSIFIntoADirectory(t *testing.T) {
	workdir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(workdir, "rdma_latest.sif"), 0o755))
	sum, _, err := quickstartIn(t, workdir, nil)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(workdir, "rdma_latest.sif"), filepath.Dir(sum.sif))
	fi, err := os.Stat(sum.sif)
	require.NoError(t, err)
	assert.Equal(t, fi.Size(), sum.sifSize)
	assert.Greater(t, fi.Size(), int64(1<<20))
}

// TestStageFailure: a stage that fails ends the run with an error that names it, and nothing after it runs.
func TestStageFailure(t *testing.T) {
	workdir := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(workdir, "cache"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(workdir, "cache", "sif"), nil, 0o644), "the SIF's blob cache cannot be made")
	sum, out, err := quickstartIn(t, workdir, nil)
	require.Error(t, err)
	assert.True(t, strings.HasPrefix(err.Error(), "sif: "), err.Error())
	assert.Empty(t, sum.sif)
	assert.NotContains(t, out, "oras ")
	_, err = os.Stat(filepath.Join(workdir, "rdma.job"))
	assert.ErrorIs(t, err, os.ErrNotExist, "no jobscript after a failed stage")
}

func TestHelp(t *testing.T) {
	var stdout, stderr bytes.Buffer
	assert.Equal(t, 0, run(t.Context(), []string{"-h"}, &stdout, &stderr))
	assert.True(t, strings.HasPrefix(stderr.String(), "Usage: quickstart [flags]\n"), stderr.String())
	for _, f := range []string{"-registry", "-base", "-intel", "-submit", "-workdir", "-scheduler", "-slots", "-queue", "-image"} {
		assert.Regexp(t, `(?m)^  `+f+`( |$)`, stderr.String())
	}
}

// TestStandInIsStable checks that the generated /opt/intel does not depend on how its bytes are read, so
// that the image digest in testdata holds.
func TestStandInIsStable(t *testing.T) {
	read := func(chunk int) []byte {
		g := &libraryBytes{rng: newLibraryRNG(1)}
		var out []byte
		buf := make([]byte, chunk)
		for len(out) < 20000 {
			n, err := g.Read(buf)
			require.NoError(t, err)
			out = append(out, buf[:n]...)
		}
		return out[:20000]
	}
	assert.Equal(t, read(4096), read(1000))
	assert.Equal(t, read(4096), read(65536))
}

// TestLibraryStaysInTheLibrary checks that no package outside examples/ links the progress bar library,
// which only the examples may use.
func TestLibraryStaysInTheLibrary(t *testing.T) {
	t.Parallel()
	gobin := testenv.Require(t, "go")
	if gobin == nil {
		return
	}
	list := func(args ...string) []string {
		cmd := exec.CommandContext(t.Context(), gobin[0], append([]string{"list"}, args...)...)
		cmd.Dir = "../.."
		out, err := cmd.Output()
		require.NoError(t, err, "go list %v", args)
		return strings.Fields(string(out))
	}
	var library []string
	for _, p := range list("./...") {
		if !strings.Contains(p, "/examples/") {
			library = append(library, p)
		}
	}
	require.NotEmpty(t, library)
	const mpb = "github.com/vbauerster/mpb"
	for _, dep := range list(append([]string{"-deps"}, library...)...) {
		assert.False(t, strings.HasPrefix(dep, mpb), "a package outside examples/ links %s", dep)
	}
	assert.Contains(t, strings.Join(list("-deps", "./examples/quickstart"), " "), mpb, "the check can see the dependency where it is")
}
