package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"runtime/pprof"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// ibbench runs the command with argv and returns its exit status, stdout and stderr.
func ibbench(t *testing.T, argv ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli(t.Context(), argv, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// buildContext writes a context directory with two files and, outside it, a Dockerfile that copies them.
func buildContext(t *testing.T) (ctxDir, dockerfile string) {
	t.Helper()
	dir := t.TempDir()
	ctxDir = filepath.Join(dir, "ctx")
	require.NoError(t, os.MkdirAll(filepath.Join(ctxDir, "tree", "lib"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "tree", "lib", "libmpi.so"), bytes.Repeat([]byte("mpi library "), 1000), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "tree", "README"), []byte("Intel MPI\n"), 0o644))
	dockerfile = filepath.Join(dir, "Dockerfile")
	require.NoError(t, os.WriteFile(dockerfile, []byte("FROM scratch\nCOPY tree /opt/intel\nENTRYPOINT [\"/opt/intel/run\"]\n"), 0o644))
	return ctxDir, dockerfile
}

// direct builds the same image through the library, as ibbench should.
func direct(t *testing.T, ctxDir, dockerfile string, level int) string {
	t.Helper()
	img, err := imagebuild.BuildDockerfile(t.Context(), dockerfile, imagebuild.WithCompressionLevel(level),
		imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	d, err := img.Digest()
	require.NoError(t, err)
	return d.String()
}

// cachedLayers returns the entry names of every layer blob in the cache directory.
func cachedLayers(t *testing.T, cache string) [][]string {
	t.Helper()
	blobs, err := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*"))
	require.NoError(t, err)
	var out [][]string
	for _, p := range blobs {
		f, err := os.Open(p)
		require.NoError(t, err)
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		var names []string
		tr := tar.NewReader(zr)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			names = append(names, hdr.Name)
		}
		require.NoError(t, f.Close())
		out = append(out, names)
	}
	return out
}

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

func TestBuild(t *testing.T) {
	t.Parallel()
	ctxDir, dockerfile := buildContext(t)
	want := map[int]string{}
	for _, level := range []int{1, 6, 9} {
		want[level] = direct(t, ctxDir, dockerfile, level)
	}
	assert.NotEqual(t, want[1], want[9], "the level changes the layer")

	for _, tc := range []struct {
		name  string
		flags []string
		level int
	}{
		{"default level", nil, imagebuild.DefaultCompressionLevel},
		{"level 1", []string{"-level", "1"}, 1},
		{"level 6", []string{"-level", "6"}, 6},
		{"level 9", []string{"-level", "9"}, 9},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			cache := t.TempDir()
			argv := append(append(tc.flags, "-cache", cache), ctxDir, dockerfile)
			code, stdout, stderr := ibbench(t, argv...)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stderr)
			assert.Regexp(t, digestLine, stdout)
			assert.Equal(t, want[tc.level]+"\n", stdout)
			assert.Equal(t, [][]string{{"opt/", "opt/intel/", "opt/intel/README", "opt/intel/lib/", "opt/intel/lib/libmpi.so"}},
				cachedLayers(t, cache), "the layer is in the cache directory given")
		})
	}

	t.Run("digest file", func(t *testing.T) {
		t.Parallel()
		out := filepath.Join(t.TempDir(), "digest")
		code, stdout, stderr := ibbench(t, "-cache", t.TempDir(), "-digest", out, ctxDir, dockerfile)
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stdout)
		assert.Empty(t, stderr)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, want[imagebuild.DefaultCompressionLevel]+"\n", string(b))
	})
}

// TestDefaultCache builds without -cache: the layers go to the user's cache directory.
func TestDefaultCache(t *testing.T) {
	ctxDir, dockerfile := buildContext(t)
	home := t.TempDir()
	t.Setenv("XDG_CACHE_HOME", home)
	t.Setenv("HOME", home)
	code, stdout, stderr := ibbench(t, ctxDir, dockerfile)
	require.Equal(t, 0, code, stderr)
	assert.Equal(t, direct(t, ctxDir, dockerfile, imagebuild.DefaultCompressionLevel)+"\n", stdout)
	assert.Len(t, cachedLayers(t, filepath.Join(home, "hpcship", "imagebuild")), 1)
}

