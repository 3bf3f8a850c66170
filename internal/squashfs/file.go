package squashfs

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/hpcship/hpcship/internal/atomicfile"
)

// WriteFile writes an image to path atomically: it creates a temporary file
// in the same directory, lets add fill a Writer made with opts, closes the
// Writer, syncs the file and renames it to path with mode 0644. On any error
// the temporary file is removed and path is left as it was.
func WriteFile(ctx context.Context, path string, add func(*Writer) error, opts ...Option) error {
	err := atomicfile.Write(ctx, path, 0o644, func(f *os.File) error {
		w, err := NewWriter(f, opts...)
		if err != nil {
			return err
		}
		if err := add(w); err != nil {
			return errors.Join(err, w.Close(ctx))
		}
		return w.Close(ctx)
	})
	if err != nil {
		return fmt.Errorf("writing squashfs image %s: %w", path, err)
	}
	return nil
}
