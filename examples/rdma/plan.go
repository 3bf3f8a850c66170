package main

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/shellquote"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/slurm"
	"github.com/hpcship/hpcship/singularity"
)

// seedDockerfile is the image of the seed workflow, used when the build context has no Dockerfile.
//
//go:embed seed.Dockerfile
var seedDockerfile []byte

// batchSystem is what the program needs of a scheduler backend: both scheduler/sge and scheduler/slurm
// render their jobscript and drive the job.
type batchSystem interface {
	scheduler.Scheduler
	Jobscript(scheduler.Job) ([]byte, error)
}

// plan is everything that can be worked out without Azure or the cluster.
type plan struct {
	cfg *config
	// loginServer is the registry's host: the conventional one until ARM reports the real one.
	loginServer string
	// adminEnabled is whether ARM reports the registry's admin user enabled.
	adminEnabled bool
	// dockerfile is the Dockerfile's path, or "" for the built-in seed Dockerfile; dockerfileText its bytes.
	dockerfile     string
	dockerfileText []byte
	parsed         *imagebuild.Dockerfile
	// workdir is cfg.workdir made absolute, where the job runs.
	workdir  string
	sifPath  string
	sifImage string // the container file as the job names it, relative to its working directory
	format   singularity.Format
	job      scheduler.Job
	batch    batchSystem
	// jobscriptPath is where the jobscript is written.
	jobscriptPath string
}

// newPlan checks everything the flags imply on this machine: the Dockerfile parses, the MPI settings exist
// for the VM size and version, and the job renders for the batch system.
func newPlan(cfg *config) (*plan, error) {
	p := &plan{cfg: cfg, format: singularity.FormatSIF, loginServer: cfg.loginServer}
	var err error
	p.dockerfile = filepath.Join(cfg.contextDir, "Dockerfile")
	p.dockerfileText, err = os.ReadFile(p.dockerfile)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		p.dockerfile, p.dockerfileText = "", seedDockerfile
	case err != nil:
		return nil, fmt.Errorf("reading the Dockerfile: %w", err)
	}
	p.parsed, err = imagebuild.ParseDockerfile(bytes.NewReader(p.dockerfileText))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.dockerfileName(), err)
	}

	p.workdir, err = filepath.Abs(cfg.workdir)
	if err != nil {
		return nil, err
	}
	if strings.HasSuffix(cfg.sif, ".simg") {
		p.format = singularity.FormatSIMG
	}
	if filepath.IsAbs(cfg.sif) {
		p.sifPath, p.sifImage = cfg.sif, cfg.sif
	} else {
		p.sifPath = filepath.Join(p.workdir, cfg.sif)
		p.sifImage = "./" + filepath.Clean(cfg.sif)
	}

	p.job, err = composeJob(cfg, p.sifImage, p.workdir)
	if err != nil {
		return nil, err
	}
	switch cfg.scheduler {
	case schedSGE:
		var opts []sge.Option
		if cfg.settingsFile != "" {
			opts = append(opts, sge.WithSettingsFile(cfg.settingsFile))
		}
		if cfg.cycleCloud {
			opts = append(opts, sge.WithCycleCloud())
		}
		p.batch, err = sge.New(opts...)
	case schedSlurm:
		p.batch, err = slurm.New()
	}
	if err != nil {
		return nil, err
	}
	p.jobscriptPath = filepath.Join(cfg.workdir, cfg.jobName+".job")
	return p, nil
}

func (p *plan) dockerfileName() string {
	if p.dockerfile == "" {
		return "the built-in seed Dockerfile"
	}
	return p.dockerfile
}

// imageRef is the image's reference in the registry at the current login server.
func (p *plan) imageRef() (name.Tag, error) {
	return name.NewTag(p.loginServer+"/"+p.cfg.image, name.StrictValidation)
}

