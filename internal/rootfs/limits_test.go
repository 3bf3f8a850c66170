package rootfs_test

import (
	"archive/tar"
	"bytes"
	"fmt"
	"io"
	"math"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// sparseFile writes a PAX 0.1 sparse file called name, as GNU tar does: data
// at offset 0, then a hole up to logical bytes. No end-of-archive blocks.
func sparseFile(name string, logical int64, data string) []byte {
	records := map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.size": strconv.FormatInt(logical, 10),
		"GNU.sparse.numblocks": "0", "GNU.sparse.map": "",
	}
	if data != "" {
		records["GNU.sparse.numblocks"], records["GNU.sparse.map"] = "1", fmt.Sprintf("0,%d", len(data))
	}
	return paxEntry(name, records, data)
}

// rawLayer joins raw entries and ends the archive.
func rawLayer(entries ...[]byte) rootfs.Layer {
	return bytesLayer{data: append(slices.Concat(entries...), make([]byte, 1024)...)}
}

func TestSparseFileHelper(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rawLayer(sparseFile("s", 5000, "data"))})
	require.NoError(t, err)
	e, ok := tree.Lookup("s")
	require.True(t, ok)
	assert.EqualValues(t, 5000, e.Size)
	assert.Equal(t, map[string]string{"s": "data" + strings.Repeat("\x00", 4996)}, contents(t, tree))
}

func TestFlattenContentLimits(t *testing.T) {
	two := layers(t, []ent{file("a", strings.Repeat("a", 600)), file("b", strings.Repeat("b", 500))}, []ent{file("c", strings.Repeat("c", 600))})
	// A hole of 2^62 bytes in a layer of a few KB, as a hostile registry could serve.
	huge := []rootfs.Layer{rawLayer(sparseFile("x", 1, "x"), sparseFile("huge", 1<<62, ""))}
	// 1 MiB of hole after 1 KiB of data: 1 KiB and a header stored, within 1024 times.
	fine := []rootfs.Layer{rawLayer(sparseFile("db", 1<<20, strings.Repeat("d", 1024)), sparseFile("z", 0, ""))}
	tests := []struct {
		name      string
		layers    []rootfs.Layer
		opts      []rootfs.Option
		wantErr   bool
		wantLayer int
		wantEntry int
		wantName  string
	}{
		{name: "within all limits", layers: two, opts: []rootfs.Option{rootfs.WithMaxLayerBytes(1100), rootfs.WithMaxImageBytes(1700)}},
		{name: "layer too large", layers: two, opts: []rootfs.Option{rootfs.WithMaxLayerBytes(1099)}, wantErr: true, wantEntry: 1, wantName: "b"},
		{name: "image too large", layers: two, opts: []rootfs.Option{rootfs.WithMaxImageBytes(1699)}, wantErr: true, wantLayer: 1, wantName: "c"},
		{name: "sparse within ratio", layers: fine},
		{name: "sparse beyond a lowered ratio", layers: fine, opts: []rootfs.Option{rootfs.WithMaxSparseRatio(100)}, wantErr: true, wantEntry: 0, wantName: "db"},
		{name: "huge hole by default", layers: huge, wantErr: true, wantEntry: 1, wantName: "huge"},
		{name: "huge hole with the ratio raised hits the image limit", layers: huge, opts: []rootfs.Option{rootfs.WithMaxSparseRatio(1 << 62)}, wantErr: true, wantEntry: 1, wantName: "huge"},
		{name: "huge hole with every limit raised", layers: huge, opts: []rootfs.Option{rootfs.WithMaxSparseRatio(1 << 62), rootfs.WithMaxLayerBytes(1 << 62), rootfs.WithMaxImageBytes(1 << 62)}, wantErr: true, wantEntry: 1, wantName: "huge"},
		{name: "everything raised", layers: huge, opts: []rootfs.Option{rootfs.WithMaxSparseRatio(1 << 62), rootfs.WithMaxLayerBytes(1<<62 + 1), rootfs.WithMaxImageBytes(1<<62 + 1)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rootfs.Flatten(t.Context(), tt.layers, tt.opts...)
			if !tt.wantErr {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, rootfs.ErrTooLarge)
			var le *rootfs.LayerError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, []any{tt.wantLayer, tt.wantEntry, tt.wantName}, []any{le.Layer, le.Entry, le.Name})
		})
	}
}

