package squashfs_test

// A minimal squashfs 4.0 reader, written from the format description
// independently of the writer's code, as the oracle of the round-trip and
// fuzz tests. It checks structure as it reads: sorted names, directory index
// entries that point at headers, link counts.

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

type sqImage struct {
	r         io.ReaderAt
	comp      uint16 // 1 zlib, 6 zstd
	blockSize uint32
	inodeTab  uint64
	dirTab    uint64
	ids       []uint32
	frags     []sqFrag
	xattrKV   uint64
	xattrIDs  []byte
	inodes    uint32
	rootRef   uint64
	bytesUsed uint64
}

type sqFrag struct {
	start uint64
	size  uint32
}

// sqNode is what the reader found at one path.
type sqNode struct {
	Type     string // "file", "dir", "symlink", "char", "block", "fifo", "socket"
	Perm     uint16
	UID, GID uint32
	MTime    uint32
	Size     uint64
	Link     string
	Major    uint32
	Minor    uint32
	Xattrs   map[string]string
	Content  []byte
	Ino      uint32
	Nlink    uint32
	Extended bool
	Index    int // directory index entries
}

func le16(b []byte) uint16 { return binary.LittleEndian.Uint16(b) }
func le32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func le64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }

func openImage(r io.ReaderAt) (*sqImage, error) {
	sb := make([]byte, 96)
	if _, err := r.ReadAt(sb, 0); err != nil {
		return nil, fmt.Errorf("superblock: %w", err)
	}
	if string(sb[:4]) != "hsqs" || le16(sb[28:]) != 4 || le16(sb[30:]) != 0 {
		return nil, fmt.Errorf("not a squashfs 4.0 superblock")
	}
	comp := le16(sb[20:])
	if comp != 1 && comp != 6 {
		return nil, fmt.Errorf("compressor %d, want zlib or zstd", comp)
	}
	img := &sqImage{
		r: r, comp: comp, inodes: le32(sb[4:]), blockSize: le32(sb[12:]), rootRef: le64(sb[32:]), bytesUsed: le64(sb[40:]),
		inodeTab: le64(sb[64:]), dirTab: le64(sb[72:]),
	}
	if 1<<le16(sb[22:]) != img.blockSize {
		return nil, fmt.Errorf("block_log %d does not match block size %d", le16(sb[22:]), img.blockSize)
	}
	idCount, fragCount := int(le16(sb[26:])), int(le32(sb[16:]))
	ids, err := img.lookupTable(le64(sb[48:]), idCount*4)
	if err != nil {
		return nil, fmt.Errorf("id table: %w", err)
	}
	for i := range idCount {
		img.ids = append(img.ids, le32(ids[4*i:]))
	}
	frags, err := img.lookupTable(le64(sb[80:]), fragCount*16)
	if err != nil {
		return nil, fmt.Errorf("fragment table: %w", err)
	}
	for i := range fragCount {
		img.frags = append(img.frags, sqFrag{le64(frags[16*i:]), le32(frags[16*i+8:])})
	}
	if export := le64(sb[88:]); export != ^uint64(0) {
		refs, err := img.lookupTable(export, int(img.inodes)*8)
		if err != nil {
			return nil, fmt.Errorf("export table: %w", err)
		}
		if le64(refs[(img.inodes-1)*8:]) != img.rootRef {
			return nil, fmt.Errorf("export table: last inode is not the root")
		}
	}
	if xt := le64(sb[56:]); xt != ^uint64(0) {
		hdr := make([]byte, 16)
		if _, err := r.ReadAt(hdr, int64(xt)); err != nil {
			return nil, fmt.Errorf("xattr header: %w", err)
		}
		img.xattrKV = le64(hdr)
		if img.xattrIDs, err = img.lookupTable(xt+16, int(le32(hdr[8:]))*16); err != nil {
			return nil, fmt.Errorf("xattr ids: %w", err)
		}
	}
	return img, nil
}

