package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/acr/arm"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/singularity"
)

// config is what the flags say, checked.
type config struct {
	// Azure Resource Manager and the registry.
	subscription  string
	resourceGroup string
	registry      string
	loginServer   string // the registry's conventional login server in Azure's public cloud
	create        bool
	location      string
	sku           arm.SKU
	auth          string // authAAD or authAdmin

	// The image and where its pieces are.
	image      string // repository:tag in the registry
	contextDir string
	cacheDir   string
	workdir    string
	sif        string // relative to workdir unless absolute
	runtime    singularity.Runtime

	// The job.
	scheduler    string // schedSGE or schedSlurm
	jobName      string
	parallelEnv  string
	slots        int
	queue        string
	settingsFile string
	cycleCloud   bool
	vmSize       string
	preset       mpi.Preset // the MPI settings of vmSize
	impiVersion  mpi.Version
	impiRoot     string
	ranks        int
	ranksPerNode int
	mpiDebug     int
	benchmark    string

	dryRun bool
	submit bool
}

const (
	authAAD    = "aad"
	authAdmin  = "admin"
	schedSGE   = "sge"
	schedSlurm = "slurm"
)

// usageError is a problem with the command line: the program exits 2.
type usageError struct{ problems []string }

func (e *usageError) Error() string { return strings.Join(e.problems, "\n") }

