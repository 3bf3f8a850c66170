package squashfs_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

// compressionCases covers each compressor with and without options; the
// costlier tests take the cases marked for them, to keep the race-enabled
// suite short.
var compressionCases = []struct {
	name  string
	comp  squashfs.Compressor
	level int
	// wantLevel is the level unsquashfs -s reports from the compressor
	// options, or 0 when none are written because the level is the default.
	wantLevel int
	// roundTrip and readBack pick the case for the independent reader and
	// for unsquashfs and squashfuse.
	roundTrip, readBack bool
}{
	{name: "gzip default level", comp: squashfs.Gzip, level: squashfs.DefaultCompressionLevel, wantLevel: 6, readBack: true},
	{name: "gzip level 9", comp: squashfs.Gzip, level: 9},
	{name: "gzip level 1", comp: squashfs.Gzip, level: 1, wantLevel: 1},
	{name: "zstd level 3", comp: squashfs.Zstd, level: 3, wantLevel: 3, roundTrip: true, readBack: true},
	{name: "zstd level 15", comp: squashfs.Zstd, level: 15, readBack: true},
	{name: "zstd level 9", comp: squashfs.Zstd, level: 9, wantLevel: 9, roundTrip: true},
	{name: "zstd level 19", comp: squashfs.Zstd, level: 19, wantLevel: 19},
}

func TestCompressionRoundTrip(t *testing.T) {
	for _, tt := range compressionCases {
		if !tt.roundTrip {
			continue // gzip is TestRoundTrip's; TestCompressionReadBack has zstd's strongest encoder
		}
		t.Run(tt.name, func(t *testing.T) {
			specs := randomTree(11, 150, 16<<10)
			img := writeImage(t, specs, squashfs.WithBlockSize(16<<10), squashfs.WithCompression(tt.comp, tt.level))
			got, err := readImageFile(img)
			require.NoError(t, err)
			newModel(specs, newestTime(specs)).check(t, got)
		})
	}
}

// unsquashfs reports the compressor and the level from the options, then
// extracts the image; squashfuse mounts it.
func TestCompressionReadBack(t *testing.T) {
	for _, tt := range compressionCases {
		if !tt.readBack {
			continue // differs from a case read back only in the level
		}
		t.Run(tt.name, func(t *testing.T) {
			specs := richTree(128 << 10)
			img := writeImage(t, specs, squashfs.WithCompression(tt.comp, tt.level))
			m := newModel(specs, newestTime(specs))
			t.Run("unsquashfs", func(t *testing.T) {
				bin := testenv.Require(t, "unsquashfs")[0]
				out, err := exec.CommandContext(t.Context(), bin, "-s", img).CombinedOutput()
				require.NoError(t, err, "unsquashfs -s: %s", out)
				assert.Contains(t, string(out), "Compression "+tt.comp.String()+"\n")
				if tt.wantLevel != 0 {
					assert.Contains(t, string(out), fmt.Sprintf("\tcompression-level %d\n", tt.wantLevel))
				} else {
					assert.NotContains(t, string(out), "compression-level")
				}
				testenv.RequireRoot(t)
				dest := filepath.Join(t.TempDir(), "root")
				out, err = exec.CommandContext(t.Context(), bin, "-no-progress", "-d", dest, img).CombinedOutput()
				require.NoError(t, err, "unsquashfs -d: %s", out)
				compareDir(t, dest, m, compareOptions{})
			})
			t.Run("squashfuse", func(t *testing.T) {
				bins := testenv.Require(t, "squashfuse", "fusermount3")
				requireDevice(t, "/dev/fuse")
				mnt := t.TempDir()
				out, err := exec.CommandContext(t.Context(), bins[0], img, mnt).CombinedOutput()
				require.NoError(t, err, "squashfuse: %s", out)
				t.Cleanup(func() {
					out, err := exec.Command(bins[1], "-u", mnt).CombinedOutput()
					assert.NoError(t, err, "fusermount3 -u: %s", out)
				})
				compareDir(t, mnt, m, compareOptions{xattrPrefix: "user.", distinctInodes: true})
			})
		})
	}
}

// The compressor options after the superblock are byte for byte those
// mksquashfs writes for the same compressor and level.
func TestCompressorOptionsMatchMksquashfs(t *testing.T) {
	bin := testenv.Require(t, "mksquashfs")[0]
	src := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(src, "f"), []byte(strings.Repeat("squash ", 1000)), 0o644))
	for _, tt := range compressionCases {
		t.Run(tt.name, func(t *testing.T) {
			ref := filepath.Join(t.TempDir(), "ref.sqfs")
			args := []string{src, ref, "-noappend", "-no-progress", "-comp", tt.comp.String(), "-Xcompression-level", fmt.Sprint(tt.level)}
			out, err := exec.CommandContext(t.Context(), bin, args...).CombinedOutput()
			require.NoError(t, err, "mksquashfs: %s", out)
			want := superblockAndOptions(t, ref)
			got := superblockAndOptions(t, writeImage(t, []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644}, data: []byte("x")}},
				squashfs.WithCompression(tt.comp, tt.level)))
			assert.Equal(t, want.compressor, got.compressor, "compressor id")
			assert.Equal(t, want.hasOptions, got.hasOptions, "compressor options flag")
			assert.Equal(t, want.options, got.options, "compressor options")
		})
	}
}

