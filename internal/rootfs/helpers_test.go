package rootfs_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// ent is one tar entry of a test layer; body is a regular file's content.
type ent struct {
	hdr  tar.Header
	body string
}

var epoch = time.Unix(1700000000, 0)

func file(name, body string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: 0o644, Size: int64(len(body)), ModTime: epoch}, body: body}
}

func dir(name string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: 0o755, ModTime: epoch}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

// whiteout removes path from lower layers (".wh." + its basename).
func whiteout(path string) ent {
	i := strings.LastIndex(path, "/")
	return file(path[:i+1]+".wh."+path[i+1:], "")
}

func opaque(dirPath string) ent {
	return file(dirPath+"/.wh..wh..opq", "")
}

func withMode(e ent, mode int64) ent {
	e.hdr.Mode = mode
	return e
}

// tarBytes writes entries as a PAX tar stream.
func tarBytes(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatPAX
		require.NoError(t, tw.WriteHeader(&h), "writing header %q", h.Name)
		_, err := io.WriteString(tw, e.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

// bytesLayer is a layer held in memory; opens counts the reads of it.
type bytesLayer struct {
	data  []byte
	opens *int
}

func (l bytesLayer) Uncompressed() (io.ReadCloser, error) {
	if l.opens != nil {
		*l.opens++
	}
	return io.NopCloser(bytes.NewReader(l.data)), nil
}

func layers(t testing.TB, ls ...[]ent) []rootfs.Layer {
	t.Helper()
	out := make([]rootfs.Layer, len(ls))
	for i, l := range ls {
		out[i] = bytesLayer{data: tarBytes(t, l...)}
	}
	return out
}

// contents reads every regular file through WalkContents, checking each comes once.
func contents(t testing.TB, tree *rootfs.Tree) map[string]string {
	t.Helper()
	got := map[string]string{}
	err := tree.WalkContents(t.Context(), func(e rootfs.Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		if err != nil {
			return err
		}
		if _, dup := got[e.Path]; dup {
			return fmt.Errorf("%s handed over twice", e.Path)
		}
		if int64(len(b)) != e.Size {
			return fmt.Errorf("%s: read %d bytes, entry says %d", e.Path, len(b), e.Size)
		}
		got[e.Path] = string(b)
		return nil
	})
	require.NoError(t, err)
	return got
}

// listing renders a tree one line per entry: type, path, mode and what the type
// adds (content, link target, device numbers, link count), plus "implied".
func listing(t testing.TB, tree *rootfs.Tree) []string {
	t.Helper()
	data := contents(t, tree)
	var out []string
	for _, e := range tree.Entries() {
		s := fmt.Sprintf("%s %s %04o", e.Type, e.Path, e.Mode)
		switch e.Type {
		case rootfs.TypeRegular:
			s += fmt.Sprintf(" %q", data[e.Path])
		case rootfs.TypeSymlink:
			s += " -> " + e.Linkname
		case rootfs.TypeHardlink:
			s += " => " + e.Linkname
		case rootfs.TypeCharDevice, rootfs.TypeBlockDevice:
			s += fmt.Sprintf(" %d:%d", e.Devmajor, e.Devminor)
		}
		if e.Nlink > 1 {
			s += fmt.Sprintf(" n=%d", e.Nlink)
		}
		if e.Implied {
			s += " implied"
		}
		out = append(out, s)
	}
	return out
}

// cleanPath reports whether p is "." or relative and clean, as fs.ValidPath
// asks, but for any bytes, as Linux names hold them.
func cleanPath(p string) bool {
	if p == "." {
		return true
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." {
			return false
		}
	}
	return true
}

// checkContained asserts the tree can only describe paths inside its root: every
// path clean in the io/fs sense (relative, clean, no ".."), within Linux limits,
// free of whiteout names, its parent a directory listed before it, and every
// hardlink naming an earlier non-directory entry.
func checkContained(t testing.TB, tree *rootfs.Tree) {
	t.Helper()
	seen := map[string]rootfs.Entry{}
	for i, e := range tree.Entries() {
		require.True(t, cleanPath(e.Path), "invalid path %q", e.Path)
		require.NotContains(t, e.Path, "\x00")
		require.LessOrEqual(t, len(e.Path), 4096, "path too long")
		if i == 0 {
			require.Equal(t, ".", e.Path)
			require.Equal(t, rootfs.TypeDir, e.Type)
			seen["."] = e
			continue
		}
		require.NotEqual(t, ".", e.Path)
		parent := "."
		if j := strings.LastIndex(e.Path, "/"); j >= 0 {
			parent = e.Path[:j]
		}
		p, ok := seen[parent]
		require.True(t, ok, "%q listed before its parent", e.Path)
		require.Equal(t, rootfs.TypeDir, p.Type, "parent of %q", e.Path)
		for c := range strings.SplitSeq(e.Path, "/") {
			require.LessOrEqual(t, len(c), 255)
			require.False(t, strings.HasPrefix(c, ".wh."), "whiteout name %q in tree", e.Path)
		}
		if e.Type == rootfs.TypeHardlink {
			target, ok := seen[e.Linkname]
			require.True(t, ok, "hardlink %q to %q not listed before", e.Path, e.Linkname)
			require.NotEqual(t, rootfs.TypeDir, target.Type)
			require.NotEqual(t, rootfs.TypeHardlink, target.Type)
		}
		_, dup := seen[e.Path]
		require.False(t, dup, "%q listed twice", e.Path)
		seen[e.Path] = e
	}
}
