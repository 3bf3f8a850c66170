package squashfs_test

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strconv"
	"sync"
	"testing"

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
			w, err := squashfs.NewWriter(&sink{})
			require.NoError(t, err)
			// The root takes ID 0 as user and group; each directory brings two more.
			next := uint32(1)
			for next < uint32(tt.ids) {
				e := squashfs.Entry{Path: "d" + strconv.Itoa(int(next)), Type: squashfs.TypeDir, Mode: 0o755, UID: next, GID: min(next+1, uint32(tt.ids-1))}
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
