package mpi

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParseVersion(t *testing.T) {
	tests := []struct {
		in           string
		major, minor int
		libfabric    bool
		wantErr      bool
	}{
		{in: "5.1.3.223", major: 5, minor: 1},
		{in: "5.0.3.048", major: 5},
		{in: "4.1", major: 4, minor: 1},
		{in: "2017", major: 2017},
		{in: "2018.4", major: 2018, minor: 4},
		{in: "2018.4.274", major: 2018, minor: 4},
		{in: "2019.9", major: 2019, minor: 9, libfabric: true},
		{in: "2021.13", major: 2021, minor: 13, libfabric: true},
		{in: "2021.13.1", major: 2021, minor: 13, libfabric: true},
		{in: "", wantErr: true},
		{in: "5.1.3.223.1", wantErr: true},
		{in: "5..3", wantErr: true},
		{in: "5.1.", wantErr: true},
		{in: "v2019", wantErr: true},
		{in: "2019.U5", wantErr: true},
		{in: "-5", wantErr: true},
		{in: "3.2", wantErr: true},
		{in: "6.0", wantErr: true},
		{in: "2016.3", wantErr: true},
		{in: "2020.1", wantErr: true},
		{in: "2100", wantErr: true},
		{in: "1234567890.1", wantErr: true},
		// At and beside each limit: four numbers, nine digits, the digits' bounds, the years.
		{in: "2021.1.2.3", major: 2021, minor: 1, libfabric: true},
		{in: "2021.123456789", major: 2021, minor: 123456789, libfabric: true},
		{in: "2021.1234567890", wantErr: true},
		{in: "2021.0", major: 2021, libfabric: true},
		{in: "2021.9", major: 2021, minor: 9, libfabric: true},
		{in: "2021./", wantErr: true},
		{in: "2021.:", wantErr: true},
		{in: "4", major: 4},
		{in: "5", major: 5},
		{in: "2015", wantErr: true},
		{in: "2099", major: 2099, libfabric: true},
		{in: "2018.10", major: 2018, minor: 10},
		{in: "2019", major: 2019, libfabric: true},
		{in: "2018", major: 2018},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			v, err := ParseVersion(tt.in)
			if tt.wantErr {
				var ve *VersionError
				require.ErrorAs(t, err, &ve)
				assert.Equal(t, tt.in, ve.Input)
				assert.ErrorIs(t, err, ErrInvalidSetting)
				assert.True(t, v.IsZero())
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.in, v.String())
			assert.Equal(t, tt.major, v.Major())
			assert.Equal(t, tt.minor, v.Minor())
			assert.Equal(t, tt.libfabric, v.LibfabricOnly())
		})
	}
}

func TestVersionCompare(t *testing.T) {
	v := func(s string) Version { return MustParseVersion(s) }
	assert.Equal(t, -1, v("5.1.3.223").Compare(v("2018.4")))
	assert.Equal(t, 1, v("2021.13").Compare(v("2021.7")))
	assert.Equal(t, 0, v("2019.5").Compare(v("2019.5.0")))
	for _, tt := range []struct {
		a, b string
		want int
	}{
		{"2021.13.1.2", "2021.13.1.3", -1}, {"2021.13.1.3", "2021.13.1.2", 1},
		{"2021.13.1", "2021.13.2", -1}, {"2021.13.2", "2021.13.1", 1},
		{"2021.12", "2021.13", -1}, {"2021", "2021.0.0.0", 0},
	} {
		assert.Equal(t, tt.want, v(tt.a).Compare(v(tt.b)), "%s vs %s", tt.a, tt.b)
	}
	assert.True(t, v("2021.7").AtLeast(2021, 7))
	assert.False(t, v("2021.6.9").AtLeast(2021, 7))
	assert.True(t, v("2022").AtLeast(2021, 19))
	assert.Panics(t, func() { MustParseVersion("x") })
}

