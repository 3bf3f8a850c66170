package imagebuild

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"strconv"
	"strings"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// decompressor recognises a compression by its magic bytes and opens a reader.
// The close function ends the decompression; abort says the rest is not wanted.
func decompress(ctx context.Context, r *bufio.Reader) (io.Reader, func(abort bool) error, error) {
	magic, _ := r.Peek(6)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := pgzip.NewReaderN(r, readBlock, readBlocks)
		if err != nil {
			return nil, nil, err
		}
		return zr, func(bool) error { return zr.Close() }, nil
	case bytes.HasPrefix(magic, []byte("BZh")):
		return bzip2.NewReader(r), func(bool) error { return nil }, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, nil, err
		}
		return zr, func(bool) error { zr.Close(); return nil }, nil
	case bytes.HasPrefix(magic, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return xzReader(ctx, r)
	}
	return r, func(bool) error { return nil }, nil
}

// xzReader decompresses through the system's xz program: no xz decoder is among
// our dependencies, and xz-utils is on every distribution.
func xzReader(ctx context.Context, r io.Reader) (io.Reader, func(abort bool) error, error) {
	xz, err := exec.LookPath("xz")
	if err != nil {
		return nil, nil, errors.New("an xz-compressed archive needs the xz program (Debian: xz-utils)")
	}
	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, xz, "-dc")
	cmd.Stdin = r
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{b: &stderr, max: 4096}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, nil, err
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, nil, err
	}
	return out, func(abort bool) error {
		defer cancel()
		if abort {
			cancel()
			_ = cmd.Wait() // killed: its status says nothing
			return nil
		}
		// Read what is left (padding after the tar's end) so that xz can finish and
		// report a corrupt stream, then wait for it.
		_, cerr := io.Copy(io.Discard, out)
		if err := cmd.Wait(); err != nil {
			return fmt.Errorf("xz -dc: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		return cerr
	}, nil
}

type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(room, len(p))])
	}
	return len(p), nil
}

// copyBuffer is the size of the chunks in which an archive entry's content goes
// from the decompressor to the layer: large enough that per-call costs (context
// check, tar bookkeeping, two hashes' and pgzip's Write) vanish against the copying.
const copyBuffer = 256 << 10

// isTarHeader reports whether block starts with a tar header with a valid checksum.
func isTarHeader(block []byte) bool {
	if len(block) < 512 || block[0] == 0 {
		return false
	}
	field := strings.TrimRight(strings.TrimSpace(string(bytes.TrimRight(block[148:156], "\x00 "))), "\x00")
	want, err := strconv.ParseInt(field, 8, 64)
	if err != nil {
		return false
	}
	var unsigned, signed int64
	for i, c := range block[:512] {
		if i >= 148 && i < 156 {
			c = ' '
		}
		unsigned += int64(c)
		signed += int64(int8(c))
	}
	return want == unsigned || want == signed
}

// extract transcodes the tar archive at host (compressed or not) into entries under
// root, never writing it to disk. done is false, with nothing written, when the file
// is not a tar archive: ADD then copies it as a file.
func (b *builder) extract(ctx context.Context, w *entryWriter, name, host, root string) (done bool, err error) {
	f, err := os.Open(host)
	if err != nil {
		return false, err
	}
	defer f.Close()
	raw := bufio.NewReaderSize(f, 1<<20)
	dr, closeDec, err := decompress(ctx, raw)
	if err != nil {
		return false, fmt.Errorf("archive %s: %w", name, err)
	}
	// The first block is read to tell a tar archive from a file that only looks
	// compressed, then put back in front of the stream. No buffer goes on top of the
	// decompressor: it hands out whole blocks, and another layer would only copy them.
	block := make([]byte, 512)
	n, _ := io.ReadFull(dr, block)
	if !isTarHeader(block[:n]) {
		return false, closeDec(true)
	}
	err = b.transcode(ctx, w, name, tar.NewReader(io.MultiReader(bytes.NewReader(block), dr)), root)
	if cerr := closeDec(err != nil); err == nil && cerr != nil {
		err = fmt.Errorf("archive %s: %w", name, cerr)
	}
	return true, err
}

