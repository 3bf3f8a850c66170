package squashfs

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log/slog"
	"math"
	"runtime"
	"slices"
	"strings"
	"sync"
	"time"
)

// Type is the kind of an Entry.
type Type uint8

// Entry types.
const (
	TypeRegular Type = iota
	TypeDir
	TypeSymlink
	// TypeHardlink adds another name for the inode of the entry at Linkname.
	// Only Path and Linkname of a hardlink entry are used.
	TypeHardlink
	TypeCharDevice
	TypeBlockDevice
	TypeFIFO
	TypeSocket
)

// Entry is one file system object to add to the image.
type Entry struct {
	// Path is the slash-separated path inside the image: no leading or
	// trailing slash, no "." or ".." or empty elements, no NUL, elements of at
	// most 256 bytes. "." is the root directory.
	Path string
	Type Type
	// Mode holds the permission bits and fs.ModeSetuid, fs.ModeSetgid and
	// fs.ModeSticky. The Unix bits 0o4000, 0o2000 and 0o1000 (as in a tar
	// header) are accepted too. Type bits are ignored: Type decides.
	Mode     fs.FileMode
	UID, GID uint32
	// ModTime is stored in whole seconds, clamped to the range squashfs can
	// store (1970 to 2106).
	ModTime time.Time
	// Size is the length of Content, for TypeRegular.
	Size int64
	// Linkname is the target of a symlink, at most 4095 bytes as on Linux, or
	// the path of the entry a hardlink shares its inode with.
	Linkname string
	// Devmajor and Devminor number a device; major < 4096, minor < 1<<20.
	Devmajor, Devminor uint32
	// Xattrs maps names with a user., trusted. or security. prefix to values.
	// Names are at most 255 bytes, prefix included, and values at most 64 KiB,
	// as Linux takes them; an entry has at most 128 xattrs of at most 128 KiB
	// together, names and values counted.
	Xattrs map[string]string
	// Content supplies exactly Size bytes for a TypeRegular entry. Add reads
	// it to the end and does not close it.
	Content io.Reader
}

// Option configures a Writer.
type Option func(*options) error

type options struct {
	comp      Compressor
	level     int
	workers   int
	blockSize int
	dedup     bool
	export    bool
	modTime   *time.Time
	logger    *slog.Logger
}

// DefaultCompressionLevel is the zlib level of Gzip compression used unless
// WithCompression or WithCompressionLevel says otherwise. On a real tree of programs and libraries its image is
// 5.5 % larger than mksquashfs' level 9 and 4.8 % larger than its level 6, for 12 and 3.7 times less CPU (see doc.go).
const DefaultCompressionLevel = 6

// WithCompressionLevel sets the zlib level of Gzip compression, 1 (fastest)
// to 9 (smallest), or 0 to store data and metadata uncompressed; it is
// WithCompression(Gzip, level). The default is 6.
func WithCompressionLevel(level int) Option {
	return WithCompression(Gzip, level)
}

// WithCompression sets the compressor and its level: for Gzip the zlib level
// 1 to 9, for Zstd a zstd level 1 to 22, which the encoder maps to its four
// speeds (1–2 fastest, 3–5 default, 6–9 better, 10–22 best compression). Level
// 0 stores data and metadata uncompressed. A level other than the one
// mksquashfs assumes (9 for gzip, 15 for zstd) is recorded in compressor
// options after the superblock, as mksquashfs writes them, so unsquashfs -s
// reports it. Choose Zstd only for readers known to have it (see Zstd); its
// levels 10 to 22 take about 35 MB more memory per worker than the others.
// The default is Gzip at level 6.
func WithCompression(c Compressor, level int) Option {
	return func(o *options) error {
		switch c {
		case Gzip:
			if level < 0 || level > 9 {
				return fmt.Errorf("gzip compression level must be 0 to 9, got %d", level)
			}
		case Zstd:
			if level < 0 || level > zstdMaxLevel {
				return fmt.Errorf("zstd compression level must be 0 to %d, got %d", zstdMaxLevel, level)
			}
		default:
			return fmt.Errorf("unsupported compressor %v", c)
		}
		o.comp, o.level = c, level
		return nil
	}
}

