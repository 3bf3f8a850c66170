// Command sifbench supports scripts/bench/sif.sh: it generates the benchmark
// image as an OCI layout, converts it to a SIF with the singularity package,
// and wraps a squashfs made by another tool into a SIF the way Apptainer's
// assembler does, for the peer pipeline.
//
//	sifbench gen [-dirs N] [-large BYTES] LAYOUT TOOLCHAIN
//	                                   write the ≈1 GB 4-layer image to the OCI layout LAYOUT (the
//	                                   flags make it smaller, for trials; the defaults are the benchmark's)
//	sifbench real LAYOUT ROOT DIR...   write an image of one layer per DIR (a path under ROOT, kept
//	                                   as it is) to the OCI layout LAYOUT: the real tree as an image
//	sifbench build [-comp gzip|zstd] [-level N] [-sqfstar] LAYOUT OUT.sif
//	                                   convert the layout's image (our side)
//	sifbench wrap LAYOUT SQUASHFS OUT.sif
//	                                   put SQUASHFS into a SIF with the image's config (peer side)
//	sifbench offset SIF                print the offset of the SIF's squashfs partition
//
// The generated image: layer 1 has 20,000 small text files (-dirs 200
// directories of 100); layer 2 is a toolchain tree (a copy of TOOLCHAIN, e.g.
// the Go root); layer 3 has 300 MB of compressible logs and 250 MB of random
// data (6 and 5 files of -large 50 MiB); layer 4 overwrites 1,000 small files
// (5 per directory of layer 1), whites out 2,000 others (10 per directory), the
// last directory (opaque) and one random file, and rewrites a log with a fifth
// of its size.
package main

import (
	"archive/tar"
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log"
	"math/rand/v2"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/singularity"
)

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatalf("sifbench: %v", err)
	}
}

const usage = "usage: sifbench gen [-dirs N] [-large BYTES] LAYOUT TOOLCHAIN | real LAYOUT ROOT DIR... | build [-comp gzip|zstd] [-level N] [-sqfstar] LAYOUT OUT | wrap LAYOUT SQUASHFS OUT | offset SIF"

// The benchmark's generated image: directories of 100 small files, and the
// size of each large file.
const (
	benchDirs  = 200
	benchLarge = 50 << 20
	// minDirs keeps layer 4's whiteouts out of its opaque directory.
	minDirs = 10
)

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "gen":
		fl := flag.NewFlagSet("gen", flag.ContinueOnError)
		dirs := fl.Int("dirs", benchDirs, "directories of 100 small files in layer 1")
		large := fl.Int64("large", benchLarge, "bytes of each log and random file of layer 3")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		if fl.NArg() != 2 {
			return errors.New(usage)
		}
		if *dirs < minDirs {
			return fmt.Errorf("-dirs must be at least %d, got %d", minDirs, *dirs)
		}
		if *large < 0 {
			return fmt.Errorf("-large must not be negative, got %d", *large)
		}
		return generate(fl.Arg(0), fl.Arg(1), *dirs, *large)
	case "real":
		if len(args) < 4 {
			return errors.New(usage)
		}
		return generateReal(args[1], args[2], args[3:])
	case "build":
		fl := flag.NewFlagSet("build", flag.ContinueOnError)
		comp := fl.String("comp", "gzip", "compressor: gzip or zstd")
		level := fl.Int("level", 6, "compression level")
		sqfstar := fl.Bool("sqfstar", false, "pack with sqfstar")
		if err := fl.Parse(args[1:]); err != nil {
			return err
		}
		if fl.NArg() != 2 {
			return errors.New(usage)
		}
		img, err := benchlayout.Read(fl.Arg(0))
		if err != nil {
			return err
		}
		// The layout's blobs directory is laid out as the blob cache is, so
		// the build reads the blobs in place.
		c := singularity.Gzip
		if *comp == "zstd" {
			c = singularity.Zstd
		} else if *comp != "gzip" {
			return fmt.Errorf("unknown compressor %q", *comp)
		}
		opts := []singularity.Option{singularity.WithCacheDir(fl.Arg(0)), singularity.WithCompression(c, *level),
			singularity.WithSource("bench/image:latest")}
		if *sqfstar {
			opts = append(opts, singularity.WithMksquashfs(""))
		}
		return singularity.Build(ctx, img, fl.Arg(1), opts...)
	case "offset":
		if len(args) != 2 {
			return errors.New(usage)
		}
		info, err := singularity.Inspect(args[1])
		if err != nil {
			return err
		}
		for _, d := range info.Descriptors {
			if d.PartType == sif.PartPrimSys.String() {
				_, err := fmt.Fprintln(stdout, d.Offset)
				return err
			}
		}
		return fmt.Errorf("%s has no primary partition", args[1])
	case "wrap":
		if len(args) != 4 {
			return errors.New(usage)
		}
		return wrap(args[1], args[2], args[3])
	}
	return fmt.Errorf("unknown command %q", args[0])
}

