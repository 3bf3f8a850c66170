package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

// WriteLayout adds img to the OCI image layout at dir (created if missing), tagged
// with the org.opencontainers.image.ref.name annotation when tag is not empty, and
// makes its blobs world-readable (go-containerregistry leaves them 0600), so that
// another user, such as a Singularity build, can read the layout. Blobs already in
// the layout are not written again.
func WriteLayout(ctx context.Context, dir string, img v1.Image, tag string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		if p, err = layout.Write(dir, empty.Index); err != nil {
			return fmt.Errorf("creating OCI layout %s: %w", dir, err)
		}
	}
	var lopts []layout.Option
	if tag != "" {
		lopts = append(lopts, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": tag}))
	}
	if err := p.AppendImage(img, lopts...); err != nil {
		return fmt.Errorf("writing to OCI layout %s: %w", dir, err)
	}
	return chmodBlobs(dir, img)
}

// chmodBlobs makes img's blobs in the layout at dir readable by all.
func chmodBlobs(dir string, img v1.Image) error {
	digests := []v1.Hash{}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	cfg, err := img.ConfigName()
	if err != nil {
		return err
	}
	digests = append(digests, d, cfg)
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	for _, l := range layers {
		ld, err := l.Digest()
		if err != nil {
			return err
		}
		digests = append(digests, ld)
	}
	for _, h := range digests {
		if err := os.Chmod(filepath.Join(dir, "blobs", h.Algorithm, h.Hex), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// WriteTarball writes img as a docker tarball (docker load, singularity build
// docker-archive:) tagged tag, replacing path atomically.
func WriteTarball(ctx context.Context, path string, img v1.Image, tag string) error {
	t, err := name.NewTag(tag)
	if err != nil {
		return fmt.Errorf("tarball tag: %w", err)
	}
	return atomicfile.Write(ctx, path, 0o644, func(f *os.File) error {
		return tarball.Write(t, img, f)
	})
}

// Push uploads img to ref with the keychain of WithKeychain (default
// authn.DefaultKeychain), skipping blobs the registry already has, and reports
// uploaded bytes through WithProgress. It returns the pushed manifest's digest.
func Push(ctx context.Context, ref name.Reference, img v1.Image, opts ...Option) (v1.Hash, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return v1.Hash{}, err
	}
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain)}
	var done chan struct{}
	if o.progress != nil {
		ch := make(chan v1.Update, 16)
		done = make(chan struct{})
		go func() {
			defer close(done)
			for u := range ch {
				o.progress(Progress{Bytes: u.Complete, Total: u.Total, Done: u.Error == nil && u.Complete == u.Total})
			}
		}()
		ropts = append(ropts, remote.WithProgress(ch))
	}
	err = remote.Write(ref, img, ropts...)
	if done != nil {
		<-done
	}
	if err != nil {
		return v1.Hash{}, fmt.Errorf("pushing %s: %w", ref, err)
	}
	d, err := img.Digest()
	if err != nil {
		return v1.Hash{}, errors.Join(fmt.Errorf("pushed %s", ref), err)
	}
	return d, nil
}