func (b *builder) transcode(ctx context.Context, w *entryWriter, name string, tr *tar.Reader, root string) error {
	if err := w.dirAll(root); err != nil {
		return err
	}
	symlinks := map[string]bool{} // archive paths that are symlinks
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("archive %s: %w", name, err)
		}
		fail := func(err error) error { return &ArchiveEntryError{Archive: name, Entry: h.Name, Err: err} }
		rel, err := archivePath(h.Name)
		if err != nil {
			return fail(err)
		}
		for d := parentDir(rel); d != ""; d = parentDir(d) {
			if symlinks[d] {
				return fail(fmt.Errorf("goes through the archive's symlink %s: %w", d, ErrUnsafePath))
			}
		}
		switch h.Typeflag {
		case tar.TypeXGlobalHeader:
			continue
		case tar.TypeReg, tar.TypeGNUSparse: // the reader already turned old TypeRegA into TypeReg
			h.Typeflag = tar.TypeReg
		case tar.TypeDir, tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		case tar.TypeSymlink:
			// A symlink's target is data, resolved in the container's root whatever it
			// says: real trees have links such as lib/mpich/include ->
			// ../../../include/mpich. What could escape is an entry going through it,
			// which the loop above refuses.
		case tar.TypeLink:
			target, err := archivePath(h.Linkname)
			if err != nil || target == "" {
				return fail(fmt.Errorf("hardlink to %s: %w", h.Linkname, ErrUnsafePath))
			}
			h.Linkname = path.Join(root, target)
		default:
			return fail(fmt.Errorf("%w: tar entry type %q", ErrUnsupportedInstruction, h.Typeflag))
		}
		if h.Typeflag == tar.TypeSymlink {
			symlinks[rel] = true
		} else {
			delete(symlinks, rel)
		}
		full := path.Join(root, rel)
		if full == "" || full == "." { // the archive's "./": the root itself is never an entry
			continue
		}
		if rel == "" && h.Typeflag != tar.TypeDir {
			return fail(fmt.Errorf("the archive's root is not a directory: %w", ErrUnsafePath))
		}
		h.Name = full
		if w.chown {
			h.Uid, h.Gid = w.own.uid, w.own.gid
		}
		if w.chmod != nil && h.Typeflag != tar.TypeSymlink {
			h.Mode = *w.chmod
		}
		if err := w.write(h); err != nil {
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.CopyBuffer(w.tw, ctxReader{ctx, tr}, w.copyBuf()); err != nil {
				return fmt.Errorf("archive %s: entry %s: %w", name, h.Name, err)
			}
		}
	}
}

// archivePath cleans an entry name into a path relative to the destination: a
// leading "/" or "./" is dropped, and a name that climbs out is ErrUnsafePath.
func archivePath(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("name has a NUL byte: %w", ErrUnsafePath)
	}
	p := path.Clean("./" + strings.TrimLeft(name, "/"))
	if p == ".." || strings.HasPrefix(p, "../") {
		return "", fmt.Errorf("name climbs out of the destination: %w", ErrUnsafePath)
	}
	if p == "." {
		return "", nil
	}
	return p, nil
}

// owner parses a --chown value. Names are looked up in the image's /etc/passwd and
// /etc/group; a missing group takes the user's number, as Docker does.
func (b *builder) owner(ctx context.Context, spec string) (owner, error) {
	if spec == "" {
		return owner{}, nil
	}
	user, group, hasGroup := strings.Cut(spec, ":")
	uid, err := b.lookupID(ctx, user, "etc/passwd")
	if err != nil {
		return owner{}, fmt.Errorf("--chown=%s: %w", spec, err)
	}
	gid := uid
	if hasGroup {
		if gid, err = b.lookupID(ctx, group, "etc/group"); err != nil {
			return owner{}, fmt.Errorf("--chown=%s: %w", spec, err)
		}
	}
	return owner{uid: uid, gid: gid}, nil
}

func (b *builder) lookupID(ctx context.Context, name, file string) (int, error) {
	if n, err := strconv.ParseUint(name, 10, 32); err == nil {
		return int(n), nil
	}
	if name == "" {
		return 0, fmt.Errorf("%w: empty user or group", ErrSyntax)
	}
	t, err := b.rootTree(ctx)
	if err != nil {
		return 0, err
	}
	rc, err := t.Open(ctx, file)
	if err != nil {
		return 0, fmt.Errorf("looking up %s in the image's /%s: %w", name, file, err)
	}
	defer rc.Close()
	sc := bufio.NewScanner(rc)
	for sc.Scan() {
		fields := strings.Split(sc.Text(), ":")
		if len(fields) >= 3 && fields[0] == name {
			n, err := strconv.ParseUint(fields[2], 10, 32)
			if err != nil {
				return 0, fmt.Errorf("/%s: %s has id %q", file, name, fields[2])
			}
			return int(n), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, fmt.Errorf("no %s in the image's /%s", name, file)
}
