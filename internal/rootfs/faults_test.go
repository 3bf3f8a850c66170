package rootfs_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// rereadLayer serves first to Flatten's read and what then makes of it to every later read, and counts the
// readers it hands out and those closed.
type rereadLayer struct {
	first []byte
	then  func(first []byte) (io.Reader, error)
	state *rereadState
}

type rereadState struct{ reads, closed int }

func (l rereadLayer) Uncompressed() (io.ReadCloser, error) {
	l.state.reads++
	if l.state.reads == 1 {
		return countedCloser{bytes.NewReader(l.first), l.state}, nil
	}
	r, err := l.then(l.first)
	if err != nil {
		return nil, err
	}
	return countedCloser{r, l.state}, nil
}

type countedCloser struct {
	io.Reader
	state *rereadState
}

func (c countedCloser) Close() error {
	c.state.closed++
	return nil
}

// failAfter reads n bytes of data, then fails with err.
func failAfter(data []byte, n int, err error) io.Reader {
	return io.MultiReader(bytes.NewReader(data[:n]), errReader{err})
}

// TestReadingBackFails injects a fault at each step of reading a file back after Flatten, through
// WalkContents and through Open: the layer cannot be reopened, its stream fails before, inside or after the
// file, it ends early, or it changed. Stream errors come back as they are, wrapped; a layer that no longer
// matches is a *LayerError wrapping ErrInvalidLayer naming the entry; no reader is left open.
func TestReadingBackFails(t *testing.T) {
	lost := errors.New("connection reset")
	layer := tarBytes(t, file("a", "aaaa"), file("b", string(bytes.Repeat([]byte("b"), 3000))), file("c", "cc"))
	// Offsets in layer: a's header at 0, its data at 512; b's header at 1024, data from 1536 to 4536.
	tests := []struct {
		name      string
		then      func(first []byte) (io.Reader, error)
		wantErr   error  // errors.Is
		wantEntry int    // of the *LayerError, when wantErr is ErrInvalidLayer
		wantMsg   string // in the error
	}{
		{
			name:    "layer cannot be reopened",
			then:    func([]byte) (io.Reader, error) { return nil, lost },
			wantErr: lost, wantMsg: "opening layer 0",
		},
		{
			name:    "stream fails in the first header",
			then:    func(b []byte) (io.Reader, error) { return failAfter(b, 100, lost), nil },
			wantErr: lost, wantMsg: "reading layer 0 entry 0",
		},
		{
			name:    "stream fails in the header of the file",
			then:    func(b []byte) (io.Reader, error) { return failAfter(b, 1100, lost), nil },
			wantErr: lost, wantMsg: "reading layer 0 entry 1",
		},
		{
			name:    "stream fails inside the file",
			then:    func(b []byte) (io.Reader, error) { return failAfter(b, 2000, lost), nil },
			wantErr: lost,
		},
		{
			name:    "layer ends inside the header of the file",
			then:    func(b []byte) (io.Reader, error) { return bytes.NewReader(b[:1100]), nil },
			wantErr: rootfs.ErrInvalidLayer, wantEntry: 1, wantMsg: "reading tar header",
		},
		{
			name:    "layer ends inside the file",
			then:    func(b []byte) (io.Reader, error) { return bytes.NewReader(b[:2000]), nil },
			wantErr: rootfs.ErrInvalidLayer, wantEntry: 1, wantMsg: "reading content",
		},
		{
			name:    "layer ends before the file",
			then:    func(b []byte) (io.Reader, error) { return bytes.NewReader(tarBytes(t, file("a", "aaaa"))), nil },
			wantErr: rootfs.ErrInvalidLayer, wantEntry: 1, wantMsg: "layer ended before an entry read earlier",
		},
		{
			name: "file renamed",
			then: func(b []byte) (io.Reader, error) {
				return bytes.NewReader(tarBytes(t, file("a", "aaaa"), file("B", "bbb"))), nil
			},
			wantErr: rootfs.ErrInvalidLayer, wantEntry: 1, wantMsg: `was "b", 3000 bytes`,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			check := func(t *testing.T, err error, st *rereadState) {
				t.Helper()
				require.ErrorIs(t, err, tt.wantErr)
				assert.ErrorContains(t, err, tt.wantMsg)
				var le *rootfs.LayerError
				if tt.wantErr == rootfs.ErrInvalidLayer {
					require.ErrorAs(t, err, &le)
					assert.Equal(t, []int{0, tt.wantEntry}, []int{le.Layer, le.Entry})
				} else {
					assert.False(t, errors.As(err, &le), "a stream error is not the layer's fault: %v", err)
					assert.NotErrorIs(t, err, rootfs.ErrInvalidLayer)
				}
				assert.Equal(t, st.reads-boolInt(errors.Is(err, lost) && tt.wantMsg == "opening layer 0"), st.closed, "readers left open")
			}
			t.Run("WalkContents", func(t *testing.T) {
				st := &rereadState{}
				tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rereadLayer{first: layer, then: tt.then, state: st}})
				require.NoError(t, err)
				var got []string
				err = tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
					_, err := io.ReadAll(r)
					got = append(got, e.Path)
					return err
				})
				check(t, err, st)
				assert.NotContains(t, got, "c", "the walk stops at the fault")
			})
			t.Run("Open", func(t *testing.T) {
				st := &rereadState{}
				tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rereadLayer{first: layer, then: tt.then, state: st}})
				require.NoError(t, err)
				rc, err := tree.Open(t.Context(), "b")
				if err == nil {
					_, err = io.ReadAll(rc)
					require.NoError(t, rc.Close())
				}
				check(t, err, st)
			})
		})
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// TestReadingBackClosesLayers: every layer reader WalkContents and Open take is closed, on success too.
func TestReadingBackClosesLayers(t *testing.T) {
	st := &rereadState{}
	same := func(b []byte) (io.Reader, error) { return bytes.NewReader(b), nil }
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rereadLayer{first: tarBytes(t, file("a", "a"), file("b", "b")), then: same, state: st}})
	require.NoError(t, err)
	require.NoError(t, tree.WalkContents(t.Context(), func(rootfs.Entry, io.Reader) error { return nil }))
	assert.Equal(t, rereadState{reads: 2, closed: 2}, *st)

	rc, err := tree.Open(t.Context(), "b")
	require.NoError(t, err)
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	assert.Equal(t, "b", string(b))
	assert.Equal(t, 2, st.closed, "the reader Open returns holds its layer open")
	require.NoError(t, rc.Close())
	assert.Equal(t, rereadState{reads: 3, closed: 3}, *st)

	stop := errors.New("stop")
	require.ErrorIs(t, tree.WalkContents(t.Context(), func(rootfs.Entry, io.Reader) error { return stop }), stop)
	assert.Equal(t, rereadState{reads: 4, closed: 4}, *st, "an error of the callback closes the layer too")
}

// TestOpenCancelled: a cancelled context stops Open before it reads, and closes what it opened.
func TestOpenCancelled(t *testing.T) {
	st := &rereadState{}
	same := func(b []byte) (io.Reader, error) { return bytes.NewReader(b), nil }
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rereadLayer{first: tarBytes(t, file("a", "a")), then: same, state: st}})
	require.NoError(t, err)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = tree.Open(ctx, "a")
	require.ErrorIs(t, err, context.Canceled)
	assert.Equal(t, st.reads, st.closed)
}
