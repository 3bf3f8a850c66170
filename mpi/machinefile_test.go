package mpi

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestWriteMachineFile(t *testing.T) {
	// One line per slot, as Grid Engine's $TMPDIR/machines lists them.
	hosts := []string{"node-b", "node-b", "node-a", "node-b", "node-a", "10.32.0.1"}
	tests := []struct {
		format MachineFileFormat
		want   string
	}{
		{HostPerLine, "node-b\nnode-a\n10.32.0.1\n"},
		{HostColonSlots, "node-b:3\nnode-a:2\n10.32.0.1:1\n"},
		{HostSlotsEquals, "node-b slots=3\nnode-a slots=2\n10.32.0.1 slots=1\n"},
	}
	for _, tt := range tests {
		var b strings.Builder
		require.NoError(t, WriteMachineFile(&b, hosts, tt.format))
		assert.Equal(t, tt.want, b.String())
	}

	var b strings.Builder
	require.ErrorIs(t, WriteMachineFile(&b, hosts, MachineFileFormat(9)), ErrInvalidSetting)
}

func TestCountHostsErrors(t *testing.T) {
	for _, hosts := range [][]string{nil, {""}, {"a b"}, {"a", "b:2"}, {"#a"}, {"a,b"}, {"a\n"}} {
		_, err := CountHosts(hosts)
		var se *SettingError
		require.ErrorAs(t, err, &se, "%q", hosts)
		assert.ErrorIs(t, err, ErrInvalidSetting)
	}
}

type failingWriter struct{}

func (failingWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteMachineFileWriteError(t *testing.T) {
	err := WriteMachineFile(failingWriter{}, []string{"a"}, HostPerLine)
	require.ErrorContains(t, err, "disk full")
}

func TestCreateMachineFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "u_machines")
	require.NoError(t, os.WriteFile(path, []byte("stale\n"), 0o600))

	require.NoError(t, CreateMachineFile(t.Context(), path, []string{"n1", "n1", "n2"}, HostColonSlots))
	got, err := os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "n1:2\nn2:1\n", string(got))
	fi, err := os.Stat(path)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o644), fi.Mode().Perm())
	assertOnly(t, dir, "u_machines")

	// A bad host leaves the old file alone and no temporary file behind.
	require.ErrorIs(t, CreateMachineFile(t.Context(), path, []string{"bad host"}, HostPerLine), ErrInvalidSetting)
	got, err = os.ReadFile(path)
	require.NoError(t, err)
	assert.Equal(t, "n1:2\nn2:1\n", string(got))
	assertOnly(t, dir, "u_machines")

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, CreateMachineFile(ctx, path, []string{"n3"}, HostPerLine), context.Canceled)
	assertOnly(t, dir, "u_machines")

	require.Error(t, CreateMachineFile(t.Context(), filepath.Join(dir, "missing", "hosts"), []string{"n"}, HostPerLine))
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.Equal(t, names, got)
}