func TestParseFabrics(t *testing.T) {
	tests := []struct {
		in      string
		want    Fabrics
		str     string
		wantErr error
	}{
		{in: "shm:dapl", want: Fabrics{FabricSHM, FabricDAPL}, str: "shm:dapl"},
		{in: "SHM:OFI", want: Fabrics{FabricSHM, FabricOFI}, str: "shm:ofi"},
		{in: "dapl", want: Fabrics{FabricDAPL, FabricDAPL}, str: "dapl"},
		{in: "ofi", want: Fabrics{FabricOFI, FabricOFI}, str: "ofi"},
		{in: "shm:shm", want: Fabrics{FabricSHM, FabricSHM}, str: "shm"},
		{in: "tcp:tmi", want: Fabrics{FabricTCP, FabricTMI}, str: "tcp:tmi"},
		{in: "shm:ofa", want: Fabrics{FabricSHM, FabricOFA}, str: "shm:ofa"},
		{in: "shm:verbs", wantErr: ErrUnknownFabric},
		{in: "mlx", wantErr: ErrUnknownFabric},
		{in: "", wantErr: ErrInvalidSetting},
		{in: "shm:", wantErr: ErrInvalidSetting},
		{in: "shm:dapl:tcp", wantErr: ErrInvalidSetting},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := ParseFabrics(tt.in)
			if tt.wantErr != nil {
				var fe *FabricError
				require.ErrorAs(t, err, &fe)
				assert.ErrorIs(t, err, tt.wantErr)
				assert.Equal(t, tt.in, fe.Input)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.Equal(t, tt.str, got.String())
		})
	}
}

func TestConfigEnv(t *testing.T) {
	v5 := MustParseVersion("5.1.3.223")
	v2021 := MustParseVersion("2021.13")
	tests := []struct {
		name string
		cfg  Config
		want []string
	}{
		{name: "nothing set", cfg: Config{Version: v2021}, want: nil},
		{
			name: "every field, in the documented order",
			cfg: Config{
				Version: v5, Fabrics: Fabrics{FabricSHM, FabricDAPL}, Fallback: Off, DAPLProvider: "ofa-v2-ib0",
				DAPLUD: On, DynamicConnection: Off, TranslationCache: Off, Debug: 5, Pin: On,
				PinDomain: "omp", PinProcessorList: "0-7", Bootstrap: "sge",
				Extra: map[string]string{"I_MPI_ADJUST_ALLREDUCE": "11", "A_FIRST": "x y", "LD_LIBRARY_PATH": "/opt/lib"},
			},
			want: []string{
				"I_MPI_FABRICS=shm:dapl", "I_MPI_FALLBACK=0", "I_MPI_DAPL_PROVIDER=ofa-v2-ib0", "I_MPI_DAPL_UD=1",
				"I_MPI_DYNAMIC_CONNECTION=0", "I_MPI_DAPL_TRANSLATION_CACHE=0", "I_MPI_DEBUG=5", "I_MPI_PIN=1",
				"I_MPI_PIN_DOMAIN=omp", "I_MPI_PIN_PROCESSOR_LIST=0-7", "I_MPI_HYDRA_BOOTSTRAP=sge",
				"A_FIRST=x y", "I_MPI_ADJUST_ALLREDUCE=11", "LD_LIBRARY_PATH=/opt/lib",
			},
		},
		{
			name: "2018 with ofi fabric and provider",
			cfg:  Config{Version: MustParseVersion("2018.4"), Fabrics: Fabrics{FabricSHM, FabricOFI}, OFIProvider: "verbs"},
			want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=verbs", "FI_PROVIDER=verbs"},
		},
		{
			name: "2019 libfabric",
			cfg:  Config{Version: MustParseVersion("2019.9"), Fabrics: Fabrics{FabricSHM, FabricOFI}, OFIProvider: "mlx", Extra: map[string]string{"I_MPI_COLL_EXTERNAL": "1"}},
			want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=mlx", "FI_PROVIDER=mlx", "I_MPI_COLL_EXTERNAL=1"},
		},
		{
			name: "2021 shm only",
			cfg:  Config{Version: v2021, Fabrics: Fabrics{FabricSHM, FabricSHM}},
			want: []string{"I_MPI_FABRICS=shm"},
		},
		{
			name: "5.x single dapl fabric, provider left to dat.conf order",
			cfg:  Config{Version: v5, Fabrics: Fabrics{FabricDAPL, FabricDAPL}},
			want: []string{"I_MPI_FABRICS=dapl"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Env()
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			again, err := tt.cfg.Env()
			require.NoError(t, err)
			assert.Equal(t, got, again, "rendering must be deterministic")
		})
	}
}

