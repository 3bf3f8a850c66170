package squashfs_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/stretchr/testify/require"
)

// spec is an entry whose content can be read any number of times.
type spec struct {
	e    squashfs.Entry
	data []byte
}

func (s spec) entry() squashfs.Entry {
	e := s.e
	if e.Type == squashfs.TypeRegular {
		e.Size = int64(len(s.data))
		e.Content = bytes.NewReader(s.data)
	}
	return e
}

// writeImage writes specs to a new image file and returns its path.
func writeImage(t testing.TB, specs []spec, opts ...squashfs.Option) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "image.sqfs")
	err := squashfs.WriteFile(t.Context(), p, func(w *squashfs.Writer) error {
		for _, s := range specs {
			if err := w.Add(t.Context(), s.entry()); err != nil {
				return err
			}
		}
		return nil
	}, opts...)
	require.NoError(t, err)
	return p
}

func unixTime(tm time.Time) uint32 {
	if tm.IsZero() {
		return 0
	}
	return uint32(min(max(tm.Unix(), 0), math.MaxUint32))
}

func permOf(m fs.FileMode) uint16 {
	p := uint16(m & 0o7777)
	if m&fs.ModeSetuid != 0 {
		p |= 0o4000
	}
	if m&fs.ModeSetgid != 0 {
		p |= 0o2000
	}
	if m&fs.ModeSticky != 0 {
		p |= 0o1000
	}
	return p
}

var typeNames = map[squashfs.Type]string{
	squashfs.TypeRegular: "file", squashfs.TypeDir: "dir", squashfs.TypeSymlink: "symlink",
	squashfs.TypeCharDevice: "char", squashfs.TypeBlockDevice: "block", squashfs.TypeFIFO: "fifo", squashfs.TypeSocket: "socket",
}

// model is what an image of specs must contain: nodes by path, and for every
// path the path owning its inode (itself unless a hardlink).
type model struct {
	nodes map[string]*sqNode
	owner map[string]string
}

func newModel(specs []spec, imageTime uint32) model {
	m := model{nodes: map[string]*sqNode{}, owner: map[string]string{}}
	var implied func(p string)
	implied = func(p string) {
		if _, ok := m.nodes[p]; ok {
			return
		}
		m.nodes[p] = &sqNode{Type: "dir", Perm: 0o755, MTime: imageTime}
		m.owner[p] = p
		if p != "." {
			implied(path.Dir(p))
		}
	}
	implied(".")
	links := map[string]string{}
	for _, s := range specs {
		e := s.e
		implied(path.Dir(e.Path))
		if e.Type == squashfs.TypeHardlink {
			links[e.Path] = e.Linkname
			continue
		}
		n := &sqNode{Type: typeNames[e.Type], Perm: permOf(e.Mode), UID: e.UID, GID: e.GID, MTime: unixTime(e.ModTime), Xattrs: e.Xattrs}
		switch e.Type {
		case squashfs.TypeRegular:
			n.Content, n.Size = s.data, uint64(len(s.data))
		case squashfs.TypeSymlink:
			n.Link, n.Size = e.Linkname, uint64(len(e.Linkname))
		case squashfs.TypeCharDevice, squashfs.TypeBlockDevice:
			n.Major, n.Minor = e.Devmajor, e.Devminor
		}
		m.nodes[e.Path] = n
		m.owner[e.Path] = e.Path
	}
	for p, target := range links {
		for links[target] != "" {
			target = links[target]
		}
		m.nodes[p] = m.nodes[target]
		m.owner[p] = target
	}
	for _, n := range m.nodes {
		if n.Type != "dir" {
			n.Nlink++
		}
	}
	return m
}

