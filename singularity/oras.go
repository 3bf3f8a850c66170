package singularity

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

// The media types of a SIF stored in a registry as an OCI artifact, as
// Apptainer's oras:// client writes and reads them.
const (
	// MediaTypeSIFConfig is the artifact's config, the empty JSON object.
	MediaTypeSIFConfig types.MediaType = "application/vnd.sylabs.sif.config.v1+json"
	// MediaTypeSIFLayer is its one layer, the SIF file byte for byte.
	MediaTypeSIFLayer types.MediaType = "application/vnd.sylabs.sif.layer.v1.sif"
	// mediaTypeSIFLayerOld is what older clients wrote, spelling included.
	mediaTypeSIFLayerOld types.MediaType = "appliciation/vnd.sylabs.sif.layer.tar"
)

// ErrNotSIFArtifact reports a registry manifest that is not a SIF artifact:
// not exactly one layer, or a layer of another media type, or content that is
// not a SIF.
var ErrNotSIFArtifact = errors.New("not a SIF artifact")

// sifConfig is the artifact's config blob.
var sifConfig = []byte("{}")

// fileLayer is a file uploaded as one uncompressed layer.
type fileLayer struct {
	path      string
	digest    v1.Hash
	size      int64
	mediaType types.MediaType
}

var _ v1.Layer = (*fileLayer)(nil)

func (l *fileLayer) Digest() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) DiffID() (v1.Hash, error)             { return l.digest, nil }
func (l *fileLayer) Compressed() (io.ReadCloser, error)   { return os.Open(l.path) }
func (l *fileLayer) Uncompressed() (io.ReadCloser, error) { return os.Open(l.path) }
func (l *fileLayer) Size() (int64, error)                 { return l.size, nil }
func (l *fileLayer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }

// bytesLayer is a small blob held in memory.
type bytesLayer struct {
	data      []byte
	mediaType types.MediaType
}

var _ v1.Layer = bytesLayer{}

func (l bytesLayer) Digest() (v1.Hash, error) {
	h, _, err := v1.SHA256(bytes.NewReader(l.data))
	return h, err
}
func (l bytesLayer) DiffID() (v1.Hash, error) { return l.Digest() }
func (l bytesLayer) Compressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l.data)), nil
}
func (l bytesLayer) Uncompressed() (io.ReadCloser, error) { return l.Compressed() }
func (l bytesLayer) Size() (int64, error)                 { return int64(len(l.data)), nil }
func (l bytesLayer) MediaType() (types.MediaType, error)  { return l.mediaType, nil }
func (l bytesLayer) descriptor() (v1.Descriptor, error)   { return partialDescriptor(l) }
func partialDescriptor(l v1.Layer) (v1.Descriptor, error) {
	d, err := l.Digest()
	if err != nil {
		return v1.Descriptor{}, err
	}
	size, _ := l.Size()
	mt, _ := l.MediaType()
	return v1.Descriptor{MediaType: mt, Size: size, Digest: d}, nil
}

// rawManifest is a manifest to put as it is.
type rawManifest struct {
	data      []byte
	mediaType types.MediaType
}

func (m rawManifest) RawManifest() ([]byte, error)        { return m.data, nil }
func (m rawManifest) MediaType() (types.MediaType, error) { return m.mediaType, nil }

