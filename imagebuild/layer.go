package imagebuild

import (
	"archive/tar"
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/klauspost/pgzip"
)

// fileLayer is a layer whose compressed blob is a file, with its digests known:
// reading it never compresses or hashes again.
type fileLayer struct {
	path   string
	digest v1.Hash
	diffID v1.Hash
	size   int64
	mt     types.MediaType
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)            { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)            { return l.diffID, nil }
func (l *fileLayer) Size() (int64, error)                { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error) { return l.mt, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)  { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) {
	f, err := os.Open(l.path)
	if err != nil {
		return nil, err
	}
	zr, err := pgzip.NewReaderN(bufio.NewReaderSize(f, 1<<20), readBlock, readBlocks)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("layer %s: %w", l.digest, err), f.Close())
	}
	return &readCloser{Reader: zr, close: func() error { return errors.Join(zr.Close(), f.Close()) }}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r *readCloser) Close() error { return r.close() }

// blockSize is pgzip's block size. It is part of what makes a layer's bytes: output
// is identical for any number of workers at a fixed block size.
const blockSize = 1 << 20

// layerWriter makes layers in one pass: tar → sha256 (diffID) → parallel gzip →
// sha256 (digest) → temporary file in the blob store, renamed to its digest.
type layerWriter struct {
	blobDir     string
	level       int
	concurrency int
	mediaType   types.MediaType
}

// countingHash counts what it hashes and reports progress every 16 MiB.
type countingHash struct {
	hash.Hash
	n        int64
	next     int64
	progress func(int64)
}

func (c *countingHash) Write(p []byte) (int, error) {
	n, _ := c.Hash.Write(p)
	c.n += int64(n)
	if c.progress != nil && n > 0 && c.n >= c.next {
		c.progress(c.n)
		c.next = c.n + 16<<20
	}
	return n, nil
}

// write calls fill with a tar writer and returns the finished layer. fill must write
// reproducible entries and must not close the writer.
func (w *layerWriter) write(ctx context.Context, fill func(tw *tar.Writer) error, progress func(int64)) (*fileLayer, error) {
	if err := os.MkdirAll(w.blobDir, 0o755); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(w.blobDir, ".layer-*")
	if err != nil {
		return nil, err
	}
	l, err := w.fill(ctx, f, fill, progress)
	if err != nil {
		return nil, errors.Join(err, os.Remove(f.Name()))
	}
	l.path = filepath.Join(w.blobDir, l.digest.Hex)
	if err := os.Rename(f.Name(), l.path); err != nil {
		return nil, errors.Join(err, os.Remove(f.Name()))
	}
	return l, nil
}

func (w *layerWriter) fill(ctx context.Context, f *os.File, fill func(tw *tar.Writer) error, progress func(int64)) (*fileLayer, error) {
	digest := sha256.New()
	diffID := &countingHash{Hash: sha256.New(), progress: progress}
	bw := bufio.NewWriterSize(io.MultiWriter(f, digest), 1<<20)
	counter := &countingWriter{w: bw}
	gz, err := pgzip.NewWriterLevel(counter, w.level)
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	if err := gz.SetConcurrency(blockSize, 2*w.concurrency); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	tw := tar.NewWriter(io.MultiWriter(diffID, gz))
	err = fill(tw)
	if err == nil {
		err = ctx.Err()
	}
	if err == nil {
		err = tw.Close()
	}
	if cerr := gz.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = bw.Flush()
	}
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	if progress != nil {
		progress(diffID.n)
	}
	return &fileLayer{
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(digest.Sum(nil))},
		diffID: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(diffID.Sum(nil))},
		size:   counter.n,
		mt:     w.mediaType,
	}, nil
}

type countingWriter struct {
	w io.Writer
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readBlock and readBlocks bound gzip read-ahead: four 1 MiB blocks decompress ahead
// of the reader (pgzip's default is sixteen).
const (
	readBlock  = 1 << 20
	readBlocks = 4
)

// ctxReader stops reading once its context is done, so that cancelling a build
// stops it inside a large file too.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}
