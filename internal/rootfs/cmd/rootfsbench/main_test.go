package main

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/testenv"
)

func TestMain(m *testing.M) {
	testenv.RunAsCommand(main)
	os.Exit(m.Run())
}

// command runs the command as a process and returns its stderr and exit code.
func command(t *testing.T, args ...string) (string, int) {
	t.Helper()
	code, _, stderr := testenv.Command(t, args...)
	return stderr, code
}

// entry is one line of a listing.
type entry struct {
	typ      rune
	mode     int64
	uid, gid int
	size     int64
	link     string
	sum      string // hex SHA-256 of the content, "-" for all but regular files
}

// readListing parses a -list file, checking that it is sorted and each path once.
func readListing(t *testing.T, p string) map[string]entry {
	t.Helper()
	b, err := os.ReadFile(p)
	require.NoError(t, err)
	require.True(t, bytes.HasSuffix(b, []byte("\n")) || len(b) == 0, "listing ends in a newline")
	lines := strings.Split(strings.TrimSuffix(string(b), "\n"), "\n")
	require.True(t, slices.IsSorted(lines), "listing is sorted")
	out := map[string]entry{}
	for _, line := range lines {
		var name string
		var e entry
		n, err := fmt.Sscanf(line, "%q %c %o %d:%d %d %q %s", &name, &e.typ, &e.mode, &e.uid, &e.gid, &e.size, &e.link, &e.sum)
		require.NoError(t, err, "line %q", line)
		require.Equal(t, 8, n)
		require.NotContains(t, out, name, "listed twice")
		out[name] = e
	}
	return out
}

func sum(s string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(s))) }

func file(mode int64, content string) entry {
	return entry{typ: tar.TypeReg, mode: mode, size: int64(len(content)), sum: sum(content)}
}

func dir(mode int64) entry { return entry{typ: tar.TypeDir, mode: mode, sum: "-"} }

// merge writes both sides' listings of the layout and checks that they are the same
// bytes; it returns the parsed listing.
func merge(t *testing.T, layout string) map[string]entry {
	t.Helper()
	tmp := t.TempDir()
	ours, peer := filepath.Join(tmp, "ours.list"), filepath.Join(tmp, "peer.list")
	require.NoError(t, run(t.Context(), layout, ours, "", size{}, []string{"flatten"}))
	require.NoError(t, run(t.Context(), layout, peer, "", size{}, []string{"extract"}))
	a, err := os.ReadFile(ours)
	require.NoError(t, err)
	b, err := os.ReadFile(peer)
	require.NoError(t, err)
	require.Equal(t, string(b), string(a), "flatten and extract listings differ")
	return readListing(t, ours)
}

// syntheticWant is what the synthetic image's layers say the merged tree holds: the
// directories, every file whose number ends in 1 whited out, those ending in 0 as
// the top layer wrote them, the others as the bottom layer did.
func syntheticWant(sz size) map[string]entry {
	want := map[string]entry{}
	for d := range sz.dirs {
		name := fmt.Sprintf("usr/share/d%03d", d)
		want[name] = dir(0o755)
		for f := range sz.files {
			fn := fmt.Sprintf("%s/f%03d", name, f)
			switch f % 10 {
			case 1:
			case 0:
				want[fn] = file(0o644, "layer 2 file "+fn+", some bytes of content")
			default:
				want[fn] = file(0o644, "layer 0 file "+fn+", some bytes of content")
			}
		}
	}
	return want
}

func TestSynthetic(t *testing.T) {
	for _, sz := range []size{{1, 1}, {1, 2}, {2, 12}, {3, 21}} {
		t.Run(fmt.Sprintf("%dx%d", sz.dirs, sz.files), func(t *testing.T) {
			layout := filepath.Join(t.TempDir(), "oci")
			require.NoError(t, run(t.Context(), layout, "", "", sz, []string{"gen"}))
			img, err := benchlayout.Read(layout)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			assert.Len(t, layers, 3)
			assert.Equal(t, syntheticWant(sz), merge(t, layout))
		})
	}
}

