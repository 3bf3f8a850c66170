package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// mainEnv makes the test binary run main with the arguments it holds, one a
// line, for TestMainExit.
const mainEnv = "SIFBENCH_TEST_MAIN"

func TestMain(m *testing.M) {
	if args, ok := os.LookupEnv(mainEnv); ok {
		os.Args = append([]string{"sifbench"}, strings.Split(args, "\n")...)
		main()
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// TestMainExit checks what the command prints and its exit status, run as a
// process.
func TestMainExit(t *testing.T) {
	path := filepath.Join(t.TempDir(), "x.sif")
	part, err := sif.NewDescriptorInput(sif.DataPartition, strings.NewReader("hsqs"),
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64"))
	require.NoError(t, err)
	f, err := sif.CreateContainerAtPath(path, sif.OptCreateWithDescriptors(part))
	require.NoError(t, err)
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	off := d.Offset()
	require.NoError(t, f.UnloadContainer())
	for _, tt := range []struct {
		args           string
		code           int
		stdout, stderr string
	}{
		{"offset\n" + path, 0, fmt.Sprintf("%d\n", off), ""},
		{"offset", 1, "", "sifbench: " + usage + "\n"},
		{"gen\n-dirs\n1\nx\ny", 1, "", "sifbench: -dirs must be at least 10, got 1\n"},
	} {
		t.Run(strings.Split(tt.args, "\n")[0], func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^$")
			cmd.Env = append(os.Environ(), mainEnv+"="+tt.args)
			var stdout, stderr bytes.Buffer
			cmd.Stdout, cmd.Stderr = &stdout, &stderr
			err := cmd.Run()
			if tt.code == 0 {
				require.NoError(t, err, "%s", stderr.String())
			} else {
				var exit *exec.ExitError
				require.ErrorAs(t, err, &exit)
				assert.Equal(t, tt.code, exit.ExitCode())
			}
			assert.Equal(t, tt.stdout, stdout.String())
			assert.Equal(t, tt.stderr, stderr.String())
		})
	}
}

// sifbench runs the command with args and returns what it printed.
func sifbench(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(t.Context(), args, &out)
	return out.String(), err
}

// entry is what a test checks of a tar header.
type entry struct {
	name     string
	typ      byte
	mode     int64
	size     int64
	uid, gid int
	owner    string
	link     string
	modTime  time.Time
	content  []byte
}

// layerEntries reads the uncompressed tar stream of l, which must be a whole
// archive: records of 512 bytes, closed by the end-of-archive marker.
func layerEntries(t *testing.T, l v1.Layer) []entry {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.Zero(t, len(b)%512, "tar records")
	require.GreaterOrEqual(t, len(b), 1024)
	require.Equal(t, make([]byte, 1024), b[len(b)-1024:], "end-of-archive marker")
	tr := tar.NewReader(bytes.NewReader(b))
	var out []entry
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		b, err := io.ReadAll(tr)
		require.NoError(t, err)
		out = append(out, entry{name: hdr.Name, typ: hdr.Typeflag, mode: hdr.Mode, size: hdr.Size, uid: hdr.Uid,
			gid: hdr.Gid, owner: hdr.Uname + hdr.Gname, link: hdr.Linkname, modTime: hdr.ModTime, content: b})
	}
}

func names(es []entry) []string {
	out := make([]string, len(es))
	for i, e := range es {
		out[i] = e.name
	}
	return out
}

// toolchain makes a small tree standing in for the Go root.
func toolchain(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "go")
	require.NoError(t, os.MkdirAll(filepath.Join(dir, "bin"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "bin", "go"), []byte("#!/bin/sh\necho go\n"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "VERSION"), []byte("go1.26\n"), 0o644))
	require.NoError(t, os.Symlink("bin/go", filepath.Join(dir, "go")))
	return dir
}

const (
	testDirs  = 10
	testLarge = 20000
)

var logLine = regexp.MustCompile(`^\d{8} [a-z]+ [a-z]+ [a-z]+ \d+$`)

// checkText checks that b is log lines, the last one possibly cut short.
func checkText(t *testing.T, name string, b []byte) {
	t.Helper()
	lines := strings.Split(string(b), "\n")
	require.Greater(t, len(lines), 1, name)
	for _, l := range lines[:len(lines)-1] {
		require.Regexp(t, logLine, l, name)
	}
}