// composeJob is the seed's rdma.job, as scheduler/sge's example composes it, with the flags' values: Intel
// MPI's environment for the VM size, the bind path its preset needs, the runtime's exec argv as the
// launcher's wrapper, and mpirun over the machinefile the jobscript writes.
func composeJob(cfg *config, sifImage, workdir string) (scheduler.Job, error) {
	impi := mpi.Installation{Version: cfg.impiVersion, Root: cfg.impiRoot}
	mcfg, err := cfg.preset.IntelMPI(impi.Version)
	if err != nil {
		return scheduler.Job{}, fmt.Errorf("-impi-version %s with -vm-size %s: %w", cfg.impiVersion, cfg.vmSize, err)
	}
	mcfg.Debug = cfg.mpiDebug
	env, err := mcfg.Env()
	if err != nil {
		return scheduler.Job{}, err
	}
	bind, err := singularity.BindPathEnv(cfg.runtime, cfg.preset.Binds...)
	if err != nil {
		return scheduler.Job{}, err
	}
	if bind != "" {
		env = append(env, bind)
	}
	wrapper, err := singularity.Exec{Runtime: cfg.runtime, Image: sifImage}.Argv()
	if err != nil {
		return scheduler.Job{}, err
	}
	argv, err := mpi.Launch{
		Flavor:       mpi.IntelMPI,
		MachineFile:  scheduler.MachinefileArg,
		Ranks:        cfg.ranks,
		RanksPerNode: cfg.ranksPerNode,
		Wrapper:      wrapper,
		Command:      []string{impi.Program("IMB-MPI1"), cfg.benchmark},
	}.Argv()
	if err != nil {
		return scheduler.Job{}, err
	}
	return scheduler.Job{
		Name:        cfg.jobName,
		ParallelEnv: cfg.parallelEnv,
		Slots:       cfg.slots,
		Queue:       cfg.queue,
		Machinefile: scheduler.Machinefile{Name: "u_machines"},
		WorkDir:     workdir,
		JoinOutput:  true,
		Source:      []string{impi.MPIVars()},
		Env:         env,
		Command:     argv,
	}, nil
}

// outputPath is the file the batch system writes the job's output to, by its default name: Grid Engine's
// <name>.o<id>, Slurm's slurm-<id>.out, in the job's working directory.
func (p *plan) outputPath(id scheduler.JobID) string {
	if p.cfg.scheduler == schedSlurm {
		return filepath.Join(p.cfg.workdir, "slurm-"+string(id)+".out")
	}
	return filepath.Join(p.cfg.workdir, p.cfg.jobName+".o"+string(id))
}

// cmdline renders argv as one shell command line.
func cmdline(argv ...string) string {
	words := make([]string, len(argv))
	for i, a := range argv {
		q, err := shellquote.Quote(a)
		if err != nil {
			q = fmt.Sprintf("%q", a)
		}
		words[i] = q
	}
	return strings.Join(words, " ")
}

// The commands of the hand-run workflow each step replaces. Secrets appear as placeholders only.

func (p *plan) registryCommands() []string {
	c := p.cfg
	if c.create {
		argv := []string{"az", "acr", "create", "--subscription", c.subscription, "--resource-group", c.resourceGroup,
			"--name", c.registry, "--location", c.location, "--sku", string(c.sku)}
		if c.auth == authAdmin {
			argv = append(argv, "--admin-enabled", "true")
		}
		return []string{cmdline(argv...)}
	}
	return []string{cmdline("az", "acr", "show", "--subscription", c.subscription, "--resource-group", c.resourceGroup,
		"--name", c.registry, "--query", "loginServer", "--output", "tsv")}
}

func (p *plan) credentialCommands() []string {
	c := p.cfg
	if c.auth == authAdmin {
		return []string{
			cmdline("az", "acr", "credential", "show", "--subscription", c.subscription, "--resource-group", c.resourceGroup,
				"--name", c.registry),
			cmdline("docker", "login", p.loginServer, "--username", c.registry) + " --password-stdin <<<\"$ADMIN_PASSWORD\"",
		}
	}
	return []string{cmdline("az", "acr", "login", "--subscription", c.subscription, "--name", c.registry)}
}

func (p *plan) buildCommand(ref string) string {
	argv := []string{"docker", "build", "-t", ref}
	if p.dockerfile == "" {
		argv = append(argv, "-f", "seed.Dockerfile")
	}
	return cmdline(append(argv, p.cfg.contextDir)...)
}

func (p *plan) pullCommand(ref string) string {
	prefix := "SINGULARITY_DOCKER_"
	if p.cfg.runtime == singularity.Apptainer {
		prefix = "APPTAINER_DOCKER_"
	}
	user, password := "00000000-0000-0000-0000-000000000000", "$(az acr login --name "+p.cfg.registry+" --expose-token --query accessToken --output tsv)"
	if p.cfg.auth == authAdmin {
		user, password = p.cfg.registry, "\"$ADMIN_PASSWORD\""
	}
	return prefix + "USERNAME=" + user + " " + prefix + "PASSWORD=" + password + " " +
		cmdline(string(p.cfg.runtime), "build", filepath.Join(p.cfg.workdir, p.cfg.sif), "docker://"+ref)
}

func (p *plan) submitCommand() string {
	c := p.cfg
	if c.scheduler == schedSlurm {
		return cmdline("sbatch", p.jobscriptPath)
	}
	return cmdline("qsub", "-pe", c.parallelEnv, fmt.Sprint(c.slots), p.jobscriptPath)
}

func (p *plan) waitCommand(id string) string {
	if p.cfg.scheduler == schedSlurm {
		return "squeue -j " + id + "; sacct -j " + id
	}
	return "qstat -j " + id + "; qacct -j " + id
}
