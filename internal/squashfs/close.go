package squashfs

import (
	"context"
	"fmt"
	"io"
	"math"
	"math/bits"
	"slices"
	"strings"
)

// Close writes the inode, directory, fragment, export, id and xattr tables
// and the superblock, pads the image to a multiple of 4 KiB and stops the
// compression workers. It does not close the underlying writer. If that has a
// Truncate method, as *os.File does, Close truncates it at the padded end,
// dropping whatever lay beyond (such as data of a file given back); an
// io.OffsetWriter has none, and there the bytes beyond are zeroed. A hardlink
// whose target was never added fails Close with an *EntryError wrapping
// ErrHardlinkTarget; the image is then incomplete.
func (w *Writer) Close(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.closed {
		return ErrClosed
	}
	w.closed = true
	w.flushFragment()
	w.pipe.stop()
	if err := w.pipe.error(); err != nil {
		return err
	}
	if err := w.resolveHardlinks(); err != nil {
		return err
	}
	l := &layout{Writer: w}
	return l.write(ctx)
}

func (w *Writer) resolveHardlinks() error {
	for _, h := range w.hardlinks {
		t := w.nodes[h.link]
		for steps := 0; t != nil && t.typ == TypeHardlink; steps++ {
			if steps > len(w.hardlinks) {
				return entryErr(h.nameOrPath(), ErrHardlinkTarget, "hardlinks form a cycle")
			}
			t = w.nodes[t.link]
		}
		switch {
		case t == nil:
			return entryErr(h.nameOrPath(), ErrHardlinkTarget, "target %q was not added", h.link)
		case t.typ == TypeDir:
			return entryErr(h.nameOrPath(), ErrHardlinkTarget, "target %q is a directory", h.link)
		}
		h.target = t
		t.nlink++
	}
	return nil
}

// nameOrPath returns the path of n in the image.
func (n *node) nameOrPath() string {
	if n.parent == nil {
		return "."
	}
	if n.parent.parent == nil {
		return n.name
	}
	return n.parent.nameOrPath() + "/" + n.name
}

// owner returns the node whose inode n's directory entry names.
func (n *node) owner() *node {
	if n.target != nil {
		return n.target
	}
	return n
}

// layout holds the state of writing the tables.
type layout struct {
	*Writer
	inodes, dirs metaStream
	count        uint32 // inodes numbered
	refs         []uint64
	ids          []uint32
	idIndex      map[uint32]uint16
	xattrKV      metaStream
	xattrIDs     []le // one 16-byte record per distinct xattr set
	xattrIndex   map[string]uint32
	err          error
}

func (l *layout) write(ctx context.Context) error {
	comp, err := newCompressor(l.opts.comp, l.opts.level, l.opts.blockSize)
	if err != nil {
		return err
	}
	l.inodes.comp, l.dirs.comp, l.xattrKV.comp = comp, comp, comp
	l.idIndex, l.xattrIndex = map[uint32]uint16{}, map[string]uint32{}
	imageTime := l.maxTime
	if l.opts.modTime != nil {
		imageTime = uint32(min(max(l.opts.modTime.Unix(), 0), math.MaxUint32))
	}
	l.sortAndDate(l.root, imageTime)
	l.number(l.root)
	l.refs = make([]uint64, l.count)
	if err := l.writeDir(ctx, l.root); err != nil {
		return err
	}
	if len(l.ids) > math.MaxUint16 {
		return ErrTooManyIDs
	}

	sb := l.superblock(imageTime)
	out := &tableWriter{w: l.w, pos: l.pipe.pos}
	if err := l.writeTables(out, comp, &sb); err != nil {
		return err
	}
	sb.BytesUsed = out.pos
	head := append(sb.bytes(), compressorOptions(l.opts.comp, l.opts.level)...)
	if _, err := l.w.WriteAt(head, 0); err != nil {
		return fmt.Errorf("writing superblock: %w", err)
	}
	if err := out.pad(l.pipe.high); err != nil {
		return err
	}
	l.opts.logger.DebugContext(ctx, "squashfs image written", "bytes", sb.BytesUsed, "inodes", sb.InodeCount,
		"fragments", sb.FragmentCount, "ids", sb.IDCount, "xattr_sets", len(l.xattrIDs))
	return nil
}

