package rootfs_test

import (
	"archive/tar"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// corpusCase is one hostile or odd layer stack. Either wantErr is set, and
// Flatten must fail with a *LayerError naming errLayer and errName, or want is
// the listing of the tree Flatten neutralised it into.
type corpusCase struct {
	name     string
	layers   [][]ent
	raw      [][]byte // replaces layers when set
	wantErr  error
	errLayer int
	errName  string
	want     []string
}

// stack returns the case's layers.
func (c corpusCase) stack(t testing.TB) []rootfs.Layer {
	if c.raw == nil {
		return layers(t, c.layers...)
	}
	var ls []rootfs.Layer
	for _, b := range c.raw {
		ls = append(ls, bytesLayer{data: b})
	}
	return ls
}

func maliciousCorpus(t testing.TB) []corpusCase {
	long := strings.Repeat("d/", 2000) // 4000 bytes of path
	return []corpusCase{
		{name: "dot-dot prefix", layers: [][]ent{{file("../evil", "x")}}, wantErr: rootfs.ErrUnsafePath, errName: "../evil"},
		{name: "deep dot-dot", layers: [][]ent{{file("../../../../../../tmp/evil", "x")}}, wantErr: rootfs.ErrUnsafePath, errName: "../../../../../../tmp/evil"},
		{name: "dot-dot inside the name", layers: [][]ent{{dir("a"), file("a/../../evil", "x")}}, wantErr: rootfs.ErrUnsafePath, errName: "a/../../evil"},
		{name: "dot-dot that would stay inside", layers: [][]ent{{file("a/b/../c", "x")}}, wantErr: rootfs.ErrUnsafePath, errName: "a/b/../c"},
		{name: "bare dot-dot directory", layers: [][]ent{{dir("..")}}, wantErr: rootfs.ErrUnsafePath, errName: ".."},
		{name: "dot-dot below an absolute name", layers: [][]ent{{file("/../etc/shadow", "x")}}, wantErr: rootfs.ErrUnsafePath, errName: "/../etc/shadow"},
		{
			name:   "absolute name is made relative",
			layers: [][]ent{{file("/etc/passwd", "root:x:0:0")}},
			want:   []string{"dir etc 0755 implied", `regular etc/passwd 0644 "root:x:0:0"`},
		},
		{
			name:   "write through an absolute symlink from a lower layer",
			layers: [][]ent{{symlink("evil", "/etc")}, {file("evil/passwd", "owned")}},
			want:   []string{"dir etc 0755 implied", `regular etc/passwd 0644 "owned"`, "symlink evil 0777 -> /etc"},
		},
		{
			name:   "write through a relative symlink climbing above the root",
			layers: [][]ent{{symlink("evil", "../../../../..")}, {file("evil/passwd", "owned")}},
			want:   []string{"symlink evil 0777 -> ../../../../..", `regular passwd 0644 "owned"`},
		},
		{
			name:   "write through a symlink of the same layer",
			layers: [][]ent{{symlink("evil", "/"), file("evil/root/.ssh/authorized_keys", "key")}},
			want:   []string{"symlink evil 0777 -> /", "dir root 0755 implied", "dir root/.ssh 0755 implied", `regular root/.ssh/authorized_keys 0644 "key"`},
		},
		{
			name:   "write through a chain of symlinks",
			layers: [][]ent{{symlink("a", "b"), symlink("b", "../../c")}, {file("a/f", "f")}},
			want:   []string{"symlink a 0777 -> b", "symlink b 0777 -> ../../c", "dir c 0755 implied", `regular c/f 0644 "f"`},
		},
		{name: "symlink loop", layers: [][]ent{{symlink("a", "b"), symlink("b", "a")}, {file("a/f", "f")}}, wantErr: rootfs.ErrUnsafePath, errLayer: 1, errName: "a/f"},
		{name: "symlink to itself", layers: [][]ent{{symlink("a", "./a"), file("a/f", "f")}}, wantErr: rootfs.ErrUnsafePath, errName: "a/f"},
		{
			name:     "chain of long symlinks",
			layers:   [][]ent{symlinkChain(40, 300), {file("s00/f", "f")}},
			wantErr:  rootfs.ErrUnsafePath,
			errLayer: 1,
			errName:  "s00/f",
		},
		{
			name:   "short chain of long symlinks",
			layers: [][]ent{symlinkChain(3, 300), {file("s00/f", "f")}},
			want:   []string{"dir d 0755", `regular d/f 0644 "f"`, "symlink s00 0777 -> " + longUp(300) + "s01", "symlink s01 0777 -> " + longUp(300) + "s02", "symlink s02 0777 -> " + longUp(300) + "d"},
		},
		{name: "symlink to a file used as a directory", layers: [][]ent{{file("f", "f"), symlink("l", "f")}, {file("l/x", "x")}}, wantErr: rootfs.ErrInvalidLayer, errLayer: 1, errName: "l/x"},
		{name: "hardlink climbing out of the root", layers: [][]ent{{hardlink("h", "../../etc/shadow")}}, wantErr: rootfs.ErrUnsafePath, errName: "h"},
		{name: "hardlink to a host absolute path", layers: [][]ent{{hardlink("h", "/etc/shadow")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{
			name:   "hardlink to an absolute path inside the root",
			layers: [][]ent{{dir("etc"), file("etc/shadow", "hash")}, {hardlink("h", "/etc/shadow")}},
			want:   []string{"dir etc 0755", `regular etc/shadow 0644 "hash" n=2`, "hardlink h 0644 => etc/shadow n=2"},
		},
		{
			name:   "hardlink through an escaping symlink",
			layers: [][]ent{{symlink("evil", "../../.."), dir("etc"), file("etc/passwd", "p")}, {hardlink("h", "evil/etc/passwd")}},
			want:   []string{"dir etc 0755", `regular etc/passwd 0644 "p" n=2`, "symlink evil 0777 -> ../../..", "hardlink h 0644 => etc/passwd n=2"},
		},
		{name: "hardlink to a missing target", layers: [][]ent{{hardlink("h", "nothing")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{name: "hardlink before its target", layers: [][]ent{{hardlink("h", "later"), file("later", "x")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{
			name:     "hardlink to a path its own layer whites out",
			layers:   [][]ent{{dir("d"), file("d/f", "f")}, {hardlink("h", "d/f"), whiteout("d")}},
			wantErr:  rootfs.ErrInvalidLayer,
			errLayer: 1,
			errName:  "h",
		},
		{name: "hardlink to a directory", layers: [][]ent{{dir("d"), hardlink("h", "d")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{name: "hardlink to the root", layers: [][]ent{{hardlink("h", "./")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{name: "whiteout naming dot-dot", layers: [][]ent{{file("x", "x")}, {file(".wh...", "")}}, wantErr: rootfs.ErrUnsafePath, errLayer: 1, errName: ".wh..."},
		{name: "whiteout naming dot", layers: [][]ent{{dir("a")}, {file("a/.wh..", "")}}, wantErr: rootfs.ErrUnsafePath, errLayer: 1, errName: "a/.wh.."},
		{name: "whiteout without a name", layers: [][]ent{{file(".wh.", "")}}, wantErr: rootfs.ErrInvalidLayer, errName: ".wh."},
		{name: "whiteout above the root", layers: [][]ent{{file("../.wh.etc", "")}}, wantErr: rootfs.ErrUnsafePath, errName: "../.wh.etc"},
		{
			name:   "whiteout through an escaping symlink",
			layers: [][]ent{{symlink("evil", "/etc"), dir("etc"), file("etc/passwd", "p"), file("etc/group", "g")}, {file("evil/.wh.passwd", "")}},
			want:   []string{"dir etc 0755", `regular etc/group 0644 "g"`, "symlink evil 0777 -> /etc"},
		},
		{
			name:   "whiteout with slash and dot tricks",
			layers: [][]ent{{dir("a"), file("a/b", "b"), file("a/c", "c")}, {file("./a//./.wh.b", "")}},
			want:   []string{"dir a 0755", `regular a/c 0644 "c"`},
		},
		{name: "whiteout name used as a directory", layers: [][]ent{{file(".wh.x/y", "y")}}, wantErr: rootfs.ErrInvalidLayer, errName: ".wh.x/y"},
		{name: "whiteout through a symlink loop", layers: [][]ent{{symlink("a", "b"), symlink("b", "a")}, {whiteout("a/x")}}, wantErr: rootfs.ErrUnsafePath, errLayer: 1, errName: "a/.wh.x"},
		{name: "whiteout name reached through a symlink", layers: [][]ent{{symlink("l", ".wh.x")}, {file("l/y", "y")}}, wantErr: rootfs.ErrInvalidLayer, errLayer: 1, errName: "l/y"},
		{name: "hardlink to the root", layers: [][]ent{{hardlink("h", "./")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{name: "hardlink to a directory", layers: [][]ent{{dir("d"), hardlink("h", "d")}}, wantErr: rootfs.ErrInvalidLayer, errName: "h"},
		{name: "NUL byte in a PAX path", raw: [][]byte{paxWithPath("evil\x00/../../etc/passwd")}, wantErr: rootfs.ErrInvalidLayer},
		{
			name: "NUL byte in a ustar name ends the name",
			raw:  [][]byte{ustarBlock("a\x00/../../../etc/passwd", tar.TypeReg, 0)},
			want: []string{`regular a 0644 ""`},
		},
		{name: "name longer than PATH_MAX", layers: [][]ent{{file(strings.Repeat("n/", 2500)+"f", "x")}}, wantErr: rootfs.ErrUnsafePath},
		{name: "component longer than NAME_MAX", layers: [][]ent{{file(strings.Repeat("n", 300), "x")}}, wantErr: rootfs.ErrUnsafePath},
		{
			name:     "symlink making a resolved path longer than PATH_MAX",
			layers:   [][]ent{{symlink("l", "/"+long)}, {file("l/"+strings.Repeat("x", 200), "x")}},
			wantErr:  rootfs.ErrUnsafePath,
			errLayer: 1,
			errName:  "l/" + strings.Repeat("x", 200),
		},
		{name: "symlink target of PATH_MAX bytes", layers: [][]ent{{symlink("l", strings.Repeat("t/", 2048))}}, wantErr: rootfs.ErrUnsafePath, errName: "l"},
		{name: "symlink target component longer than NAME_MAX", layers: [][]ent{{symlink("l", "/"+strings.Repeat("t", 300)), file("l/f", "f")}}, wantErr: rootfs.ErrUnsafePath, errName: "l/f"},
		{
			name: "device nodes stay metadata",
			layers: [][]ent{{
				{hdr: tar.Header{Typeflag: tar.TypeBlock, Name: "dev/sda", Mode: 0o666, Devmajor: 8}},
				{hdr: tar.Header{Typeflag: tar.TypeChar, Name: "dev/kmem", Mode: 0o666, Devmajor: 1, Devminor: 2}},
			}},
			want: []string{"dir dev 0755 implied", "char dev/kmem 0666 1:2", "block dev/sda 0666 8:0"},
		},
		{
			name:   "setuid root shell is kept as data",
			layers: [][]ent{{withMode(file("bin/sh", "#!"), 0o6755)}},
			want:   []string{"dir bin 0755 implied", `regular bin/sh 6755 "#!"`},
		},
		{name: "file as the root", layers: [][]ent{{file(".", "x")}}, wantErr: rootfs.ErrInvalidLayer, errName: "."},
		{name: "symlink as the root", layers: [][]ent{{symlink("/", "/tmp")}}, wantErr: rootfs.ErrInvalidLayer, errName: "/"},
		{
			name:   "duplicate entry turns a file into a symlink",
			layers: [][]ent{{file("x", "x"), symlink("x", "/etc/shadow")}},
			want:   []string{"symlink x 0777 -> /etc/shadow"},
		},
		{
			name:   "entries under a directory whited out in the same layer",
			layers: [][]ent{{dir("d"), file("d/secret", "s")}, {file("d/new", "n"), whiteout("d")}},
			want:   []string{"dir d 0755 implied", `regular d/new 0644 "n"`},
		},
		{
			name:   "directory entry replaces an escaping symlink",
			layers: [][]ent{{symlink("evil", "/etc")}, {dir("evil"), file("evil/x", "x")}},
			want:   []string{"dir evil 0755", `regular evil/x 0644 "x"`},
		},
		{
			name:   "file entry replaces a symlink instead of writing through it",
			layers: [][]ent{{dir("etc"), file("etc/passwd", "p"), symlink("evil", "/etc/passwd")}, {file("evil", "x")}},
			want:   []string{"dir etc 0755", `regular etc/passwd 0644 "p"`, `regular evil 0644 "x"`},
		},
		{
			name:   "hardlink created through a symlinked parent",
			layers: [][]ent{{symlink("evil", "/"), file("f", "f")}, {hardlink("evil/h", "f")}},
			want:   []string{"symlink evil 0777 -> /", `regular f 0644 "f" n=2`, "hardlink h 0644 => f n=2"},
		},
		{name: "truncated layer", raw: [][]byte{truncated(t)}, wantErr: rootfs.ErrInvalidLayer},
		{name: "unsupported entry type", raw: [][]byte{ustarBlock("volume", 'V', 0)}, wantErr: rootfs.ErrInvalidLayer, errName: "volume"},
		{name: "negative owner", raw: [][]byte{paxRecords("f", map[string]string{"uid": "-1"})}, wantErr: rootfs.ErrInvalidLayer, errName: "f"},
		{name: "owner beyond 32 bits", raw: [][]byte{paxRecords("f", map[string]string{"gid": "4294967296"})}, wantErr: rootfs.ErrInvalidLayer, errName: "f"},
	}
}

// TestMaliciousCorpus runs every corpus case with the working directory in an
// empty temporary directory, and checks that each either fails with the right
// typed error or yields a tree that stays inside its root, and that nothing
// appeared on the host.
func TestMaliciousCorpus(t *testing.T) {
	corpus := maliciousCorpus(t)
	require.GreaterOrEqual(t, len(corpus), 20)

	work := t.TempDir()
	outside := filepath.Dir(work)
	before := dirNames(t, outside)
	t.Chdir(work)

	for _, tt := range corpus {
		t.Run(tt.name, func(t *testing.T) {
			tree, err := rootfs.Flatten(t.Context(), tt.stack(t))
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var le *rootfs.LayerError
				require.ErrorAs(t, err, &le)
				assert.Equal(t, tt.errLayer, le.Layer)
				if tt.errName != "" {
					assert.Equal(t, tt.errName, le.Name)
				}
				assert.NotEmpty(t, le.Reason)
				t.Logf("rejected: %v", err)
				return
			}
			require.NoError(t, err)
			checkContained(t, tree)
			got, want := listing(t, tree), append([]string{rootLine}, tt.want...)
			assert.Equal(t, want, got)
		})
	}

	entries, err := os.ReadDir(work)
	require.NoError(t, err)
	assert.Empty(t, entries, "files appeared in the working directory")
	assert.Equal(t, before, dirNames(t, outside), "files appeared next to the working directory")
}

// symlinkChain is a directory d and n symlinks s00 … that lead to it one by
// one, each climbing up ups levels first.
func symlinkChain(n, ups int) []ent {
	out := []ent{dir("d")}
	for i := range n {
		next := fmt.Sprintf("s%02d", i+1)
		if i == n-1 {
			next = "d"
		}
		out = append(out, symlink(fmt.Sprintf("s%02d", i), longUp(ups)+next))
	}
	return out
}

func longUp(n int) string { return strings.Repeat("../", n) }

func dirNames(t testing.TB, dir string) []string {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var names []string
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// ustarBlock writes one raw ustar header (and its zero-filled content), then the
// end-of-archive blocks, bypassing archive/tar's writer checks.
func ustarBlock(name string, typeflag byte, size int) []byte {
	var b [512]byte
	copy(b[0:100], name)
	copy(b[100:108], "0000644\x00")
	copy(b[108:116], "0000000\x00")
	copy(b[116:124], "0000000\x00")
	copy(b[124:136], fmt.Sprintf("%011o\x00", size))
	copy(b[136:148], "00000000000\x00")
	b[156] = typeflag
	copy(b[257:263], "ustar\x00")
	copy(b[263:265], "00")
	copy(b[148:156], "        ")
	sum := 0
	for _, c := range b {
		sum += int(c)
	}
	copy(b[148:156], fmt.Sprintf("%06o\x00 ", sum))
	out := append(b[:], make([]byte, (size+511)/512*512)...)
	return append(out, make([]byte, 1024)...)
}

// paxRecords writes a raw PAX extended header with records, followed by an empty
// regular file called name.
func paxRecords(name string, records map[string]string) []byte {
	return append(paxEntry(name, records, ""), make([]byte, 1024)...)
}

// paxEntry writes a raw PAX extended header with records and a regular file
// called name holding body, without the end-of-archive blocks.
func paxEntry(name string, records map[string]string, body string) []byte {
	var pax strings.Builder
	for _, k := range slices.Sorted(maps.Keys(records)) {
		rec := " " + k + "=" + records[k] + "\n"
		// The length prefix counts itself.
		n := len(rec) + 1
		for len(rec)+len(strconv.Itoa(n)) != n {
			n = len(rec) + len(strconv.Itoa(n))
		}
		pax.WriteString(strconv.Itoa(n) + rec)
	}
	x := ustarBlock("PaxHeaders/"+name, tar.TypeXHeader, pax.Len())
	x = x[:len(x)-1024]
	copy(x[512:], pax.String())
	f := ustarBlock(name, tar.TypeReg, len(body))
	f = f[:len(f)-1024]
	copy(f[512:], body)
	return append(x, f...)
}

func paxWithPath(p string) []byte {
	return paxRecords("placeholder", map[string]string{"path": p})
}

// truncated is a valid layer cut in the middle of a file's content.
func truncated(t testing.TB) []byte {
	b := tarBytes(t, file("a", strings.Repeat("a", 2000)))
	return b[:1000]
}

func TestCorpusHelpersProduceWhatArchiveTarReads(t *testing.T) {
	h, err := tar.NewReader(strings.NewReader(string(paxRecords("f", map[string]string{"uid": "7"})))).Next()
	require.NoError(t, err)
	assert.Equal(t, 7, h.Uid)
	_, err = tar.NewReader(strings.NewReader(string(paxWithPath("a\x00b")))).Next()
	assert.True(t, errors.Is(err, tar.ErrHeader), "got %v", err)
}