func TestContentLimitOptionsRejectNonPositive(t *testing.T) {
	for name, opt := range map[string]func(int64) rootfs.Option{
		"entries":        func(n int64) rootfs.Option { return rootfs.WithMaxEntries(int(n)) },
		"layer bytes":    rootfs.WithMaxLayerBytes,
		"image bytes":    rootfs.WithMaxImageBytes,
		"sparse ratio":   rootfs.WithMaxSparseRatio,
		"metadata bytes": rootfs.WithMaxMetadataBytes,
	} {
		for _, n := range []int64{-1, 0} {
			_, err := rootfs.Flatten(t.Context(), nil, opt(n))
			assert.Error(t, err, "%s %d", name, n)
		}
		_, err := rootfs.Flatten(t.Context(), nil, opt(1))
		assert.NoError(t, err, "%s 1", name)
	}
}

// gnuLayer writes entries in GNU format, which stores numbers too large for
// octal fields in base-256, as device numbers beyond 32 bits need.
func gnuLayer(t testing.TB, hdrs ...tar.Header) rootfs.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h.Format = tar.FormatGNU
		require.NoError(t, tw.WriteHeader(&h))
	}
	require.NoError(t, tw.Close())
	return bytesLayer{data: buf.Bytes()}
}

func withRecords(e ent, records map[string]string) ent {
	e.hdr.PAXRecords = records
	return e
}

func ownedBy(e ent, uid, gid int) ent {
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

func owned(e ent, user, group string) ent {
	e.hdr.Uname, e.hdr.Gname = user, group
	return e
}

func xattrs(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("SCHILY.xattr.user.%d", i)] = "v"
	}
	return m
}

