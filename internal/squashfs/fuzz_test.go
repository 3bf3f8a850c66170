package squashfs_test

import (
	"bytes"
	"testing"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/stretchr/testify/require"
)

// FuzzWriter writes a random tree and reads it back with the independent
// reader in reader_test.go: every path, type, mode, owner, time, content,
// link, device, xattr and hardlink must come back.
func FuzzWriter(f *testing.F) {
	f.Add(uint64(1), uint8(40), uint8(0), uint8(6), uint8(1))
	f.Add(uint64(2), uint8(200), uint8(1), uint8(1), uint8(3))
	f.Add(uint64(3), uint8(120), uint8(2), uint8(0), uint8(2))
	f.Add(uint64(4), uint8(0), uint8(0), uint8(9), uint8(1))
	f.Add(uint64(5), uint8(255), uint8(0), uint8(5), uint8(4))
	f.Fuzz(func(t *testing.T, seed uint64, n, blockLog, level, workers uint8) {
		bs := 4096 << (blockLog % 3)
		specs := randomTree(seed, int(n), bs)
		var out sink
		w, err := squashfs.NewWriter(&out, squashfs.WithBlockSize(bs), squashfs.WithCompressionLevel(int(level%10)),
			squashfs.WithWorkers(1+int(workers%4)), squashfs.WithDeduplication(seed%2 == 0))
		require.NoError(t, err)
		for _, s := range specs {
			require.NoError(t, w.Add(t.Context(), s.entry()))
		}
		require.NoError(t, w.Close(t.Context()))
		require.Zero(t, len(out.b)%4096, "image is not padded to 4 KiB")
		img, err := openImage(bytes.NewReader(out.b))
		require.NoError(t, err)
		got, err := readTree(img)
		require.NoError(t, err)
		newModel(specs, newestTime(specs)).check(t, got)
	})
}

// FuzzAdd feeds arbitrary paths, link targets and xattr names: Add either
// accepts an entry or rejects it with an *EntryError, and the image holds
// exactly the accepted entries.
func FuzzAdd(f *testing.F) {
	f.Add("etc/passwd", "../x", "user.a", uint8(0))
	f.Add("a/../b", "", "security.capability", uint8(2))
	f.Add("/abs", "a\x00b", "system.acl", uint8(3))
	f.Add("x/y/z", "x/y", "trusted.", uint8(3))
	f.Add(".", ".", "user.", uint8(1))
	f.Fuzz(func(t *testing.T, p, link, xname string, typ uint8) {
		var out sink
		w, err := squashfs.NewWriter(&out, squashfs.WithBlockSize(4096), squashfs.WithWorkers(2))
		require.NoError(t, err)
		var specs []spec
		try := func(s spec) {
			err := w.Add(t.Context(), s.entry())
			if err != nil {
				var ee *squashfs.EntryError
				require.ErrorAs(t, err, &ee)
				return
			}
			specs = append(specs, s)
		}
		e := squashfs.Entry{Path: p, Type: squashfs.Type(typ % 9), Mode: 0o640, Linkname: link, Xattrs: map[string]string{xname: link}}
		try(spec{e: e, data: []byte(link)})
		try(spec{e: squashfs.Entry{Path: link, Type: squashfs.TypeDir, Mode: 0o755}})
		try(spec{e: squashfs.Entry{Path: p + "/" + link, Type: squashfs.TypeSymlink, Linkname: p}})
		if err := w.Close(t.Context()); err != nil {
			require.ErrorIs(t, err, squashfs.ErrHardlinkTarget)
			return
		}
		img, err := openImage(bytes.NewReader(out.b))
		require.NoError(t, err)
		got, err := readTree(img)
		require.NoError(t, err)
		newModel(specs, newestTime(specs)).check(t, got)
	})
}
