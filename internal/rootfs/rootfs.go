package rootfs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"maps"
	"slices"
	"strings"
)

// Layer is one OCI layer changeset. Uncompressed returns its tar stream; it is
// called once by Flatten and again by each content read, so it should return the
// same bytes every time (a cached blob). A ggcr v1.Layer satisfies it.
type Layer interface {
	Uncompressed() (io.ReadCloser, error)
}

// Option configures Flatten.
type Option func(*options) error

type options struct {
	logger         *slog.Logger
	maxEntries     int
	maxLayerBytes  int64
	maxImageBytes  int64
	maxSparseRatio int64
	// maxMetadataBytes bounds names, link targets, owner names, xattrs and
	// PAX records kept, all entries together.
	maxMetadataBytes int64
}

const (
	// defaultMaxEntries is far above the largest real images (around a
	// million files) and keeps a hostile stack of empty headers to a few GB of
	// metadata.
	defaultMaxEntries = 5_000_000
	// defaultMaxLayerBytes and defaultMaxImageBytes sit well above the
	// largest HPC images in use (CUDA, oneAPI and NGC framework images
	// unpack to 10 to 30 GB), while bounding what a hostile layer can make
	// the SIF builder read, hash and compress.
	defaultMaxLayerBytes = 64 << 30
	defaultMaxImageBytes = 128 << 30
	// defaultMaxSparseRatio lets a sparse file be 1024 times the bytes it
	// takes in the tar stream: a file of a few MB of data in a 1 GB hole
	// passes, a 2 KB header claiming a terabyte does not.
	defaultMaxSparseRatio = 1024
	// defaultMaxMetadataBytes is ten times what a million files with long
	// paths and a capability each need.
	defaultMaxMetadataBytes = 1 << 30
)

// WithMaxEntries sets how many entries all layers together may hold, tar
// entries and the directories their names imply counted together, before
// Flatten gives up with ErrTooManyEntries. With WithMaxMetadataBytes it bounds
// the memory Flatten takes: an entry costs about 300 bytes (measured with
// short names and no xattrs) plus its names, link target, xattrs and PAX
// records, which WithMaxMetadataBytes counts, each xattr or record with 96
// bytes of overhead. So with the defaults a hostile stack takes at most about
// 1.5 GB + 1 GiB, and a real image of a million files a few hundred MB. The
// default is 5,000,000.
func WithMaxEntries(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max entries must be positive, got %d", n)
		}
		o.maxEntries = n
		return nil
	}
}

// WithMaxLayerBytes sets how many bytes of file content one layer may hold:
// the sum of the sizes of its regular files as they unpack, sparse holes
// included, whether a later layer removes them or not. A layer holding more
// fails with ErrTooLarge, naming the entry that crossed the limit. It bounds
// the work of reading the layer's contents back (WalkContents) and of
// packing them. The default is 64 GiB.
func WithMaxLayerBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max layer bytes must be positive, got %d", n)
		}
		o.maxLayerBytes = n
		return nil
	}
}

// WithMaxImageBytes sets how many bytes of file content all layers together
// may hold, counted as WithMaxLayerBytes counts them. More fails with
// ErrTooLarge. The default is 128 GiB.
func WithMaxImageBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max image bytes must be positive, got %d", n)
		}
		o.maxImageBytes = n
		return nil
	}
}

// WithMaxSparseRatio sets how many times larger than its stored size a
// regular file may unpack. Only sparse files (GNU or PAX sparse entries)
// unpack larger than they are stored: their holes take no room in the
// layer. An entry's stored size is what the uncompressed tar stream holds
// from the end of its header to the end of the next entry's header (or the
// end of the stream), so the bytes of a stream are counted once and a layer
// of n bytes unpacks to at most about ratio × n bytes. A file beyond the
// ratio fails with ErrTooLarge. The default is 1024.
func WithMaxSparseRatio(ratio int64) Option {
	return func(o *options) error {
		if ratio <= 0 {
			return fmt.Errorf("max sparse ratio must be positive, got %d", ratio)
		}
		o.maxSparseRatio = ratio
		return nil
	}
}

// WithMaxMetadataBytes sets how many bytes of variable-length metadata all
// layers together may hold: entry names, link targets, owner names, xattrs
// and other PAX records, names and values counted. More fails with
// ErrTooLarge. Together with WithMaxEntries it bounds the memory Flatten
// takes (see WithMaxEntries). The default is 1 GiB.
func WithMaxMetadataBytes(n int64) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("max metadata bytes must be positive, got %d", n)
		}
		o.maxMetadataBytes = n
		return nil
	}
}

