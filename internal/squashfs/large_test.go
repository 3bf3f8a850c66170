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

func crcOf(t *testing.T, r io.Reader) uint32 {
	h := crc32.New(crc32.MakeTable(crc32.Castagnoli))
	_, err := io.Copy(h, r)
	require.NoError(t, err)
	return h.Sum32()
}

// TestLargeFilesAndImage writes a sparse file over 4 GiB, a dense file that
// pushes the image past 4 GiB and a file whose blocks start beyond 4 GiB,
// then reads them back with unsquashfs, sqfs2tar and the kernel.
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
			f, err := os.Open(filepath.Join(mnt, "sparse"))
			require.NoError(t, err)
			defer f.Close()
			assert.Equal(t, want["sparse"], crcOf(t, f), "sparse, through the kernel")
		}
	}
}
