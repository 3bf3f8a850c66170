package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// benchpush runs the command with argv and returns its exit status, stdout and stderr.
func benchpush(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli(t.Context(), argv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// entry is one tar entry as read back from a layer.
type entry struct {
	name   string
	typ    byte
	mode   int64
	size   int64
	link   string
	sha256 string
}

// entries reads a layer's uncompressed tar stream.
func entries(t *testing.T, l v1.Layer) []entry {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	var out []entry
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		h := sha256.New()
		_, err = io.Copy(h, tr)
		require.NoError(t, err)
		out = append(out, entry{name: hdr.Name, typ: hdr.Typeflag, mode: hdr.Mode, size: hdr.Size, link: hdr.Linkname,
			sha256: fmt.Sprintf("%x", h.Sum(nil))})
	}
}

// syntheticContent is, written independently of generate, what layer i's file of size bytes holds: size/2
// bytes of ChaCha8 seeded with i, then a log line repeated.
func syntheticContent(i int, size int64) []byte {
	b := make([]byte, size/2)
	_, _ = rand.NewChaCha8([32]byte{byte(i)}).Read(b)
	line := "MPI rank 0 of 32 on node compute-17: bandwidth 11823.4 MB/s\n"
	text := strings.Repeat(line, int((size-size/2)/int64(len(line)))+1)
	return append(b, text[:size-size/2]...)
}

func sum(b []byte) string { return fmt.Sprintf("%x", sha256.Sum256(b)) }

func TestGenerate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		layers int
		size   int64
	}{
		{0, 100},
		{1, 0},
		{1, 1},
		{3, 4097}, // odd: the text half is one byte longer
		{2, 3 * 61},
	} {
		t.Run(fmt.Sprintf("%d×%d", tc.layers, tc.size), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "oci")
			code, stdout, stderr := benchpush(t, "-layout", dir, "-layers", strconv.Itoa(tc.layers),
				"-layer-size", strconv.FormatInt(tc.size, 10), "generate")
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stdout)
			assert.Empty(t, stderr)
			img, err := benchlayout.Read(dir)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, tc.layers)
			for i, l := range layers {
				want := []entry{{name: fmt.Sprintf("opt/data/blob%d", i), typ: tar.TypeReg, mode: 0o644, size: tc.size,
					sha256: sum(syntheticContent(i, tc.size))}}
				assert.Equal(t, want, entries(t, l), "layer %d", i)
			}
		})
	}
}

// TestGenerateContent checks that the random half does not compress and the text half does, that layers
// differ, and that the layout is the same on every run.
func TestGenerateContent(t *testing.T) {
	t.Parallel()
	const size = 64 << 10
	digests := make([]v1.Hash, 2)
	var layers []v1.Layer
	for run := range digests {
		dir := filepath.Join(t.TempDir(), "oci")
		code, _, stderr := benchpush(t, "-layout", dir, "-layers", "2", "-layer-size", strconv.Itoa(size), "generate")
		require.Equal(t, 0, code, stderr)
		img, err := benchlayout.Read(dir)
		require.NoError(t, err)
		digests[run], err = img.Digest()
		require.NoError(t, err)
		layers, err = img.Layers()
		require.NoError(t, err)
	}
	assert.Equal(t, digests[0], digests[1], "two runs give the same image")
	d0, err := layers[0].DiffID()
	require.NoError(t, err)
	d1, err := layers[1].DiffID()
	require.NoError(t, err)
	assert.NotEqual(t, d0, d1, "each layer has its own random bytes")
	n, err := layers[0].Size()
	require.NoError(t, err)
	assert.Greater(t, n, int64(size/2), "the random half does not compress")
	assert.Less(t, n, int64(size*3/4), "the text half compresses")
}

func TestGenerateFrom(t *testing.T) {
	t.Parallel()
	src := t.TempDir()
	a, b := filepath.Join(src, "apps", "a"), filepath.Join(src, "apps", "b")
	require.NoError(t, os.MkdirAll(filepath.Join(a, "bin"), 0o755))
	require.NoError(t, os.MkdirAll(b, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(a, "bin", "tool"), []byte("#!/bin/sh\n"), 0o755))
	require.NoError(t, os.Symlink("bin/tool", filepath.Join(a, "tool")))
	require.NoError(t, os.WriteFile(filepath.Join(b, "data"), []byte("12345"), 0o644))

	for _, tc := range []struct {
		name   string
		root   []string
		prefix string
	}{
		{"names from the parent", nil, ""},
		{"names from -root", []string{"-root", src}, "apps/"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "oci")
			argv := append(append([]string{"-layout", dir}, tc.root...), "generate", a, b)
			code, stdout, stderr := benchpush(t, argv...)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stdout)
			img, err := benchlayout.Read(dir)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, 2, "one layer per source")
			p := tc.prefix
			assert.Equal(t, []entry{
				{name: p + "a/", typ: tar.TypeDir, mode: 0o755, sha256: sum(nil)},
				{name: p + "a/bin/", typ: tar.TypeDir, mode: 0o755, sha256: sum(nil)},
				{name: p + "a/bin/tool", typ: tar.TypeReg, mode: 0o755, size: 10, sha256: sum([]byte("#!/bin/sh\n"))},
				{name: p + "a/tool", typ: tar.TypeSymlink, mode: 0o777, link: "bin/tool", sha256: sum(nil)},
			}, entries(t, layers[0]))
			assert.Equal(t, []entry{
				{name: p + "b/", typ: tar.TypeDir, mode: 0o755, sha256: sum(nil)},
				{name: p + "b/data", typ: tar.TypeReg, mode: 0o644, size: 5, sha256: sum([]byte("12345"))},
			}, entries(t, layers[1]))
		})
	}
}