// check compares what the reader found with the model.
func (m model) check(t testing.TB, got map[string]*sqNode) {
	t.Helper()
	require.ElementsMatch(t, keys(m.nodes), keys(got), "paths")
	for p, want := range m.nodes {
		g := got[p]
		ctx := fmt.Sprintf("path %q", p)
		require.Equal(t, want.Type, g.Type, ctx)
		require.Equal(t, fmt.Sprintf("%04o", want.Perm), fmt.Sprintf("%04o", g.Perm), ctx)
		require.Equal(t, [3]uint32{want.UID, want.GID, want.MTime}, [3]uint32{g.UID, g.GID, g.MTime}, ctx+": uid, gid, mtime")
		require.Equal(t, want.Link, g.Link, ctx)
		require.Equal(t, [2]uint32{want.Major, want.Minor}, [2]uint32{g.Major, g.Minor}, ctx+": device")
		require.Equal(t, len(want.Xattrs), len(g.Xattrs), ctx+": xattrs")
		for k, v := range want.Xattrs {
			require.Equal(t, v, g.Xattrs[k], ctx+": xattr "+k)
		}
		if want.Type != "dir" {
			require.Equal(t, want.Size, g.Size, ctx)
			require.Equal(t, want.Nlink, g.Nlink, ctx+": nlink")
			require.True(t, bytes.Equal(want.Content, g.Content), ctx+": content differs")
		}
		if o := m.owner[p]; o != p {
			require.Equal(t, got[o].Ino, g.Ino, ctx+": hardlink shares the inode of "+o)
		}
	}
}

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func newestTime(specs []spec) uint32 {
	var t uint32
	for _, s := range specs {
		if s.e.Type != squashfs.TypeHardlink {
			t = max(t, unixTime(s.e.ModTime))
		}
	}
	return t
}

// capability is a valid security.capability value (v2: cap_net_bind_service=ep).
const capability = "\x01\x00\x00\x02\x00\x04\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"