// WithLogger sets where Flatten reports neutralised oddities at debug level:
// absolute names made relative, ignored PAX global headers and AUFS metadata.
// The default is a logger that discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// Flatten applies layers, bottom first, to an empty root and returns the merged
// tree. It reads each layer's tar stream once, keeps only metadata, and writes
// nothing to the host. Rejected entries and malformed tar data yield a
// *LayerError wrapping ErrUnsafePath or ErrInvalidLayer (see the package
// documentation for the rules); errors from the layers themselves (opening or
// reading a blob) are returned wrapped, and a cancelled ctx stops it between
// entries.
//
// By default nothing is logged (WithLogger), the layers may hold 5,000,000
// entries together (WithMaxEntries), a layer may hold 64 GiB of file content
// (WithMaxLayerBytes) and all layers 128 GiB (WithMaxImageBytes), a sparse
// file may unpack to 1024 times its stored size (WithMaxSparseRatio), and
// names, link targets, xattrs and PAX records may take 1 GiB
// (WithMaxMetadataBytes). Layers beyond a limit yield a *LayerError wrapping
// ErrTooManyEntries or ErrTooLarge that names the entry crossing it.
func Flatten(ctx context.Context, layers []Layer, opts ...Option) (*Tree, error) {
	o := options{
		logger:           slog.New(slog.DiscardHandler),
		maxEntries:       defaultMaxEntries,
		maxLayerBytes:    defaultMaxLayerBytes,
		maxImageBytes:    defaultMaxImageBytes,
		maxSparseRatio:   defaultMaxSparseRatio,
		maxMetadataBytes: defaultMaxMetadataBytes,
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("flattening layers: %w", err)
		}
	}
	root := &node{children: map[string]*node{}, ino: impliedDir()}
	var total totals
	for li, l := range layers {
		recs, err := readLayer(ctx, li, l, &o, &total)
		if err != nil {
			return nil, err
		}
		a := applier{root: root, layer: li, o: &o, total: &total}
		// Whiteouts hide lower layers only, so they all go first, whatever
		// their position in the tar (image-spec layer.md, "Whiteouts").
		for _, r := range recs {
			if r.kind != kindAdd {
				if err := a.whiteout(r); err != nil {
					return nil, err
				}
			}
		}
		for _, r := range recs {
			if r.kind == kindAdd {
				if err := a.add(r); err != nil {
					return nil, err
				}
			}
		}
	}
	return newTree(root, slices.Clone(layers)), nil
}

// inode is what the paths of a hardlink group share: metadata and content.
type inode struct {
	meta Entry
	// name is the raw tar name of a regular file, checked again on the second read.
	name string
	// target is a symlink's Linkname split at "/", split once for all lookups.
	target []string
}

func impliedDir() *inode {
	return &inode{meta: Entry{Type: TypeDir, Mode: 0o755, Nlink: 1, Implied: true, Source: Source{Layer: -1, Entry: -1}}}
}

type node struct {
	name     string
	parent   *node
	children map[string]*node // non-nil exactly for directories
	ino      *inode
	// pathLen is the length of the node's path, to bound paths that symlinks
	// lengthen.
	pathLen int
}

func (n *node) child(name string, ino *inode) *node {
	c := &node{name: name, parent: n, ino: ino, pathLen: n.pathLen + len(name)}
	if n.parent != nil {
		c.pathLen++
	}
	if ino.meta.Type == TypeDir {
		c.children = map[string]*node{}
	}
	return c
}

type applier struct {
	root  *node
	layer int
	o     *options
	// total counts implied directories as entries, so that names of many
	// components cannot make the tree outgrow WithMaxEntries.
	total *totals
}

// errNotDir is returned by lookupDir for a path through a non-directory; callers
// turn it into a LayerError or ignore it.
var errNotDir = errors.New("not a directory")

// lookupDir resolves comps to a directory the way the kernel would inside
// chroot(root): symlinks are followed, absolute targets restart at the root and
// ".." stops at the root, so the result is always inside the tree. Unlike the
// kernel it also bounds the components one lookup walks (maxWalk), so that a
// chain of long symlinks cannot make each entry of a layer cost 40 × 4096
// steps. With create, missing components become implied directories (as
// containerd's MkdirAll does); without it a missing component yields nil.
func (a *applier) lookupDir(comps []string, create bool) (*node, string, error) {
	// pending holds what is left to walk: the name's components at the bottom,
	// the rest of each symlink target being followed above them.
	pending := [][]string{comps}
	cur := a.root
	links, steps := 0, 0
	for len(pending) > 0 {
		top := len(pending) - 1
		if len(pending[top]) == 0 {
			pending = pending[:top]
			continue
		}
		c := pending[top][0]
		pending[top] = pending[top][1:]
		if steps++; steps > maxWalk {
			return nil, fmt.Sprintf("lookup walks more than %d components through symlinks", maxWalk), ErrUnsafePath
		}
		switch c {
		case "", ".":
			continue
		case "..":
			if cur.parent != nil {
				cur = cur.parent
			}
			continue
		}
		next := cur.children[c]
		if next == nil {
			if !create {
				return nil, "", nil
			}
			if reason, err := a.checkCreate(cur, c); err != nil {
				return nil, reason, err
			}
			if a.total.entries++; a.total.entries > a.o.maxEntries {
				return nil, fmt.Sprintf("the layers hold and imply more than %d entries", a.o.maxEntries), ErrTooManyEntries
			}
			next = cur.child(c, impliedDir())
			cur.children[c] = next
		}
		switch next.ino.meta.Type {
		case TypeDir:
			cur = next
		case TypeSymlink:
			links++
			if links > maxSymlinks {
				return nil, "too many levels of symbolic links", ErrUnsafePath
			}
			if strings.HasPrefix(next.ino.meta.Linkname, "/") {
				cur = a.root
			}
			pending = append(pending, next.ino.target)
		default:
			return nil, fmt.Sprintf("%q is not a directory", nodePath(next)), errNotDir
		}
	}
	return cur, "", nil
}

