package imagebuild

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hpcship/hpcship/internal/rootfs"
)

type copySpec struct {
	sources      []string
	dest         string
	chown, chmod string
	extract      bool
}

// hostEntry is a file of the build context, with its metadata as first read.
type hostEntry struct {
	host string      // path on the host
	rel  string      // slash path below the source ("" for the source itself)
	info fs.FileInfo // lstat, except for a source reached through a symlink
}

// source is one resolved ADD or COPY source: a file, or a directory whose contents
// walk lists. Nothing per file is kept in memory, so a tree of any size costs the
// same: its files are listed twice, for the cache fingerprint and for the layer.
type source struct {
	name string    // relative to the context, slash-separated
	root hostEntry // the source itself
}

func (s source) isDir() bool { return s.root.info.IsDir() }

// copyStep runs ADD or COPY.
func (b *builder) copyStep(ctx context.Context, s Step, spec copySpec) (bool, error) {
	if len(spec.sources) == 0 || spec.dest == "" {
		return false, fmt.Errorf("%w: needs a source and a destination", ErrSyntax)
	}
	var chmod *int64
	if spec.chmod != "" {
		m, err := strconv.ParseUint(spec.chmod, 8, 32)
		if err != nil || m > 0o7777 {
			return false, fmt.Errorf("%w: --chmod=%s: want an octal mode up to 7777", ErrSyntax, spec.chmod)
		}
		mi := int64(m)
		chmod = &mi
	}
	if b.ignore == nil {
		b.ignore = &ignoreMatcher{}
		if b.o.dockerignore {
			m, err := readIgnore(b.o.contextDir)
			if err != nil {
				return false, err
			}
			b.ignore = m
		}
	}
	srcs, err := b.resolveSources(ctx, spec.sources)
	if err != nil {
		return false, err
	}
	dest := b.inImage(spec.dest)
	destDir := strings.HasSuffix(dest, "/") || len(srcs) > 1
	canon := s.String()
	fp := sha256.New()
	for _, src := range srcs {
		fmt.Fprintf(fp, "source %q %s\n", src.name, fingerprint(src.root.info))
		if err := b.walk(ctx, src, func(e hostEntry) error {
			_, err := fmt.Fprintf(fp, "%q %s\n", e.rel, fingerprint(e.info))
			return err
		}); err != nil {
			return false, err
		}
	}
	return b.layerStep(ctx, canon+" # "+dest, s.String(), []string{dest, spec.chown, hex.EncodeToString(fp.Sum(nil))}, func(tw *tar.Writer) error {
		own, err := b.owner(ctx, spec.chown)
		if err != nil {
			return err
		}
		w := &entryWriter{ctx: ctx, tw: tw, epoch: *b.o.epoch, written: map[string]bool{}, own: own, chown: spec.chown != "",
			chmod: chmod, links: map[[2]uint64]string{}}
		root := strings.Trim(dest, "/")
		for _, src := range srcs {
			if err := b.writeSource(ctx, w, src, root, destDir, spec.extract); err != nil {
				return err
			}
		}
		return nil
	})
}

// fingerprint is what identifies a file's content without reading it: a change of
// content changes its size, mtime or ctime (which user space cannot set back).
func fingerprint(fi fs.FileInfo) string {
	s := fmt.Sprintf("%o %d %d", fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		s += fmt.Sprintf(" %d %d %d.%d", st.Dev, st.Ino, st.Ctim.Sec, st.Ctim.Nsec)
	}
	return s
}

