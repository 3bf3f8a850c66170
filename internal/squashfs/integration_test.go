package squashfs_test

// Integration tests: images written by this package read back by the real
// tools: unsquashfs (listing and extraction), sqfs2tar, squashfuse and the
// kernel's squashfs through a loop mount.

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// lsMode renders type and permissions as ls -l does.
func lsMode(n *sqNode) string {
	typ := map[string]byte{"file": '-', "dir": 'd', "symlink": 'l', "char": 'c', "block": 'b', "fifo": 'p', "socket": 's'}[n.Type]
	b := []byte{typ}
	for i, c := range "rwxrwxrwx" {
		if n.Perm&(1<<(8-i)) != 0 {
			b = append(b, byte(c))
		} else {
			b = append(b, '-')
		}
	}
	special := func(bit uint16, pos int, set, unset byte) {
		if n.Perm&bit != 0 {
			if b[pos] == 'x' {
				b[pos] = set
			} else {
				b[pos] = unset
			}
		}
	}
	special(0o4000, 3, 's', 'S')
	special(0o2000, 6, 's', 'S')
	special(0o1000, 9, 't', 'T')
	return string(b)
}

var llnLine = regexp.MustCompile(`^(\S{10}) (\d+)/(\d+)\s+(\d+|-?\d+,\s*\d+) (\d{4}-\d\d-\d\d \d\d:\d\d) squashfs-root(.*?)(?: -> (.*))?$`)

func TestUnsquashfsListing(t *testing.T) {
	bins := testenv.Require(t, "unsquashfs")
	specs := richTree(128 << 10)
	img := writeImage(t, specs)
	cmd := exec.CommandContext(t.Context(), bins[0], "-lln", img)
	cmd.Env = append(os.Environ(), "TZ=UTC")
	out, err := cmd.Output()
	require.NoError(t, err, "unsquashfs -lln")

	m := newModel(specs, newestTime(specs))
	seen := map[string]bool{}
	for line := range strings.Lines(string(out)) {
		line = strings.TrimRight(line, "\n")
		f := llnLine.FindStringSubmatch(line)
		require.NotNil(t, f, "unexpected line %q", line)
		p := strings.TrimPrefix(f[6], "/")
		if p == "" {
			p = "."
		}
		want := m.nodes[p]
		require.NotNil(t, want, "unsquashfs lists %q, not in the tree", p)
		seen[p] = true
		assert.Equal(t, lsMode(want), f[1], p)
		assert.Equal(t, fmt.Sprintf("%d/%d", want.UID, want.GID), f[2]+"/"+f[3], p)
		assert.Equal(t, time.Unix(int64(want.MTime), 0).UTC().Format("2006-01-02 15:04"), f[5], p)
		assert.Equal(t, want.Link, f[7], p)
		switch want.Type {
		case "file", "symlink":
			assert.Equal(t, strconv.FormatUint(want.Size, 10), f[4], p)
		case "char", "block":
			// unsquashfs 4.5 prints the encoded device number as a signed
			// int split 24:8 (extraction gets it right, see compareDir).
			dev := int32(want.Minor&0xff | want.Major<<8 | (want.Minor&^0xff)<<12)
			assert.Regexp(t, fmt.Sprintf(`^%d,\s*%d$`, dev>>8, dev&0xff), f[4], p)
		case "fifo", "socket":
			assert.Equal(t, "0", f[4], p)
		}
	}
	assert.ElementsMatch(t, keys(m.nodes), keys(seen))
}

func TestUnsquashfsExtract(t *testing.T) {
	bins := testenv.Require(t, "unsquashfs")
	testenv.RequireRoot(t)
	specs := richTree(128 << 10)
	img := writeImage(t, specs)
	dest := filepath.Join(t.TempDir(), "root")
	out, err := exec.CommandContext(t.Context(), bins[0], "-no-progress", "-d", dest, img).CombinedOutput()
	require.NoError(t, err, "unsquashfs -d: %s", out)
	compareDir(t, dest, newModel(specs, newestTime(specs)), compareOptions{})
}

