package singularity

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
)

func TestReadOnlySeek(t *testing.T) {
	r := &readOnly{r: bytes.NewReader(make([]byte, 100)), size: 100}
	for _, tt := range []struct {
		off    int64
		whence int
		want   int64
	}{
		{off: 10, whence: io.SeekStart, want: 10},
		{off: 5, whence: io.SeekCurrent, want: 15},
		{off: -20, whence: io.SeekEnd, want: 80},
		{off: 0, whence: io.SeekEnd, want: 100},
	} {
		got, err := r.Seek(tt.off, tt.whence)
		require.NoError(t, err)
		assert.Equal(t, tt.want, got)
	}
	_, err := r.Seek(-101, io.SeekEnd)
	assert.Error(t, err)
	_, err = r.Write([]byte("x"))
	assert.Error(t, err)
	assert.Error(t, r.Truncate(0))
}

// TestUnixMode checks both spellings of the special bits.
func TestUnixMode(t *testing.T) {
	for _, tt := range []struct {
		mode fs.FileMode
		want uint32
	}{
		{mode: 0o4755, want: 0o4755},
		{mode: fs.ModeSetuid | 0o755, want: 0o4755},
		{mode: fs.ModeSetgid | 0o750, want: 0o2750},
		{mode: fs.ModeSticky | 0o777, want: 0o1777},
		{mode: fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky, want: 0o7000},
		{mode: fs.ModeDir | 0o700, want: 0o700},
	} {
		assert.Equal(t, tt.want, unixMode(tt.mode), "%v", tt.mode)
	}
}

func TestTarHeader(t *testing.T) {
	for _, tt := range []struct {
		e    squashfs.Entry
		want tar.Header
	}{
		{e: squashfs.Entry{Path: "dev/sda", Type: squashfs.TypeBlockDevice, Mode: 0o660, Devmajor: 8, Devminor: 1},
			want: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Devmajor: 8, Devminor: 1}},
		{e: squashfs.Entry{Path: "dev/null", Type: squashfs.TypeCharDevice, Mode: 0o666, Devmajor: 1, Devminor: 3},
			want: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}},
		{e: squashfs.Entry{Path: "run/fifo", Type: squashfs.TypeFIFO, Mode: 0o600},
			want: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}},
		{e: squashfs.Entry{Path: "opt", Type: squashfs.TypeDir, Mode: 0o755, UID: 1000, GID: 100},
			want: tar.Header{Typeflag: tar.TypeDir, Name: "opt/", Mode: 0o755, Uid: 1000, Gid: 100}},
		{e: squashfs.Entry{Path: "opt/l", Type: squashfs.TypeHardlink, Linkname: "opt/f"},
			want: tar.Header{Typeflag: tar.TypeLink, Name: "opt/l", Linkname: "opt/f"}},
		{e: squashfs.Entry{Path: "opt/f", Type: squashfs.TypeRegular, Mode: 0o4755, Size: 3, Xattrs: map[string]string{"user.a": "b"}},
			want: tar.Header{Typeflag: tar.TypeReg, Name: "opt/f", Mode: 0o4755, Size: 3, PAXRecords: map[string]string{"SCHILY.xattr.user.a": "b"}}},
	} {
		got, err := tarHeader(tt.e)
		require.NoError(t, err)
		tt.want.Format = tar.FormatPAX
		assert.Equal(t, &tt.want, got, tt.e.Path)
	}
	_, err := tarHeader(squashfs.Entry{Path: "x", Type: squashfs.Type(99)})
	assert.Error(t, err)
}
