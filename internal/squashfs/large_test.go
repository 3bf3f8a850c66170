package squashfs_test

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"testing"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// blockStream is a deterministic stream of size bytes in blocks of bs: block
// i is zero unless i%every == 0, else random bytes stamped with i.
type blockStream struct {
	size, off  int64
	bs         int64
	every      int64
	zero, fill []byte
}

func newBlockStream(size int64, bs, every int) *blockStream {
	fill := make([]byte, bs)
	r := rand.New(rand.NewPCG(9, 9))
	for i := range fill {
		fill[i] = byte(r.Uint32())
	}
	return &blockStream{size: size, bs: int64(bs), every: int64(every), zero: make([]byte, bs), fill: fill}
}

func (s *blockStream) Read(p []byte) (int, error) {
	if s.off >= s.size {
		return 0, io.EOF
	}
	i, in := s.off/s.bs, s.off%s.bs
	src := s.zero
	if i%s.every == 0 {
		binary.LittleEndian.PutUint64(s.fill, uint64(i))
		src = s.fill
	}
	n := copy(p, src[in:min(s.bs, in+s.size-s.off)])
	s.off += int64(n)
	return n, nil
}

// WriteTo hands the rest of the stream to w without copying it, so that
// computing the expected checksums costs little under the race detector.
func (s *blockStream) WriteTo(w io.Writer) (int64, error) {
	var total int64
	for s.off < s.size {
		i, in := s.off/s.bs, s.off%s.bs
		src := s.zero
		if i%s.every == 0 {
			binary.LittleEndian.PutUint64(s.fill, uint64(i))
			src = s.fill
		}
		n, err := w.Write(src[in:min(s.bs, in+s.size-s.off)])
		s.off += int64(n)
		total += int64(n)
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

func crcOf(t *testing.T, r io.Reader) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	_, err := io.Copy(h, r)
	require.NoError(t, err)
	return h.Sum32()
}

// TestLargeFilesAndImage writes a sparse file over 4 GiB, a dense file that
// pushes the image past 4 GiB and a file whose blocks start beyond 4 GiB,
// then reads them back with unsquashfs, sqfs2tar and the kernel. Under the
// race detector every byte Go copies costs, so the expected checksums are
// computed without copying, sqfs2tar's output is read without a buffer in
// between, and the kernel reads the big files only where offsets matter.
func TestLargeFilesAndImage(t *testing.T) {
	bins := testenv.Require(t, "unsquashfs", "sqfs2tar")
	const bs = 128 << 10
	const gib = int64(1) << 30
	files := []struct {
		name  string
		size  int64
		every int
	}{
		{name: "sparse", size: 4*gib + 3*bs + 1234, every: 4096},
		{name: "dense", size: 4*gib + 77, every: 1},
		{name: "after", size: 2*bs + 5, every: 1},
	}
	want := map[string]uint32{}
	for _, f := range files {
		want[f.name] = crcOf(t, newBlockStream(f.size, bs, f.every))
	}
	img := filepath.Join(t.TempDir(), "large.sqfs")
	// Stored blocks keep the test fast; offsets and sizes are what matter.
	err := squashfs.WriteFile(t.Context(), img, func(w *squashfs.Writer) error {
		for _, f := range files {
			e := squashfs.Entry{Path: f.name, Mode: 0o644, Size: f.size, Content: newBlockStream(f.size, bs, f.every)}
			if err := w.Add(t.Context(), e); err != nil {
				return err
			}
		}
		return nil
	}, squashfs.WithCompressionLevel(0), squashfs.WithDeduplication(false))
	require.NoError(t, err)
	require.Greater(t, sizeOf(t, img), 4*gib+bs)

	out, err := exec.CommandContext(t.Context(), bins[0], "-lln", img).Output()
	require.NoError(t, err, "unsquashfs -lln")
	for _, f := range files {
		m := regexp.MustCompile(`(?m)^-rw-r--r-- 0/0\s+(\d+) .* squashfs-root/` + f.name + `$`).FindSubmatch(out)
		require.NotNil(t, m, "%s missing from:\n%s", f.name, out)
		assert.Equal(t, strconv.FormatInt(f.size, 10), string(m[1]), f.name)
	}

	got := map[string]uint32{}
	readSqfs2tar(t, bins[1], img, func(hdr *tar.Header, r io.Reader) {
		if hdr.Typeflag == tar.TypeReg {
			got[hdr.Name] = crcOf(t, r)
		}
	})
	assert.Equal(t, want, got, "contents through sqfs2tar")

	if os.Geteuid() == 0 {
		if _, err := os.Stat("/dev/loop-control"); err == nil {
			mnt := t.TempDir()
			out, err := exec.CommandContext(t.Context(), "mount", "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput()
			require.NoError(t, err, "mount: %s", out)
			defer func() {
				out, err := exec.Command("umount", mnt).CombinedOutput()
				assert.NoError(t, err, "umount: %s", out)
			}()
			b, err := os.ReadFile(filepath.Join(mnt, "after"))
			require.NoError(t, err)
			assert.Equal(t, want["after"], crcOf(t, bytes.NewReader(b)), "after, through the kernel")
			// sqfs2tar read the big files whole; the kernel reads the places
			// where offsets could go wrong: the start, the blocks around
			// the second data block of the sparse file, the 4 GiB mark
			// and the tail.
			for _, f := range files[:2] {
				for _, off := range []int64{0, 4096*bs - 100, 4*gib - bs/2, f.size - 3*bs - 1000} {
					checkWindow(t, filepath.Join(mnt, f.name), newBlockStream(f.size, bs, f.every), off, 4*bs)
				}
			}
		}
	}
}

// checkWindow compares up to n bytes of file p at off with the same bytes of s.
func checkWindow(t *testing.T, p string, s *blockStream, off int64, n int) {
	t.Helper()
	want := make([]byte, min(int64(n), s.size-off))
	s.off = off
	_, err := io.ReadFull(s, want)
	require.NoError(t, err)
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	got := make([]byte, len(want))
	_, err = f.ReadAt(got, off)
	require.NoError(t, err, "%s at %d", p, off)
	assert.True(t, bytes.Equal(want, got), "%s at %d, through the kernel: content differs", p, off)
}