// richTree has one of every kind of entry, the interesting sizes around the
// block size bs, shared and sparse contents, and a directory big enough for
// a directory index.
func richTree(bs int) []spec {
	tm := time.Unix(1_700_000_000, 0)
	rnd := rand.New(rand.NewPCG(1, 2))
	random := func(n int) []byte {
		b := make([]byte, n)
		for i := range b {
			b[i] = byte(rnd.Uint32())
		}
		return b
	}
	text := func(n int) []byte { return bytes.Repeat([]byte("squashfs streams. "), n/18+1)[:n] }
	sparse := make([]byte, 5*bs+100)
	copy(sparse[2*bs:], random(bs))
	shared := random(3*bs + 17)
	specs := []spec{
		{e: squashfs.Entry{Path: ".", Type: squashfs.TypeDir, Mode: 0o755, ModTime: tm}},
		{e: squashfs.Entry{Path: "etc", Type: squashfs.TypeDir, Mode: 0o755, ModTime: tm}},
		{e: squashfs.Entry{Path: "etc/passwd", Mode: 0o644, ModTime: tm}, data: []byte("root:x:0:0:root:/root:/bin/sh\n")},
		{e: squashfs.Entry{Path: "etc/shadow", Mode: 0, GID: 42, ModTime: tm}, data: []byte("root:*:19000::::::\n")},
		{e: squashfs.Entry{Path: "etc/empty", Mode: 0o600, UID: 1000, GID: 1000, ModTime: tm}},
		{e: squashfs.Entry{Path: "secret", Type: squashfs.TypeDir, Mode: 0, UID: 7, ModTime: tm}},
		{e: squashfs.Entry{Path: "secret/key", Mode: 0o400, UID: 7, ModTime: tm}, data: []byte("k")},
		{e: squashfs.Entry{Path: "tmp", Type: squashfs.TypeDir, Mode: 0o1777, ModTime: tm}},
		{e: squashfs.Entry{Path: "usr/bin/ping", Mode: 0o4755, ModTime: tm, Xattrs: map[string]string{"security.capability": capability}}, data: random(bs + 1)},
		{e: squashfs.Entry{Path: "usr/bin/sgid", Mode: fs.ModeSetgid | 0o755, GID: 5, ModTime: tm}, data: text(bs)},
		{e: squashfs.Entry{Path: "usr/bin/copy", Mode: 0o755, ModTime: tm}, data: shared},
		{e: squashfs.Entry{Path: "usr/bin/copy2", Mode: 0o700, ModTime: tm.Add(time.Hour)}, data: shared},
		{e: squashfs.Entry{Path: "usr/bin/hard", Type: squashfs.TypeHardlink, Linkname: "usr/bin/ping"}},
		{e: squashfs.Entry{Path: "usr/hard2", Type: squashfs.TypeHardlink, Linkname: "usr/bin/hard"}},
		{e: squashfs.Entry{Path: "usr/lib/text", Mode: 0o644, ModTime: tm, Xattrs: map[string]string{"user.mime": "text/plain", "trusted.t": "1"}}, data: text(4*bs - 1)},
		{e: squashfs.Entry{Path: "usr/lib/sparse", Mode: 0o644, ModTime: tm}, data: sparse},
		{e: squashfs.Entry{Path: "usr/lib/zeros", Mode: 0o644, ModTime: tm}, data: make([]byte, 2*bs)},
		{e: squashfs.Entry{Path: "usr/lib/random", Mode: 0o644, ModTime: tm}, data: random(2*bs + 5)},
		{e: squashfs.Entry{Path: "lib", Type: squashfs.TypeSymlink, Mode: 0o777, ModTime: tm, Linkname: "usr/lib"}},
		{e: squashfs.Entry{Path: "usr/lib/abs", Type: squashfs.TypeSymlink, Mode: 0o777, UID: 3, ModTime: tm, Linkname: "/etc/passwd", Xattrs: map[string]string{"trusted.x": "y"}}},
		{e: squashfs.Entry{Path: "dev/null", Type: squashfs.TypeCharDevice, Mode: 0o666, ModTime: tm, Devmajor: 1, Devminor: 3}},
		{e: squashfs.Entry{Path: "dev/sdb300", Type: squashfs.TypeBlockDevice, Mode: 0o660, GID: 6, ModTime: tm, Devmajor: 8, Devminor: 300}},
		{e: squashfs.Entry{Path: "dev/big", Type: squashfs.TypeCharDevice, Mode: 0o600, ModTime: tm, Devmajor: 4095, Devminor: 1<<20 - 1}},
		{e: squashfs.Entry{Path: "dev/fifo", Type: squashfs.TypeFIFO, Mode: 0o620, ModTime: tm, Xattrs: map[string]string{"trusted.f": ""}}},
		{e: squashfs.Entry{Path: "run/sock", Type: squashfs.TypeSocket, Mode: 0o755, UID: 65534, GID: 65534, ModTime: tm}},
		// Added after its contents: it was implied until now.
		{e: squashfs.Entry{Path: "usr", Type: squashfs.TypeDir, Mode: 0o750, UID: 2, ModTime: tm, Xattrs: map[string]string{"user.dir": "yes"}}},
	}
	for i := range 700 {
		name := fmt.Sprintf("many/%s-%04d", strings.Repeat("n", i%40), i)
		specs = append(specs, spec{e: squashfs.Entry{Path: name, Mode: 0o644, UID: uint32(i % 3), ModTime: tm}, data: fmt.Appendf(nil, "file %d\n", i%500)})
	}
	return specs
}

// hugeDirTree has a directory whose listing is over 64 KiB, more than a basic
// directory inode can describe, next to a small one.
func hugeDirTree() []spec {
	tm := time.Unix(1_700_000_000, 0)
	specs := []spec{{e: squashfs.Entry{Path: "small/a", Mode: 0o644, ModTime: tm}, data: []byte("a")}}
	for i := range 2500 {
		specs = append(specs, spec{e: squashfs.Entry{Path: fmt.Sprintf("huge/%s-%05d", strings.Repeat("x", 40), i), Mode: 0o644, ModTime: tm}, data: fmt.Appendf(nil, "%d", i%7)})
	}
	return specs
}

