package imagebuild

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

// cacheFormat changes whenever what a key covers or how layers are written changes,
// so that old entries stop matching.
const cacheFormat = "hpcship-imagebuild-1 pgzip-v1.3.0"

// cache is the on-disk build cache:
//
//	<dir>/blobs/sha256/<hex>   layer blobs, named by digest
//	<dir>/steps/<hex>          a step's lookup key → its layer (JSON record)
//
// Every file is written to a temporary name and renamed, so concurrent builds sharing
// the directory see complete files or none.
type cache struct {
	dir string
}

type record struct {
	// Empty is a step (RUN) that changed nothing.
	Empty     bool            `json:"empty,omitempty"`
	Digest    string          `json:"digest,omitempty"`
	DiffID    string          `json:"diffID,omitempty"`
	Size      int64           `json:"size,omitempty"`
	MediaType types.MediaType `json:"mediaType,omitempty"`
}

func (c *cache) blobDir() string { return filepath.Join(c.dir, "blobs", "sha256") }

// lookup returns the layer recorded under key; found is false when there is no
// record or its blob is gone or has the wrong size. A nil layer with found set is a
// step that made no layer.
func (c *cache) lookup(key string) (l *fileLayer, found bool) {
	b, err := os.ReadFile(filepath.Join(c.dir, "steps", key))
	if err != nil {
		return nil, false
	}
	var r record
	if json.Unmarshal(b, &r) != nil {
		return nil, false
	}
	if r.Empty {
		return nil, true
	}
	d, err1 := v1.NewHash(r.Digest)
	id, err2 := v1.NewHash(r.DiffID)
	if err1 != nil || err2 != nil || d.Algorithm != "sha256" {
		return nil, false
	}
	path := filepath.Join(c.blobDir(), d.Hex)
	if st, err := os.Stat(path); err != nil || st.Size() != r.Size {
		return nil, false
	}
	return &fileLayer{path: path, digest: d, diffID: id, size: r.Size, mt: r.MediaType}, true
}

// store records l (nil: no layer) under key.
func (c *cache) store(ctx context.Context, key string, l *fileLayer) error {
	r := record{Empty: l == nil}
	if l != nil {
		r = record{Digest: l.digest.String(), DiffID: l.diffID.String(), Size: l.size, MediaType: l.mt}
	}
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	dir := filepath.Join(c.dir, "steps")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	return atomicfile.Write(ctx, filepath.Join(dir, key), 0o644, func(f *os.File) error {
		_, err := f.Write(b)
		return err
	})
}

// adopt copies a layer that is not in the blob store (one a Runner made some other
// way) into it, streaming its compressed bytes, and returns it as a fileLayer.
func (c *cache) adopt(l v1.Layer) (*fileLayer, error) {
	if fl, ok := l.(*fileLayer); ok {
		return fl, nil
	}
	d, err := l.Digest()
	if err != nil {
		return nil, err
	}
	id, err := l.DiffID()
	if err != nil {
		return nil, err
	}
	mt, err := l.MediaType()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(c.blobDir(), 0o755); err != nil {
		return nil, err
	}
	rc, err := l.Compressed()
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	f, err := os.CreateTemp(c.blobDir(), ".adopt-*")
	if err != nil {
		return nil, err
	}
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), rc)
	if err == nil {
		err = f.Chmod(0o644)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && hex.EncodeToString(h.Sum(nil)) != d.Hex {
		err = errors.New("layer's compressed bytes do not match its digest " + d.String())
	}
	path := filepath.Join(c.blobDir(), d.Hex)
	if err == nil {
		err = os.Rename(f.Name(), path)
	}
	if err != nil {
		return nil, errors.Join(err, os.Remove(f.Name()))
	}
	return &fileLayer{path: path, digest: d, diffID: id, size: n, mt: mt}, nil
}

// keyOf hashes parts, each length-prefixed so that no two lists hash alike.
func keyOf(parts ...string) string {
	h := sha256.New()
	for _, p := range parts {
		var n [8]byte
		for i, l := 0, len(p); i < 8; i, l = i+1, l>>8 {
			n[i] = byte(l)
		}
		h.Write(n[:])
		h.Write([]byte(p))
	}
	return hex.EncodeToString(h.Sum(nil))
}
