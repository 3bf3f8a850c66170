package squashfs

import (
	"errors"
	"fmt"
)

// Sentinel errors, wrapped in an *EntryError by Add and Close.
var (
	// ErrInvalidPath reports a path that is not a clean relative slash-separated
	// path: empty, absolute, with an empty, "." or ".." element, a NUL byte,
	// or an element longer than 256 bytes.
	ErrInvalidPath = errors.New("invalid path")
	// ErrDuplicatePath reports a second entry for a path already added.
	ErrDuplicatePath = errors.New("duplicate path")
	// ErrNotDirectory reports an entry whose parent path names a non-directory.
	ErrNotDirectory = errors.New("parent is not a directory")
	// ErrHardlinkTarget reports a hardlink whose target is missing, is a
	// directory, or forms a cycle of hardlinks.
	ErrHardlinkTarget = errors.New("bad hardlink target")
	// ErrInvalidEntry reports metadata squashfs cannot store: an unknown type,
	// an empty symlink target, one with a NUL byte or longer than 4095 bytes,
	// a device number out of range, a negative size, a missing content reader.
	ErrInvalidEntry = errors.New("invalid entry")
	// ErrXattr reports an xattr whose name has a prefix other than user.,
	// trusted. or security., or nothing after the prefix, and xattrs beyond
	// what Linux can set: a name over 255 bytes, a value over 64 KiB, or more
	// than 128 xattrs or 128 KiB of them on one entry.
	ErrXattr = errors.New("unsupported xattr")
	// ErrSizeMismatch reports content that is shorter or longer than the
	// entry's Size.
	ErrSizeMismatch = errors.New("content size differs from entry size")
	// ErrTooManyIDs reports more than 65535 distinct uids and gids.
	ErrTooManyIDs = errors.New("more than 65535 distinct uids and gids")
	// ErrClosed reports a call on a Writer after Close.
	ErrClosed = errors.New("writer closed")
)

// EntryError is the error for one entry that could not be added.
type EntryError struct {
	Path string
	Err  error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("squashfs entry %q: %v", e.Path, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

func entryErr(path string, err error, format string, args ...any) error {
	if format != "" {
		err = fmt.Errorf("%w: %s", err, fmt.Sprintf(format, args...))
	}
	return &EntryError{Path: path, Err: err}
}
