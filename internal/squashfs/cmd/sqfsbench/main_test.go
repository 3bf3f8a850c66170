package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"flag"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/gen.golden")

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// small is a tree of the benchmark's shape, a few kB in all.
var small = treeSize{
	small: 7, dirs: 3, smallMax: 300,
	logs: 2, logSize: 2000, copySize: 500,
	randoms: 2, randomSize: 64,
}

// sums lists the regular files under dir as "path size sha256" lines, sorted.
func sums(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		if d.IsDir() {
			return nil
		}
		require.True(t, d.Type().IsRegular(), p)
		b, err := os.ReadFile(p)
		require.NoError(t, err)
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		out = append(out, fmt.Sprintf("%s %d %x", filepath.ToSlash(rel), len(b), sha256.Sum256(b)))
		return nil
	}))
	slices.Sort(out)
	return out
}

// TestGenerate checks the tree's shape, and against a golden listing its exact
// content: the generator is seeded, so every run packs the same bytes.
func TestGenerate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "tree")
	require.NoError(t, run(t.Context(), []string{"gen", dir}, small))

	var names []string
	for i := range small.small {
		p := fmt.Sprintf("small/d%03d/f%05d.txt", i%small.dirs, i)
		names = append(names, p)
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Less(t, len(b), small.smallMax, p)
		assert.Regexp(t, `^[a-z \n]*$`, string(b), p)
	}
	logLine := regexp.MustCompile(`^2026-11-28T12:\d\d:\d\d\.\d{6}Z node\d{3} rank=\d+ [a-z]+ [a-z]+ value=\d+$`)
	var log0 []byte
	for i := range small.logs {
		p := fmt.Sprintf("large/log%d.txt", i)
		names = append(names, p)
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.GreaterOrEqual(t, len(b), small.logSize, p)
		assert.Less(t, len(b), small.logSize+100, p)
		lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
		for _, l := range lines {
			assert.Regexp(t, logLine, l, p)
		}
		assert.True(t, strings.HasPrefix(lines[1], "2026-11-28T12:00:01."), "lines count seconds: %q", lines[1])
		if i == 0 {
			log0 = b
		}
	}
	names = append(names, "large/log0-copy.txt")
	b, err := os.ReadFile(filepath.Join(dir, "large/log0-copy.txt"))
	require.NoError(t, err)
	assert.Equal(t, log0[:small.copySize], b)
	var randoms [][]byte
	for i := range small.randoms {
		p := fmt.Sprintf("large/random%d.bin", i)
		names = append(names, p)
		b, err := os.ReadFile(filepath.Join(dir, p))
		require.NoError(t, err)
		assert.Len(t, b, small.randomSize, p)
		assert.NotContains(t, randoms, b, "random files differ")
		randoms = append(randoms, b)
	}
	got := sums(t, dir)
	var gotNames []string
	for _, l := range got {
		gotNames = append(gotNames, strings.Fields(l)[0])
	}
	slices.Sort(names)
	assert.Equal(t, names, gotNames, "exactly these files")

	golden := filepath.Join("testdata", "gen.golden")
	text := strings.Join(got, "\n") + "\n"
	if *update {
		require.NoError(t, os.MkdirAll("testdata", 0o755))
		require.NoError(t, os.WriteFile(golden, []byte(text), 0o644))
	}
	want, err := os.ReadFile(golden)
	require.NoError(t, err)
	assert.Equal(t, string(want), text, "generated tree changed; run go test -update if that is meant")
}

// TestLogSize: a log file ends with the first line that takes it to logSize or past.
func TestLogSize(t *testing.T) {
	one := small
	one.logs, one.copySize, one.randoms = 1, 0, 0
	dir := t.TempDir()
	require.NoError(t, generate(dir, one))
	b, err := os.ReadFile(filepath.Join(dir, "large/log0.txt"))
	require.NoError(t, err)
	lines := strings.SplitAfter(string(b), "\n")
	end := len(lines[0]) + len(lines[1]) // the end of the second line
	for _, tc := range []struct{ size, want int }{
		{end - 1, end},
		{end, end},
		{end + 1, end + len(lines[2])},
	} {
		one.logSize = tc.size
		dir := t.TempDir()
		require.NoError(t, generate(dir, one))
		got, err := os.ReadFile(filepath.Join(dir, "large/log0.txt"))
		require.NoError(t, err)
		assert.Equal(t, b[:tc.want], got, "logSize %d", tc.size)
	}
}

func TestGenerateErrors(t *testing.T) {
	for _, block := range []string{
		"small",
		"small/d000/f00000.txt",
		"small/d002/f00005.txt",
		"large/log0.txt",
		"large/log1.txt",
		"large/log0-copy.txt",
		"large/random0.bin",
		"large/random1.bin",
	} {
		t.Run(block, func(t *testing.T) {
			dir := t.TempDir()
			p := filepath.Join(dir, block)
			require.NoError(t, os.MkdirAll(filepath.Dir(p), 0o755))
			if block == "small" {
				require.NoError(t, os.WriteFile(p, nil, 0o644))
			} else {
				require.NoError(t, os.Mkdir(p, 0o755))
			}
			err := run(t.Context(), []string{"gen", dir}, small)
			require.Error(t, err)
			assert.Contains(t, err.Error(), p)
		})
	}
}