// metaBlock reads the metadata block at pos and returns its payload and the
// position of the next block.
func (img *sqImage) metaBlock(pos uint64) ([]byte, uint64, error) {
	h := make([]byte, 2)
	if _, err := img.r.ReadAt(h, int64(pos)); err != nil {
		return nil, 0, err
	}
	n := le16(h) & 0x7fff
	raw := make([]byte, n)
	if _, err := img.r.ReadAt(raw, int64(pos)+2); err != nil {
		return nil, 0, err
	}
	next := pos + 2 + uint64(n)
	if le16(h)&0x8000 != 0 {
		return raw, next, nil
	}
	data, err := img.inflate(raw, 8192)
	return data, next, err
}

func (img *sqImage) inflate(raw []byte, limit int) ([]byte, error) {
	var zr io.Reader
	if img.comp == 6 {
		d, err := zstd.NewReader(bytes.NewReader(raw), zstd.WithDecoderConcurrency(1))
		if err != nil {
			return nil, err
		}
		defer d.Close()
		zr = d
	} else {
		r, err := zlib.NewReader(bytes.NewReader(raw))
		if err != nil {
			return nil, err
		}
		zr = r
	}
	data, err := io.ReadAll(io.LimitReader(zr, int64(limit)+1))
	if err != nil {
		return nil, err
	}
	if len(data) > limit {
		return nil, fmt.Errorf("block inflates past %d bytes", limit)
	}
	return data, nil
}

func (img *sqImage) lookupTable(listPos uint64, size int) ([]byte, error) {
	var out []byte
	nblocks := (size + 8191) / 8192
	list := make([]byte, 8*nblocks)
	if _, err := img.r.ReadAt(list, int64(listPos)); err != nil {
		return nil, err
	}
	for i := range nblocks {
		b, _, err := img.metaBlock(le64(list[8*i:]))
		if err != nil {
			return nil, err
		}
		out = append(out, b...)
	}
	if len(out) < size {
		return nil, fmt.Errorf("table holds %d bytes, want %d", len(out), size)
	}
	return out[:size], nil
}

// metaReader reads a byte stream spread over metadata blocks.
type metaReader struct {
	img  *sqImage
	next uint64
	buf  []byte
}

func (img *sqImage) meta(base, block uint64, offset uint16) (*metaReader, error) {
	m := &metaReader{img: img, next: base + block}
	if err := m.fill(); err != nil {
		return nil, err
	}
	if int(offset) > len(m.buf) {
		return nil, fmt.Errorf("offset %d past block of %d bytes", offset, len(m.buf))
	}
	m.buf = m.buf[offset:]
	return m, nil
}

func (m *metaReader) fill() error {
	b, next, err := m.img.metaBlock(m.next)
	m.buf, m.next = b, next
	return err
}

func (m *metaReader) read(n int) ([]byte, error) {
	var out []byte
	for len(out) < n {
		if len(m.buf) == 0 {
			if err := m.fill(); err != nil {
				return nil, err
			}
		}
		k := min(n-len(out), len(m.buf))
		out = append(out, m.buf[:k]...)
		m.buf = m.buf[k:]
	}
	return out, nil
}

// readTree walks the whole image and returns its nodes by path ("." is the
// root), checking the directory structure on the way.
func readTree(img *sqImage) (map[string]*sqNode, error) {
	nodes := map[string]*sqNode{}
	entries := map[uint32]uint32{} // inode number -> directory entries naming it
	root, dir, err := img.inode(img.rootRef)
	if err != nil {
		return nil, fmt.Errorf("root inode: %w", err)
	}
	nodes["."] = root
	if err := img.walk(".", root, dir, nodes, entries); err != nil {
		return nil, err
	}
	for p, n := range nodes {
		if n.Type != "dir" && p != "." && n.Nlink != entries[n.Ino] {
			return nil, fmt.Errorf("%s: nlink %d, but %d directory entries", p, n.Nlink, entries[n.Ino])
		}
	}
	return nodes, nil
}