// gzipSize is the size of b compressed at the default level.
func gzipSize(t *testing.T, b []byte) int {
	t.Helper()
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	_, err := zw.Write(b)
	require.NoError(t, err)
	require.NoError(t, zw.Close())
	return buf.Len()
}

// TestGen checks each layer of the generated image at its smallest size, its
// config, the name umoci finds it by, and the tree its layers make.
func TestGen(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	out, err := sifbench(t, "gen", "-dirs", strconv.Itoa(testDirs), "-large", strconv.Itoa(testLarge), dir, toolchain(t))
	require.NoError(t, err)
	assert.Empty(t, out)

	p, err := layout.FromPath(dir)
	require.NoError(t, err)
	idx, err := p.ImageIndex()
	require.NoError(t, err)
	im, err := idx.IndexManifest()
	require.NoError(t, err)
	require.Len(t, im.Manifests, 1)
	assert.Equal(t, map[string]string{"org.opencontainers.image.ref.name": "bench"}, im.Manifests[0].Annotations)
	assert.Equal(t, types.OCIManifestSchema1, im.Manifests[0].MediaType)

	img, err := benchlayout.Read(dir)
	require.NoError(t, err)
	m, err := img.Manifest()
	require.NoError(t, err)
	assert.Equal(t, types.OCIConfigJSON, m.Config.MediaType)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, "linux", cf.OS)
	assert.Equal(t, "amd64", cf.Architecture)
	assert.Equal(t, []string{"PATH=/opt/toolchain/bin:/usr/bin:/bin"}, cf.Config.Env)
	assert.Equal(t, []string{"/bin/sh"}, cf.Config.Cmd)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 4)
	for _, l := range layers {
		mt, err := l.MediaType()
		require.NoError(t, err)
		assert.Equal(t, types.OCILayer, mt)
	}

	t.Run("small files", func(t *testing.T) {
		es := layerEntries(t, layers[0])
		want := []string{"data/", "data/small/"}
		for i := range testDirs * 100 {
			if i%100 == 0 {
				want = append(want, fmt.Sprintf("data/small/d%03d/", i/100))
			}
			want = append(want, fmt.Sprintf("data/small/d%03d/f%05d.txt", i/100, i))
		}
		require.Equal(t, want, names(es))
		sizes := map[int64]bool{}
		for _, e := range es {
			assert.Equal(t, epoch, e.modTime, e.name)
			assert.Equal(t, 0, e.uid, e.name)
			if e.typ == tar.TypeDir {
				assert.Equal(t, int64(0o755), e.mode, e.name)
				continue
			}
			require.Equal(t, byte(tar.TypeReg), e.typ, e.name)
			assert.Equal(t, int64(0o644), e.mode, e.name)
			assert.GreaterOrEqual(t, e.size, int64(512), e.name)
			assert.Less(t, e.size, int64(512+7*1024), e.name)
			sizes[e.size] = true
			checkText(t, e.name, e.content)
		}
		assert.Greater(t, len(sizes), 500, "sizes are drawn, not fixed")
	})

	t.Run("toolchain", func(t *testing.T) {
		es := layerEntries(t, layers[1])
		require.Equal(t, []string{"opt/toolchain/", "opt/toolchain/VERSION", "opt/toolchain/bin/", "opt/toolchain/bin/go",
			"opt/toolchain/go"}, names(es))
		assert.Equal(t, "go1.26\n", string(es[1].content))
		assert.Equal(t, int64(0o644), es[1].mode)
		assert.Equal(t, int64(0o755), es[3].mode)
		assert.Equal(t, byte(tar.TypeSymlink), es[4].typ)
		assert.Equal(t, "bin/go", es[4].link)
	})

	t.Run("large files", func(t *testing.T) {
		es := layerEntries(t, layers[2])
		want := []string{"data/large/"}
		for i := range 6 {
			want = append(want, fmt.Sprintf("data/large/log%d.txt", i))
		}
		for i := range 5 {
			want = append(want, fmt.Sprintf("data/large/random%d.bin", i))
		}
		require.Equal(t, want, names(es))
		seen := map[string]bool{}
		for _, e := range es[1:] {
			require.Equal(t, int64(testLarge), e.size, e.name)
			require.False(t, seen[string(e.content)], "%s repeats another file", e.name)
			seen[string(e.content)] = true
			if strings.HasSuffix(e.name, ".txt") {
				checkText(t, e.name, e.content)
				assert.Less(t, gzipSize(t, e.content), testLarge/2, "%s compresses", e.name)
			} else {
				assert.Greater(t, gzipSize(t, e.content), testLarge, "%s does not compress", e.name)
			}
		}
	})

	t.Run("changes", func(t *testing.T) {
		es := layerEntries(t, layers[3])
		var want []string
		for i := range testDirs * 15 {
			n := i * 6
			if i < testDirs*5 {
				want = append(want, fmt.Sprintf("data/small/d%03d/f%05d.txt", n/100, n))
			} else {
				want = append(want, fmt.Sprintf("data/small/d%03d/.wh.f%05d.txt", n/100, n))
			}
		}
		want = append(want, fmt.Sprintf("data/small/d%03d/.wh..wh..opq", testDirs-1), "data/large/.wh.random4.bin",
			"data/large/log0.txt")
		require.Equal(t, want, names(es))
		for _, e := range es {
			switch {
			case strings.Contains(e.name, ".wh."):
				assert.Zero(t, e.size, e.name)
			case e.name == "data/large/log0.txt":
				assert.Equal(t, int64(testLarge/5), e.size)
				checkText(t, e.name, e.content)
			default:
				assert.GreaterOrEqual(t, e.size, int64(512), e.name)
				checkText(t, e.name, e.content)
			}
		}
	})

	t.Run("build and wrap", func(t *testing.T) { testBuildAndWrap(t, dir) })

	t.Run("tree", func(t *testing.T) {
		files := flatten(t, img)
		var small []string
		for name := range files {
			if strings.HasPrefix(name, "data/small/") && strings.HasSuffix(name, ".txt") {
				small = append(small, name)
			}
		}
		// 10 whited out per directory of 100, and the last directory emptied.
		assert.Len(t, small, testDirs*100-testDirs*10-100)
		assert.NotContains(t, files, "data/small/d003/f00300.txt")
		assert.Contains(t, files, "data/small/d003/f00301.txt")
		assert.Contains(t, files, "data/small/d002/f00294.txt")
		assert.NotContains(t, files, fmt.Sprintf("data/small/d%03d/f%05d.txt", testDirs-1, testDirs*100-1))
		assert.Contains(t, files, fmt.Sprintf("data/small/d%03d", testDirs-1))
		assert.NotContains(t, files, "data/large/random4.bin")
		assert.Equal(t, int64(testLarge), files["data/large/random3.bin"])
		assert.Equal(t, int64(testLarge/5), files["data/large/log0.txt"])
		assert.Equal(t, int64(testLarge), files["data/large/log1.txt"])
	})
}