// syntheticLayers writes, per layer, exactly the entries the benchmark describes.
func TestSyntheticLayerEntries(t *testing.T) {
	layers := syntheticLayers(size{dirs: 2, files: 12})
	require.Len(t, layers, 3)
	for li, write := range layers {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		require.NoError(t, write(tw))
		require.NoError(t, tw.Close())
		var got []string
		tr := tar.NewReader(&buf)
		for {
			hdr, err := tr.Next()
			if err == io.EOF {
				break
			}
			require.NoError(t, err)
			got = append(got, hdr.Name)
		}
		var want []string
		for d := range 2 {
			want = append(want, fmt.Sprintf("usr/share/d%03d/", d))
			for f := range 12 {
				switch {
				case li == 0 || f%10 == 0:
					want = append(want, fmt.Sprintf("usr/share/d%03d/f%03d", d, f))
				case f%10 == 1:
					want = append(want, fmt.Sprintf("usr/share/d%03d/.wh.f%03d", d, f))
				}
			}
		}
		assert.Equal(t, want, got, "layer %d", li)
	}
}

// realTree writes a source tree under root: nested directories with modes of
// their own, regular files of several sizes and modes, and a symlink.
func realTree(t *testing.T, src string, files int) {
	t.Helper()
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub", "deep"), 0o755))
	require.NoError(t, os.Chmod(filepath.Join(src, "sub"), 0o750))
	for i := range files {
		p := filepath.Join(src, fmt.Sprintf("f%02d", i))
		switch i % 3 {
		case 1:
			p = filepath.Join(src, "sub", fmt.Sprintf("f%02d", i))
		case 2:
			p = filepath.Join(src, "sub", "deep", fmt.Sprintf("f%02d", i))
		}
		require.NoError(t, os.WriteFile(p, bytes.Repeat([]byte{byte('a' + i)}, 100*i), 0o644))
		if i%4 == 3 {
			require.NoError(t, os.Chmod(p, 0o755))
		}
	}
	require.NoError(t, os.Symlink("sub/deep", filepath.Join(src, "link")))
}

// realWant walks src as the layers name it (from root) and applies the last
// layer's changes: every tenth regular file replaced, the one after it whited out.
func realWant(t *testing.T, root, src string, want map[string]entry) {
	t.Helper()
	n := 0
	require.NoError(t, filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		require.NoError(t, err)
		rel, err := filepath.Rel(root, p)
		require.NoError(t, err)
		fi, err := d.Info()
		require.NoError(t, err)
		st := fi.Sys().(*syscall.Stat_t)
		e := entry{mode: int64(fi.Mode().Perm()), uid: int(st.Uid), gid: int(st.Gid), sum: "-"}
		switch {
		case fi.IsDir():
			e.typ = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.typ = tar.TypeSymlink
			e.link, err = os.Readlink(p)
			require.NoError(t, err)
		default:
			b, err := os.ReadFile(p)
			require.NoError(t, err)
			e.typ, e.size, e.sum = tar.TypeReg, int64(len(b)), sum(string(b))
			switch n++; n % 10 {
			case 0:
				e = file(0o644, "replaced in the upper layer\n")
			case 1:
				return nil
			}
		}
		want[filepath.ToSlash(rel)] = e
		return nil
	}))
}

func TestReal(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "real")
	a, c := filepath.Join(root, "a", "b"), filepath.Join(root, "c")
	realTree(t, a, 25)
	realTree(t, c, 11)

	t.Run("root", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		require.NoError(t, run(t.Context(), layout, "", root, size{}, []string{"gen", a, c}))
		img, err := benchlayout.Read(layout)
		require.NoError(t, err)
		layers, err := img.Layers()
		require.NoError(t, err)
		assert.Len(t, layers, 3, "one layer per source and one of changes")
		want := map[string]entry{}
		realWant(t, root, a, want)
		realWant(t, root, c, want)
		got := merge(t, layout)
		assert.Equal(t, want, got)
		assert.NotContains(t, got, "a", "a directory no layer holds is not listed")
	})
	t.Run("base name", func(t *testing.T) {
		layout := filepath.Join(t.TempDir(), "oci")
		require.NoError(t, run(t.Context(), layout, "", "", size{}, []string{"gen", a}))
		want := map[string]entry{}
		realWant(t, filepath.Dir(a), a, want)
		assert.Equal(t, want, merge(t, layout))
	})
}

