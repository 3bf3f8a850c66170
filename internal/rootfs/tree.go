package rootfs

import (
	"archive/tar"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
)

// Tree is the merged root filesystem: every surviving path's metadata in walk
// order, and the layers to read contents from. It is safe for concurrent use.
type Tree struct {
	layers  []Layer
	entries []Entry
	byPath  map[string]int
	// contents lists, per layer, the positions in entries of the regular files
	// whose content that layer holds, in tar order.
	contents [][]int
	// names holds the raw tar name of each content-bearing entry, by position.
	names map[int]string
}

func newTree(root *node, layers []Layer) *Tree {
	links := map[*inode]int{}
	total := 1
	var count func(n *node)
	count = func(n *node) {
		for _, c := range n.children {
			total++
			if c.children == nil {
				links[c.ino]++
			}
			count(c)
		}
	}
	count(root)

	t := &Tree{
		layers:   layers,
		entries:  make([]Entry, 0, total),
		byPath:   make(map[string]int, total),
		contents: make([][]int, len(layers)),
		names:    map[int]string{},
	}
	first := map[*inode]string{}
	var walk func(n *node, p string)
	walk = func(n *node, p string) {
		e := n.ino.meta
		e.Path = p
		if n.children == nil {
			e.Nlink = links[n.ino]
			if primary, ok := first[n.ino]; ok {
				e.Type, e.Linkname = TypeHardlink, primary
			} else {
				first[n.ino] = p
				if e.Type == TypeRegular {
					t.contents[e.Source.Layer] = append(t.contents[e.Source.Layer], len(t.entries))
					t.names[len(t.entries)] = n.ino.name
				}
			}
		}
		t.byPath[p] = len(t.entries)
		t.entries = append(t.entries, e)
		for _, c := range sortedChildren(n) {
			walk(c, path.Join(p, c.name))
		}
	}
	walk(root, ".")
	for _, c := range t.contents {
		slices.SortFunc(c, func(a, b int) int { return cmp.Compare(t.entries[a].Source.Entry, t.entries[b].Source.Entry) })
	}
	return t
}

// Entries returns every path of the merged root in walk order: depth first,
// parents before children, siblings in byte order of their names, the root "."
// first. Of the paths sharing a non-directory inode the first in this order
// carries the inode's type; the others are TypeHardlink entries naming it.
func (t *Tree) Entries() []Entry {
	return slices.Clone(t.entries)
}

// Lookup returns the entry at p, a path as in Entry.Path. Symlinks are not
// followed.
func (t *Tree) Lookup(p string) (Entry, bool) {
	i, ok := t.byPath[p]
	if !ok {
		return Entry{}, false
	}
	return t.entries[i], true
}

// WalkContents calls fn once for every regular file of the tree (the first path
// of each hardlinked inode, whose Nlink says how many paths share it) with a
// reader of its content. Files come in the order their content lies in the
// layers: by layer, then by tar position, which is deterministic for the same
// layers. Each layer holding a wanted content is read once from start to end,
// so contents stream and are never held in memory; a layer that differs from
// what Flatten read yields ErrInvalidLayer, and so does reading a content
// whose entry is malformed (a sparse map that does not match its data, data
// cut short), as a *LayerError from the reader.
//
// The reader is valid only until fn returns; fn need not read it to the end.
// WalkContents returns the first error fn returns, unchanged.
func (t *Tree) WalkContents(ctx context.Context, fn func(e Entry, r io.Reader) error) error {
	for li, want := range t.contents {
		if len(want) == 0 {
			continue
		}
		if err := t.walkLayer(ctx, li, want, fn); err != nil {
			return err
		}
	}
	return nil
}

