package squashfs_test

import (
	"bytes"
	"fmt"
	"os"
	"testing"

	"github.com/hpcship/hpcship/internal/squashfs"
	"github.com/stretchr/testify/require"
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