type sqDir struct {
	block      uint32
	offset     uint16
	size       uint32
	parent     uint32
	index      []sqIndex
	indexStart uint64
}

type sqIndex struct {
	index, start uint32
	name         string
}

func (img *sqImage) walk(p string, n *sqNode, d *sqDir, nodes map[string]*sqNode, entries map[uint32]uint32) error {
	m, err := img.meta(img.dirTab, uint64(d.block), d.offset)
	if err != nil {
		return fmt.Errorf("%s: listing: %w", p, err)
	}
	listing, err := m.read(int(d.size) - 3)
	if err != nil {
		return fmt.Errorf("%s: listing: %w", p, err)
	}
	// Every index entry must name the first entry of a header at its offset,
	// in the directory table block it claims.
	for _, ix := range d.index {
		if int(ix.index)+12+8 > len(listing) {
			return fmt.Errorf("%s: index %d past listing", p, ix.index)
		}
		nameLen := int(le16(listing[ix.index+12+6:])) + 1
		if got := string(listing[ix.index+20 : int(ix.index)+20+nameLen]); got != ix.name {
			return fmt.Errorf("%s: index at %d names %q, header starts with %q", p, ix.index, ix.name, got)
		}
		abs := d.indexStart + uint64(ix.index) // uncompressed position relative to the listing's block
		im, err := img.meta(img.dirTab, uint64(ix.start), uint16((uint64(d.offset)+uint64(ix.index))%8192))
		if err != nil {
			return fmt.Errorf("%s: index block: %w", p, err)
		}
		hdr, err := im.read(12)
		if err != nil || !bytes.Equal(hdr, listing[ix.index:ix.index+12]) {
			return fmt.Errorf("%s: index at %d (abs %d) does not point at its header", p, ix.index, abs)
		}
	}
	subdirs := uint32(0)
	prev := ""
	for off := 0; off < len(listing); {
		if off+12 > len(listing) {
			return fmt.Errorf("%s: truncated header", p)
		}
		count, start, base := le32(listing[off:])+1, le32(listing[off+4:]), le32(listing[off+8:])
		if count > 256 {
			return fmt.Errorf("%s: header with %d entries", p, count)
		}
		off += 12
		for range count {
			e := listing[off:]
			inoOff, delta, typ, nameLen := le16(e), int16(le16(e[2:])), le16(e[4:]), int(le16(e[6:]))+1
			name := string(e[8 : 8+nameLen])
			off += 8 + nameLen
			if name <= prev && prev != "" {
				return fmt.Errorf("%s: %q after %q: not sorted", p, name, prev)
			}
			prev = name
			child, cd, err := img.inode(uint64(start)<<16 | uint64(inoOff))
			if err != nil {
				return fmt.Errorf("%s/%s: %w", p, name, err)
			}
			if child.Ino != uint32(int64(base)+int64(delta)) {
				return fmt.Errorf("%s/%s: entry says inode %d, inode says %d", p, name, int64(base)+int64(delta), child.Ino)
			}
			if want := map[string]uint16{"dir": 1, "file": 2, "symlink": 3, "block": 4, "char": 5, "fifo": 6, "socket": 7}[child.Type]; want != typ {
				return fmt.Errorf("%s/%s: entry type %d for a %s", p, name, typ, child.Type)
			}
			cp := path.Join(p, name)
			nodes[cp] = child
			entries[child.Ino]++
			if cd != nil {
				subdirs++
				if cd.parent != n.Ino {
					return fmt.Errorf("%s: parent inode %d, want %d", cp, cd.parent, n.Ino)
				}
				if err := img.walk(cp, child, cd, nodes, entries); err != nil {
					return err
				}
			}
		}
	}
	if n.Nlink != 2+subdirs {
		return fmt.Errorf("%s: nlink %d with %d subdirectories", p, n.Nlink, subdirs)
	}
	return nil
}