// WithWorkers sets how many blocks are compressed at once. The output is the
// same for any value. The default is runtime.GOMAXPROCS(0).
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("workers must be positive, got %d", n)
		}
		o.workers = n
		return nil
	}
}

// WithBlockSize sets the data block size, a power of two from 4 KiB to 1 MiB.
// The default is 128 KiB.
func WithBlockSize(n int) Option {
	return func(o *options) error {
		if n < 4096 || n > 1<<20 || n&(n-1) != 0 {
			return fmt.Errorf("block size must be a power of two from 4096 to 1048576, got %d", n)
		}
		o.blockSize = n
		return nil
	}
}

// WithDeduplication sets whether a regular file whose contents (SHA-256 and
// size) equal an earlier file's shares that file's blocks and fragment
// instead of storing them again. The default is true.
func WithDeduplication(on bool) Option {
	return func(o *options) error {
		o.dedup = on
		return nil
	}
}

// WithExportTable sets whether the image carries the inode lookup table that
// lets the kernel export it over NFS. It costs 8 bytes per inode. The default
// is true.
func WithExportTable(on bool) Option {
	return func(o *options) error {
		o.export = on
		return nil
	}
}

// WithModTime sets the image's modification time in the superblock and the
// time of directories that are implied rather than added. The default is the
// newest ModTime of all entries added, so the same entries give the same image.
func WithModTime(t time.Time) Option {
	return func(o *options) error {
		o.modTime = &t
		return nil
	}
}

// WithLogger sets where the Writer logs. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// Writer writes a squashfs 4.0 image to an io.WriterAt. Add streams file
// contents to the image as they come; directory structure and other metadata
// are kept in memory and written by Close.
//
// Entries may be added in any order. A parent directory that is never added
// is implied: mode 0755, owner 0:0, the image's modification time. A
// directory added after it was implied takes the added metadata. Hardlinks
// may name a target added later. The data of files lands in the image in the
// order they are added, so the same entries in the same order always produce
// the same bytes.
//
// A Writer is safe for concurrent use, but Add calls are serialised.
type Writer struct {
	mu     sync.Mutex
	w      io.WriterAt
	opts   options
	pipe   *pipeline
	closed bool

	nodes     map[string]*node
	root      *node
	hardlinks []*node
	maxTime   uint32

	frags   []*fragEntry
	frag    *slot // the fragment block being filled
	fragLen int
	tail    []byte
	zero    []byte
	hasher  hash.Hash
	digests map[digest]*fileData
}

type digest struct {
	size uint64
	sum  [sha256.Size]byte
}

// node is one path in the tree.
type node struct {
	name     string
	parent   *node
	children []*node
	typ      Type
	explicit bool
	perm     uint16
	uid, gid uint32
	mtime    uint32
	xattrs   []xattr
	link     string // symlink target, hardlink target path
	rdev     uint32
	file     *fileData

	// Set by Close.
	target  *node // for hardlinks: the node owning the inode
	nlink   uint32
	ino     uint32
	ref     uint64
	written bool
}

type xattr struct {
	prefix uint16
	name   string // without the prefix
	value  string
}

