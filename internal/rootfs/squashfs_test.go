package rootfs_test

// The SIF builder packs a flattened image by adding the tree's metadata to the
// squashfs writer, then each file as WalkContents hands it over. These tests
// do that with multi-layer stacks and read the images back with unsquashfs and
// sqfs2tar: the two packages compose without either knowing the other.

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

// packTree writes tree to a squashfs image at p: every entry but regular files
// first, then the regular files in the order their contents stream.
func packTree(ctx context.Context, p string, tree *rootfs.Tree) error {
	types := map[rootfs.Type]squashfs.Type{
		rootfs.TypeRegular: squashfs.TypeRegular, rootfs.TypeDir: squashfs.TypeDir, rootfs.TypeSymlink: squashfs.TypeSymlink,
		rootfs.TypeHardlink: squashfs.TypeHardlink, rootfs.TypeCharDevice: squashfs.TypeCharDevice,
		rootfs.TypeBlockDevice: squashfs.TypeBlockDevice, rootfs.TypeFIFO: squashfs.TypeFIFO,
	}
	add := func(w *squashfs.Writer, e rootfs.Entry, r io.Reader) error {
		// Every narrowing is checked: a wrapped device number would name
		// another device.
		var ids [4]uint32
		for i, v := range []int64{int64(e.UID), int64(e.GID), e.Devmajor, e.Devminor} {
			if v < 0 || v > math.MaxUint32 {
				return fmt.Errorf("%s: %d does not fit 32 bits", e.Path, v)
			}
			ids[i] = uint32(v)
		}
		return w.Add(ctx, squashfs.Entry{
			Path: e.Path, Type: types[e.Type], Mode: fs.FileMode(e.Mode), UID: ids[0], GID: ids[1],
			ModTime: e.ModTime, Size: e.Size, Linkname: e.Linkname, Devmajor: ids[2], Devminor: ids[3],
			Xattrs: e.Xattrs, Content: r,
		})
	}
	return squashfs.WriteFile(ctx, p, func(w *squashfs.Writer) error {
		for _, e := range tree.Entries() {
			if e.Type != rootfs.TypeRegular {
				if err := add(w, e, nil); err != nil {
					return err
				}
			}
		}
		return tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
			return add(w, e, r)
		})
	}, squashfs.WithBlockSize(64<<10))
}

