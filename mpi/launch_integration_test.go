package mpi

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLaunchMPICH runs the argv Launch builds under MPICH's hydra mpiexec: a real MPI
// program compiled with mpicc, two ranks on localhost through the fork launcher, the
// seed workflow's Intel MPI environment passed with -genv, and a stand-in for
// singularity as the Wrapper. Every rank must run, see the environment and
// have gone through the wrapper.
func TestLaunchMPICH(t *testing.T) {
	paths := testenv.Require(t, "mpicc", "mpiexec")
	mpicc, mpiexec := paths[0], paths[1]
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()

	prog := filepath.Join(dir, "mpienv")
	out, err := exec.CommandContext(ctx, mpicc, "-o", prog, filepath.Join("testdata", "launch", "mpienv.c")).CombinedOutput()
	require.NoError(t, err, "mpicc: %s", out)

	wrapper, err := filepath.Abs(filepath.Join("testdata", "launch", "fake-singularity"))
	require.NoError(t, err)
	image := filepath.Join(dir, "rdma-latest.simg")
	require.NoError(t, os.WriteFile(image, []byte("not really an image\n"), 0o644))

	hosts := filepath.Join(dir, "u_machines")
	require.NoError(t, os.WriteFile(hosts, []byte("localhost:2\n"), 0o644))

	preset, err := AzurePreset("Standard_H16r")
	require.NoError(t, err)
	cfg, err := preset.IntelMPI(MustParseVersion("5.1.3.223"))
	require.NoError(t, err)
	cfg.Debug = 6
	cfg.Extra = map[string]string{"HPCSHIP_GENV": "value with spaces=and equals"}
	env, err := cfg.Env()
	require.NoError(t, err)

	names := []string{"HPCSHIP_WRAPPED"}
	for _, kv := range env {
		name, _, _ := strings.Cut(kv, "=")
		require.Empty(t, os.Getenv(name), "%s must reach the ranks through -genv, not the test's environment", name)
		names = append(names, name)
	}

	argv, err := Launch{
		Flavor:       MPICH,
		Launcher:     mpiexec,
		Bootstrap:    "fork",
		MachineFile:  hosts,
		Ranks:        2,
		RanksPerNode: 2,
		Env:          env,
		Wrapper:      []string{wrapper, "exec", "--bind", strings.Join(preset.Binds, ","), image},
		Command:      append([]string{prog}, names...),
	}.Argv()
	require.NoError(t, err)
	t.Logf("running %q", argv)

	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.WaitDelay = 5 * time.Second
	require.NoError(t, cmd.Run(), "stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())

	seen := map[int]map[string]string{}
	for line := range strings.SplitSeq(strings.TrimSpace(stdout.String()), "\n") {
		f := strings.SplitN(line, "\t", 3)
		require.Len(t, f, 3, "unexpected output line %q", line)
		rank, err := strconv.Atoi(f[0])
		require.NoError(t, err, "line %q", line)
		if seen[rank] == nil {
			seen[rank] = map[string]string{}
		}
		seen[rank][f[1]] = f[2]
	}
	require.Len(t, seen, 2, "want output from ranks 0 and 1; stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	pids := map[string]bool{}
	for _, rank := range []int{0, 1} {
		got := seen[rank]
		require.NotNil(t, got, "rank %d printed nothing", rank)
		assert.Equal(t, "2", got["size"], "rank %d", rank)
		assert.Equal(t, "1", got["sum"], "rank %d: Allreduce of the ranks", rank)
		for _, kv := range env {
			name, value, _ := strings.Cut(kv, "=")
			assert.Equal(t, value, got[name], "rank %d: %s", rank, name)
		}
		wrapped := got["HPCSHIP_WRAPPED"]
		assert.Contains(t, wrapped, "image=rdma-latest.simg bind=/etc/rdma/dat.conf pid=", "rank %d did not go through the wrapper", rank)
		pids[wrapped] = true
	}
	assert.Len(t, pids, 2, "each rank must have its own wrapper process")
}

// TestMPICHRejectsIntelOnlyOptions checks against the real MPICH hydra what Launch
// refuses to emit for MPICH: each Intel-only option is a fatal "unrecognized
// argument" there.
func TestMPICHRejectsIntelOnlyOptions(t *testing.T) {
	mpiexec := testenv.Require(t, "mpiexec")[0]
	truePath := testenv.Require(t, "true")[0]
	for _, opts := range [][]string{{"-perhost", "1"}, {"-rr"}, {"-grr", "1"}, {"-rdma"}, {"-dapl"}} {
		t.Run(opts[0], func(t *testing.T) {
			_, err := Launch{Flavor: MPICH, Ranks: 1, Options: opts, Command: []string{truePath}}.Argv()
			require.ErrorIs(t, err, ErrUnsupportedFlag)

			args := append([]string{"-launcher", "fork"}, opts...)
			args = append(args, "-np", "1", truePath)
			out, err := exec.CommandContext(t.Context(), mpiexec, args...).CombinedOutput()
			require.Error(t, err, "MPICH accepted %v: %s", opts, out)
			assert.Contains(t, string(out), "unrecognized argument "+strings.TrimLeft(opts[0], "-"))
		})
	}
}
