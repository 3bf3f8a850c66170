package squashfs_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAddRejects(t *testing.T) {
	existing := []spec{
		{e: squashfs.Entry{Path: "dir", Type: squashfs.TypeDir, Mode: 0o755}},
		{e: squashfs.Entry{Path: "file"}, data: []byte("abc")},
		{e: squashfs.Entry{Path: "implied/child", Type: squashfs.TypeFIFO}},
	}
	tests := []struct {
		name    string
		entry   squashfs.Entry
		wantErr error
	}{
		{name: "empty path", entry: squashfs.Entry{Path: "", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "absolute", entry: squashfs.Entry{Path: "/etc", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "dot dot", entry: squashfs.Entry{Path: "dir/../etc", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "dot element", entry: squashfs.Entry{Path: "./etc", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "trailing slash", entry: squashfs.Entry{Path: "etc/", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "double slash", entry: squashfs.Entry{Path: "a//b", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "NUL", entry: squashfs.Entry{Path: "a\x00b", Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "name too long", entry: squashfs.Entry{Path: strings.Repeat("x", 257), Type: squashfs.TypeDir}, wantErr: squashfs.ErrInvalidPath},
		{name: "duplicate file", entry: squashfs.Entry{Path: "file", Type: squashfs.TypeFIFO}, wantErr: squashfs.ErrDuplicatePath},
		{name: "duplicate dir", entry: squashfs.Entry{Path: "dir", Type: squashfs.TypeDir}, wantErr: squashfs.ErrDuplicatePath},
		{name: "file over implied dir", entry: squashfs.Entry{Path: "implied", Type: squashfs.TypeFIFO}, wantErr: squashfs.ErrDuplicatePath},
		{name: "below a file", entry: squashfs.Entry{Path: "file/x", Type: squashfs.TypeFIFO}, wantErr: squashfs.ErrNotDirectory},
		{name: "deep below a file", entry: squashfs.Entry{Path: "file/x/y", Type: squashfs.TypeFIFO}, wantErr: squashfs.ErrNotDirectory},
		{name: "root as hardlink", entry: squashfs.Entry{Path: ".", Type: squashfs.TypeHardlink, Linkname: "file"}, wantErr: squashfs.ErrInvalidEntry},
		{name: "root as file", entry: squashfs.Entry{Path: ".", Type: squashfs.TypeFIFO}, wantErr: squashfs.ErrInvalidEntry},
		{name: "unknown type", entry: squashfs.Entry{Path: "x", Type: 99}, wantErr: squashfs.ErrInvalidEntry},
		{name: "negative size", entry: squashfs.Entry{Path: "x", Size: -1}, wantErr: squashfs.ErrInvalidEntry},
		{name: "no content", entry: squashfs.Entry{Path: "x", Size: 1}, wantErr: squashfs.ErrInvalidEntry},
		{name: "empty symlink", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeSymlink}, wantErr: squashfs.ErrInvalidEntry},
		{name: "symlink target over 4095 bytes", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeSymlink, Linkname: strings.Repeat("t", 4096)}, wantErr: squashfs.ErrInvalidEntry},
		{name: "NUL in symlink", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeSymlink, Linkname: "a\x00"}, wantErr: squashfs.ErrInvalidEntry},
		{name: "major too big", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeCharDevice, Devmajor: 4096}, wantErr: squashfs.ErrInvalidEntry},
		{name: "minor too big", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeBlockDevice, Devminor: 1 << 20}, wantErr: squashfs.ErrInvalidEntry},
		{name: "xattr namespace", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"system.posix_acl_access": "a"}}, wantErr: squashfs.ErrXattr},
		{name: "xattr without name", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"user.": "a"}}, wantErr: squashfs.ErrXattr},
		{name: "xattr name over 255 bytes", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"user." + strings.Repeat("n", 251): "a"}}, wantErr: squashfs.ErrXattr},
		{name: "xattr value over 64 KiB", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"user.v": strings.Repeat("v", 64<<10+1)}}, wantErr: squashfs.ErrXattr},
		{name: "xattrs over 128 KiB", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"user.a": strings.Repeat("v", 64<<10), "user.b": strings.Repeat("v", 64<<10)}}, wantErr: squashfs.ErrXattr},
		{name: "more than 128 xattrs", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: manyXattrs(129)}, wantErr: squashfs.ErrXattr},
		{name: "hardlink to directory", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeHardlink, Linkname: "dir"}, wantErr: squashfs.ErrHardlinkTarget},
		{name: "hardlink to root", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeHardlink, Linkname: "."}, wantErr: squashfs.ErrHardlinkTarget},
		{name: "hardlink escaping", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeHardlink, Linkname: "../etc/passwd"}, wantErr: squashfs.ErrHardlinkTarget},
		{name: "short content", entry: squashfs.Entry{Path: "x", Size: 10, Content: strings.NewReader("abc")}, wantErr: squashfs.ErrSizeMismatch},
		{name: "long content", entry: squashfs.Entry{Path: "x", Size: 2, Content: strings.NewReader("abc")}, wantErr: squashfs.ErrSizeMismatch},
		{name: "failing content", entry: squashfs.Entry{Path: "x", Size: 10, Content: iotest.ErrReader(io.ErrClosedPipe)}, wantErr: io.ErrClosedPipe},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := squashfs.NewWriter(&sink{})
			require.NoError(t, err)
			defer w.Close(t.Context())
			for _, s := range existing {
				require.NoError(t, w.Add(t.Context(), s.entry()))
			}
			err = w.Add(t.Context(), tt.entry)
			require.ErrorIs(t, err, tt.wantErr)
			var ee *squashfs.EntryError
			require.ErrorAs(t, err, &ee)
			assert.Equal(t, tt.entry.Path, ee.Path)
		})
	}
}

