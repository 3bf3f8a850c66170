package rootfs

import (
	"errors"
	"fmt"
)

// ErrUnsafePath reports a layer entry whose name or hardlink target cannot be
// placed safely inside the root: a ".." component, a NUL byte, a name longer than
// PATH_MAX (4096 bytes) or with a component longer than NAME_MAX (255 bytes), a
// whiteout naming "." or "..", or a lookup that follows more than 40 symlinks or
// walks more than 8192 components through them. It also reports a symlink target
// Linux cannot hold: an empty one, one with a NUL byte, or of 4096 bytes or more.
var ErrUnsafePath = errors.New("unsafe path in layer")

// ErrInvalidLayer reports a layer that is not a valid changeset: an unreadable or
// truncated tar stream, a hardlink to a missing entry or to a directory, an entry
// below a non-directory, a non-directory entry for the root, an unsupported entry
// type, a device number outside Linux's range, an owner outside Linux's 32-bit uid and gid range or an owner name
// longer than 256 bytes, xattrs or PAX records beyond what an entry may keep
// (see the package documentation), or a layer whose content differs between
// two reads.
var ErrInvalidLayer = errors.New("invalid layer")

// ErrTooManyEntries reports layers holding more entries together (tar
// entries and the directories they imply) than WithMaxEntries allows.
var ErrTooManyEntries = errors.New("too many entries in layers")

// ErrTooLarge reports layers beyond a limit Flatten was given: a layer
// holding more file content than WithMaxLayerBytes, layers holding more than
// WithMaxImageBytes, a sparse file unpacking to more than WithMaxSparseRatio
// times its stored size, or more names, link targets, xattrs and PAX records
// than WithMaxMetadataBytes. Raising the limit lets such layers through.
var ErrTooLarge = errors.New("layers too large")

// LayerError describes why one entry of one layer was rejected. It wraps
// ErrUnsafePath, ErrInvalidLayer, ErrTooManyEntries or ErrTooLarge, and the underlying read
// error if there is one.
type LayerError struct {
	// Layer is the position of the layer in the list given to Flatten, 0 being
	// the bottom layer.
	Layer int
	// Entry is the position of the tar entry in the layer, counting from 0 as
	// tar.Reader.Next returns them; for a malformed header it is the position
	// the next entry would have had.
	Entry int
	// Name is the entry's name as written in the tar header; empty when the
	// header itself could not be read.
	Name string
	// Reason says what is wrong, in a few words.
	Reason string
	// Err is ErrUnsafePath, ErrInvalidLayer, ErrTooManyEntries or ErrTooLarge, possibly
	// joined with the read error.
	Err error
}

func (e *LayerError) Error() string {
	name := e.Name
	if len(name) > maxErrorName {
		// Hostile names run to thousands of bytes; the field keeps all of it.
		name = name[:maxErrorName] + "..."
	}
	return fmt.Sprintf("layer %d entry %d %q: %s: %v", e.Layer, e.Entry, name, e.Reason, e.Err)
}

const maxErrorName = 128

func (e *LayerError) Unwrap() error { return e.Err }