func TestSqfs2tar(t *testing.T) {
	bins := testenv.Require(t, "sqfs2tar")
	trees := map[string][]spec{"rich": richTree(128 << 10)}
	levels := map[string]int{"rich": squashfs.DefaultCompressionLevel}
	for seed := range uint64(4) {
		levels[fmt.Sprintf("random %d", seed)] = int(seed*3) % 10
		// sqfs2tar 1.2 skips sockets (tar has none), but leaks a skipped
		// socket's long name onto the next entry; leave them out.
		trees[fmt.Sprintf("random %d", seed)] = slices.DeleteFunc(randomTree(100+seed, 200, 4096), func(s spec) bool {
			return s.e.Type == squashfs.TypeSocket
		})
	}
	for name, specs := range trees {
		t.Run(name, func(t *testing.T) {
			img := writeImage(t, specs, squashfs.WithBlockSize(4096<<(len(name)%3)), squashfs.WithCompressionLevel(levels[name]))
			m := newModel(specs, newestTime(specs))
			got := map[string]*sqNode{}
			owners := map[string]string{}
			readSqfs2tar(t, bins[0], img, func(hdr *tar.Header, r io.Reader) {
				p := strings.TrimSuffix(hdr.Name, "/")
				n := &sqNode{
					Perm: uint16(hdr.Mode & 0o7777), UID: uint32(hdr.Uid), GID: uint32(hdr.Gid), MTime: uint32(hdr.ModTime.Unix()),
					Major: uint32(hdr.Devmajor), Minor: uint32(hdr.Devminor),
				}
				for k, v := range hdr.PAXRecords {
					if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
						if n.Xattrs == nil {
							n.Xattrs = map[string]string{}
						}
						n.Xattrs[name] = v
					}
				}
				switch hdr.Typeflag {
				case tar.TypeReg:
					n.Type = "file"
					b, err := io.ReadAll(r)
					require.NoError(t, err)
					n.Content, n.Size = b, uint64(len(b))
				case tar.TypeDir:
					n.Type = "dir"
				case tar.TypeSymlink:
					n.Type, n.Link, n.Size = "symlink", hdr.Linkname, uint64(len(hdr.Linkname))
				case tar.TypeChar:
					n.Type = "char"
				case tar.TypeBlock:
					n.Type = "block"
				case tar.TypeFifo:
					n.Type = "fifo"
				case tar.TypeLink:
					owners[p] = hdr.Linkname
					return
				default:
					t.Fatalf("%s: tar type %c", p, hdr.Typeflag)
				}
				got[p] = n
			})
			// tar cannot carry sockets; sqfs2tar skips them with a warning.
			for p, n := range m.nodes {
				if n.Type == "socket" {
					delete(m.nodes, p)
				}
			}
			got["."] = m.nodes["."] // sqfs2tar does not emit the root
			for p, target := range owners {
				got[p] = got[target]
				require.Equal(t, m.owner[p], m.owner[target], "%s: hardlink to %s", p, target)
			}
			for p, n := range got {
				if n.Type != "dir" {
					n.Nlink = 0
					if m.nodes[p] != nil {
						n.Nlink = m.nodes[p].Nlink // tar has no link counts
					}
				}
			}
			m.check(t, got)
		})
	}
}

// readSqfs2tar streams the tar that sqfs2tar makes of img to fn.
func readSqfs2tar(t *testing.T, bin, img string, fn func(*tar.Header, io.Reader)) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, img)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	// No bufio: reading the pipe straight into the caller's buffer saves a copy
	// per byte, which counts under the race detector for images of gigabytes.
	tr := tar.NewReader(stdout)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			_ = cmd.Wait() // stderr is complete only after Wait
			t.Fatalf("reading sqfs2tar output: %v; stderr: %s", err, stderr.String())
		}
		fn(hdr, tr)
	}
	_, _ = io.Copy(io.Discard, stdout)
	require.NoError(t, cmd.Wait(), "sqfs2tar: %s", stderr.String())
}

func TestSquashfuse(t *testing.T) {
	bins := testenv.Require(t, "squashfuse", "fusermount3")
	requireDevice(t, "/dev/fuse")
	specs := richTree(128 << 10)
	img := writeImage(t, specs)
	mnt := t.TempDir()
	out, err := exec.CommandContext(t.Context(), bins[0], img, mnt).CombinedOutput()
	require.NoError(t, err, "squashfuse: %s", out)
	t.Cleanup(func() {
		out, err := exec.Command(bins[1], "-u", mnt).CombinedOutput()
		assert.NoError(t, err, "fusermount3 -u: %s", out)
	})
	// squashfuse 0.1.10x shows trusted.* as security.* and the other way
	// round (also for mksquashfs images), and numbers inodes per path.
	compareDir(t, mnt, newModel(specs, newestTime(specs)), compareOptions{xattrPrefix: "user.", distinctInodes: true})
}

func TestKernelLoopMount(t *testing.T) {
	bins := testenv.Require(t, "mount", "umount")
	testenv.RequireRoot(t)
	requireDevice(t, "/dev/loop-control")
	fsTypes, err := os.ReadFile("/proc/filesystems")
	require.NoError(t, err)
	if !regexp.MustCompile(`(?m)\tsquashfs$`).Match(fsTypes) {
		testenv.Skipf(t, "the kernel has no squashfs support loaded (/proc/filesystems)")
	}
	tests := []struct {
		name  string
		specs []spec
		opts  []squashfs.Option
	}{
		{name: "rich", specs: richTree(128 << 10)},
		{name: "directory listing over 64 KiB", specs: hugeDirTree()},
		{name: "random uncompressed without export table", specs: randomTree(42, 300, 4096),
			opts: []squashfs.Option{squashfs.WithBlockSize(4096), squashfs.WithCompressionLevel(0), squashfs.WithExportTable(false)}},
	}
	for _, tt := range tests {
		specs := tt.specs
		t.Run(tt.name, func(t *testing.T) {
			img := writeImage(t, specs, tt.opts...)
			mnt := t.TempDir()
			out, err := exec.CommandContext(t.Context(), bins[0], "-t", "squashfs", "-o", "loop,ro", img, mnt).CombinedOutput()
			require.NoError(t, err, "mount: %s", out)
			t.Cleanup(func() {
				out, err := exec.Command(bins[1], mnt).CombinedOutput()
				assert.NoError(t, err, "umount: %s", out)
			})
			compareDir(t, mnt, newModel(specs, newestTime(specs)), compareOptions{})
		})
	}
}