// resolveSources expands globs and walks directories of the build context.
func (b *builder) resolveSources(ctx context.Context, names []string) ([]source, error) {
	ctxDir, err := filepath.Abs(b.o.contextDir)
	if err != nil {
		return nil, err
	}
	realCtx, err := filepath.EvalSymlinks(ctxDir)
	if err != nil {
		return nil, fmt.Errorf("build context: %w", err)
	}
	var out []source
	for _, name := range names {
		if strings.Contains(name, "://") || strings.HasPrefix(name, "git@") {
			return nil, fmt.Errorf("%w: remote source %s (download it into the build context)", ErrUnsupportedInstruction, name)
		}
		rel := path.Clean(strings.TrimPrefix(filepath.ToSlash(name), "/"))
		if rel == ".." || strings.HasPrefix(rel, "../") {
			return nil, fmt.Errorf("source %s is outside the build context: %w", name, ErrUnsafePath)
		}
		matches := []string{rel}
		if strings.ContainsAny(rel, "*?[") {
			g, err := filepath.Glob(filepath.Join(ctxDir, filepath.FromSlash(rel)))
			if err != nil {
				return nil, fmt.Errorf("%w: source pattern %s: %v", ErrSyntax, name, err)
			}
			matches = matches[:0]
			for _, m := range g {
				r, _ := filepath.Rel(ctxDir, m)
				if r = filepath.ToSlash(r); !b.ignore.ignored(r) {
					matches = append(matches, r)
				}
			}
			if len(matches) == 0 {
				return nil, fmt.Errorf("no source files match %s: %w", name, fs.ErrNotExist)
			}
		}
		for _, m := range matches {
			src, err := b.resolveSource(ctx, ctxDir, realCtx, m)
			if err != nil {
				return nil, err
			}
			out = append(out, src)
		}
	}
	return out, nil
}

func (b *builder) resolveSource(ctx context.Context, ctxDir, realCtx, rel string) (source, error) {
	host := filepath.Join(ctxDir, filepath.FromSlash(rel))
	if rel != "." && b.ignore.ignored(rel) {
		return source{}, fmt.Errorf("source %s is excluded by .dockerignore: %w", rel, fs.ErrNotExist)
	}
	info, err := os.Lstat(host)
	if err != nil {
		return source{}, fmt.Errorf("source %s: %w", rel, err)
	}
	if info.Mode()&fs.ModeSymlink != 0 {
		real, err := filepath.EvalSymlinks(host)
		if err != nil {
			return source{}, fmt.Errorf("source %s: %w", rel, err)
		}
		if r, err := filepath.Rel(realCtx, real); err != nil || r == ".." || strings.HasPrefix(r, "../") {
			return source{}, fmt.Errorf("source %s links outside the build context: %w", rel, ErrUnsafePath)
		}
		host = real
		if info, err = os.Stat(real); err != nil {
			return source{}, fmt.Errorf("source %s: %w", rel, err)
		}
	}
	return source{name: rel, root: hostEntry{host: host, info: info}}, nil
}

