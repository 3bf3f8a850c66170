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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/signal"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/internal/benchlayout"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// cli parses the flags and runs the command, and returns the process's exit status: 0, 1 when the command
// failed, 2 for bad flags; -h prints the flags and returns 0.
func cli(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("benchpush", flag.ContinueOnError)
	fs.SetOutput(stderr)
	dir := fs.String("layout", "", "OCI layout directory")
	layers := fs.Int("layers", 5, "number of layers to generate")
	size := fs.Int64("layer-size", 100<<20, "uncompressed bytes per layer")
	jobs := fs.Int("jobs", 4, "blobs pushed at once")
	root := fs.String("root", "", "generate SRC...: name files by their path from this directory")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := run(ctx, stdout, *dir, *root, *layers, *size, *jobs, fs.Args()); err != nil {
		fmt.Fprintln(stderr, "benchpush:", err)
		return 1
	}
	return 0
}

func run(ctx context.Context, stdout io.Writer, dir, root string, layers int, size int64, jobs int, args []string) error {
	if dir == "" || len(args) == 0 {
		return errors.New("usage: benchpush -layout DIR generate | push REF")
	}
	switch {
	case args[0] == "generate" && len(args) == 1:
		return generate(dir, layers, size)
	case args[0] == "generate":
		return generateFrom(dir, root, args[1:])
	case args[0] == "push" && len(args) == 2:
		return push(ctx, stdout, dir, args[1], jobs)
	}
	return fmt.Errorf("unknown command %q", strings.Join(args, " "))
}

// generate writes an image whose layers each hold one file: half random bytes, which
// gzip cannot shrink, and half repetitive text, which it can.
func generate(dir string, layers int, size int64) error {
	ls := make([]benchlayout.Layer, layers)
	for i := range ls {
		ls[i] = func(tw *tar.Writer) error {
			hdr := &tar.Header{Name: fmt.Sprintf("opt/data/blob%d", i), Mode: 0o644, Size: size, ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			random := io.LimitReader(rand.NewChaCha8([32]byte{byte(i)}), size/2)
			text := io.LimitReader(repeatReader("MPI rank 0 of 32 on node compute-17: bandwidth 11823.4 MB/s\n"), size-size/2)
			_, err := io.Copy(tw, io.MultiReader(random, text))
			return err
		}
	}
	return benchlayout.Write(dir, ls)
}

// generateFrom writes an image with one layer per source directory, each holding the
// directory's files, links and subdirectories, named by their path from root (by
// default the source's parent).
func generateFrom(dir, root string, srcs []string) error {
	ls := make([]benchlayout.Layer, len(srcs))
	for i, src := range srcs {
		ls[i] = func(tw *tar.Writer) error { return benchlayout.AddTree(tw, root, src) }
	}
	return benchlayout.Write(dir, ls)
}

type repeatReader string

func (r repeatReader) Read(p []byte) (int, error) {
	n := 0
	for n < len(p) {
		n += copy(p[n:], r)
	}
	return n, nil
}

func push(ctx context.Context, stdout io.Writer, dir, refStr string, jobs int) error {
	ref, err := name.ParseReference(refStr)
	if err != nil {
		return err
	}
	img, err := benchlayout.Read(dir)
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
	_, err = fmt.Fprintln(stdout, digest, bytes)
	return err
}

// compressedSize returns the sum of the compressed sizes of img's layers, as its manifest gives them.
func compressedSize(img v1.Image) (int64, error) {
	m, err := img.Manifest()
	if err != nil {
		return 0, err
	}
	var total int64
	for _, l := range m.Layers {
		total += l.Size
	}
	return total, nil
}