func TestFlattenBoundsMetadataPerEntry(t *testing.T) {
	device := func(major, minor int64) rootfs.Layer {
		return gnuLayer(t, tar.Header{Typeflag: tar.TypeChar, Name: "dev/x", Mode: 0o600, Devmajor: major, Devminor: minor})
	}
	one := func(e ...ent) []rootfs.Layer { return layers(t, e) }
	// chain(n) makes a file reached through n symlinks: l1 -> l2 -> … -> ln -> d.
	chain := func(n int) []ent {
		es := []ent{dir("d")}
		for i := n; i >= 1; i-- {
			target := "d"
			if i < n {
				target = fmt.Sprintf("l%d", i+1)
			}
			es = append(es, symlink(fmt.Sprintf("l%d", i), target))
		}
		return append(es, file("l1/f", "f"))
	}
	owner := file("f", "")
	owner.hdr.Uname = strings.Repeat("u", 256)
	longOwner := file("f", "")
	longOwner.hdr.Gname = strings.Repeat("g", 257)
	tests := []struct {
		name      string
		layers    []rootfs.Layer
		opts      []rootfs.Option
		wantErr   error
		wantEntry int
	}{
		{name: "xattr name of 255 bytes", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user." + strings.Repeat("n", 250): "v"}))},
		{name: "xattr name of 256 bytes", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user." + strings.Repeat("n", 251): "v"})), wantErr: rootfs.ErrInvalidLayer},
		{name: "empty xattr name", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.": "v"})), wantErr: rootfs.ErrInvalidLayer},
		{name: "xattr value of 64 KiB", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user.v": strings.Repeat("v", 64<<10)}))},
		{name: "xattr value over 64 KiB", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user.v": strings.Repeat("v", 64<<10+1)})), wantErr: rootfs.ErrInvalidLayer},
		{name: "two values of 64 KiB", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user.a": strings.Repeat("v", 64<<10), "SCHILY.xattr.user.b": strings.Repeat("v", 64<<10)})), wantErr: rootfs.ErrInvalidLayer},
		{name: "big PAX records", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.acl.access": strings.Repeat("a", 128<<10)})), wantErr: rootfs.ErrInvalidLayer},
		{name: "128 xattrs", layers: one(withRecords(file("f", ""), xattrs(128)))},
		{name: "129 xattrs", layers: one(withRecords(file("f", ""), xattrs(129))), wantErr: rootfs.ErrInvalidLayer},
		{name: "owner name of 256 bytes", layers: one(owner)},
		{name: "owner name of 257 bytes", layers: one(longOwner), wantErr: rootfs.ErrInvalidLayer},
		{name: "largest device", layers: []rootfs.Layer{device(4095, 1<<20-1)}},
		{name: "major of 4096", layers: []rootfs.Layer{device(4096, 0)}, wantErr: rootfs.ErrInvalidLayer},
		{name: "minor of 2^20", layers: []rootfs.Layer{device(0, 1<<20)}, wantErr: rootfs.ErrInvalidLayer},
		{name: "device numbers that wrap to 1:1 in 32 bits", layers: []rootfs.Layer{device(1<<32+1, 1<<32+1)}, wantErr: rootfs.ErrInvalidLayer},
		{name: "empty symlink target", layers: one(symlink("d/l", "")), wantErr: rootfs.ErrUnsafePath},
		{name: "metadata within the total", layers: one(withRecords(file("f", ""), xattrs(10))), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(10 * (97 + 8))}},
		{name: "metadata beyond the total", layers: one(withRecords(file("f", ""), xattrs(10))), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(10 * 97)}, wantErr: rootfs.ErrTooLarge},
		// Every part of the metadata counts: name, link target and owner names (1 + 6 + 1 + 2 bytes), an
		// xattr's name and value, a PAX record's key and value, each record with 96 bytes of overhead.
		{name: "names at the metadata limit", layers: one(owned(symlink("l", "target"), "u", "gg")), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(10)}},
		{name: "names one byte beyond the metadata limit", layers: one(owned(symlink("l", "target"), "u", "gg")), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(9)}, wantErr: rootfs.ErrTooLarge},
		{name: "xattr at the metadata limit", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user.a": "vv"})), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(1 + 6 + 2 + 96)}},
		{name: "xattr one byte beyond the metadata limit", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.xattr.user.a": "vv"})), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(1 + 6 + 2 + 95)}, wantErr: rootfs.ErrTooLarge},
		{name: "PAX record at the metadata limit", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.acl.access": "a"})), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(1 + 17 + 1 + 96)}},
		{name: "PAX record one byte beyond the metadata limit", layers: one(withRecords(file("f", ""), map[string]string{"SCHILY.acl.access": "a"})), opts: []rootfs.Option{rootfs.WithMaxMetadataBytes(1 + 17 + 1 + 95)}, wantErr: rootfs.ErrTooLarge},
		{name: "symlink target of 4095 bytes", layers: one(symlink("l", strings.Repeat("t/", 2047)+"t"))},
		{name: "largest owner", layers: one(ownedBy(file("f", ""), math.MaxUint32, math.MaxUint32))},
		{name: "user beyond 32 bits", layers: one(ownedBy(file("f", ""), math.MaxUint32+1, 0)), wantErr: rootfs.ErrInvalidLayer},
		{name: "group beyond 32 bits", layers: one(ownedBy(file("f", ""), 0, math.MaxUint32+1)), wantErr: rootfs.ErrInvalidLayer},
		{name: "40 symlinks on the way", layers: one(chain(40)...)},
		{name: "41 symlinks on the way", layers: one(chain(41)...), wantErr: rootfs.ErrUnsafePath, wantEntry: 42},
		{name: "implied directories within the entries", layers: one(file("a/b/c/d", "")), opts: []rootfs.Option{rootfs.WithMaxEntries(4)}},
		{name: "implied directories beyond the entries", layers: one(file("a/b/c/d", "")), opts: []rootfs.Option{rootfs.WithMaxEntries(3)}, wantErr: rootfs.ErrTooManyEntries},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := rootfs.Flatten(t.Context(), tt.layers, tt.opts...)
			if tt.wantErr == nil {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			var le *rootfs.LayerError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, []int{0, tt.wantEntry}, []int{le.Layer, le.Entry})
		})
	}
}

// The memory Flatten takes for metadata follows WithMaxMetadataBytes, however
// the records are spread: here 20,000 entries of 128 small xattrs each, which
// unbounded would take about 265 MB of heap.
func TestMetadataMemoryIsBounded(t *testing.T) {
	const limit = 32 << 20
	records := xattrs(128)
	l := generated(20000, func(i int) *tar.Header {
		return &tar.Header{Typeflag: tar.TypeFifo, Name: fmt.Sprintf("f%d", i), Mode: 0o644, PAXRecords: records}
	})
	var err error
	peak := peakHeap(t, func() {
		_, err = rootfs.Flatten(t.Context(), []rootfs.Layer{l}, rootfs.WithMaxMetadataBytes(limit))
	})
	require.ErrorIs(t, err, rootfs.ErrTooLarge)
	t.Logf("peak heap growth %d MiB", peak>>20)
	assert.Less(t, peak, uint64(4*limit))
}

// generated is a layer of n headers made by hdr, written through a pipe so
// that the layer is never in memory as a whole.
type generatedHeaders struct {
	n   int
	hdr func(i int) *tar.Header
}

func generated(n int, hdr func(i int) *tar.Header) rootfs.Layer {
	return generatedHeaders{n: n, hdr: hdr}
}

func (l generatedHeaders) Uncompressed() (io.ReadCloser, error) {
	pr, pw := io.Pipe()
	go func() {
		tw := tar.NewWriter(pw)
		var err error
		for i := 0; i < l.n && err == nil; i++ {
			err = tw.WriteHeader(l.hdr(i))
		}
		if err == nil {
			err = tw.Close()
		}
		pw.CloseWithError(err)
	}()
	return pr, nil
}

// peakHeap runs fn and returns by how much the heap in use grew at most
// while it ran, sampled every millisecond.
func peakHeap(t *testing.T, fn func()) uint64 {
	t.Helper()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			if ms.HeapAlloc > base && ms.HeapAlloc-base > peak.Load() {
				peak.Store(ms.HeapAlloc - base)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
	fn()
	close(stop)
	<-done
	return peak.Load()
}

// A sparse map that does not match the data only shows when the content is
// read; the reader then fails with a *LayerError, not archive/tar's error.
func TestMalformedContentIsInvalidLayer(t *testing.T) {
	// The map says 4 bytes of data; the entry holds 600.
	bad := paxEntry("s", map[string]string{
		"GNU.sparse.major": "0", "GNU.sparse.minor": "1", "GNU.sparse.size": "100",
		"GNU.sparse.numblocks": "1", "GNU.sparse.map": "0,4",
	}, strings.Repeat("d", 600))
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{rawLayer(bad)})
	require.NoError(t, err)
	err = tree.WalkContents(t.Context(), func(_ rootfs.Entry, r io.Reader) error {
		_, err := io.Copy(io.Discard, r)
		return err
	})
	require.ErrorIs(t, err, rootfs.ErrInvalidLayer)
	var le *rootfs.LayerError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, []any{0, 0, "s"}, []any{le.Layer, le.Entry, le.Name})
}

// Device numbers in the header of a non-device are not kept: they mean
// nothing there and could be anything.
func TestDeviceNumbersOnlyForDevices(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), []rootfs.Layer{gnuLayer(t, tar.Header{Typeflag: tar.TypeReg, Name: "f", Mode: 0o644, Devmajor: 1<<32 + 1, Devminor: 1 << 40})})
	require.NoError(t, err)
	e, ok := tree.Lookup("f")
	require.True(t, ok)
	assert.Equal(t, [2]int64{0, 0}, [2]int64{e.Devmajor, e.Devminor})
}