// walk calls fn for every file below a directory source, in sorted order, with
// .dockerignore applied; it does nothing for a file source.
func (b *builder) walk(ctx context.Context, src source, fn func(hostEntry) error) error {
	if !src.isDir() {
		return nil
	}
	host := src.root.host
	err := filepath.WalkDir(host, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == host {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		below, _ := filepath.Rel(host, p)
		below = filepath.ToSlash(below)
		if b.ignore.ignored(path.Join(src.name, below)) {
			if d.IsDir() && !b.ignore.negated {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return fn(hostEntry{host: p, rel: below, info: fi})
	})
	if err != nil {
		return fmt.Errorf("reading source %s: %w", src.name, err)
	}
	return nil
}

// writeSource writes one source under root (the destination, relative to "/").
func (b *builder) writeSource(ctx context.Context, w *entryWriter, src source, root string, destDir, extract bool) error {
	if src.isDir() {
		if err := w.dirAll(root); err != nil {
			return err
		}
		return b.walk(ctx, src, func(e hostEntry) error {
			return w.hostFile(path.Join(root, e.rel), e)
		})
	}
	e := src.root
	if extract && e.info.Mode().IsRegular() {
		done, err := b.extract(ctx, w, src.name, e.host, root)
		if done || err != nil {
			return err
		}
	}
	target := root
	switch {
	case destDir || root == "":
		target = path.Join(root, path.Base(src.name))
	default:
		t, err := b.rootTree(ctx)
		if err != nil {
			return err
		}
		if ent, ok := t.Lookup(root); ok && ent.Type == rootfs.TypeDir {
			target = path.Join(root, path.Base(src.name))
		}
	}
	if err := w.parents(target); err != nil {
		return err
	}
	return w.hostFile(target, e)
}

// owner is the owner ADD and COPY give to what they write.
type owner struct {
	uid, gid int
}

// entryWriter writes reproducible tar entries: PAX format, modification times
// clamped to the epoch and truncated to seconds, no access or change times, owners
// by number only, no xattrs.
type entryWriter struct {
	ctx     context.Context
	tw      *tar.Writer
	epoch   time.Time
	written map[string]bool // directories already written
	own     owner
	chown   bool // --chown given: it applies to archive entries too, which otherwise keep their owners
	chmod   *int64
	links   map[[2]uint64]string // (dev, inode) of host files with several links → first name
	buf     []byte               // copy buffer for file contents, made on first use
}

// copyBuf returns the buffer in which file contents go to the layer.
func (w *entryWriter) copyBuf() []byte {
	if w.buf == nil {
		w.buf = make([]byte, copyBuffer)
	}
	return w.buf
}

func (w *entryWriter) write(h *tar.Header) error {
	h.Format = tar.FormatPAX
	if h.ModTime.After(w.epoch) {
		h.ModTime = w.epoch
	}
	h.ModTime = h.ModTime.Truncate(time.Second)
	if h.ModTime.Before(time.Unix(0, 0)) {
		h.ModTime = time.Unix(0, 0)
	}
	h.AccessTime, h.ChangeTime = time.Time{}, time.Time{}
	h.Uname, h.Gname = "", ""
	//lint:ignore SA1019 the reader fills Xattrs as well as PAXRecords, and the writer writes both
	h.PAXRecords, h.Xattrs = nil, nil
	if h.Typeflag == tar.TypeDir {
		h.Name = strings.TrimSuffix(h.Name, "/") + "/"
		w.written[strings.TrimSuffix(h.Name, "/")] = true
	}
	return w.tw.WriteHeader(h)
}

// dirAll writes dir (relative to "/"; "" is the root, never written) and its
// missing ancestors, mode 0755 (or --chmod) and owned by the step's owner.
func (w *entryWriter) dirAll(dir string) error {
	if dir == "" || dir == "." || w.written[dir] {
		return nil
	}
	if err := w.dirAll(parentDir(dir)); err != nil {
		return err
	}
	mode := int64(0o755)
	if w.chmod != nil {
		mode = *w.chmod
	}
	return w.write(&tar.Header{Typeflag: tar.TypeDir, Name: dir, Mode: mode, Uid: w.own.uid, Gid: w.own.gid, ModTime: w.epoch})
}

// parents writes the missing ancestors of name.
func (w *entryWriter) parents(name string) error { return w.dirAll(parentDir(name)) }

func parentDir(p string) string {
	d := path.Dir(p)
	if d == "." {
		return ""
	}
	return d
}

// hostFile writes a file of the build context as name.
func (w *entryWriter) hostFile(name string, e hostEntry) error {
	var link string
	if e.info.Mode()&fs.ModeSymlink != 0 {
		var err error
		if link, err = os.Readlink(e.host); err != nil {
			return err
		}
	}
	if e.info.Mode()&fs.ModeSocket != 0 {
		return nil // sockets have no tar representation; docker skips them too
	}
	h, err := tar.FileInfoHeader(e.info, link)
	if err != nil {
		return fmt.Errorf("%s: %w", e.host, err)
	}
	h.Name = name
	h.Uid, h.Gid = w.own.uid, w.own.gid
	if w.chmod != nil && h.Typeflag != tar.TypeSymlink {
		h.Mode = *w.chmod
	}
	if h.Typeflag == tar.TypeReg {
		if st, ok := e.info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			id := [2]uint64{uint64(st.Dev), st.Ino}
			if first, ok := w.links[id]; ok {
				h.Typeflag, h.Linkname, h.Size = tar.TypeLink, first, 0
				return w.write(h)
			}
			w.links[id] = name
		}
	}
	if err := w.write(h); err != nil {
		return err
	}
	if h.Typeflag != tar.TypeReg {
		return nil
	}
	f, err := os.Open(e.host)
	if err != nil {
		return err
	}
	defer f.Close()
	// Straight from the file into the copy buffer: a buffered reader on top would
	// only add a copy. A file that grew is cut at the size in its header.
	n, err := io.CopyBuffer(w.tw, io.LimitReader(ctxReader{w.ctx, f}, h.Size), w.copyBuf())
	if err == nil && n < h.Size {
		return fmt.Errorf("%s shrank from %d to %d bytes while being read", e.host, h.Size, n)
	}
	return err
}