// TestEntryTypes merges a hand-written image with every entry type both sides list:
// hardlinks (listed without size, even where the layer records the inode's), devices,
// FIFOs, and a setuid file. The hardlink that records a size comes last: for it
// mutate.Extract copies that many bytes from an entry that has none, and the io.EOF
// it gets ends its stream as if the merge were complete, dropping every entry after. (Flatten names
// the path that sorts first as a hardlinked inode's, Extract the first in the layer:
// the link sorts after its target here so that both agree.)
func TestEntryTypes(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	require.NoError(t, benchlayout.Write(layout, []benchlayout.Layer{func(tw *tar.Writer) error {
		for _, h := range []*tar.Header{
			{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "bin/tool", Typeflag: tar.TypeReg, Mode: 0o4755, Uid: 7, Gid: 8, Size: 5},
			{Name: "dev/", Typeflag: tar.TypeDir, Mode: 0o755},
			{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3},
			{Name: "dev/loop0", Typeflag: tar.TypeBlock, Mode: 0o660, Devmajor: 7},
			{Name: "dev/fifo", Typeflag: tar.TypeFifo, Mode: 0o600},
			{Name: "bin/tool2", Typeflag: tar.TypeLink, Linkname: "bin/tool", Mode: 0o4755, Uid: 7, Gid: 8, Size: 5},
		} {
			if err := tw.WriteHeader(h); err != nil {
				return err
			}
			if h.Typeflag == tar.TypeReg {
				if _, err := io.WriteString(tw, "hello"); err != nil {
					return err
				}
			}
		}
		return nil
	}}))
	got := merge(t, layout)
	assert.Equal(t, map[string]entry{
		"bin":       dir(0o755),
		"bin/tool":  {typ: tar.TypeReg, mode: 0o4755, uid: 7, gid: 8, size: 5, sum: sum("hello")},
		"bin/tool2": {typ: tar.TypeLink, mode: 0o4755, uid: 7, gid: 8, link: "bin/tool", sum: "-"},
		"dev":       dir(0o755),
		"dev/null":  {typ: tar.TypeChar, mode: 0o666, sum: "-"},
		"dev/loop0": {typ: tar.TypeBlock, mode: 0o660, sum: "-"},
		"dev/fifo":  {typ: tar.TypeFifo, mode: 0o600, sum: "-"},
	}, got)
}

// TestHardlinkOrder: the one place where the listings differ. Flatten lists a
// hardlinked inode under the path that sorts first and the other paths as links to
// it; Extract lists it under the path the layer wrote first.
func TestHardlinkOrder(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	require.NoError(t, benchlayout.Write(layout, []benchlayout.Layer{func(tw *tar.Writer) error {
		if err := writeFile(tw, "z-file", "hello"); err != nil {
			return err
		}
		return tw.WriteHeader(&tar.Header{Name: "a-link", Typeflag: tar.TypeLink, Linkname: "z-file", Mode: 0o644})
	}}))
	tmp := t.TempDir()
	ours, peer := filepath.Join(tmp, "ours.list"), filepath.Join(tmp, "peer.list")
	require.NoError(t, run(t.Context(), layout, ours, "", size{}, []string{"flatten"}))
	require.NoError(t, run(t.Context(), layout, peer, "", size{}, []string{"extract"}))
	hello := file(0o644, "hello")
	assert.Equal(t, map[string]entry{
		"a-link": hello,
		"z-file": {typ: tar.TypeLink, mode: 0o644, link: "a-link", sum: "-"},
	}, readListing(t, ours))
	assert.Equal(t, map[string]entry{
		"a-link": {typ: tar.TypeLink, mode: 0o644, link: "z-file", sum: "-"},
		"z-file": hello,
	}, readListing(t, peer))
}