var sqTypes = []string{1: "dir", "file", "symlink", "block", "char", "fifo", "socket"}

func (img *sqImage) inode(ref uint64) (*sqNode, *sqDir, error) {
	m, err := img.meta(img.inodeTab, ref>>16, uint16(ref))
	if err != nil {
		return nil, nil, err
	}
	h, err := m.read(16)
	if err != nil {
		return nil, nil, err
	}
	t := le16(h)
	if t < 1 || t > 14 {
		return nil, nil, fmt.Errorf("inode type %d", t)
	}
	n := &sqNode{Type: sqTypes[(t-1)%7+1], Perm: le16(h[2:]), MTime: le32(h[8:]), Ino: le32(h[12:]), Extended: t > 7}
	if int(le16(h[4:])) >= len(img.ids) || int(le16(h[6:])) >= len(img.ids) {
		return nil, nil, fmt.Errorf("inode %d: id index out of range", n.Ino)
	}
	n.UID, n.GID = img.ids[le16(h[4:])], img.ids[le16(h[6:])]
	xattr := ^uint32(0)
	var d *sqDir
	switch t {
	case 1:
		b, err := m.read(16)
		if err != nil {
			return nil, nil, err
		}
		d = &sqDir{block: le32(b), size: uint32(le16(b[8:])), offset: le16(b[10:]), parent: le32(b[12:])}
		n.Nlink = le32(b[4:])
	case 8:
		b, err := m.read(24)
		if err != nil {
			return nil, nil, err
		}
		n.Nlink = le32(b)
		d = &sqDir{size: le32(b[4:]), block: le32(b[8:]), parent: le32(b[12:]), offset: le16(b[18:])}
		xattr = le32(b[20:])
		for range le16(b[16:]) {
			ib, err := m.read(12)
			if err != nil {
				return nil, nil, err
			}
			name, err := m.read(int(le32(ib[8:])) + 1)
			if err != nil {
				return nil, nil, err
			}
			d.index = append(d.index, sqIndex{index: le32(ib), start: le32(ib[4:]), name: string(name)})
		}
	case 2, 9:
		var start, frag, fragOff uint64
		if t == 2 {
			b, err := m.read(16)
			if err != nil {
				return nil, nil, err
			}
			start, frag, fragOff, n.Size = uint64(le32(b)), uint64(le32(b[4:])), uint64(le32(b[8:])), uint64(le32(b[12:]))
			n.Nlink = 1
		} else {
			b, err := m.read(40)
			if err != nil {
				return nil, nil, err
			}
			start, n.Size, n.Nlink = le64(b), le64(b[8:]), le32(b[24:])
			frag, fragOff, xattr = uint64(le32(b[28:])), uint64(le32(b[32:])), le32(b[36:])
		}
		if n.Content, err = img.content(m, n.Size, start, uint32(frag), fragOff); err != nil {
			return nil, nil, fmt.Errorf("inode %d: %w", n.Ino, err)
		}
	case 3, 10:
		b, err := m.read(8)
		if err != nil {
			return nil, nil, err
		}
		n.Nlink = le32(b)
		target, err := m.read(int(le32(b[4:])))
		if err != nil {
			return nil, nil, err
		}
		n.Link, n.Size = string(target), uint64(len(target))
	case 4, 5, 11, 12:
		b, err := m.read(8)
		if err != nil {
			return nil, nil, err
		}
		n.Nlink = le32(b)
		dev := le32(b[4:])
		n.Major, n.Minor = (dev>>8)&0xfff, dev&0xff|(dev>>12)&0xfff00
	default:
		b, err := m.read(4)
		if err != nil {
			return nil, nil, err
		}
		n.Nlink = le32(b)
	}
	if t > 7 && t != 8 && t != 9 {
		b, err := m.read(4)
		if err != nil {
			return nil, nil, err
		}
		xattr = le32(b)
	}
	if xattr != ^uint32(0) {
		if n.Xattrs, err = img.xattrs(xattr); err != nil {
			return nil, nil, fmt.Errorf("inode %d: %w", n.Ino, err)
		}
	}
	if d != nil {
		n.Index = len(d.index)
		n.Size = uint64(d.size)
		d.indexStart = uint64(d.offset)
	}
	return n, d, nil
}

