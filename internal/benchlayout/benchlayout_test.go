package benchlayout_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/benchlayout"
	"github.com/hpcship/hpcship/internal/testenv"
)

// TestWriteRead writes a layer of a directory tree and one written by hand, and reads
// both back from the layout in order, gzip'd with the OCI media types.
func TestWriteRead(t *testing.T) {
	src := filepath.Join(t.TempDir(), "src")
	require.NoError(t, os.MkdirAll(filepath.Join(src, "sub"), 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(src, "sub", "file"), []byte("content"), 0o640))
	require.NoError(t, os.Symlink("sub/file", filepath.Join(src, "link")))

	tests := []struct {
		name string
		root string
		want []string
	}{
		{name: "names from the parent", want: []string{"src/", "src/link -> sub/file", "src/sub/", "src/sub/file = content"}},
		{name: "names from the source", root: src, want: []string{"./", "link -> sub/file", "sub/", "sub/file = content"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "oci")
			err := benchlayout.Write(dir, []benchlayout.Layer{
				func(tw *tar.Writer) error { return benchlayout.AddTree(tw, tt.root, src) },
				func(tw *tar.Writer) error {
					if err := tw.WriteHeader(&tar.Header{Name: "top", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg}); err != nil {
						return err
					}
					_, err := io.WriteString(tw, "top")
					return err
				},
			})
			require.NoError(t, err)

			img, err := benchlayout.Read(dir)
			require.NoError(t, err)
			mt, err := img.MediaType()
			require.NoError(t, err)
			assert.Equal(t, types.OCIManifestSchema1, mt)
			m, err := img.Manifest()
			require.NoError(t, err)
			assert.Equal(t, types.OCIConfigJSON, m.Config.MediaType)
			layers, err := img.Layers()
			require.NoError(t, err)
			require.Len(t, layers, 2)
			for _, l := range layers {
				mt, err := l.MediaType()
				require.NoError(t, err)
				assert.Equal(t, types.OCILayer, mt)
			}
			assert.Equal(t, tt.want, listLayer(t, layers[0].Uncompressed))
			assert.Equal(t, []string{"top = top"}, listLayer(t, layers[1].Uncompressed))
		})
	}
}

func TestWriteFails(t *testing.T) {
	errLayer := errors.New("no more data")
	dir := filepath.Join(t.TempDir(), "oci")
	err := benchlayout.Write(dir, []benchlayout.Layer{
		func(*tar.Writer) error { return nil },
		func(*tar.Writer) error { return errLayer },
	})
	require.ErrorIs(t, err, errLayer)
	assert.Contains(t, err.Error(), "writing layer 1")
	_, err = os.Stat(dir)
	require.ErrorIs(t, err, os.ErrNotExist, "no layout is left")

	err = benchlayout.Write(dir, []benchlayout.Layer{func(tw *tar.Writer) error {
		return benchlayout.AddTree(tw, "", filepath.Join(t.TempDir(), "missing"))
	}})
	require.ErrorIs(t, err, os.ErrNotExist)
}

func TestReadWantsOneImage(t *testing.T) {
	dir := t.TempDir()
	p, err := layout.Write(dir, empty.Index)
	require.NoError(t, err)
	_, err = benchlayout.Read(dir)
	require.ErrorContains(t, err, "holds 0 manifests, want 1")

	require.NoError(t, p.AppendImage(empty.Image))
	_, err = benchlayout.Read(dir)
	require.NoError(t, err)

	require.NoError(t, p.AppendImage(empty.Image))
	_, err = benchlayout.Read(dir)
	require.ErrorContains(t, err, "holds 2 manifests, want 1")

	_, err = benchlayout.Read(filepath.Join(dir, "missing"))
	require.Error(t, err)

	// An index that cannot be read, or is not JSON.
	unreadable := t.TempDir()
	require.NoError(t, os.Mkdir(filepath.Join(unreadable, "index.json"), 0o755))
	_, err = benchlayout.Read(unreadable)
	require.ErrorIs(t, err, syscall.EISDIR)
	garbled := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(garbled, "index.json"), []byte("{"), 0o644))
	_, err = benchlayout.Read(garbled)
	require.ErrorContains(t, err, "unexpected end of JSON input")
}