// TestPush pushes generated layouts to an in-process registry and reads the image back.
func TestPush(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	for _, tc := range []struct {
		name   string
		layers string
		jobs   []string
	}{
		{"default jobs", "3", nil},
		{"one job", "2", []string{"-jobs", "1"}},
		{"more jobs than blobs", "1", []string{"-jobs", "8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "oci")
			code, _, stderr := benchpush(t, "-layout", dir, "-layers", tc.layers, "-layer-size", "3000", "generate")
			require.Equal(t, 0, code, stderr)
			ref := host + "/bench/" + strings.ReplaceAll(tc.name, " ", "-") + ":latest"
			code, stdout, stderr := benchpush(t, append(append([]string{"-layout", dir}, tc.jobs...), "push", ref)...)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stderr)

			local, err := benchlayout.Read(dir)
			require.NoError(t, err)
			localDigest, err := local.Digest()
			require.NoError(t, err)
			localLayers, err := local.Layers()
			require.NoError(t, err)
			var total int64
			for _, l := range localLayers {
				n, err := l.Size()
				require.NoError(t, err)
				total += n
			}
			assert.Equal(t, fmt.Sprintf("%s %d\n", localDigest, total), stdout, "digest and compressed size")

			r, err := name.ParseReference(ref)
			require.NoError(t, err)
			pushed, err := remote.Image(r, remote.WithContext(t.Context()))
			require.NoError(t, err)
			pushedDigest, err := pushed.Digest()
			require.NoError(t, err)
			assert.Equal(t, localDigest, pushedDigest)
			pushedLayers, err := pushed.Layers()
			require.NoError(t, err)
			require.Len(t, pushedLayers, len(localLayers))
			for i, l := range pushedLayers {
				ld, err := localLayers[i].Digest()
				require.NoError(t, err)
				pd, err := l.Digest()
				require.NoError(t, err)
				assert.Equal(t, ld, pd, "layer %d", i)
				ln, err := localLayers[i].Size()
				require.NoError(t, err)
				pn, err := l.Size()
				require.NoError(t, err)
				assert.Equal(t, ln, pn, "layer %d", i)
				assert.Equal(t, entries(t, localLayers[i]), entries(t, l), "layer %d", i)
			}
		})
	}
}

