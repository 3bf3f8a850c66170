package singularity

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"
	"sync/atomic"
	"time"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/squashfs"
)

// rootPlan is the root file system to pack: the merged layers with the
// /.singularity.d tree laid over them.
type rootPlan struct {
	tree *rootfs.Tree
	// meta holds every entry but regular file contents, in the order added.
	meta []squashfs.Entry
	// skip holds the paths of regular files of the tree that are replaced.
	skip map[string]bool
	// carrier renames the first path of a hardlinked inode whose first path
	// was replaced to the next path that still names it.
	carrier map[string]string
	files   int
}

// Directories, symlinks and files the builder adds, as Apptainer's
// makeBaseEnv does for an image pulled from a registry.
var (
	baseDirs = []string{
		".singularity.d", ".singularity.d/libs", ".singularity.d/actions", ".singularity.d/env",
		"dev", "proc", "root", "var", "var/tmp", "tmp", "etc", "sys", "home",
	}
	// parentDirs must be directories because generated files live in them.
	parentDirs = map[string]bool{".singularity.d": true, ".singularity.d/actions": true, ".singularity.d/env": true, "etc": true}
	baseLinks  = [][2]string{
		{"singularity", ".singularity.d/runscript"},
		{".run", ".singularity.d/actions/run"},
		{".exec", ".singularity.d/actions/exec"},
		{".test", ".singularity.d/actions/test"},
		{".shell", ".singularity.d/actions/shell"},
		{"environment", ".singularity.d/env/90-environment.sh"},
	}
)

// planRoot decides, path by path, what of the tree is kept and what the
// builder adds. As in Apptainer: missing directories are created and existing
// ones kept; the symlinks replace symlinks and are left out where something
// else exists; the generated files replace whatever was at their path. Unlike
// Apptainer, a non-directory where a generated file needs a directory is
// replaced by a directory, and logged.
func planRoot(tree *rootfs.Tree, gen []genFile, t time.Time, o *options) (*rootPlan, error) {
	p := &rootPlan{tree: tree, skip: map[string]bool{}, carrier: map[string]string{}}
	replaced := map[string]bool{} // tree paths whose entry (and subtree) is dropped
	var add []squashfs.Entry
	exists := func(q string) (rootfs.Entry, bool) {
		for d := path.Dir(q); d != "."; d = path.Dir(d) {
			if replaced[d] {
				return rootfs.Entry{}, false
			}
		}
		if replaced[q] {
			return rootfs.Entry{}, false
		}
		return tree.Lookup(q)
	}
	underSymlink := func(q string) bool {
		for d := path.Dir(q); d != "."; d = path.Dir(d) {
			if e, ok := exists(d); ok && e.Type == rootfs.TypeSymlink {
				return true
			}
		}
		return false
	}
	for _, d := range baseDirs {
		if underSymlink(d) {
			continue
		}
		e, ok := exists(d)
		switch {
		case ok && e.Type == rootfs.TypeDir:
			continue
		case ok && e.Type == rootfs.TypeSymlink && !parentDirs[d]:
			continue
		case ok:
			o.logger.Warn("replacing a non-directory where the image needs a directory", "path", "/"+d, "type", e.Type.String())
			replaced[d] = true
		}
		add = append(add, squashfs.Entry{Path: d, Type: squashfs.TypeDir, Mode: 0o755, ModTime: t})
	}
	for _, l := range baseLinks {
		e, ok := exists(l[0])
		if ok && e.Type != rootfs.TypeSymlink {
			continue
		}
		if ok {
			replaced[l[0]] = true
		}
		add = append(add, squashfs.Entry{Path: l[0], Type: squashfs.TypeSymlink, Mode: 0o777, Linkname: l[1], ModTime: t})
	}
	for _, g := range gen {
		if e, ok := exists(g.path); ok {
			if e.Type == rootfs.TypeDir {
				o.logger.Warn("replacing a directory by a generated file", "path", "/"+g.path)
			}
			replaced[g.path] = true
		}
		add = append(add, squashfs.Entry{Path: g.path, Type: squashfs.TypeRegular, Mode: fs.FileMode(g.mode),
			ModTime: t, Size: int64(len(g.content)), Content: strings.NewReader(g.content)})
	}

	isReplaced := func(q string) bool {
		for ; q != "."; q = path.Dir(q) {
			if replaced[q] {
				return true
			}
		}
		return false
	}
	for _, e := range tree.Entries() {
		if isReplaced(e.Path) {
			if e.Type == rootfs.TypeRegular {
				p.skip[e.Path] = true
			}
			continue
		}
		if e.Type == rootfs.TypeHardlink && isReplaced(e.Linkname) {
			if _, ok := p.carrier[e.Linkname]; !ok {
				// This path now carries the inode; its content comes with the old first path's.
				p.carrier[e.Linkname] = e.Path
				continue
			}
			e.Linkname = p.carrier[e.Linkname]
		}
		if e.Type == rootfs.TypeRegular {
			p.files++
			continue
		}
		se, err := o.squashEntry(e)
		if err != nil {
			return nil, err
		}
		p.meta = append(p.meta, se)
	}
	for range p.carrier {
		p.files++
	}
	p.meta = append(p.meta, add...)
	return p, nil
}

