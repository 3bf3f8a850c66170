package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/atomicfile"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/slurm"
	"github.com/hpcship/hpcship/singularity"
)

// ranks is how many MPI ranks the job starts, one per node: the seed's PingPong between two hosts.
const ranks = 2

// summary is what a run produced, printed at its end.
type summary struct {
	workdir   string
	image     name.Digest // the pushed image, by digest
	sif       string
	sifSize   int64
	oras      name.Digest // the SIF pushed as an oras artifact
	orasCopy  string      // the SIF pulled back from it
	jobscript string
	// submitLine is the command that submits the jobscript by hand.
	submitLine string
	// jobID and result are set when the job was submitted; result is nil if waiting was interrupted.
	jobID  scheduler.JobID
	result *scheduler.Result
	// jobFailure says how a submitted job failed.
	jobFailure error
	stages     []stageTime
}

type stageTime struct {
	name string
	d    time.Duration
}

// workflow is one run: its settings, where it prints, and what it has produced so far.
type workflow struct {
	cfg config
	con *console
	sum summary
}

// quickstart runs the stages in order and prints the summary.
func quickstart(ctx context.Context, cfg config, con *console) (*summary, error) {
	wf := &workflow{cfg: cfg, con: con}
	start := time.Now()
	if err := wf.run(ctx); err != nil {
		return &wf.sum, err
	}
	wf.printSummary(time.Since(start))
	return &wf.sum, wf.sum.jobFailure
}

func (wf *workflow) run(ctx context.Context) error {
	workdir, err := makeWorkdir(wf.cfg.workdir)
	if err != nil {
		return err
	}
	wf.sum.workdir = workdir
	wf.con.printf("workdir   %s\n", workdir)

	var reg *target
	if err := wf.stage("registry", func() (string, error) {
		reg, err = openRegistry(ctx, wf.cfg)
		if err != nil {
			return "", err
		}
		return reg.describe, nil
	}); err != nil {
		return err
	}
	defer reg.close()

	intelDir := wf.cfg.intel
	if err := wf.stage("intel", func() (string, error) {
		if intelDir != "" {
			return "using " + intelDir, nil
		}
		intelDir, err = writeStandIn(ctx, workdir)
		return "generated a stand-in for /opt/intel in " + intelDir, err
	}); err != nil {
		return err
	}

	var img v1.Image
	if err := wf.stage("build", func() (string, error) {
		img, err = buildImage(ctx, wf.cfg.base, intelDir, filepath.Join(workdir, "cache", "imagebuild"), reg.keychain)
		if err != nil {
			return "", err
		}
		return describeImage(img)
	}); err != nil {
		return err
	}

	ref, err := name.NewTag(reg.host+"/"+wf.cfg.image, name.StrictValidation)
	if err != nil {
		return err
	}
	if err := wf.stage("push", func() (string, error) {
		digest, err := pushImage(ctx, ref, img, reg.keychain, wf.con)
		if err != nil {
			return "", err
		}
		wf.sum.image = ref.Context().Digest(digest.String())
		return fmt.Sprintf("pushed %s (%s)", ref, digest), nil
	}); err != nil {
		return err
	}

	sifPath := filepath.Join(workdir, singularity.DefaultName(ref, singularity.FormatSIF))
	if err := wf.stage("sif", func() (string, error) {
		// Pull writes into sifPath/ when a directory is there, as singularity pull does.
		path, size, err := pullSIF(ctx, wf.sum.image, sifPath, filepath.Join(workdir, "cache", "sif"), reg.keychain, wf.con)
		if err != nil {
			return "", err
		}
		sifPath = path
		wf.sum.sif, wf.sum.sifSize = sifPath, size
		return fmt.Sprintf("converted %s into %s (%s)", wf.sum.image.Identifier()[:19], sifPath, byteSize(size)), nil
	}); err != nil {
		return err
	}

	orasRef, err := name.NewTag(ref.Context().Name()+"-sif:"+ref.TagStr(), name.StrictValidation)
	if err != nil {
		return err
	}
	if err := wf.stage("oras", func() (string, error) {
		d, copyPath, err := roundTripSIF(ctx, sifPath, orasRef, filepath.Join(workdir, "oras"), reg.keychain)
		if err != nil {
			return "", err
		}
		wf.sum.oras, wf.sum.orasCopy = d, copyPath
		return fmt.Sprintf("pushed oras://%s, pulled back to %s: identical", d, copyPath), nil
	}); err != nil {
		return err
	}

	sched, err := newScheduler(wf.cfg)
	if err != nil {
		return err
	}
	var job scheduler.Job
	if err := wf.stage("jobscript", func() (string, error) {
		job, err = rdmaJob(wf.cfg, workdir, filepath.Base(sifPath))
		if err != nil {
			return "", err
		}
		wf.sum.jobscript = filepath.Join(workdir, "rdma.job")
		wf.sum.submitLine = submitProgram(wf.cfg.scheduler) + " " + wf.sum.jobscript
		return "wrote " + wf.sum.jobscript, writeJobscript(ctx, sched, job, wf.sum.jobscript)
	}); err != nil {
		return err
	}

	if !wf.cfg.submit {
		return wf.showJobscript()
	}
	if err := wf.stage("job", func() (string, error) {
		return wf.submitAndWait(ctx, sched, job)
	}); err != nil {
		return err
	}
	if res := wf.sum.result; res.State != scheduler.StateDone {
		wf.sum.jobFailure = fmt.Errorf("job %s %s with exit status %d; its output is in %s", wf.sum.jobID, res.State, res.ExitCode, job.Stdout)
	}
	return nil
}