// superblock returns the superblock but for the table positions and the
// bytes used, which writeTables and write fill in.
func (l *layout) superblock(imageTime uint32) superblock {
	sb := superblock{
		Magic:             magic,
		InodeCount:        l.count,
		ModTime:           imageTime,
		BlockSize:         uint32(l.opts.blockSize),
		FragmentCount:     uint32(len(l.frags)),
		Compressor:        uint16(l.opts.comp),
		BlockLog:          uint16(bits.TrailingZeros(uint(l.opts.blockSize))),
		IDCount:           uint16(len(l.ids)),
		VersionMajor:      4,
		RootInode:         l.root.ref,
		ExportTableStart:  invalidRef,
		XattrIDTableStart: invalidRef,
	}
	if l.opts.dedup {
		sb.Flags |= flagDuplicates
	}
	if l.opts.level == 0 {
		sb.Flags |= flagUncompressedInodes | flagUncompressedData | flagUncompressedFragments | flagUncompressedXattrs | flagUncompressedIDs
	}
	if compressorOptions(l.opts.comp, l.opts.level) != nil {
		sb.Flags |= flagCompressorOptions
	}
	return sb
}

// writeTables writes the tables after the data, in the order the kernel
// expects them, and records their positions and flags in sb.
func (l *layout) writeTables(out *tableWriter, comp *compressor, sb *superblock) error {
	inodeTable, err := l.inodes.bytes()
	if err != nil {
		return err
	}
	sb.InodeTableStart = out.put(inodeTable)
	dirTable, err := l.dirs.bytes()
	if err != nil {
		return err
	}
	sb.DirTableStart = out.put(dirTable)

	var frags le
	for _, f := range l.frags {
		frags = frags.u64(f.start).u32(f.size).u32(0)
	}
	if sb.FragmentTableStart, err = out.lookupTable(comp, frags); err != nil {
		return err
	}
	if l.opts.export {
		var refs le
		for _, r := range l.refs {
			refs = refs.u64(r)
		}
		if sb.ExportTableStart, err = out.lookupTable(comp, refs); err != nil {
			return err
		}
		sb.Flags |= flagExportable
	}
	var ids le
	for _, id := range l.ids {
		ids = ids.u32(id)
	}
	if sb.IDTableStart, err = out.lookupTable(comp, ids); err != nil {
		return err
	}
	if len(l.xattrIDs) == 0 {
		sb.Flags |= flagNoXattrs
	} else if sb.XattrIDTableStart, err = l.writeXattrs(out, comp); err != nil {
		return err
	}
	return out.err
}

// sortAndDate sorts every directory's entries by name and dates implied
// directories.
func (l *layout) sortAndDate(d *node, imageTime uint32) {
	if !d.explicit {
		d.mtime = imageTime
	}
	slices.SortFunc(d.children, func(a, b *node) int { return strings.Compare(a.name, b.name) })
	for _, c := range d.children {
		if c.typ == TypeDir {
			l.sortAndDate(c, imageTime)
		}
	}
}

// number gives inode numbers in the order writeDir writes the inodes: a
// directory's subdirectories, then its other entries, then itself. Children
// come before parents because a directory listing needs its entries' inode
// positions, and a directory inode needs its listing's position.
func (l *layout) number(d *node) {
	for _, c := range d.children {
		if c.typ == TypeDir {
			l.number(c)
		}
	}
	for _, c := range d.children {
		if o := c.owner(); o.typ != TypeDir && o.ino == 0 {
			l.count++
			o.ino = l.count
		}
	}
	l.count++
	d.ino = l.count
}

func (l *layout) writeDir(ctx context.Context, d *node) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	for _, c := range d.children {
		if c.typ == TypeDir {
			if err := l.writeDir(ctx, c); err != nil {
				return err
			}
		}
	}
	for _, c := range d.children {
		if o := c.owner(); o.typ != TypeDir && !o.written {
			if err := l.writeInode(o); err != nil {
				return err
			}
		}
	}
	return l.writeDirInode(d)
}

// inodeHeader starts an inode record of type t for n and records its position.
func (l *layout) inodeHeader(n *node, t uint16) le {
	block, off := l.inodes.ref()
	n.ref = block<<16 | uint64(off)
	n.written = true
	l.refs[n.ino-1] = n.ref
	return le(nil).u16(t).u16(n.perm).u16(l.id(n.uid)).u16(l.id(n.gid)).u32(n.mtime).u32(n.ino)
}

func (l *layout) id(v uint32) uint16 {
	i, ok := l.idIndex[v]
	if !ok {
		i = uint16(len(l.ids)) // wraps past 65535; write reports ErrTooManyIDs
		l.idIndex[v] = i
		l.ids = append(l.ids, v)
	}
	return i
}

