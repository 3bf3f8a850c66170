package imagebuild

import (
	"context"
	"errors"
	"fmt"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Base is the image a build starts from: Scratch, FromImage, FromReference,
// FromLayout or FromTarball.
type Base interface {
	// String names the base in history and errors.
	String() string
	image(ctx context.Context, o *options, platform *v1.Platform) (v1.Image, error)
}

// Scratch is the empty base image (FROM scratch). Images built on it use OCI media
// types.
func Scratch() Base { return scratchBase{} }

// FromImage starts from img as it is.
func FromImage(img v1.Image) Base { return imageBase{img} }

// FromReference starts from an image in a registry ("centos:7",
// "myacr.azurecr.io/base@sha256:..."), pulled with the build's keychain; an index
// resolves to the build's platform. Only the layers a step reads are downloaded.
func FromReference(ref string) Base { return refBase{ref} }

// FromLayout starts from the image in the OCI layout at dir: the only image of its
// index, or the one for the build's platform.
func FromLayout(dir string) Base { return layoutBase{dir} }

// FromTarball starts from an image in a docker tarball (docker save,
// tarball.Write) at path; tag picks one of several images, "" takes the only one.
func FromTarball(path, tag string) Base { return tarballBase{path, tag} }

type scratchBase struct{}

func (scratchBase) String() string { return "scratch" }
func (scratchBase) image(_ context.Context, _ *options, p *v1.Platform) (v1.Image, error) {
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Variant = p.OS, p.Architecture, p.Variant
	return mutate.ConfigFile(img, cf)
}

type imageBase struct{ img v1.Image }

func (b imageBase) String() string {
	if d, err := b.img.Digest(); err == nil {
		return d.String()
	}
	return "image"
}
func (b imageBase) image(context.Context, *options, *v1.Platform) (v1.Image, error) {
	if b.img == nil {
		return nil, errors.New("base image is nil")
	}
	return b.img, nil
}

type refBase struct{ ref string }

func (b refBase) String() string { return b.ref }
func (b refBase) image(ctx context.Context, o *options, p *v1.Platform) (v1.Image, error) {
	ref, err := name.ParseReference(b.ref)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, remote.WithContext(ctx), remote.WithAuthFromKeychain(o.keychain), remote.WithPlatform(*p))
	if err != nil {
		return nil, fmt.Errorf("pulling %s: %w", ref, err)
	}
	return img, nil
}

type layoutBase struct{ dir string }

func (b layoutBase) String() string { return "oci-layout://" + b.dir }
func (b layoutBase) image(_ context.Context, _ *options, p *v1.Platform) (v1.Image, error) {
	idx, err := layout.ImageIndexFromPath(b.dir)
	if err != nil {
		return nil, fmt.Errorf("reading OCI layout %s: %w", b.dir, err)
	}
	return imageFromIndex(idx, p, b.dir)
}

// imageFromIndex picks the only image of idx, or the one for platform p, descending
// into nested indexes.
func imageFromIndex(idx v1.ImageIndex, p *v1.Platform, where string) (v1.Image, error) {
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	var found []v1.Descriptor
	for _, d := range m.Manifests {
		switch {
		case d.MediaType.IsIndex():
			child, err := idx.ImageIndex(d.Digest)
			if err != nil {
				return nil, err
			}
			if img, err := imageFromIndex(child, p, where); err == nil {
				return img, nil
			}
		case d.MediaType.IsImage():
			if len(m.Manifests) == 1 || d.Platform == nil || d.Platform.Satisfies(*p) {
				found = append(found, d)
			}
		}
	}
	if len(found) != 1 {
		return nil, fmt.Errorf("%s: %d images match platform %s, want exactly one", where, len(found), p)
	}
	return idx.Image(found[0].Digest)
}

type tarballBase struct{ path, tag string }

func (b tarballBase) String() string { return "docker-archive://" + b.path }
func (b tarballBase) image(context.Context, *options, *v1.Platform) (v1.Image, error) {
	var tag *name.Tag
	if b.tag != "" {
		t, err := name.NewTag(b.tag)
		if err != nil {
			return nil, err
		}
		tag = &t
	}
	img, err := tarball.ImageFromPath(b.path, tag)
	if err != nil {
		return nil, fmt.Errorf("reading docker tarball %s: %w", b.path, err)
	}
	return img, nil
}
