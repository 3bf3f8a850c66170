package singularity_test

import (
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/singularity"
)

var errInjected = errors.New("injected fault")

// faultyLayer fails the Uncompressed call numbered failOpen (from 1), or
// makes its reader fail after failAfter bytes.
type faultyLayer struct {
	v1.Layer
	opens     atomic.Int32
	failOpen  int32
	failAfter int64
}

func (l *faultyLayer) Uncompressed() (io.ReadCloser, error) {
	if l.opens.Add(1) == l.failOpen {
		return nil, errInjected
	}
	rc, err := l.Layer.Uncompressed()
	if err != nil || l.failAfter == 0 {
		return rc, err
	}
	return struct {
		io.Reader
		io.Closer
	}{io.MultiReader(io.LimitReader(rc, l.failAfter), errReader{}), rc}, nil
}

type errReader struct{}

func (errReader) Read([]byte) (int, error) { return 0, errInjected }

// TestLayerFaults checks that a layer failing to open, in either pass, or
// failing mid-stream fails the build with that error and leaves nothing.
func TestLayerFaults(t *testing.T) {
	body := strings.Repeat("content that spans more than one read ", 4096)
	for _, tt := range []struct {
		name  string
		layer *faultyLayer
	}{
		{name: "open for metadata", layer: &faultyLayer{failOpen: 1}},
		{name: "open for contents", layer: &faultyLayer{failOpen: 2}},
		{name: "read mid-layer", layer: &faultyLayer{failAfter: 70000}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.layer.Layer = layer(t, dir("opt", 0o755), file("opt/big", body, 0o644), file("opt/small", "x", 0o644))
			img, err := mutate.AppendLayers(empty.Image, tt.layer)
			require.NoError(t, err)
			out := filepath.Join(t.TempDir(), "x.sif")
			err = singularity.Build(t.Context(), img, out, singularity.WithSource("s"))
			require.ErrorIs(t, err, errInjected)
			entries, err := os.ReadDir(filepath.Dir(out))
			require.NoError(t, err)
			assert.Empty(t, entries)
		})
	}
}

func TestSIFID(t *testing.T) {
	dir := t.TempDir()
	build := func(opts ...singularity.Option) string {
		out := filepath.Join(dir, "x.sif")
		require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, opts...))
		info, err := singularity.Inspect(out)
		require.NoError(t, err)
		return info.ID
	}
	const id = "6ba7b810-9dad-11d1-80b4-00c04fd430c8"
	assert.Equal(t, id, build(singularity.WithID(id)))
	assert.Equal(t, id, build(singularity.WithID(id), singularity.WithSourceDateEpoch(epoch)))
	assert.Equal(t, "00000000-0000-0000-0000-000000000000", build(singularity.WithSourceDateEpoch(epoch)))
	a, b := build(), build()
	assert.NotEqual(t, a, b, "a random ID by default")
	assert.NotEqual(t, "00000000-0000-0000-0000-000000000000", a)
}

// TestProgressCounts checks the last report of a build: every layer byte
// read twice, every regular file stored, and the squashfs written.
func TestProgressCounts(t *testing.T) {
	img := syntheticImage(t)
	layers, err := img.Layers()
	require.NoError(t, err)
	var uncompressed int64
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		n, err := io.Copy(io.Discard, rc)
		require.NoError(t, err)
		uncompressed += n
	}
	out := filepath.Join(t.TempDir(), "x.sif")
	var last singularity.Progress
	reports := 0
	require.NoError(t, singularity.Build(t.Context(), img, out, singularity.WithProgress(func(p singularity.Progress) {
		last = p
		reports++
	})))
	assert.Equal(t, 2*uncompressed, last.BytesRead)
	// Regular files of the merged tree: etc/motd, opt/dir/c, opt/link (the
	// carrier of opt/orig's content), opt/suid, opt/secret, opt/locked/inner,
	// home/user/file, opt/xattr.
	assert.Equal(t, 8, last.FilesTotal)
	assert.Equal(t, last.FilesTotal, last.Files)
	assert.Equal(t, last.Files+1, reports, "one report per file and one at the end")
	// Every byte of the squashfs once: bytes_used of its superblock.
	sb := make([]byte, 96)
	f := mustOpen(t, out)
	_, err = f.ReadAt(sb, partitionOffset(t, out))
	require.NoError(t, err)
	assert.Equal(t, int64(binary.LittleEndian.Uint64(sb[40:])), last.BytesWritten)
}

// corruptingTransport flips a byte of every blob it downloads.
type corruptingTransport struct{ http.RoundTripper }

