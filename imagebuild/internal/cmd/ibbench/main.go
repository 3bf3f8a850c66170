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
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"

	"github.com/hpcship/hpcship/imagebuild"
)

func main() {
	level := flag.Int("level", imagebuild.DefaultCompressionLevel, "gzip level of new layers")
	cache := flag.String("cache", "", "cache directory (default: the user's cache directory)")
	digest := flag.String("digest", "", "write the image digest to this file instead of stdout")
	cpuprofile := flag.String("cpuprofile", "", "write a CPU profile of the build to this file")
	flag.Parse()
	if flag.NArg() != 2 {
		fmt.Fprintln(os.Stderr, "usage: ibbench [-level N] [-cache DIR] [-digest FILE] [-cpuprofile FILE] CONTEXT DOCKERFILE")
		os.Exit(2)
	}
	if *cpuprofile != "" {
		f, err := os.Create(*cpuprofile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "ibbench:", err)
			os.Exit(1)
		}
		defer func() {
			pprof.StopCPUProfile()
			_ = f.Close()
		}()
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	opts := []imagebuild.Option{imagebuild.WithCompressionLevel(*level), imagebuild.WithContextDir(flag.Arg(0))}
	if *cache != "" {
		opts = append(opts, imagebuild.WithCacheDir(*cache))
	}
	img, err := imagebuild.BuildDockerfile(ctx, flag.Arg(1), opts...)
	if err == nil {
		var d fmt.Stringer
		if d, err = img.Digest(); err == nil {
			if *digest == "" {
				fmt.Println(d)
			} else {
				err = os.WriteFile(*digest, []byte(d.String()+"\n"), 0o644)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "ibbench:", err)
		os.Exit(1)
	}
}
