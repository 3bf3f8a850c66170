package singularity_test

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/singularity"
)

func TestInspect(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out,
		singularity.WithSourceDateEpoch(epoch), singularity.WithSource("example.com/rdma:latest")))
	info, err := singularity.Inspect(out)
	require.NoError(t, err)
	assert.Equal(t, "00000000-0000-0000-0000-000000000000", info.ID)
	assert.Equal(t, "amd64", info.Arch)
	assert.Equal(t, epoch, info.Created)
	assert.Equal(t, "bootstrap: docker\nfrom: example.com/rdma:latest\n\n", info.Definition)
	assert.Equal(t, "hpc & <co>", info.Labels["org.example.team"])
	assert.Equal(t, "example.com/rdma:latest", info.Labels["org.label-schema.usage.singularity.deffile.from"])
	assert.Equal(t, "Tuesday_14_November_2023_22:13:20_UTC", info.Labels["org.label-schema.build-date"])
	assert.Contains(t, info.Environment["/.singularity.d/env/10-docker2singularity.sh"],
		"export QUOTED=\"${QUOTED:-\"say \\\"hi\\\" and 'bye'\"}\"\n")
	assert.Contains(t, info.Runscript, "OCI_CMD='\"default arg\" \"it'\"'\"'s\"'\n")
	require.NotNil(t, info.OCIConfig)
	assert.Equal(t, []string{"default arg", "it's"}, info.OCIConfig.Cmd)
	require.Len(t, info.Descriptors, 4)
	assert.Equal(t, singularity.Descriptor{ID: 4, GroupID: 1, Type: "FS", Offset: info.Descriptors[3].Offset,
		Size: info.Descriptors[3].Size, FSType: "Squashfs", PartType: "*System", Arch: "amd64"}, info.Descriptors[3])
	assert.Equal(t, "oci-config.json", info.Descriptors[2].Name)

	_, err = singularity.Inspect(filepath.Join("testdata", "golden.sif.sha256"))
	require.ErrorIs(t, err, singularity.ErrNotSIF)
}

func FuzzInspect(f *testing.F) {
	out := filepath.Join(f.TempDir(), "x.sif")
	require.NoError(f, singularity.Build(f.Context(), syntheticImage(f), out, singularity.WithSourceDateEpoch(epoch)))
	b, err := os.ReadFile(out)
	require.NoError(f, err)
	f.Add(b[:32768]) // header, descriptors and metadata objects
	f.Add(b[:4096])
	f.Add([]byte("#!/usr/bin/env run-singularity\n\x00SIF_MAGIC\x0001\x00"))
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := singularity.InspectReader(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return
		}
		for _, d := range info.Descriptors {
			assert.LessOrEqual(t, d.Offset+d.Size, int64(len(data)), "descriptor %d lies outside the data", d.ID)
		}
	})
}
