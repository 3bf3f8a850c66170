package squashfs_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
)

// failingSink is a sink whose write number failAt (counting from 1) fails; 0 never fails.
type failingSink struct {
	sink
	mu     sync.Mutex
	writes int
	failAt int
	err    error
}

func (s *failingSink) WriteAt(p []byte, off int64) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	if s.writes == s.failAt {
		return 0, s.err
	}
	return s.sink.WriteAt(p, off)
}

// faultTree adds a tree with every kind of write: data blocks of a file spanning blocks (random, so that
// they stay large), a fragment of small tails, a directory, a symlink and an xattr; it returns the first
// error of Add or Close.
func faultTree(t *testing.T, w *squashfs.Writer) error {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	big := make([]byte, 2*4096+100)
	for i := range big {
		big[i] = byte(r.Uint32())
	}
	entries := []squashfs.Entry{
		{Path: "d", Type: squashfs.TypeDir, Mode: 0o755},
		{Path: "d/big", Mode: 0o644, Size: int64(len(big)), Content: bytes.NewReader(big)},
		{Path: "d/small", Mode: 0o644, Size: 5, Content: bytes.NewReader([]byte("small")), Xattrs: map[string]string{"user.a": "b"}},
		{Path: "d/link", Type: squashfs.TypeSymlink, Linkname: "small"},
	}
	for _, e := range entries {
		if err := w.Add(t.Context(), e); err != nil {
			return err
		}
	}
	return w.Close(t.Context())
}

// TestWriteFaults fails each write of an image in turn, data blocks, fragment, tables and superblock: the
// failure always comes back, from Add or from Close, wrapping the writer's error.
func TestWriteFaults(t *testing.T) {
	counted := &failingSink{}
	w, err := squashfs.NewWriter(counted, squashfs.WithBlockSize(4096), squashfs.WithWorkers(2))
	require.NoError(t, err)
	require.NoError(t, faultTree(t, w))
	total := counted.writes
	require.Greater(t, total, 5, "the tree takes several writes")

	for n := 1; n <= total; n++ {
		disk := errors.New("disk full")
		s := &failingSink{failAt: n, err: disk}
		w, err := squashfs.NewWriter(s, squashfs.WithBlockSize(4096), squashfs.WithWorkers(2))
		require.NoError(t, err)
		err = faultTree(t, w)
		require.ErrorIs(t, err, disk, "write %d of %d failed unnoticed", n, total)
	}
}

// TestIDLimit: an image holds at most 65,535 distinct owner IDs (users and groups together), the count its
// superblock can hold; one more fails Close with ErrTooManyIDs.
func TestIDLimit(t *testing.T) {
	for _, tt := range []struct {
		ids     int
		wantErr error
	}{{65535, nil}, {65536, squashfs.ErrTooManyIDs}} {
		t.Run(strconv.Itoa(tt.ids), func(t *testing.T) {
			w, err := squashfs.NewWriter(&sink{}, squashfs.WithWorkers(1))
			require.NoError(t, err)
			// The root takes ID 0 as user and group; each FIFO brings two more.
			next := uint32(1)
			for next < uint32(tt.ids) {
				e := squashfs.Entry{Path: "p" + strconv.Itoa(int(next)), Type: squashfs.TypeFIFO, Mode: 0o644, UID: next, GID: min(next+1, uint32(tt.ids-1))}
				require.NoError(t, w.Add(t.Context(), e))
				next += 2
			}
			err = w.Close(t.Context())
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
		})
	}
}

// imageFrags opens the image at p and returns its fragment table and bytes used.
func imageFrags(t *testing.T, p string) ([]sqFrag, uint64) {
	t.Helper()
	f, err := os.Open(p)
	require.NoError(t, err)
	defer f.Close()
	img, err := openImage(f)
	require.NoError(t, err)
	return img.frags, img.bytesUsed
}

