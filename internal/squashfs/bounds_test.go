package squashfs_test

import (
	"runtime"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
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