func (img *sqImage) content(m *metaReader, size, start uint64, frag uint32, fragOff uint64) ([]byte, error) {
	bs := uint64(img.blockSize)
	nblocks := size / bs
	if frag == ^uint32(0) && size%bs != 0 {
		nblocks++
	}
	var out []byte
	pos := start
	for i := range nblocks {
		b, err := m.read(4)
		if err != nil {
			return nil, err
		}
		want := min(bs, size-i*bs)
		sz := le32(b)
		if sz == 0 {
			out = append(out, make([]byte, want)...)
			continue
		}
		data, err := img.dataBlock(pos, sz, int(bs))
		if err != nil {
			return nil, fmt.Errorf("block %d: %w", i, err)
		}
		if uint64(len(data)) != want {
			return nil, fmt.Errorf("block %d holds %d bytes, want %d", i, len(data), want)
		}
		out = append(out, data...)
		pos += uint64(sz &^ (1 << 24))
	}
	if frag != ^uint32(0) {
		if int(frag) >= len(img.frags) {
			return nil, fmt.Errorf("fragment %d of %d", frag, len(img.frags))
		}
		f := img.frags[frag]
		data, err := img.dataBlock(f.start, f.size, int(bs))
		if err != nil {
			return nil, fmt.Errorf("fragment %d: %w", frag, err)
		}
		tail := size % bs
		if fragOff+tail > uint64(len(data)) {
			return nil, fmt.Errorf("fragment %d too short", frag)
		}
		out = append(out, data[fragOff:fragOff+tail]...)
	}
	return out, nil
}

func (img *sqImage) dataBlock(pos uint64, size uint32, limit int) ([]byte, error) {
	n := size &^ (1 << 24)
	if n > uint32(limit) || pos+uint64(n) > img.bytesUsed {
		return nil, fmt.Errorf("block of %d bytes at %d out of range", n, pos)
	}
	raw := make([]byte, n)
	if _, err := img.r.ReadAt(raw, int64(pos)); err != nil {
		return nil, err
	}
	if size&(1<<24) != 0 {
		return raw, nil
	}
	return img.inflate(raw, limit)
}

func (img *sqImage) xattrs(id uint32) (map[string]string, error) {
	if int(id)*16+16 > len(img.xattrIDs) {
		return nil, fmt.Errorf("xattr id %d out of range", id)
	}
	rec := img.xattrIDs[16*id:]
	ref, count, size := le64(rec), le32(rec[8:]), le32(rec[12:])
	m, err := img.meta(img.xattrKV, ref>>16, uint16(ref))
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	total := uint32(0)
	for range count {
		h, err := m.read(4)
		if err != nil {
			return nil, err
		}
		prefix := []string{"user.", "trusted.", "security."}[le16(h)&0xff]
		name, err := m.read(int(le16(h[2:])))
		if err != nil {
			return nil, err
		}
		vh, err := m.read(4)
		if err != nil {
			return nil, err
		}
		value, err := m.read(int(le32(vh)))
		if err != nil {
			return nil, err
		}
		out[prefix+string(name)] = string(value)
		total += 8 + uint32(len(name)) + uint32(len(value))
	}
	if total != size {
		return nil, fmt.Errorf("xattr set %d: size %d, pairs take %d", id, size, total)
	}
	return out, nil
}

// readImageFile opens and reads a whole image file.
func readImageFile(p string) (map[string]*sqNode, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	img, err := openImage(f)
	if err != nil {
		return nil, err
	}
	return readTree(img)
}