// showJobscript prints the jobscript and the command that submits it.
func (wf *workflow) showJobscript() error {
	script, err := os.ReadFile(wf.sum.jobscript)
	if err != nil {
		return err
	}
	hint := ""
	if _, err := exec.LookPath(submitProgram(wf.cfg.scheduler)); err == nil {
		hint = " (or run again with -submit)"
	}
	wf.con.printf("\n%s\nSubmit it with%s:\n  %s\n\n", script, hint, wf.sum.submitLine)
	return nil
}

// stage runs f as the stage name, records its time and prints its line.
func (wf *workflow) stage(name string, f func() (string, error)) error {
	start := time.Now()
	detail, err := f()
	d := time.Since(start)
	wf.sum.stages = append(wf.sum.stages, stageTime{name, d})
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	wf.con.stageLine(name, detail, d)
	return nil
}

// makeWorkdir creates dir, or a new temporary directory when dir is empty.
func makeWorkdir(dir string) (string, error) {
	if dir == "" {
		return os.MkdirTemp("", "hpcship-quickstart-")
	}
	return dir, os.MkdirAll(dir, 0o755)
}

// target is the registry a run pushes to.
type target struct {
	host     string
	keychain authn.Keychain
	describe string
	close    func()
}

// openRegistry starts the in-process ACR emulation, or returns the keychain for the real registry the
// flags name: the environment (APPTAINER_DOCKER_USERNAME/PASSWORD, the admin keys), docker's config.json
// (az acr login), then Azure AD through the default credential chain.
func openRegistry(ctx context.Context, cfg config) (*target, error) {
	if cfg.registry == "" {
		r, err := acrtest.New(ctx, acrtest.WithInMemoryRegistry())
		if err != nil {
			return nil, err
		}
		user, password := r.AdminCredentials()
		return &target{
			host:     r.LoginServer(),
			keychain: acr.NewAdminKeychain(r.LoginServer(), user, password),
			describe: fmt.Sprintf("in-process ACR emulation at %s, admin user %q", r.LoginServer(), user),
			close:    r.Close,
		}, nil
	}
	var opts []acr.Option
	if !acr.IsLoginServer(cfg.registry) {
		opts = append(opts, acr.WithHosts(cfg.registry)) // named on the command line: trusted with credentials
	}
	var cred azcore.TokenCredential // without one, the environment and docker's config.json still answer
	if c, err := azidentity.NewDefaultAzureCredential(nil); err == nil {
		cred = c
	}
	kc, err := acr.NewKeychain(cred, opts...)
	if err != nil {
		return nil, err
	}
	return &target{host: cfg.registry, keychain: kc, describe: cfg.registry + " with acr's keychain", close: func() {}}, nil
}