// squashEntry converts a merged entry's metadata.
func (o *options) squashEntry(e rootfs.Entry) (squashfs.Entry, error) {
	se := squashfs.Entry{
		Path: e.Path, Mode: fs.FileMode(e.Mode & 0o7777), UID: uint32(e.UID), GID: uint32(e.GID),
		ModTime: e.ModTime, Size: e.Size, Linkname: e.Linkname,
	}
	switch e.Type {
	case rootfs.TypeRegular:
		se.Type = squashfs.TypeRegular
	case rootfs.TypeDir:
		se.Type = squashfs.TypeDir
		if e.Path == "." {
			// Apptainer makes the root writable by its owner.
			se.Mode |= 0o200
		}
	case rootfs.TypeSymlink:
		se.Type = squashfs.TypeSymlink
	case rootfs.TypeHardlink:
		se.Type = squashfs.TypeHardlink
	case rootfs.TypeCharDevice, rootfs.TypeBlockDevice:
		se.Type = squashfs.TypeCharDevice
		if e.Type == rootfs.TypeBlockDevice {
			se.Type = squashfs.TypeBlockDevice
		}
		if e.Devmajor < 0 || e.Devmajor >= 1<<12 || e.Devminor < 0 || e.Devminor >= 1<<20 {
			return se, &EntryError{Path: e.Path, Err: ErrUnrepresentable,
				Reason: fmt.Sprintf("device %d:%d outside squashfs' 12-bit major and 20-bit minor", e.Devmajor, e.Devminor)}
		}
		se.Devmajor, se.Devminor = uint32(e.Devmajor), uint32(e.Devminor)
	case rootfs.TypeFIFO:
		se.Type = squashfs.TypeFIFO
	default:
		return se, &EntryError{Path: e.Path, Err: ErrUnrepresentable, Reason: "entry type " + e.Type.String()}
	}
	for k, v := range e.Xattrs {
		prefix, rest, _ := strings.Cut(k, ".")
		if (prefix == "user" || prefix == "trusted" || prefix == "security") && rest != "" {
			if se.Xattrs == nil {
				se.Xattrs = map[string]string{}
			}
			se.Xattrs[k] = v
			continue
		}
		o.logger.Warn("dropping an xattr squashfs cannot store (only user., trusted. and security. exist)", "path", "/"+e.Path, "xattr", k)
	}
	for k := range e.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.acl.") {
			o.logger.Warn("dropping a POSIX ACL squashfs cannot store", "path", "/"+e.Path, "record", k)
		}
	}
	return se, nil
}

// squashfsCompressor returns the writer's compressor for o.comp.
func (o *options) squashfsCompressor() squashfs.Compressor {
	if o.comp == Zstd {
		return squashfs.Zstd
	}
	return squashfs.Gzip
}

// partWriter writes the squashfs at off in the output file. Its Truncate lets
// the squashfs writer cut the file at the image's padded end.
type partWriter struct {
	f       *os.File
	off     int64
	written *atomic.Int64
}

func (w partWriter) WriteAt(p []byte, off int64) (int, error) {
	n, err := w.f.WriteAt(p, w.off+off)
	w.written.Add(int64(n))
	return n, err
}

func (w partWriter) Truncate(size int64) error { return w.f.Truncate(w.off + size) }

// packRoot writes the squashfs of plan into f at off and returns its size.
func packRoot(ctx context.Context, f *os.File, off int64, plan *rootPlan, stats *buildStats, o *options) (int64, error) {
	stats.total = plan.files
	if o.useMksquashf {
		return packWithSqfstar(ctx, f, off, plan, stats, o)
	}
	sqOpts := []squashfs.Option{
		squashfs.WithCompression(o.squashfsCompressor(), o.level),
		squashfs.WithWorkers(o.workers),
		squashfs.WithLogger(o.logger),
	}
	if o.epoch != nil {
		sqOpts = append(sqOpts, squashfs.WithModTime(*o.epoch))
	}
	w, err := squashfs.NewWriter(partWriter{f: f, off: off, written: &stats.written}, sqOpts...)
	if err != nil {
		return 0, err
	}
	err = addAll(ctx, w, plan, stats, o)
	if cerr := w.Close(ctx); err == nil && cerr != nil {
		err = fmt.Errorf("finishing squashfs: %w", cerr)
	}
	if err != nil {
		return 0, err
	}
	stats.report(o)
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return fi.Size() - off, nil
}

func addAll(ctx context.Context, w *squashfs.Writer, plan *rootPlan, stats *buildStats, o *options) error {
	for _, e := range plan.meta {
		if e.Content != nil {
			// Generated files: a fresh reader each time the plan is used.
			c := e.Content.(*strings.Reader)
			if _, err := c.Seek(0, io.SeekStart); err != nil {
				return err
			}
		}
		if err := w.Add(ctx, e); err != nil {
			return err
		}
	}
	return plan.tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
		if plan.skip[e.Path] {
			if c, ok := plan.carrier[e.Path]; ok {
				e.Path = c
			} else {
				return nil
			}
		}
		se, err := o.squashEntry(e)
		if err != nil {
			return err
		}
		se.Content = r
		if err := w.Add(ctx, se); err != nil {
			return err
		}
		stats.files.Add(1)
		stats.report(o)
		return nil
	})
}
