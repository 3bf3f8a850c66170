package singularity_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/compression"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/singularity"
)

func TestDefaultName(t *testing.T) {
	for _, tt := range []struct{ ref, sif, simg string }{
		{"myacr.azurecr.io/rdma:latest", "rdma_latest.sif", "rdma-latest.simg"},
		{"myacr.azurecr.io/rdma", "rdma_latest.sif", "rdma-latest.simg"},
		{"docker.io/library/centos:7", "centos_7.sif", "centos-7.simg"},
		{"localhost:5000/a/b/c:v1.2", "c_v1.2.sif", "c-v1.2.simg"},
		{"reg.example/rdma@sha256:" + strings.Repeat("a", 64), "rdma@sha256_" + strings.Repeat("a", 64) + ".sif", "rdma@sha256-" + strings.Repeat("a", 64) + ".simg"},
	} {
		ref, err := name.ParseReference(tt.ref)
		require.NoError(t, err)
		assert.Equal(t, tt.sif, singularity.DefaultName(ref, singularity.FormatSIF), tt.ref)
		assert.Equal(t, tt.simg, singularity.DefaultName(ref, singularity.FormatSIMG), tt.ref)
	}
}

// countingTransport counts the requests for layer and config blobs.
type countingTransport struct {
	mu       sync.Mutex
	blobGETs int
	requests int
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.requests++
	if r.Method == http.MethodGet && strings.Contains(r.URL.Path, "/blobs/") {
		c.blobGETs++
	}
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) blobs() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.blobGETs
}

// isolate keeps the developer's docker config and Apptainer credentials out of a test.
func isolate(t *testing.T) {
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	for _, k := range []string{"APPTAINER_DOCKER_USERNAME", "APPTAINER_DOCKER_PASSWORD", "SINGULARITY_DOCKER_USERNAME", "SINGULARITY_DOCKER_PASSWORD"} {
		t.Setenv(k, "")
		os.Unsetenv(k)
	}
}

func TestPullCachesBlobs(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:latest")
	require.NoError(t, err)
	img := syntheticImage(t)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(auth), remote.WithContext(t.Context())))

	cache, out := t.TempDir(), t.TempDir()
	first := &countingTransport{}
	var last singularity.Progress
	got, err := singularity.Pull(t.Context(), ref, out, singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache),
		singularity.WithTransport(first), singularity.WithSourceDateEpoch(epoch),
		singularity.WithProgress(func(p singularity.Progress) { last = p }))
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(out, "rdma_latest.sif"), got)
	assert.Equal(t, 4, first.blobs(), "3 layers and the config, each downloaded once")
	assert.Positive(t, last.BytesRead)
	assert.Positive(t, last.BytesWritten)
	assert.Equal(t, last.FilesTotal, last.Files)

	second := &countingTransport{}
	again := filepath.Join(out, "again.sif")
	_, err = singularity.Pull(t.Context(), ref, again, singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache),
		singularity.WithTransport(second), singularity.WithSourceDateEpoch(epoch))
	require.NoError(t, err)
	assert.Zero(t, second.blobs(), "a cached image downloads no blob")
	assert.Positive(t, second.requests, "the manifest is still resolved")
	assert.True(t, bytes.Equal(mustRead(t, got), mustRead(t, again)), "same image, same SIF")

	f, err := sif.LoadContainerFromPath(got, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	def, err := f.GetDescriptor(sif.WithDataType(sif.DataDeffile))
	require.NoError(t, err)
	b, err := def.GetData()
	require.NoError(t, err)
	assert.Equal(t, "bootstrap: docker\nfrom: "+ref.String()+"\n\n", string(b))

	entries, err := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Len(t, entries, 4, "no temporary file left in the cache")

	// A damaged cached blob is found and fetched again.
	for _, e := range entries {
		require.NoError(t, os.WriteFile(filepath.Join(cache, "blobs", "sha256", e.Name()), []byte("damaged"), 0o644))
	}
	third := &countingTransport{}
	_, err = singularity.Pull(t.Context(), ref, again, singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache),
		singularity.WithTransport(third), singularity.WithSourceDateEpoch(epoch))
	require.NoError(t, err)
	assert.Equal(t, 4, third.blobs())
	assert.True(t, bytes.Equal(mustRead(t, got), mustRead(t, again)))
}