// PushSIF uploads the SIF at path to ref as an OCI artifact that `apptainer
// pull oras://REF` reads: an image manifest with the config
// MediaTypeSIFConfig ("{}") and one layer MediaTypeSIFLayer holding the file
// byte for byte, titled with its base name, and the SIF's creation time as
// org.opencontainers.image.created. The file is checked to be a SIF and
// streamed from disk (read twice: once for its digest, once to upload). It
// returns the manifest's digest.
//
// By default credentials come from authn.DefaultKeychain (WithKeychain,
// WithAuthenticator, WithEnvCredentials) over ggcr's default transport
// (WithTransport).
func PushSIF(ctx context.Context, path string, ref name.Reference, opts ...Option) (v1.Hash, error) {
	o, err := newOptions("singularity.PushSIF", callPushSIF, opts)
	if err != nil {
		return v1.Hash{}, err
	}
	file, err := os.Open(path)
	if err != nil {
		return v1.Hash{}, err
	}
	defer file.Close()
	fi, err := file.Stat()
	if err != nil {
		return v1.Hash{}, err
	}
	f, err := loadSIF(file, fi.Size())
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", path, err)
	}
	created := f.CreatedAt()
	sum := sha256.New()
	size, err := io.Copy(sum, file)
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", path, err)
	}
	layer := &fileLayer{path: path, size: size, mediaType: MediaTypeSIFLayer,
		digest: v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum.Sum(nil))}}
	config := bytesLayer{data: sifConfig, mediaType: MediaTypeSIFConfig}

	ropts := o.remoteOptions(ctx)
	for _, l := range []v1.Layer{config, layer} {
		if err := remote.WriteLayer(ref.Context(), l, ropts...); err != nil {
			return v1.Hash{}, fmt.Errorf("pushing %s to %s: %w", path, ref, err)
		}
	}
	configDesc, err := config.descriptor()
	if err != nil {
		return v1.Hash{}, err
	}
	layerDesc, _ := partialDescriptor(layer)
	layerDesc.Annotations = map[string]string{"org.opencontainers.image.title": filepath.Base(path)}
	m := v1.Manifest{
		SchemaVersion: 2,
		MediaType:     types.OCIManifestSchema1,
		Config:        configDesc,
		Layers:        []v1.Descriptor{layerDesc},
		Annotations:   map[string]string{"org.opencontainers.image.created": created.UTC().Format(time.RFC3339)},
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := remote.Put(ref, rawManifest{data: raw, mediaType: types.OCIManifestSchema1}, ropts...); err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s to %s: %w", path, ref, err)
	}
	h, _, err := v1.SHA256(bytes.NewReader(raw))
	return h, err
}

// PullSIF downloads the SIF artifact at ref, as `apptainer push` stores it,
// to path and returns the path written (DefaultName(ref) in the current
// directory when path is empty, or in path when it is a directory). The
// manifest must have exactly one layer of MediaTypeSIFLayer (or the older
// "appliciation/vnd.sylabs.sif.layer.tar"); the content is streamed to a
// temporary file, checked against the layer's digest and to be a SIF, and
// renamed into place, so a failure leaves nothing at path. Anything else is an
// error wrapping ErrNotSIFArtifact.
//
// By default credentials come from authn.DefaultKeychain (WithKeychain,
// WithAuthenticator, WithEnvCredentials) over ggcr's default transport
// (WithTransport).
func PullSIF(ctx context.Context, ref name.Reference, path string, opts ...Option) (string, error) {
	o, err := newOptions("singularity.PullSIF", callPullSIF, opts)
	if err != nil {
		return "", err
	}
	if path == "" {
		path = DefaultName(ref, FormatSIF)
	} else if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultName(ref, FormatSIF))
	}
	ropts := o.remoteOptions(ctx)
	desc, err := remote.Get(ref, ropts...)
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	if desc.MediaType.IsIndex() {
		return "", fmt.Errorf("pulling %s: %w: an index, not an image manifest", ref, ErrNotSIFArtifact)
	}
	m, err := v1.ParseManifest(bytes.NewReader(desc.Manifest))
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	if len(m.Layers) != 1 {
		return "", fmt.Errorf("pulling %s: %w: %d layers, want 1", ref, ErrNotSIFArtifact, len(m.Layers))
	}
	ld := m.Layers[0]
	if ld.MediaType != MediaTypeSIFLayer && ld.MediaType != mediaTypeSIFLayerOld {
		return "", fmt.Errorf("pulling %s: %w: layer media type %q", ref, ErrNotSIFArtifact, ld.MediaType)
	}
	layer, err := remote.Layer(ref.Context().Digest(ld.Digest.String()), ropts...)
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	err = atomicfile.Write(ctx, path, 0o755, func(f *os.File) error {
		rc, err := layer.Compressed()
		if err != nil {
			return err
		}
		defer rc.Close()
		sum := sha256.New()
		size, err := io.Copy(io.MultiWriter(f, sum), rc)
		if err != nil {
			return err
		}
		if got := hex.EncodeToString(sum.Sum(nil)); ld.Digest.Algorithm != "sha256" || got != ld.Digest.Hex {
			return fmt.Errorf("content has digest sha256:%s, manifest says %s", got, ld.Digest)
		}
		if _, err := loadSIF(f, size); err != nil {
			return fmt.Errorf("%w: %w", ErrNotSIFArtifact, err)
		}
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	return path, nil
}
