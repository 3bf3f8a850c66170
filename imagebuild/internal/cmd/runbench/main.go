// Command runbench times RUN steps of imagebuild's NamespaceRunner, for scripts/bench/imagebuild-run.sh, which
// compares one trivial RUN on a large base with `unshare -r chroot` on an unpacked copy of the same tree.
//
//	runbench tree DIR N BUSYBOX    writes a root of N small files in directories of 100, plus BUSYBOX as /bin/busybox,
//	                               /bin/sh and /bin/true, /etc/passwd and /tmp
//	runbench base TREE LAYOUT      writes an image of TREE (one layer, FROM scratch + COPY TREE /) to the OCI layout LAYOUT
//	runbench run [-cache DIR] [-digest FILE] LAYOUT COMMAND...
//	                               builds FROM LAYOUT + one shell-form RUN per COMMAND without the build cache
//	                               and writes the image's digest to FILE (or stdout)
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/imagebuild"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(cli(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

// cli runs the command and returns the process's exit status: 0, or 1 when it failed.
func cli(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if err := run(ctx, stdout, args); err != nil {
		fmt.Fprintln(stderr, "runbench:", err)
		return 1
	}
	return 0
}

const usage = "usage: runbench tree DIR N BUSYBOX | runbench base TREE LAYOUT | runbench run [-cache DIR] [-digest FILE] LAYOUT COMMAND..."

func run(ctx context.Context, stdout io.Writer, args []string) error {
	if len(args) == 0 {
		return fmt.Errorf("%s", usage)
	}
	epoch := imagebuild.WithSourceDateEpoch(time.Unix(1_700_000_000, 0))
	switch args[0] {
	case "tree":
		if len(args) != 4 {
			return fmt.Errorf("%s", usage)
		}
		n, err := strconv.Atoi(args[2])
		if err != nil {
			return err
		}
		return writeTree(args[1], n, args[3])
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
			_, err = fmt.Fprintln(stdout, d)
			return err
		}
		return os.WriteFile(*digest, []byte(d.String()+"\n"), 0o644)
	}
	return fmt.Errorf("%s", strings.TrimSpace(usage))
}

// writeTree writes the synthetic root: n files of 12 to 100 bytes.
func writeTree(dir string, n int, busybox string) error {
	bb, err := os.ReadFile(busybox)
	if err != nil {
		return err
	}
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "bin", "busybox"), bb, 0o755); err != nil {
		return err
	}
	for _, l := range []string{"sh", "true"} {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", l)); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd"), []byte("root:x:0:0:root:/root:/bin/sh\n"), 0o644); err != nil {
		return err
	}
	for i := range n {
		d := filepath.Join(dir, "usr", "share", fmt.Sprintf("d%03d", i/100))
		if i%100 == 0 {
			if err := os.MkdirAll(d, 0o755); err != nil {
				return err
			}
		}
		body := strings.Repeat(fmt.Sprintf("file %d\n", i), 1+i%7)
		if err := os.WriteFile(filepath.Join(d, fmt.Sprintf("f%03d", i%100)), []byte(body), 0o644); err != nil {
			return err
		}
	}
	return nil
}
