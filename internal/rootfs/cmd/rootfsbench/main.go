// Command rootfsbench supports scripts/bench/rootfs.sh: it writes the benchmark
// images as OCI layouts (gzip'd layers, as a pulled image has them) and merges
// an image's layers reading every surviving file, either with rootfs.Flatten and
// WalkContents or with go-containerregistry's mutate.Extract, so that the script
// times both as whole processes.
//
//	rootfsbench -layout DIR gen              three layers of 20,000 small files; the upper two
//	                                         replace a tenth of the files below and white out a tenth
//	rootfsbench -layout DIR [-root R] gen SRC...  one layer per source directory (its files under
//	                                         their path from R, by default under the directory's base
//	                                         name), then a layer that replaces every tenth regular file
//	                                         and whites out the next one
//	rootfsbench -layout DIR flatten [-list FILE]   merge with rootfs, read every file
//	rootfsbench -layout DIR extract [-list FILE]   merge with mutate.Extract, read every file
//
// -list writes the merged tree, one line per explicit entry (path, type, mode,
// owner, size, link target, SHA-256 of the content), sorted, for comparing the
// two; without it the content is read and discarded.
package main

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"log"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/rootfs"
)

func main() {
	log.SetFlags(0)
	dir := flag.String("layout", "", "OCI layout directory")
	list := flag.String("list", "", "write the merged tree's listing to this file")
	root := flag.String("root", "", "gen: name files by their path from this directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *dir, *list, *root, size{benchDirs, benchFiles}, flag.Args()); err != nil {
		log.Fatalf("rootfsbench: %v", err)
	}
}

// size is the synthetic image's: directories per layer and files per directory.
type size struct{ dirs, files int }

// The synthetic image scripts/bench/rootfs.sh times: 20,000 files per layer.
const benchDirs, benchFiles = 200, 100

func run(ctx context.Context, dir, list, root string, synth size, args []string) error {
	if dir == "" || len(args) == 0 {
		return errors.New("usage: rootfsbench -layout DIR gen [SRC...] | flatten | extract")
	}
	switch args[0] {
	case "gen":
		if len(args) == 1 {
			return benchlayout.Write(dir, syntheticLayers(synth))
		}
		return benchlayout.Write(dir, realLayers(root, args[1:]))
	case "flatten", "extract":
		if len(args) != 1 {
			break
		}
		img, err := benchlayout.Read(dir)
		if err != nil {
			return err
		}
		var l lister = discard{}
		if list != "" {
			l = &listing{}
		}
		if args[0] == "flatten" {
			err = flatten(ctx, img, l)
		} else {
			err = extract(img, l)
		}
		if err != nil {
			return err
		}
		if ll, ok := l.(*listing); ok {
			slices.Sort(ll.lines)
			return os.WriteFile(list, []byte(strings.Join(ll.lines, "")), 0o644)
		}
		return nil
	}
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// lister receives the merged entries; content is nil for all but regular files.
type lister interface {
	add(name string, typ byte, mode int64, uid, gid int, size int64, link string, content io.Reader) error
}

type discard struct{}

func (discard) add(_ string, _ byte, _ int64, _, _ int, _ int64, _ string, content io.Reader) error {
	if content != nil {
		_, err := io.Copy(io.Discard, content)
		return err
	}
	return nil
}

type listing struct {
	lines []string
	h     hash.Hash
}

func (l *listing) add(name string, typ byte, mode int64, uid, gid int, size int64, link string, content io.Reader) error {
	sum := "-"
	if content != nil {
		if l.h == nil {
			l.h = sha256.New()
		}
		l.h.Reset()
		if _, err := io.Copy(l.h, content); err != nil {
			return err
		}
		sum = fmt.Sprintf("%x", l.h.Sum(nil))
	}
	l.lines = append(l.lines, fmt.Sprintf("%q %c %04o %d:%d %d %q %s\n", name, typ, mode&0o7777, uid, gid, size, link, sum))
	return nil
}

// flatten merges with rootfs: metadata from Flatten, contents from WalkContents.
// Implied directories (no layer holds them) are left out, as Extract has none.
func flatten(ctx context.Context, img v1.Image, l lister) error {
	layers, err := img.Layers()
	if err != nil {
		return err
	}
	rl := make([]rootfs.Layer, len(layers))
	for i, layer := range layers {
		rl[i] = layer
	}
	tree, err := rootfs.Flatten(ctx, rl)
	if err != nil {
		return err
	}
	for _, e := range tree.Entries() {
		if e.Implied || e.Path == "." || e.Type == rootfs.TypeRegular {
			continue
		}
		typ := map[rootfs.Type]byte{rootfs.TypeDir: tar.TypeDir, rootfs.TypeSymlink: tar.TypeSymlink,
			rootfs.TypeHardlink: tar.TypeLink, rootfs.TypeCharDevice: tar.TypeChar,
			rootfs.TypeBlockDevice: tar.TypeBlock, rootfs.TypeFIFO: tar.TypeFifo}[e.Type]
		size := e.Size
		if e.Type == rootfs.TypeHardlink {
			size = 0
		}
		if err := l.add(e.Path, typ, int64(e.Mode), e.UID, e.GID, size, e.Linkname, nil); err != nil {
			return err
		}
	}
	return tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
		return l.add(e.Path, tar.TypeReg, int64(e.Mode), e.UID, e.GID, e.Size, "", r)
	})
}

