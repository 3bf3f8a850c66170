package rootfs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"runtime"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

func TestWalkContentsOrderAndOnce(t *testing.T) {
	opens := make([]int, 3)
	data := [][]ent{
		{dir("usr"), file("usr/z", "z0"), file("usr/a", "a0"), file("gone", "g")},
		{file("only-meta-changed", ""), whiteout("gone"), hardlink("usr/b", "usr/z")},
		{file("usr/a", "a2"), file("new", "n2")},
	}
	var ls []rootfs.Layer
	for i, d := range data {
		ls = append(ls, bytesLayer{data: tarBytes(t, d...), opens: &opens[i]})
	}
	tree, err := rootfs.Flatten(t.Context(), ls)
	require.NoError(t, err)
	assert.Equal(t, []int{1, 1, 1}, opens)

	type visit struct {
		Path    string
		Nlink   int
		Source  rootfs.Source
		Content string
	}
	var got []visit
	err = tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		got = append(got, visit{e.Path, e.Nlink, e.Source, string(b)})
		return err
	})
	require.NoError(t, err)
	want := []visit{
		{"usr/b", 2, rootfs.Source{Layer: 0, Entry: 1}, "z0"},
		{"only-meta-changed", 1, rootfs.Source{Layer: 1, Entry: 0}, ""},
		{"usr/a", 1, rootfs.Source{Layer: 2, Entry: 0}, "a2"},
		{"new", 1, rootfs.Source{Layer: 2, Entry: 1}, "n2"},
	}
	assert.Equal(t, want, got)
	assert.Equal(t, []int{2, 2, 2}, opens, "each layer with wanted content is read once more")
}

func TestWalkContentsSkipsLayersWithoutSurvivors(t *testing.T) {
	opens := make([]int, 2)
	ls := []rootfs.Layer{
		bytesLayer{data: tarBytes(t, file("a", "a")), opens: &opens[0]},
		bytesLayer{data: tarBytes(t, file("a", "b")), opens: &opens[1]},
	}
	tree, err := rootfs.Flatten(t.Context(), ls)
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"a": "b"}, contents(t, tree))
	assert.Equal(t, []int{1, 2}, opens)
}

func TestWalkContentsPartialReads(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), layers(t, []ent{file("a", "aaaa"), file("b", "bbbb"), file("c", "cccc")}))
	require.NoError(t, err)
	var got []string
	err = tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
		if e.Path == "a" {
			return nil // not read at all
		}
		buf := make([]byte, 2)
		_, err := io.ReadFull(r, buf)
		got = append(got, e.Path+"="+string(buf))
		return err
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"b=bb", "c=cc"}, got)
}

func TestWalkContentsErrors(t *testing.T) {
	ls := layers(t, []ent{file("a", "a"), file("b", "b")})
	tree, err := rootfs.Flatten(t.Context(), ls)
	require.NoError(t, err)

	t.Run("callback error is returned unchanged", func(t *testing.T) {
		stop := errors.New("stop")
		calls := 0
		err := tree.WalkContents(t.Context(), func(rootfs.Entry, io.Reader) error {
			calls++
			return stop
		})
		assert.Same(t, stop, err)
		assert.Equal(t, 1, calls)
	})
	t.Run("cancelled context", func(t *testing.T) {
		ctx, cancel := context.WithCancel(t.Context())
		cancel()
		err := tree.WalkContents(ctx, func(rootfs.Entry, io.Reader) error { return nil })
		assert.ErrorIs(t, err, context.Canceled)
		_, err = rootfs.Flatten(ctx, ls)
		assert.ErrorIs(t, err, context.Canceled)
	})
}

// changingLayer returns first on its first read and then on every later one.
type changingLayer struct {
	first, then []byte
	reads       *int
}

func (l changingLayer) Uncompressed() (io.ReadCloser, error) {
	*l.reads++
	if *l.reads == 1 {
		return io.NopCloser(bytes.NewReader(l.first)), nil
	}
	return io.NopCloser(bytes.NewReader(l.then)), nil
}

func TestWalkContentsDetectsChangedLayer(t *testing.T) {
	tests := []struct {
		name string
		then []ent
	}{
		{name: "renamed entry", then: []ent{file("x", "aaaa"), file("c", "bbbb")}},
		{name: "resized entry", then: []ent{file("x", "aaaa"), file("b", "bbbbbb")}},
		{name: "shorter layer", then: []ent{file("x", "aaaa")}},
		{name: "entry became a directory", then: []ent{file("x", "aaaa"), dir("b")}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reads := 0
			l := changingLayer{first: tarBytes(t, file("x", "aaaa"), file("b", "bbbb")), then: tarBytes(t, tt.then...), reads: &reads}
			tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{l})
			require.NoError(t, err)
			err = tree.WalkContents(t.Context(), func(rootfs.Entry, io.Reader) error { return nil })
			require.ErrorIs(t, err, rootfs.ErrInvalidLayer)
			var le *rootfs.LayerError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, 0, le.Layer)
		})
	}
}