// TestFragmentPacking: file tails share a fragment block up to exactly the block size, and one byte more
// starts another; every content reads back whole.
func TestFragmentPacking(t *testing.T) {
	const bs = 4096
	for _, tt := range []struct {
		name      string
		sizes     []int
		wantFrags int
	}{
		{name: "tails filling one block exactly", sizes: []int{2048, 2048}, wantFrags: 1},
		{name: "one byte over the block", sizes: []int{2048, 2049}, wantFrags: 2},
		{name: "a block and a tail", sizes: []int{bs + 1, bs - 1}, wantFrags: 1},
		{name: "whole blocks only", sizes: []int{bs, 2 * bs}, wantFrags: 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			r := rand.New(rand.NewPCG(3, 4))
			var specs []spec
			for i, n := range tt.sizes {
				data := make([]byte, n)
				for j := range data {
					data[j] = byte(r.Uint32())
				}
				specs = append(specs, spec{e: squashfs.Entry{Path: "f" + strconv.Itoa(i), Mode: 0o644}, data: data})
			}
			p := writeImage(t, specs, squashfs.WithBlockSize(bs), squashfs.WithDeduplication(false))
			frags, _ := imageFrags(t, p)
			assert.Len(t, frags, tt.wantFrags)
			nodes, err := readImageFile(p)
			require.NoError(t, err)
			for _, s := range specs {
				require.Equal(t, s.data, nodes[s.e.Path].Content, s.e.Path)
			}
		})
	}
}

// TestZeroBlocksTakeNoSpace: a block of zeros is stored as a hole, not as data, and reads back as zeros.
func TestZeroBlocksTakeNoSpace(t *testing.T) {
	const bs = 4096
	noise := noiseBytes(5, 8*bs)
	zeros := make([]byte, 8*bs)
	zeros[len(zeros)-1] = 1 // not all of it: the last block is data
	_, withNoise := imageFrags(t, writeImage(t, []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644}, data: noise}}, squashfs.WithBlockSize(bs)))
	p := writeImage(t, []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644}, data: zeros}}, squashfs.WithBlockSize(bs))
	_, withZeros := imageFrags(t, p)
	assert.Less(t, withZeros, withNoise-6*bs, "seven blocks of zeros take no room")
	nodes, err := readImageFile(p)
	require.NoError(t, err)
	assert.Equal(t, zeros, nodes["f"].Content)
}

// TestWriteFailsMidFile fails the first data block's write while a file of many blocks is being added: Add of
// that file returns the failure itself, wrapped, and so does Close.
func TestWriteFailsMidFile(t *testing.T) {
	const bs = 4096
	big := noiseBytes(3, 32*bs)
	disk := errors.New("disk full")
	w, err := squashfs.NewWriter(&failingSink{failAt: 1, err: disk}, squashfs.WithBlockSize(bs), squashfs.WithWorkers(1))
	require.NoError(t, err)
	err = w.Add(t.Context(), squashfs.Entry{Path: "big", Mode: 0o644, Size: int64(len(big)), Content: bytes.NewReader(big)})
	require.ErrorIs(t, err, disk)
	require.ErrorIs(t, w.Close(t.Context()), disk)
}

// TestManyRejectedEntries rejects more files cut short in their blocks than the writer has blocks in flight:
// each gives its blocks back, so the files after them are written as if the rejected ones had never come.
func TestManyRejectedEntries(t *testing.T) {
	const bs = 4096
	write := func(rejected int) []byte {
		ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
		defer cancel()
		var out sink
		w, err := squashfs.NewWriter(&out, squashfs.WithBlockSize(bs), squashfs.WithWorkers(1))
		require.NoError(t, err)
		for i := range rejected {
			short := squashfs.Entry{Path: "short" + strconv.Itoa(i), Mode: 0o644, Size: 4 * bs,
				Content: bytes.NewReader(bytes.Repeat([]byte{byte(i + 10)}, 2*bs+1))}
			require.ErrorIs(t, w.Add(ctx, short), squashfs.ErrSizeMismatch)
		}
		for i, size := range []int{3*bs + 7, 2 * bs} {
			e := squashfs.Entry{Path: "good" + strconv.Itoa(i), Mode: 0o644, Size: int64(size),
				Content: bytes.NewReader(bytes.Repeat([]byte{byte(i + 1)}, size))}
			require.NoError(t, w.Add(ctx, e), "after %d rejected entries", rejected)
		}
		require.NoError(t, w.Close(ctx))
		return out.b
	}
	want := write(0)
	for _, rejected := range []int{1, 20} {
		assert.True(t, bytes.Equal(want, write(rejected)), "%d rejected entries left a trace", rejected)
	}
}

// noiseBytes returns n bytes of seeded noise, which compression cannot shrink.
func noiseBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed+1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}