// TestNoList reads every file and writes nothing beside the layout.
func TestNoList(t *testing.T) {
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "oci")
	require.NoError(t, run(t.Context(), layout, "", "", size{2, 3}, []string{"gen"}))
	for _, cmd := range []string{"flatten", "extract"} {
		require.NoError(t, run(t.Context(), layout, "", "", size{}, []string{cmd}), cmd)
	}
	names, err := os.ReadDir(tmp)
	require.NoError(t, err)
	require.Len(t, names, 1)
}

// TestDiscardReadsContent: without -list every file is still read, and a read error
// is returned.
func TestDiscardReadsContent(t *testing.T) {
	r := strings.NewReader("content")
	require.NoError(t, discard{}.add("f", tar.TypeReg, 0o644, 0, 0, 7, "", r))
	assert.Zero(t, r.Len(), "content read to the end")
	require.NoError(t, discard{}.add("d", tar.TypeDir, 0o755, 0, 0, 0, "", nil))
	boom := errors.New("boom")
	require.ErrorIs(t, discard{}.add("f", tar.TypeReg, 0o644, 0, 0, 7, "", iotest.ErrReader(boom)), boom)
	var l listing
	require.ErrorIs(t, l.add("f", tar.TypeReg, 0o644, 0, 0, 7, "", iotest.ErrReader(boom)), boom)
	assert.Empty(t, l.lines)
}

// failLister fails on the entry named fail.
type failLister struct{ fail string }

var errList = errors.New("listing failed")

func (f failLister) add(name string, _ byte, _ int64, _, _ int, _ int64, _ string, content io.Reader) error {
	if name == f.fail {
		return errList
	}
	return discard{}.add("", 0, 0, 0, 0, 0, "", content)
}

// openUnder counts the process's open files under dir.
func openUnder(t *testing.T, dir string) int {
	t.Helper()
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	n := 0
	for _, fd := range fds {
		if p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name())); err == nil && strings.HasPrefix(p, dir+"/") {
			n++
		}
	}
	return n
}

// TestListerError: a lister's error, for a file or another entry, stops the merge
// and is what the merge returns; the merge Extract was writing is stopped, so that
// it closes the layer it was reading.
func TestListerError(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	require.NoError(t, run(t.Context(), layout, "", "", size{2, 3}, []string{"gen"}))
	img, err := benchlayout.Read(layout)
	require.NoError(t, err)
	for _, name := range []string{"usr/share/d001", "usr/share/d000/f002"} {
		require.ErrorIs(t, flatten(t.Context(), img, failLister{name}), errList, name)
		require.ErrorIs(t, extract(img, failLister{name}), errList, name)
		require.Eventually(t, func() bool { return openUnder(t, layout) == 0 }, 10*time.Second, 10*time.Millisecond,
			"extract left a layer open after %s", name)
	}
}

// names lists the paths only, reading no content.
type names []string

func (n *names) add(name string, _ byte, _ int64, _, _ int, _ int64, _ string, _ io.Reader) error {
	*n = append(*n, name)
	return nil
}

// TestTruncatedLayer: a layer cut off in the middle of a file fails both merges,
// whether or not the lister reads the file.
func TestTruncatedLayer(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	content := make([]byte, 256<<10)
	for i := range content {
		content[i] = byte(i*i>>7) ^ byte(i>>11)
	}
	require.NoError(t, benchlayout.Write(layout, []benchlayout.Layer{func(tw *tar.Writer) error {
		if err := writeFile(tw, "before", "x"); err != nil {
			return err
		}
		return writeFile(tw, "big", string(content))
	}}))
	img, err := benchlayout.Read(layout)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	d, err := layers[0].Digest()
	require.NoError(t, err)
	blob := filepath.Join(layout, "blobs", d.Algorithm, d.Hex)
	fi, err := os.Stat(blob)
	require.NoError(t, err)
	require.NoError(t, os.Truncate(blob, fi.Size()/2))

	for _, cmd := range []string{"flatten", "extract"} {
		err := run(t.Context(), layout, filepath.Join(t.TempDir(), "list"), "", size{}, []string{cmd})
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF, cmd)
	}
	var n names
	require.ErrorIs(t, extract(img, &n), io.ErrUnexpectedEOF)
	assert.Equal(t, names{"before", "big"}, n)
}

