// Package rootfs merges the layers of an OCI image into one root filesystem
// tree, without writing anything to the host. The SIF builder feeds the tree to
// the squashfs writer, and imagebuild uses it to materialise a root for RUN.
//
// Flatten reads each layer's tar stream once, bottom layer first, and keeps only
// metadata in memory. WalkContents then reads the layers a second time and hands
// every surviving regular file's content to the caller exactly once, straight
// from the tar stream:
//
//	layer 0 tar ─┐   pass 1: headers only        ┌──────── Tree ─────────┐
//	layer 1 tar ─┼─► whiteouts, then additions ─►│ .            dir      │
//	   ...       │   per layer, in memory        │ etc          dir      │
//	layer n tar ─┘                               │ etc/motd     regular ──┼─ Source{Layer 0, Entry 3}
//	                                             │ etc/motd.bak hardlink  │
//	                                             └───────────┬────────────┘
//	                                                         │ Entries(): sorted metadata
//	layer 0 tar ─┐   pass 2: only layers holding             ▼
//	   ...       ├─► surviving content, in tar order ─► WalkContents(fn(Entry, io.Reader))
//	layer n tar ─┘
//
// # Applying a layer
//
// The rules are those of the OCI image spec (image-spec layer.md, "Applying
// Changesets" and "Whiteouts"):
//
//   - An entry whose basename is ".wh.NAME" removes NAME, and ".wh..wh..opq"
//     removes every child of its directory, from the lower layers only: all
//     whiteouts of a layer are applied before its other entries, wherever they
//     sit in the tar, so a whiteout never removes content of its own layer.
//     Whiteouts create nothing; one whose directory is missing removes nothing.
//     The entry's type does not matter, only its name. Other ".wh..wh." names
//     (AUFS bookkeeping such as .wh..wh.plnk) are ignored with what lies below
//     them, so a hardlink into .wh..wh.plnk, as old AUFS-based Docker exports
//     wrote, fails as a hardlink to a missing target.
//   - A directory entry over a directory replaces its attributes and keeps its
//     children; any other entry replaces what was at its path, subtree included.
//     A duplicate path within one layer is therefore resolved as tar extraction
//     does it: the last entry wins.
//   - A missing parent directory is implied: mode 0755, owner 0:0, zero mtime,
//     Entry.Implied set.
//   - A hardlink joins the inode of its target, which must already exist (in a
//     lower layer, not whited out by the link's own layer, or earlier in the
//     same layer) and not be a directory. All paths
//     of an inode share its metadata and content, so replacing or removing the
//     target later leaves the link with the original content. In the result the
//     first path in walk order carries the inode and the others are
//     TypeHardlink entries naming it, each with the inode's Nlink.
//
// # Path safety
//
// Every path of the result is relative, clean and inside the root: what
// fs.ValidPath asks for, except that a name may hold any bytes but NUL and
// "/", as Linux allows, where fs.ValidPath also wants UTF-8. The choices, each matching what containerd's applier
// or umoci's securejoin-based unpacker do on disk:
//
//   - A leading "/" is dropped: "/etc/passwd" is "etc/passwd" in the root.
//     Empty and "." components are dropped too.
//   - A ".." component anywhere in a name or hardlink target is rejected
//     (ErrUnsafePath), even where it would stay inside, because its meaning
//     depends on symlinks.
//   - A name that passes through a symlink is resolved inside the root, as the
//     kernel would inside chroot: absolute targets restart at the root and ".."
//     stops there. So layer 1 "evil -> /etc" and layer 2 "evil/passwd" put
//     "etc/passwd" into the tree, never onto the host. The last component is
//     never followed: a file or directory entry replaces a symlink. A lookup
//     that follows more than 40 symlinks, or walks more than 8192 components
//     through them, is rejected (ErrUnsafePath); the second bound keeps a
//     chain of long symlinks from costing every entry of a layer 160,000 steps.
//   - Hardlink targets are resolved the same way; a missing target or a
//     directory is rejected (ErrInvalidLayer).
//   - Whiteouts of "." or ".." are rejected (ErrUnsafePath); ".wh." alone, or a
//     ".wh." name used as a directory, is rejected (ErrInvalidLayer).
//   - NUL bytes, names over 4096 bytes, components over 255 bytes, paths
//     that symlinks lengthen past 4096 bytes, and symlink targets that are
//     empty or of 4096 bytes or more (which symlink(2) refuses) are rejected
//     (ErrUnsafePath).
//   - Symlink targets are data and kept verbatim; device nodes, FIFOs, setuid
//     and setgid bits, owners and xattrs are kept as metadata. Nothing is
//     created on the host.
//
// Every rejection is a *LayerError carrying the layer, the entry's position and
// name, and a reason; errors.Is matches ErrUnsafePath or ErrInvalidLayer.
//
// # Limits
//
// A layer comes from a registry and may be built to exhaust whoever unpacks
// it. Flatten refuses, with a *LayerError naming the entry that crossed the
// limit, layers beyond these bounds; each has an option to raise it:
//
//   - more than 5,000,000 entries in all layers together, tar entries and
//     the directories their names imply (WithMaxEntries; ErrTooManyEntries),
//     and more than 1 GiB of names, link targets, owner names, xattrs and
//     PAX records (WithMaxMetadataBytes; ErrTooLarge). Together they bound
//     the memory Flatten takes: about 300 bytes an entry plus the metadata
//     bytes, at most about 2.5 GB with the defaults;
//   - more than 64 GiB of file content in one layer (WithMaxLayerBytes) or
//     128 GiB in all (WithMaxImageBytes), counted as files unpack, sparse
//     holes included (ErrTooLarge). This bounds what WalkContents hands over
//     and what packing the tree reads, hashes and compresses; the largest HPC
//     images in use unpack to a quarter of it;
//   - a sparse file unpacking to more than 1024 times the bytes it takes in
//     the tar stream (WithMaxSparseRatio; ErrTooLarge), so that a few KB of
//     headers cannot claim terabytes of holes.
//
// Some bounds per entry are Linux's own and cannot be raised: an xattr
// name (after SCHILY.xattr.) of 1 to 255 bytes (XATTR_NAME_MAX) and a value
// of at most 64 KiB (XATTR_SIZE_MAX), at most 128 xattrs and other kept PAX
// records of at most 128 KiB together (names and values), owner names of at
// most 256 bytes (LOGIN_NAME_MAX), and device numbers that fit Linux's
// dev_t, major below 4096 and minor below 1048576, which is also what
// squashfs stores. Entries beyond them are rejected with ErrInvalidLayer.
//
// # Differences from ggcr's mutate.Extract
//
// Extract, which apptainer and SingularityCE stopped using, walks layers top
// down and decides by name. It drops entries below a path whited out in the
// same layer when the whiteout comes first, keeps the first of duplicate
// entries, gives a directory that a file replaced and a later layer re-created
// its old children back, passes "a/../b" style names and symlinked parents
// through lexically, silently drops relative links that climb out of the root,
// and mishandles hardlinks to lower layers (google/go-containerregistry#977,
// #2002). Flatten follows the spec in each of these cases. On well-formed
// layers the two agree, and Flatten agrees with umoci's unpack on disk, which
// the tests check.
package rootfs
