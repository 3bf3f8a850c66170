package rootfs

import (
	"fmt"
	"time"
)

// Type is the kind of a merged entry.
type Type uint8

// The entry types. Sockets do not exist in tar layers and never appear.
const (
	TypeRegular Type = iota + 1
	TypeDir
	TypeSymlink
	// TypeHardlink marks a further path of a non-directory inode; its Linkname is
	// the path of the inode's first entry in walk order.
	TypeHardlink
	TypeCharDevice
	TypeBlockDevice
	TypeFIFO
)

func (t Type) String() string {
	switch t {
	case TypeRegular:
		return "regular"
	case TypeDir:
		return "dir"
	case TypeSymlink:
		return "symlink"
	case TypeHardlink:
		return "hardlink"
	case TypeCharDevice:
		return "char"
	case TypeBlockDevice:
		return "block"
	case TypeFIFO:
		return "fifo"
	}
	return fmt.Sprintf("Type(%d)", uint8(t))
}

// Source says where the content of an entry lives: the Entry-th tar entry
// (counting from 0, as tar.Reader.Next returns them) of layer Layer. Implied
// directories have Layer and Entry -1.
type Source struct {
	Layer int
	Entry int
}

// Entry is the metadata of one path of the merged root. Its maps are shared with
// the Tree and must not be modified.
type Entry struct {
	// Path is slash-separated, relative and clean: "." for the root, otherwise
	// without empty, "." or ".." elements and without leading or trailing
	// slash. Its bytes are those of the layer, which need not be UTF-8, so
	// fs.ValidPath(Path) holds for UTF-8 paths only.
	Path string
	Type Type
	// Mode holds the permission bits together with setuid, setgid and sticky
	// (mask 07777), exactly as the layer recorded them.
	Mode uint32
	// UID and GID are the numeric owner, 0 to 4294967295 (Linux's uid_t and
	// gid_t); Flatten rejects layers with others.
	UID   int
	GID   int
	Uname string
	Gname string
	// ModTime is the entry's mtime as recorded; zero for implied directories.
	ModTime time.Time
	// Size is the content length of a regular file (and of the inode a hardlink
	// names); 0 otherwise.
	Size int64
	// Linkname is a symlink's target, verbatim (it is data, never resolved on the
	// host), or for TypeHardlink the Path of the inode's first entry.
	Linkname string
	// Devmajor and Devminor number a device, major below 4096 and minor below
	// 1048576 as Linux's dev_t holds them; 0 for other types.
	Devmajor int64
	Devminor int64
	// Xattrs holds the extended attributes from SCHILY.xattr.* PAX records,
	// keyed by attribute name ("security.capability", "user.x").
	Xattrs map[string]string
	// PAXRecords holds the PAX records not taken apart into the fields above,
	// for example SCHILY.acl.access. Left out are path, linkpath, size, uid,
	// gid, uname, gname, mtime, GNU.sparse.* and SCHILY.xattr.*, which the
	// fields hold, and atime and ctime, which neither squashfs nor a RUN root
	// keeps.
	PAXRecords map[string]string
	// Nlink is the number of paths sharing this non-directory's inode, 1 unless
	// hardlinked; it is 1 for directories.
	Nlink int
	// Implied is true for a directory no layer contained but a deeper entry
	// needed: mode 0755, owner 0:0, zero mtime, like containerd's MkdirAll.
	Implied bool
	// Source says where the content lives; for TypeHardlink it is the inode's.
	Source Source
}
