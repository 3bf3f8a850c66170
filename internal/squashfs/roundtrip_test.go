package squashfs_test

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/squashfs"
)

func TestRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		bs   int
		opts []squashfs.Option
	}{
		{name: "defaults", bs: 128 << 10},
		{name: "4k blocks one worker", bs: 4096, opts: []squashfs.Option{squashfs.WithBlockSize(4096), squashfs.WithWorkers(1)}},
		{name: "level 9 no dedup no export", bs: 64 << 10, opts: []squashfs.Option{squashfs.WithBlockSize(64 << 10), squashfs.WithCompressionLevel(9), squashfs.WithDeduplication(false), squashfs.WithExportTable(false)}},
		{name: "uncompressed 1m blocks", bs: 1 << 20, opts: []squashfs.Option{squashfs.WithBlockSize(1 << 20), squashfs.WithCompressionLevel(0)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			specs := richTree(tt.bs)
			got, err := readImageFile(writeImage(t, specs, append(tt.opts, squashfs.WithWorkers(3))...))
			require.NoError(t, err)
			newModel(specs, newestTime(specs)).check(t, got)
			require.Greater(t, got["many"].Index, 1, "a 20 KiB listing needs a directory index")
			require.True(t, got["usr/lib/sparse"].Extended, "sparse files get extended inodes")
		})
	}
}

func TestHugeDirectory(t *testing.T) {
	specs := hugeDirTree()
	got, err := readImageFile(writeImage(t, specs, squashfs.WithBlockSize(4096)))
	require.NoError(t, err)
	newModel(specs, newestTime(specs)).check(t, got)
	require.True(t, got["huge"].Extended, "a listing over 64 KiB needs an extended directory inode")
	require.Greater(t, got["huge"].Index, 10)
}

func TestRandomTrees(t *testing.T) {
	for seed := range uint64(12) {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			bs := 4096 << (seed % 3)
			specs := randomTree(seed, 150, bs)
			got, err := readImageFile(writeImage(t, specs, squashfs.WithBlockSize(bs), squashfs.WithCompressionLevel(int(seed%10))))
			require.NoError(t, err)
			newModel(specs, newestTime(specs)).check(t, got)
		})
	}
}

func TestDeterministicForAnyWorkerCount(t *testing.T) {
	specs := append(richTree(4096), randomTree(7, 300, 4096)[1:]...)
	var images [][]byte
	for _, workers := range []int{1, 2, 5} {
		b, err := os.ReadFile(writeImage(t, specs, squashfs.WithBlockSize(4096), squashfs.WithWorkers(workers)))
		require.NoError(t, err)
		images = append(images, b)
	}
	require.True(t, bytes.Equal(images[0], images[1]), "1 and 2 workers differ")
	require.True(t, bytes.Equal(images[0], images[2]), "1 and 5 workers differ")
}

// TestDirectoryIndexAtItsLimit fills one listing header to 8 KiB past its start, the most a header may run
// before the next one must be indexed, and one byte either side: only a listing over 8 KiB gets a directory
// index entry.
func TestDirectoryIndexAtItsLimit(t *testing.T) {
	const header, entry = 12, 8 // a listing header, an entry without its name
	for _, tt := range []struct {
		listing int
		index   int
	}{
		{listing: 8191, index: 0},
		{listing: 8192, index: 0},
		{listing: 8193, index: 1},
	} {
		t.Run(strconv.Itoa(tt.listing), func(t *testing.T) {
			// 40 FIFOs (inodes in one block), names of 196 bytes but the last one's, which makes the length.
			specs := []spec{{e: squashfs.Entry{Path: "d", Type: squashfs.TypeDir, Mode: 0o755}}}
			rest := tt.listing - header
			for i := range 40 {
				n := 196
				if i == 39 {
					n = rest - entry
				}
				rest -= entry + n
				name := fmt.Sprintf("f%02d", i) + strings.Repeat("x", n-3)
				specs = append(specs, spec{e: squashfs.Entry{Path: "d/" + name, Type: squashfs.TypeFIFO, Mode: 0o644}})
			}
			require.Zero(t, rest)
			got, err := readImageFile(writeImage(t, specs, squashfs.WithBlockSize(4096)))
			require.NoError(t, err)
			assert.Equal(t, tt.index, got["d"].Index)
			assert.Equal(t, uint64(tt.listing+header*tt.index+3), got["d"].Size, "stored as 3 more, with a header for each index entry")
		})
	}
}