// lsMode renders an entry's type and permissions as unsquashfs -lln does.
func lsMode(e rootfs.Entry) string {
	typ := map[rootfs.Type]byte{rootfs.TypeRegular: '-', rootfs.TypeDir: 'd', rootfs.TypeSymlink: 'l',
		rootfs.TypeCharDevice: 'c', rootfs.TypeBlockDevice: 'b', rootfs.TypeFIFO: 'p'}[e.Type]
	b := []byte{typ}
	for i, c := range "rwxrwxrwx" {
		if e.Mode&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	for _, s := range []struct {
		bit uint32
		pos int
		c   byte
	}{{0o4000, 3, 's'}, {0o2000, 6, 's'}, {0o1000, 9, 't'}} {
		if e.Mode&s.bit != 0 {
			if b[s.pos] == 'x' {
				b[s.pos] = s.c
			} else {
				b[s.pos] = s.c - 'a' + 'A'
			}
		}
	}
	return string(b)
}

var llnLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+)\s+(\S+|\d+,\s*\d+) \d{4}-\d\d-\d\d \d\d:\d\d squashfs-root(.*?)(?: -> (.*))?$`)

// checkListing compares unsquashfs -lln's listing of img with the tree: the same
// paths, and for each its type, permissions, owner, size and link target.
func checkListing(t *testing.T, unsquashfs, img string, tree *rootfs.Tree) {
	t.Helper()
	out, err := exec.CommandContext(t.Context(), unsquashfs, "-lln", img).Output()
	require.NoError(t, err, "unsquashfs -lln")
	var got, want []string
	for line := range strings.Lines(string(out)) {
		f := llnLine.FindStringSubmatch(strings.TrimRight(line, "\n"))
		require.NotNil(t, f, "unexpected line %q", line)
		p := strings.TrimPrefix(f[5], "/")
		if p == "" {
			p = "."
		}
		size := f[4]
		if f[1][0] == 'd' || f[1][0] == 'c' || f[1][0] == 'b' {
			size = "-" // directory sizes are squashfs's own; devices are checked by sqfs2tar
		}
		got = append(got, fmt.Sprintf("%s %s %s/%s %s %s", p, f[1], f[2], f[3], size, f[6]))
	}
	for _, e := range tree.Entries() {
		inode := e
		if e.Type == rootfs.TypeHardlink {
			inode, _ = tree.Lookup(e.Linkname)
		}
		size := fmt.Sprint(inode.Size)
		switch inode.Type {
		case rootfs.TypeDir, rootfs.TypeCharDevice, rootfs.TypeBlockDevice:
			size = "-"
		case rootfs.TypeSymlink:
			size = fmt.Sprint(len(inode.Linkname))
		case rootfs.TypeFIFO:
			size = "0"
		}
		want = append(want, fmt.Sprintf("%s %s %d/%d %s %s", e.Path, lsMode(inode), inode.UID, inode.GID, size, map[bool]string{true: inode.Linkname}[inode.Type == rootfs.TypeSymlink]))
	}
	assert.ElementsMatch(t, want, got)
}

func TestFlattenIntoSquashfs(t *testing.T) {
	bins := testenv.Require(t, "unsquashfs", "sqfs2tar")
	const capability = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"
	big := make([]byte, 300<<10)
	for i := range big {
		big[i] = byte(i*i>>7 + i>>13)
	}
	ping := withMode(file("usr/bin/ping", "ping"), 0o4755)
	ping.hdr.PAXRecords = map[string]string{"SCHILY.xattr.security.capability": capability}
	noted := dir("var")
	noted.hdr.PAXRecords = map[string]string{"SCHILY.xattr.user.note": "kept"}
	shadow := withMode(file("etc/shadow", "root:*:"), 0o640)
	shadow.hdr.Gid = 42
	motd := file("etc/motd", "hello\n")
	motd.hdr.Uid, motd.hdr.Gid = 1000, 1000
	ls := layers(t,
		[]ent{
			dir("etc"), file("etc/passwd", "root:x:0:0::/root:/bin/sh\n"), shadow, dir("usr"), dir("usr/bin"), ping,
			file("usr/bin/tool", string(big)), symlink("bin", "usr/bin"), file("usr/share/doc/old", "old"),
			noted, dir("var/cache"), file("var/cache/a", "a"), file("var/cache/b", "b"),
			{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3, ModTime: epoch}},
			{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600, ModTime: epoch}},
		},
		[]ent{
			whiteout("etc/shadow"), hardlink("usr/bin/ping2", "usr/bin/ping"),
			// The link keeps the lower layer's 300 KiB; the path gets new content.
			hardlink("usr/bin/tool.orig", "usr/bin/tool"), file("usr/bin/tool", "new tool"),
			opaque("var/cache"), file("var/cache/c", "c"),
			{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Gid: 6, Devmajor: 8, ModTime: epoch}},
		},
		[]ent{whiteout("usr/share"), motd},
	)
	tree, err := rootfs.Flatten(t.Context(), ls)
	require.NoError(t, err)
	img := filepath.Join(t.TempDir(), "image.sqfs")
	require.NoError(t, packTree(t.Context(), img, tree))

	checkListing(t, bins[0], img, tree)

	want := contents(t, tree)
	require.Len(t, want["usr/bin/tool.orig"], len(big), "the flattened tree itself is wrong")
	inode := func(p string) string {
		if e, _ := tree.Lookup(p); e.Type == rootfs.TypeHardlink {
			return e.Linkname
		}
		return p
	}
	cmd := exec.CommandContext(t.Context(), bins[1], img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	tr := tar.NewReader(stdout)
	seen := map[string]bool{".": true} // sqfs2tar does not emit the root
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err, "reading sqfs2tar output")
		p := strings.TrimSuffix(hdr.Name, "/")
		e, ok := tree.Lookup(p)
		require.True(t, ok, "sqfs2tar emits %q, not in the tree", p)
		seen[p] = true
		if hdr.Typeflag == tar.TypeLink {
			assert.Equal(t, inode(p), inode(hdr.Linkname), "%s: hardlink to %s", p, hdr.Linkname)
			continue
		}
		if e.Type == rootfs.TypeHardlink {
			e, _ = tree.Lookup(e.Linkname)
		}
		var mtime int64 // implied directories have no time; squashfs stores 0
		if !e.ModTime.IsZero() {
			mtime = e.ModTime.Unix()
		}
		assert.Equal(t, fmt.Sprintf("%04o %d:%d %d", e.Mode, e.UID, e.GID, mtime),
			fmt.Sprintf("%04o %d:%d %d", hdr.Mode&0o7777, hdr.Uid, hdr.Gid, hdr.ModTime.Unix()), p)
		xattrs := map[string]string{}
		for k, v := range hdr.PAXRecords {
			if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
				xattrs[name] = v
			}
		}
		assert.Equal(t, len(e.Xattrs), len(xattrs), "%s: xattrs %v", p, xattrs)
		for k, v := range e.Xattrs {
			assert.Equal(t, v, xattrs[k], "%s: xattr %s", p, k)
		}
		switch e.Type {
		case rootfs.TypeRegular:
			require.Equal(t, byte(tar.TypeReg), hdr.Typeflag, p)
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			assert.True(t, want[inode(p)] == string(b), "%s: content differs", p)
		case rootfs.TypeCharDevice, rootfs.TypeBlockDevice:
			assert.Equal(t, [2]int64{e.Devmajor, e.Devminor}, [2]int64{hdr.Devmajor, hdr.Devminor}, p)
		case rootfs.TypeSymlink:
			assert.Equal(t, e.Linkname, hdr.Linkname, p)
		}
	}
	require.NoError(t, cmd.Wait(), "sqfs2tar: %s", stderr.String())
	var paths []string
	for _, e := range tree.Entries() {
		paths = append(paths, e.Path)
	}
	assert.ElementsMatch(t, paths, keys(seen))
	for _, gone := range []string{"etc/shadow", "usr/share", "var/cache/a"} {
		assert.False(t, seen[gone], "%s was whited out", gone)
	}
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	return out
}

// TestCorpusThroughSquashfs packs every corpus case that Flatten neutralises
// and checks the image lists exactly the tree; as root it also extracts each
// image with unsquashfs and checks nothing lands outside the destination.
func TestCorpusThroughSquashfs(t *testing.T) {
	unsquashfs := testenv.Require(t, "unsquashfs")[0]
	for _, tt := range maliciousCorpus(t) {
		if tt.wantErr != nil {
			continue
		}
		t.Run(tt.name, func(t *testing.T) {
			tree, err := rootfs.Flatten(t.Context(), tt.stack(t))
			require.NoError(t, err)
			work := t.TempDir()
			img := filepath.Join(work, "image.sqfs")
			require.NoError(t, packTree(t.Context(), img, tree))
			checkListing(t, unsquashfs, img, tree)
			if os.Geteuid() != 0 {
				return
			}
			dest := filepath.Join(work, "root")
			out, err := exec.CommandContext(t.Context(), unsquashfs, "-no-progress", "-d", dest, img).CombinedOutput()
			require.NoError(t, err, "unsquashfs -d: %s", out)
			assert.ElementsMatch(t, []string{"image.sqfs", "root"}, dirNames(t, work), "files appeared next to the destination")
			for _, e := range tree.Entries() {
				_, err := os.Lstat(filepath.Join(dest, filepath.FromSlash(e.Path)))
				assert.NoError(t, err, e.Path)
			}
		})
	}
}