// TestWriteFaults: each way a layer can go wrong fails Write and leaves no layout.
func TestWriteFaults(t *testing.T) {
	short := func(tw *tar.Writer) error {
		return tw.WriteHeader(&tar.Header{Name: "short", Mode: 0o644, Size: 3, Typeflag: tar.TypeReg})
	}
	sockets := t.TempDir()
	l, err := net.Listen("unix", filepath.Join(sockets, "s"))
	require.NoError(t, err)
	defer l.Close()
	for _, tc := range []struct {
		name  string
		layer benchlayout.Layer
		want  string
	}{
		{"an entry shorter than its header", short, "missed writing 3 bytes"},
		{"a socket in the tree", func(tw *tar.Writer) error { return benchlayout.AddTree(tw, "", sockets) }, "sockets not supported"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "oci")
			err := benchlayout.Write(dir, []benchlayout.Layer{tc.layer})
			require.ErrorContains(t, err, tc.want)
			assert.Contains(t, err.Error(), "writing layer 0")
			_, err = os.Stat(dir)
			require.ErrorIs(t, err, os.ErrNotExist, "no layout is left")
		})
	}
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	err = benchlayout.Write(filepath.Join(t.TempDir(), "oci"), nil)
	require.ErrorIs(t, err, os.ErrNotExist, "no directory for the layers' tar files")
}

// onHeader is where a tar.Writer writes: it runs the function given for an entry's name when the
// entry's header is written, and discards the bytes.
type onHeader map[string]func()

func (h onHeader) Write(p []byte) (int, error) {
	// A tar header is one 512-byte block, written at once, that starts with the entry's name.
	if len(p) == 512 {
		if f := h[string(bytes.TrimRight(p[:100], "\x00"))]; f != nil {
			f()
		}
	}
	return len(p), nil
}

// TestAddTreeChangingUnderIt: a tree that changes while AddTree writes it, as when a benchmark's input
// is still being made, fails AddTree rather than giving a layer that holds something else.
func TestAddTreeChangingUnderIt(t *testing.T) {
	for _, tc := range []struct {
		name string
		at   string
		// change changes the file b of the tree.
		change func(b string) error
		want   error
	}{
		{name: "a file removed before its turn", at: "a", change: os.Remove, want: os.ErrNotExist},
		{name: "a file removed at its turn", at: "b", change: os.Remove, want: os.ErrNotExist},
		{name: "a file that grew", at: "b", want: tar.ErrWriteTooLong, change: func(b string) error {
			f, err := os.OpenFile(b, os.O_WRONLY|os.O_APPEND, 0)
			if err != nil {
				return err
			}
			_, err = f.WriteString(" more")
			return errors.Join(err, f.Close())
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			src := t.TempDir()
			for _, name := range []string{"a", "b"} {
				require.NoError(t, os.WriteFile(filepath.Join(src, name), []byte("12345"), 0o644))
			}
			tw := tar.NewWriter(onHeader{tc.at: func() { require.NoError(t, tc.change(filepath.Join(src, "b"))) }})
			require.ErrorIs(t, benchlayout.AddTree(tw, src, src), tc.want)
		})
	}
}

// TestClosesFiles: Write leaves none of its temporary tar files or the layout's files open, and AddTree
// none of the tree's, however many they write.
func TestClosesFiles(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	src := filepath.Join(tmp, "src")
	require.NoError(t, os.Mkdir(src, 0o755))
	for i := range 3 {
		require.NoError(t, os.WriteFile(filepath.Join(src, fmt.Sprint(i)), []byte("content"), 0o644))
	}
	addTree := func(tw *tar.Writer) error { return benchlayout.AddTree(tw, "", src) }
	left := testenv.FilesLeftOpen(t, tmp, func() {
		require.NoError(t, benchlayout.Write(filepath.Join(tmp, "oci"), []benchlayout.Layer{addTree, addTree}))
	})
	assert.Empty(t, left)
}

// listLayer lists a layer's entries: names, link targets and the contents of regular files.
func listLayer(t *testing.T, open func() (io.ReadCloser, error)) []string {
	t.Helper()
	rc, err := open()
	require.NoError(t, err)
	defer rc.Close()
	tr := tar.NewReader(rc)
	var out []string
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return out
		}
		require.NoError(t, err)
		assert.Empty(t, hdr.Uname+hdr.Gname, "no owner names")
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			out = append(out, hdr.Name+" -> "+hdr.Linkname)
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			out = append(out, hdr.Name+" = "+string(b))
		default:
			out = append(out, hdr.Name)
		}
	}
}

func Example() {
	dir, err := os.MkdirTemp("", "benchlayout-example-")
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.RemoveAll(dir)
	file := func(name string) benchlayout.Layer {
		return func(tw *tar.Writer) error {
			return tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Typeflag: tar.TypeReg})
		}
	}
	if err := benchlayout.Write(filepath.Join(dir, "oci"), []benchlayout.Layer{file("a"), file("b")}); err != nil {
		fmt.Println(err)
		return
	}
	img, err := benchlayout.Read(filepath.Join(dir, "oci"))
	if err != nil {
		fmt.Println(err)
		return
	}
	layers, err := img.Layers()
	fmt.Println(len(layers), err)
	// Output: 2 <nil>
}
