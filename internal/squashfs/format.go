package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
)

// On-disk constants of squashfs 4.0 (Linux fs/squashfs/squashfs_fs.h).
const (
	magic          = 0x73717368 // "hsqs" little-endian
	superblockSize = 96
	metadataSize   = 8192
	compressorZlib = 1
	invalidRef     = ^uint64(0)
	noFragment     = ^uint32(0)
	noXattr        = ^uint32(0)

	// blockUncompressed marks a data block or fragment stored as is.
	blockUncompressed = 1 << 24
	// metaUncompressed marks a metadata block stored as is.
	metaUncompressed = 1 << 15

	// maxXattrName and maxXattrValue are Linux's XATTR_NAME_MAX and
	// XATTR_SIZE_MAX: setxattr(2), and so unsquashfs, refuses longer ones.
	// maxXattrs and maxXattrBytes bound an entry's set as the layer flattener
	// does, room for the largest value with 64 KiB of others.
	maxXattrName  = 255
	maxXattrValue = 64 << 10
	maxXattrs     = 128
	maxXattrBytes = 128 << 10

	maxNameLen  = 256
	maxDirCount = 256
	// maxSymlinkLen is the longest symlink target Linux creates (PATH_MAX
	// less the NUL) and reads back from squashfs whole.
	maxSymlinkLen = 4095

	flagUncompressedInodes    = 0x0001
	flagUncompressedData      = 0x0002
	flagUncompressedFragments = 0x0008
	flagDuplicates            = 0x0040
	flagExportable            = 0x0080
	flagUncompressedXattrs    = 0x0100
	flagNoXattrs              = 0x0200
	flagUncompressedIDs       = 0x0800
)

// Inode types. The extended variant of a basic type t is t+7.
const (
	inodeDir      = 1
	inodeFile     = 2
	inodeSymlink  = 3
	inodeBlockDev = 4
	inodeCharDev  = 5
	inodeFIFO     = 6
	inodeSocket   = 7
	extended      = 7
)

// xattrPrefixes returns the xattr name prefixes squashfs can represent,
// indexed by their on-disk type.
func xattrPrefixes() [3]string {
	return [...]string{"user.", "trusted.", "security."}
}

type superblock struct {
	Magic              uint32
	InodeCount         uint32
	ModTime            uint32
	BlockSize          uint32
	FragmentCount      uint32
	Compressor         uint16
	BlockLog           uint16
	Flags              uint16
	IDCount            uint16
	VersionMajor       uint16
	VersionMinor       uint16
	RootInode          uint64
	BytesUsed          uint64
	IDTableStart       uint64
	XattrIDTableStart  uint64
	InodeTableStart    uint64
	DirTableStart      uint64
	FragmentTableStart uint64
	ExportTableStart   uint64
}

func (s *superblock) bytes() []byte {
	var b bytes.Buffer
	b.Grow(superblockSize)
	// binary.Write of a struct of fixed-size fields cannot fail on a bytes.Buffer.
	_ = binary.Write(&b, binary.LittleEndian, s)
	return b.Bytes()
}

// compressor compresses one buffer into a zlib stream. It is not safe for
// concurrent use; each worker owns one.
type compressor struct {
	level int
	buf   bytes.Buffer
	zw    *zlib.Writer
}

func newCompressor(level int) (*compressor, error) {
	c := &compressor{level: level}
	if level > 0 {
		zw, err := zlib.NewWriterLevel(&c.buf, level)
		if err != nil {
			return nil, fmt.Errorf("creating zlib writer: %w", err)
		}
		c.zw = zw
	}
	return c, nil
}

// compress returns the zlib stream of src, or nil when compression is off or
// does not make src smaller. The result is valid until the next call.
func (c *compressor) compress(src []byte) ([]byte, error) {
	if c.zw == nil {
		return nil, nil
	}
	c.buf.Reset()
	c.zw.Reset(&c.buf)
	if _, err := c.zw.Write(src); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if err := c.zw.Close(); err != nil {
		return nil, fmt.Errorf("compressing: %w", err)
	}
	if c.buf.Len() >= len(src) {
		return nil, nil
	}
	return c.buf.Bytes(), nil
}

// metaStream builds a metadata area (inode table, directory table, the
// payload of lookup tables): a sequence of blocks, each an u16 header and up to
// 8 KiB of payload, compressed when that helps.
type metaStream struct {
	comp   *compressor
	out    bytes.Buffer // finished blocks
	cur    []byte       // payload of the block being filled
	starts []uint64     // offset in out of every finished block
}

// ref returns the position of the next byte written: the start of its block
// relative to the start of the area, and the offset inside the block.
func (m *metaStream) ref() (block uint64, offset uint16) {
	return uint64(m.out.Len()), uint16(len(m.cur))
}

func (m *metaStream) write(p []byte) error {
	for len(p) > 0 {
		n := min(metadataSize-len(m.cur), len(p))
		m.cur = append(m.cur, p[:n]...)
		p = p[n:]
		if len(m.cur) == metadataSize {
			if err := m.flush(); err != nil {
				return err
			}
		}
	}
	return nil
}

// flush ends the current block, if it holds anything.
func (m *metaStream) flush() error {
	if len(m.cur) == 0 {
		return nil
	}
	z, err := m.comp.compress(m.cur)
	if err != nil {
		return err
	}
	m.starts = append(m.starts, uint64(m.out.Len()))
	hdr := uint16(len(z))
	payload := z
	if z == nil {
		hdr = uint16(len(m.cur)) | metaUncompressed
		payload = m.cur
	}
	m.out.Write(binary.LittleEndian.AppendUint16(nil, hdr))
	m.out.Write(payload)
	m.cur = m.cur[:0]
	return nil
}

// bytes flushes and returns the whole area.
func (m *metaStream) bytes() ([]byte, error) {
	if err := m.flush(); err != nil {
		return nil, err
	}
	return m.out.Bytes(), nil
}

// le is a little-endian record builder.
type le []byte

func (b le) u16(v uint16) le { return binary.LittleEndian.AppendUint16(b, v) }
func (b le) u32(v uint32) le { return binary.LittleEndian.AppendUint32(b, v) }
func (b le) u64(v uint64) le { return binary.LittleEndian.AppendUint64(b, v) }
func (b le) str(s string) le { return append(b, s...) }