// buildImage assembles the seed Dockerfile's image without its RUN step: WORKDIR /app, the Intel tree at
// /opt/intel, LD_LIBRARY_PATH for its libraries, and IMB-MPI1 PingPong as the command.
func buildImage(ctx context.Context, base, intelDir, cacheDir string, kc authn.Keychain) (v1.Image, error) {
	from := imagebuild.Scratch()
	if base != "" {
		from = imagebuild.FromReference(base)
	}
	impi := mpi.Installation{Version: mpi.MustParseVersion(impiVersion)}
	return imagebuild.Build(ctx, from, []imagebuild.Step{
		imagebuild.Workdir{Path: "/app"},
		imagebuild.Copy{Sources: []string{filepath.Base(intelDir)}, Dest: "/opt/intel"},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "LD_LIBRARY_PATH", Value: intelLibDir}}},
		imagebuild.Cmd{Args: []string{impi.Program("IMB-MPI1"), "PingPong"}},
	},
		imagebuild.WithContextDir(filepath.Dir(intelDir)),
		imagebuild.WithoutDockerignore(),
		imagebuild.WithCacheDir(cacheDir),
		imagebuild.WithKeychain(authn.NewMultiKeychain(kc, authn.DefaultKeychain)),
	)
}

// describeImage says how many layers and bytes an image has.
func describeImage(img v1.Image) (string, error) {
	layers, err := img.Layers()
	if err != nil {
		return "", err
	}
	var size int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return "", err
		}
		size += n
	}
	return fmt.Sprintf("built an image of %d layers, %s compressed", len(layers), byteSize(size)), nil
}

// pushImage pushes img to ref with acr, as `docker tag` and `docker push` did, and returns its digest.
func pushImage(ctx context.Context, ref name.Tag, img v1.Image, kc authn.Keychain, con *console) (v1.Hash, error) {
	m := con.meter("push", unitBytes)
	defer m.done()
	return acr.Push(ctx, ref, img, acr.WithKeychain(kc), acr.WithProgress(func(p acr.Progress) { m.set(p.Complete, p.Total) }))
}

// pullSIF converts the pushed image into a SIF at path, as `singularity pull docker://` does, and returns
// the path written and the SIF's size.
func pullSIF(ctx context.Context, ref name.Reference, path, cacheDir string, kc authn.Keychain, con *console) (string, int64, error) {
	m := con.meter("sif", unitFiles)
	path, err := singularity.Pull(ctx, ref, path,
		singularity.WithKeychain(kc),
		singularity.WithCacheDir(cacheDir),
		singularity.WithProgress(func(p singularity.Progress) { m.set(int64(p.Files), int64(p.FilesTotal)) }))
	m.done() // before the stage's line
	if err != nil {
		return "", 0, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return "", 0, err
	}
	return path, fi.Size(), nil
}

// roundTripSIF pushes the SIF at path to ref as an oras artifact, pulls ref back into dir, as
// `apptainer pull oras://` does, and checks that the copy has the same bytes. It returns the artifact's digest and the copy's path.
func roundTripSIF(ctx context.Context, path string, ref name.Tag, dir string, kc authn.Keychain) (name.Digest, string, error) {
	digest, err := singularity.PushSIF(ctx, path, ref, singularity.WithKeychain(kc))
	if err != nil {
		return name.Digest{}, "", err
	}
	d := ref.Context().Digest(digest.String())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return d, "", err
	}
	copyPath, err := singularity.PullSIF(ctx, ref, dir, singularity.WithKeychain(kc))
	if err != nil {
		return d, "", err
	}
	want, err := fileDigest(path)
	if err != nil {
		return d, "", err
	}
	got, err := fileDigest(copyPath)
	if err != nil {
		return d, "", err
	}
	if got != want {
		return d, "", fmt.Errorf("%s differs from %s: sha256 %x, want %x", copyPath, path, got, want)
	}
	return d, copyPath, nil
}

func fileDigest(path string) ([sha256.Size]byte, error) {
	var sum [sha256.Size]byte
	f, err := os.Open(path)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, err
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}

// batchSystem is what the run needs of a scheduler backend: the Scheduler and its jobscript.
type batchSystem interface {
	scheduler.Scheduler
	Jobscript(scheduler.Job) ([]byte, error)
}

func newScheduler(cfg config) (batchSystem, error) {
	if cfg.scheduler == "slurm" {
		return slurm.New(append([]slurm.Option{slurm.WithPollInterval(250*time.Millisecond, 5*time.Second)}, cfg.slurmOptions...)...)
	}
	return sge.New(append([]sge.Option{sge.WithPollInterval(250*time.Millisecond, 5*time.Second)}, cfg.sgeOptions...)...)
}

func submitProgram(schedulerName string) string {
	if schedulerName == "slurm" {
		return "sbatch"
	}
	return "qsub"
}

