package rootfs_test

import (
	"bytes"
	"log/slog"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

func TestWithLogger(t *testing.T) {
	_, err := rootfs.Flatten(t.Context(), nil, rootfs.WithLogger(nil))
	require.Error(t, err)

	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	tree, err := rootfs.Flatten(t.Context(), layers(t, []ent{file("/etc/hosts", "h"), file(".wh..wh.aufs", "")}), rootfs.WithLogger(logger))
	require.NoError(t, err)
	_, ok := tree.Lookup("etc/hosts")
	assert.True(t, ok)
	assert.Contains(t, buf.String(), "treating absolute name as relative")
	assert.Contains(t, buf.String(), "ignoring AUFS metadata entry")
}

func TestFlattenNoLayers(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{rootLine}, listing(t, tree))
}