func (t *Tree) walkLayer(ctx context.Context, li int, want []int, fn func(Entry, io.Reader) error) error {
	rc, err := t.layers[li].Uncompressed()
	if err != nil {
		return fmt.Errorf("opening layer %d: %w", li, err)
	}
	defer rc.Close()
	src := &sourceReader{r: rc}
	tr := tar.NewReader(src)
	for idx, next := 0, 0; next < len(want); idx++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err != nil {
			if errors.Is(err, io.EOF) {
				return &LayerError{Layer: li, Entry: idx, Reason: "layer ended before an entry read earlier", Err: ErrInvalidLayer}
			}
			return readError(li, idx, err)
		}
		e := t.entries[want[next]]
		if idx != e.Source.Entry {
			continue
		}
		if err := t.checkSame(li, idx, hdr, want[next]); err != nil {
			return err
		}
		if err := fn(e, &contentReader{tr: tr, src: src, layer: li, entry: idx, name: hdr.Name}); err != nil {
			return err
		}
		next++
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return fmt.Errorf("verifying layer %d: %w", li, err)
	}
	return nil
}

// sourceReader remembers the last error of a layer's stream, so that errors of
// the tar format can be told from those of the stream (a network error, say).
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil {
		s.err = err
	}
	return n, err
}

// contentReader hands over one file's content. A malformed entry, such as a
// sparse map that does not match the data or data cut short, yields a
// *LayerError wrapping ErrInvalidLayer; errors of the stream pass unchanged.
type contentReader struct {
	tr    *tar.Reader
	src   *sourceReader
	layer int
	entry int
	name  string
}

func (c *contentReader) Read(p []byte) (int, error) {
	n, err := c.tr.Read(p)
	if err == nil || errors.Is(err, io.EOF) || (c.src.err != nil && !errors.Is(c.src.err, io.EOF) && errors.Is(err, c.src.err)) {
		return n, err
	}
	return n, &LayerError{Layer: c.layer, Entry: c.entry, Name: c.name, Reason: "reading content", Err: fmt.Errorf("%w: %w", ErrInvalidLayer, err)}
}

// checkSame guards against a layer whose bytes changed since Flatten read it,
// which would hand over the wrong content under a path.
func (t *Tree) checkSame(li, idx int, hdr *tar.Header, pos int) error {
	e := t.entries[pos]
	if hdr.Name != t.names[pos] || hdr.Size != e.Size || !isRegular(hdr.Typeflag) {
		return &LayerError{Layer: li, Entry: idx, Name: hdr.Name, Reason: fmt.Sprintf("entry differs from the first read (was %q, %d bytes)", t.names[pos], e.Size), Err: ErrInvalidLayer}
	}
	return nil
}

func isRegular(flag byte) bool {
	return flag == tar.TypeReg || flag == tar.TypeGNUSparse || flag == tar.TypeCont
}

// Open returns the content of the regular file (or hardlink to one) at p. It
// reads the layer from its start up to the file, so use WalkContents to read
// many files. The reader must be closed. A missing path yields fs.ErrNotExist,
// and any other type fs.ErrInvalid. As with WalkContents, a layer that differs
// from what Flatten read yields ErrInvalidLayer, from Open or from the reader
// (data cut short).
func (t *Tree) Open(ctx context.Context, p string) (io.ReadCloser, error) {
	e, ok := t.Lookup(p)
	if !ok {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fs.ErrNotExist}
	}
	if e.Type == TypeHardlink {
		e, _ = t.Lookup(e.Linkname)
	}
	if e.Type != TypeRegular {
		return nil, &fs.PathError{Op: "open", Path: p, Err: fmt.Errorf("%s is not a regular file: %w", e.Type, fs.ErrInvalid)}
	}
	li := e.Source.Layer
	rc, err := t.layers[li].Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("opening layer %d: %w", li, err)
	}
	src := &sourceReader{r: rc}
	tr := tar.NewReader(src)
	for idx := 0; ; idx++ {
		if err := ctx.Err(); err != nil {
			rc.Close()
			return nil, err
		}
		hdr, err := tr.Next()
		if err != nil {
			rc.Close()
			if errors.Is(err, io.EOF) {
				return nil, &LayerError{Layer: li, Entry: idx, Reason: "layer ended before an entry read earlier", Err: ErrInvalidLayer}
			}
			return nil, readError(li, idx, err)
		}
		if idx == e.Source.Entry {
			if err := t.checkSame(li, idx, hdr, t.byPath[e.Path]); err != nil {
				rc.Close()
				return nil, err
			}
			return struct {
				io.Reader
				io.Closer
			}{&contentReader{tr: tr, src: src, layer: li, entry: idx, name: hdr.Name}, rc}, nil
		}
	}
}
