package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azidentity"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/acr/arm"
	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/atomicfile"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/singularity"
)

// deps are the outside world the program reaches: Azure AD, Resource Manager's transport, the environment.
// main uses the real ones; tests put Azure's emulations in their place.
type deps struct {
	getenv func(string) string
	// credential returns the Azure AD identity for Resource Manager and the registry.
	credential func() (azcore.TokenCredential, error)
	// armOptions are added to arm.NewRegistries' options, such as arm.WithHTTPClient.
	armOptions []arm.Option
	// batch replaces the batch system the flags select, when not nil.
	batch batchSystem
}

func defaultDeps() deps {
	return deps{
		getenv: os.Getenv,
		credential: func() (azcore.TokenCredential, error) {
			return azidentity.NewDefaultAzureCredential(nil)
		},
	}
}

// run is the program: it returns the exit status, 2 for a bad command line, 1 for a failed step.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, d deps) int {
	cfg, err := parseFlags(args, d.getenv, stderr)
	switch {
	case errors.Is(err, errHelp):
		return 0
	case isUsage(err):
		for _, line := range err.(*usageError).problems {
			fmt.Fprintf(stderr, "rdma: %s\n", line)
		}
		fmt.Fprintln(stderr, "Run rdma -h for the flags.")
		return 2
	case err != nil: // the flag package has printed the problem and the usage
		return 2
	}
	p, err := newPlan(cfg)
	if err == nil {
		if d.batch != nil {
			p.batch = d.batch
		}
		err = execute(ctx, p, d, stdout, stderr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "rdma: %v\n", err)
		return 1
	}
	return 0
}

// stepper prints each step's header: its number, what it does, and the commands it replaces.
type stepper struct {
	w      io.Writer
	n, all int
}

func (s *stepper) step(title string, replaces ...string) {
	s.n++
	fmt.Fprintf(s.w, "\n[%d/%d] %s\n", s.n, s.all, title)
	for _, r := range replaces {
		fmt.Fprintf(s.w, "      $ %s\n", r)
	}
}

func (s *stepper) note(format string, a ...any) {
	fmt.Fprintf(s.w, "      "+format+"\n", a...)
}

// execute runs the steps in order. In a dry run it prints each one and does only the local ones: the
// Dockerfile was parsed by newPlan, and the jobscript is written.
func execute(ctx context.Context, p *plan, d deps, stdout, stderr io.Writer) error {
	cfg := p.cfg
	st := &stepper{w: stdout, all: 6}
	if cfg.submit {
		st.all = 9
	}
	if cfg.dryRun {
		fmt.Fprintln(stdout, "Dry run: nothing in Azure or on the cluster is touched.")
	}

	var (
		cred azcore.TokenCredential
		regs *arm.Registries
		err  error
	)
	if !cfg.dryRun {
		if cred, err = d.credential(); err != nil {
			return fmt.Errorf("getting the Azure AD credential: %w", err)
		}
		if regs, err = arm.NewRegistries(cfg.subscription, cred, d.armOptions...); err != nil {
			return err
		}
	}

	st.step("Registry "+cfg.registry+" in "+cfg.resourceGroup+" (acr/arm)", p.registryCommands()...)
	if cfg.dryRun {
		st.note("login server: the one Resource Manager reports; conventionally %s", p.loginServer)
	} else if err := stepRegistry(ctx, p, regs, st); err != nil {
		return err
	}

	st.step("Registry credentials ("+credentialKind(cfg)+")", p.credentialCommands()...)
	var keychain authn.Keychain
	if cfg.dryRun {
		st.note("no secret is printed or written")
	} else if keychain, err = stepCredentials(ctx, p, regs, cred, st); err != nil {
		return err
	}

	ref, err := p.imageRef()
	if err != nil {
		return err
	}
	st.step("Build the image from "+p.dockerfileName()+" (imagebuild)", p.buildCommand(ref.String()))
	var img v1.Image
	if cfg.dryRun {
		st.note("parsed: FROM %s, context %s", baseName(p), cfg.contextDir)
	} else if img, err = stepBuild(ctx, p, keychain, st, stderr); err != nil {
		return err
	}

	st.step("Push "+ref.String()+" (acr)", cmdline("docker", "push", ref.String()))
	if !cfg.dryRun {
		if err := stepPush(ctx, ref, img, keychain, st); err != nil {
			return err
		}
	}

	st.step("Pull it as a "+formatName(p.format)+" (singularity)", p.pullCommand(ref.String()))
	if cfg.dryRun {
		st.note("%s_DOCKER_USERNAME/PASSWORD from the environment are used when set, else the credentials above",
			envPrefix(cfg.runtime))
	} else if err := stepPull(ctx, p, ref, keychain, st); err != nil {
		return err
	}

	st.step("Jobscript for " + schedulerName(cfg) + ", " + cfg.vmSize + ", Intel MPI " + cfg.impiVersion.String() + " (scheduler, mpi)")
	st.note("(replaces the hand-written %s)", filepath.Base(p.jobscriptPath))
	if err := stepJobscript(ctx, p, st); err != nil {
		return err
	}

	if !cfg.submit {
		st.note("not submitted (-submit=false); submit it with: %s", p.submitCommand())
		return nil
	}
	if cfg.dryRun {
		st.step("Submit it", p.submitCommand())
		st.step("Wait for it", p.waitCommand("<id>"))
		st.step("Read the IMB "+cfg.benchmark+" results (mpi/imb)", "less "+p.outputPath("<id>"))
		return nil
	}
	return stepJob(ctx, p, st, stdout)
}