// TestCPUProfile writes a profile that go tool pprof can read, and fails while another profile runs.
// Not parallel: a process has one CPU profile at a time.
func TestCPUProfile(t *testing.T) {
	ctxDir, dockerfile := buildContext(t)
	dir := t.TempDir()
	prof := filepath.Join(dir, "cpu.pprof")
	var left []string
	var code int
	var stdout, stderr string
	left = testenv.FilesLeftOpen(t, dir, func() {
		code, stdout, stderr = ibbench(t, "-cache", t.TempDir(), "-cpuprofile", prof, ctxDir, dockerfile)
	})
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, left)
	assert.Regexp(t, digestLine, stdout)
	f, err := os.Open(prof)
	require.NoError(t, err)
	defer f.Close()
	zr, err := gzip.NewReader(f) // a profile is a gzip'd protocol buffer
	require.NoError(t, err)
	_, err = io.Copy(io.Discard, zr)
	require.NoError(t, err, "a complete profile")

	t.Run("failed build", func(t *testing.T) {
		prof := filepath.Join(dir, "failed.pprof")
		code, stdout, stderr := ibbench(t, "-level", "0", "-cpuprofile", prof, ctxDir, dockerfile)
		assert.Equal(t, 1, code, "the build's error is kept")
		assert.Empty(t, stdout)
		assert.Equal(t, "ibbench: compression level 0 out of range 1-9\n", stderr)
		f, err := os.Open(prof)
		require.NoError(t, err)
		defer f.Close()
		zr, err := gzip.NewReader(f)
		require.NoError(t, err)
		_, err = io.Copy(io.Discard, zr)
		require.NoError(t, err, "the profile is complete")
	})

	t.Run("while another profile runs", func(t *testing.T) {
		require.NoError(t, pprof.StartCPUProfile(io.Discard))
		defer pprof.StopCPUProfile()
		prof := filepath.Join(dir, "second.pprof")
		left := testenv.FilesLeftOpen(t, dir, func() { code, stdout, stderr = ibbench(t, "-cpuprofile", prof, ctxDir, dockerfile) })
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Equal(t, "ibbench: cpu profiling already in use\n", stderr)
		assert.Empty(t, left, "the profile file is closed")
	})
}

// failingWriter fails every write, as a closed stdout does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestErrors(t *testing.T) {
	t.Parallel()
	ctxDir, dockerfile := buildContext(t)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	bad := filepath.Join(tmp, "Dockerfile.bad")
	require.NoError(t, os.WriteFile(bad, []byte("FROM scratch\nFROBNICATE x\n"), 0o644))
	missingSrc := filepath.Join(tmp, "Dockerfile.missing")
	require.NoError(t, os.WriteFile(missingSrc, []byte("FROM scratch\nCOPY nothing-here /x\n"), 0o644))
	usageLine := usage + "\n"

	for _, tc := range []struct {
		name string
		argv []string
		code int
		want string
	}{
		{"no arguments", nil, 2, usageLine},
		{"one argument", []string{ctxDir}, 2, usageLine},
		{"three arguments", []string{ctxDir, dockerfile, dockerfile}, 2, usageLine},
		{"unknown flag", []string{"-fast", ctxDir, dockerfile}, 2, "flag provided but not defined: -fast"},
		{"level not a number", []string{"-level", "max", ctxDir, dockerfile}, 2, `invalid value "max" for flag -level`},
		{"level 0", []string{"-level", "0", ctxDir, dockerfile}, 1, "ibbench: compression level 0 out of range 1-9"},
		{"level 10", []string{"-level", "10", ctxDir, dockerfile}, 1, "ibbench: compression level 10 out of range 1-9"},
		{"missing Dockerfile", []string{ctxDir, filepath.Join(tmp, "nope")}, 1, "no such file or directory"},
		{"unknown instruction", []string{ctxDir, bad}, 1, "FROBNICATE"},
		{"source not in the context", []string{ctxDir, missingSrc}, 1, "nothing-here"},
		{"context is the Dockerfile's directory only by default", []string{tmp, dockerfile}, 1, "tree"},
		{"profile under a file", []string{"-cpuprofile", filepath.Join(file, "cpu.pprof"), ctxDir, dockerfile}, 1, "not a directory"},
		{"digest under a file", []string{"-digest", filepath.Join(file, "digest"), ctxDir, dockerfile}, 1, "not a directory"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			argv := append([]string{"-cache", t.TempDir()}, tc.argv...)
			if tc.argv == nil {
				argv = nil
			}
			code, stdout, stderr := ibbench(t, argv...)
			assert.Equal(t, tc.code, code)
			assert.Empty(t, stdout)
			assert.Contains(t, stderr, tc.want)
			if tc.code == 1 {
				assert.True(t, strings.HasPrefix(stderr, "ibbench: "), stderr)
			}
		})
	}

	t.Run("closed stdout", func(t *testing.T) {
		t.Parallel()
		var stderr bytes.Buffer
		code := cli(t.Context(), []string{"-cache", t.TempDir(), ctxDir, dockerfile}, failingWriter{}, &stderr)
		assert.Equal(t, 1, code)
		assert.Equal(t, "ibbench: stdout closed\n", stderr.String())
	})

	t.Run("canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var stdout, stderr bytes.Buffer
		code := cli(ctx, []string{"-cache", t.TempDir(), ctxDir, dockerfile}, &stdout, &stderr)
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout.String())
		assert.Contains(t, stderr.String(), "context canceled")
	})
}

// TestCommand runs ibbench as a process: its exit status and output are cli's.
func TestCommand(t *testing.T) {
	t.Parallel()
	ctxDir, dockerfile := buildContext(t)
	code, stdout, stderr := testenv.Command(t, "-cache", t.TempDir(), ctxDir, dockerfile)
	require.Equal(t, 0, code, stderr)
	assert.Regexp(t, digestLine, stdout)

	code, stdout, stderr = testenv.Command(t, "-level", "0", ctxDir, dockerfile)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "ibbench: compression level 0 out of range 1-9\n", stderr)

	code, stdout, stderr = testenv.Command(t, "-h")
	assert.Equal(t, 0, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "Usage of ibbench:")
	assert.Contains(t, stderr, "-cpuprofile string")

	code, _, stderr = testenv.Command(t, ctxDir)
	assert.Equal(t, 2, code)
	assert.Equal(t, usage+"\n", stderr)
}
