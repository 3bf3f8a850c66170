package rootfs_test

import (
	"archive/tar"
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
	global := ent{hdr: tar.Header{Typeflag: tar.TypeXGlobalHeader, Name: "pax_global_header", PAXRecords: map[string]string{"comment": "x"}}}
	tree, err := rootfs.Flatten(t.Context(), layers(t, []ent{global, file("/etc/hosts", "h"), file(".wh..wh.aufs", "")}), rootfs.WithLogger(logger))
	require.NoError(t, err)
	_, ok := tree.Lookup("etc/hosts")
	assert.True(t, ok)
	assert.Equal(t, []string{rootLine, "dir etc 0755 implied", `regular etc/hosts 0644 "h"`}, listing(t, tree), "neither the global header nor AUFS metadata is an entry")
	assert.Contains(t, buf.String(), "treating absolute name as relative")
	assert.Contains(t, buf.String(), "ignoring AUFS metadata entry")
	assert.Contains(t, buf.String(), "ignoring PAX global header")
}

func TestFlattenNoLayers(t *testing.T) {
	tree, err := rootfs.Flatten(t.Context(), nil)
	require.NoError(t, err)
	assert.Equal(t, []string{rootLine}, listing(t, tree))
}

func TestWithMaxEntries(t *testing.T) {
	_, err := rootfs.Flatten(t.Context(), nil, rootfs.WithMaxEntries(0))
	require.Error(t, err)

	ls := layers(t, []ent{dir("a"), file("a/x", "x")}, []ent{whiteout("a/x"), file("b", "b")})
	_, err = rootfs.Flatten(t.Context(), ls, rootfs.WithMaxEntries(4))
	require.NoError(t, err)
	_, err = rootfs.Flatten(t.Context(), ls, rootfs.WithMaxEntries(3))
	require.ErrorIs(t, err, rootfs.ErrTooManyEntries)
	var le *rootfs.LayerError
	require.ErrorAs(t, err, &le)
	assert.Equal(t, []any{1, 1, "b"}, []any{le.Layer, le.Entry, le.Name})
}
