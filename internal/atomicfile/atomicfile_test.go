package atomicfile_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

func TestWrite(t *testing.T) {
	errFill := errors.New("fill failed")
	cancelled, cancel := context.WithCancel(t.Context())
	cancel()

	tests := []struct {
		name    string
		ctx     context.Context
		fill    func(f *os.File) error
		wantErr error
		want    string
	}{
		{name: "replaces", ctx: t.Context(), fill: write("new"), want: "new"},
		{name: "fill fails", ctx: t.Context(), fill: func(f *os.File) error {
			_, _ = f.WriteString("partial")
			return errFill
		}, wantErr: errFill, want: "old"},
		{name: "cancelled before", ctx: cancelled, fill: write("new"), wantErr: context.Canceled, want: "old"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))

			err := atomicfile.Write(tt.ctx, path, 0o644, tt.fill)
			require.ErrorIs(t, err, tt.wantErr)

			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, tt.want, string(got))
			entries, err := os.ReadDir(dir)
			require.NoError(t, err)
			assert.Len(t, entries, 1, "no temporary file is left behind")
			if tt.wantErr == nil {
				info, err := os.Stat(path)
				require.NoError(t, err)
				assert.Equal(t, os.FileMode(0o644), info.Mode().Perm())
			}
		})
	}
}

func TestWriteCancelledWhileFilling(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "out")
	ctx, cancel := context.WithCancel(t.Context())
	err := atomicfile.Write(ctx, path, 0o644, func(f *os.File) error {
		cancel()
		_, err := f.WriteString("complete but too late")
		return err
	})
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	assert.Empty(t, entries, "neither the target nor a temporary file exists")
}

func TestWriteMissingDirectory(t *testing.T) {
	err := atomicfile.Write(t.Context(), filepath.Join(t.TempDir(), "no", "out"), 0o644, write("x"))
	require.ErrorIs(t, err, os.ErrNotExist)
}

func write(s string) func(f *os.File) error {
	return func(f *os.File) error {
		_, err := f.WriteString(s)
		return err
	}
}

func ExampleWrite() {
	path := filepath.Join(os.TempDir(), "hpcship-example-hosts")
	err := atomicfile.Write(context.Background(), path, 0o644, func(f *os.File) error {
		_, err := fmt.Fprintln(f, "node1:16")
		return err
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	defer os.Remove(path)
	b, _ := os.ReadFile(path)
	fmt.Print(string(b))
	// Output: node1:16
}

// TestWriteFaults injects a failure at each step after the temporary file exists: the fill, the chmod
// (a fill that closes the file breaks every later step), and the rename (the target is a directory).
// Each returns an error, leaves the target as it was and removes the temporary file.
func TestWriteFaults(t *testing.T) {
	t.Run("fill closes the file", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
		err := atomicfile.Write(t.Context(), path, 0o644, func(f *os.File) error {
			_, err := f.WriteString("new")
			require.NoError(t, err)
			return f.Close()
		})
		require.ErrorIs(t, err, os.ErrClosed)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))
		assertOnly(t, dir, "out")
	})
	t.Run("sync fails", func(t *testing.T) {
		// fill puts a pipe under f's descriptor: chmod still works, fsync on a pipe fails with EINVAL.
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		require.NoError(t, os.WriteFile(path, []byte("old"), 0o600))
		r, w, err := os.Pipe()
		require.NoError(t, err)
		defer r.Close()
		defer w.Close()
		err = atomicfile.Write(t.Context(), path, 0o644, func(f *os.File) error {
			if _, err := f.WriteString("new"); err != nil {
				return err
			}
			return syscall.Dup2(int(w.Fd()), int(f.Fd()))
		})
		require.ErrorIs(t, err, syscall.EINVAL)
		got, err := os.ReadFile(path)
		require.NoError(t, err)
		assert.Equal(t, "old", string(got))
		assertOnly(t, dir, "out")
	})
	t.Run("target is a directory", func(t *testing.T) {
		dir := t.TempDir()
		path := filepath.Join(dir, "out")
		require.NoError(t, os.Mkdir(path, 0o755))
		require.NoError(t, os.WriteFile(filepath.Join(path, "keep"), []byte("kept"), 0o600))
		err := atomicfile.Write(t.Context(), path, 0o644, write("new"))
		require.Error(t, err)
		assert.Contains(t, err.Error(), "renaming into place")
		got, err := os.ReadFile(filepath.Join(path, "keep"))
		require.NoError(t, err)
		assert.Equal(t, "kept", string(got))
		assertOnly(t, dir, "out")
	})
}

// TestWritePermissions sets exactly the permissions asked for, whatever the umask, on a new file and on
// a replaced one.
func TestWritePermissions(t *testing.T) {
	for _, perm := range []os.FileMode{0o600, 0o644, 0o755, 0o777} {
		t.Run(perm.String(), func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "out")
			require.NoError(t, atomicfile.Write(t.Context(), path, perm, write("first")))
			info, err := os.Stat(path)
			require.NoError(t, err)
			assert.Equal(t, perm, info.Mode().Perm())
			require.NoError(t, atomicfile.Write(t.Context(), path, perm, write("second")))
			got, err := os.ReadFile(path)
			require.NoError(t, err)
			assert.Equal(t, "second", string(got))
			assertOnly(t, dir, "out")
		})
	}
}

func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	require.NoError(t, err)
	var got []string
	for _, e := range entries {
		got = append(got, e.Name())
	}
	assert.Equal(t, names, got, "no temporary file is left behind")
}