// testBuildAndWrap runs what scripts/bench/sif.sh runs on the generated
// image: our build, and the peer's umoci unpack, mksquashfs and wrap, and
// checks that both SIFs hold the same tree and that offset finds it.
func testBuildAndWrap(t *testing.T, dir string) {
	work := t.TempDir()
	ours := filepath.Join(work, "ours.sif")
	out, err := sifbench(t, "build", dir, ours)
	require.NoError(t, err)
	assert.Empty(t, out)
	d, sb := primary(t, ours)
	assert.Equal(t, uint16(1), sb.comp, "gzip")
	assert.Equal(t, uint32(6), sb.level)
	off, err := sifbench(t, "offset", ours)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(d.Offset(), 10)+"\n", off)
	ds, _ := sifObjects(t, ours)
	require.Greater(t, len(ds), 1)
	assert.NotEqual(t, sif.DataPartition, ds[0].DataType(), "offset skips the objects before the partition")

	progs := testenv.Require(t, "umoci", "mksquashfs")
	if progs == nil {
		return
	}
	bundle := filepath.Join(work, "bundle")
	b, err := exec.Command(progs[0], "unpack", "--rootless", "--image", dir+":bench", bundle).CombinedOutput()
	require.NoError(t, err, "%s", b)
	sqfs := filepath.Join(work, "peer.sqfs")
	b, err = exec.Command(progs[1], filepath.Join(bundle, "rootfs"), sqfs, "-noappend", "-comp", "gzip", "-all-root",
		"-quiet", "-no-progress").CombinedOutput()
	require.NoError(t, err, "%s", b)
	peer := filepath.Join(work, "peer.sif")
	out, err = sifbench(t, "wrap", dir, sqfs, peer)
	require.NoError(t, err)
	assert.Empty(t, out)
	pd, psb := primary(t, peer)
	assert.Equal(t, uint32(0), psb.level, "mksquashfs' default level 9 has no options")
	off, err = sifbench(t, "offset", peer)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(pd.Offset(), 10)+"\n", off)

	// Ours adds /.singularity.d and its mount points and links; the rest
	// is the same.
	want := listing(t, peer, pd.Offset())
	got := listing(t, ours, d.Offset())
	assert.Subset(t, got, want)
	// data, data/small and its directories, data/large, the small files
	// that are left, 6 logs and 4 random files, and the toolchain.
	assert.Len(t, want, 2+testDirs+1+(testDirs*100-testDirs*10-100)+10+6)
	assert.Contains(t, want, "-rw-r--r-- 0/0 4000 squashfs-root/data/large/log0.txt")
	assert.Contains(t, want, "lrwxrwxrwx 0/0 6 squashfs-root/opt/toolchain/go -> bin/go")
}