// NewWriter returns a Writer that writes an image to w, starting at offset 0.
// To place the image elsewhere in a file, pass an io.OffsetWriter.
//
// The defaults are: gzip (zlib) level 6 (WithCompression), 128 KiB blocks
// (WithBlockSize), runtime.GOMAXPROCS(0) compression workers (WithWorkers),
// deduplication of identical files (WithDeduplication), an export table
// (WithExportTable), the newest entry's time as image time (WithModTime) and
// no logging (WithLogger). Close must be called to finish the image and stop
// the workers, also after an error.
func NewWriter(w io.WriterAt, opts ...Option) (*Writer, error) {
	o := options{
		comp:      Gzip,
		level:     DefaultCompressionLevel,
		workers:   runtime.GOMAXPROCS(0),
		blockSize: 128 << 10,
		dedup:     true,
		export:    true,
		logger:    slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("squashfs writer option: %w", err)
		}
	}
	start := uint64(superblockSize + len(compressorOptions(o.comp, o.level)))
	pipe, err := newPipeline(w, start, o.workers, o.blockSize, o.comp, o.level)
	if err != nil {
		return nil, err
	}
	root := &node{name: ".", typ: TypeDir, perm: 0o755}
	sw := &Writer{
		w:       w,
		opts:    o,
		pipe:    pipe,
		nodes:   map[string]*node{".": root},
		root:    root,
		tail:    make([]byte, o.blockSize),
		zero:    make([]byte, o.blockSize),
		digests: map[digest]*fileData{},
	}
	if o.dedup {
		sw.hasher = sha256.New()
	}
	return sw, nil
}

// Add adds one entry to the image, reading a regular file's Content to the
// end. An invalid entry is rejected with an *EntryError wrapping one of the
// Err… sentinels, and the Writer stays usable: nothing of the entry is kept.
// An error writing the image is returned by this and every later call.
func (w *Writer) Add(ctx context.Context, e Entry) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	if err := w.pipe.error(); err != nil {
		return err
	}
	if !validPath(e.Path) {
		return entryErr(e.Path, ErrInvalidPath, "")
	}
	n, err := newNode(e)
	if err != nil {
		return err
	}
	if old := w.nodes[e.Path]; old != nil {
		if old.typ != TypeDir || old.explicit {
			return entryErr(e.Path, ErrDuplicatePath, "")
		}
		if e.Type != TypeDir {
			return entryErr(e.Path, ErrDuplicatePath, "a directory is implied there by earlier entries")
		}
		old.explicit, old.perm, old.uid, old.gid, old.mtime, old.xattrs = true, n.perm, n.uid, n.gid, n.mtime, n.xattrs
		w.maxTime = max(w.maxTime, n.mtime)
		return nil
	}
	if err := w.checkParents(e.Path); err != nil {
		return err
	}
	switch e.Type {
	case TypeRegular:
		if n.file, err = w.addContent(ctx, e); err != nil {
			return err
		}
	case TypeHardlink:
		if !validPath(e.Linkname) || e.Linkname == "." {
			return entryErr(e.Path, ErrHardlinkTarget, "invalid target %q", e.Linkname)
		}
		if t := w.nodes[e.Linkname]; t != nil && t.typ == TypeDir {
			return entryErr(e.Path, ErrHardlinkTarget, "target %q is a directory", e.Linkname)
		}
		w.hardlinks = append(w.hardlinks, n)
	}
	w.insert(e.Path, n)
	if e.Type != TypeHardlink {
		w.maxTime = max(w.maxTime, n.mtime)
	}
	return nil
}

// validPath reports whether p is "." or a clean relative path: elements
// separated by single slashes, none empty, "." or "..", none longer than
// 256 bytes, no NUL. Unlike io/fs.ValidPath it accepts any other bytes, as
// Linux does.
func validPath(p string) bool {
	if p == "." {
		return true
	}
	if p == "" || strings.IndexByte(p, 0) >= 0 {
		return false
	}
	for elem := range strings.SplitSeq(p, "/") {
		if elem == "" || elem == "." || elem == ".." || len(elem) > maxNameLen {
			return false
		}
	}
	return true
}