func TestRunErrors(t *testing.T) {
	tmp := t.TempDir()
	layout := filepath.Join(tmp, "oci")
	require.NoError(t, run(t.Context(), layout, "", "", size{1, 2}, []string{"gen"}))
	regular := filepath.Join(tmp, "regular")
	require.NoError(t, os.WriteFile(regular, nil, 0o644))
	garbled := filepath.Join(tmp, "garbled")
	require.NoError(t, run(t.Context(), garbled, "", "", size{1, 2}, []string{"gen"}))
	img, err := benchlayout.Read(garbled)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	d, err := layers[1].Digest()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(garbled, "blobs", d.Algorithm, d.Hex), []byte("not a gzip stream"), 0o644))
	badManifest := filepath.Join(tmp, "bad-manifest")
	require.NoError(t, run(t.Context(), badManifest, "", "", size{1, 2}, []string{"gen"}))
	img, err = benchlayout.Read(badManifest)
	require.NoError(t, err)
	d, err = img.Digest()
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(badManifest, "blobs", d.Algorithm, d.Hex), []byte("{garbled"), 0o644))

	for _, tc := range []struct {
		name, dir, list, root string
		args                  []string
		want                  string
	}{
		{name: "no layout", args: []string{"gen"}, want: "usage: rootfsbench"},
		{name: "no command", dir: layout, want: "usage: rootfsbench"},
		{name: "unknown command", dir: layout, args: []string{"merge"}, want: `unknown command "merge"`},
		{name: "flatten with argument", dir: layout, args: []string{"flatten", "x"}, want: `unknown command "flatten x"`},
		{name: "extract with argument", dir: layout, args: []string{"extract", "x"}, want: `unknown command "extract x"`},
		{name: "gen under a file", dir: filepath.Join(regular, "oci"), args: []string{"gen"}, want: "not a directory"},
		{name: "gen real under a file", dir: filepath.Join(regular, "oci"), args: []string{"gen", tmp + "/oci"}, want: "not a directory"},
		{name: "gen missing source", dir: filepath.Join(tmp, "new"), args: []string{"gen", filepath.Join(tmp, "missing")}, want: "no such file"},
		{name: "flatten missing layout", dir: filepath.Join(tmp, "missing"), args: []string{"flatten"}, want: "no such file"},
		{name: "extract missing layout", dir: filepath.Join(tmp, "missing"), args: []string{"extract"}, want: "no such file"},
		{name: "flatten list under a file", dir: layout, list: filepath.Join(regular, "l"), args: []string{"flatten"}, want: "not a directory"},
		{name: "extract list under a file", dir: layout, list: filepath.Join(regular, "l"), args: []string{"extract"}, want: "not a directory"},
		{name: "flatten garbled manifest", dir: badManifest, args: []string{"flatten"}, want: "invalid character"},
		{name: "extract garbled manifest", dir: badManifest, args: []string{"extract"}, want: "invalid character"},
		{name: "flatten garbled layer", dir: garbled, list: filepath.Join(tmp, "g.list"), args: []string{"flatten"}, want: "unexpected EOF"},
		{name: "extract garbled layer", dir: garbled, list: filepath.Join(tmp, "g.list"), args: []string{"extract"}, want: "unexpected EOF"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := run(t.Context(), tc.dir, tc.list, tc.root, size{1, 2}, tc.args)
			require.Error(t, err)
			assert.Contains(t, err.Error(), tc.want)
		})
	}
	_, err = os.Stat(filepath.Join(tmp, "g.list"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "no listing of a layout that cannot be read")
}

