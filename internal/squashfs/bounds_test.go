package squashfs_test

import (
	"archive/tar"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

// A declared size is a claim, not data: an entry declaring 32 TiB (1 GiB of
// block list at 128 KiB blocks) and supplying a few bytes must cost what those
// bytes cost.
func TestAddDoesNotAllocateFromDeclaredSize(t *testing.T) {
	w, err := squashfs.NewWriter(&sink{}, squashfs.WithWorkers(1))
	require.NoError(t, err)
	defer w.Close(t.Context())
	for _, size := range []int64{1 << 40, 1 << 45} {
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		err = w.Add(t.Context(), squashfs.Entry{Path: "sparse", Size: size, Content: strings.NewReader("not much")})
		runtime.ReadMemStats(&after)
		require.ErrorIs(t, err, squashfs.ErrSizeMismatch)
		assert.Less(t, after.TotalAlloc-before.TotalAlloc, uint64(1<<20), "allocated for a declared size of %d", size)
	}
}

func manyXattrs(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("user.%d", i)] = "v"
	}
	return m
}

// Xattrs at the limits the writer accepts come back whole: through sqfs2tar
// with the largest name and value Linux takes, and through unsquashfs onto
// disk (where ext4 limits a value to a block, so the value is smaller).
func TestLargestXattrsReadBack(t *testing.T) {
	longName := "user." + strings.Repeat("n", 250)
	t.Run("sqfs2tar", func(t *testing.T) {
		bin := testenv.Require(t, "sqfs2tar")[0]
		want := manyXattrs(126)
		want[longName] = "v"
		want["user.big"] = strings.Repeat("b", 64<<10)
		img := writeImage(t, []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644, Xattrs: want}, data: []byte("x")}})
		var got map[string]string
		readSqfs2tar(t, bin, img, func(hdr *tar.Header, _ io.Reader) {
			if hdr.Name != "f" {
				return
			}
			got = map[string]string{}
			for k, v := range hdr.PAXRecords {
				if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
					got[name] = v
				}
			}
		})
		assert.Equal(t, want, got)
	})
	t.Run("unsquashfs", func(t *testing.T) {
		bin := testenv.Require(t, "unsquashfs")[0]
		testenv.RequireRoot(t)
		value := strings.Repeat("v", 1024)
		img := writeImage(t, []spec{{e: squashfs.Entry{Path: "f", Mode: 0o644, Xattrs: map[string]string{longName: value}}, data: []byte("x")}})
		dest := filepath.Join(t.TempDir(), "root")
		out, err := exec.CommandContext(t.Context(), bin, "-no-progress", "-d", dest, img).CombinedOutput()
		require.NoError(t, err, "unsquashfs -d: %s", out)
		buf := make([]byte, 4096)
		n, err := syscall.Getxattr(filepath.Join(dest, "f"), longName, buf)
		require.NoError(t, err)
		assert.Equal(t, value, string(buf[:n]))
	})
}
