package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

// baseFile is one entry of a layer withLayer adds: its header, whose Size and ModTime withLayer sets, and its content.
type baseFile struct {
	h    tar.Header
	body string
}

// withLayer returns base with one more layer holding entries, dated as busyboxBase's.
func withLayer(t testing.TB, base v1.Image, entries ...baseFile) v1.Image {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		e.h.ModTime, e.h.Size = time.Unix(1_600_000_000, 0), int64(len(e.body))
		require.NoError(t, tw.WriteHeader(&e.h))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	require.NoError(t, err)
	img, err := mutate.AppendLayers(base, layer)
	require.NoError(t, err)
	return img
}

// busyboxBase is a small Docker-media-type base image made, independently of
// imagebuild, from Debian's static busybox: /bin/busybox, /bin/sh, /etc/passwd with
// a user "hpc" (1000), /etc/group, /tmp (1777), a PATH and CMD ["/bin/sh"].
func busyboxBase(t testing.TB) v1.Image {
	t.Helper()
	bin := "/bin/busybox"
	if _, err := os.Stat(bin); err != nil {
		testenv.Require(t, "busybox")
		p, _ := exec.LookPath("busybox")
		bin = p
	}
	busybox, err := os.ReadFile(bin)
	require.NoError(t, err)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	mtime := time.Unix(1_600_000_000, 0)
	add := func(h *tar.Header, body []byte) {
		h.ModTime = mtime
		h.Size = int64(len(body))
		require.NoError(t, tw.WriteHeader(h))
		_, err := tw.Write(body)
		require.NoError(t, err)
	}
	add(&tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "bin/busybox", Typeflag: tar.TypeReg, Mode: 0o755}, busybox)
	add(&tar.Header{Name: "bin/sh", Typeflag: tar.TypeSymlink, Linkname: "busybox", Mode: 0o777}, nil)
	add(&tar.Header{Name: "etc/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:0:root:/root:/bin/sh\nhpc:x:1000:1001:hpc:/home/hpc:/bin/sh\n"))
	add(&tar.Header{Name: "etc/group", Typeflag: tar.TypeReg, Mode: 0o644}, []byte("root:x:0:\nhpcgrp:x:1001:\n"))
	add(&tar.Header{Name: "opt/", Typeflag: tar.TypeDir, Mode: 0o755}, nil)
	add(&tar.Header{Name: "tmp/", Typeflag: tar.TypeDir, Mode: 0o1777}, nil)
	require.NoError(t, tw.Close())
	data := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	require.NoError(t, err)
	img, err := mutate.Append(empty.Image, mutate.Addendum{Layer: struct{ v1.Layer }{layer}, MediaType: types.DockerLayer,
		History: v1.History{CreatedBy: "busybox-static", Created: v1.Time{Time: mtime}}})
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}
	cf.Config.Cmd = []string{"/bin/sh"}
	cf.Created = v1.Time{Time: mtime}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return img
}

// intelTree writes a small stand-in for /opt/intel under dir: nested directories,
// an executable, a library with a symlink to it, and a hardlink.
func intelTree(t testing.TB, dir string) {
	t.Helper()
	lib := filepath.Join(dir, "intel", "compilers_and_libraries_2016.3.223", "linux", "mpi", "intel64", "lib")
	bin := filepath.Join(dir, "intel", "impi", "5.1.3.223", "bin64")
	require.NoError(t, os.MkdirAll(lib, 0o755))
	require.NoError(t, os.MkdirAll(bin, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "libmpi.so.12.0"), bytes.Repeat([]byte("libmpi "), 10000), 0o755))
	require.NoError(t, os.Symlink("libmpi.so.12.0", filepath.Join(lib, "libmpi.so.12")))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "mpivars.sh"), []byte("export I_MPI_ROOT=/opt/intel\n"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(bin, "IMB-MPI1"), []byte("\x7fELF fake benchmark"), 0o755))
	require.NoError(t, os.Link(filepath.Join(bin, "IMB-MPI1"), filepath.Join(bin, "IMB-MPI1.hard")))
}