func newNode(e Entry) (*node, error) {
	n := &node{typ: e.Type, explicit: true, uid: e.UID, gid: e.GID, perm: permBits(e.Mode)}
	n.mtime = uint32(min(max(e.ModTime.Unix(), 0), math.MaxUint32))
	if e.ModTime.IsZero() {
		n.mtime = 0
	}
	if e.Path == "." && e.Type != TypeDir {
		return nil, entryErr(e.Path, ErrInvalidEntry, "the root must be a directory")
	}
	switch e.Type {
	case TypeRegular:
		if e.Size < 0 {
			return nil, entryErr(e.Path, ErrInvalidEntry, "negative size %d", e.Size)
		}
		if e.Content == nil && e.Size > 0 {
			return nil, entryErr(e.Path, ErrInvalidEntry, "no content reader")
		}
	case TypeDir, TypeFIFO, TypeSocket:
	case TypeSymlink:
		if e.Linkname == "" || strings.IndexByte(e.Linkname, 0) >= 0 {
			return nil, entryErr(e.Path, ErrInvalidEntry, "symlink target %q", e.Linkname)
		}
		// Linux cuts longer targets short (4096 bytes) or refuses the inode.
		if len(e.Linkname) > maxSymlinkLen {
			return nil, entryErr(e.Path, ErrInvalidEntry, "symlink target of %d bytes, longer than %d", len(e.Linkname), maxSymlinkLen)
		}
		n.link = e.Linkname
	case TypeHardlink:
		n.link = e.Linkname
		return n, nil
	case TypeCharDevice, TypeBlockDevice:
		if e.Devmajor >= 1<<12 || e.Devminor >= 1<<20 {
			return nil, entryErr(e.Path, ErrInvalidEntry, "device %d:%d out of range", e.Devmajor, e.Devminor)
		}
		n.rdev = e.Devminor&0xff | e.Devmajor<<8 | (e.Devminor&^0xff)<<12
	default:
		return nil, entryErr(e.Path, ErrInvalidEntry, "unknown type %d", e.Type)
	}
	if err := checkXattrs(e.Xattrs); err != nil {
		return nil, entryErr(e.Path, ErrXattr, "%s", err)
	}
	for name, value := range e.Xattrs {
		x, ok := splitXattr(name)
		if !ok {
			return nil, entryErr(e.Path, ErrXattr, "%q", name)
		}
		x.value = value
		n.xattrs = append(n.xattrs, x)
	}
	slices.SortFunc(n.xattrs, func(a, b xattr) int {
		if a.prefix != b.prefix {
			return int(a.prefix) - int(b.prefix)
		}
		return strings.Compare(a.name, b.name)
	})
	return n, nil
}

// checkXattrs holds an entry's xattrs to what Linux can set and unsquashfs
// can restore: names of at most 255 bytes, values of at most 64 KiB, and at
// most 128 xattrs of 128 KiB together, names and values counted.
func checkXattrs(xs map[string]string) error {
	if len(xs) > maxXattrs {
		return fmt.Errorf("%d xattrs, more than %d", len(xs), maxXattrs)
	}
	total := 0
	for name, value := range xs {
		switch {
		case len(name) > maxXattrName:
			return fmt.Errorf("name of %d bytes, longer than %d", len(name), maxXattrName)
		case len(value) > maxXattrValue:
			return fmt.Errorf("%q has a value of %d bytes, more than %d", name, len(value), maxXattrValue)
		}
		total += len(name) + len(value)
	}
	if total > maxXattrBytes {
		return fmt.Errorf("xattrs of %d bytes together, more than %d", total, maxXattrBytes)
	}
	return nil
}

func splitXattr(name string) (xattr, bool) {
	for i, p := range xattrPrefixes() {
		if rest, ok := strings.CutPrefix(name, p); ok && rest != "" {
			return xattr{prefix: uint16(i), name: rest}, true
		}
	}
	return xattr{}, false
}

