package squashfs

import (
	"bytes"
	"encoding/binary"
	"fmt"

	"github.com/klauspost/compress/zlib"
	"github.com/klauspost/compress/zstd"
)

// On-disk constants of squashfs 4.0 (Linux fs/squashfs/squashfs_fs.h).
const (
	magic          = 0x73717368 // "hsqs" little-endian
	superblockSize = 96
	metadataSize   = 8192
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
	flagCompressorOptions     = 0x0400
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

// Compressor is a squashfs compression algorithm, valued as its id in the
// superblock.
type Compressor uint16

// The compressors the Writer can use.
const (
	// Gzip is squashfs "gzip": zlib streams (RFC 1950), which every kernel,
	// squashfuse, Singularity and Apptainer installation reads.
	Gzip Compressor = 1
	// Zstd is Zstandard. Kernels read it since Linux 4.14, squashfuse and
	// squashfs-tools when built with libzstd.
	Zstd Compressor = 6
)

func (c Compressor) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compressor(%d)", uint16(c))
}

// The levels mksquashfs uses when no compressor options are written.
const (
	gzipDefaultLevel  = 9
	gzipDefaultWindow = 15
	zstdDefaultLevel  = 15
	zstdMaxLevel      = 22
)

// compressorOptions returns the compressor options block that follows the
// superblock, or nil when the level is the one a reader assumes without it
// (or 0, which stores everything uncompressed), as mksquashfs does: for gzip
// the level, window size and strategy mask, for zstd the level.
func compressorOptions(c Compressor, level int) []byte {
	var opts le
	switch {
	case level == 0:
		return nil
	case c == Gzip && level != gzipDefaultLevel:
		opts = opts.u32(uint32(level)).u16(gzipDefaultWindow).u16(0)
	case c == Zstd && level != zstdDefaultLevel:
		opts = opts.u32(uint32(level))
	default:
		return nil
	}
	// A metadata block stored uncompressed.
	return append(le(nil).u16(uint16(len(opts))|metaUncompressed), opts...)
}

// compressor compresses one buffer at a time. It is not safe for concurrent
// use; each worker owns one.
type compressor struct {
	buf  bytes.Buffer
	zw   *zlib.Writer
	zstd *zstd.Encoder
	out  []byte
}

func newCompressor(c Compressor, level, blockSize int) (*compressor, error) {
	comp := &compressor{}
	switch {
	case level == 0:
	case c == Gzip:
		zw, err := zlib.NewWriterLevel(&comp.buf, level)
		if err != nil {
			return nil, fmt.Errorf("creating zlib writer: %w", err)
		}
		comp.zw = zw
	case c == Zstd:
		// Linux decompresses with a window of the larger of the block size
		// and a metadata block; a frame must not ask for more.
		enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)),
			zstd.WithEncoderConcurrency(1), zstd.WithEncoderCRC(false),
			zstd.WithWindowSize(max(blockSize, metadataSize)))
		if err != nil {
			return nil, fmt.Errorf("creating zstd encoder: %w", err)
		}
		comp.zstd = enc
	default:
		return nil, fmt.Errorf("unsupported compressor %v", c)
	}
	return comp, nil
}

// compress returns the compressed form of src, or nil when compression is
// off or does not make src smaller. The result is valid until the next call.
func (c *compressor) compress(src []byte) ([]byte, error) {
	switch {
	case c.zstd != nil:
		c.out = c.zstd.EncodeAll(src, c.out[:0])
		if len(c.out) >= len(src) {
			return nil, nil
		}
		return c.out, nil
	case c.zw == nil:
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
