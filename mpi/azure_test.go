package mpi

import (
	"errors"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAzurePresetLookup(t *testing.T) {
	tests := []struct {
		size, family  string
		networkDirect bool
	}{
		{"Standard_H16r", "H16r/H16mr", true},
		{"standard_h16mr", "H16r/H16mr", true},
		{"H16r_Promo", "H16r/H16mr", true},
		{"Standard_A8", "A8/A9", true},
		{"STANDARD_A9", "A8/A9", true},
		{"Standard_HB60rs", "HB", false},
		{"Standard_HC44rs", "HC", false},
		{"Standard_HC44-16rs", "HC", false},
		{"Standard_HB120rs_v2", "HBv2", false},
		{"Standard_HB120rs_v3", "HBv3", false},
		{"Standard_HB120-64rs_v3", "HBv3", false},
		{" standard_hb120rs_V3 ", "HBv3", false},
		{"Standard_HB176rs_v4", "HBv4", false},
		{"Standard_HB176-144rs_v4", "HBv4", false},
		{"Standard_HX176rs", "HX", false},
		{"Standard_ND40rs_v2", "NDv2", false},
		{"Standard_ND96asr_v4", "NDv4", false},
		{"Standard_ND96amsr_A100_v4", "NDv4", false},
	}
	for _, tt := range tests {
		t.Run(tt.size, func(t *testing.T) {
			p, err := AzurePreset(tt.size)
			require.NoError(t, err)
			assert.Equal(t, tt.family, p.Family)
			assert.Equal(t, tt.size, p.VMSize)
			assert.Equal(t, tt.networkDirect, p.NetworkDirect)
			if tt.networkDirect {
				assert.Equal(t, []string{"/etc/rdma/dat.conf"}, p.Binds)
			} else {
				assert.Empty(t, p.Binds)
			}
		})
	}
}

func TestAzurePresetUnknown(t *testing.T) {
	// H16 without r and A10/A11 have no RDMA; HB120rs without a suffix does not exist.
	for _, size := range []string{"", "Standard_D2s_v3", "Standard_H16", "Standard_A10", "Standard_HB120rs", "Standard_H16r_v2", "Standard_HB60rs_v3", "Standard_ND40rs"} {
		t.Run(size, func(t *testing.T) {
			_, err := AzurePreset(size)
			require.ErrorIs(t, err, ErrUnknownVMSize)
			var ue *UnknownVMSizeError
			require.ErrorAs(t, err, &ue)
			assert.Equal(t, size, ue.Size)
			assert.Equal(t, AzureFamilies(), ue.Known)
			for _, f := range []string{"H16r/H16mr", "HBv3", "NDv4"} {
				assert.Contains(t, err.Error(), f)
			}
		})
	}
}

func TestPresetIntelMPI(t *testing.T) {
	tests := []struct {
		size, version string
		want          []string
		wantErr       error
	}{
		{size: "Standard_H16r", version: "5.1.3.223", want: []string{
			"I_MPI_FABRICS=shm:dapl", "I_MPI_FALLBACK=0", "I_MPI_DAPL_PROVIDER=ofa-v2-ib0",
			"I_MPI_DYNAMIC_CONNECTION=0", "I_MPI_DAPL_TRANSLATION_CACHE=0",
		}},
		{size: "Standard_A9", version: "5.0.3.048", want: []string{
			"I_MPI_FABRICS=shm:dapl", "I_MPI_FALLBACK=0", "I_MPI_DAPL_PROVIDER=ofa-v2-ib0",
			"I_MPI_DYNAMIC_CONNECTION=0", "I_MPI_DAPL_TRANSLATION_CACHE=0",
		}},
		{size: "Standard_H16mr", version: "2019.9", wantErr: ErrUnsupportedByVersion},
		{size: "Standard_H16r", version: "2021.13", wantErr: ErrUnsupportedByVersion},
		{size: "Standard_HB60rs", version: "5.1.3.223", want: []string{"I_MPI_FABRICS=shm:dapl", "I_MPI_DAPL_PROVIDER=ofa-v2-ib0"}},
		{size: "Standard_HC44rs", version: "2018.4", want: []string{"I_MPI_FABRICS=shm:ofa"}},
		{size: "Standard_HB60rs", version: "2017.4", want: []string{"I_MPI_FABRICS=shm:ofa"}},
		{size: "Standard_HB120rs_v2", version: "2019.4", wantErr: ErrUnsupportedByVersion},
		{size: "Standard_HB120rs_v2", version: "2019.5", want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=mlx", "FI_PROVIDER=mlx"}},
		{size: "Standard_HB120rs_v3", version: "2021.13", want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=mlx", "FI_PROVIDER=mlx"}},
		{size: "Standard_ND96asr_v4", version: "2021.9", want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=mlx", "FI_PROVIDER=mlx"}},
		{size: "Standard_ND40rs_v2", version: "2021.19", want: []string{"I_MPI_FABRICS=shm:ofi"}},
		{size: "Standard_HX176rs", version: "2021.7", want: []string{"I_MPI_FABRICS=shm:ofi", "I_MPI_OFI_PROVIDER=mlx", "FI_PROVIDER=mlx"}},
		{size: "Standard_HX176rs", version: "2021.6", wantErr: ErrUnsupportedByVersion},
		{size: "Standard_HB176rs_v4", version: "2019.9", wantErr: ErrUnsupportedByVersion},
		{size: "Standard_HB176rs_v4", version: "5.1.3.223", wantErr: ErrUnsupportedByVersion},
	}
	for _, tt := range tests {
		t.Run(tt.size+"/"+tt.version, func(t *testing.T) {
			p, err := AzurePreset(tt.size)
			require.NoError(t, err)
			v := MustParseVersion(tt.version)
			cfg, err := p.IntelMPI(v)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var pe *PresetError
				require.ErrorAs(t, err, &pe)
				assert.Equal(t, p.Family, pe.Family)
				assert.Contains(t, err.Error(), tt.version)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, v, cfg.Version)
			env, err := cfg.Env()
			require.NoError(t, err, "a preset must pass its own validation")
			assert.Equal(t, tt.want, env)
		})
	}

	p, err := AzurePreset("Standard_HB120rs_v3")
	require.NoError(t, err)
	_, err = p.IntelMPI(Version{})
	require.ErrorIs(t, err, ErrInvalidSetting)
}

// Every family gives a valid Config for every version it accepts.
func TestPresetsValidate(t *testing.T) {
	versions := []string{"4.1", "5.0.3.048", "5.1.3.223", "2017.1", "2018.4", "2019.0", "2019.5", "2019.9", "2021.1", "2021.7", "2021.13", "2021.19", "2025.1"}
	for _, fam := range azureFamilies {
		for _, s := range versions {
			p := Preset{Family: fam.name, NetworkDirect: fam.networkDirect, minIntel: fam.minIntel}
			cfg, err := p.IntelMPI(MustParseVersion(s))
			if err != nil {
				require.True(t, errors.Is(err, ErrUnsupportedByVersion), "%s %s: %v", fam.name, s, err)
				continue
			}
			_, err = cfg.Env()
			require.NoError(t, err, "%s %s", fam.name, s)
		}
	}
}

func TestPresetUCX(t *testing.T) {
	p, err := AzurePreset("Standard_HB120rs_v3")
	require.NoError(t, err)
	tests := []struct {
		nodes, ppn int
		tls        string
	}{
		{1, 1, "rc,sm"},
		{8, 120, "rc,sm"},
		{46, 120, "rc,sm"}, // 253,920 connections
		{47, 120, "dc,sm"}, // 265,080 connections
		{512, 1, "dc,sm"},  // exactly 256K
		{511, 1, "rc,sm"},  // 261,121
		{1 << 30, 1 << 30, "dc,sm"},
	}
	for _, tt := range tests {
		u, err := p.UCX(tt.nodes, tt.ppn)
		require.NoError(t, err)
		assert.Equal(t, tt.tls, u.TLS, "%d nodes × %d", tt.nodes, tt.ppn)
		assert.Equal(t, "mlx5_ib0:1", u.NetDevices)
	}
	u, err := p.UCX(2, 2)
	require.NoError(t, err)
	u.IBPKey = "0x000b"
	env, err := u.Env()
	require.NoError(t, err)
	assert.Equal(t, []string{"UCX_TLS=rc,sm", "UCX_NET_DEVICES=mlx5_ib0:1", "UCX_IB_PKEY=0x000b"}, env)

	_, err = p.UCX(0, 4)
	require.ErrorIs(t, err, ErrInvalidSetting)
	_, err = UCX{TLS: "rc, sm"}.Env()
	require.ErrorIs(t, err, ErrInvalidSetting)

	h16, err := AzurePreset("Standard_H16r")
	require.NoError(t, err)
	_, err = h16.UCX(2, 16)
	var pe *PresetError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, "H16r/H16mr", pe.Family)
}
