package rootfs

import (
	"fmt"
	"io"
	"math/bits"
)

// totals counts what the layers read so far hold, for the limits that span
// layers.
type totals struct {
	entries       int
	imageBytes    int64
	metadataBytes int64
}

// countingReader counts the bytes of an uncompressed tar stream read so far.
// archive/tar reads headers and skips data exactly, never ahead, so the count
// after Next is the end of the header just read.
type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// contentBudget holds one layer's file content to WithMaxLayerBytes, the
// image's to WithMaxImageBytes, and each file to WithMaxSparseRatio times its
// stored size.
type contentBudget struct {
	o          *options
	layer      int
	total      *totals
	layerBytes int64
	// pending is the latest regular file, whose stored size is known once the
	// next header (or the end of the stream) has been read.
	pending *pendingFile
}

type pendingFile struct {
	entry int
	name  string
	size  int64
	// end is the stream position at the end of the file's header.
	end int64
}

// recordOverhead is what keeping one xattr or PAX record costs beyond its
// bytes, as measured: the map entry and two string headers.
const recordOverhead = 96

// metadata accounts for the variable-length metadata rec keeps: its name,
// link target, owner names, xattrs and other PAX records, each record
// counted with recordOverhead.
func (b *contentBudget) metadata(rec *record) error {
	m := &rec.meta
	n := len(rec.name) + len(m.Linkname) + len(m.Uname) + len(m.Gname)
	for k, v := range m.Xattrs {
		n += len(k) + len(v) + recordOverhead
	}
	for k, v := range m.PAXRecords {
		n += len(k) + len(v) + recordOverhead
	}
	if int64(n) > b.o.maxMetadataBytes-b.total.metadataBytes {
		return &LayerError{Layer: b.layer, Entry: rec.index, Name: rec.name, Err: ErrTooLarge,
			Reason: fmt.Sprintf("layers hold more than %d bytes of names, link targets, xattrs and PAX records (WithMaxMetadataBytes)", b.o.maxMetadataBytes)}
	}
	b.total.metadataBytes += int64(n)
	return nil
}

// add accounts for a regular file of size bytes whose header ends at pos.
func (b *contentBudget) add(entry int, name string, size, pos int64) error {
	fail := func(reason string) error {
		return &LayerError{Layer: b.layer, Entry: entry, Name: name, Reason: reason, Err: ErrTooLarge}
	}
	if size > b.o.maxLayerBytes-b.layerBytes {
		return fail(fmt.Sprintf("layer holds more than %d bytes of file content (WithMaxLayerBytes)", b.o.maxLayerBytes))
	}
	if size > b.o.maxImageBytes-b.total.imageBytes {
		return fail(fmt.Sprintf("layers hold more than %d bytes of file content (WithMaxImageBytes)", b.o.maxImageBytes))
	}
	b.layerBytes += size
	b.total.imageBytes += size
	b.pending = &pendingFile{entry: entry, name: name, size: size, end: pos}
	return nil
}

// stored checks the pending file against the ratio, pos being the stream
// position at the end of the next header or of the stream.
func (b *contentBudget) stored(pos int64) error {
	p := b.pending
	if p == nil {
		return nil
	}
	b.pending = nil
	stored := pos - p.end
	hi, lo := bits.Mul64(uint64(b.o.maxSparseRatio), uint64(stored))
	if hi == 0 && uint64(p.size) > lo {
		return &LayerError{Layer: b.layer, Entry: p.entry, Name: p.name, Err: ErrTooLarge,
			Reason: fmt.Sprintf("file of %d bytes stored in %d, more than %d times as large (WithMaxSparseRatio)", p.size, stored, b.o.maxSparseRatio)}
	}
	return nil
}
