package imagebuild_test

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/acrtest"
)

// seedImage builds the seed Dockerfile on busybox with a fake RUN.
func seedImage(t *testing.T, base imagebuild.Base) v1.Image {
	t.Helper()
	ctxDir := seedContext(t, "gzip")
	img, err := imagebuild.BuildDockerfile(t.Context(), filepath.Join(ctxDir, "Dockerfile"),
		imagebuild.WithBaseImage("centos:7", base), imagebuild.WithCacheDir(t.TempDir()),
		imagebuild.WithRunner(&fakeRunner{}))
	require.NoError(t, err)
	configOf(t, img)
	return img
}

func TestOutputsAndBases(t *testing.T) {
	busybox := busyboxBase(t)
	img := seedImage(t, imagebuild.FromImage(busybox))
	want := digestOf(t, img)

	dir := filepath.Join(t.TempDir(), "layout")
	require.NoError(t, imagebuild.WriteLayout(t.Context(), dir, img, "rdma:latest"))
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	require.NoError(t, err)
	require.NotEmpty(t, blobs)
	for _, b := range blobs {
		st, err := os.Stat(b)
		require.NoError(t, err)
		assert.Equal(t, os.FileMode(0o644), st.Mode().Perm(), "%s is world-readable", filepath.Base(b))
	}
	idx, err := layout.ImageIndexFromPath(dir)
	require.NoError(t, err)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1)
	assert.Equal(t, want, m.Manifests[0].Digest.String())
	assert.Equal(t, "rdma:latest", m.Manifests[0].Annotations["org.opencontainers.image.ref.name"])

	tb := filepath.Join(t.TempDir(), "rdma.tar")
	require.NoError(t, imagebuild.WriteTarball(t.Context(), tb, img, "rdma:latest"))
	tag, err := name.NewTag("rdma:latest")
	require.NoError(t, err)
	fromTar, err := tarball.ImageFromPath(tb, &tag)
	require.NoError(t, err)
	assert.Equal(t, want, digestOf(t, fromTar))

	// The same build from the base written out as a layout and as a docker tarball.
	baseDir := filepath.Join(t.TempDir(), "base")
	require.NoError(t, imagebuild.WriteLayout(t.Context(), baseDir, busybox, ""))
	assert.Equal(t, want, digestOf(t, seedImage(t, imagebuild.FromLayout(baseDir))))
	baseTar := filepath.Join(t.TempDir(), "base.tar")
	require.NoError(t, imagebuild.WriteTarball(t.Context(), baseTar, busybox, "busybox:static"))
	fromTarBase := seedImage(t, imagebuild.FromTarball(baseTar, ""))
	cf := configOf(t, fromTarBase)
	assert.Equal(t, "/app", cf.Config.WorkingDir)
}

func TestFromTarballTag(t *testing.T) {
	baseTar := filepath.Join(t.TempDir(), "base.tar")
	require.NoError(t, imagebuild.WriteTarball(t.Context(), baseTar, busyboxBase(t), "busybox:static"))
	tests := []struct {
		name, tag   string
		wantErr     bool
		wantBadName bool
	}{
		{"the only image", "", false, false},
		{"its tag", "busybox:static", false, false},
		{"another tag", "busybox:other", true, false},
		{"not a tag", "busybox:no such", true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := imagebuild.Build(t.Context(), imagebuild.FromTarball(baseTar, tt.tag), []imagebuild.Step{imagebuild.Workdir{Path: "/app"}},
				imagebuild.WithCacheDir(t.TempDir()))
			if !tt.wantErr {
				require.NoError(t, err)
				assert.Equal(t, "/app", configOf(t, img).Config.WorkingDir)
				return
			}
			require.Error(t, err)
			var bad *name.ErrBadName
			assert.Equal(t, tt.wantBadName, errors.As(err, &bad), "%v", err)
		})
	}
}

func TestPushToRegistry(t *testing.T) {
	reg := acrtest.Start(t)
	if reg == nil {
		return
	}
	user, pass := reg.AdminCredentials()
	keychain := acr.NewAdminKeychain(reg.LoginServer(), user, pass)
	busybox := busyboxBase(t)

	// The base comes from the registry, as FROM centos:7 would.
	baseRef, err := name.ParseReference(reg.LoginServer()+"/library/busybox:static", name.Insecure)
	require.NoError(t, err)
	_, err = acr.Push(t.Context(), baseRef, busybox, acr.WithKeychain(keychain))
	require.NoError(t, err)
	ctxDir := seedContext(t, "xz")
	img, err := imagebuild.BuildDockerfile(t.Context(), filepath.Join(ctxDir, "Dockerfile"),
		imagebuild.WithBaseImage("centos:7", imagebuild.FromReference(baseRef.String())),
		imagebuild.WithKeychain(keychain), imagebuild.WithCacheDir(t.TempDir()), imagebuild.WithRunner(&fakeRunner{}))
	require.NoError(t, err)
	want := digestOf(t, img)
	configOf(t, img)

	ref, err := name.ParseReference(reg.LoginServer()+"/hpc/rdma:latest", name.Insecure)
	require.NoError(t, err)
	var uploaded int64
	got, err := imagebuild.Push(t.Context(), ref, img, imagebuild.WithKeychain(keychain),
		imagebuild.WithProgress(func(p imagebuild.Progress) { uploaded = p.Bytes }))
	require.NoError(t, err)
	assert.Equal(t, want, got.String())
	assert.Positive(t, uploaded)

	pulled, err := acr.Pull(t.Context(), ref, acr.WithKeychain(keychain))
	require.NoError(t, err)
	assert.Equal(t, want, digestOf(t, pulled))
	configOf(t, pulled)
	wantCF, err := img.RawConfigFile()
	require.NoError(t, err)
	gotCF, err := pulled.RawConfigFile()
	require.NoError(t, err)
	assert.Equal(t, string(wantCF), string(gotCF))

	// acr.Push of the same image (another tag) composes: nothing is uploaded again.
	uploads := &uploadCounter{next: http.DefaultTransport}
	other, err := name.ParseReference(reg.LoginServer()+"/hpc/rdma:v2", name.Insecure)
	require.NoError(t, err)
	d, err := acr.Push(t.Context(), other, img, acr.WithKeychain(keychain),
		acr.WithTransport(uploads))
	require.NoError(t, err)
	assert.Equal(t, want, d.String())
	assert.Zero(t, uploads.n.Load(), "every blob was already in the registry")
	assert.Positive(t, uploads.requests.Load())
}

// uploadCounter counts blob upload requests.
type uploadCounter struct {
	next        http.RoundTripper
	n, requests atomic.Int64
}

func (u *uploadCounter) RoundTrip(r *http.Request) (*http.Response, error) {
	u.requests.Add(1)
	if strings.Contains(r.URL.Path, "/blobs/uploads/") {
		u.n.Add(1)
	}
	return u.next.RoundTrip(r)
}