// failingWriter fails every write, as a closed stdout does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestErrors(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")
	// The rows that must fail before anything reaches the registry push to this one.
	var requests atomic.Int64
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	watchedSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		reg.ServeHTTP(w, r)
	}))
	t.Cleanup(watchedSrv.Close)
	watched := strings.TrimPrefix(watchedSrv.URL, "http://")
	closed := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	closedHost := strings.TrimPrefix(closed.URL, "http://")
	closed.Close()

	tmp := t.TempDir()
	layout := filepath.Join(tmp, "oci")
	code, _, stderr := benchpush(t, "-layout", layout, "-layers", "1", "-layer-size", "100", "generate")
	require.Equal(t, 0, code, stderr)
	file := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(file, []byte("not a directory"), 0o644))
	garbled := filepath.Join(tmp, "garbled")
	require.NoError(t, os.MkdirAll(garbled, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(garbled, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(garbled, "index.json"), []byte(`{"manifests":[`), 0o644))
	// A layout whose manifest lists a layer whose blob is gone.
	noBlob := filepath.Join(tmp, "noblob")
	code, _, stderr = benchpush(t, "-layout", noBlob, "-layers", "1", "-layer-size", "101", "generate")
	require.Equal(t, 0, code, stderr)
	img, err := benchlayout.Read(noBlob)
	require.NoError(t, err)
	ls, err := img.Layers()
	require.NoError(t, err)
	ld, err := ls[0].Digest()
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(noBlob, "blobs", ld.Algorithm, ld.Hex)))

	// A layout whose manifest blob is gone.
	noManifest := filepath.Join(tmp, "nomanifest")
	code, _, stderr = benchpush(t, "-layout", noManifest, "-layers", "1", "-layer-size", "102", "generate")
	require.Equal(t, 0, code, stderr)
	img, err = benchlayout.Read(noManifest)
	require.NoError(t, err)
	md, err := img.Digest()
	require.NoError(t, err)
	require.NoError(t, os.Remove(filepath.Join(noManifest, "blobs", md.Algorithm, md.Hex)))

	for _, tc := range []struct {
		name string
		argv []string
		code int
		want string
		// refused is whether the command fails before it sends the registry anything.
		refused bool
	}{
		{"unknown flag", []string{"-layout", layout, "-bogus", "generate"}, 2, "flag provided but not defined: -bogus", false},
		{"bad number", []string{"-layout", layout, "-layers", "five", "generate"}, 2, `invalid value "five" for flag -layers`, false},
		{"no layout", []string{"generate"}, 1, "benchpush: usage: benchpush -layout DIR generate | push REF\n", false},
		{"no command", []string{"-layout", layout}, 1, "benchpush: usage: benchpush -layout DIR generate | push REF\n", false},
		{"unknown command", []string{"-layout", layout, "pull", "x"}, 1, "benchpush: unknown command \"pull x\"\n", false},
		{"push without a reference", []string{"-layout", layout, "push"}, 1, "benchpush: unknown command \"push\"\n", false},
		{"push with two references", []string{"-layout", layout, "push", host + "/a:1", host + "/b:1"}, 1, "unknown command", false},
		{"bad reference", []string{"-layout", layout, "push", watched + "/Bad Name:x"}, 1, "could not parse reference: " + watched + "/Bad Name:x", true},
		{"missing layout", []string{"-layout", filepath.Join(tmp, "missing"), "push", watched + "/a:1"}, 1, "no such file or directory", true},
		{"garbled index", []string{"-layout", garbled, "push", watched + "/a:1"}, 1, "unexpected end of JSON input", true},
		{"missing manifest blob", []string{"-layout", noManifest, "push", watched + "/a:1"}, 1,
			"benchpush: lstat " + filepath.Join(noManifest, "blobs", md.Algorithm, md.Hex) + ": no such file or directory\n", true},
		{"missing layer blob", []string{"-layout", noBlob, "push", host + "/a:1"}, 1, "no such file or directory", false},
		{"registry not listening", []string{"-layout", layout, "push", closedHost + "/a:1"}, 1, "connection refused", false},
		{"zero jobs", []string{"-layout", layout, "-jobs", "0", "push", watched + "/a:1"}, 1, "jobs must be positive, got 0", true},
		{"negative layer size", []string{"-layout", filepath.Join(tmp, "negative"), "-layers", "1", "-layer-size", "-1", "generate"}, 1,
			"benchpush: writing layer 0: archive/tar: cannot encode header: negative size", false},
		{"layout under a file", []string{"-layout", filepath.Join(file, "oci"), "-layers", "1", "-layer-size", "10", "generate"}, 1, "not a directory", false},
		{"missing source", []string{"-layout", filepath.Join(tmp, "out"), "generate", filepath.Join(tmp, "missing")}, 1, "no such file or directory", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := benchpush(t, tc.argv...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			if tc.refused {
				assert.Zero(t, requests.Load(), "requests to the registry")
			}
		})
	}

	t.Run("push to a closed stdout", func(t *testing.T) {
		t.Parallel()
		var stderr bytes.Buffer
		code := cli(t.Context(), []string{"-layout", layout, "push", host + "/closed:1"}, failingWriter{}, &stderr)
		assert.Equal(t, 1, code)
		assert.Equal(t, "benchpush: stdout closed\n", stderr.String())
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var stdout, stderr bytes.Buffer
		code := cli(ctx, []string{"-layout", layout, "push", host + "/canceled:1"}, &stdout, &stderr)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr.String(), "context canceled")
		r, err := name.ParseReference(host + "/canceled:1")
		require.NoError(t, err)
		_, err = remote.Head(r)
		assert.Error(t, err, "nothing was pushed")
	})
}

// TestCommand runs benchpush as a process: its exit status and output are cli's.
func TestCommand(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "oci")
	code, stdout, stderr := testenv.Command(t, "-layout", dir, "-layers", "1", "-layer-size", "10", "generate")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	_, err := benchlayout.Read(dir)
	require.NoError(t, err)

	code, stdout, stderr = testenv.Command(t, "-layout", dir, "push")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "benchpush: unknown command \"push\"\n", stderr)

	code, stdout, stderr = testenv.Command(t, "-h")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "Usage of benchpush:")
	assert.Contains(t, stderr, "-layer-size int")

	code, _, stderr = testenv.Command(t, "-layers")
	assert.Equal(t, 2, code)
	assert.Contains(t, stderr, "flag needs an argument: -layers")
}