// node is what a test compares of one path of a tree: type and permissions,
// owner, size and content of a regular file, a symlink's target, a device's
// number, the mtime, the xattrs, and for a hardlinked file the first path (in walk
// order) of its inode.
type node struct {
	Mode     fs.FileMode
	UID, GID uint32
	Size     int64
	Sum      string
	Link     string
	Rdev     uint64
	MTime    time.Time
	Xattrs   map[string]string
	Inode    string
}

func describe(t *testing.T, dir string) map[string]node {
	t.Helper()
	out := map[string]node{}
	inodes := map[uint64]string{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(dir, p)
		require.NoError(t, err)
		fi, err := d.Info()
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		n := node{Mode: fi.Mode(), UID: st.Uid, GID: st.Gid, MTime: time.Unix(fi.ModTime().Unix(), 0)}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			n.Size, n.Sum = int64(len(b)), fmt.Sprintf("%x", sha256.Sum256(b))
			if _, ok := inodes[st.Ino]; !ok {
				inodes[st.Ino] = rel
			}
			n.Inode = inodes[st.Ino]
		case fi.Mode()&fs.ModeSymlink != 0:
			n.Link, err = os.Readlink(p)
			require.NoError(t, err)
		case fi.Mode()&fs.ModeDevice != 0:
			n.Rdev = st.Rdev
		}
		if fi.Mode().IsRegular() || fi.IsDir() {
			n.Xattrs, err = xattrs(p)
			require.NoError(t, err)
		}
		out[filepath.ToSlash(rel)] = n
		return nil
	}))
	return out
}

// sourceTree writes a tree with every kind of entry pack handles: nested
// directories with modes of their own, regular files (empty, several blocks,
// setuid, with an owner, with xattrs, with an old mtime), a hardlinked file,
// symlinks (one dangling), a FIFO, a socket, and character and block devices (one
// with a minor above 255).
func sourceTree(t *testing.T, src string) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(src, "sub"), 0o750))
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i * 7 / 5)
	}
	for name, content := range map[string][]byte{
		"a": []byte("hello\n"), "empty": nil, "sub/big": big, "sub/deep/suid": []byte("#!/bin/sh\n"), "owned": []byte("x"),
	} {
		require.NoError(t, os.WriteFile(filepath.Join(src, name), content, 0o644))
	}
	require.NoError(t, os.Chmod(filepath.Join(src, "sub/deep/suid"), 0o755|fs.ModeSetuid))
	require.NoError(t, os.Lchown(filepath.Join(src, "owned"), 1234, 5678))
	require.NoError(t, syscall.Setxattr(filepath.Join(src, "a"), "user.origin", []byte("test"), 0))
	require.NoError(t, syscall.Setxattr(filepath.Join(src, "a"), "user.empty", nil, 0))
	require.NoError(t, syscall.Setxattr(filepath.Join(src, "sub"), "user.dir", []byte("yes"), 0))
	require.NoError(t, os.Link(filepath.Join(src, "a"), filepath.Join(src, "sub", "a-again")))
	require.NoError(t, os.Symlink("sub/deep", filepath.Join(src, "link")))
	require.NoError(t, os.Symlink("nowhere", filepath.Join(src, "dangling")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	l, err := net.Listen("unix", filepath.Join(src, "sock"))
	require.NoError(t, err)
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	require.NoError(t, l.Close())
	require.NoError(t, syscall.Mknod(filepath.Join(src, "null"), syscall.S_IFCHR|0o666, int(mkdev(1, 3))))
	require.NoError(t, syscall.Mknod(filepath.Join(src, "sub", "disk"), syscall.S_IFBLK|0o660, int(mkdev(259, 300))))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	require.NoError(t, os.Chtimes(filepath.Join(src, "owned"), old, old))
	require.NoError(t, os.Chtimes(filepath.Join(src, "sub", "deep"), old, old))
}

func mkdev(major, minor uint64) uint64 {
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}

// TestPack packs a tree with every entry type and reads the image back with
// unsquashfs: everything pack says it keeps is there.
func TestPack(t *testing.T) {
	testenv.RequireRoot(t)
	unsquashfs := testenv.Require(t, "unsquashfs")[0]
	tmp := t.TempDir()
	src, img, out := filepath.Join(tmp, "src"), filepath.Join(tmp, "img.sqfs"), filepath.Join(tmp, "out")
	sourceTree(t, src)
	want := describe(t, src)

	require.NoError(t, run(t.Context(), []string{"pack", src, img}, treeSize{}))
	cmd := exec.Command(unsquashfs, "-quiet", "-no-progress", "-d", out, img)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	got := describe(t, out)
	assert.Equal(t, want, got)
	assert.Len(t, got, 15)
	assert.Equal(t, "a", got["sub/a-again"].Inode, "hardlinked")
	assert.Equal(t, map[string]string{"user.origin": "test", "user.empty": ""}, got["a"].Xattrs)
}

// TestPackFilesClosed: pack closes every file it opens.
func TestPackFilesClosed(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	for _, p := range []string{"a", "b", "d/c"} {
		require.NoError(t, os.MkdirAll(filepath.Dir(filepath.Join(src, p)), 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(src, p), []byte(p), 0o644))
	}
	left := testenv.FilesLeftOpen(t, src, func() {
		require.NoError(t, run(context.Background(), []string{"pack", src, filepath.Join(tmp, "img")}, treeSize{}))
	})
	assert.Empty(t, left)
}

// superblock returns the image's compressor and, if the image has a compressor
// options block, the level it records (else 0).
func superblock(t *testing.T, img string) (squashfs.Compressor, uint32) {
	t.Helper()
	b, err := os.ReadFile(img)
	require.NoError(t, err)
	require.Greater(t, len(b), 102)
	require.Equal(t, "hsqs", string(b[:4]))
	comp := squashfs.Compressor(binary.LittleEndian.Uint16(b[20:]))
	if binary.LittleEndian.Uint16(b[24:])&0x400 == 0 {
		return comp, 0
	}
	return comp, binary.LittleEndian.Uint32(b[98:])
}

func TestPackCompression(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), bytes.Repeat([]byte("compressible "), 1000), 0o644))
	for _, tc := range []struct {
		flags []string
		comp  squashfs.Compressor
		level uint32 // 0: the compressor's default, which the image does not record
	}{
		{nil, squashfs.Gzip, squashfs.DefaultCompressionLevel},
		{[]string{"-comp", "gzip"}, squashfs.Gzip, squashfs.DefaultCompressionLevel},
		{[]string{"-level", "1"}, squashfs.Gzip, 1},
		{[]string{"-level", "9"}, squashfs.Gzip, 0},
		{[]string{"-comp", "zstd"}, squashfs.Zstd, squashfs.DefaultCompressionLevel},
		{[]string{"-comp", "zstd", "-level", "3"}, squashfs.Zstd, 3},
	} {
		t.Run(strings.Join(append([]string{"pack"}, tc.flags...), " "), func(t *testing.T) {
			img := filepath.Join(t.TempDir(), "img")
			require.NoError(t, run(t.Context(), append(append([]string{"pack"}, tc.flags...), src, img), treeSize{}))
			comp, level := superblock(t, img)
			assert.Equal(t, tc.comp, comp)
			assert.Equal(t, tc.level, level)
		})
	}
}

