package main

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// runbench runs the command with args and returns its exit status, stdout and stderr.
func runbench(t *testing.T, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := cli(t.Context(), args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// busybox returns the path of Debian's static busybox, as imagebuild's tests use it.
func busybox(t *testing.T) string {
	t.Helper()
	if _, err := os.Stat("/bin/busybox"); err == nil {
		return "/bin/busybox"
	}
	p := testenv.Require(t, "busybox")
	if p == nil {
		t.SkipNow()
	}
	return p[0]
}

// fakeBusybox writes a small stand-in for busybox, for the tests that do not run it.
func fakeBusybox(t *testing.T) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "busybox")
	require.NoError(t, os.WriteFile(p, []byte("\x7fELF not really busybox\n"), 0o755))
	return p
}

// listTree lists dir as "path mode [-> link | size]" lines, sorted.
func listTree(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if p == dir {
			return nil
		}
		fi, err := d.Info()
		require.NoError(t, err)
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		line := fmt.Sprintf("%s %v", rel, fi.Mode())
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			link, err := os.Readlink(p)
			require.NoError(t, err)
			line += " -> " + link
		case fi.Mode().IsRegular():
			line += " " + strconv.FormatInt(fi.Size(), 10)
		}
		out = append(out, line)
		return nil
	}))
	return out
}

func TestTree(t *testing.T) {
	t.Parallel()
	bb := fakeBusybox(t)
	bbInfo, err := os.Stat(bb)
	require.NoError(t, err)
	for _, n := range []int{0, 1, 99, 100, 101, 250} {
		t.Run(strconv.Itoa(n), func(t *testing.T) {
			t.Parallel()
			dir := filepath.Join(t.TempDir(), "tree")
			code, stdout, stderr := runbench(t, "tree", dir, strconv.Itoa(n), bb)
			require.Equal(t, 0, code, stderr)
			assert.Empty(t, stdout)
			assert.Empty(t, stderr)

			want := []string{
				"bin drwxr-xr-x",
				fmt.Sprintf("bin/busybox -rwxr-xr-x %d", bbInfo.Size()),
				"bin/sh Lrwxrwxrwx -> busybox",
				"bin/true Lrwxrwxrwx -> busybox",
				"etc drwxr-xr-x",
				"etc/passwd -rw-r--r-- 30",
				"tmp drwxr-xr-x",
			}
			if n > 0 {
				want = append(want, "usr drwxr-xr-x", "usr/share drwxr-xr-x")
			}
			for i := range n {
				if i%100 == 0 {
					want = append(want, fmt.Sprintf("usr/share/d%03d drwxr-xr-x", i/100))
				}
				want = append(want, fmt.Sprintf("usr/share/d%03d/f%03d -rw-r--r-- %d", i/100, i%100, len(fmt.Sprintf("file %d\n", i))*(1+i%7)))
			}
			slices.Sort(want)
			assert.Equal(t, want, listTree(t, dir))

			got, err := os.ReadFile(filepath.Join(dir, "bin", "busybox"))
			require.NoError(t, err)
			orig, err := os.ReadFile(bb)
			require.NoError(t, err)
			assert.True(t, bytes.Equal(orig, got), "busybox is copied as it is")
			passwd, err := os.ReadFile(filepath.Join(dir, "etc", "passwd"))
			require.NoError(t, err)
			assert.Equal(t, "root:x:0:0:root:/root:/bin/sh\n", string(passwd))
			if n > 0 {
				last := n - 1
				b, err := os.ReadFile(filepath.Join(dir, "usr", "share", fmt.Sprintf("d%03d", last/100), fmt.Sprintf("f%03d", last%100)))
				require.NoError(t, err)
				assert.Equal(t, strings.Repeat(fmt.Sprintf("file %d\n", last), 1+last%7), string(b))
			}
		})
	}
}

// layerNames lists the entries of each of img's layers.
func layerNames(t *testing.T, img v1.Image) [][]string {
	t.Helper()
	layers, err := img.Layers()
	require.NoError(t, err)
	var out [][]string
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		var names []string
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			require.NoError(t, err)
			names = append(names, hdr.Name)
		}
		require.NoError(t, rc.Close())
		out = append(out, names)
	}
	return out
}

