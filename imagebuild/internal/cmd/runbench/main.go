// Command runbench times RUN steps of imagebuild's NamespaceRunner, for scripts/bench/imagebuild-run.sh, which
// compares one trivial RUN on a large base with `unshare -r chroot` on an unpacked copy of the same tree.
//
//	runbench base TREE LAYOUT      writes an image of TREE (one layer, FROM scratch + COPY TREE /) to the OCI layout LAYOUT
//	runbench run [-cache DIR] [-digest FILE] LAYOUT COMMAND...
//	                               builds FROM LAYOUT + one shell-form RUN per COMMAND without the build cache
//	                               and writes the image's digest to FILE (or stdout)
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/imagebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "runbench:", err)
		os.Exit(1)
	}
}

const usage = "usage: runbench base TREE LAYOUT | runbench run [-cache DIR] [-digest FILE] LAYOUT COMMAND..."

func run(ctx context.Context, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	epoch := imagebuild.WithSourceDateEpoch(time.Unix(1_700_000_000, 0))
	switch args[0] {
	case "base":
		if len(args) != 3 {
			return fmt.Errorf("%s", usage)
		}
		cache, err := os.MkdirTemp("", "runbench-cache-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(cache)
		img, err := imagebuild.Build(ctx, imagebuild.Scratch(), []imagebuild.Step{imagebuild.Copy{Sources: []string{"."}, Dest: "/"}},
			imagebuild.WithContextDir(args[1]), imagebuild.WithCacheDir(cache), epoch)
		if err != nil {
			return err
		}
		return imagebuild.WriteLayout(ctx, args[2], img, "base")
	case "run":
		fs := flag.NewFlagSet("run", flag.ContinueOnError)
		cache := fs.String("cache", "", "cache directory (default: a temporary one, removed at exit)")
		digest := fs.String("digest", "", "write the image digest to this file instead of stdout")
		if err := fs.Parse(args[1:]); err != nil {
			return err
		}
		if fs.NArg() < 2 {
			return fmt.Errorf("%s", usage)
		}
		if *cache == "" {
			dir, err := os.MkdirTemp("", "runbench-cache-")
			if err != nil {
				return err
			}
			defer os.RemoveAll(dir)
			*cache = dir
		}
		steps := make([]imagebuild.Step, 0, fs.NArg()-1)
		for _, c := range fs.Args()[1:] {
			steps = append(steps, imagebuild.Run{Args: []string{c}, Shell: true})
		}
		img, err := imagebuild.Build(ctx, imagebuild.FromLayout(fs.Arg(0)), steps, imagebuild.WithCacheDir(*cache),
			imagebuild.WithoutCache(), imagebuild.WithRunner(imagebuild.NewNamespaceRunner()), epoch)
		if err != nil {
			return err
		}
		var d v1.Hash
		if d, err = img.Digest(); err != nil {
			return err
		}
		if *digest == "" {
			fmt.Println(d)
			return nil
		}
		return os.WriteFile(*digest, []byte(d.String()+"\n"), 0o644)
	}
	return fmt.Errorf("%s", strings.TrimSpace(usage))
}
