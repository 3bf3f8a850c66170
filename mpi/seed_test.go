package mpi

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// seedSetup builds the seed workflow's job from the H16r preset: Intel MPI
// 5.1.3.223, two ranks one per node, PingPong in ./rdma-latest.simg.
func seedSetup(t *testing.T) (env, imageEnv []string, mpivars string, argv []string) {
	t.Helper()
	preset, err := AzurePreset("Standard_H16r")
	require.NoError(t, err)
	impi := Installation{Version: MustParseVersion("5.1.3.223")}
	cfg, err := preset.IntelMPI(impi.Version)
	require.NoError(t, err)
	cfg.Debug = 6
	env, err = cfg.Env()
	require.NoError(t, err)
	// The container's part, as package singularity renders it from the preset's binds.
	imageEnv = []string{"SINGULARITY_BINDPATH=" + strings.Join(preset.Binds, ",")}
	argv, err = Launch{
		Flavor:       IntelMPI,
		MachineFile:  "$HPCSHIP_MACHINEFILE",
		Ranks:        2,
		RanksPerNode: 1,
		Wrapper:      []string{"singularity", "exec", "./rdma-latest.simg"},
		Command:      []string{impi.Program("IMB-MPI1"), "PingPong"},
	}.Argv()
	require.NoError(t, err)
	return env, imageEnv, impi.MPIVars(), argv
}

// TestSeedWorkflow pins the exact settings of the original workflow's rdma.job.
func TestSeedWorkflow(t *testing.T) {
	env, imageEnv, mpivars, argv := seedSetup(t)
	assert.Equal(t, []string{
		"I_MPI_FABRICS=shm:dapl",
		"I_MPI_FALLBACK=0",
		"I_MPI_DAPL_PROVIDER=ofa-v2-ib0",
		"I_MPI_DYNAMIC_CONNECTION=0",
		"I_MPI_DAPL_TRANSLATION_CACHE=0",
		"I_MPI_DEBUG=6",
	}, env)
	assert.Equal(t, []string{"SINGULARITY_BINDPATH=/etc/rdma/dat.conf"}, imageEnv)
	assert.Equal(t, "/opt/intel/impi/5.1.3.223/bin64/mpivars.sh", mpivars)
	// mpirun -machinefile "$TMPDIR/u_machines" -np 2 -ppn 1 singularity exec ./rdma-latest.simg /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong,
	// with the machinefile the scheduler's placeholder, which the jobscript replaces by its path.
	assert.Equal(t, []string{
		"mpirun", "-machinefile", "$HPCSHIP_MACHINEFILE", "-np", "2", "-ppn", "1",
		"singularity", "exec", "./rdma-latest.simg",
		"/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1", "PingPong",
	}, argv)
}

// TestSeedWorkflowGolden compares the whole rendered job with testdata; run
// `go test ./mpi -run Golden -update` to rewrite it after an intended change.
func TestSeedWorkflowGolden(t *testing.T) {
	env, imageEnv, mpivars, argv := seedSetup(t)
	var b strings.Builder
	b.WriteString("# environment the job exports\n")
	for _, kv := range append(env, imageEnv...) {
		b.WriteString(kv + "\n")
	}
	b.WriteString("# script the job sources\n" + mpivars + "\n")
	b.WriteString("# argv, one argument per line\n")
	for _, a := range argv {
		b.WriteString(a + "\n")
	}
	golden := filepath.Join("testdata", "seed-h16r-impi5.golden")
	if *update {
		require.NoError(t, os.WriteFile(golden, []byte(b.String()), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), b.String())
}