func TestRunErrors(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	regular := filepath.Join(tmp, "regular")
	require.NoError(t, os.WriteFile(regular, nil, 0o644))
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"no command", nil, "usage: sqfsbench gen DIR | sqfsbench pack"},
		{"gen without dir", []string{"gen"}, "usage: sqfsbench gen DIR"},
		{"gen with two dirs", []string{"gen", tmp + "/a", tmp + "/b"}, "usage: sqfsbench gen DIR"},
		{"gen under a file", []string{"gen", filepath.Join(regular, "tree")}, "not a directory"},
		{"unknown command", []string{"list", src}, `unknown command "list"`},
		{"unknown flag", []string{"pack", "-fast", src, tmp + "/img"}, "flag provided but not defined: -fast"},
		{"bad level", []string{"pack", "-level", "high", src, tmp + "/img"}, `invalid value "high"`},
		{"unknown compressor", []string{"pack", "-comp", "xz", src, tmp + "/img"}, `unknown compressor "xz"`},
		{"pack without image", []string{"pack", src}, "usage: sqfsbench pack"},
		{"pack with extra argument", []string{"pack", src, tmp + "/img", "x"}, "usage: sqfsbench pack"},
		{"pack missing dir", []string{"pack", filepath.Join(tmp, "missing"), tmp + "/img"}, "no such file"},
		{"pack a file", []string{"pack", regular, tmp + "/img"}, "the root must be a directory"},
		{"pack into missing dir", []string{"pack", src, filepath.Join(tmp, "missing", "img")}, "no such file"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), tc.args, small)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	entries, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Len(t, entries, 2, "nothing written beside the inputs")
}

func TestCommand(t *testing.T) {
	tmp := t.TempDir()
	src := filepath.Join(tmp, "src")
	require.NoError(t, os.MkdirAll(src, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte("content"), 0o644))
	for _, tc := range []struct {
		args   []string
		code   int
		stderr string
	}{
		{[]string{"pack", "-comp", "zstd", src, filepath.Join(tmp, "img")}, 0, ""},
		{nil, 1, "sqfsbench: usage: sqfsbench gen DIR | sqfsbench pack [-comp gzip|zstd] [-level N] DIR IMG\n"},
	} {
		code, _, stderr := testenv.Command(t, tc.args...)
		assert.Equal(t, tc.code, code, "%q", tc.args)
		assert.Equal(t, tc.stderr, stderr, "%q", tc.args)
	}
	comp, _ := superblock(t, filepath.Join(tmp, "img"))
	assert.Equal(t, squashfs.Zstd, comp)
}