// extract merges with mutate.Extract, which writes the merged tree as one tar stream.
func extract(img v1.Image, l lister) error {
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			// Extract ends the tar stream before it reports an error that
			// stopped it: read on for that error.
			_, err := io.Copy(io.Discard, rc)
			return err
		} else if err != nil {
			return err
		}
		name := strings.TrimSuffix(path.Clean(hdr.Name), "/")
		var content io.Reader
		typ := hdr.Typeflag
		if typ == tar.TypeReg {
			typ, content = tar.TypeReg, tr
		}
		size := hdr.Size
		if content == nil {
			size = 0
		}
		if err := l.add(name, typ, hdr.Mode, hdr.Uid, hdr.Gid, size, hdr.Linkname, content); err != nil {
			return err
		}
	}
}

func writeFile(tw *tar.Writer, name, content string) error {
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(content)), Typeflag: tar.TypeReg}); err != nil {
		return err
	}
	_, err := io.WriteString(tw, content)
	return err
}

func writeWhiteout(tw *tar.Writer, name string) error {
	return tw.WriteHeader(&tar.Header{Name: path.Join(path.Dir(name), ".wh."+path.Base(name)), Mode: 0o644, Typeflag: tar.TypeReg})
}

// syntheticLayers are those of internal/rootfs's BenchmarkFlatten: three layers of
// small files, by default 20,000 in 200 directories; the upper layers replace a
// tenth of the files below and white out a tenth.
func syntheticLayers(sz size) []benchlayout.Layer {
	var out []benchlayout.Layer
	for li := range 3 {
		out = append(out, func(tw *tar.Writer) error {
			for d := range sz.dirs {
				dir := fmt.Sprintf("usr/share/d%03d", d)
				if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Mode: 0o755, Typeflag: tar.TypeDir}); err != nil {
					return err
				}
				for f := range sz.files {
					name := fmt.Sprintf("%s/f%03d", dir, f)
					var err error
					switch {
					case li > 0 && f%10 == 1:
						err = writeWhiteout(tw, name)
					case li == 0 || f%10 == 0:
						err = writeFile(tw, name, fmt.Sprintf("layer %d file %s, some bytes of content", li, name))
					}
					if err != nil {
						return err
					}
				}
			}
			return nil
		})
	}
	return out
}

// realLayers holds one layer per source directory and a last layer that replaces
// every tenth regular file of them and whites out the one after it.
func realLayers(root string, srcs []string) []benchlayout.Layer {
	var out []benchlayout.Layer
	for _, src := range srcs {
		out = append(out, func(tw *tar.Writer) error { return benchlayout.AddTree(tw, root, src) })
	}
	return append(out, func(tw *tar.Writer) error {
		for _, src := range srcs {
			if err := changes(root, src, tw); err != nil {
				return err
			}
		}
		return nil
	})
}

// changes writes the last layer's changes to the regular files of src, named as
// benchlayout.AddTree names them: every tenth replaced, the one after it whited out.
func changes(root, src string, tw *tar.Writer) error {
	if root == "" {
		root = filepath.Dir(src)
	}
	n := 0
	return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		name := filepath.ToSlash(rel)
		switch n++; n % 10 {
		case 0:
			return writeFile(tw, name, "replaced in the upper layer\n")
		case 1:
			return writeWhiteout(tw, name)
		}
		return nil
	})
}