func (n *node) basicType() uint16 {
	switch n.typ {
	case TypeDir:
		return inodeDir
	case TypeSymlink:
		return inodeSymlink
	case TypeBlockDevice:
		return inodeBlockDev
	case TypeCharDevice:
		return inodeCharDev
	case TypeFIFO:
		return inodeFIFO
	case TypeSocket:
		return inodeSocket
	}
	return inodeFile
}

func (l *layout) writeInode(n *node) error {
	nlink := 1 + n.nlink
	xid := l.xattrID(n.xattrs)
	t := n.basicType()
	ext := xid != noXattr
	var rec le
	switch n.typ {
	case TypeRegular:
		f := n.file
		start := f.start
		if !f.started {
			start = 0
		}
		ext = ext || nlink > 1 || start > math.MaxUint32 || f.size > math.MaxUint32 || f.sparse > 0
		if ext {
			rec = l.inodeHeader(n, t+extended).u64(start).u64(f.size).u64(f.sparse).u32(nlink).u32(f.frag).u32(f.fragOff).u32(xid)
		} else {
			rec = l.inodeHeader(n, t).u32(uint32(start)).u32(f.frag).u32(f.fragOff).u32(uint32(f.size))
		}
		for i := range f.size / uint64(l.opts.blockSize) {
			rec = rec.u32(f.block(i))
		}
	case TypeSymlink:
		if ext {
			t += extended
		}
		rec = l.inodeHeader(n, t).u32(nlink).u32(uint32(len(n.link))).str(n.link)
	case TypeCharDevice, TypeBlockDevice:
		if ext {
			t += extended
		}
		rec = l.inodeHeader(n, t).u32(nlink).u32(n.rdev)
	default: // FIFO, socket
		if ext {
			t += extended
		}
		rec = l.inodeHeader(n, t).u32(nlink)
	}
	if ext && n.typ != TypeRegular {
		rec = rec.u32(xid)
	}
	return l.inodes.write(rec)
}

type dirIndex struct {
	index uint32 // offset of the header in the listing
	start uint32 // directory table block holding the header
	name  string
}

// writeDirInode writes d's listing to the directory table, then d's inode.
//
// A listing is a run of headers, each followed by up to 256 entries whose
// inodes lie in the same inode table block and whose inode numbers are
// within ±32767 of the header's. A new header is also started before the
// listing would run more than 8 KiB past the last indexed header; such
// headers are listed in the directory index of an extended directory inode,
// so lookups in big directories skip straight to the right block.
func (l *layout) writeDirInode(d *node) error {
	type group struct {
		from, to int
		offset   uint32
		indexed  bool
	}
	var groups []group
	var size, indexedAt uint32
	for i, c := range d.children {
		o := c.owner()
		es := uint32(8 + len(c.name))
		if len(groups) > 0 {
			g := &groups[len(groups)-1]
			first := d.children[g.from].owner()
			delta := int64(o.ino) - int64(first.ino)
			fits := g.to-g.from < maxDirCount && o.ref>>16 == first.ref>>16 && delta >= math.MinInt16 && delta <= math.MaxInt16
			if size+es-indexedAt > metadataSize {
				fits = false
			}
			if fits {
				g.to = i + 1
				size += es
				continue
			}
		}
		g := group{from: i, to: i + 1, offset: size}
		if len(groups) > 0 && size+12+es-indexedAt > metadataSize {
			g.indexed = true
			indexedAt = size
		}
		groups = append(groups, g)
		size += 12 + es
	}

	startBlock, startOff := l.dirs.ref()
	var index []dirIndex
	for _, g := range groups {
		if g.indexed {
			block, _ := l.dirs.ref()
			index = append(index, dirIndex{index: g.offset, start: uint32(block), name: d.children[g.from].name})
		}
		first := d.children[g.from].owner()
		rec := le(nil).u32(uint32(g.to - g.from - 1)).u32(uint32(first.ref >> 16)).u32(first.ino)
		for _, c := range d.children[g.from:g.to] {
			o := c.owner()
			rec = rec.u16(uint16(o.ref)).u16(uint16(int16(int64(o.ino) - int64(first.ino)))).
				u16(o.basicType()).u16(uint16(len(c.name) - 1)).str(c.name)
		}
		if err := l.dirs.write(rec); err != nil {
			return err
		}
	}

	nlink := uint32(2)
	for _, c := range d.children {
		if c.typ == TypeDir {
			nlink++
		}
	}
	parent := l.count + 1
	if d.parent != nil {
		parent = d.parent.ino
	}
	fileSize := size + 3
	xid := l.xattrID(d.xattrs)
	if len(index) == 0 && xid == noXattr && fileSize <= math.MaxUint16 && startBlock <= math.MaxUint32 {
		rec := l.inodeHeader(d, inodeDir).u32(uint32(startBlock)).u32(nlink).u16(uint16(fileSize)).u16(startOff).u32(parent)
		return l.inodes.write(rec)
	}
	rec := l.inodeHeader(d, inodeDir+extended).u32(nlink).u32(fileSize).u32(uint32(startBlock)).u32(parent).
		u16(uint16(len(index))).u16(startOff).u32(xid)
	for _, ix := range index {
		rec = rec.u32(ix.index).u32(ix.start).u32(uint32(len(ix.name) - 1)).str(ix.name)
	}
	return l.inodes.write(rec)
}