// sink is an io.WriterAt that keeps what is written in memory.
type sink struct{ b []byte }

func (s *sink) WriteAt(p []byte, off int64) (int, error) {
	if end := int(off) + len(p); end > len(s.b) {
		s.b = append(s.b, make([]byte, end-len(s.b))...)
	}
	return copy(s.b[off:], p), nil
}

func TestCloseRejectsMissingHardlinkTargets(t *testing.T) {
	tests := []struct {
		name  string
		links map[string]string
	}{
		{name: "missing", links: map[string]string{"a": "nothing"}},
		{name: "cycle", links: map[string]string{"a": "b", "b": "a"}},
		{name: "self", links: map[string]string{"a": "a"}},
		{name: "directory added later", links: map[string]string{"a": "d"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, err := squashfs.NewWriter(&sink{})
			require.NoError(t, err)
			for p, target := range tt.links {
				require.NoError(t, w.Add(t.Context(), squashfs.Entry{Path: p, Type: squashfs.TypeHardlink, Linkname: target}))
			}
			require.NoError(t, w.Add(t.Context(), squashfs.Entry{Path: "d", Type: squashfs.TypeDir}))
			err = w.Close(t.Context())
			require.ErrorIs(t, err, squashfs.ErrHardlinkTarget)
			require.ErrorIs(t, w.Close(t.Context()), squashfs.ErrClosed)
			require.ErrorIs(t, w.Add(t.Context(), squashfs.Entry{Path: "z", Type: squashfs.TypeDir}), squashfs.ErrClosed)
		})
	}
}

// A rejected entry leaves no trace: the image is byte for byte the image
// written without it, even when part of its content had been written.
func TestRejectedEntryLeavesNoTrace(t *testing.T) {
	const bs = 4096
	good := randomTree(3, 80, bs)
	bad := []squashfs.Entry{
		{Path: "bad/short", Size: 10 * bs, Content: io.LimitReader(bytes.NewReader(bytes.Repeat([]byte{7}, 10*bs)), 6*bs+5)},
		{Path: "bad/long", Size: 3*bs + 1, Content: bytes.NewReader(bytes.Repeat([]byte{9}, 4*bs))},
		{Path: "bad/failing", Size: 5 * bs, Content: io.MultiReader(bytes.NewReader(bytes.Repeat([]byte{1}, 3*bs)), iotest.ErrReader(io.ErrUnexpectedEOF))},
	}
	write := func(withBad bool) []byte {
		var out sink
		w, err := squashfs.NewWriter(&out, squashfs.WithBlockSize(bs), squashfs.WithWorkers(2))
		require.NoError(t, err)
		for i, s := range good {
			if withBad && i%30 == 0 {
				require.Error(t, w.Add(t.Context(), bad[(i/30)%len(bad)]))
			}
			require.NoError(t, w.Add(t.Context(), s.entry()))
		}
		require.NoError(t, w.Close(t.Context()))
		return out.b
	}
	want, got := write(false), write(true)
	require.Equal(t, len(want), len(got))
	require.True(t, bytes.Equal(want, got), "images differ")
}

func TestAddCancelled(t *testing.T) {
	w, err := squashfs.NewWriter(&sink{}, squashfs.WithBlockSize(4096))
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	err = w.Add(ctx, squashfs.Entry{Path: "f", Size: 1 << 20, Content: bytes.NewReader(make([]byte, 1<<20))})
	require.ErrorIs(t, err, context.Canceled)
	require.NoError(t, w.Close(t.Context()))
}

func TestDeduplication(t *testing.T) {
	const bs = 4096
	data := make([]byte, 20*bs+7)
	for i := range data {
		data[i] = byte(i * i >> 3)
	}
	var specs []spec
	for i := range 4 {
		specs = append(specs, spec{e: squashfs.Entry{Path: string(rune('a' + i)), Mode: 0o644}, data: data})
	}
	withDedup := writeImage(t, specs, squashfs.WithBlockSize(bs))
	without := writeImage(t, specs, squashfs.WithBlockSize(bs), squashfs.WithDeduplication(false))
	for _, p := range []string{withDedup, without} {
		got, err := readImageFile(p)
		require.NoError(t, err)
		newModel(specs, 0).check(t, got)
	}
	assert.Less(t, sizeOf(t, withDedup)*2, sizeOf(t, without), "deduplicated image should be much smaller")
}