// flatten returns the size of every entry of the image's merged tree (-1 for
// a directory), named as in a layer.
func flatten(t *testing.T, img v1.Image) map[string]int64 {
	t.Helper()
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	out := map[string]int64{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		size := hdr.Size
		if hdr.Typeflag == tar.TypeDir {
			size = -1
		}
		out[hdr.Name] = size
	}
}

func TestGenErrors(t *testing.T) {
	tc := toolchain(t)
	for _, tt := range []struct {
		name string
		args []string
		want string
	}{
		{"no layout", []string{"gen"}, "usage:"},
		{"no toolchain", []string{"gen", "x"}, "usage:"},
		{"extra argument", []string{"gen", "x", tc, "y"}, "usage:"},
		{"unknown flag", []string{"gen", "-size", "1", "x", tc}, "flag provided but not defined"},
		{"dirs not a number", []string{"gen", "-dirs", "ten", "x", tc}, "invalid value"},
		{"too few dirs", []string{"gen", "-dirs", strconv.Itoa(minDirs - 1), "x", tc}, "-dirs must be at least 10, got 9"},
		{"negative size", []string{"gen", "-dirs", "10", "-large", "-1", "x", tc}, "-large must not be negative, got -1"},
		// The least sizes pass, and the command fails as it reads the
		// toolchain.
		{"missing toolchain", []string{"gen", "-dirs", "10", "-large", "0", "x", filepath.Join(tc, "missing")}, "no such file"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wd := t.TempDir()
			t.Chdir(wd)
			out, err := sifbench(t, tt.args...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.Empty(t, out)
			if tt.want == "usage:" || strings.HasPrefix(tt.want, "-") {
				left, err := os.ReadDir(wd)
				require.NoError(t, err)
				assert.Empty(t, left, "nothing is written on a bad argument")
			}
		})
	}
}

func TestUsage(t *testing.T) {
	wd := t.TempDir()
	t.Chdir(wd)
	for _, args := range [][]string{nil, {}, {"convert", "a", "b"}, {"wrap", "a", "b"}, {"wrap", "a", "b", "c", "d"},
		{"offset"}, {"offset", "a", "b"}, {"real", "a", "b"}, {"build", "a"}, {"build", "a", "b", "c"}} {
		_, err := sifbench(t, args...)
		require.Error(t, err, "%q", args)
		if len(args) > 0 && args[0] == "convert" {
			assert.EqualError(t, err, `unknown command "convert"`)
		} else {
			assert.EqualError(t, err, usage, "%q", args)
		}
	}
	left, err := os.ReadDir(wd)
	require.NoError(t, err)
	assert.Empty(t, left, "nothing is written on a bad argument")
}

// sifObjects returns the descriptors of the SIF at path, open until the test
// ends, and its launch script.
func sifObjects(t *testing.T, path string) ([]sif.Descriptor, string) {
	t.Helper()
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	t.Cleanup(func() { f.UnloadContainer() })
	ds, err := f.GetDescriptors()
	require.NoError(t, err)
	return ds, f.LaunchScript()
}

// superblock is what a test checks of a squashfs superblock.
type superblock struct {
	inodes uint32
	comp   uint16
	flags  uint16
	level  uint32 // from the compressor options, 0 without them
}