// baseLayout writes a tree of n files and its base image, and returns the layout's directory.
func baseLayout(t *testing.T, n int, busybox string) (tree, layout string) {
	t.Helper()
	dir := t.TempDir()
	tree, layout = filepath.Join(dir, "tree"), filepath.Join(dir, "layout")
	code, _, stderr := runbench(t, "tree", tree, strconv.Itoa(n), busybox)
	require.Equal(t, 0, code, stderr)
	code, stdout, stderr := runbench(t, "base", tree, layout)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.Empty(t, stderr)
	return tree, layout
}

func TestBase(t *testing.T) {
	t.Parallel()
	_, layout := baseLayout(t, 3, fakeBusybox(t))
	img, err := benchlayout.Read(layout)
	require.NoError(t, err)
	assert.Equal(t, [][]string{{"bin/", "bin/busybox", "bin/sh", "bin/true", "etc/", "etc/passwd", "tmp/", "usr/", "usr/share/",
		"usr/share/d000/", "usr/share/d000/f000", "usr/share/d000/f001", "usr/share/d000/f002"}}, layerNames(t, img))
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, int64(1_700_000_000), cf.Created.Unix(), "dated by the fixed epoch")
}

var digestLine = regexp.MustCompile(`^sha256:[0-9a-f]{64}\n$`)

// TestRun builds on a base with the real busybox. Not parallel: it sets TMPDIR.
func TestRun(t *testing.T) {
	_, layout := baseLayout(t, 5, busybox(t))
	work, tmp := t.TempDir(), t.TempDir()
	cache := filepath.Join(work, "cache")
	smallTree := filepath.Join(work, "small-tree")
	code, _, stderr := runbench(t, "tree", smallTree, "1", fakeBusybox(t))
	require.Equal(t, 0, code, stderr)
	t.Setenv("TMPDIR", tmp)

	// Without -cache, the build uses a temporary cache directory and removes it.
	code, stdout, stderr := runbench(t, "run", layout, "true")
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	assert.Regexp(t, digestLine, stdout)
	first := stdout
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the temporary cache is removed")

	// So does base, always.
	code, _, stderr = runbench(t, "base", smallTree, filepath.Join(work, "small"))
	require.Equal(t, 0, code, stderr)
	left, err = os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the temporary cache of base is removed")

	// The step runs every time (no build cache), on a fresh root or the kept one, and gives the same image.
	out := filepath.Join(work, "digest")
	for range 2 {
		code, stdout, stderr = runbench(t, "run", "-cache", cache, "-digest", out, layout, "true")
		require.Equal(t, 0, code, stderr)
		assert.Empty(t, stdout)
		b, err := os.ReadFile(out)
		require.NoError(t, err)
		assert.Equal(t, first, string(b))
		require.NoError(t, os.Remove(out))
	}

	// Each command is one RUN step with a shell; a failing one fails the build.
	code, stdout, stderr = runbench(t, "run", "-cache", cache, layout, "echo a >/tmp/a", "test -f /tmp/a && exit 3")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "runbench: step 2: RUN test -f /tmp/a && exit 3")
	assert.Contains(t, stderr, "exit code 3")

	// A failed write of the digest fails the command.
	code, stdout, stderr = runbench(t, "run", "-cache", cache, "-digest", filepath.Join(layout, "index.json", "digest"), layout, "true")
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Contains(t, stderr, "index.json/digest: not a directory")
	var errOut bytes.Buffer
	code = cli(t.Context(), []string{"run", "-cache", cache, layout, "true"}, failingWriter{}, &errOut)
	assert.Equal(t, 1, code)
	assert.Equal(t, "runbench: stdout closed\n", errOut.String())

	t.Run("unusable TMPDIR", func(t *testing.T) {
		fake := fakeBusybox(t)
		t.Setenv("TMPDIR", filepath.Join(tmp, "missing"))
		code, stdout, stderr := runbench(t, "run", layout, "true")
		assert.Equal(t, 1, code)
		assert.Empty(t, stdout)
		assert.Contains(t, stderr, filepath.Join(tmp, "missing")+": no such file or directory")
		tree := filepath.Join(work, "tree")
		code, _, stderr = runbench(t, "tree", tree, "1", fake)
		require.Equal(t, 0, code, stderr)
		code, _, stderr = runbench(t, "base", tree, filepath.Join(work, "layout"))
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, filepath.Join(tmp, "missing")+": no such file or directory")
		assert.NoDirExists(t, filepath.Join(work, "layout"))
	})
}

// failingWriter fails every write, as a closed stdout does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("stdout closed") }

