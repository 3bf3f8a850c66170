package mpi_test

import (
	"errors"
	"fmt"
	"log"
	"strings"

	"github.com/hpcship/hpcship/mpi"
)

// The seed workflow: Intel MPI 5.1.3.223 in a Singularity image on two Azure H16r
// nodes, running the IMB PingPong benchmark. The environment and argv go into a
// scheduler.Job as they are (see scheduler/sge's Example); the machinefile is the
// scheduler's placeholder, which the jobscript replaces by the path of the file it
// writes from the allocation.
func ExampleAzurePreset() {
	preset, err := mpi.AzurePreset("Standard_H16r")
	if err != nil {
		log.Fatal(err)
	}
	impi := mpi.Installation{Version: mpi.MustParseVersion("5.1.3.223")}
	cfg, err := preset.IntelMPI(impi.Version)
	if err != nil {
		log.Fatal(err)
	}
	cfg.Debug = 6
	env, err := cfg.Env()
	if err != nil {
		log.Fatal(err)
	}

	// The container's part, which package singularity renders from these plain values.
	env = append(env, "SINGULARITY_BINDPATH="+strings.Join(preset.Binds, ","))
	wrapper := []string{"singularity", "exec", "./rdma-latest.simg"}

	argv, err := mpi.Launch{
		Flavor:       mpi.IntelMPI,
		MachineFile:  "$HPCSHIP_MACHINEFILE", // scheduler.MachinefileArg
		Ranks:        2,
		RanksPerNode: 1,
		Wrapper:      wrapper,
		Command:      []string{impi.Program("IMB-MPI1"), "PingPong"},
	}.Argv()
	if err != nil {
		log.Fatal(err)
	}

	fmt.Println("source", impi.MPIVars())
	for _, kv := range env {
		fmt.Println("export", kv)
	}
	fmt.Println(strings.Join(argv, " "))
	// Output:
	// source /opt/intel/impi/5.1.3.223/bin64/mpivars.sh
	// export I_MPI_FABRICS=shm:dapl
	// export I_MPI_FALLBACK=0
	// export I_MPI_DAPL_PROVIDER=ofa-v2-ib0
	// export I_MPI_DYNAMIC_CONNECTION=0
	// export I_MPI_DAPL_TRANSLATION_CACHE=0
	// export I_MPI_DEBUG=6
	// export SINGULARITY_BINDPATH=/etc/rdma/dat.conf
	// mpirun -machinefile $HPCSHIP_MACHINEFILE -np 2 -ppn 1 singularity exec ./rdma-latest.simg /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong
}

// An HBv3 job with oneAPI Intel MPI 2021.13 in an Apptainer image: the environment
// travels on the command line with -genv, and 120 ranks fill each of 4 nodes.
func ExamplePreset_IntelMPI() {
	preset, err := mpi.AzurePreset("Standard_HB120rs_v3")
	if err != nil {
		log.Fatal(err)
	}
	impi := mpi.Installation{Version: mpi.MustParseVersion("2021.13")}
	cfg, err := preset.IntelMPI(impi.Version)
	if err != nil {
		log.Fatal(err)
	}
	cfg.PinDomain = "numa"
	env, err := cfg.Env()
	if err != nil {
		log.Fatal(err)
	}
	argv, err := mpi.Launch{
		Flavor:       mpi.IntelMPI,
		MachineFile:  "hosts",
		Ranks:        480,
		RanksPerNode: 120,
		Env:          env,
		Wrapper:      []string{"apptainer", "exec", "app.sif"},
		Command:      []string{impi.Program("IMB-MPI1"), "Allreduce"},
	}.Argv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(preset.Family, preset.Interconnect)
	fmt.Println("source", impi.MPIVars())
	fmt.Println(strings.Join(argv, " "))
	// Output:
	// HBv3 HDR InfiniBand (SR-IOV)
	// source /opt/intel/oneapi/mpi/2021.13/env/vars.sh
	// mpirun -machinefile hosts -np 480 -ppn 120 -genv I_MPI_FABRICS shm:ofi -genv I_MPI_OFI_PROVIDER mlx -genv FI_PROVIDER mlx -genv I_MPI_PIN_DOMAIN numa apptainer exec app.sif /opt/intel/oneapi/mpi/2021.13/bin/IMB-MPI1 Allreduce
}

// HPC-X or Open MPI on HBv3: UCX settings passed with -x, four ranks per node on
// eight nodes.
func ExamplePreset_UCX() {
	preset, err := mpi.AzurePreset("standard_hb120rs_v3")
	if err != nil {
		log.Fatal(err)
	}
	ucx, err := preset.UCX(8, 4)
	if err != nil {
		log.Fatal(err)
	}
	env, err := ucx.Env()
	if err != nil {
		log.Fatal(err)
	}
	argv, err := mpi.Launch{
		Flavor:       mpi.OpenMPI,
		MachineFile:  "hosts",
		Ranks:        32,
		RanksPerNode: 4,
		Env:          env,
		Command:      []string{"./osu_latency"},
	}.Argv()
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(strings.Join(argv, " "))
	// Output:
	// mpirun --hostfile hosts -np 32 --map-by ppr:4:node -x UCX_TLS=rc,sm -x UCX_NET_DEVICES=mlx5_ib0:1 ./osu_latency
}

// Intel MPI 2019 and later have no DAPL: asking for it names the replacement.
func ExampleConfig_Validate() {
	cfg := mpi.Config{
		Version:  mpi.MustParseVersion("2019.9"),
		Fabrics:  mpi.Fabrics{Intra: mpi.FabricSHM, Inter: mpi.FabricDAPL},
		Fallback: mpi.Off,
	}
	err := cfg.Validate()
	var vse *mpi.VersionSupportError
	if errors.As(err, &vse) {
		fmt.Println(vse.Variable, vse.Value, "on", vse.Version)
		fmt.Println("use", vse.Replacement)
	}
	// Output:
	// I_MPI_FABRICS shm:dapl on 2019.9
	// use I_MPI_FABRICS=shm:ofi with an OFI provider (Config.OFIProvider, which sets I_MPI_OFI_PROVIDER and FI_PROVIDER; e.g. mlx on InfiniBand, tcp on Ethernet)
}