func TestWriteFileLeavesNothingOnError(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "out.sqfs")
	require.NoError(t, os.WriteFile(p, []byte("old"), 0o644))
	boom := errors.New("boom")
	err := squashfs.WriteFile(t.Context(), p, func(w *squashfs.Writer) error {
		require.NoError(t, w.Add(t.Context(), squashfs.Entry{Path: "a", Size: 1, Content: strings.NewReader("a")}))
		return boom
	})
	require.ErrorIs(t, err, boom)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	require.Len(t, entries, 1, "temporary file left behind")
	old, err := os.ReadFile(p)
	require.NoError(t, err)
	require.Equal(t, "old", string(old))
}

// cancelAtEnd reads r and cancels a context as it hands out the last byte, so
// that Add finds the context cancelled only after reading all content.
type cancelAtEnd struct {
	r      *bytes.Reader
	cancel context.CancelFunc
}

func (c *cancelAtEnd) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	if c.r.Len() == 0 {
		c.cancel()
	}
	return n, err
}

// A file cancelled while it waits for a new fragment block must not give back
// the space of the fragment block it pushed out: that block holds the tails of
// earlier files. Whether Add sees the cancellation there is up to select, so
// the test tries many times.
func TestCancelledAtFragmentBlockKeepsEarlierTails(t *testing.T) {
	const bs = 4096
	rnd := func(seed, n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte((i*i + seed*7919) >> 2)
		}
		return b
	}
	var out sink
	w, err := squashfs.NewWriter(&out, squashfs.WithBlockSize(bs), squashfs.WithWorkers(1), squashfs.WithDeduplication(false))
	require.NoError(t, err)
	var specs []spec
	rejected := 0
	for i := range 32 {
		small := spec{e: squashfs.Entry{Path: fmt.Sprintf("small%02d", i), Mode: 0o644}, data: rnd(i, 3000)}
		require.NoError(t, w.Add(t.Context(), small.entry()))
		specs = append(specs, small)

		// Its tail of 2000 bytes does not fit after the 3000 just added.
		big := spec{e: squashfs.Entry{Path: fmt.Sprintf("big%02d", i), Mode: 0o644}, data: rnd(100+i, bs+2000)}
		ctx, cancel := context.WithCancel(t.Context())
		e := big.entry()
		e.Content = &cancelAtEnd{r: bytes.NewReader(big.data), cancel: cancel}
		err := w.Add(ctx, e)
		cancel()
		if err != nil {
			require.ErrorIs(t, err, context.Canceled)
			rejected++
			continue
		}
		specs = append(specs, big)
	}
	require.NoError(t, w.Close(t.Context()))
	require.NotZero(t, rejected, "no Add saw the cancellation; the case was not exercised")
	img, err := openImage(bytes.NewReader(out.b))
	require.NoError(t, err)
	got, err := readTree(img)
	require.NoError(t, err)
	newModel(specs, 0).check(t, got)
}

// TestAddAcceptsLimits: entries at each limit Add refuses beyond are accepted and make a valid image.
func TestAddAcceptsLimits(t *testing.T) {
	for _, tt := range []struct {
		name  string
		entry squashfs.Entry
	}{
		{name: "largest device", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeCharDevice, Devmajor: 1<<12 - 1, Devminor: 1<<20 - 1}},
		{name: "largest block device", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeBlockDevice, Devmajor: 1<<12 - 1, Devminor: 1<<20 - 1}},
		{name: "symlink target of 4095 bytes", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeSymlink, Linkname: strings.Repeat("t", 4095)}},
		{name: "empty file without content", entry: squashfs.Entry{Path: "x"}},
		{name: "name of 256 bytes", entry: squashfs.Entry{Path: strings.Repeat("n", 256), Type: squashfs.TypeFIFO}},
		{name: "xattr name of 255 bytes", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: map[string]string{"user." + strings.Repeat("n", 250): "a"}}},
		{name: "128 xattrs", entry: squashfs.Entry{Path: "x", Type: squashfs.TypeFIFO, Xattrs: manyXattrs(128)}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w, err := squashfs.NewWriter(&sink{})
			require.NoError(t, err)
			require.NoError(t, w.Add(t.Context(), tt.entry))
			require.NoError(t, w.Close(t.Context()))
		})
	}
	w, err := squashfs.NewWriter(&sink{})
	require.NoError(t, err)
	err = w.Add(t.Context(), squashfs.Entry{Path: strings.Repeat("n", 257), Type: squashfs.TypeFIFO})
	require.ErrorIs(t, err, squashfs.ErrInvalidPath, "a name of 257 bytes")
}
