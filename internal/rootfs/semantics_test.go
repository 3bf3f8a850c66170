package rootfs_test

import (
	"archive/tar"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

const rootLine = "dir . 0755 implied"

type semanticsCase struct {
	name   string
	layers [][]ent
	want   []string
}

func runSemantics(t *testing.T, tests []semanticsCase) {
	t.Helper()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := rootfs.Flatten(t.Context(), layers(t, tt.layers...))
			require.NoError(t, err)
			checkContained(t, tree)
			got, want := listing(t, tree), append([]string{rootLine}, tt.want...)
			assert.Equal(t, want, got)
		})
	}
}

func TestFlattenWhiteouts(t *testing.T) {
	runSemantics(t, []semanticsCase{
		{
			name: "whiteout removes a file of a lower layer",
			layers: [][]ent{
				{dir("a"), file("a/x", "x"), file("a/y", "y")},
				{dir("a"), whiteout("a/x")},
			},
			want: []string{"dir a 0755", `regular a/y 0644 "y"`},
		},
		{
			name: "whiteout removes a whole directory of a lower layer",
			layers: [][]ent{
				{dir("a"), dir("a/b"), file("a/b/x", "x"), file("a/c", "c")},
				{whiteout("a/b")},
			},
			want: []string{"dir a 0755", `regular a/c 0644 "c"`},
		},
		{
			name: "whiteout after same-layer file leaves that file",
			layers: [][]ent{
				{file("x", "old")},
				{file("x", "new"), whiteout("x")},
			},
			want: []string{`regular x 0644 "new"`},
		},
		{
			name: "whiteout before same-layer file leaves that file",
			layers: [][]ent{
				{file("x", "old")},
				{whiteout("x"), file("x", "new")},
			},
			want: []string{`regular x 0644 "new"`},
		},
		{
			name: "whiteout of a path only the same layer has removes nothing",
			layers: [][]ent{
				{file("x", "mine"), whiteout("x"), whiteout("never")},
			},
			want: []string{`regular x 0644 "mine"`},
		},
		{
			name: "whiteout of a directory and a same-layer entry under it",
			layers: [][]ent{
				{dir("d"), file("d/x", "x")},
				{file("d/y", "y"), whiteout("d")},
			},
			want: []string{"dir d 0755 implied", `regular d/y 0644 "y"`},
		},
		{
			name: "opaque directory with new contents in the same layer, marker last",
			layers: [][]ent{
				{dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/bar", "bar")},
				{dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/foo", "foo"), opaque("a")},
			},
			want: []string{"dir a 0755", "dir a/b 0755", "dir a/b/c 0755", `regular a/b/c/foo 0644 "foo"`},
		},
		{
			name: "opaque directory with new contents in the same layer, marker first",
			layers: [][]ent{
				{dir("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/bar", "bar")},
				{dir("a"), opaque("a"), dir("a/b"), dir("a/b/c"), file("a/b/c/foo", "foo")},
			},
			want: []string{"dir a 0755", "dir a/b 0755", "dir a/b/c 0755", `regular a/b/c/foo 0644 "foo"`},
		},
		{
			name: "opaque directory keeps the directory and hides all descendants",
			layers: [][]ent{
				{dir("bin"), file("bin/one", "1"), dir("bin/tools"), file("bin/tools/two", "2"), file("keep", "k")},
				{withMode(dir("bin"), 0o700), opaque("bin")},
			},
			want: []string{"dir bin 0700", `regular keep 0644 "k"`},
		},
		{
			name: "opaque marker at the root",
			layers: [][]ent{
				{file("a", "a"), dir("d")},
				{opaque(""), file("b", "b")},
			},
			want: []string{`regular b 0644 "b"`},
		},
		{
			name: "whiteout of a whole directory, then re-added in a later layer",
			layers: [][]ent{
				{dir("d"), file("d/old", "old")},
				{whiteout("d")},
				{withMode(dir("d"), 0o750), file("d/new", "new")},
			},
			want: []string{"dir d 0750", `regular d/new 0644 "new"`},
		},
		{
			name: "whiteout removes a symlink, not its target",
			layers: [][]ent{
				{dir("t"), file("t/f", "f"), symlink("l", "t")},
				{whiteout("l")},
			},
			want: []string{"dir t 0755", `regular t/f 0644 "f"`},
		},
		{
			name: "whiteout through a symlinked directory applies inside the root",
			layers: [][]ent{
				{dir("real"), file("real/f", "f"), file("real/g", "g"), symlink("l", "/real")},
				{whiteout("l/f")},
			},
			want: []string{"symlink l 0777 -> /real", "dir real 0755", `regular real/g 0644 "g"`},
		},
		{
			name: "whiteout under a file and under a missing directory remove nothing",
			layers: [][]ent{
				{file("f", "f")},
				{whiteout("f/x"), whiteout("missing/x")},
			},
			want: []string{`regular f 0644 "f"`},
		},
		{
			name: "AUFS metadata entries are ignored",
			layers: [][]ent{
				{dir(".wh..wh.plnk"), file(".wh..wh.plnk/1.2", "x"), file(".wh..wh.aufs", ""), file("a", "a")},
			},
			want: []string{`regular a 0644 "a"`},
		},
		{
			name: "whiteout of a hardlinked path keeps the other path and its content",
			layers: [][]ent{
				{file("a", "shared"), hardlink("b", "a")},
				{whiteout("a")},
			},
			want: []string{`regular b 0644 "shared"`},
		},
	})
}

func TestFlattenReplacement(t *testing.T) {
	runSemantics(t, []semanticsCase{
		{
			name: "file replaced by a directory",
			layers: [][]ent{
				{file("p", "file")},
				{dir("p"), file("p/x", "x")},
			},
			want: []string{"dir p 0755", `regular p/x 0644 "x"`},
		},
		{
			name: "directory replaced by a file drops the subtree",
			layers: [][]ent{
				{dir("p"), dir("p/q"), file("p/q/x", "x")},
				{file("p", "file")},
			},
			want: []string{`regular p 0644 "file"`},
		},
		{
			name: "directory over directory takes new attributes and keeps children",
			layers: [][]ent{
				{dir("p"), file("p/x", "x")},
				{withMode(dir("p"), 0o1777)},
			},
			want: []string{"dir p 1777", `regular p/x 0644 "x"`},
		},
		{
			name: "symlink replaced by a directory is not followed",
			layers: [][]ent{
				{dir("t"), symlink("p", "t")},
				{dir("p"), file("p/x", "x")},
			},
			want: []string{"dir p 0755", `regular p/x 0644 "x"`, "dir t 0755"},
		},
		{
			name: "file over a symlink replaces the link, not its target",
			layers: [][]ent{
				{file("t", "target"), symlink("p", "t")},
				{file("p", "new")},
			},
			want: []string{`regular p 0644 "new"`, `regular t 0644 "target"`},
		},
		{
			name: "duplicate entries in one layer: the last wins",
			layers: [][]ent{
				{file("x", "first"), withMode(file("x", "second"), 0o600)},
			},
			want: []string{`regular x 0600 "second"`},
		},
		{
			name: "duplicate entry in one layer replaces a directory with its same-layer children",
			layers: [][]ent{
				{dir("d"), file("d/x", "x"), file("d", "file")},
			},
			want: []string{`regular d 0644 "file"`},
		},
		{
			name: "entries through a symlinked directory land at its target",
			layers: [][]ent{
				{dir("usr"), dir("usr/lib"), symlink("lib", "usr/lib")},
				{file("lib/libc.so", "libc")},
			},
			want: []string{"symlink lib 0777 -> usr/lib", "dir usr 0755", "dir usr/lib 0755", `regular usr/lib/libc.so 0644 "libc"`},
		},
		{
			name: "implied parents and sorted walk order",
			layers: [][]ent{
				{file("b/z", "z"), file("a.txt", "a"), file("a/b/c", "c"), dir("b")},
			},
			want: []string{
				"dir a 0755 implied", "dir a/b 0755 implied", `regular a/b/c 0644 "c"`,
				`regular a.txt 0644 "a"`, "dir b 0755", `regular b/z 0644 "z"`,
			},
		},
		{
			name: "absolute and dotted names mean the same path inside the root",
			layers: [][]ent{
				{file("/etc/passwd", "one"), file("./etc/./group", "two"), file("etc//hosts", "three")},
			},
			want: []string{"dir etc 0755 implied", `regular etc/group 0644 "two"`, `regular etc/hosts 0644 "three"`, `regular etc/passwd 0644 "one"`},
		},
	})
}

func TestFlattenHardlinks(t *testing.T) {
	runSemantics(t, []semanticsCase{
		{
			name:   "hardlink in the same layer",
			layers: [][]ent{{file("a", "data"), hardlink("b", "a")}},
			want:   []string{`regular a 0644 "data" n=2`, "hardlink b 0644 => a n=2"},
		},
		{
			name: "hardlink to an entry of an earlier layer",
			layers: [][]ent{
				{dir("usr"), file("usr/bin", "elf")},
				{hardlink("sbin", "usr/bin")},
			},
			want: []string{`regular sbin 0644 "elf" n=2`, "dir usr 0755", "hardlink usr/bin 0644 => sbin n=2"},
		},
		{
			name: "target removed later: the link keeps the original content",
			layers: [][]ent{
				{file("orig", "original")},
				{hardlink("link", "orig")},
				{whiteout("orig")},
			},
			want: []string{`regular link 0644 "original"`},
		},
		{
			name: "target replaced later: the link keeps the original content",
			layers: [][]ent{
				{file("orig", "original")},
				{hardlink("link", "orig")},
				{file("orig", "replacement")},
			},
			want: []string{`regular link 0644 "original"`, `regular orig 0644 "replacement"`},
		},
		{
			name: "target replaced in the same layer after the link",
			layers: [][]ent{
				{file("orig", "original"), hardlink("link", "orig"), file("orig", "replacement")},
			},
			want: []string{`regular link 0644 "original"`, `regular orig 0644 "replacement"`},
		},
		{
			name: "link to a link joins one inode of three paths",
			layers: [][]ent{
				{file("c", "data")},
				{hardlink("b", "c"), hardlink("a", "b")},
			},
			want: []string{`regular a 0644 "data" n=3`, "hardlink b 0644 => a n=3", "hardlink c 0644 => a n=3"},
		},
		{
			name: "hardlink takes the inode's metadata, not its own header's",
			layers: [][]ent{
				{withMode(file("a", "x"), 0o4755)},
				{withMode(hardlink("b", "a"), 0o600)},
			},
			want: []string{`regular a 4755 "x" n=2`, "hardlink b 4755 => a n=2"},
		},
		{
			name: "hardlink to a symlink links the symlink itself",
			layers: [][]ent{
				{symlink("s", "/nowhere"), hardlink("h", "s")},
			},
			want: []string{"symlink h 0777 -> /nowhere n=2", "hardlink s 0777 => h n=2"},
		},
		{
			name: "hardlink target through a symlinked directory",
			layers: [][]ent{
				{dir("usr"), file("usr/f", "f"), symlink("u", "/usr")},
				{hardlink("h", "u/f")},
			},
			want: []string{`regular h 0644 "f" n=2`, "symlink u 0777 -> /usr", "dir usr 0755", "hardlink usr/f 0644 => h n=2"},
		},
		{
			name: "hardlink onto itself changes nothing",
			layers: [][]ent{
				{file("a", "a")},
				{hardlink("a", "a")},
			},
			want: []string{`regular a 0644 "a"`},
		},
		{
			name: "hardlinked file replaced by a directory leaves the other path",
			layers: [][]ent{
				{file("a", "data"), hardlink("b", "a")},
				{dir("a")},
			},
			want: []string{"dir a 0755", `regular b 0644 "data"`},
		},
	})
}

func TestFlattenMetadata(t *testing.T) {
	mtime := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	suid := ent{hdr: tar.Header{
		Typeflag: tar.TypeReg, Name: "bin/ping", Mode: 0o4755, Uid: 0, Gid: 0, Uname: "root", Gname: "root", ModTime: mtime,
		PAXRecords: map[string]string{
			"SCHILY.xattr.security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00",
			"SCHILY.xattr.user.note":           "hi",
			"SCHILY.acl.access":                "user::rwx",
		},
		Size: 4,
	}, body: "ping"}
	owned := ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "home/u/", Mode: 0o700, Uid: 1000, Gid: 100, ModTime: mtime}}
	chr := ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/null", Mode: 0o666, Devmajor: 1, Devminor: 3}}
	blk := ent{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o660, Gid: 6, Devmajor: 8, Devminor: 0}}
	fifo := ent{hdr: tar.Header{Typeflag: tar.TypeFifo, Name: "run/fifo", Mode: 0o600}}
	rootDir := ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o555, ModTime: mtime}}

	tree, err := rootfs.Flatten(t.Context(), layers(t, []ent{rootDir, suid, owned, chr, blk, fifo}))
	require.NoError(t, err)
	checkContained(t, tree)

	got, want := listing(t, tree), []string{
		"dir . 0555", "dir bin 0755 implied", `regular bin/ping 4755 "ping"`,
		"dir dev 0755 implied", "char dev/null 0666 1:3", "block dev/sda 0660 8:0",
		"dir home 0755 implied", "dir home/u 0700", "dir run 0755 implied", "fifo run/fifo 0600",
	}
	assert.Equal(t, want, got)

	ping, ok := tree.Lookup("bin/ping")
	require.True(t, ok)
	assert.Equal(t, map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00", "user.note": "hi"}, ping.Xattrs)
	assert.Equal(t, map[string]string{"SCHILY.acl.access": "user::rwx"}, ping.PAXRecords)
	assert.Equal(t, "root", ping.Uname)
	assert.True(t, ping.ModTime.Equal(mtime), "mtime %v", ping.ModTime)
	assert.Equal(t, rootfs.Source{Layer: 0, Entry: 1}, ping.Source)

	home, _ := tree.Lookup("home/u")
	assert.Equal(t, []int{1000, 100}, []int{home.UID, home.GID})
	implied, _ := tree.Lookup("home")
	assert.Equal(t, rootfs.Source{Layer: -1, Entry: -1}, implied.Source)
	assert.True(t, implied.ModTime.IsZero())
}