// stepJob submits the job, waits for it to end and prints its IMB results: the last three steps.
func stepJob(ctx context.Context, p *plan, st *stepper, stdout io.Writer) error {
	cfg := p.cfg
	st.step("Submit it", p.submitCommand())
	id, err := p.batch.Submit(ctx, p.job)
	if err != nil {
		return err
	}
	st.note("job %s", id)

	st.step("Wait for it", p.waitCommand(string(id)))
	res, err := p.batch.Wait(ctx, id)
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("stopped waiting for job %s, which keeps going (%s cancels it): %w", id, cancelCommand(cfg, id), err)
	}
	if err != nil {
		return fmt.Errorf("waiting for job %s: %w", id, err)
	}
	st.note("job %s %s, exit status %d, on %s after %s", id, res.State, res.ExitCode, res.Host, res.Wallclock)

	out := p.outputPath(id)
	st.step("Read the IMB "+cfg.benchmark+" results (mpi/imb)", "less "+out)
	return stepResults(out, res, stdout)
}

// stepRegistry creates the registry (or finds it) and takes its login server from Resource Manager.
func stepRegistry(ctx context.Context, p *plan, regs *arm.Registries, st *stepper) error {
	cfg := p.cfg
	var (
		reg *arm.Registry
		err error
	)
	if cfg.create {
		reg, err = regs.Create(ctx, arm.CreateSpec{ResourceGroup: cfg.resourceGroup, Name: cfg.registry,
			Location: cfg.location, SKU: cfg.sku, AdminUserEnabled: cfg.auth == authAdmin})
	} else {
		reg, err = regs.Get(ctx, cfg.resourceGroup, cfg.registry)
	}
	if err != nil {
		return err
	}
	if reg.LoginServer == "" {
		return fmt.Errorf("registry %s: Resource Manager reports no login server (provisioning state %q)",
			cfg.registry, reg.ProvisioningState)
	}
	p.loginServer, p.adminEnabled = reg.LoginServer, reg.AdminUserEnabled
	st.note("%s: %s, %s, %s, admin user enabled: %t", reg.Name, reg.LoginServer, reg.Location, reg.SKU, reg.AdminUserEnabled)
	return nil
}

// stepCredentials returns the keychain that push and pull use: Azure AD exchanged at the registry, or the
// admin user's keys read through Resource Manager. Neither is printed.
func stepCredentials(ctx context.Context, p *plan, regs *arm.Registries, cred azcore.TokenCredential, st *stepper) (authn.Keychain, error) {
	var hosts []acr.Option
	if !acr.IsLoginServer(p.loginServer) {
		// A login server outside the known clouds: it is the one Resource Manager reported for this
		// registry, so it may have the credentials.
		hosts = append(hosts, acr.WithHosts(p.loginServer))
	}
	if p.cfg.auth == authAdmin {
		if !p.adminEnabled {
			return nil, fmt.Errorf("the admin user of registry %s is disabled: enable it (az acr update --name %s --admin-enabled true) or use -auth aad",
				p.cfg.registry, p.cfg.registry)
		}
		keys, err := regs.AdminCredentials(ctx, p.cfg.resourceGroup, p.cfg.registry)
		if err != nil {
			return nil, err
		}
		st.note("admin user %s, %d passwords (not shown)", keys.Username, len(keys.Passwords))
		return acr.NewAdminKeychain(p.loginServer, keys.Username, keys.Passwords[0]), nil
	}
	kc, err := acr.NewAADKeychain(cred, hosts...)
	if err != nil {
		return nil, err
	}
	st.note("Azure AD tokens exchanged at %s/oauth2/exchange when the registry is first called", p.loginServer)
	return kc, nil
}

// stepBuild builds the image from the Dockerfile, running RUN steps in user namespaces. A base image in
// the registry is pulled with the registry's credentials, any other with docker's.
func stepBuild(ctx context.Context, p *plan, kc authn.Keychain, st *stepper, stderr io.Writer) (v1.Image, error) {
	opts := []imagebuild.Option{
		imagebuild.WithContextDir(p.cfg.contextDir),
		imagebuild.WithKeychain(authn.NewMultiKeychain(kc, authn.DefaultKeychain)),
		imagebuild.WithRunner(imagebuild.NewNamespaceRunner(imagebuild.WithRunOutput(stderr))),
		imagebuild.WithLogger(slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))),
		imagebuild.WithProgress(func(pr imagebuild.Progress) {
			if pr.Done && pr.Step > 0 {
				cached := ""
				if pr.Cached {
					cached = " (cached)"
				}
				st.note("step %d/%d %s%s", pr.Step, pr.Steps, pr.Instruction, cached)
			}
		}),
	}
	if p.cfg.cacheDir != "" {
		opts = append(opts, imagebuild.WithCacheDir(filepath.Join(p.cfg.cacheDir, "imagebuild")))
	}
	img, err := p.parsed.Build(ctx, opts...)
	if err != nil {
		return nil, err
	}
	digest, err := img.Digest()
	if err != nil {
		return nil, err
	}
	st.note("image %s", digest)
	return img, nil
}