// randomTree builds a tree of about n entries from seed, with names of any
// bytes but '/' and NUL, every entry type, sizes around multiples of bs,
// shared, sparse and random contents, hardlinks, xattrs and implied
// directories.
func randomTree(seed uint64, n int, bs int) []spec {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	dirs := []string{"."}
	var files []string
	var contents [][]byte
	used := map[string]bool{".": true}
	var specs []spec
	name := func() string {
		for {
			var b []byte
			switch r.IntN(4) {
			case 0:
				b = []byte{byte('a' + r.IntN(3))}
			case 1:
				b = make([]byte, 1+r.IntN(255))
				for i := range b {
					b[i] = byte(1 + r.IntN(255))
					if b[i] == '/' {
						b[i] = '_'
					}
				}
			default:
				b = fmt.Appendf(nil, "f%d", r.IntN(1000))
			}
			if s := string(b); s != "." && s != ".." {
				return s
			}
		}
	}
	for range n {
		parent := dirs[r.IntN(len(dirs))]
		p := path.Join(parent, name())
		if r.IntN(8) == 0 { // below a directory that stays implied
			p = path.Join(p, name())
		}
		if used[p] || used[path.Dir(p)] && !slices.Contains(dirs, path.Dir(p)) {
			continue
		}
		e := squashfs.Entry{
			Path: p, Mode: fs.FileMode(r.IntN(0o10000)), UID: uint32(r.IntN(4)) * 1000, GID: uint32(r.IntN(3)),
			ModTime: time.Unix(int64(r.Uint32()), 0),
		}
		if r.IntN(10) == 0 {
			e.UID = r.Uint32()
		}
		if r.IntN(6) == 0 {
			e.Xattrs = map[string]string{}
			for range 1 + r.IntN(3) {
				key := fmt.Sprintf("%s%x.%s", []string{"user.", "trusted.", "security."}[r.IntN(3)], r.Uint32(), strings.Repeat("k", r.IntN(200)))
				e.Xattrs[key] = string(bytes.Repeat([]byte{byte(r.Uint32())}, r.IntN(300)))
			}
		}
		var data []byte
		switch k := r.IntN(20); {
		case k < 9:
			e.Type = squashfs.TypeRegular
			size := r.IntN(bs / 2)
			switch r.IntN(5) {
			case 0:
				size = (1+r.IntN(4))*bs + r.IntN(3) - 1
			case 1:
				size = r.IntN(6 * bs)
			}
			data = make([]byte, size)
			switch r.IntN(4) {
			case 0: // zeros
			case 1:
				if len(contents) > 0 {
					data = contents[r.IntN(len(contents))]
					break
				}
				fallthrough
			case 2:
				for i := range data {
					data[i] = byte(r.Uint32())
				}
			default:
				for i := range data {
					data[i] = "abcab\n"[i%6]
				}
			}
			files = append(files, p)
			contents = append(contents, data)
		case k < 12:
			e.Type = squashfs.TypeDir
			dirs = append(dirs, p)
		case k < 14:
			e.Type, e.Linkname = squashfs.TypeSymlink, strings.Repeat("../", r.IntN(3))+name()
		case k < 16 && len(files) > 0:
			e = squashfs.Entry{Path: p, Type: squashfs.TypeHardlink, Linkname: files[r.IntN(len(files))]}
		case k < 17:
			e.Type, e.Devmajor, e.Devminor = squashfs.TypeCharDevice, uint32(r.IntN(4096)), uint32(r.IntN(1<<20))
		case k < 18:
			e.Type, e.Devmajor, e.Devminor = squashfs.TypeBlockDevice, uint32(r.IntN(300)), uint32(r.IntN(300))
		case k < 19:
			e.Type = squashfs.TypeFIFO
		default:
			e.Type = squashfs.TypeSocket
		}
		used[p] = true
		for d := path.Dir(p); d != "."; d = path.Dir(d) {
			used[d] = true
		}
		if path.Dir(p) != parent && !slices.Contains(dirs, path.Dir(p)) {
			dirs = append(dirs, path.Dir(p)) // implied
		}
		specs = append(specs, spec{e: e, data: data})
	}
	return specs
}

func sizeOf(t testing.TB, p string) int64 {
	t.Helper()
	fi, err := os.Stat(p)
	require.NoError(t, err)
	return fi.Size()
}