// parseFlags reads args into a config. getenv supplies AZURE_SUBSCRIPTION_ID, as the Azure tools read it.
// Every problem is collected, so one run names them all.
func parseFlags(args []string, getenv func(string) string, stderr io.Writer) (*config, error) {
	c := &config{}
	fs := flag.NewFlagSet("rdma", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: rdma -subscription ID -resource-group RG -registry NAME [-create -location REGION] [flags]\n\n")
		fmt.Fprintf(stderr, "Builds the image, pushes it to Azure Container Registry, pulls it as a SIF, submits an Intel MPI\n")
		fmt.Fprintf(stderr, "IMB job that runs it and prints the results. -dry-run prints each step and writes the jobscript only.\n\n")
		fs.PrintDefaults()
	}
	var sku, impiVersion, runtime string
	fs.StringVar(&c.subscription, "subscription", "", "Azure subscription `ID` (default $AZURE_SUBSCRIPTION_ID)")
	fs.StringVar(&c.resourceGroup, "resource-group", "", "resource `group` of the registry; it must exist")
	fs.StringVar(&c.registry, "registry", "", "registry `name` (5-50 letters and digits), as in az acr --name")
	fs.BoolVar(&c.create, "create", false, "create the registry if it does not exist (needs -location)")
	fs.StringVar(&c.location, "location", "", "Azure `region` of a registry to create, such as westeurope")
	fs.StringVar(&sku, "sku", string(arm.SKUBasic), "service tier of a registry to create: Basic, Standard or Premium")
	fs.StringVar(&c.auth, "auth", authAAD, "registry credentials: aad (Azure AD default credential chain) or admin (the admin user's keys, read through ARM)")
	fs.StringVar(&c.image, "image", "rdma:latest", "`repository:tag` to push in the registry")
	fs.StringVar(&c.contextDir, "context", ".", "build context `dir`ectory; its Dockerfile, or the built-in seed Dockerfile if it has none")
	fs.StringVar(&c.cacheDir, "cache-dir", "", "`dir`ectory for the build and SIF caches (default under the user's cache directory)")
	fs.StringVar(&c.workdir, "workdir", ".", "`dir`ectory of the SIF, the jobscript and the job's output; shared with the compute nodes")
	fs.StringVar(&c.sif, "sif", "", "container `file` in -workdir; .simg writes Singularity 2's format (default from -image, such as rdma_latest.sif)")
	fs.StringVar(&runtime, "runtime", string(singularity.Singularity), "container runtime on the nodes: singularity or apptainer")
	fs.StringVar(&c.scheduler, "scheduler", schedSGE, "batch system: sge (Grid Engine) or slurm")
	fs.StringVar(&c.jobName, "job-name", "rdma", "job `name`")
	fs.StringVar(&c.parallelEnv, "pe", "mpi", "Grid Engine parallel environment")
	fs.IntVar(&c.slots, "slots", 32, "slots (Grid Engine) or tasks (Slurm) to allocate")
	fs.StringVar(&c.queue, "queue", "", "queue (Grid Engine) or partition (Slurm); CycleCloud needs one")
	fs.StringVar(&c.settingsFile, "sge-settings", "", "Grid Engine settings `file` to source before each command, such as /etc/cluster-setup.sh")
	fs.BoolVar(&c.cycleCloud, "cyclecloud", false, "insist on the single plain queue Azure CycleCloud's autoscaler needs")
	fs.StringVar(&c.vmSize, "vm-size", "Standard_H16r", "Azure VM `size` of the compute nodes; selects the MPI fabric settings")
	fs.StringVar(&impiVersion, "impi-version", "5.1.3.223", "Intel MPI `version` on the nodes and in the image")
	fs.StringVar(&c.impiRoot, "impi-root", "", "Intel MPI installation `dir`ectory (default /opt/intel/impi/<version> or the version's layout)")
	fs.IntVar(&c.ranks, "ranks", 2, "MPI ranks")
	fs.IntVar(&c.ranksPerNode, "ranks-per-node", 1, "MPI ranks per node")
	fs.IntVar(&c.mpiDebug, "mpi-debug", 6, "I_MPI_DEBUG level; 0 leaves it unset")
	fs.StringVar(&c.benchmark, "benchmark", "PingPong", "IMB-MPI1 `benchmark` to run")
	fs.BoolVar(&c.dryRun, "dry-run", false, "print each step and the command it replaces, write the jobscript, touch nothing remote")
	fs.BoolVar(&c.submit, "submit", true, "submit the job, wait for it and print its results; false stops after the jobscript")
	if err := fs.Parse(args); err != nil {
		return nil, err
	}

	var problems []string
	bad := func(format string, a ...any) { problems = append(problems, fmt.Sprintf(format, a...)) }
	if fs.NArg() > 0 {
		bad("unexpected argument %q: every setting is a flag", fs.Arg(0))
	}
	if c.subscription == "" {
		c.subscription = getenv("AZURE_SUBSCRIPTION_ID")
	}
	if c.subscription == "" {
		bad("-subscription is required (or set AZURE_SUBSCRIPTION_ID)")
	}
	if c.resourceGroup == "" {
		bad("-resource-group is required")
	}
	if c.registry == "" {
		bad("-registry is required")
	} else if ls, err := acr.AzurePublic.LoginServer(c.registry); err != nil {
		bad("-registry: %v", err)
	} else {
		c.loginServer = ls
	}
	if c.create && c.location == "" {
		bad("-create needs -location, the region of the new registry (such as westeurope)")
	}
	switch s := arm.SKU(sku); {
	case strings.EqualFold(sku, string(arm.SKUBasic)):
		c.sku = arm.SKUBasic
	case strings.EqualFold(sku, string(arm.SKUStandard)):
		c.sku = arm.SKUStandard
	case strings.EqualFold(sku, string(arm.SKUPremium)):
		c.sku = arm.SKUPremium
	default:
		bad("-sku %q: want Basic, Standard or Premium", s)
	}
	if c.auth != authAAD && c.auth != authAdmin {
		bad("-auth %q: want aad or admin", c.auth)
	}
	repo, tag, ok := strings.Cut(c.image, ":")
	if !ok || repo == "" || tag == "" {
		bad("-image %q: want repository:tag, such as rdma:latest", c.image)
	} else if _, err := name.NewTag("example.azurecr.io/"+c.image, name.StrictValidation); err != nil {
		bad("-image %q: %v", c.image, err)
	}
	if st, err := os.Stat(c.contextDir); err != nil || !st.IsDir() {
		bad("-context %q: not a directory", c.contextDir)
	}
	if st, err := os.Stat(c.workdir); err == nil && !st.IsDir() {
		bad("-workdir %q: not a directory", c.workdir)
	}
	switch singularity.Runtime(runtime) {
	case singularity.Singularity, singularity.Apptainer:
		c.runtime = singularity.Runtime(runtime)
	default:
		bad("-runtime %q: want singularity or apptainer", runtime)
	}
	if c.sif == "" && ok && repo != "" {
		if ref, err := name.NewTag("example.azurecr.io/"+c.image, name.StrictValidation); err == nil {
			c.sif = singularity.DefaultName(ref, singularity.FormatSIF)
		}
	}
	if c.sif != "" && (filepath.Base(c.sif) == "." || filepath.Base(c.sif) == "/" || strings.HasSuffix(c.sif, "/")) {
		bad("-sif %q: want a file name", c.sif)
	}
	if c.scheduler != schedSGE && c.scheduler != schedSlurm {
		bad("-scheduler %q: want sge or slurm", c.scheduler)
	}
	if c.jobName == "" {
		bad("-job-name must not be empty")
	}
	if c.slots < 1 {
		bad("-slots %d: want at least 1", c.slots)
	}
	if c.ranks < 1 {
		bad("-ranks %d: want at least 1", c.ranks)
	} else if c.ranks > c.slots {
		bad("-ranks %d: more than the %d slots of the job", c.ranks, c.slots)
	}
	if c.ranksPerNode < 0 || c.ranksPerNode > c.ranks {
		bad("-ranks-per-node %d: want 0 to -ranks (%d)", c.ranksPerNode, c.ranks)
	}
	if c.mpiDebug < 0 {
		bad("-mpi-debug %d: want 0 or more", c.mpiDebug)
	}
	if c.benchmark == "" || strings.HasPrefix(c.benchmark, "-") {
		bad("-benchmark %q: want an IMB-MPI1 benchmark name, such as PingPong", c.benchmark)
	}
	if preset, err := mpi.AzurePreset(c.vmSize); err != nil {
		bad("-vm-size: %v", err)
	} else {
		c.preset = preset
	}
	v, err := mpi.ParseVersion(impiVersion)
	if err != nil {
		bad("-impi-version: %v", err)
	}
	c.impiVersion = v
	if c.settingsFile != "" && c.scheduler == schedSlurm {
		bad("-sge-settings is for -scheduler sge")
	}
	if c.cycleCloud && c.scheduler == schedSlurm {
		bad("-cyclecloud is for -scheduler sge")
	}
	if len(problems) > 0 {
		return nil, &usageError{problems: problems}
	}
	return c, nil
}

// errHelp is flag.ErrHelp: -h asked for the usage, which is not a failure.
var errHelp = flag.ErrHelp

// isUsage reports whether err is a command-line problem.
func isUsage(err error) bool {
	var u *usageError
	return errors.As(err, &u)
}