// stepPush pushes the image, reporting every quarter of the bytes.
func stepPush(ctx context.Context, ref name.Tag, img v1.Image, kc authn.Keychain, st *stepper) error {
	next := int64(1)
	digest, err := acr.Push(ctx, ref, img, acr.WithKeychain(kc), acr.WithProgress(func(pr acr.Progress) {
		if pr.Total > 0 && pr.Complete*4 >= next*pr.Total {
			st.note("%d%% of %d bytes", pr.Complete*100/pr.Total, pr.Total)
			for pr.Complete*4 >= next*pr.Total {
				next++
			}
		}
	}))
	if err != nil {
		return err
	}
	st.note("pushed %s@%s", ref.Context(), digest)
	return nil
}

// stepPull converts the pushed image into the container file the job runs, taking credentials from
// the runtime's environment variables first, as Singularity does, then from the keychain.
func stepPull(ctx context.Context, p *plan, ref name.Tag, kc authn.Keychain, st *stepper) error {
	if err := os.MkdirAll(filepath.Dir(p.sifPath), 0o755); err != nil {
		return err
	}
	next := 1 // the next quarter of the files to report
	opts := []singularity.Option{singularity.WithKeychain(kc), singularity.WithEnvCredentials(),
		singularity.WithFormat(p.format), singularity.WithProgress(func(pr singularity.Progress) {
			// An image without regular files reports 0 of 0 once.
			if next <= 4 && pr.Files*4 >= next*pr.FilesTotal {
				st.note("%d of %d files, %d bytes written", pr.Files, pr.FilesTotal, pr.BytesWritten)
				for next <= 4 && pr.Files*4 >= next*pr.FilesTotal {
					next++
				}
			}
		})}
	if p.cfg.cacheDir != "" {
		opts = append(opts, singularity.WithCacheDir(filepath.Join(p.cfg.cacheDir, "singularity")))
	}
	start := time.Now()
	path, err := singularity.Pull(ctx, ref, p.sifPath, opts...)
	if err != nil {
		return err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return err
	}
	st.note("%s, %d bytes, in %s", path, fi.Size(), time.Since(start).Round(time.Millisecond))
	return nil
}

// stepJobscript renders the job for the batch system and writes it next to the container file.
func stepJobscript(ctx context.Context, p *plan, st *stepper) error {
	script, err := p.batch.Jobscript(p.job)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(p.cfg.workdir, 0o755); err != nil {
		return err
	}
	err = atomicfile.Write(ctx, p.jobscriptPath, 0o644, func(f *os.File) error {
		_, err := f.Write(script)
		return err
	})
	if err != nil {
		return err
	}
	// The jobscript puts the machinefile's path in place of its variable, as a shell would expand it.
	command := strings.ReplaceAll(cmdline(p.job.Command...), "'"+scheduler.MachinefileArg+"'", `"`+scheduler.MachinefileArg+`"`)
	st.note("wrote %s: %s", p.jobscriptPath, command)
	for _, e := range p.job.Env {
		st.note("  %s", e)
	}
	return nil
}

// stepResults prints the IMB tables of the job's output file, or why there are none.
func stepResults(path string, res scheduler.Result, w io.Writer) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("job %s %s with exit status %d; its output: %w", res.ID, res.State, res.ExitCode, err)
	}
	defer f.Close()
	n, err := printIMB(w, f)
	switch {
	case err != nil:
		return fmt.Errorf("%s: %w", path, err)
	case res.State != scheduler.StateDone || res.ExitCode != 0:
		return fmt.Errorf("job %s %s with exit status %d; see %s", res.ID, res.State, res.ExitCode, path)
	case n == 0:
		return fmt.Errorf("%s holds no IMB results", path)
	}
	return nil
}

func cancelCommand(cfg *config, id scheduler.JobID) string {
	if cfg.scheduler == schedSlurm {
		return "scancel " + string(id)
	}
	return "qdel " + string(id)
}

func credentialKind(cfg *config) string {
	if cfg.auth == authAdmin {
		return "admin user"
	}
	return "Azure AD"
}

func schedulerName(cfg *config) string {
	if cfg.scheduler == schedSlurm {
		return "Slurm"
	}
	return "Grid Engine"
}

func formatName(f singularity.Format) string {
	if f == singularity.FormatSIMG {
		return "Singularity 2 image"
	}
	return "SIF"
}

func envPrefix(rt singularity.Runtime) string {
	if rt == singularity.Apptainer {
		return "APPTAINER"
	}
	return "SINGULARITY"
}

func baseName(p *plan) string { return p.parsed.Base.String() }