const flagCompressorOptions = 0x0400

// primary returns the primary partition's descriptor and its superblock.
func primary(t *testing.T, path string) (sif.Descriptor, superblock) {
	t.Helper()
	f, err := sif.LoadContainerFromPath(path, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	d, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	fsType, _, arch, err := d.PartitionMetadata()
	require.NoError(t, err)
	require.Equal(t, sif.FsSquash, fsType)
	require.Equal(t, "amd64", arch)
	b := make([]byte, 104)
	_, err = io.ReadFull(d.GetReader(), b)
	require.NoError(t, err)
	require.Equal(t, "hsqs", string(b[:4]))
	sb := superblock{inodes: binary.LittleEndian.Uint32(b[4:]), comp: binary.LittleEndian.Uint16(b[20:]),
		flags: binary.LittleEndian.Uint16(b[24:])}
	if sb.flags&flagCompressorOptions != 0 {
		sb.level = binary.LittleEndian.Uint32(b[98:])
	}
	return d, sb
}

// listing is the tree of a squashfs as `unsquashfs -lln` prints it: type and
// mode, owner, size (directories without) and path, sorted; the root and the
// root left out.
func listing(t *testing.T, path string, off int64) []string {
	t.Helper()
	unsquashfs := testenv.Require(t, "unsquashfs")
	if unsquashfs == nil {
		return nil
	}
	b, err := exec.Command(unsquashfs[0], "-o", strconv.FormatInt(off, 10), "-lln", path).CombinedOutput()
	require.NoError(t, err, "%s", b)
	var out []string
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) < 6 || !strings.HasPrefix(f[5], "squashfs-root/") {
			continue
		}
		if strings.HasPrefix(f[0], "d") {
			f[2] = "-"
		}
		out = append(out, strings.Join([]string{f[0], f[1], f[2], strings.Join(f[5:], " ")}, " "))
	}
	sort.Strings(out)
	return out
}

// TestBuild checks the compressor and level the build flags give the
// squashfs, and the errors of bad flags and inputs.
func TestBuild(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	require.NoError(t, benchlayout.Write(dir, []benchlayout.Layer{func(tw *tar.Writer) error {
		return put(tw, "etc/motd", 0o644, strings.NewReader("hello\n"), 6)
	}}))
	for _, tt := range []struct {
		flags       []string
		comp, level int
	}{
		{nil, 1, 6},
		{[]string{"-comp", "gzip", "-level", "1"}, 1, 1},
		{[]string{"-level", "9"}, 1, 0},
		{[]string{"-comp", "zstd"}, 6, 6},
		{[]string{"-comp", "zstd", "-level", "15"}, 6, 0},
	} {
		t.Run(strings.Join(tt.flags, " "), func(t *testing.T) {
			out := filepath.Join(t.TempDir(), "x.sif")
			_, err := sifbench(t, append(append([]string{"build"}, tt.flags...), dir, out)...)
			require.NoError(t, err)
			_, sb := primary(t, out)
			assert.Equal(t, uint16(tt.comp), sb.comp)
			assert.Equal(t, uint32(tt.level), sb.level)
		})
	}

	t.Run("errors", func(t *testing.T) {
		tmp := t.TempDir()
		out := filepath.Join(tmp, "x.sif")
		var level *singularity.LevelError
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{"-comp", "xz", dir, out}, `unknown compressor "xz"`},
			{[]string{"-level", "10", dir, out}, "gzip compression level must be 0 to 9, got 10"},
			{[]string{"-level", "x", dir, out}, "invalid value"},
			{[]string{filepath.Join(tmp, "missing"), out}, "no such file"},
			{[]string{dir, filepath.Join(tmp, "missing", "x.sif")}, "no such file"},
		} {
			_, err := sifbench(t, append([]string{"build"}, tt.args...)...)
			require.Error(t, err, "%q", tt.args)
			assert.Contains(t, err.Error(), tt.want)
			if strings.Contains(tt.want, "level must") {
				assert.ErrorAs(t, err, &level)
			}
			assert.NoFileExists(t, out)
		}
	})
}

