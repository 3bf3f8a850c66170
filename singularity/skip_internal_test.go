package singularity

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPlaceholder checks both ways the SIF library may consume the
// placeholder: into a skipWriter at the partition (skipped), or into any
// other writer (n zero bytes).
func TestPlaceholder(t *testing.T) {
	var buf bytes.Buffer
	n, err := (&placeholder{n: 70000}).WriteTo(&buf)
	require.NoError(t, err)
	assert.Equal(t, int64(70000), n)
	assert.Equal(t, make([]byte, 70000), buf.Bytes())

	p := &placeholder{n: 5}
	b := []byte("abcdefgh")
	k, err := p.Read(b)
	require.NoError(t, err)
	assert.Equal(t, 5, k)
	assert.Equal(t, []byte("\x00\x00\x00\x00\x00fgh"), b)
	k, err = p.Read(b)
	assert.Equal(t, 0, k)
	assert.Equal(t, io.EOF, err)

	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	require.NoError(t, f.Truncate(100))
	sw := &skipWriter{f: f, skipFrom: 10, skipTo: 60}
	_, err = sw.Seek(10, io.SeekStart)
	require.NoError(t, err)
	n, err = (&placeholder{n: 50}).WriteTo(sw)
	require.NoError(t, err)
	assert.Equal(t, int64(50), n)
	assert.Equal(t, int64(60), sw.pos, "skipped, not written")
}

func TestSkipWriter(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	defer f.Close()
	_, err = f.WriteAt(bytes.Repeat([]byte("s"), 100), 0)
	require.NoError(t, err)
	sw := &skipWriter{f: f, skipFrom: 10, skipTo: 20}

	n, err := sw.Write([]byte("0123456789"))
	require.NoError(t, err)
	assert.Equal(t, 10, n)
	_, err = sw.Write([]byte("x"))
	assert.ErrorContains(t, err, "over the squashfs at 10-20")
	pos, err := sw.Seek(-1, io.SeekEnd)
	require.NoError(t, err)
	assert.Equal(t, int64(99), pos)
	pos, err = sw.Seek(-79, io.SeekCurrent)
	require.NoError(t, err)
	assert.Equal(t, int64(20), pos)
	_, err = sw.Write([]byte("ab"))
	require.NoError(t, err)
	_, err = sw.Seek(9, io.SeekStart)
	require.NoError(t, err)
	_, err = sw.Write([]byte("xy"))
	assert.Error(t, err, "a write ending inside the squashfs")
	_, err = sw.Seek(-1, io.SeekStart)
	assert.Error(t, err)
	_, err = sw.Seek(0, 7)
	assert.Error(t, err)
	assert.ErrorContains(t, sw.Truncate(19), "into the squashfs")
	require.NoError(t, sw.Truncate(20))
	got := make([]byte, 20)
	_, err = sw.ReadAt(got, 0)
	require.NoError(t, err)
	assert.Equal(t, "0123456789ssssssssss", string(got))
	fi, err := f.Stat()
	require.NoError(t, err)
	assert.Equal(t, int64(20), fi.Size())
}

// TestSkipWriterFileFails checks that a failing output file (here, closed
// under the SIF library) fails each call, and that a seek from the end does
// not move the position.
func TestSkipWriterFileFails(t *testing.T) {
	f, err := os.Create(filepath.Join(t.TempDir(), "f"))
	require.NoError(t, err)
	require.NoError(t, f.Truncate(100))
	sw := &skipWriter{f: f, skipFrom: 10, skipTo: 20}
	_, err = sw.Seek(30, io.SeekStart)
	require.NoError(t, err)
	require.NoError(t, f.Close())

	_, err = sw.Seek(0, io.SeekEnd)
	require.ErrorIs(t, err, os.ErrClosed)
	assert.Equal(t, int64(30), sw.pos)
	_, err = sw.Write([]byte("x"))
	require.ErrorIs(t, err, os.ErrClosed)
	assert.Equal(t, int64(30), sw.pos)
	require.ErrorIs(t, sw.Truncate(50), os.ErrClosed)
	_, err = sw.ReadAt(make([]byte, 1), 0)
	require.ErrorIs(t, err, os.ErrClosed)
}
