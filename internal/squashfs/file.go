package squashfs

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// WriteFile writes an image to path atomically: it creates a temporary file
// in the same directory, lets add fill a Writer made with opts, closes the
// Writer, syncs the file and renames it to path with mode 0644. On any error
// the temporary file is removed and path is left as it was.
func WriteFile(ctx context.Context, path string, add func(*Writer) error, opts ...Option) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("creating squashfs image: %w", err)
	}
	if err := writeTemp(ctx, f, add, opts); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return errors.Join(fmt.Errorf("renaming squashfs image into place: %w", err), os.Remove(f.Name()))
	}
	return nil
}

// writeTemp fills and closes f.
func writeTemp(ctx context.Context, f *os.File, add func(*Writer) error, opts []Option) error {
	w, err := NewWriter(f, opts...)
	if err != nil {
		return errors.Join(err, f.Close())
	}
	if err := add(w); err != nil {
		return errors.Join(err, w.Close(ctx), f.Close())
	}
	if err := w.Close(ctx); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Chmod(0o644); err != nil {
		return errors.Join(fmt.Errorf("setting squashfs image mode: %w", err), f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(fmt.Errorf("syncing squashfs image: %w", err), f.Close())
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("closing squashfs image: %w", err)
	}
	return nil
}