func TestConfigValidate(t *testing.T) {
	v5 := MustParseVersion("5.1.3.223")
	v2019 := MustParseVersion("2019.9")
	v2021 := MustParseVersion("2021.13")
	tests := []struct {
		name     string
		cfg      Config
		wantErr  error
		variable string // for *VersionSupportError and *SettingError
	}{
		{name: "no version", cfg: Config{}, wantErr: ErrInvalidSetting, variable: "Version"},
		{name: "dapl on 2019", cfg: Config{Version: v2019, Fabrics: Fabrics{FabricSHM, FabricDAPL}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FABRICS"},
		{name: "tmi on 2021", cfg: Config{Version: v2021, Fabrics: Fabrics{FabricTMI, FabricTMI}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FABRICS"},
		{name: "ofa on 2021", cfg: Config{Version: v2021, Fabrics: Fabrics{FabricSHM, FabricOFA}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FABRICS"},
		{name: "tcp on 2019", cfg: Config{Version: v2019, Fabrics: Fabrics{FabricSHM, FabricTCP}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FABRICS"},
		{name: "fallback on 2019", cfg: Config{Version: v2019, Fallback: Off}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FALLBACK"},
		{name: "dapl provider on 2021", cfg: Config{Version: v2021, DAPLProvider: "ofa-v2-ib0"}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_DAPL_PROVIDER"},
		{name: "dapl ud on 2019", cfg: Config{Version: v2019, DAPLUD: On}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_DAPL_UD"},
		{name: "dynamic connection on 2019", cfg: Config{Version: v2019, DynamicConnection: Off}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_DYNAMIC_CONNECTION"},
		{name: "translation cache on 2021", cfg: Config{Version: v2021, TranslationCache: Off}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_DAPL_TRANSLATION_CACHE"},
		{name: "extra DAPL variable on 2019", cfg: Config{Version: v2019, Extra: map[string]string{"I_MPI_DAPL_UD_PROVIDER": "ofa-v2-ib0"}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_DAPL_UD_PROVIDER"},
		{name: "extra fallback alias on 2021", cfg: Config{Version: v2021, Extra: map[string]string{"I_MPI_FALLBACK_DEVICE": "0"}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FALLBACK_DEVICE"},
		{name: "extra fabrics list on 2019", cfg: Config{Version: v2019, Extra: map[string]string{"I_MPI_FABRICS_LIST": "ofi"}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_FABRICS_LIST"},
		{name: "extra OFA variable on 2019", cfg: Config{Version: v2019, Extra: map[string]string{"I_MPI_OFA_NUM_ADAPTERS": "1"}}, wantErr: ErrUnsupportedByVersion, variable: "I_MPI_OFA_NUM_ADAPTERS"},
		{name: "unknown fabric", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, "verbs"}}, wantErr: ErrUnknownFabric},
		{name: "half a fabric pair", cfg: Config{Version: v5, Fabrics: Fabrics{Intra: FabricSHM}}, wantErr: ErrInvalidSetting},
		{name: "shm between nodes", cfg: Config{Version: v5, Fabrics: Fabrics{FabricDAPL, FabricSHM}}, wantErr: ErrInvalidSetting, variable: "I_MPI_FABRICS"},
		{name: "ofi:shm on 2021", cfg: Config{Version: v2021, Fabrics: Fabrics{FabricOFI, FabricSHM}}, wantErr: ErrInvalidSetting, variable: "I_MPI_FABRICS"},
		{name: "shm alone on 2019", cfg: Config{Version: v2019, Fabrics: Fabrics{FabricSHM, FabricSHM}}, wantErr: ErrInvalidSetting, variable: "I_MPI_FABRICS"},
		{name: "dapl provider with ofa fabric", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricOFA}, DAPLProvider: "ofa-v2-ib0"}, wantErr: ErrConflict, variable: "I_MPI_DAPL_PROVIDER"},
		{name: "ofi provider with dapl fabric", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricDAPL}, OFIProvider: "mlx"}, wantErr: ErrConflict, variable: "I_MPI_OFI_PROVIDER"},
		{name: "provider with space", cfg: Config{Version: v2021, OFIProvider: "mlx verbs"}, wantErr: ErrInvalidSetting, variable: "I_MPI_OFI_PROVIDER"},
		{name: "dapl provider with newline", cfg: Config{Version: v5, DAPLProvider: "ofa\n"}, wantErr: ErrInvalidSetting, variable: "I_MPI_DAPL_PROVIDER"},
		{name: "negative debug", cfg: Config{Version: v2021, Debug: -1}, wantErr: ErrInvalidSetting, variable: "I_MPI_DEBUG"},
		{name: "pin domain with pinning off", cfg: Config{Version: v2021, Pin: Off, PinDomain: "numa"}, wantErr: ErrConflict, variable: "I_MPI_PIN_DOMAIN"},
		{name: "unknown bootstrap", cfg: Config{Version: v2021, Bootstrap: "kubectl"}, wantErr: ErrInvalidSetting, variable: "I_MPI_HYDRA_BOOTSTRAP"},
		{name: "extra overrides fabrics", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricDAPL}, Extra: map[string]string{"I_MPI_FABRICS": "shm:tcp"}}, wantErr: ErrConflict, variable: "I_MPI_FABRICS"},
		{name: "extra sets FI_PROVIDER", cfg: Config{Version: v2021, Extra: map[string]string{"FI_PROVIDER": "tcp"}}, wantErr: ErrConflict, variable: "FI_PROVIDER"},
		{name: "extra sets debug", cfg: Config{Version: v2021, Extra: map[string]string{"I_MPI_DEBUG": "6"}}, wantErr: ErrConflict, variable: "I_MPI_DEBUG"},
		{name: "extra old dynamic connection name", cfg: Config{Version: v5, Extra: map[string]string{"I_MPI_USE_DYNAMIC_CONNECTIONS": "0"}}, wantErr: ErrConflict, variable: "I_MPI_USE_DYNAMIC_CONNECTIONS"},
		{name: "extra bad name", cfg: Config{Version: v2021, Extra: map[string]string{"1BAD": "x"}}, wantErr: ErrInvalidSetting, variable: "1BAD"},
		{name: "extra name with =", cfg: Config{Version: v2021, Extra: map[string]string{"A=B": "x"}}, wantErr: ErrInvalidSetting, variable: "A=B"},
		{name: "extra NUL value", cfg: Config{Version: v2021, Extra: map[string]string{"A": "x\x00"}}, wantErr: ErrInvalidSetting, variable: "A"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.Validate()
			require.ErrorIs(t, err, tt.wantErr)
			_, envErr := tt.cfg.Env()
			assert.Equal(t, err, envErr, "Env must fail the same way")
			var vse *VersionSupportError
			var se *SettingError
			switch {
			case errors.As(err, &vse):
				assert.Equal(t, tt.variable, vse.Variable)
				assert.Equal(t, tt.cfg.Version, vse.Version)
				assert.Contains(t, vse.Replacement, "shm:ofi")
				assert.Contains(t, err.Error(), tt.variable)
				assert.Contains(t, err.Error(), tt.cfg.Version.String())
				assert.Contains(t, err.Error(), "shm:ofi")
			case errors.As(err, &se):
				assert.Equal(t, tt.variable, se.Variable)
			default:
				var fe *FabricError
				require.ErrorAs(t, err, &fe)
			}
		})
	}
}

func TestInstallation(t *testing.T) {
	tests := []struct {
		version, root    string
		mpivars, program string
	}{
		{"5.1.3.223", "", "/opt/intel/impi/5.1.3.223/bin64/mpivars.sh", "/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1"},
		{"5.0.3.048", "", "/opt/intel/impi/5.0.3.048/bin64/mpivars.sh", "/opt/intel/impi/5.0.3.048/bin64/IMB-MPI1"},
		{"2018.4.274", "", "/opt/intel/impi/2018.4.274/bin64/mpivars.sh", "/opt/intel/impi/2018.4.274/bin64/IMB-MPI1"},
		{"2019.9.304", "", "/opt/intel/impi/2019.9.304/intel64/bin/mpivars.sh", "/opt/intel/impi/2019.9.304/intel64/bin/IMB-MPI1"},
		{"2021.13", "", "/opt/intel/oneapi/mpi/2021.13/env/vars.sh", "/opt/intel/oneapi/mpi/2021.13/bin/IMB-MPI1"},
		{"2021.13", "/apps/impi", "/apps/impi/env/vars.sh", "/apps/impi/bin/IMB-MPI1"},
	}
	for _, tt := range tests {
		t.Run(tt.version+tt.root, func(t *testing.T) {
			i := Installation{Version: MustParseVersion(tt.version), Root: tt.root}
			assert.Equal(t, tt.mpivars, i.MPIVars())
			assert.Equal(t, tt.program, i.Program("IMB-MPI1"))
		})
	}
}

func FuzzParseVersion(f *testing.F) {
	for _, s := range []string{"5.1.3.223", "2018.4", "2019.9", "2021.13", "5.0.3.048", "", "2020", "1.2.3.4.5", "9999999999"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		v, err := ParseVersion(s)
		if err != nil {
			var ve *VersionError
			require.ErrorAs(t, err, &ve)
			return
		}
		require.Equal(t, s, v.String())
		again, err := ParseVersion(v.String())
		require.NoError(t, err)
		require.Equal(t, 0, v.Compare(again))
		require.Equal(t, v.Major() >= 2019, v.LibfabricOnly())
	})
}

func FuzzParseFabrics(f *testing.F) {
	for _, s := range []string{"shm:dapl", "shm:ofi", "ofi", "shm", "dapl:shm", "shm:verbs", "", ":", "a:b:c"} {
		f.Add(s)
	}
	versions := []Version{MustParseVersion("5.1.3.223"), MustParseVersion("2019.9"), MustParseVersion("2021.13")}
	f.Fuzz(func(t *testing.T, s string) {
		fab, err := ParseFabrics(s)
		if err != nil {
			var fe *FabricError
			require.ErrorAs(t, err, &fe)
			return
		}
		again, err := ParseFabrics(fab.String())
		require.NoError(t, err)
		require.Equal(t, fab, again)
		for _, v := range versions {
			env, err := Config{Version: v, Fabrics: fab}.Env()
			if err == nil {
				require.Equal(t, []string{"I_MPI_FABRICS=" + fab.String()}, env)
			} else {
				require.True(t, errors.Is(err, ErrUnsupportedByVersion) || errors.Is(err, ErrInvalidSetting), "unexpected error %v", err)
			}
		}
	})
}

// TestConfigLimits: the valid settings right beside each refusal of TestConfigValidate.
func TestConfigLimits(t *testing.T) {
	v5 := MustParseVersion("5.1.3.223")
	v2019 := MustParseVersion("2019.9")
	v2021 := MustParseVersion("2021.0")
	tests := []struct {
		name string
		cfg  Config
		want []string
		err  bool
	}{
		{name: "debug 0 is unset", cfg: Config{Version: v2021, Debug: 0}, want: nil},
		{name: "debug 1", cfg: Config{Version: v2021, Debug: 1}, want: []string{"I_MPI_DEBUG=1"}},
		{name: "provider of printable ASCII", cfg: Config{Version: v2021, OFIProvider: "!~"}, want: []string{"I_MPI_OFI_PROVIDER=!~", "FI_PROVIDER=!~"}},
		{name: "provider with DEL", cfg: Config{Version: v2021, OFIProvider: "a\x7f"}, err: true},
		{name: "provider with a control character", cfg: Config{Version: v2021, OFIProvider: "a\x1f"}, err: true},
		{name: "provider beyond ASCII", cfg: Config{Version: v2021, OFIProvider: "é"}, want: []string{"I_MPI_OFI_PROVIDER=é", "FI_PROVIDER=é"}},
		{name: "shm alone from 2021", cfg: Config{Version: v2021, Fabrics: Fabrics{FabricSHM, FabricSHM}}, want: []string{"I_MPI_FABRICS=shm"}},
		{name: "shm:ofi on 2019", cfg: Config{Version: v2019, Fabrics: Fabrics{FabricSHM, FabricOFI}}, want: []string{"I_MPI_FABRICS=shm:ofi"}},
		{name: "ofi on 2019", cfg: Config{Version: v2019, Fabrics: Fabrics{FabricOFI, FabricOFI}}, want: []string{"I_MPI_FABRICS=ofi"}},
		{name: "shm within, dapl between nodes", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricDAPL}}, want: []string{"I_MPI_FABRICS=shm:dapl"}},
		{name: "shm alone before 2019", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricSHM}}, want: []string{"I_MPI_FABRICS=shm"}},
		{name: "ofi provider with no fabrics set", cfg: Config{Version: v5, OFIProvider: "verbs"}, want: []string{"I_MPI_OFI_PROVIDER=verbs", "FI_PROVIDER=verbs"}},
		{name: "dapl provider with dapl", cfg: Config{Version: v5, Fabrics: Fabrics{FabricSHM, FabricDAPL}, DAPLProvider: "ofa-v2-ib0"},
			want: []string{"I_MPI_FABRICS=shm:dapl", "I_MPI_DAPL_PROVIDER=ofa-v2-ib0"}},
		{name: "pin domain with pinning on", cfg: Config{Version: v2021, Pin: On, PinDomain: "numa"}, want: []string{"I_MPI_PIN=1", "I_MPI_PIN_DOMAIN=numa"}},
		{name: "pin processor list with pinning off", cfg: Config{Version: v2021, Pin: Off, PinProcessorList: "0-3"}, err: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cfg.Env()
			if tt.err {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestFabricsRefusalSaysWhatIsAccepted: the refusal lists what the version accepts, shm alone from 2021 on.
func TestFabricsRefusalSaysWhatIsAccepted(t *testing.T) {
	for v, want := range map[string]string{"2019.9": "accepts only ofi or shm:ofi", "2021.0": "accepts only ofi, shm:ofi or shm"} {
		err := Config{Version: MustParseVersion(v), Fabrics: Fabrics{FabricOFI, FabricSHM}}.Validate()
		require.ErrorIs(t, err, ErrInvalidSetting)
		assert.ErrorContains(t, err, "Intel MPI "+v+" "+want)
	}
}
