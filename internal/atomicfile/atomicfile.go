// Package atomicfile writes output files so that a reader sees either the old file or the complete new
// one, never a partial write: the content goes to a temporary file in the target's directory, which is
// synced and renamed over the target only when everything succeeded. A failure, or a cancelled context,
// removes the temporary file and leaves the target as it was.
package atomicfile

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Write creates or replaces the file at path with what fill writes to f, and gives it permissions perm.
// fill must not close f. Nothing is written outside path's directory.
func Write(ctx context.Context, path string, perm fs.FileMode, fill func(f *os.File) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return err
	}
	if err := finish(ctx, f, perm, fill); err != nil {
		return errors.Join(err, os.Remove(f.Name()))
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return errors.Join(fmt.Errorf("renaming into place: %w", err), os.Remove(f.Name()))
	}
	return nil
}

// finish fills, syncs and closes f.
func finish(ctx context.Context, f *os.File, perm fs.FileMode, fill func(f *os.File) error) error {
	if err := fill(f); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Chmod(perm); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Sync(); err != nil {
		return errors.Join(err, f.Close())
	}
	if err := f.Close(); err != nil {
		return err
	}
	return ctx.Err()
}
