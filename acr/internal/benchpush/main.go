// Command benchpush generates the benchmark images of scripts/bench/acr.sh as OCI
// layouts and pushes them with acr.Push. The script times it as a whole process, as it
// times skopeo, so start-up, reading the layout and the push all count.
//
//	benchpush -layout DIR generate            write 5 layers × 100 MB (half random, half text) to DIR
//	benchpush -layout DIR [-root R] generate SRC...  write one layer per source directory to DIR,
//	                                          its files named by their path from R (by default, from
//	                                          the directory's parent)
//	benchpush -layout DIR push HOST/REPO:TAG  push the layout's image (plain HTTP to 127.0.0.1), print its digest
//	                                          and compressed size (-jobs N: blobs at once, default 4)
package main

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hpcship/hpcship/acr"
)

func main() {
	dir := flag.String("layout", "", "OCI layout directory")
	layers := flag.Int("layers", 5, "number of layers to generate")
	size := flag.Int64("layer-size", 100<<20, "uncompressed bytes per layer")
	jobs := flag.Int("jobs", 4, "blobs pushed at once")
	root := flag.String("root", "", "generate SRC...: name files by their path from this directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, *dir, *root, *layers, *size, *jobs, flag.Args()); err != nil {
		fmt.Fprintln(os.Stderr, "benchpush:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, dir, root string, layers int, size int64, jobs int, args []string) error {
	if dir == "" || len(args) == 0 {
		return errors.New("usage: benchpush -layout DIR generate | push REF")
	}
	switch {
	case args[0] == "generate" && len(args) == 1:
		return generate(dir, layers, size)
	case args[0] == "generate":
		return generateFrom(dir, root, args[1:])
	case args[0] == "push" && len(args) == 2:
		return push(ctx, dir, args[1], jobs)
	}
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// generate writes an image whose layers each hold one file: half random bytes, which
// gzip cannot shrink, and half repetitive text, which it can.
func generate(dir string, layers int, size int64) error {
	tmp, err := os.MkdirTemp("", "benchpush-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i := range layers {
		path := filepath.Join(tmp, fmt.Sprintf("layer%d.tar", i))
		if err := writeLayerTar(path, i, size); err != nil {
			return err
		}
		l, err := tarball.LayerFromFile(path, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithMediaType(types.OCILayer))
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

// generateFrom writes an image with one layer per source directory, each holding the
// directory's files, links and subdirectories, named by their path from root (by
// default the source's parent).
func generateFrom(dir, root string, srcs []string) error {
	tmp, err := os.MkdirTemp("", "benchpush-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	img := mutate.MediaType(empty.Image, types.OCIManifestSchema1)
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	for i, src := range srcs {
		path := filepath.Join(tmp, fmt.Sprintf("layer%d.tar", i))
		if err := writeDirTar(path, root, src); err != nil {
			return err
		}
		l, err := tarball.LayerFromFile(path, tarball.WithCompressionLevel(gzip.BestSpeed), tarball.WithMediaType(types.OCILayer))
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

func writeDirTar(path, root, src string) (err error) {
	if root == "" {
		root = filepath.Dir(src)
	}
	f, err := os.Create(path)
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
	err = filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
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
		hdr.Name = filepath.ToSlash(rel)
		if fi.IsDir() {
			hdr.Name += "/"
		}
		hdr.Uname, hdr.Gname = "", ""
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if !fi.Mode().IsRegular() {
			return nil
		}
		r, err := os.Open(p)
		if err != nil {
			return err
		}
		defer r.Close()
		_, err = io.Copy(tw, r)
		return err
	})
	if err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	return bw.Flush()
}

func writeLayerTar(path string, seed int, size int64) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(f, 1<<20)
	tw := tar.NewWriter(bw)
	hdr := &tar.Header{Name: fmt.Sprintf("opt/data/blob%d", seed), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
	if err := tw.WriteHeader(hdr); err != nil {
		f.Close()
		return err
	}
	random := io.LimitReader(rand.NewChaCha8([32]byte{byte(seed)}), size/2)
	text := io.LimitReader(repeatReader("MPI rank 0 of 32 on node compute-17: bandwidth 11823.4 MB/s\n"), size-size/2)
	if _, err := io.Copy(tw, io.MultiReader(random, text)); err != nil {
		f.Close()
		return err
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	if err := bw.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

type repeatReader string

func (r repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r)
	}
	return n, nil
}

func push(ctx context.Context, dir, refStr string, jobs int) error {
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return err
	}
	p, err := layout.FromPath(dir)
	if err != nil {
		return err
	}
	idx, err := p.ImageIndex()
	if err != nil {
		return err
	}
	m, err := idx.IndexManifest()
	if err != nil {
		return err
	}
	if len(m.Manifests) != 1 {
		return fmt.Errorf("layout holds %d manifests, want 1", len(m.Manifests))
	}
	img, err := p.Image(m.Manifests[0].Digest)
	if err != nil {
		return err
	}
	bytes, err := compressedSize(img)
	if err != nil {
		return err
	}
	digest, err := acr.Push(ctx, ref, img, acr.WithJobs(jobs))
	if err != nil {
		return err
	}
	fmt.Println(digest, bytes)
	return nil
}

func compressedSize(img v1.Image) (int64, error) {
	layers, err := img.Layers()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return 0, err
		}
		total += n
	}
	return total, nil
}
