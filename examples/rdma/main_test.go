package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr/arm"
	"github.com/hpcship/hpcship/mpi"
	"github.com/hpcship/hpcship/mpi/imb"
	"github.com/hpcship/hpcship/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// offlineDeps are deps that fail the test if the program reaches for Azure: a dry run and a rejected command
// line must not.
func offlineDeps(t *testing.T) deps {
	t.Helper()
	return deps{
		getenv: func(string) string { return "" },
		credential: func() (azcore.TokenCredential, error) {
			t.Error("an Azure credential was asked for")
			return nil, errors.New("no Azure here")
		},
		armOptions: []arm.Option{arm.WithHTTPClient(&http.Client{Transport: roundTripFunc(func(r *http.Request) (*http.Response, error) {
			t.Errorf("a request reached Resource Manager: %s %s", r.Method, r.URL)
			return nil, errors.New("no Azure here")
		})})},
	}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// runRdma runs the program as main would, with d for the outside world.
func runRdma(t *testing.T, d deps, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var out, errOut bytes.Buffer
	code = run(t.Context(), args, &out, &errOut, d)
	return code, out.String(), errOut.String()
}

// required are the flags without which nothing runs.
var required = []string{"-subscription", "00000000-1111-2222-3333-444444444444", "-resource-group", "hpc-rg",
	"-registry", "myacr"}

func TestFlags(t *testing.T) {
	workdir := t.TempDir()
	dirDockerfile, emptyDockerfile := t.TempDir(), t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(workdir, "taken.job"), 0o755))
	require.NoError(t, os.Mkdir(filepath.Join(dirDockerfile, "Dockerfile"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(emptyDockerfile, "Dockerfile"), nil, 0o644))
	tests := []struct {
		name string
		args []string
		env  map[string]string
		// wantCode is the exit status, wantStderr what stderr must say.
		wantCode   int
		wantStderr []string
	}{
		{name: "nothing", wantCode: 2, wantStderr: []string{
			"rdma: -subscription is required (or set AZURE_SUBSCRIPTION_ID)",
			"rdma: -resource-group is required", "rdma: -registry is required", "Run rdma -h for the flags."}},
		{name: "subscription from the environment", args: []string{"-resource-group", "rg", "-registry", "myacr", "-dry-run", "-workdir", workdir},
			env: map[string]string{"AZURE_SUBSCRIPTION_ID": "sub"}, wantCode: 0},
		{name: "help", args: []string{"-h"}, wantCode: 0, wantStderr: []string{"Usage: rdma", "  -impi-root dir\n"}},
		{name: "unknown flag", args: []string{"-registy", "myacr"}, wantCode: 2,
			wantStderr: []string{"flag provided but not defined: -registy", "Usage: rdma"}},
		{name: "not a number", args: append([]string{"-slots", "many"}, required...), wantCode: 2,
			wantStderr: []string{`invalid value "many" for flag -slots`}},
		{name: "argument", args: append(append([]string{}, required...), "build"), wantCode: 2,
			wantStderr: []string{`rdma: unexpected argument "build": every setting is a flag`}},
		{name: "bad registry name", args: []string{"-subscription", "s", "-resource-group", "rg", "-registry", "my-acr"},
			wantCode: 2, wantStderr: []string{`rdma: -registry: `, "my-acr"}},
		{name: "create without location", args: append([]string{"-create"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -create needs -location"}},
		{name: "bad sku", args: append([]string{"-sku", "Gold"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -sku "Gold": want Basic, Standard or Premium`}},
		{name: "bad auth", args: append([]string{"-auth", "password"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -auth "password": want aad or admin`}},
		{name: "image without tag", args: append([]string{"-image", "rdma"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -image "rdma": want repository:tag`}},
		{name: "bad image", args: append([]string{"-image", "RDMA:latest"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -image "RDMA:latest"`}},
		{name: "no context", args: append([]string{"-context", filepath.Join(workdir, "missing")}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -context "` + filepath.Join(workdir, "missing") + `": not a directory`}},
		{name: "workdir is a file", args: append([]string{"-workdir", filepath.Join("testdata", "dry-run-no-submit.golden")}, required...),
			wantCode: 2, wantStderr: []string{`rdma: -workdir "testdata/dry-run-no-submit.golden": not a directory`}},
		{name: "bad runtime", args: append([]string{"-runtime", "docker"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -runtime "docker": want singularity or apptainer`}},
		{name: "bad scheduler", args: append([]string{"-scheduler", "pbs"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -scheduler "pbs": want sge or slurm`}},
		{name: "empty job name", args: append([]string{"-job-name", ""}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -job-name must not be empty"}},
		{name: "no slots", args: append([]string{"-slots", "0"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -slots 0: want at least 1"}},
		{name: "more ranks than slots", args: append([]string{"-ranks", "64"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -ranks 64: more than the 32 slots of the job"}},
		{name: "ranks per node", args: append([]string{"-ranks-per-node", "3"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -ranks-per-node 3: want 0 to -ranks (2)"}},
		{name: "unknown VM size", args: append([]string{"-vm-size", "Standard_D2s_v3"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -vm-size: ", "Standard_D2s_v3"}},
		{name: "bad Intel MPI version", args: append([]string{"-impi-version", "3.2"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -impi-version: "}},
		{name: "settings file for slurm", args: append([]string{"-scheduler", "slurm", "-sge-settings", "/etc/cluster-setup.sh"}, required...),
			wantCode: 2, wantStderr: []string{"rdma: -sge-settings is for -scheduler sge"}},
		{name: "benchmark as an option", args: append([]string{"-benchmark", "-npmin"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -benchmark "-npmin"`}},
		// Flags that pass but a setting the VM family does not support: a failed step, not a usage error.
		{name: "DAPL on Intel MPI 2021", args: append([]string{"-impi-version", "2021.9", "-dry-run", "-workdir", workdir}, required...),
			wantCode: 1, wantStderr: []string{"rdma: -impi-version 2021.9 with -vm-size Standard_H16r: "}},
		{name: "no ranks", args: append([]string{"-ranks", "0"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -ranks 0: want at least 1"}},
		{name: "negative ranks per node", args: append([]string{"-ranks-per-node", "-1"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -ranks-per-node -1: want 0 to -ranks (2)"}},
		{name: "one slot, one rank, one per node", args: append([]string{"-slots", "1", "-ranks", "1", "-ranks-per-node", "1", "-dry-run", "-workdir", workdir}, required...)},
		{name: "every rank on one node", args: append([]string{"-ranks-per-node", "2", "-dry-run", "-workdir", workdir}, required...)},
		{name: "sif is a directory", args: append([]string{"-sif", "images/"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -sif "images/": want a file name`}},
		{name: "sif is the workdir", args: append([]string{"-sif", "."}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -sif ".": want a file name`}},
		{name: "sif is the root", args: append([]string{"-sif", "/"}, required...), wantCode: 2,
			wantStderr: []string{`rdma: -sif "/": want a file name`}},
		{name: "cyclecloud for slurm", args: append([]string{"-scheduler", "slurm", "-cyclecloud"}, required...), wantCode: 2,
			wantStderr: []string{"rdma: -cyclecloud is for -scheduler sge"}},
		{name: "cyclecloud without a queue", args: append([]string{"-cyclecloud", "-dry-run", "-workdir", workdir}, required...), wantCode: 1,
			wantStderr: []string{"rdma: ", "queue"}},
		{name: "jobscript path is a directory", args: append([]string{"-job-name", "taken", "-dry-run", "-workdir", workdir}, required...),
			wantCode: 1, wantStderr: []string{"rdma: ", "taken.job"}},
		// A build context whose Dockerfile cannot be read or parsed: a failed step, naming the file.
		{name: "Dockerfile is a directory", args: append([]string{"-context", dirDockerfile, "-dry-run", "-workdir", workdir}, required...),
			wantCode: 1, wantStderr: []string{"rdma: reading the Dockerfile: ", "is a directory"}},
		{name: "empty Dockerfile", args: append([]string{"-context", emptyDockerfile, "-dry-run", "-workdir", workdir}, required...),
			wantCode: 1, wantStderr: []string{"rdma: " + filepath.Join(emptyDockerfile, "Dockerfile") + ": ", "file with no instructions"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := offlineDeps(t)
			d.getenv = func(k string) string { return tt.env[k] }
			code, _, stderr := runRdma(t, d, tt.args...)
			assert.Equal(t, tt.wantCode, code, "stderr: %s", stderr)
			for _, want := range tt.wantStderr {
				assert.Contains(t, stderr, want)
			}
		})
	}
}

// TestCmdline checks that the commands shown for each step are shell words, and that a word no shell can
// hold (a NUL byte) is shown Go-quoted rather than lost.
func TestCmdline(t *testing.T) {
	assert.Equal(t, "az acr show --name 'my acr' ''", cmdline("az", "acr", "show", "--name", "my acr", ""))
	assert.Equal(t, `echo "a\x00b"`, cmdline("echo", "a\x00b"))
}

// TestComposeJobErrors checks that the job is not composed from settings the MPI, container and launcher
// packages reject, whether or not the command line let them through.
func TestComposeJobErrors(t *testing.T) {
	valid := func(t *testing.T) *config {
		cfg, err := parseFlags(append([]string{"-workdir", t.TempDir()}, required...), func(string) string { return "" }, io.Discard)
		require.NoError(t, err)
		return cfg
	}
	job, err := composeJob(valid(t), "./rdma_latest.sif", "/work")
	require.NoError(t, err)
	require.NotEmpty(t, job.Command)

	tests := []struct {
		name     string
		change   func(*config)
		sifImage string
		want     string
	}{
		{name: "DAPL on Intel MPI 2021", change: func(c *config) { c.impiVersion = mpi.MustParseVersion("2021.9") },
			want: "-impi-version 2021.9 with -vm-size Standard_H16r: "},
		{name: "negative debug level", change: func(c *config) { c.mpiDebug = -1 }, want: "I_MPI_DEBUG"},
		{name: "unknown runtime", change: func(c *config) { c.runtime = "docker" }, want: `unknown runtime "docker"`},
		{name: "no image", sifImage: "", want: "exec needs an image"},
		{name: "image as an option", sifImage: "-x.sif", want: "would be read as an option"},
		{name: "no ranks", change: func(c *config) { c.ranks = 0 }, want: "ranks"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := valid(t)
			sif := "./rdma_latest.sif"
			if tt.change != nil {
				tt.change(cfg)
			} else {
				sif = tt.sifImage
			}
			_, err := composeJob(cfg, sif, "/work")
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
		})
	}
}

// TestDryRunGolden pins what a dry run prints, in the three shapes of the workflow: creating a registry with
// Azure AD credentials on Grid Engine, an existing one with admin keys on Slurm under Apptainer, and
// stopping at the jobscript. Nothing reaches Azure (offlineDeps), and the jobscript is written.
func TestDryRunGolden(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{name: "create-aad-sge", args: []string{"-create", "-location", "westeurope"}},
		{name: "admin-slurm-apptainer", args: []string{"-auth", "admin", "-scheduler", "slurm", "-queue", "hpc",
			"-runtime", "apptainer", "-vm-size", "Standard_HB120rs_v3", "-impi-version", "2021.9", "-slots", "240",
			"-ranks", "240", "-ranks-per-node", "120", "-benchmark", "Allreduce", "-sif", "imb.sif", "-sku", "premium"}},
		{name: "no-submit", args: []string{"-submit=false", "-image", "imb/rdma:v1", "-mpi-debug", "0"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workdir := t.TempDir()
			args := append(append([]string{"-dry-run", "-workdir", workdir, "-context", "testdata"}, required...), tt.args...)
			code, stdout, stderr := runRdma(t, offlineDeps(t), args...)
			require.Equal(t, 0, code, "stderr: %s", stderr)
			assert.Empty(t, stderr)
			got := strings.ReplaceAll(stdout, workdir, "$WORKDIR")
			path := filepath.Join("testdata", "dry-run-"+tt.name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(path, []byte(got), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), got)

			entries, err := os.ReadDir(workdir)
			require.NoError(t, err)
			require.Len(t, entries, 1, "the dry run writes the jobscript and nothing else")
			assert.Equal(t, "rdma.job", entries[0].Name())
		})
	}
}

// TestSeedJobscript checks that the program's job, on its defaults and with the seed's image file, is the
// seed's rdma.job that scheduler/sge's example composes, but for the working directory the program names.
func TestSeedJobscript(t *testing.T) {
	workdir := t.TempDir()
	args := append([]string{"-dry-run", "-workdir", workdir, "-sif", "rdma-latest.simg"}, required...)
	code, stdout, stderr := runRdma(t, offlineDeps(t), args...)
	require.Equal(t, 0, code, "stderr: %s", stderr)
	assert.Contains(t, stdout, "Pull it as a Singularity 2 image")

	got, err := os.ReadFile(filepath.Join(workdir, "rdma.job"))
	require.NoError(t, err)
	seed, err := os.ReadFile(filepath.Join("..", "..", "scheduler", "sge", "testdata", "rdma.job"))
	require.NoError(t, err)
	want := strings.Replace(string(seed), "#$ -cwd\n", "#$ -wd "+workdir+"\n", 1)
	require.NotEqual(t, string(seed), want, "the seed jobscript has no -cwd line to replace")
	assert.Equal(t, want, string(got))
}

func TestIMBTable(t *testing.T) {
	for _, name := range []string{"azure-a9-pingpong", "pingpong-allreduce-barrier"} {
		t.Run(name, func(t *testing.T) {
			in := filepath.Join("..", "..", "mpi", "imb", "testdata", name+".txt")
			var out bytes.Buffer
			err := stepResults(in, scheduler.Result{ID: "17", State: scheduler.StateDone}, &out)
			require.NoError(t, err)
			path := filepath.Join("testdata", "imb-"+name+".golden")
			if *update {
				require.NoError(t, os.WriteFile(path, out.Bytes(), 0o644))
			}
			want, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, string(want), out.String())
		})
	}
}

func TestResultsErrors(t *testing.T) {
	dir := t.TempDir()
	sample := filepath.Join("..", "..", "mpi", "imb", "testdata", "azure-a9-pingpong.txt")
	empty := filepath.Join(dir, "rdma.o18")
	require.NoError(t, os.WriteFile(empty, []byte("mpirun: command not found\n"), 0o644))
	malformed := filepath.Join(dir, "rdma.o19")
	require.NoError(t, os.WriteFile(malformed, []byte("# Benchmarking PingPong\n# #processes = 2\n  #bytes #repetitions t[usec] Mbytes/sec\n 0 1000 abc 0.00\n"), 0o644))

	tests := []struct {
		name    string
		path    string
		res     scheduler.Result
		wantErr string
		// wantTable is whether the results were printed before the error.
		wantTable bool
	}{
		{name: "failed job with results", path: sample, res: scheduler.Result{ID: "17", State: scheduler.StateFailed, ExitCode: 1},
			wantErr: "job 17 failed with exit status 1; see " + sample, wantTable: true},
		{name: "no results", path: empty, res: scheduler.Result{ID: "18", State: scheduler.StateDone},
			wantErr: empty + " holds no IMB results"},
		{name: "failed job without results", path: empty, res: scheduler.Result{ID: "18", State: scheduler.StateFailed, ExitCode: 127},
			wantErr: "job 18 failed with exit status 127; see " + empty},
		{name: "malformed", path: malformed, res: scheduler.Result{ID: "19", State: scheduler.StateDone},
			wantErr: malformed + ": "},
		{name: "no output file", path: filepath.Join(dir, "rdma.o20"), res: scheduler.Result{ID: "20", State: scheduler.StateCancelled, ExitCode: 137},
			wantErr: "job 20 cancelled with exit status 137; its output: open "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			err := stepResults(tt.path, tt.res, &out)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			assert.Equal(t, tt.wantTable, strings.Contains(out.String(), "PingPong, 2 processes"), out.String())
		})
	}
}

// TestCancelledContext checks that an ended context stops the program with an error rather than a result.
func TestCancelledContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	var out, errOut bytes.Buffer
	args := append([]string{"-dry-run", "-workdir", t.TempDir()}, required...)
	code := run(ctx, args, &out, &errOut, offlineDeps(t))
	assert.Equal(t, 1, code)
	assert.Contains(t, errOut.String(), "context canceled")
}

// FuzzPrintIMB feeds job output of any shape to the results printer: it must not panic, and it must print
// exactly the tables imb.Parse finds and fail exactly when Parse does.
func FuzzPrintIMB(f *testing.F) {
	for _, name := range []string{"azure-a9-pingpong", "pingpong-allreduce-barrier"} {
		data, err := os.ReadFile(filepath.Join("..", "..", "mpi", "imb", "testdata", name+".txt"))
		require.NoError(f, err)
		f.Add(data)
	}
	f.Add([]byte("# Benchmarking PingPong\n# #processes = 2\n  #bytes #repetitions t[usec] Mbytes/sec\n 8388608 out-of-mem.; needed X= 1 GB\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		n, err := printIMB(&out, bytes.NewReader(data))
		want, wantErr := imb.Parse(bytes.NewReader(data))
		assert.Equal(t, len(want), n)
		assert.Equal(t, wantErr == nil, err == nil, "printIMB: %v, imb.Parse: %v", err, wantErr)
		assert.Equal(t, n, strings.Count(out.String(), " processes"), out.String())
	})
}