// rdmaJob is the seed's rdma.job: Intel MPI 5.1.3 over DAPL with the settings package mpi gives an Azure
// Standard_H16r, running IMB-MPI1 PingPong on two hosts inside the SIF through `singularity exec`.
func rdmaJob(cfg config, workdir, sifName string) (scheduler.Job, error) {
	preset, err := mpi.AzurePreset("Standard_H16r")
	if err != nil {
		return scheduler.Job{}, err
	}
	impi := mpi.Installation{Version: mpi.MustParseVersion(impiVersion)}
	mpiCfg, err := preset.IntelMPI(impi.Version)
	if err != nil {
		return scheduler.Job{}, err
	}
	mpiCfg.Debug = 6
	env, err := mpiCfg.Env()
	if err != nil {
		return scheduler.Job{}, err
	}
	bindPath, err := singularity.BindPathEnv(singularity.Singularity, preset.Binds...)
	if err != nil {
		return scheduler.Job{}, err
	}
	if bindPath != "" {
		env = append(env, bindPath)
	}
	wrapper, err := singularity.Exec{Runtime: singularity.Singularity, Image: "./" + sifName}.Argv()
	if err != nil {
		return scheduler.Job{}, err
	}
	argv, err := mpi.Launch{
		Flavor:       mpi.IntelMPI,
		MachineFile:  scheduler.MachinefileArg,
		Ranks:        ranks,
		RanksPerNode: 1,
		Wrapper:      wrapper,
		Command:      []string{impi.Program("IMB-MPI1"), "PingPong"},
	}.Argv()
	if err != nil {
		return scheduler.Job{}, err
	}
	job := scheduler.Job{
		Name:        "rdma",
		ParallelEnv: "mpi", // Slurm renders none, but writes the machinefile for a parallel job
		Slots:       cfg.slots,
		Queue:       cfg.queue,
		Machinefile: scheduler.Machinefile{Name: "u_machines"},
		WorkDir:     workdir,
		Stdout:      filepath.Join(workdir, "rdma.out"),
		JoinOutput:  true,
		Source:      []string{impi.MPIVars()},
		Env:         env,
		Command:     argv,
	}
	return job, job.Validate()
}

// writeJobscript renders job for the batch system and writes it to path.
func writeJobscript(ctx context.Context, s batchSystem, job scheduler.Job, path string) error {
	script, err := s.Jobscript(job)
	if err != nil {
		return err
	}
	return atomicfile.Write(ctx, path, 0o755, func(f *os.File) error {
		_, err := f.Write(script)
		return err
	})
}

// submitAndWait submits the job and waits for it to end. Interrupted while waiting, it says how to find
// or remove the job, which keeps its place in the queue.
func (wf *workflow) submitAndWait(ctx context.Context, s batchSystem, job scheduler.Job) (string, error) {
	id, err := s.Submit(ctx, job)
	if err != nil {
		return "", err
	}
	wf.sum.jobID = id
	wf.con.printf("submitted job %s (%s); waiting for it to end\n", id, wf.sum.submitLine)
	res, err := s.Wait(ctx, id)
	if err != nil {
		cancelCmd := "qdel"
		if wf.cfg.scheduler == "slurm" {
			cancelCmd = "scancel"
		}
		if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
			return "", fmt.Errorf("stopped waiting for job %s, which stays queued (%s %s removes it): %w", id, cancelCmd, id, err)
		}
		return "", fmt.Errorf("waiting for job %s: %w", id, err)
	}
	wf.sum.result = &res
	return fmt.Sprintf("job %s %s, exit status %d, output in %s", id, res.State, res.ExitCode, job.Stdout), nil
}

// printSummary prints what the run produced, one "key: value" line each.
func (wf *workflow) printSummary(total time.Duration) {
	s := &wf.sum
	c := wf.con
	c.printf("\nSummary\n")
	c.printf("  image:     %s\n", s.image)
	c.printf("  sif:       %s (%d bytes, %s)\n", s.sif, s.sifSize, byteSize(s.sifSize))
	c.printf("  oras:      oras://%s\n", s.oras)
	c.printf("  jobscript: %s\n", s.jobscript)
	switch {
	case s.result != nil:
		c.printf("  job:       %s %s, exit status %d\n", s.jobID, s.result.State, s.result.ExitCode)
	default:
		c.printf("  job:       not submitted: %s\n", s.submitLine)
	}
	c.printf("  stages:   ")
	for _, st := range s.stages {
		c.printf(" %s %s,", st.name, roundDuration(st.d))
	}
	c.printf(" total %s\n", roundDuration(total))
}
