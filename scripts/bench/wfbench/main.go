// Command wfbench supports scripts/bench/workflow.sh: the build and SIF stages of the whole workflow with
// hpcship, each as a process of its own, so that the script times every stage as it times the peer tools.
// (The push stage is acr/internal/benchpush.)
//
//	wfbench build [-level N] CONTEXT DOCKERFILE LAYOUT   build the Dockerfile with imagebuild into the OCI
//	                                                     layout LAYOUT, which is also the build cache: the
//	                                                     layers are written once, where the layout keeps them
//	wfbench sif [-cache DIR] HOST/REPO:TAG OUT.sif        pull the image from the registry (plain HTTP on
//	                                                     127.0.0.1) into a SIF with singularity.Pull
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"syscall"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/singularity"
)

const usage = "usage: wfbench build [-level N] CONTEXT DOCKERFILE LAYOUT | sif [-cache DIR] HOST/REPO:TAG OUT.sif"

func main() {
	log.SetFlags(0)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		log.Fatalf("wfbench: %v", err)
	}
}

func run(ctx context.Context, args []string, stdout io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	fl := flag.NewFlagSet(args[0], flag.ContinueOnError)
	level := fl.Int("level", imagebuild.DefaultCompressionLevel, "gzip level of the image's layers")
	cache := fl.String("cache", "", "singularity's blob cache (default: a temporary directory, removed after)")
	if err := fl.Parse(args[1:]); err != nil {
		return err
	}
	switch {
	case args[0] == "build" && fl.NArg() == 3:
		out := fl.Arg(2)
		img, err := imagebuild.BuildDockerfile(ctx, fl.Arg(1), imagebuild.WithContextDir(fl.Arg(0)),
			imagebuild.WithCompressionLevel(*level), imagebuild.WithCacheDir(out))
		if err != nil {
			return err
		}
		if err := imagebuild.WriteLayout(ctx, out, img, "latest"); err != nil {
			return err
		}
		d, err := img.Digest()
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, d)
		return err
	case args[0] == "sif" && fl.NArg() == 2:
		ref, err := name.ParseReference(fl.Arg(0))
		if err != nil {
			return err
		}
		dir := *cache
		if dir == "" {
			if dir, err = os.MkdirTemp("", "wfbench-cache-"); err != nil {
				return err
			}
			defer os.RemoveAll(dir)
		}
		path, err := singularity.Pull(ctx, ref, fl.Arg(1), singularity.WithCacheDir(dir))
		if err != nil {
			return err
		}
		_, err = fmt.Fprintln(stdout, path)
		return err
	}
	return fmt.Errorf("bad arguments: %s", usage)
}