func TestErrors(t *testing.T) {
	t.Parallel()
	bb := fakeBusybox(t)
	tree, layout := baseLayout(t, 1, bb)
	tmp := t.TempDir()
	file := filepath.Join(tmp, "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	usageLine := "runbench: " + usage + "\n"

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, usageLine},
		{"unknown command", []string{"bench"}, usageLine},
		{"tree: too few", []string{"tree", filepath.Join(tmp, "t"), "3"}, usageLine},
		{"tree: too many", []string{"tree", filepath.Join(tmp, "t"), "3", bb, "x"}, usageLine},
		{"tree: N not a number", []string{"tree", filepath.Join(tmp, "t"), "many", bb}, `strconv.Atoi: parsing "many": invalid syntax`},
		{"tree: missing busybox", []string{"tree", filepath.Join(tmp, "t"), "3", filepath.Join(tmp, "busybox")}, "no such file or directory"},
		{"tree: under a file", []string{"tree", filepath.Join(file, "t"), "3", bb}, "not a directory"},
		{"tree: bin is a file", []string{"tree", treeWith(t, "bin"), "3", bb}, "bin: not a directory"},
		{"tree: bin/busybox is a directory", []string{"tree", treeWith(t, "bin/busybox/"), "3", bb}, "bin/busybox: is a directory"},
		{"tree: bin/sh exists", []string{"tree", treeWith(t, "bin/sh"), "3", bb}, "file exists"},
		{"tree: bin/true exists", []string{"tree", treeWith(t, "bin/true"), "3", bb}, "bin/true: file exists"},
		{"tree: etc is a file", []string{"tree", treeWith(t, "etc"), "3", bb}, "not a directory"},
		{"tree: etc/passwd is a directory", []string{"tree", treeWith(t, "etc/passwd/"), "3", bb}, "is a directory"},
		{"tree: usr is a file", []string{"tree", treeWith(t, "usr"), "3", bb}, "not a directory"},
		{"tree: a data file is a directory", []string{"tree", treeWith(t, "usr/share/d000/f001/"), "3", bb}, "f001: is a directory"},
		{"base: too few", []string{"base", tree}, usageLine},
		{"base: too many", []string{"base", tree, filepath.Join(tmp, "l"), "x"}, usageLine},
		{"base: missing tree", []string{"base", filepath.Join(tmp, "missing"), filepath.Join(tmp, "l")}, "missing"},
		{"base: layout under a file", []string{"base", tree, filepath.Join(file, "l")}, "not a directory"},
		{"run: no command", []string{"run", layout}, usageLine},
		{"run: nothing", []string{"run", "-cache", tmp}, usageLine},
		{"run: unknown flag", []string{"run", "-keep", layout, "true"}, "flag provided but not defined: -keep"},
		{"run: missing layout", []string{"run", "-cache", t.TempDir(), filepath.Join(tmp, "missing"), "true"}, "missing"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, stdout, stderr := runbench(t, tc.args...)
			assert.Equal(t, 1, code)
			assert.Empty(t, stdout)
			assert.True(t, strings.HasPrefix(stderr, "runbench: "), stderr)
			assert.Contains(t, stderr, tc.want)
		})
	}

	t.Run("base: canceled", func(t *testing.T) {
		t.Parallel()
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		var stdout, stderr bytes.Buffer
		out := filepath.Join(t.TempDir(), "layout")
		code := cli(ctx, []string{"base", tree, out}, &stdout, &stderr)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr.String(), "context canceled")
		assert.NoFileExists(t, filepath.Join(out, "index.json"))
	})
}

// treeWith returns a new directory holding the path rel, a directory if it ends in a slash, else a file, and
// what it needs above it.
func treeWith(t *testing.T, rel string) string {
	t.Helper()
	dir := t.TempDir()
	p := filepath.Join(dir, rel)
	require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
	if strings.HasSuffix(rel, "/") {
		require.NoError(t, os.MkdirAll(p, 0o755))
	} else {
		require.NoError(t, os.WriteFile(p, nil, 0o644))
	}
	return dir
}

// TestCommand runs runbench as a process: its exit status and output are cli's.
func TestCommand(t *testing.T) {
	t.Parallel()
	tree := filepath.Join(t.TempDir(), "tree")
	code, stdout, stderr := testenv.Command(t, "tree", tree, "1", fakeBusybox(t))
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stdout)
	assert.FileExists(t, filepath.Join(tree, "usr", "share", "d000", "f000"))

	code, stdout, stderr = testenv.Command(t, "tree", tree)
	assert.Equal(t, 1, code)
	assert.Empty(t, stdout)
	assert.Equal(t, "runbench: "+usage+"\n", stderr)
}
