package main

import (
	"archive/tar"
	"bytes"
	"errors"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// TestMainExit checks what the command prints and its exit status, run as a
// process.
func TestMainExit(t *testing.T) {
	ctx := buildContext(t)
	out := filepath.Join(t.TempDir(), "layout")
	for _, tt := range []struct {
		args           string
		code           int
		stdout, stderr *regexp.Regexp
	}{
		{"build\n" + ctx + "\n" + filepath.Join(ctx, "Dockerfile") + "\n" + out, 0, regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`), regexp.MustCompile(`^$`)},
		{"sif\nx", 1, regexp.MustCompile(`^$`), regexp.MustCompile("^" + regexp.QuoteMeta("wfbench: bad arguments: "+usage) + "\n$")},
	} {
		t.Run(strings.Split(tt.args, "\n")[0], func(t *testing.T) {
			code, stdout, stderr := testenv.Command(t, strings.Split(tt.args, "\n")...)
			assert.Equal(t, tt.code, code, "%s", stderr)
			assert.Regexp(t, tt.stdout, stdout)
			assert.Regexp(t, tt.stderr, stderr)
		})
	}
}

// wfbench runs the command with args and returns what it printed.
func wfbench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), args, &out)
	return out.String(), err
}

const dockerfile = `FROM scratch
WORKDIR /app
COPY root /
ENV LD_LIBRARY_PATH /opt/intel/lib/
ENTRYPOINT ["/opt/intel/bin/run"]
`

// buildContext writes a context like the workflow's small input: a tree of
// compressible files, a script and the Dockerfile.
func buildContext(t *testing.T) string {
	t.Helper()
	ctx := t.TempDir()
	lib := filepath.Join(ctx, "root", "opt", "intel", "lib")
	require.NoError(t, os.MkdirAll(lib, 0o755))
	require.NoError(t, os.MkdirAll(filepath.Join(ctx, "root", "opt", "intel", "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "libmpi.so"), bytes.Repeat([]byte("MPI library text "), 4096), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "root", "opt", "intel", "bin", "run"), []byte("#!/bin/sh\nexec \"$@\"\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(dockerfile), 0o644))
	return ctx
}

// layoutImage returns the image tagged latest in the layout at dir.
func layoutImage(t *testing.T, dir string) v1.Image {
	t.Helper()
	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	m, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, m.Manifests, 1)
	assert.Equal(t, "latest", m.Manifests[0].Annotations["org.opencontainers.image.ref.name"])
	img, err := p.Image(m.Manifests[0].Digest)
	require.NoError(t, err)
	return img
}

// layerFiles returns the content of the regular files of l by name.
func layerFiles(t *testing.T, l v1.Layer) map[string]string {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]string{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		if hdr.Typeflag == tar.TypeReg {
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			out[strings.TrimPrefix(hdr.Name, "/")] = string(b)
		}
	}
}

// TestBuild checks the layout build writes: the image tagged latest, its
// config and files, the digest printed, and the gzip level of its layer.
func TestBuild(t *testing.T) {
	ctx := buildContext(t)
	sizes := map[string]int64{}
	for _, level := range []string{"", "1", "9"} {
		t.Run("level "+level, func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "layout")
			args := []string{"build"}
			if level != "" {
				args = append(args, "-level", level)
			}
			printed, err := wfbench(t, append(args, ctx, filepath.Join(ctx, "Dockerfile"), out)...)
			require.NoError(t, err)
			img := layoutImage(t, out)
			d, err := img.Digest()
			require.NoError(t, err)
			assert.Equal(t, d.String()+"\n", printed)

			cf, err := img.ConfigFile()
			require.NoError(t, err)
			assert.Equal(t, []string{"/opt/intel/bin/run"}, cf.Config.Entrypoint)
			assert.Equal(t, "/app", cf.Config.WorkingDir)
			assert.Contains(t, cf.Config.Env, "LD_LIBRARY_PATH=/opt/intel/lib/")
			layers, err := img.Layers()
			require.NoError(t, err)
			require.NotEmpty(t, layers)
			files := map[string]string{}
			for _, l := range layers {
				for k, v := range layerFiles(t, l) {
					files[k] = v
				}
			}
			assert.Equal(t, "#!/bin/sh\nexec \"$@\"\n", files["opt/intel/bin/run"])
			assert.Len(t, files["opt/intel/lib/libmpi.so"], 17*4096)
			var size int64
			for _, l := range layers {
				s, err := l.Size()
				require.NoError(t, err)
				size += s
			}
			sizes[level] = size
		})
	}
	// The default is level 1; level 9 compresses more.
	assert.Equal(t, sizes["1"], sizes[""])
	assert.Less(t, sizes[""], int64(17*4096/4))
	assert.Less(t, sizes["9"], sizes[""])
}

func TestBuildErrors(t *testing.T) {
	ctx := buildContext(t)
	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	out := filepath.Join(t.TempDir(), "layout")
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"missing Dockerfile", []string{ctx, filepath.Join(ctx, "Containerfile"), out}, "no such file"},
		{"missing context", []string{filepath.Join(ctx, "missing"), filepath.Join(ctx, "Dockerfile"), out}, "no such file"},
		{"level 0", []string{"-level", "0", ctx, filepath.Join(ctx, "Dockerfile"), out}, "compression level 0 out of range 1-9"},
		{"level 10", []string{"-level", "10", ctx, filepath.Join(ctx, "Dockerfile"), out}, "compression level 10 out of range 1-9"},
		{"layout under a file", []string{ctx, filepath.Join(ctx, "Dockerfile"), filepath.Join(file, "layout")}, "not a directory"},
		// The layers are built into the cache; writing the index fails.
		{"index is a directory", []string{ctx, filepath.Join(ctx, "Dockerfile"), out}, "index.json: is a directory"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.name == "index is a directory" {
				require.NoError(t, os.MkdirAll(filepath.Join(out, "index.json"), 0o755))
				defer os.RemoveAll(out)
			}
			printed, err := wfbench(t, append([]string{"build"}, tt.args...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, printed)
			assert.NoFileExists(t, filepath.Join(out, "index.json"))
		})
	}
}

// failingWriter fails every write, as a closed standard output does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) {
	return 0, errors.New("write /dev/stdout: broken pipe")
}

// TestOutputFails checks that a digest or path the command cannot print is
// an error.
func TestOutputFails(t *testing.T) {
	ref, _ := serve(t)
	ctx := buildContext(t)
	for _, args := range [][]string{
		{"build", ctx, filepath.Join(ctx, "Dockerfile"), filepath.Join(t.TempDir(), "layout")},
		{"sif", "-cache", t.TempDir(), ref, filepath.Join(t.TempDir(), "x.sif")},
	} {
		err := run(t.Context(), args, failingWriter{})
		assert.EqualError(t, err, "write /dev/stdout: broken pipe", "%q", args)
	}
}

func TestUsage(t *testing.T) {
	for _, tt := range []struct {
		args []string
		want string
	}{
		{nil, usage},
		{[]string{"build"}, "bad arguments: " + usage},
		{[]string{"build", "a", "b"}, "bad arguments: " + usage},
		{[]string{"build", "a", "b", "c", "d"}, "bad arguments: " + usage},
		{[]string{"sif", "a"}, "bad arguments: " + usage},
		{[]string{"sif", "a", "b", "c"}, "bad arguments: " + usage},
		{[]string{"push", "a", "b"}, "bad arguments: " + usage},
		{[]string{"build", "-jobs", "2", "a", "b", "c"}, "flag provided but not defined: -jobs"},
		{[]string{"sif", "-level", "x", "a", "b"}, `invalid value "x" for flag -level`},
	} {
		printed, err := wfbench(t, tt.args...)
		require.Error(t, err, "%q", tt.args)
		assert.Contains(t, err.Error(), tt.want, "%q", tt.args)
		assert.Empty(t, printed)
	}
}

// serve starts an in-process registry and pushes the image built from the
// test context to it, returning its reference.
func serve(t *testing.T) (string, v1.Image) {
	t.Helper()
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(srv.Close)
	ctx := buildContext(t)
	dir := filepath.Join(t.TempDir(), "layout")
	_, err := wfbench(t, "build", ctx, filepath.Join(ctx, "Dockerfile"), dir)
	require.NoError(t, err)
	img := layoutImage(t, dir)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/wf/img:latest"
	r, err := name.ParseReference(ref)
	require.NoError(t, err)
	require.NoError(t, remote.Write(r, img, remote.WithContext(t.Context())))
	return ref, img
}

// checkSIF checks that the SIF at path holds the image's files in its
// squashfs partition.
func checkSIF(t *testing.T, path string) {
	t.Helper()
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	fsType, _, _, err := d.PartitionMetadata()
	require.NoError(t, err)
	assert.Equal(t, sif.FsSquash, fsType)
	magic := make([]byte, 4)
	_, err = io.ReadFull(d.GetReader(), magic)
	require.NoError(t, err)
	assert.Equal(t, "hsqs", string(magic))

	unsquashfs := testenv.Require(t, "unsquashfs")
	if unsquashfs == nil {
		return
	}
	b, err := exec.Command(unsquashfs[0], "-o", strconv.FormatInt(d.Offset(), 10), "-cat", path, "opt/intel/bin/run").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Equal(t, "#!/bin/sh\nexec \"$@\"\n", string(b))
}

// TestSIF pulls the built image from a registry into a SIF, with the blob
// cache given and with a temporary one that is removed after.
func TestSIF(t *testing.T) {
	ref, img := serve(t)
	ld, err := img.Layers()
	require.NoError(t, err)

	t.Run("cache", func(t *testing.T) {
		cache := t.TempDir()
		out := filepath.Join(t.TempDir(), "x.sif")
		printed, err := wfbench(t, "sif", "-cache", cache, ref, out)
		require.NoError(t, err)
		assert.Equal(t, out+"\n", printed)
		checkSIF(t, out)
		// The layers are in the cache, and stay there.
		for _, l := range ld {
			d, err := l.Digest()
			require.NoError(t, err)
			var found bool
			require.NoError(t, filepath.WalkDir(cache, func(p string, _ os.DirEntry, err error) error {
				found = found || filepath.Base(p) == d.Hex
				return err
			}))
			assert.True(t, found, "layer %s in the cache", d)
		}
	})

	t.Run("temporary cache", func(t *testing.T) {
		tmp := t.TempDir()
		t.Setenv("TMPDIR", tmp)
		dir := t.TempDir()
		// An existing directory gets the SIF under its default name.
		printed, err := wfbench(t, "sif", ref, dir)
		require.NoError(t, err)
		out := strings.TrimSuffix(printed, "\n")
		assert.Equal(t, dir, filepath.Dir(out))
		assert.Equal(t, "img_latest.sif", filepath.Base(out))
		checkSIF(t, out)
		left, err := os.ReadDir(tmp)
		require.NoError(t, err)
		assert.Empty(t, left, "the temporary cache is removed")
	})

	t.Run("errors", func(t *testing.T) {
		tmp := t.TempDir()
		out := filepath.Join(tmp, "x.sif")
		for _, tt := range []struct {
			name, tmpdir, want string
			args               []string
		}{
			{"bad reference", "", "could not parse reference", []string{"sif", "127.0.0.1:1/Wf/img::x", out}},
			{"missing tag", "", "MANIFEST_UNKNOWN", []string{"sif", strings.TrimSuffix(ref, ":latest") + ":missing", out}},
			{"no temporary directory", filepath.Join(tmp, "missing"), "no such file", []string{"sif", ref, out}},
			{"output in a missing directory", "", "no such file", []string{"sif", ref, filepath.Join(tmp, "missing", "x.sif")}},
		} {
			t.Run(tt.name, func(t *testing.T) {
				if tt.tmpdir != "" {
					t.Setenv("TMPDIR", tt.tmpdir)
				}
				printed, err := wfbench(t, tt.args...)
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.want)
				assert.Empty(t, printed)
				assert.NoFileExists(t, out)
			})
		}
	})
}