// TestBuildSqfstar checks that -sqfstar packs with sqfstar, which dates the
// root directory when it runs, where the built-in writer keeps the image's
// time.
func TestBuildSqfstar(t *testing.T) {
	progs := testenv.Require(t, "sqfstar", "unsquashfs")
	if progs == nil {
		return
	}
	dir := filepath.Join(t.TempDir(), "layout")
	require.NoError(t, benchlayout.Write(dir, []benchlayout.Layer{func(tw *tar.Writer) error {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755, ModTime: epoch}); err != nil {
			return err
		}
		return put(tw, "etc/motd", 0o644, strings.NewReader("hello\n"), 6)
	}}))
	rootTime := func(flags ...string) time.Time {
		out := filepath.Join(t.TempDir(), "x.sif")
		_, err := sifbench(t, append(append([]string{"build"}, flags...), dir, out)...)
		require.NoError(t, err)
		d, sb := primary(t, out)
		assert.Equal(t, uint16(1), sb.comp)
		cmd := exec.Command(progs[1], "-o", strconv.FormatInt(d.Offset(), 10), "-lln", out)
		cmd.Env = append(os.Environ(), "TZ=UTC")
		b, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", b)
		for _, line := range strings.Split(string(b), "\n") {
			f := strings.Fields(line)
			if len(f) == 6 && f[5] == "squashfs-root" {
				tm, err := time.Parse("2006-01-02 15:04", f[3]+" "+f[4])
				require.NoError(t, err)
				return tm
			}
		}
		t.Fatalf("no root in %s", b)
		return time.Time{}
	}
	assert.Equal(t, epoch.UTC().Truncate(time.Minute), rootTime("-level", "9"))
	assert.WithinDuration(t, time.Now(), rootTime("-sqfstar", "-level", "9"), time.Hour)
}

// smallSquashfs writes a squashfs of one file with the project's writer.
func smallSquashfs(t *testing.T, path string) []byte {
	t.Helper()
	require.NoError(t, squashfs.WriteFile(t.Context(), path, func(w *squashfs.Writer) error {
		return w.Add(t.Context(), squashfs.Entry{Path: "motd", Type: squashfs.TypeRegular, Mode: 0o644, Size: 3,
			Content: strings.NewReader("hi\n")})
	}))
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

// TestWrap checks the objects of the SIF wrap writes, in Apptainer's order,
// and that it closes the squashfs it copies.
func TestWrap(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "layout")
	_, err := sifbench(t, "real", dir, toolchain(t), "bin")
	require.NoError(t, err)
	img, err := benchlayout.Read(dir)
	require.NoError(t, err)
	cf, err := img.RawConfigFile()
	require.NoError(t, err)

	// The squashfs and the SIF, in a directory to check for files left open.
	in := t.TempDir()
	sqfs := filepath.Join(in, "x.sqfs")
	content := smallSquashfs(t, sqfs)
	out := filepath.Join(in, "x.sif")
	left := testenv.FilesLeftOpen(t, in, func() {
		_, err = sifbench(t, "wrap", dir, sqfs, out)
	})
	require.NoError(t, err)
	assert.Empty(t, left)

	ds, script := sifObjects(t, out)
	assert.Equal(t, "#!/usr/bin/env run-singularity\n", script)
	require.Len(t, ds, 3)
	assert.Equal(t, sif.DataDeffile, ds[0].DataType())
	b, err := ds[0].GetData()
	require.NoError(t, err)
	assert.Equal(t, "bootstrap: docker\nfrom: bench/image:latest\n\n", string(b))
	assert.Equal(t, sif.DataGenericJSON, ds[1].DataType())
	assert.Equal(t, "oci-config.json", ds[1].Name())
	b, err = ds[1].GetData()
	require.NoError(t, err)
	assert.Equal(t, cf, b)
	assert.Equal(t, sif.DataPartition, ds[2].DataType())
	fsType, part, arch, err := ds[2].PartitionMetadata()
	require.NoError(t, err)
	assert.Equal(t, sif.FsSquash, fsType)
	assert.Equal(t, sif.PartPrimSys, part)
	assert.Equal(t, "amd64", arch)
	b, err = ds[2].GetData()
	require.NoError(t, err)
	assert.Equal(t, content, b)

	got, err := sifbench(t, "offset", out)
	require.NoError(t, err)
	assert.Equal(t, strconv.FormatInt(ds[2].Offset(), 10)+"\n", got)

	t.Run("errors", func(t *testing.T) {
		tmp := t.TempDir()
		noConfig := filepath.Join(tmp, "no-config")
		require.NoError(t, os.CopyFS(noConfig, os.DirFS(dir)))
		m, err := img.Manifest()
		require.NoError(t, err)
		require.NoError(t, os.Remove(filepath.Join(noConfig, "blobs", m.Config.Digest.Algorithm, m.Config.Digest.Hex)))
		out := filepath.Join(tmp, "x.sif")
		for _, tt := range []struct {
			args []string
			want string
		}{
			{[]string{filepath.Join(tmp, "missing"), sqfs, out}, "no such file"},
			{[]string{noConfig, sqfs, out}, "no such file"},
			{[]string{dir, filepath.Join(tmp, "missing.sqfs"), out}, "no such file"},
			{[]string{dir, sqfs, filepath.Join(tmp, "missing", "x.sif")}, "no such file"},
		} {
			_, err := sifbench(t, append([]string{"wrap"}, tt.args...)...)
			require.Error(t, err, "%q", tt.args)
			assert.Contains(t, err.Error(), tt.want)
			assert.NoFileExists(t, out)
		}
	})
}

