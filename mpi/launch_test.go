package mpi

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLaunchArgv(t *testing.T) {
	sif := []string{"singularity", "exec", "--bind", "/etc/rdma/dat.conf,/scratch:/data:ro", "app.sif"}
	tests := []struct {
		name   string
		launch Launch
		want   []string
	}{
		{
			name:   "Intel MPI, everything",
			launch: Launch{Flavor: IntelMPI, Bootstrap: "sge", MachineFile: "hosts", Ranks: 4, RanksPerNode: 2, Env: []string{"I_MPI_DEBUG=5", "EMPTY="}, Options: []string{"-l"}, Wrapper: sif, Command: []string{"app", "-x"}},
			want: []string{"mpirun", "-bootstrap", "sge", "-machinefile", "hosts", "-np", "4", "-ppn", "2", "-genv", "I_MPI_DEBUG", "5", "-genv", "EMPTY", "", "-l",
				"singularity", "exec", "--bind", "/etc/rdma/dat.conf,/scratch:/data:ro", "app.sif", "app", "-x"},
		},
		{
			name:   "Intel MPI, -perhost and own launcher path",
			launch: Launch{Flavor: IntelMPI, Launcher: "/opt/intel/impi/5.1.3.223/bin64/mpirun", Ranks: 2, PerHost: 1, Command: []string{"IMB-MPI1"}},
			want:   []string{"/opt/intel/impi/5.1.3.223/bin64/mpirun", "-np", "2", "-perhost", "1", "IMB-MPI1"},
		},
		{
			name:   "Intel MPI, -rr",
			launch: Launch{Flavor: IntelMPI, Ranks: 2, RoundRobin: true, Command: []string{"IMB-MPI1"}},
			want:   []string{"mpirun", "-np", "2", "-rr", "IMB-MPI1"},
		},
		{
			name:   "MPICH with fork launcher",
			launch: Launch{Flavor: MPICH, Bootstrap: "fork", MachineFile: "hosts", Ranks: 2, RanksPerNode: 1, Env: []string{"A=b=c"}, Command: []string{"./hello"}},
			want:   []string{"mpiexec", "-launcher", "fork", "-machinefile", "hosts", "-np", "2", "-ppn", "1", "-genv", "A", "b=c", "./hello"},
		},
		{
			name:   "Open MPI",
			launch: Launch{Flavor: OpenMPI, MachineFile: "hosts", Ranks: 8, RanksPerNode: 4, Env: []string{"UCX_TLS=rc,sm"}, Wrapper: []string{"apptainer", "exec", "--cleanenv", "a.sif"}, Command: []string{"osu_latency"}},
			want:   []string{"mpirun", "--hostfile", "hosts", "-np", "8", "--map-by", "ppr:4:node", "-x", "UCX_TLS=rc,sm", "apptainer", "exec", "--cleanenv", "a.sif", "osu_latency"},
		},
		{
			name:   "srun with PMI-2",
			launch: Launch{Flavor: Srun, Ranks: 4, RanksPerNode: 2, Options: []string{"--cpu-bind=cores"}, Wrapper: []string{"singularity", "exec", "a.sif"}, Command: []string{"IMB-MPI1", "PingPong"}},
			want:   []string{"srun", "--mpi=pmi2", "--ntasks=4", "--ntasks-per-node=2", "--cpu-bind=cores", "singularity", "exec", "a.sif", "IMB-MPI1", "PingPong"},
		},
		{
			name:   "wrapper lets the program start with a dash",
			launch: Launch{Flavor: MPICH, Ranks: 1, Wrapper: []string{"/usr/local/bin/singularity", "exec", "x.simg"}, Command: []string{"-p"}},
			want:   []string{"mpiexec", "-np", "1", "/usr/local/bin/singularity", "exec", "x.simg", "-p"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.launch.Argv()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

func TestLaunchErrors(t *testing.T) {
	cmd := []string{"app"}
	tests := []struct {
		name    string
		launch  Launch
		wantErr error
		flag    string // for *FlagError
	}{
		{name: "no flavor", launch: Launch{Ranks: 1, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "no ranks", launch: Launch{Flavor: IntelMPI, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "negative ppn", launch: Launch{Flavor: IntelMPI, Ranks: 1, RanksPerNode: -1, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "more ranks per node than ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, RanksPerNode: 4, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "more ranks per host than ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, PerHost: 3, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "no command", launch: Launch{Flavor: MPICH, Ranks: 1}, wantErr: ErrInvalidSetting},
		{name: "command looks like an option", launch: Launch{Flavor: MPICH, Ranks: 1, Command: []string{"-app"}}, wantErr: ErrInvalidSetting},
		{name: "machinefile looks like an option", launch: Launch{Flavor: MPICH, Ranks: 1, MachineFile: "-x", Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "perhost on MPICH", launch: Launch{Flavor: MPICH, Ranks: 2, PerHost: 1, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-perhost"},
		{name: "rr on MPICH", launch: Launch{Flavor: MPICH, Ranks: 2, RoundRobin: true, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-rr"},
		{name: "perhost on Open MPI", launch: Launch{Flavor: OpenMPI, Ranks: 2, PerHost: 1, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-perhost"},
		{name: "Intel-only option in MPICH options", launch: Launch{Flavor: MPICH, Ranks: 2, Options: []string{"-l", "--GRR=2"}, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "--GRR=2"},
		{name: "rdma in MPICH options", launch: Launch{Flavor: MPICH, Ranks: 2, Options: []string{"-RDMA"}, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-RDMA"},
		{name: "bootstrap on Open MPI", launch: Launch{Flavor: OpenMPI, Ranks: 2, Bootstrap: "ssh", Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-bootstrap"},
		{name: "machinefile on srun", launch: Launch{Flavor: Srun, Ranks: 2, MachineFile: "hosts", Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-machinefile"},
		{name: "bootstrap on srun", launch: Launch{Flavor: Srun, Ranks: 2, Bootstrap: "slurm", Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-bootstrap"},
		{name: "env on srun", launch: Launch{Flavor: Srun, Ranks: 2, Env: []string{"A=1"}, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-genv"},
		{name: "perhost on srun", launch: Launch{Flavor: Srun, Ranks: 2, PerHost: 1, Command: cmd}, wantErr: ErrUnsupportedFlag, flag: "-perhost"},
		{name: "unknown Intel bootstrap", launch: Launch{Flavor: IntelMPI, Ranks: 2, Bootstrap: "manual", Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "unknown MPICH launcher", launch: Launch{Flavor: MPICH, Ranks: 2, Bootstrap: "pdsh", Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "ppn and perhost", launch: Launch{Flavor: IntelMPI, Ranks: 2, RanksPerNode: 1, PerHost: 1, Command: cmd}, wantErr: ErrConflict},
		{name: "perhost and rr", launch: Launch{Flavor: IntelMPI, Ranks: 2, PerHost: 2, RoundRobin: true, Command: cmd}, wantErr: ErrConflict},
		{name: "negative perhost", launch: Launch{Flavor: IntelMPI, Ranks: 2, PerHost: -1, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "env without =", launch: Launch{Flavor: IntelMPI, Ranks: 2, Env: []string{"I_MPI_DEBUG"}, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "env bad name", launch: Launch{Flavor: IntelMPI, Ranks: 2, Env: []string{"-x=1"}, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "env name twice", launch: Launch{Flavor: MPICH, Ranks: 2, Env: []string{"A=1", "B=2", "A=3"}, Command: cmd}, wantErr: ErrConflict},
		{name: "env NUL", launch: Launch{Flavor: IntelMPI, Ranks: 2, Env: []string{"A=\x00"}, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "wrapper like an option", launch: Launch{Flavor: IntelMPI, Ranks: 2, Wrapper: []string{"--x"}, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "empty wrapper program", launch: Launch{Flavor: IntelMPI, Ranks: 2, Wrapper: []string{"", "exec"}, Command: cmd}, wantErr: ErrInvalidSetting},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.launch.Argv()
			require.ErrorIs(t, err, tt.wantErr)
			assert.Nil(t, got)
			if tt.flag != "" {
				var fe *FlagError
				require.ErrorAs(t, err, &fe)
				assert.Equal(t, tt.flag, fe.Flag)
				assert.Equal(t, tt.launch.Flavor, fe.Flavor)
			}
		})
	}
}

func TestFlavorString(t *testing.T) {
	assert.Equal(t, "Intel MPI", IntelMPI.String())
	assert.Equal(t, "MPICH", MPICH.String())
	assert.Equal(t, "Open MPI", OpenMPI.String())
	assert.Equal(t, "Flavor(0)", Flavor(0).String())
}

// TestLaunchLimits: each count at its limit is accepted (and written as given), and one beyond is refused.
func TestLaunchLimits(t *testing.T) {
	cmd := []string{"app"}
	tests := []struct {
		name    string
		launch  Launch
		want    []string
		wantErr error
	}{
		{name: "one rank", launch: Launch{Flavor: IntelMPI, Ranks: 1, Command: cmd}, want: []string{"mpirun", "-np", "1", "app"}},
		{name: "negative ranks", launch: Launch{Flavor: IntelMPI, Ranks: -1, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "ranks per node as many as ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, RanksPerNode: 2, Command: cmd}, want: []string{"mpirun", "-np", "2", "-ppn", "2", "app"}},
		{name: "one rank per node beyond the ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, RanksPerNode: 3, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "ranks per host as many as ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, PerHost: 2, Command: cmd}, want: []string{"mpirun", "-np", "2", "-perhost", "2", "app"}},
		{name: "one rank per host beyond the ranks", launch: Launch{Flavor: IntelMPI, Ranks: 2, PerHost: 3, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "srun, one rank per node", launch: Launch{Flavor: Srun, Ranks: 2, RanksPerNode: 1, Command: cmd}, want: []string{"srun", "--mpi=pmi2", "--ntasks=2", "--ntasks-per-node=1", "app"}},
		{name: "srun, no ranks per node", launch: Launch{Flavor: Srun, Ranks: 2, Command: cmd}, want: []string{"srun", "--mpi=pmi2", "--ntasks=2", "app"}},
		{name: "srun, no ranks", launch: Launch{Flavor: Srun, Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "ranks per node and round robin", launch: Launch{Flavor: IntelMPI, Ranks: 2, RanksPerNode: 1, RoundRobin: true, Command: cmd}, wantErr: ErrConflict},
		{name: "round robin alone", launch: Launch{Flavor: IntelMPI, Ranks: 2, RoundRobin: true, Command: cmd}, want: []string{"mpirun", "-np", "2", "-rr", "app"}},
		{name: "empty program", launch: Launch{Flavor: IntelMPI, Ranks: 1, Command: []string{""}}, wantErr: ErrInvalidSetting},
		{name: "no command", launch: Launch{Flavor: IntelMPI, Ranks: 1}, wantErr: ErrInvalidSetting},
		{name: "program like an option", launch: Launch{Flavor: IntelMPI, Ranks: 1, Command: []string{"-x"}}, wantErr: ErrInvalidSetting},
		{name: "machine file like an option", launch: Launch{Flavor: IntelMPI, Ranks: 1, MachineFile: "-hosts", Command: cmd}, wantErr: ErrInvalidSetting},
		{name: "env set once each", launch: Launch{Flavor: IntelMPI, Ranks: 1, Env: []string{"A=1", "B=1"}, Command: cmd},
			want: []string{"mpirun", "-np", "1", "-genv", "A", "1", "-genv", "B", "1", "app"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.launch.Argv()
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				assert.Nil(t, got)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
