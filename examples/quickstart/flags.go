package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hpcship/hpcship/scheduler/sge"
	"github.com/hpcship/hpcship/scheduler/slurm"
)

// config is what the flags select. Every field's zero value is the embedded default.
type config struct {
	// workdir holds everything the run writes; "" makes a new temporary directory.
	workdir string
	// registry is the login server to push to; "" starts the in-process ACR emulation.
	registry string
	// image is the repository and tag the image is pushed as.
	image string
	// base is the image to build on; "" is scratch.
	base string
	// intel is the host's Intel MPI tree to copy to /opt/intel; "" generates a stand-in.
	intel string
	// scheduler is "sge" or "slurm".
	scheduler string
	// submit submits the job and waits for it; otherwise the jobscript and the command that submits it
	// are printed.
	submit bool
	// slots is the job's slot (task) count; queue its queue or partition, "" for the default.
	slots int
	queue string

	// sgeOptions and slurmOptions are added to the scheduler's constructor: the tests submit as an
	// unprivileged user through them.
	sgeOptions   []sge.Option
	slurmOptions []slurm.Option
}

// parseFlags reads the command line into a config. Usage and flag errors go to errOut; -h gives
// flag.ErrHelp.
func parseFlags(args []string, errOut io.Writer) (config, error) {
	cfg := config{image: "rdma:latest", scheduler: "sge", slots: 32}
	fs := flag.NewFlagSet("quickstart", flag.ContinueOnError)
	fs.SetOutput(errOut)
	fs.StringVar(&cfg.workdir, "workdir", "", "directory for the image cache, the SIFs and rdma.job (default: a new temporary directory)")
	fs.StringVar(&cfg.registry, "registry", "", "ACR login server to push to, such as myacr.azurecr.io, with credentials from\n"+
		"APPTAINER_DOCKER_USERNAME/PASSWORD (admin keys), docker's config.json (az acr login) or Azure AD\n"+
		"(DefaultAzureCredential) (default: an in-process registry emulating ACR)")
	fs.StringVar(&cfg.image, "image", cfg.image, "repository:tag to push the image as")
	fs.StringVar(&cfg.base, "base", "", "base image, such as centos:7, pulled with the registry's credentials or docker's (default: scratch)")
	fs.StringVar(&cfg.intel, "intel", "", "Intel MPI tree to put at /opt/intel, such as /opt/intel (default: a generated stand-in)")
	fs.StringVar(&cfg.scheduler, "scheduler", cfg.scheduler, "batch system to write the jobscript for: sge or slurm")
	fs.BoolVar(&cfg.submit, "submit", false, "submit the job with qsub (sbatch) and wait for it (default: print the jobscript and the\ncommand that submits it)")
	fs.IntVar(&cfg.slots, "slots", cfg.slots, "slots (Grid Engine) or tasks (Slurm) of the job")
	fs.StringVar(&cfg.queue, "queue", "", "queue (Grid Engine) or partition (Slurm) (default: the scheduler's)")
	fs.Usage = func() {
		fmt.Fprintf(errOut, "Usage: quickstart [flags]\n\nRuns image build → ACR push → SIF → jobscript → job on embedded defaults;\neach flag switches one default to the real thing.\n\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return cfg, cfg.check()
}

// check rejects flag values that cannot work, before anything runs.
func (c *config) check() error {
	if c.registry != "" {
		if _, err := name.NewRegistry(c.registry, name.StrictValidation); err != nil || strings.ContainsAny(c.registry, "/@") {
			return fmt.Errorf("-registry %q: want a registry host such as myacr.azurecr.io", c.registry)
		}
	}
	if _, err := name.NewTag("example.invalid/"+c.image, name.StrictValidation); err != nil {
		return fmt.Errorf("-image %q: want repository:tag such as rdma:latest", c.image)
	}
	if c.base != "" {
		if _, err := name.ParseReference(c.base); err != nil {
			return fmt.Errorf("-base %q: %w", c.base, err)
		}
	}
	if c.intel != "" {
		fi, err := os.Stat(c.intel)
		if err != nil {
			return fmt.Errorf("-intel: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("-intel %s: not a directory", c.intel)
		}
		if c.intel, err = filepath.Abs(c.intel); err != nil {
			return fmt.Errorf("-intel: %w", err)
		}
	}
	if c.scheduler != "sge" && c.scheduler != "slurm" {
		return fmt.Errorf("-scheduler %q: want sge or slurm", c.scheduler)
	}
	if c.submit {
		if _, err := exec.LookPath(submitProgram(c.scheduler)); err != nil {
			return fmt.Errorf("-submit: %w", err)
		}
	}
	if c.slots < 1 {
		return fmt.Errorf("-slots %d: want at least 1", c.slots)
	}
	if c.slots < ranks {
		return fmt.Errorf("-slots %d: the job runs %d ranks", c.slots, ranks)
	}
	if c.workdir != "" {
		abs, err := filepath.Abs(c.workdir)
		if err != nil {
			return fmt.Errorf("-workdir: %w", err)
		}
		c.workdir = abs
	}
	return nil
}