// wrap assembles a SIF as Apptainer's SIF assembler does: definition,
// oci-config.json, then the squashfs copied in as primary partition.
func wrap(dir, squash, out string) error {
	img, err := benchlayout.Read(dir)
	if err != nil {
		return err
	}
	cf, err := img.RawConfigFile()
	if err != nil {
		return err
	}
	f, err := os.Open(squash)
	if err != nil {
		return err
	}
	defer f.Close()
	// The objects Apptainer's assembler writes, in its order.
	var descs []sif.DescriptorInput
	for _, o := range []struct {
		t    sif.DataType
		r    io.Reader
		opts []sif.DescriptorInputOpt
	}{
		{sif.DataDeffile, strings.NewReader("bootstrap: docker\nfrom: bench/image:latest\n\n"), nil},
		{sif.DataGenericJSON, strings.NewReader(string(cf)), []sif.DescriptorInputOpt{sif.OptObjectName("oci-config.json")}},
		{sif.DataPartition, f, []sif.DescriptorInputOpt{sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, "amd64")}},
	} {
		d, err := sif.NewDescriptorInput(o.t, o.r, o.opts...)
		if err != nil {
			return err
		}
		descs = append(descs, d)
	}
	fi, err := sif.CreateContainerAtPath(out, sif.OptCreateWithDescriptors(descs...),
		sif.OptCreateWithLaunchScript("#!/usr/bin/env run-singularity\n"))
	if err != nil {
		return err
	}
	return fi.UnloadContainer()
}

var epoch = time.Unix(1700000000, 0)

// tarGen writes one layer's tar stream.
type tarGen func(tw *tar.Writer) error

func layerOf(gen tarGen) (v1.Layer, error) {
	return tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		pr, pw := io.Pipe()
		go func() {
			bw := bufio.NewWriterSize(pw, 1<<20)
			tw := tar.NewWriter(bw)
			err := gen(tw)
			if err == nil {
				err = tw.Close()
			}
			if err == nil {
				err = bw.Flush()
			}
			pw.CloseWithError(err)
		}()
		return pr, nil
	}, tarball.WithMediaType(types.OCILayer))
}

func put(tw *tar.Writer, name string, mode int64, r io.Reader, size int64) error {
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: size, ModTime: epoch}); err != nil {
		return err
	}
	_, err := io.CopyN(tw, r, size)
	return err
}

var words = strings.Fields("mpi rank node fabric latency bandwidth message barrier allreduce pingpong " +
	"scheduler queue slot host container image layer squashfs kernel module library symbol debug info warn error")

// text is an endless stream of log-like lines, compressible as real logs are.
type text struct{ rng *rand.Rand }

func (t text) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		line := fmt.Sprintf("%08d %s %s %s %d\n", t.rng.IntN(1e8), words[t.rng.IntN(len(words))],
			words[t.rng.IntN(len(words))], words[t.rng.IntN(len(words))], t.rng.IntN(1e6))
		n += copy(p[n:], line)
	}
	return n, nil
}

// random is an endless stream of incompressible bytes.
type random struct{ rng *rand.ChaCha8 }

func (r random) Read(p []byte) (int, error) { return r.rng.Read(p) }

func smallName(i int) string { return fmt.Sprintf("data/small/d%03d/f%05d.txt", i/100, i) }

// dirLayer is a layer holding the tree at src under the name prefix, with
// owners set to root.
func dirLayer(src, prefix string) (v1.Layer, error) {
	return layerOf(func(tw *tar.Writer) error {
		return filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			rel, err := filepath.Rel(src, p)
			if err != nil {
				return err
			}
			name := filepath.ToSlash(filepath.Join(prefix, rel))
			info, err := d.Info()
			if err != nil {
				return err
			}
			hdr, err := tar.FileInfoHeader(info, "")
			if err != nil {
				return err
			}
			hdr.Name, hdr.Uid, hdr.Gid, hdr.Uname, hdr.Gname = name, 0, 0, "", ""
			switch {
			case d.Type()&fs.ModeSymlink != 0:
				if hdr.Linkname, err = os.Readlink(p); err != nil {
					return err
				}
				return tw.WriteHeader(hdr)
			case d.IsDir():
				hdr.Name += "/"
				return tw.WriteHeader(hdr)
			case d.Type().IsRegular():
				f, err := os.Open(p)
				if err != nil {
					return err
				}
				defer f.Close()
				return put(tw, name, int64(info.Mode().Perm()), f, info.Size())
			}
			return nil
		})
	})
}

