// Command ibbench builds a Dockerfile with imagebuild, for scripts/bench/imagebuild.sh, which times it as a
// whole process against tar and gzip or pigz.
//
//	ibbench [-level N] [-cache DIR] [-digest FILE] [-cpuprofile FILE] CONTEXT DOCKERFILE
//
// It writes the image's digest to FILE (or stdout) and the layers to the cache directory; -cpuprofile writes a
// CPU profile of the build for `go tool pprof`.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/hpcship/hpcship/imagebuild"
)

const usage = "usage: ibbench [-level N] [-cache DIR] [-digest FILE] [-cpuprofile FILE] CONTEXT DOCKERFILE"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// cli parses the flags and builds, and returns the process's exit status: 0, 1 when the build failed, 2 for bad
// flags or arguments; -h prints the flags and returns 0.
func cli(ctx context.Context, argv []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("ibbench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	level := fs.Int("level", imagebuild.DefaultCompressionLevel, "gzip level of new layers")
	cache := fs.String("cache", "", "cache directory (default: the user's cache directory)")
	digest := fs.String("digest", "", "write the image digest to this file instead of stdout")
	cpuprofile := fs.String("cpuprofile", "", "write a CPU profile of the build to this file")
	if err := fs.Parse(argv); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if fs.NArg() != 2 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if err := build(ctx, stdout, fs.Arg(0), fs.Arg(1), *level, *cache, *digest, *cpuprofile); err != nil {
		fmt.Fprintln(stderr, "ibbench:", err)
		return 1
	}
	return 0
}

// build builds dockerfile with the context directory contextDir and writes the image's digest to the file digest,
// or to stdout if digest is empty.
func build(ctx context.Context, stdout io.Writer, contextDir, dockerfile string, level int, cache, digest, cpuprofile string) (err error) {
	if cpuprofile != "" {
		var f *os.File
		if f, err = os.Create(cpuprofile); err != nil {
			return err
		}
		if err = pprof.StartCPUProfile(f); err != nil {
			_ = f.Close()
			return err
		}
		defer func() {
			pprof.StopCPUProfile()
			if cerr := f.Close(); err == nil {
				err = cerr
			}
		}()
	}
	opts := []imagebuild.Option{imagebuild.WithCompressionLevel(level), imagebuild.WithContextDir(contextDir)}
	if cache != "" {
		opts = append(opts, imagebuild.WithCacheDir(cache))
	}
	img, err := imagebuild.BuildDockerfile(ctx, dockerfile, opts...)
	if err != nil {
		return err
	}
	d, err := img.Digest()
	if err != nil {
		return err
	}
	if digest == "" {
		_, err = fmt.Fprintln(stdout, d)
		return err
	}
	return os.WriteFile(digest, []byte(d.String()+"\n"), 0o644)
}