// checkCreate vets a name about to be created in dir. Names from entries are
// already clean; these checks matter for names taken from symlink targets.
func (a *applier) checkCreate(dir *node, name string) (string, error) {
	switch {
	case len(name) > maxName:
		return fmt.Sprintf("name component is %d bytes, longer than %d", len(name), maxName), ErrUnsafePath
	case dir.pathLen+1+len(name) > maxPath:
		return fmt.Sprintf("resolved path is longer than %d bytes", maxPath), ErrUnsafePath
	case strings.HasPrefix(name, whiteoutPrefix):
		return "whiteout name used as a directory", ErrInvalidLayer
	}
	return "", nil
}

func (a *applier) fail(r *record, reason string, err error) error {
	if errors.Is(err, errNotDir) {
		err = ErrInvalidLayer
	}
	return &LayerError{Layer: a.layer, Entry: r.index, Name: r.name, Reason: reason, Err: err}
}

// whiteout removes r's target from the lower layers' tree, or every child for
// an opaque marker. A whiteout creates nothing, and one whose directory does not
// exist (or is not a directory) removes nothing.
func (a *applier) whiteout(r *record) error {
	dir, reason, err := a.lookupDir(r.comps, false)
	if errors.Is(err, errNotDir) || dir == nil && err == nil {
		return nil
	}
	if err != nil {
		return a.fail(r, reason, err)
	}
	if r.kind == kindOpaque {
		clear(dir.children)
		return nil
	}
	delete(dir.children, r.target)
	return nil
}

// add applies one addition: a directory over a directory takes the new
// attributes and keeps the children; anything else replaces what was there,
// subtree included (image-spec layer.md, "Changeset over existing files").
func (a *applier) add(r *record) error {
	if len(r.comps) == 0 {
		a.root.ino = &inode{meta: r.meta}
		return nil
	}
	parent, reason, err := a.lookupDir(r.comps[:len(r.comps)-1], true)
	if err != nil {
		return a.fail(r, reason, err)
	}
	base := r.comps[len(r.comps)-1]
	if reason, err := a.checkCreate(parent, base); err != nil {
		return a.fail(r, reason, err)
	}
	existing := parent.children[base]
	switch r.meta.Type {
	case TypeDir:
		if existing != nil && existing.children != nil {
			existing.ino = &inode{meta: r.meta}
			return nil
		}
		parent.children[base] = parent.child(base, &inode{meta: r.meta})
	case TypeHardlink:
		target, err := a.lookupLink(r)
		if err != nil {
			return err
		}
		if target != existing {
			parent.children[base] = parent.child(base, target.ino)
		}
	case TypeSymlink:
		parent.children[base] = parent.child(base, &inode{meta: r.meta, target: r.link})
	default:
		parent.children[base] = parent.child(base, &inode{meta: r.meta, name: r.name})
	}
	return nil
}

// lookupLink finds a hardlink's target as link(2) would inside the root:
// directories on the way are resolved like lookupDir, the last component is not
// followed, and it must exist already and not be a directory.
func (a *applier) lookupLink(r *record) (*node, error) {
	if len(r.link) == 0 {
		return nil, a.fail(r, "hardlink to the root directory", ErrInvalidLayer)
	}
	dir, reason, err := a.lookupDir(r.link[:len(r.link)-1], false)
	if err != nil {
		return nil, a.fail(r, "hardlink target: "+reason, err)
	}
	var target *node
	if dir != nil {
		target = dir.children[r.link[len(r.link)-1]]
	}
	switch {
	case target == nil:
		return nil, a.fail(r, "hardlink target does not exist (yet)", ErrInvalidLayer)
	case target.children != nil:
		return nil, a.fail(r, "hardlink target is a directory", ErrInvalidLayer)
	}
	return target, nil
}

func nodePath(n *node) string {
	var parts []string
	for ; n.parent != nil; n = n.parent {
		parts = append(parts, n.name)
	}
	if len(parts) == 0 {
		return "."
	}
	slices.Reverse(parts)
	return strings.Join(parts, "/")
}

// sortedChildren returns a directory's children in byte order of their names.
func sortedChildren(n *node) []*node {
	names := slices.Sorted(maps.Keys(n.children))
	out := make([]*node, len(names))
	for i, name := range names {
		out[i] = n.children[name]
	}
	return out
}