// xattrID returns the index of the xattr set xs in the xattr id table,
// writing the set on first use, or noXattr for an empty set.
func (l *layout) xattrID(xs []xattr) uint32 {
	if len(xs) == 0 {
		return noXattr
	}
	var kv le
	for _, x := range xs {
		kv = kv.u16(x.prefix).u16(uint16(len(x.name))).str(x.name).u32(uint32(len(x.value))).str(x.value)
	}
	if id, ok := l.xattrIndex[string(kv)]; ok {
		return id
	}
	block, off := l.xattrKV.ref()
	if err := l.xattrKV.write(kv); err != nil && l.err == nil {
		l.err = err
	}
	id := uint32(len(l.xattrIDs))
	l.xattrIndex[string(kv)] = id
	l.xattrIDs = append(l.xattrIDs, le(nil).u64(block<<16|uint64(off)).u32(uint32(len(xs))).u32(uint32(len(kv))))
	return id
}

// writeXattrs writes the key/value area, the id table and its header, and
// returns the header's position.
func (l *layout) writeXattrs(out *tableWriter, comp *compressor) (uint64, error) {
	if l.err != nil {
		return 0, l.err
	}
	kv, err := l.xattrKV.bytes()
	if err != nil {
		return 0, err
	}
	kvStart := out.put(kv)
	ids := metaStream{comp: comp}
	for _, rec := range l.xattrIDs {
		if err := ids.write(rec); err != nil {
			return 0, err
		}
	}
	idBlocks, err := ids.bytes()
	if err != nil {
		return 0, err
	}
	idStart := out.put(idBlocks)
	hdr := le(nil).u64(kvStart).u32(uint32(len(l.xattrIDs))).u32(0)
	for _, b := range ids.starts {
		hdr = hdr.u64(idStart + b)
	}
	return out.put(hdr), nil
}

// tableWriter appends tables after the data area.
type tableWriter struct {
	w   io.WriterAt
	pos uint64
	err error
}

// put writes p at the end and returns where it starts.
func (t *tableWriter) put(p []byte) uint64 {
	start := t.pos
	if t.err == nil {
		if _, err := t.w.WriteAt(p, int64(t.pos)); err != nil {
			t.err = fmt.Errorf("writing tables at %d: %w", t.pos, err)
		}
	}
	t.pos += uint64(len(p))
	return start
}

// lookupTable writes records as metadata blocks followed by the list of the
// blocks' positions, and returns the position of the list.
func (t *tableWriter) lookupTable(comp *compressor, records []byte) (uint64, error) {
	m := metaStream{comp: comp}
	if err := m.write(records); err != nil {
		return 0, err
	}
	blocks, err := m.bytes()
	if err != nil {
		return 0, err
	}
	start := t.put(blocks)
	var list le
	for _, b := range m.starts {
		list = list.u64(start + b)
	}
	return t.put(list), nil
}

// pad zero-fills the image to a multiple of 4 KiB, and over any bytes left
// past that by a rewound duplicate, or truncates them when it can.
func (t *tableWriter) pad(high uint64) error {
	end := (t.pos + 4095) &^ 4095
	if tr, ok := t.w.(interface{ Truncate(int64) error }); ok {
		if err := tr.Truncate(int64(end)); err != nil {
			return fmt.Errorf("truncating image: %w", err)
		}
		return nil
	}
	if n := (max(end, high)+4095)&^4095 - t.pos; n > 0 {
		if _, err := t.w.WriteAt(make([]byte, n), int64(t.pos)); err != nil {
			return fmt.Errorf("padding image: %w", err)
		}
	}
	return nil
}