func (c corruptingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.RoundTripper.RoundTrip(r)
	if err != nil || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || resp.StatusCode != http.StatusOK {
		return resp, err
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	if len(b) > 0 {
		b[len(b)/2] ^= 0xff
	}
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp, nil
}

// TestPullSIFCorruptDownload checks that a SIF whose bytes do not match the
// manifest's digest is refused and not left at the path.
func TestPullSIFCorruptDownload(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:sif")
	require.NoError(t, err)
	dir := t.TempDir()
	sifPath := filepath.Join(dir, "rdma_latest.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), sifPath, singularity.WithSourceDateEpoch(epoch)))
	_, err = singularity.PushSIF(t.Context(), sifPath, ref, singularity.WithAuthenticator(auth))
	require.NoError(t, err)

	out := t.TempDir()
	_, err = singularity.PullSIF(t.Context(), ref, out, singularity.WithAuthenticator(auth),
		singularity.WithTransport(corruptingTransport{http.DefaultTransport}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sha256")
	entries, err := os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries)

	// A download that fails leaves nothing either.
	desc, err := remote.Get(ref, remote.WithAuth(auth), remote.WithContext(t.Context()))
	require.NoError(t, err)
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	require.NoError(t, err)
	_, err = singularity.PullSIF(t.Context(), ref, out, singularity.WithAuthenticator(auth),
		singularity.WithTransport(failingTransport{RoundTripper: http.DefaultTransport, path: "/blobs/" + m.Layers[0].Digest.String()}))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "403")
	entries, err = os.ReadDir(out)
	require.NoError(t, err)
	assert.Empty(t, entries)
}

// TestPullBlobFault checks that a config or layer download that fails fails
// the pull, leaves no output and keeps nothing partial in the cache.
func TestPullBlobFault(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:latest")
	require.NoError(t, err)
	img := syntheticImage(t)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(auth), remote.WithContext(t.Context())))
	m, err := img.Manifest()
	require.NoError(t, err)
	for _, tt := range []struct {
		name string
		blob v1.Hash
	}{
		{name: "config", blob: m.Config.Digest},
		{name: "layer", blob: m.Layers[1].Digest},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, cache := t.TempDir(), t.TempDir()
			_, err := singularity.Pull(t.Context(), ref, out, singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache),
				singularity.WithTransport(failingTransport{RoundTripper: http.DefaultTransport, path: "/blobs/" + tt.blob.String()}))
			require.Error(t, err)
			entries, err := os.ReadDir(out)
			require.NoError(t, err)
			assert.Empty(t, entries)
			blobs, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*"+tt.blob.Hex+"*"))
			assert.Empty(t, blobs, "nothing of the failed blob is cached")
		})
	}
}

// failingTransport answers 403 to GETs of path.
type failingTransport struct {
	http.RoundTripper
	path string
}

func (f failingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, f.path) {
		return &http.Response{StatusCode: http.StatusForbidden, Status: "403 Forbidden", Header: http.Header{},
			Body: io.NopCloser(strings.NewReader("")), Request: r}, nil
	}
	return f.RoundTripper.RoundTrip(r)
}

// TestInspectHeaderBounds checks the header limits at their edges: a table
// just inside the file passes the header check (and fails later, or not, for
// other reasons), one just outside is refused by it.
func TestInspectHeaderBounds(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithSourceDateEpoch(epoch)))
	orig := mustRead(t, out)
	size := int64(len(orig))
	patch := func(total, off, n int64) []byte {
		b := bytes.Clone(orig)
		binary.LittleEndian.PutUint64(b[88:], uint64(total))
		binary.LittleEndian.PutUint64(b[96:], uint64(off))
		binary.LittleEndian.PutUint64(b[104:], uint64(n))
		return b
	}
	const desc = 585
	tests := []struct {
		name    string
		data    []byte
		wantErr string // "" when the header check passes
	}{
		{name: "too many descriptors", data: patch(1<<16+1, 4096, (1<<16+1)*desc), wantErr: "65537 descriptors"},
		{name: "negative count", data: patch(-1, 4096, -desc), wantErr: "-1 descriptors"},
		{name: "most descriptors", data: patch(1<<16, 4096, (1<<16)*desc), wantErr: "outside the"},
		{name: "size mismatch", data: patch(4, 4096, 4*desc+1), wantErr: "descriptor table of 2341 bytes for 4 descriptors"},
		{name: "table in the header", data: patch(1, 127, desc), wantErr: "at 127+585 outside"},
		{name: "table right after the header", data: patch(1, 128, desc)},
		{name: "table past the end", data: patch(0, size+1, 0), wantErr: "outside"},
		{name: "empty table at the end", data: patch(0, size, 0)},
		{name: "table one byte too long", data: patch(1, size-desc+1, desc), wantErr: "outside"},
		{name: "table ending at the end", data: patch(1, size-desc, desc)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := singularity.InspectReader(bytes.NewReader(tt.data), int64(len(tt.data)))
			if tt.wantErr == "" {
				if err != nil {
					assert.NotContains(t, err.Error(), "outside the", "the header check passes")
					assert.NotContains(t, err.Error(), "descriptor table of")
				}
				return
			}
			require.ErrorIs(t, err, singularity.ErrNotSIF)
			assert.Contains(t, err.Error(), tt.wantErr)
		})
	}
}