func requireDevice(t *testing.T, dev string) {
	t.Helper()
	if fi, err := os.Stat(dev); err != nil || fi.Mode()&fs.ModeDevice == 0 {
		testenv.Skipf(t, "%s is not available: %v", dev, err)
	}
}

type compareOptions struct {
	xattrPrefix    string // compare only xattrs with this prefix
	distinctInodes bool   // hardlinks show distinct inode numbers
}

// compareDir checks the file tree under root against the model: every path
// and no other, types, permissions, owners, times, contents, link targets,
// device numbers, hardlinks and the xattrs Linux shows on files and
// directories.
func compareDir(t *testing.T, root string, m model, opts compareOptions) {
	t.Helper()
	var found []string
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		found = append(found, filepath.ToSlash(rel))
		return err
	}))
	require.ElementsMatch(t, keys(m.nodes), found, "paths")
	for p, want := range m.nodes {
		full := filepath.Join(root, filepath.FromSlash(p))
		var st syscall.Stat_t
		require.NoError(t, syscall.Lstat(full, &st), p)
		typ := map[uint32]string{
			syscall.S_IFREG: "file", syscall.S_IFDIR: "dir", syscall.S_IFLNK: "symlink", syscall.S_IFCHR: "char",
			syscall.S_IFBLK: "block", syscall.S_IFIFO: "fifo", syscall.S_IFSOCK: "socket",
		}[st.Mode&syscall.S_IFMT]
		assert.Equal(t, want.Type, typ, p)
		assert.Equal(t, fmt.Sprintf("%04o", want.Perm), fmt.Sprintf("%04o", st.Mode&0o7777), p)
		assert.Equal(t, [2]uint32{want.UID, want.GID}, [2]uint32{st.Uid, st.Gid}, p+": owner")
		assert.Equal(t, int64(want.MTime), st.Mtim.Sec, p+": mtime")
		switch want.Type {
		case "file":
			b, err := os.ReadFile(full)
			require.NoError(t, err, p)
			assert.True(t, bytes.Equal(want.Content, b), p+": content differs")
			assert.Equal(t, uint64(want.Nlink), uint64(st.Nlink), p+": nlink")
		case "symlink":
			target, err := os.Readlink(full)
			require.NoError(t, err, p)
			assert.Equal(t, want.Link, target, p)
		case "char", "block":
			major := uint32((st.Rdev>>8)&0xfff | (st.Rdev>>32)&^0xfff)
			minor := uint32(st.Rdev&0xff | (st.Rdev>>12)&^0xff)
			assert.Equal(t, [2]uint32{want.Major, want.Minor}, [2]uint32{major, minor}, p+": device")
		}
		if want.Type == "file" || want.Type == "dir" {
			wantX := map[string]string{}
			for k, v := range want.Xattrs {
				if strings.HasPrefix(k, opts.xattrPrefix) {
					wantX[k] = v
				}
			}
			assert.Equal(t, wantX, xattrsOf(t, full, opts.xattrPrefix), p+": xattrs")
		}
		if o := m.owner[p]; o != p && !opts.distinctInodes {
			var ost syscall.Stat_t
			require.NoError(t, syscall.Lstat(filepath.Join(root, o), &ost))
			assert.Equal(t, ost.Ino, st.Ino, p+": hardlink of "+o)
		}
	}
}

func xattrsOf(t *testing.T, p, prefix string) map[string]string {
	t.Helper()
	buf := make([]byte, 64<<10)
	out := map[string]string{}
	n, err := syscall.Listxattr(p, buf)
	if errors.Is(err, syscall.ENOTSUP) {
		return out // the kernel's answer for directories of images without xattrs, mksquashfs' too
	}
	require.NoError(t, err, p)
	for name := range strings.SplitSeq(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		if name == "" || name == "security.selinux" || !strings.HasPrefix(name, prefix) {
			continue
		}
		v := make([]byte, 64<<10)
		vn, err := syscall.Getxattr(p, name, v)
		require.NoError(t, err, p+" "+name)
		out[name] = string(v[:vn])
	}
	return out
}