// failingWriter fails every write, as a closed standard output does.
type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) {
	return 0, errors.New("write /dev/stdout: broken pipe")
}

func TestOffsetErrors(t *testing.T) {
	tmp := t.TempDir()
	garbled := filepath.Join(tmp, "garbled.sif")
	require.NoError(t, os.WriteFile(garbled, []byte("not a SIF at all, not even close to one"), 0o644))
	noPart := filepath.Join(tmp, "nopart.sif")
	def, err := sif.NewDescriptorInput(sif.DataDeffile, strings.NewReader("bootstrap: docker\n"))
	require.NoError(t, err)
	data, err := sif.NewDescriptorInput(sif.DataPartition, strings.NewReader("data"),
		sif.OptPartitionMetadata(sif.FsRaw, sif.PartData, "amd64"))
	require.NoError(t, err)
	f, err := sif.CreateContainerAtPath(noPart, sif.OptCreateWithDescriptors(def, data))
	require.NoError(t, err)
	require.NoError(t, f.UnloadContainer())
	for _, tt := range []struct {
		path, want string
	}{
		{filepath.Join(tmp, "missing.sif"), "no such file"},
		{garbled, "garbled.sif"},
		{noPart, noPart + " has no primary partition"},
	} {
		out, err := sifbench(t, "offset", tt.path)
		require.Error(t, err, tt.path)
		assert.Contains(t, err.Error(), tt.want)
		assert.Empty(t, out)
	}

	t.Run("output fails", func(t *testing.T) {
		path := filepath.Join(tmp, "x.sqfs")
		smallSquashfs(t, path)
		dir := filepath.Join(tmp, "layout")
		_, err := sifbench(t, "real", dir, toolchain(t), "bin")
		require.NoError(t, err)
		out := filepath.Join(tmp, "x.sif")
		_, err = sifbench(t, "wrap", dir, path, out)
		require.NoError(t, err)
		err = run(t.Context(), []string{"offset", out}, failingWriter{})
		assert.EqualError(t, err, "write /dev/stdout: broken pipe")
	})
}

// TestRealUnreadable checks that real fails on a file it cannot read, run as
// an ordinary user: uid 65534 when the test runs as root, the test's own user
// otherwise.
func TestRealUnreadable(t *testing.T) {
	dir, err := os.MkdirTemp("", "sifbench-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(dir) })
	require.NoError(t, os.Chmod(dir, 0o777))
	bin := os.Args[0]
	var cred *syscall.Credential
	if os.Geteuid() == 0 {
		// The test binary lives in a directory only root may enter; give
		// the ordinary user a copy.
		data, err := os.ReadFile(os.Args[0])
		require.NoError(t, err)
		bin = filepath.Join(dir, "sifbench.test")
		require.NoError(t, os.WriteFile(bin, data, 0o755))
		cred = &syscall.Credential{Uid: 65534, Gid: 65534}
	}
	lib := filepath.Join(dir, "root", "lib")
	require.NoError(t, os.MkdirAll(lib, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "readable"), []byte("ok"), 0o644))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "secret"), []byte("secret"), 0o000))
	out := filepath.Join(dir, "layout")

	cmd := exec.CommandContext(t.Context(), bin, "-test.run=^$")
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), mainEnv+"=real\n"+out+"\n"+filepath.Join(dir, "root")+"\nlib")
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: cred}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err = cmd.Run()
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit, "%s", stderr.String())
	assert.Equal(t, 1, exit.ExitCode())
	assert.Equal(t, "sifbench: open "+filepath.Join(lib, "secret")+": permission denied\n", stderr.String())
	assert.Empty(t, stdout.String())
	assert.NoDirExists(t, out)
}