func TestPullEnvCredentialsAndPlatform(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/multi:1")
	require.NoError(t, err)
	amd := syntheticImage(t)
	arm, err := mutate.ConfigFile(amd, func() *v1.ConfigFile {
		cf, err := amd.ConfigFile()
		require.NoError(t, err)
		cf = cf.DeepCopy()
		cf.Architecture = "arm64"
		return cf
	}())
	require.NoError(t, err)
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	require.NoError(t, remote.WriteIndex(ref, idx, remote.WithAuth(auth), remote.WithContext(t.Context())))

	out := filepath.Join(t.TempDir(), "x.sif")
	_, err = singularity.Pull(t.Context(), ref, out, singularity.WithCacheDir(t.TempDir()), singularity.WithEnvCredentials(),
		singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	require.Error(t, err, "anonymous pull is refused")
	assert.NotContains(t, err.Error(), pass)

	t.Setenv("SINGULARITY_DOCKER_USERNAME", "nobody")
	t.Setenv("SINGULARITY_DOCKER_PASSWORD", "wrong")
	t.Setenv("APPTAINER_DOCKER_USERNAME", user)
	t.Setenv("APPTAINER_DOCKER_PASSWORD", pass)
	_, err = singularity.Pull(t.Context(), ref, out, singularity.WithCacheDir(t.TempDir()), singularity.WithEnvCredentials(),
		singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}))
	require.NoError(t, err, "APPTAINER_DOCKER_* wins over SINGULARITY_DOCKER_*")
	f, err := sif.LoadContainerFromPath(out, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	assert.Equal(t, "arm64", f.PrimaryArch())
	require.NoError(t, f.UnloadContainer())

	os.Unsetenv("APPTAINER_DOCKER_USERNAME")
	t.Setenv("SINGULARITY_DOCKER_USERNAME", user)
	t.Setenv("SINGULARITY_DOCKER_PASSWORD", pass)
	simg := filepath.Join(t.TempDir(), "x.simg")
	_, err = singularity.Pull(t.Context(), ref, simg, singularity.WithCacheDir(t.TempDir()), singularity.WithEnvCredentials(),
		singularity.WithFormat(singularity.FormatSIMG))
	require.NoError(t, err, "SINGULARITY_DOCKER_* when APPTAINER_DOCKER_* is incomplete")
	b := mustRead(t, simg)
	assert.Equal(t, "#!/usr/bin/env run-singularity\nhsqs", string(b[:35]))
	assert.Contains(t, unsquashfsList(t, simg, 31), "/.singularity.d/runscript")

	// An index without the platform asked for: nothing is pulled or written.
	none := filepath.Join(t.TempDir(), "none.sif")
	_, err = singularity.Pull(t.Context(), ref, none, singularity.WithCacheDir(t.TempDir()), singularity.WithEnvCredentials(),
		singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "ppc64le"}))
	require.ErrorContains(t, err, "pulling "+ref.String()+": ")
	assert.Contains(t, err.Error(), "ppc64le")
	_, err = os.Stat(none)
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestPullConcurrentSharedCache(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:latest")
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, syntheticImage(t), remote.WithAuth(auth), remote.WithContext(t.Context())))

	cache, out := t.TempDir(), t.TempDir()
	var wg sync.WaitGroup
	errs := make([]error, 4)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = singularity.Pull(t.Context(), ref, filepath.Join(out, strconv.Itoa(i)+".sif"),
				singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache), singularity.WithSourceDateEpoch(epoch))
		})
	}
	wg.Wait()
	for i, err := range errs {
		require.NoError(t, err)
		assert.Equal(t, mustRead(t, filepath.Join(out, "0.sif")), mustRead(t, filepath.Join(out, strconv.Itoa(i)+".sif")))
	}
	entries, err := os.ReadDir(filepath.Join(cache, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Len(t, entries, 4)
}

func TestPullZstdLayer(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/zstd:1")
	require.NoError(t, err)
	data := tarBytes(t, file("opt/z.txt", "zstd content\n", 0o600))
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil },
		tarball.WithCompression(compression.ZStd), tarball.WithMediaType(types.OCILayerZStd))
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, image(t, v1Config(), l), remote.WithAuth(auth), remote.WithContext(t.Context())))

	out := filepath.Join(t.TempDir(), "z.sif")
	_, err = singularity.Pull(t.Context(), ref, out, singularity.WithAuthenticator(auth), singularity.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	got := unsquashfsList(t, out, partitionOffset(t, out))
	assert.Equal(t, "-rw------- 0/0 13", got["/opt/z.txt"])
}
