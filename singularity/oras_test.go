package singularity_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/singularity"
)

func TestSIFArtifactRoundTrip(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:sif")
	require.NoError(t, err)

	dir := t.TempDir()
	sifPath := filepath.Join(dir, "rdma_latest.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), sifPath, singularity.WithSourceDateEpoch(epoch)))
	digest, err := singularity.PushSIF(t.Context(), sifPath, ref, singularity.WithAuthenticator(auth))
	require.NoError(t, err)

	desc, err := remote.Get(ref, remote.WithAuth(auth), remote.WithContext(t.Context()))
	require.NoError(t, err)
	assert.Equal(t, digest, desc.Digest)
	var m map[string]any
	require.NoError(t, json.Unmarshal(desc.Manifest, &m))
	fi, err := os.Stat(sifPath)
	require.NoError(t, err)
	layerDigest, _, err := v1.SHA256(mustOpen(t, sifPath))
	require.NoError(t, err)
	assert.Equal(t, map[string]any{
		"schemaVersion": 2.0,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config": map[string]any{"mediaType": "application/vnd.sylabs.sif.config.v1+json", "size": 2.0,
			"digest": "sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a"},
		"layers": []any{map[string]any{"mediaType": "application/vnd.sylabs.sif.layer.v1.sif", "size": float64(fi.Size()),
			"digest": layerDigest.String(), "annotations": map[string]any{"org.opencontainers.image.title": "rdma_latest.sif"}}},
		"annotations": map[string]any{"org.opencontainers.image.created": "2023-11-14T22:13:20Z"},
	}, m)

	out := t.TempDir()
	got, err := singularity.PullSIF(t.Context(), ref, out, singularity.WithAuthenticator(auth))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "rdma_sif.sif"), got)
	assert.Equal(t, mustRead(t, sifPath), mustRead(t, got))
	fi, err = os.Stat(got)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())

	// An ordinary image is not a SIF artifact, and nothing is written.
	imgRef, err := name.ParseReference(reg.LoginServer() + "/plain:1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(imgRef, syntheticImage(t), remote.WithAuth(auth)))
	emptyDir := t.TempDir()
	_, err = singularity.PullSIF(t.Context(), imgRef, filepath.Join(emptyDir, "x.sif"), singularity.WithAuthenticator(auth))
	require.ErrorIs(t, err, singularity.ErrNotSIFArtifact)
	entries, err := os.ReadDir(emptyDir)
	require.NoError(t, err)
	assert.Empty(t, entries)

	// A layer of the SIF media type that holds no SIF is refused after download.
	junkRef, err := name.ParseReference(reg.LoginServer() + "/junk:sif")
	require.NoError(t, err)
	junk, err := mutate.AppendLayers(empty.Image, static.NewLayer([]byte("not a SIF at all"), singularity.MediaTypeSIFLayer))
	require.NoError(t, err)
	require.NoError(t, remote.Write(junkRef, junk, remote.WithAuth(auth)))
	_, err = singularity.PullSIF(t.Context(), junkRef, filepath.Join(emptyDir, "x.sif"), singularity.WithAuthenticator(auth))
	require.ErrorIs(t, err, singularity.ErrNotSIFArtifact)
	entries, err = os.ReadDir(emptyDir)
	require.NoError(t, err)
	assert.Empty(t, entries)

	// A file that is not a SIF is refused before upload.
	notSIF := filepath.Join(dir, "not.sif")
	require.NoError(t, os.WriteFile(notSIF, []byte("#!/bin/sh\n"), 0o644))
	_, err = singularity.PushSIF(t.Context(), notSIF, ref, singularity.WithAuthenticator(auth))
	require.Error(t, err)
}

func mustOpen(t *testing.T, path string) *os.File {
	f, err := os.Open(path)
	require.NoError(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}