func permBits(m fs.FileMode) uint16 {
	p := uint16(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

// checkParents reports whether every existing ancestor of p is a directory.
func (w *Writer) checkParents(p string) error {
	for dir := parentPath(p); ; dir = parentPath(dir) {
		if n := w.nodes[dir]; n != nil {
			if n.typ != TypeDir {
				return entryErr(p, ErrNotDirectory, "%q is not a directory", dir)
			}
			return nil
		}
	}
}

func parentPath(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return "."
}

// insert links n in at p, implying missing parent directories.
func (w *Writer) insert(p string, n *node) {
	dir := parentPath(p)
	parent := w.nodes[dir]
	if parent == nil {
		parent = &node{typ: TypeDir, perm: 0o755}
		w.insert(dir, parent)
	}
	n.name, n.parent = p[len(p)-len(baseName(p)):], parent
	parent.children = append(parent.children, n)
	w.nodes[p] = n
}

func baseName(p string) string {
	return p[strings.LastIndexByte(p, '/')+1:]
}

// addContent streams a regular file's content into the image: full blocks
// through the pipeline, the tail into a fragment block.
func (w *Writer) addContent(ctx context.Context, e Entry) (*fileData, error) {
	size := uint64(e.Size)
	bs := uint64(w.opts.blockSize)
	// The block list grows as blocks are written, never from the declared
	// size: a hostile entry may declare exabytes and supply nothing.
	f := &fileData{size: size, frag: noFragment}
	if w.hasher != nil {
		w.hasher.Reset()
	}
	fail := func(err error) (*fileData, error) {
		w.pipe.rewind(f)
		switch {
		case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
			return nil, entryErr(e.Path, ErrSizeMismatch, "content ended before %d bytes", size)
		case ctx.Err() != nil:
			return nil, ctx.Err()
		}
		return nil, entryErr(e.Path, fmt.Errorf("reading content: %w", err), "")
	}
	for i := range size / bs {
		if err := ctx.Err(); err != nil {
			return fail(err)
		}
		if err := w.pipe.error(); err != nil {
			w.pipe.rewind(f)
			return nil, err
		}
		s, err := w.pipe.acquire(ctx)
		if err != nil {
			return fail(err)
		}
		data := s.raw[:bs]
		if _, err := io.ReadFull(e.Content, data); err != nil {
			w.pipe.release(s)
			return fail(err)
		}
		if w.hasher != nil {
			w.hasher.Write(data)
		}
		if bytes.Equal(data, w.zero) {
			f.sparse += bs
			w.pipe.release(s)
			continue
		}
		w.pipe.submit(&job{slot: s, data: data, file: f, index: i})
	}
	tail := w.tail[:size%bs]
	if _, err := io.ReadFull(e.Content, tail); err != nil {
		return fail(err)
	}
	if e.Content != nil {
		var extra [1]byte
		if n, err := io.ReadAtLeast(e.Content, extra[:], 1); n > 0 {
			w.pipe.rewind(f)
			return nil, entryErr(e.Path, ErrSizeMismatch, "content longer than %d bytes", size)
		} else if !errors.Is(err, io.EOF) {
			return fail(err)
		}
	}
	var d digest
	if w.hasher != nil && size > 0 {
		w.hasher.Write(tail)
		d.size = size
		w.hasher.Sum(d.sum[:0])
		if orig := w.digests[d]; orig != nil {
			w.pipe.rewind(f)
			return orig, nil
		}
	}
	if len(tail) > 0 {
		if err := w.addFragment(ctx, f, tail); err != nil {
			return fail(err)
		}
	}
	if d.size > 0 {
		w.digests[d] = f
	}
	return f, nil
}

// addFragment appends tail to the fragment block being filled, starting a new
// one when it does not fit. The new block's slot is acquired before the full
// one is flushed: if acquiring fails, the caller rewinds f, which must not give
// back a fragment block written after f's blocks.
func (w *Writer) addFragment(ctx context.Context, f *fileData, tail []byte) error {
	if w.frag == nil || w.fragLen+len(tail) > w.opts.blockSize {
		s, err := w.pipe.acquire(ctx)
		if err != nil {
			return err
		}
		w.flushFragment()
		w.frag, w.fragLen = s, 0
		w.frags = append(w.frags, &fragEntry{})
	}
	copy(w.frag.raw[w.fragLen:], tail)
	f.frag, f.fragOff = uint32(len(w.frags)-1), uint32(w.fragLen)
	w.fragLen += len(tail)
	return nil
}

func (w *Writer) flushFragment() {
	if w.frag == nil {
		return
	}
	w.pipe.submit(&job{slot: w.frag, data: w.frag.raw[:w.fragLen], frag: w.frags[len(w.frags)-1]})
	w.frag = nil
}
