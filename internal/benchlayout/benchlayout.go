// Package benchlayout writes and reads the generated images of the benchmark commands
// (acr/internal/benchpush, internal/rootfs/cmd/rootfsbench, and singularity's sifbench,
// which reads them) as OCI image layouts: layers gzip'd at the fastest level, as a pulled
// image has them, each written as a tar file first and streamed from there, so that a
// layer of many GB never sits in memory.
package benchlayout

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Layer writes one layer's tar stream to tw; Write closes tw.
type Layer func(tw *tar.Writer) error

// Write writes an OCI image of the given layers, the first the lowest, as the only image
// of a new OCI layout at dir. The layers are written to tar files in a temporary
// directory, removed at the end, and compressed from there.
func Write(dir string, layers []Layer) error {
	tmp, err := os.MkdirTemp("", "benchlayout-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, write := range layers {
		p := filepath.Join(tmp, fmt.Sprintf("layer%d.tar", i))
		if err := writeTar(p, write); err != nil {
			return fmt.Errorf("writing layer %d: %w", i, err)
		}
		l, err := tarball.LayerFromFile(p, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithMediaType(types.OCILayer))
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return err
		}
	}
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		return err
	}
	return p.AppendImage(img)
}

func writeTar(p string, write Layer) (err error) {
	f, err := os.Create(p)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
	}()
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	if err := write(tw); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

// Read returns the image of an OCI layout that holds exactly one, as Write leaves it.
func Read(dir string) (v1.Image, error) {
	p, err := layout.FromPath(dir)
	if err != nil {
		return nil, err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return nil, err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return nil, err
	}
	if len(m.Manifests) != 1 {
		return nil, fmt.Errorf("layout %s holds %d manifests, want 1", dir, len(m.Manifests))
	}
	return p.Image(m.Manifests[0].Digest)
}

// AddTree writes the directory src, its files, symlinks and subdirectories, to tw, each
// named by its slash-separated path from root (by default src's parent, so that the
// names start with src's base name), directories with a trailing slash, without owner
// names. Other file types (FIFOs, devices) get their header and no content.
func AddTree(tw *tar.Writer, root, src string) error {
	if root == "" {
		root = filepath.Dir(src)
	}
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		link := ""
		if fi.Mode()&fs.ModeSymlink != 0 {
			if link, err = os.Readlink(p); err != nil {
				return err
			}
		}
		hdr, err := tar.FileInfoHeader(fi, link)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		hdr.Name, hdr.Uname, hdr.Gname = filepath.ToSlash(rel), "", ""
		if fi.IsDir() {
			hdr.Name += "/"
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
}