type headInfo struct {
	compressor uint16
	hasOptions bool
	options    []byte
}

func superblockAndOptions(t *testing.T, p string) headInfo {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	h := headInfo{compressor: le16(b[20:]), hasOptions: le16(b[24:])&0x0400 != 0}
	if h.hasOptions {
		n := le16(b[96:])
		require.NotZero(t, n&0x8000, "options block stored uncompressed")
		h.options = bytes.Clone(b[96 : 98+int(n&0x7fff)])
	}
	return h
}

// TestOptionLimits: every option at its limits is accepted, and one beyond refused.
func TestOptionLimits(t *testing.T) {
	for _, tt := range []struct {
		name string
		opt  squashfs.Option
		ok   bool
	}{
		{"gzip level 0", squashfs.WithCompression(squashfs.Gzip, 0), true},
		{"gzip level 9", squashfs.WithCompression(squashfs.Gzip, 9), true},
		{"gzip level 10", squashfs.WithCompression(squashfs.Gzip, 10), false},
		{"gzip level -1", squashfs.WithCompression(squashfs.Gzip, -1), false},
		{"zstd level 0", squashfs.WithCompression(squashfs.Zstd, 0), true},
		{"zstd level 22", squashfs.WithCompression(squashfs.Zstd, 22), true},
		{"zstd level 23", squashfs.WithCompression(squashfs.Zstd, 23), false},
		{"zstd level -1", squashfs.WithCompression(squashfs.Zstd, -1), false},
		{"compression level 0", squashfs.WithCompressionLevel(0), true},
		{"compression level 9", squashfs.WithCompressionLevel(9), true},
		{"compression level 10", squashfs.WithCompressionLevel(10), false},
		{"compression level -1", squashfs.WithCompressionLevel(-1), false},
		{"one worker", squashfs.WithWorkers(1), true},
		{"no workers", squashfs.WithWorkers(0), false},
		{"negative workers", squashfs.WithWorkers(-1), false},
		{"block size 4096", squashfs.WithBlockSize(4096), true},
		{"block size 2048", squashfs.WithBlockSize(2048), false},
		{"block size 4095", squashfs.WithBlockSize(4095), false},
		{"block size 1 MiB", squashfs.WithBlockSize(1 << 20), true},
		{"block size 2 MiB", squashfs.WithBlockSize(2 << 20), false},
		{"block size not a power of two", squashfs.WithBlockSize(12 << 10), false},
		{"nil logger", squashfs.WithLogger(nil), false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			// One worker, so that the zstd levels allocate one encoder each; a workers row overrides it.
			w, err := squashfs.NewWriter(&sink{}, squashfs.WithWorkers(1), tt.opt)
			if !tt.ok {
				require.Error(t, err)
				assert.Nil(t, w)
				return
			}
			require.NoError(t, err)
			require.NoError(t, w.Close(t.Context()))
		})
	}
}

func TestWithCompressionRejects(t *testing.T) {
	for _, opt := range []squashfs.Option{
		squashfs.WithCompression(squashfs.Gzip, 10), squashfs.WithCompression(squashfs.Gzip, -1),
		squashfs.WithCompression(squashfs.Zstd, 23), squashfs.WithCompression(squashfs.Compressor(2), 1),
	} {
		_, err := squashfs.NewWriter(&sink{}, opt)
		assert.Error(t, err)
	}
}

// TestUncompressedFlags: an image written at level 0 says in its superblock that inodes, data, fragments,
// xattrs and IDs are stored uncompressed; at any other level it says none of that.
func TestUncompressedFlags(t *testing.T) {
	const uncompressed = 0x0001 | 0x0002 | 0x0008 | 0x0100 | 0x0800
	for _, tt := range []struct {
		comp  squashfs.Compressor
		level int
		want  uint16
	}{
		{comp: squashfs.Gzip, level: 0, want: uncompressed},
		{comp: squashfs.Gzip, level: 1},
		{comp: squashfs.Zstd, level: 0, want: uncompressed},
		{comp: squashfs.Zstd, level: 1},
	} {
		t.Run(fmt.Sprintf("%v-%d", tt.comp, tt.level), func(t *testing.T) {
			specs := []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644, Xattrs: map[string]string{"user.a": "b"}}, data: []byte("content")}}
			img, err := os.ReadFile(writeImage(t, specs, squashfs.WithCompression(tt.comp, tt.level)))
			require.NoError(t, err)
			flags := uint16(img[24]) | uint16(img[25])<<8
			assert.Equal(t, tt.want, flags&uncompressed, "flags %#04x", flags)
		})
	}
}