// TestChangesErrors: a source that cannot be walked or named from root fails the
// layer of changes.
func TestChangesErrors(t *testing.T) {
	tmp := t.TempDir()
	realTree(t, filepath.Join(tmp, "src"), 3)
	tw := tar.NewWriter(io.Discard)
	require.ErrorIs(t, changes("", filepath.Join(tmp, "missing"), tw), fs.ErrNotExist)
	require.ErrorContains(t, changes("relative", filepath.Join(tmp, "src"), tw), "relative")
	require.NoError(t, tw.Close())
	require.Error(t, changes(tmp, filepath.Join(tmp, "src"), tw), "writing to a closed layer")
}

// failAfter accepts n bytes, then fails every write, as a full disk does.
type failAfter struct{ n int }

var errFull = errors.New("no space left")

func (f *failAfter) Write(b []byte) (int, error) {
	if len(b) > f.n {
		n := f.n
		f.n = 0
		return n, errFull
	}
	f.n -= len(b)
	return len(b), nil
}

// TestWriteFull: a layer that fails to be written at any point, in a header, in a
// file's content or in its padding, reports the failure.
func TestWriteFull(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	realTree(t, src, 12)
	layers := map[string][]benchlayout.Layer{
		"synthetic": syntheticLayers(size{1, 12}),
		"real":      realLayers("", []string{src}),
	}
	for name, layers := range layers {
		for li, write := range layers {
			var buf bytes.Buffer
			require.NoError(t, write(tar.NewWriter(&buf)))
			for n := 0; n < buf.Len(); n += 97 {
				require.ErrorIs(t, write(tar.NewWriter(&failAfter{n})), errFull, "%s layer %d failing after %d of %d bytes", name, li, n, buf.Len())
			}
		}
	}
}

func TestWriteErrors(t *testing.T) {
	tw := tar.NewWriter(io.Discard)
	require.NoError(t, tw.Close())
	require.ErrorIs(t, writeFile(tw, "f", "x"), tar.ErrWriteAfterClose)
	require.ErrorIs(t, writeWhiteout(tw, "f"), tar.ErrWriteAfterClose)
	for li, write := range syntheticLayers(size{1, 2}) {
		require.ErrorIs(t, write(tw), tar.ErrWriteAfterClose, "layer %d", li)
	}
	src := filepath.Join(t.TempDir(), "src")
	realTree(t, src, 1)
	for li, write := range realLayers("", []string{src}) {
		require.Error(t, write(tw), "layer %d", li)
	}
}

func TestCommand(t *testing.T) {
	tmp := t.TempDir()
	root := filepath.Join(tmp, "real")
	src := filepath.Join(root, "x", "src")
	realTree(t, src, 12)
	layout := filepath.Join(tmp, "oci")

	stderr, code := command(t, "-layout", layout, "-root", root, "gen", src)
	require.Equal(t, 0, code, stderr)
	assert.Empty(t, stderr)
	stderr, code = command(t, "-layout", layout, "-list", filepath.Join(tmp, "ours.list"), "flatten")
	require.Equal(t, 0, code, stderr)
	want := map[string]entry{}
	realWant(t, root, src, want)
	assert.Equal(t, want, readListing(t, filepath.Join(tmp, "ours.list")))

	stderr, code = command(t)
	assert.Equal(t, 1, code)
	assert.Equal(t, "rootfsbench: usage: rootfsbench -layout DIR gen [SRC...] | flatten | extract\n", stderr)
}

// TestFilesClosed: both merges close every layer blob they open.
func TestFilesClosed(t *testing.T) {
	layout := filepath.Join(t.TempDir(), "oci")
	require.NoError(t, run(t.Context(), layout, "", "", size{2, 3}, []string{"gen"}))
	for _, cmd := range []string{"flatten", "extract"} {
		left := testenv.FilesLeftOpen(t, layout, func() {
			require.NoError(t, run(context.Background(), layout, "", "", size{}, []string{cmd}))
		})
		assert.Empty(t, left, cmd)
	}
}
