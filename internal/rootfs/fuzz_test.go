package rootfs_test

import (
	"errors"
	"io"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// FuzzFlatten feeds two arbitrary byte streams as layers. Flatten must not
// panic, must fail only with ErrUnsafePath, ErrInvalidLayer or ErrTooLarge, and on success
// must describe a tree inside its root whose contents stream consistently.
func FuzzFlatten(f *testing.F) {
	seed := func(a, b []ent) { f.Add(tarBytes(f, a...), tarBytes(f, b...)) }
	seed([]ent{dir("a"), file("a/x", "x"), symlink("l", "/a")}, []ent{whiteout("a/x"), file("l/y", "y"), hardlink("h", "a/y")})
	seed([]ent{dir("a"), dir("a/b"), file("a/b/c", "c")}, []ent{opaque("a"), file("a/n", "n"), whiteout("a")})
	seed([]ent{symlink("evil", "../../.."), file("f", "f")}, []ent{file("evil/passwd", "p"), hardlink("h", "evil/f")})
	seed([]ent{file("../x", "x")}, []ent{file(".wh...", "")})
	seed([]ent{symlink("a", "b"), symlink("b", "a")}, []ent{file("a/f", "f")})
	for _, c := range maliciousCorpus(f) {
		switch {
		case c.raw != nil:
			f.Add(c.raw[0], []byte(nil))
		case len(c.layers) == 1:
			f.Add(tarBytes(f, c.layers[0]...), []byte(nil))
		default:
			f.Add(tarBytes(f, c.layers[0]...), tarBytes(f, c.layers[1]...))
		}
	}

	f.Fuzz(func(t *testing.T, a, b []byte) {
		tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{bytesLayer{data: a}, bytesLayer{data: b}})
		if err != nil {
			var le *rootfs.LayerError
			require.ErrorAs(t, err, &le)
			require.True(t, errors.Is(err, rootfs.ErrUnsafePath) || errors.Is(err, rootfs.ErrInvalidLayer) || errors.Is(err, rootfs.ErrTooLarge), "%v", err)
			return
		}
		checkContained(t, tree)
		seen := map[string]bool{}
		err = tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
			require.Equal(t, rootfs.TypeRegular, e.Type)
			require.False(t, seen[e.Path], "%s handed over twice", e.Path)
			seen[e.Path] = true
			// Sparse entries may claim huge sizes; a prefix is enough here.
			want := min(e.Size, 1<<20)
			n, err := io.Copy(io.Discard, io.LimitReader(r, want))
			require.NoError(t, err)
			require.Equal(t, want, n)
			return nil
		})
		require.NoError(t, err)
		for _, e := range tree.Entries() {
			if e.Type == rootfs.TypeRegular {
				require.True(t, seen[e.Path], "%s never handed over", e.Path)
			}
		}
	})
}
