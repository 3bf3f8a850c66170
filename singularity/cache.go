package singularity

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
)

// blobPath is where the cache in dir keeps the blob h.
func blobPath(dir string, h v1.Hash) (string, error) {
	if h.Algorithm != "sha256" || len(h.Hex) != 64 {
		return "", fmt.Errorf("blob %s: only sha256 digests are cached", h)
	}
	if _, err := hex.DecodeString(h.Hex); err != nil {
		return "", fmt.Errorf("blob %s: %w", h, err)
	}
	return filepath.Join(dir, "blobs", "sha256", h.Hex), nil
}

// fileDigest returns the sha256 of the file at p in hex.
func fileDigest(p string) (string, error) {
	f, err := os.Open(p)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sum := sha256.New()
	if _, err := io.Copy(sum, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(sum.Sum(nil)), nil
}

// cacheBlob makes sure the cache in dir holds blob h, fetching it with open
// if it does not, and returns its path. The blob is written under a temporary
// name, checked against h and renamed into place, so concurrent builds never
// see a partial blob and a corrupt download is never kept. A cached blob is
// checked against h too, and fetched again if it does not match.
func cacheBlob(dir string, h v1.Hash, open func() (io.ReadCloser, error)) (string, error) {
	p, err := blobPath(dir, h)
	if err != nil {
		return "", err
	}
	if got, err := fileDigest(p); err == nil && got == h.Hex {
		return p, nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return "", fmt.Errorf("creating blob cache: %w", err)
	}
	rc, err := open()
	if err != nil {
		return "", err
	}
	defer rc.Close()
	tmp, err := os.CreateTemp(filepath.Dir(p), "."+h.Hex+".tmp-*")
	if err != nil {
		return "", fmt.Errorf("creating blob cache: %w", err)
	}
	sum := sha256.New()
	_, err = io.Copy(io.MultiWriter(tmp, sum), rc)
	if err == nil {
		if got := hex.EncodeToString(sum.Sum(nil)); got != h.Hex {
			err = fmt.Errorf("blob %s: downloaded content has digest sha256:%s", h, got)
		}
	}
	if err == nil {
		err = tmp.Close()
	} else {
		tmp.Close()
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		return "", errors.Join(fmt.Errorf("caching blob %s: %w", h, err), os.Remove(tmp.Name()))
	}
	return p, nil
}

// cachedLayer reads a layer from the blob cache, downloading its compressed
// blob there the first time.
// The blob is checked once per build, on first use.
type cachedLayer struct {
	v1.Layer
	dir  string
	path string
}

func (c *cachedLayer) Uncompressed() (io.ReadCloser, error) {
	d, err := c.Digest()
	if err != nil {
		return nil, err
	}
	p := c.path
	if p == "" {
		if p, err = cacheBlob(c.dir, d, c.Layer.Compressed); err != nil {
			return nil, err
		}
		c.path = p
	}
	return openBlob(p)
}

// openBlob returns the uncompressed content of a cached layer blob, gzip,
// zstd or plain tar as its first bytes say. klauspost's decoders read gzip
// about twice as fast as compress/gzip, and every layer is read twice.
func openBlob(p string) (io.ReadCloser, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 1<<16)
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer blob %s: %w", filepath.Base(p), err)
		}
		return readCloser{Reader: zr, close: func() error { return errors.Join(zr.Close(), f.Close()) }}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("layer blob %s: %w", filepath.Base(p), err)
		}
		return readCloser{Reader: zr, close: func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{Reader: br, close: f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