// generateReal writes an image of one layer per directory of dirs, each at
// its path under root.
func generateReal(out, root string, dirs []string) error {
	var layers []v1.Layer
	for _, d := range dirs {
		l, err := dirLayer(filepath.Join(root, d), d)
		if err != nil {
			return err
		}
		layers = append(layers, l)
	}
	return writeLayout(out, layers, "PATH=/usr/local/go/bin:/usr/bin:/bin")
}

// layerWriter writes the entries of a generated layer. The first error ends
// the layer: the entries after it are not written, and err holds it.
type layerWriter struct {
	tw  *tar.Writer
	err error
}

// put writes a file of size bytes read from r.
func (w *layerWriter) put(name string, r io.Reader, size int64) {
	if w.err == nil {
		w.err = put(w.tw, name, 0o644, r, size)
	}
}

func (w *layerWriter) dir(name string) {
	if w.err == nil {
		w.err = w.tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: name + "/", Mode: 0o755, ModTime: epoch})
	}
}

// generated is the layer write writes.
func generated(write func(w *layerWriter)) (v1.Layer, error) {
	return layerOf(func(tw *tar.Writer) error {
		w := &layerWriter{tw: tw}
		write(w)
		return w.err
	})
}

// generate writes the generated image with dirs directories of 100 small
// files and size bytes in each log and random file to the layout out.
func generate(out, toolchain string, dirs int, size int64) error {
	// The toolchain first: a bad path fails before the small files are
	// generated.
	tool, err := dirLayer(toolchain, "opt/toolchain")
	if err != nil {
		return err
	}
	small, err := generated(func(w *layerWriter) {
		rng := rand.New(rand.NewPCG(1, 1))
		w.dir("data")
		w.dir("data/small")
		for i := range dirs * 100 {
			if i%100 == 0 {
				w.dir(filepath.Dir(smallName(i)))
			}
			w.put(smallName(i), text{rng}, int64(512+rng.IntN(7*1024)))
		}
	})
	if err != nil {
		return err
	}
	large, err := generated(func(w *layerWriter) {
		rng := rand.New(rand.NewPCG(3, 3))
		w.dir("data/large")
		for i := range 6 {
			w.put(fmt.Sprintf("data/large/log%d.txt", i), text{rng}, size)
		}
		for i := range 5 {
			w.put(fmt.Sprintf("data/large/random%d.bin", i), random{rand.NewChaCha8([32]byte{byte(i)})}, size)
		}
	})
	if err != nil {
		return err
	}
	changes, err := generated(func(w *layerWriter) {
		rng := rand.New(rand.NewPCG(4, 4))
		for i := range dirs * 15 {
			name := smallName(i * 6)
			if i < dirs*5 {
				w.put(name, text{rng}, int64(512+rng.IntN(7*1024)))
			} else {
				w.put(filepath.Dir(name)+"/.wh."+filepath.Base(name), strings.NewReader(""), 0)
			}
		}
		w.put(fmt.Sprintf("data/small/d%03d/.wh..wh..opq", dirs-1), strings.NewReader(""), 0)
		w.put("data/large/.wh.random4.bin", strings.NewReader(""), 0)
		w.put("data/large/log0.txt", text{rng}, size/5)
	})
	if err != nil {
		return err
	}
	return writeLayout(out, []v1.Layer{small, tool, large, changes}, "PATH=/opt/toolchain/bin:/usr/bin:/bin")
}

// writeLayout writes an image of layers to the OCI layout out, named bench.
func writeLayout(out string, layers []v1.Layer, path string) error {
	// umoci reads OCI media types only.
	base, err := mutate.ConfigFile(mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON),
		&v1.ConfigFile{OS: "linux", Architecture: "amd64", RootFS: v1.RootFS{Type: "layers"},
			Config: v1.Config{Env: []string{path}, Cmd: []string{"/bin/sh"}}})
	if err != nil {
		return err
	}
	img, err := mutate.AppendLayers(base, layers...)
	if err != nil {
		return err
	}
	p, err := layout.Write(out, empty.Index)
	if err != nil {
		return err
	}
	// umoci finds the image by this name: LAYOUT:bench.
	return p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "bench"}))
}