func TestOpen(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), layers(t,
		[]ent{dir("d"), file("d/f", "lower"), file("g", "g")},
		[]ent{hardlink("h", "d/f")},
		[]ent{whiteout("d")},
	))
	require.NoError(t, err)

	for _, p := range []string{"h", "g"} {
		rc, err := tree.Open(t.Context(), p)
		require.NoError(t, err)
		b, err := io.ReadAll(rc)
		require.NoError(t, err)
		require.NoError(t, rc.Close())
		assert.Equal(t, map[string]string{"h": "lower", "g": "g"}[p], string(b))
	}
	_, err = tree.Open(t.Context(), "d/f")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = tree.Open(t.Context(), ".")
	assert.ErrorIs(t, err, fs.ErrInvalid)
}

// patternReader yields an endless deterministic byte stream.
type patternReader struct {
	block []byte
	off   int
}

func newPattern() *patternReader {
	r := rand.New(rand.NewPCG(1, 2))
	b := make([]byte, 65521) // prime, so the pattern never lines up with tar blocks
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return &patternReader{block: b}
}

func (p *patternReader) Read(buf []byte) (int, error) {
	n := copy(buf, p.block[p.off:])
	p.off = (p.off + n) % len(p.block)
	return n, nil
}

// generatedLayer streams a tar holding one big generated file between two small
// ones, through a pipe, so the layer never exists in memory as a whole.
type generatedLayer struct{ size int64 }

func (l generatedLayer) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		write := func(name string, size int64, r io.Reader) error {
			if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: size}); err != nil {
				return err
			}
			_, err := io.CopyN(tw, r, size)
			return err
		}
		err := write("before", 5, bytes.NewReader([]byte("hello")))
		if err == nil {
			err = write("big", l.size, newPattern())
		}
		if err == nil {
			err = write("zafter", 3, bytes.NewReader([]byte("bye")))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// TestWalkContentsStreamsBigFiles passes a 512 MiB file through Flatten and
// WalkContents and checks the heap stays small while it is read.
func TestWalkContentsStreamsBigFiles(t *testing.T) {
	const size = 512 << 20
	const heapLimit = 48 << 20
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{generatedLayer{size: size}})
	require.NoError(t, err)
	big, ok := tree.Lookup("big")
	require.True(t, ok)
	require.EqualValues(t, size, big.Size)

	var peak uint64
	sample := func() {
		var ms runtime.MemStats
		runtime.ReadMemStats(&ms)
		peak = max(peak, ms.HeapInuse)
	}
	var seen []string
	err = tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
		seen = append(seen, e.Path)
		if e.Path != "big" {
			return nil
		}
		want := newPattern()
		buf, wantBuf := make([]byte, 1<<20), make([]byte, 1<<20)
		var total int64
		for {
			n, err := io.ReadFull(r, buf)
			if n > 0 {
				if _, werr := io.ReadFull(want, wantBuf[:n]); werr != nil {
					return werr
				}
				if !bytes.Equal(buf[:n], wantBuf[:n]) {
					return fmt.Errorf("content differs near offset %d", total)
				}
				total += int64(n)
				if total%(64<<20) == 0 {
					sample()
				}
			}
			if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
				break
			}
			if err != nil {
				return err
			}
		}
		if total != size {
			return fmt.Errorf("read %d bytes, want %d", total, size)
		}
		return nil
	})
	require.NoError(t, err)
	assert.Equal(t, []string{"before", "big", "zafter"}, seen)
	require.NotZero(t, peak)
	t.Logf("peak HeapInuse while streaming %d MiB: %.1f MiB", size>>20, float64(peak)/(1<<20))
	assert.Less(t, peak, uint64(heapLimit), "heap grew while streaming")
}

// verifyingLayer serves a tar stream and then fails at its end, as ggcr's
// digest-verifying readers do when the blob does not match its digest.
type verifyingLayer struct {
	data []byte
	err  error
}

func (l verifyingLayer) Uncompressed() (io.ReadCloser, error) {
	padded := append(slices.Clone(l.data), make([]byte, 4096)...)
	return io.NopCloser(io.MultiReader(bytes.NewReader(padded), errReader{l.err})), nil
}

type errReader struct{ err error }

func (r errReader) Read([]byte) (int, error) { return 0, r.err }

// TestLayersAreReadToTheEnd checks both passes drain each layer past the tar's
// end-of-archive marker, so a verifying reader gets to report a bad digest.
func TestLayersAreReadToTheEnd(t *testing.T) {
	mismatch := errors.New("digest mismatch")
	l := verifyingLayer{data: tarBytes(t, file("a", "a")), err: mismatch}
	_, err := rootfs.Flatten(t.Context(), []rootfs.Layer{l})
	require.ErrorIs(t, err, mismatch)

	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{verifyingLayerAfter{first: l.data, err: mismatch, reads: new(int)}})
	require.NoError(t, err)
	err = tree.WalkContents(t.Context(), func(rootfs.Entry, io.Reader) error { return nil })
	require.ErrorIs(t, err, mismatch)
}

// verifyingLayerAfter reads cleanly once and fails its digest check on every
// later read.
type verifyingLayerAfter struct {
	first []byte
	err   error
	reads *int
}

func (l verifyingLayerAfter) Uncompressed() (io.ReadCloser, error) {
	*l.reads++
	if *l.reads == 1 {
		return io.NopCloser(bytes.NewReader(l.first)), nil
	}
	return verifyingLayer{data: l.first, err: l.err}.Uncompressed()
}