// makeTgz writes dir's "intel" tree as a tar archive at out, compressed with the
// named program ("gzip", "xz", "bzip2", "zstd") or not at all (""), with GNU tar as
// the user would.
func makeArchive(t testing.TB, dir, out, compressor string) {
	t.Helper()
	testenv.Require(t, "tar")
	args := []string{"-cf", out, "-C", dir, "intel"}
	if compressor != "" {
		testenv.Require(t, compressor)
		args = append([]string{"--use-compress-program=" + compressor}, args...)
	}
	cmd := exec.Command("tar", args...)
	outb, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", outb)
}

// tree flattens img's layers.
func tree(t testing.TB, img v1.Image) *rootfs.Tree {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	ls := make([]rootfs.Layer, len(layers))
	for i, l := range layers {
		ls[i] = l
	}
	tr, err := rootfs.Flatten(t.Context(), ls)
	require.NoError(t, err)
	return tr
}

// content reads the file at p in tr.
func content(t testing.TB, tr *rootfs.Tree, p string) string {
	t.Helper()
	rc, err := tr.Open(t.Context(), p)
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return string(b)
}

func configOf(t testing.TB, img v1.Image) *v1.ConfigFile {
	t.Helper()
	require.NoError(t, validate.Image(img), "every built image validates")
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	return cf
}

func digestOf(t testing.TB, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

// logBuffer is a logger whose records the test can read.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func newLogger() (*slog.Logger, *logBuffer) {
	b := &logBuffer{}
	return slog.New(slog.NewTextHandler(b, nil)), b
}

// fakeRunner stands in for a RUN executor: it records each request and adds a file
// /run-<n> holding the command line.
type fakeRunner struct {
	mu   sync.Mutex
	reqs []imagebuild.RunRequest
}

func (f *fakeRunner) Run(ctx context.Context, req imagebuild.RunRequest) (v1.Layer, error) {
	f.mu.Lock()
	f.reqs = append(f.reqs, req)
	n := len(f.reqs)
	f.mu.Unlock()
	body := strings.Join(req.Argv, " ")
	return req.WriteLayer(ctx, func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Name: "run-" + string(rune('0'+n)), Typeflag: tar.TypeReg, Mode: 0o644,
			Size: int64(len(body)), ModTime: req.Epoch, Format: tar.FormatPAX}); err != nil {
			return err
		}
		_, err := io.WriteString(tw, body)
		return err
	})
}

type tarEntry struct {
	name, body, link string
	dir              bool
	uid              int
}

// writeTarEntries writes an uncompressed tar archive of entries, in order, at path.
func writeTarEntries(t testing.TB, path string, entries []tarEntry) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	tw := tar.NewWriter(f)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Mode: 0o644, Typeflag: tar.TypeReg, Size: int64(len(e.body)), ModTime: time.Unix(1_700_000_000, 0),
			Uid: e.uid, Gid: e.uid, Uname: "someone"}
		switch {
		case e.dir:
			h.Typeflag, h.Mode = tar.TypeDir, 0o755
		case e.link != "":
			h.Typeflag, h.Linkname, h.Size = tar.TypeSymlink, e.link, 0
		}
		require.NoError(t, tw.WriteHeader(h))
		_, err := io.WriteString(tw, e.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())
}

// writeTar writes regular files, sorted by name, as a tar archive at path.
func writeTar(t testing.TB, path string, files map[string]string) {
	t.Helper()
	var entries []tarEntry
	for n, b := range files {
		entries = append(entries, tarEntry{name: n, body: b})
	}
	slices.SortFunc(entries, func(a, b tarEntry) int { return strings.Compare(a.name, b.name) })
	writeTarEntries(t, path, entries)
}

func gzipBytes(t testing.TB, s string) []byte {
	t.Helper()
	var b bytes.Buffer
	zw := gzip.NewWriter(&b)
	_, err := zw.Write([]byte(s))
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return b.Bytes()
}

func validateImage(img v1.Image) error { return validate.Image(img) }

// makeArchiveOf writes the named files of dir as a tar archive dir/out, compressed
// with compressor.
func makeArchiveOf(t testing.TB, dir, out, compressor string, names ...string) {
	t.Helper()
	testenv.Require(t, "tar", compressor)
	args := append([]string{"--use-compress-program=" + compressor, "-cf", filepath.Join(dir, out), "-C", dir}, names...)
	b, err := exec.Command("tar", args...).CombinedOutput()
	require.NoError(t, err, "%s", b)
}
