package singularity

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/squashfs"
)

// sqfstarDefaultLevel is the level sqfstar compresses at without
// -Xcompression-level.
var sqfstarDefaultLevel = map[Compressor]int{Gzip: 9, Zstd: 15}

// packWithSqfstar writes the squashfs of plan into f at off with sqfstar,
// which reads a tar stream of the root on its standard input and keeps the
// owners, modes, devices and xattrs the tar headers carry.
func packWithSqfstar(ctx context.Context, f *os.File, off int64, plan *rootPlan, stats *buildStats, o *options) (int64, error) {
	root := squashfs.Entry{Mode: 0o755}
	for _, e := range plan.meta {
		if e.Path == "." {
			root = e
		}
	}
	args := []string{"-no-progress", "-quiet", "-force", "-offset", strconv.FormatInt(off, 10),
		"-root-mode", strconv.FormatUint(uint64(unixMode(root.Mode)), 8),
		"-root-uid", strconv.FormatUint(uint64(root.UID), 10), "-root-gid", strconv.FormatUint(uint64(root.GID), 10)}
	if o.levelSet {
		if o.level == 0 {
			args = append(args, "-noI", "-noD", "-noF", "-noX")
		} else {
			args = append(args, "-comp", o.comp.String())
			// sqfstar 4.5.1 rejects every -X option; at the compressor's
			// default level none is needed.
			if o.level != sqfstarDefaultLevel[o.comp] {
				args = append(args, "-Xcompression-level", strconv.Itoa(o.level))
			}
		}
	}
	if o.epoch != nil {
		t := strconv.FormatInt(o.epoch.Unix(), 10)
		args = append(args, "-mkfs-time", t, "-root-time", t)
	} else if !root.ModTime.IsZero() {
		args = append(args, "-root-time", strconv.FormatInt(root.ModTime.Unix(), 10))
	}
	args = append(args, "-processors", strconv.Itoa(o.workers), f.Name())

	cmd := exec.CommandContext(ctx, o.mksquashfs, args...)
	var stderr strings.Builder
	cmd.Stdout, cmd.Stderr = &stderr, &stderr
	// sqfstar reads the pipe itself, so that once it exits, having read all
	// or not, writing fails (EPIPE) instead of waiting for a reader.
	pr, pw, err := os.Pipe()
	if err != nil {
		return 0, err
	}
	cmd.Stdin = pr
	err = cmd.Start()
	pr.Close()
	if err != nil {
		pw.Close()
		return 0, fmt.Errorf("starting sqfstar: %w", err)
	}
	werr := writeTar(ctx, pw, plan, stats, o)
	if cerr := pw.Close(); werr == nil {
		werr = cerr
	}
	err = cmd.Wait()
	if errors.Is(werr, syscall.EPIPE) {
		// sqfstar stopped reading: it failed, or was killed as ctx ended.
		if ctx.Err() != nil {
			return 0, ctx.Err()
		}
		if err != nil {
			werr = nil
		}
	}
	if werr != nil {
		return 0, werr
	}
	if err != nil {
		return 0, fmt.Errorf("sqfstar: %w: %s", err, strings.TrimSpace(stderr.String()))
	}
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	stats.written.Store(fi.Size())
	stats.report(o)
	return fi.Size() - off, nil
}

// unixMode returns the tar mode bits of m, which may carry setuid, setgid
// and sticky either as fs.FileMode flags or as Unix bits.
func unixMode(m fs.FileMode) uint32 {
	u := uint32(m) & 0o7777
	if m&fs.ModeSetuid != 0 {
		u |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		u |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		u |= 0o1000
	}
	return u
}

// tarHeader converts an entry for the tar stream.
func tarHeader(e squashfs.Entry) (*tar.Header, error) {
	h := &tar.Header{Name: e.Path, Mode: int64(unixMode(e.Mode)), Uid: int(e.UID), Gid: int(e.GID),
		ModTime: e.ModTime, Linkname: e.Linkname, Format: tar.FormatPAX}
	switch e.Type {
	case squashfs.TypeRegular:
		h.Typeflag, h.Size = tar.TypeReg, e.Size
	case squashfs.TypeDir:
		h.Typeflag, h.Name = tar.TypeDir, e.Path+"/"
	case squashfs.TypeSymlink:
		h.Typeflag = tar.TypeSymlink
	case squashfs.TypeHardlink:
		h.Typeflag = tar.TypeLink
	case squashfs.TypeCharDevice, squashfs.TypeBlockDevice:
		h.Typeflag = tar.TypeChar
		if e.Type == squashfs.TypeBlockDevice {
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(e.Devmajor), int64(e.Devminor)
	case squashfs.TypeFIFO:
		h.Typeflag = tar.TypeFifo
	default:
		return nil, fmt.Errorf("/%s: no tar type for entry type %d", e.Path, e.Type)
	}
	for k, v := range e.Xattrs {
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords["SCHILY.xattr."+k] = v
	}
	return h, nil
}

// writeTar streams the root as a tar: directories and other metadata first,
// then file contents in layer order, then hardlinks, which must follow
// their targets.
func writeTar(ctx context.Context, w io.Writer, plan *rootPlan, stats *buildStats, o *options) error {
	tw := tar.NewWriter(w)
	put := func(e squashfs.Entry) error {
		h, err := tarHeader(e)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		if e.Content != nil {
			if _, err := io.Copy(tw, e.Content); err != nil {
				return err
			}
		}
		return nil
	}
	var links []squashfs.Entry
	for _, e := range plan.meta {
		switch {
		case e.Path == ".":
		case e.Type == squashfs.TypeHardlink:
			links = append(links, e)
		default:
			if c, ok := e.Content.(*strings.Reader); ok {
				if _, err := c.Seek(0, io.SeekStart); err != nil {
					return err
				}
			}
			if err := put(e); err != nil {
				return err
			}
		}
	}
	err := plan.tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
		if plan.skip[e.Path] {
			c, ok := plan.carrier[e.Path]
			if !ok {
				return nil
			}
			e.Path = c
		}
		se, err := o.squashEntry(e)
		if err != nil {
			return err
		}
		se.Content = r
		if err := put(se); err != nil {
			return err
		}
		stats.files.Add(1)
		stats.report(o)
		return nil
	})
	if err != nil {
		return err
	}
	for _, e := range links {
		if err := put(e); err != nil {
			return err
		}
	}
	return tw.Close()
}