// TestReal checks the layers of real: one per directory, named by its path
// under the root, owned by root, symlinks kept and FIFOs left out.
func TestReal(t *testing.T) {
	root := t.TempDir()
	lib := filepath.Join(root, "usr", "lib")
	require.NoError(t, os.MkdirAll(filepath.Join(lib, "sub"), 0o750))
	require.NoError(t, os.WriteFile(filepath.Join(lib, "libx.so"), []byte("ELF"), 0o755))
	require.NoError(t, os.Symlink("libx.so", filepath.Join(lib, "libx.so.1")))
	require.NoError(t, syscall.Mkfifo(filepath.Join(lib, "sub", "fifo"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(root, "opt", "go"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "opt", "go", "VERSION"), []byte("go\n"), 0o600))
	if os.Geteuid() == 0 {
		require.NoError(t, filepath.WalkDir(root, func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			return os.Lchown(p, 1234, 1234)
		}))
	}

	dir := filepath.Join(t.TempDir(), "layout")
	var left []string
	var out string
	var err error
	left = testenv.FilesLeftOpen(t, root, func() {
		out, err = sifbench(t, "real", dir, root, "usr/lib", "opt/go")
	})
	require.NoError(t, err)
	assert.Empty(t, out)
	assert.Empty(t, left)

	img, err := benchlayout.Read(dir)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	assert.Equal(t, []string{"PATH=/usr/local/go/bin:/usr/bin:/bin"}, cf.Config.Env)
	assert.Equal(t, []string{"/bin/sh"}, cf.Config.Cmd)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 2)

	es := layerEntries(t, layers[0])
	require.Equal(t, []string{"usr/lib/", "usr/lib/libx.so", "usr/lib/libx.so.1", "usr/lib/sub/"}, names(es))
	for _, e := range es {
		assert.Zero(t, e.uid, e.name)
		assert.Zero(t, e.gid, e.name)
		assert.Empty(t, e.owner, e.name)
	}
	assert.Equal(t, byte(tar.TypeDir), es[0].typ)
	assert.Equal(t, "ELF", string(es[1].content))
	assert.Equal(t, int64(0o755), es[1].mode)
	assert.Equal(t, byte(tar.TypeSymlink), es[2].typ)
	assert.Equal(t, "libx.so", es[2].link)
	assert.Equal(t, int64(0o750), es[3].mode&0o777)

	es = layerEntries(t, layers[1])
	require.Equal(t, []string{"opt/go/", "opt/go/VERSION"}, names(es))
	assert.Equal(t, "go\n", string(es[1].content))
	assert.Equal(t, int64(0o600), es[1].mode)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	require.NoError(t, os.Mkdir(filepath.Join(root, "run"), 0o755))
	l, err := net.Listen("unix", filepath.Join(root, "run", "sock"))
	require.NoError(t, err)
	defer l.Close()
	require.NoError(t, os.Mkdir(filepath.Join(root, "srv"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(root, "srv", "a.bin"), make([]byte, 2<<20), 0o644))
	l2, err := net.Listen("unix", filepath.Join(root, "srv", "sock"))
	require.NoError(t, err)
	defer l2.Close()
	for _, tt := range []struct {
		name, layout, want string
		dirs               []string
	}{
		{"missing directory", filepath.Join(t.TempDir(), "layout"), "no such file", []string{"usr/lib", "usr/share"}},
		{"layout under a file", filepath.Join(file, "layout"), "not a directory", []string{"opt/go"}},
		{"socket", filepath.Join(t.TempDir(), "layout"), "sockets not supported", []string{"run"}},
		// A fault deep in a layer, after its first MB.
		{"socket after 2 MB", filepath.Join(t.TempDir(), "layout"), "sockets not supported", []string{"srv"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := sifbench(t, append([]string{"real", tt.layout, root}, tt.dirs...)...)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.want)
			assert.NoDirExists(t, tt.layout)
		})
	}
}
