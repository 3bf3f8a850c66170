package rootfs

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"math"
	"slices"
	"strings"
)

const (
	whiteoutPrefix = ".wh."
	// whiteoutMetaPrefix starts AUFS bookkeeping names (.wh..wh.plnk,
	// .wh..wh.aufs); the opaque marker is the only one with a meaning in OCI.
	whiteoutMetaPrefix = whiteoutPrefix + whiteoutPrefix
	opaqueWhiteout     = whiteoutMetaPrefix + ".opq"

	// maxPath and maxName are Linux's PATH_MAX and NAME_MAX; maxSymlinks is its
	// MAXSYMLINKS, the number of links one lookup may follow. maxWalk bounds the
	// components (of the name and of every symlink target) one lookup walks:
	// twice what a name can have, far above what real images need.
	maxPath     = 4096
	maxName     = 255
	maxSymlinks = 40
	maxWalk     = 2 * maxPath

	// maxXattrName and maxXattrValue are Linux's XATTR_NAME_MAX and
	// XATTR_SIZE_MAX, the longest xattr name and value setxattr(2) takes.
	maxXattrName  = 255
	maxXattrValue = 64 << 10
	// maxRecords and maxRecordBytes bound the xattrs and other PAX records an
	// entry keeps, names and values counted together: room for the largest
	// value Linux takes with 64 KiB more of others, while real entries carry
	// a capability or an ACL of a few dozen bytes.
	maxRecords     = 128
	maxRecordBytes = 128 << 10
	// maxOwnerName is Linux's LOGIN_NAME_MAX.
	maxOwnerName = 256
	// maxDevMajor and maxDevMinor are the largest device numbers Linux's
	// dev_t (MINORBITS 20) and squashfs can hold.
	maxDevMajor = 1<<12 - 1
	maxDevMinor = 1<<20 - 1
)

type recordKind uint8

const (
	kindAdd recordKind = iota
	kindWhiteout
	kindOpaque
)

// record is one meaningful tar entry of a layer, validated and classified.
type record struct {
	index int
	name  string
	kind  recordKind
	// comps is the cleaned name. For a whiteout it names the directory holding
	// the removed path, and target is the removed basename.
	comps  []string
	target string
	// link is a hardlink's cleaned target, or a symlink's target split at "/".
	link []string
	meta Entry
}

// pathError is a rejection found while cleaning a name, before the layer and
// entry are known.
type pathError struct {
	reason string
	err    error
}

// cleanName splits a tar name into components. It strips leading slashes (an
// absolute name means the same path inside the root, as containerd and GNU tar
// apply it), drops empty and "." components, and rejects ".." anywhere, NUL bytes
// and over-long names and components.
func cleanName(name string) ([]string, *pathError) {
	if strings.IndexByte(name, 0) >= 0 {
		return nil, &pathError{"name contains a NUL byte", ErrUnsafePath}
	}
	if len(name) > maxPath {
		return nil, &pathError{fmt.Sprintf("name is %d bytes, longer than %d", len(name), maxPath), ErrUnsafePath}
	}
	var comps []string
	for c := range strings.SplitSeq(name, "/") {
		switch {
		case c == "" || c == ".":
			continue
		case c == "..":
			return nil, &pathError{`name has a ".." component`, ErrUnsafePath}
		case len(c) > maxName:
			return nil, &pathError{fmt.Sprintf("name component is %d bytes, longer than %d", len(c), maxName), ErrUnsafePath}
		}
		comps = append(comps, c)
	}
	return comps, nil
}

// readLayer reads every tar header of layer li once, keeping metadata only, and
// drains the stream so that a digest-verifying reader (ggcr's) checks it.
// total counts what the layers read so far hold.
func readLayer(ctx context.Context, li int, l Layer, o *options, total *totals) ([]*record, error) {
	rc, err := l.Uncompressed()
	if err != nil {
		return nil, fmt.Errorf("opening layer %d: %w", li, err)
	}
	defer rc.Close()
	cr := &countingReader{r: rc}
	tr := tar.NewReader(cr)
	budget := contentBudget{o: o, layer: li, total: total}
	var recs []*record
	for idx := 0; ; idx++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			if err := budget.stored(cr.n); err != nil {
				return nil, err
			}
			break
		}
		if err != nil {
			return nil, readError(li, idx, err)
		}
		if err := budget.stored(cr.n); err != nil {
			return nil, err
		}
		if total.entries++; total.entries > o.maxEntries {
			return nil, &LayerError{Layer: li, Entry: idx, Name: hdr.Name, Reason: fmt.Sprintf("the layers hold more than %d entries", o.maxEntries), Err: ErrTooManyEntries}
		}
		rec, keep, err := parseHeader(li, idx, hdr, o)
		if err != nil {
			return nil, err
		}
		if !keep {
			continue
		}
		if err := budget.metadata(rec); err != nil {
			return nil, err
		}
		if rec.kind == kindAdd && rec.meta.Type == TypeRegular {
			if err := budget.add(idx, hdr.Name, rec.meta.Size, cr.n); err != nil {
				return nil, err
			}
		}
		recs = append(recs, rec)
	}
	if _, err := io.Copy(io.Discard, rc); err != nil {
		return nil, fmt.Errorf("verifying layer %d: %w", li, err)
	}
	return recs, nil
}

// readError marks malformed tar data as ErrInvalidLayer and leaves other read
// errors (from the network, say) as they are.
func readError(li, idx int, err error) error {
	if errors.Is(err, tar.ErrHeader) || errors.Is(err, io.ErrUnexpectedEOF) {
		return &LayerError{Layer: li, Entry: idx, Reason: "reading tar header", Err: fmt.Errorf("%w: %w", ErrInvalidLayer, err)}
	}
	return fmt.Errorf("reading layer %d entry %d: %w", li, idx, err)
}

// parseHeader validates and classifies one header. keep is false for entries
// without meaning in a merged tree (PAX global headers, AUFS bookkeeping).
func parseHeader(li, idx int, hdr *tar.Header, o *options) (rec *record, keep bool, err error) {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		o.logger.Debug("ignoring PAX global header", "layer", li, "entry", idx)
		return nil, false, nil
	}
	reject := func(reason string, sentinel error) (*record, bool, error) {
		return nil, false, &LayerError{Layer: li, Entry: idx, Name: hdr.Name, Reason: reason, Err: sentinel}
	}
	comps, perr := cleanName(hdr.Name)
	if perr != nil {
		return reject(perr.reason, perr.err)
	}
	if strings.HasPrefix(hdr.Name, "/") {
		o.logger.Debug("treating absolute name as relative to the root", "layer", li, "entry", idx, "name", hdr.Name)
	}
	switch aufs, reason := whiteoutComponents(comps); {
	case aufs:
		o.logger.Debug("ignoring AUFS metadata entry", "layer", li, "entry", idx, "name", hdr.Name)
		return nil, false, nil
	case reason != "":
		return reject(reason, ErrInvalidLayer)
	}
	rec = &record{index: idx, name: hdr.Name, comps: comps}
	if reason, err := classifyWhiteout(rec); err != nil {
		return reject(reason, err)
	}
	if rec.kind != kindAdd {
		return rec, true, nil
	}
	if reason, err := rec.parseMeta(li, hdr); err != nil {
		return reject(reason, err)
	}
	return rec, true, nil
}

// whiteoutComponents checks the components of a name, in order, for AUFS
// bookkeeping (a ".wh..wh." name other than a final opaque marker), which
// makes the entry meaningless, and for a whiteout name used as a directory.
func whiteoutComponents(comps []string) (aufs bool, reason string) {
	for i, c := range comps {
		last := i == len(comps)-1
		switch {
		case strings.HasPrefix(c, whiteoutMetaPrefix) && !(last && c == opaqueWhiteout):
			return true, ""
		case strings.HasPrefix(c, whiteoutPrefix) && !last:
			return false, "whiteout name used as a directory"
		}
	}
	return false, ""
}

// classifyWhiteout makes rec a whiteout or opaque marker when its basename
// says so; whiteoutComponents has vetted the other components. Any entry type
// counts: only the name matters, as in containerd's and umoci's appliers.
func classifyWhiteout(rec *record) (string, error) {
	comps := rec.comps
	n := len(comps)
	if n == 0 || !strings.HasPrefix(comps[n-1], whiteoutPrefix) {
		return "", nil
	}
	base := comps[n-1]
	rec.comps = comps[:n-1]
	if base == opaqueWhiteout {
		rec.kind = kindOpaque
		return "", nil
	}
	rec.kind = kindWhiteout
	rec.target = strings.TrimPrefix(base, whiteoutPrefix)
	switch rec.target {
	case "":
		return "whiteout without a name", ErrInvalidLayer
	case ".", "..":
		return fmt.Sprintf("whiteout of %q", rec.target), ErrUnsafePath
	}
	return "", nil
}

// parseMeta fills in the metadata of an addition from its header, refusing
// what Linux cannot hold.
func (rec *record) parseMeta(li int, hdr *tar.Header) (string, error) {
	m := Entry{
		Mode:    uint32(hdr.Mode & 0o7777),
		UID:     hdr.Uid,
		GID:     hdr.Gid,
		Uname:   hdr.Uname,
		Gname:   hdr.Gname,
		ModTime: hdr.ModTime,
		Nlink:   1,
		Source:  Source{Layer: li, Entry: rec.index},
	}
	// Linux owners are 32-bit (uid_t, gid_t); PAX records can carry any number.
	if m.UID < 0 || m.GID < 0 || m.UID > math.MaxUint32 || m.GID > math.MaxUint32 {
		return fmt.Sprintf("owner %d:%d outside 0 to %d", m.UID, m.GID, uint32(math.MaxUint32)), ErrInvalidLayer
	}
	if reason, err := rec.parseType(hdr, &m); err != nil {
		return reason, err
	}
	if m.Type != TypeDir && len(rec.comps) == 0 {
		return "non-directory entry for the root", ErrInvalidLayer
	}
	if len(m.Uname) > maxOwnerName || len(m.Gname) > maxOwnerName {
		return fmt.Sprintf("owner name of %d bytes, longer than %d", max(len(m.Uname), len(m.Gname)), maxOwnerName), ErrInvalidLayer
	}
	var err error
	if m.Xattrs, m.PAXRecords, err = keptRecords(hdr.PAXRecords); err != nil {
		return err.Error(), ErrInvalidLayer
	}
	rec.meta = m
	return "", nil
}

// parseType sets the type of m and what the type adds: size, link target or
// device number.
func (rec *record) parseType(hdr *tar.Header, m *Entry) (string, error) {
	switch hdr.Typeflag {
	case tar.TypeReg, tar.TypeGNUSparse, tar.TypeCont:
		m.Type, m.Size = TypeRegular, hdr.Size
	case tar.TypeDir:
		m.Type = TypeDir
	case tar.TypeSymlink:
		m.Type, m.Linkname = TypeSymlink, hdr.Linkname
		rec.link = strings.Split(hdr.Linkname, "/")
		// symlink(2) refuses empty targets and those of PATH_MAX bytes or
		// more; an empty one would otherwise resolve to its own directory.
		if hdr.Linkname == "" || strings.IndexByte(hdr.Linkname, 0) >= 0 || len(hdr.Linkname) >= maxPath {
			return "symlink target is empty, has a NUL byte or is 4096 bytes or longer", ErrUnsafePath
		}
	case tar.TypeLink:
		m.Type = TypeHardlink
		link, perr := cleanName(hdr.Linkname)
		if perr != nil {
			return "hardlink target: " + perr.reason, perr.err
		}
		rec.link = link
	case tar.TypeChar, tar.TypeBlock:
		// Other types' headers may carry any numbers there; only devices keep them.
		m.Type, m.Devmajor, m.Devminor = TypeCharDevice, hdr.Devmajor, hdr.Devminor
		if hdr.Typeflag == tar.TypeBlock {
			m.Type = TypeBlockDevice
		}
		// Linux's dev_t holds a 12-bit major and a 20-bit minor, and squashfs
		// stores exactly that; larger numbers would wrap into other devices.
		if m.Devmajor < 0 || m.Devminor < 0 || m.Devmajor > maxDevMajor || m.Devminor > maxDevMinor {
			return fmt.Sprintf("device %d:%d outside 0:0 to %d:%d", m.Devmajor, m.Devminor, maxDevMajor, maxDevMinor), ErrInvalidLayer
		}
	case tar.TypeFifo:
		m.Type = TypeFIFO
	default:
		return fmt.Sprintf("unsupported entry type %q", hdr.Typeflag), ErrInvalidLayer
	}
	return "", nil
}

// keptRecords splits the PAX records an entry keeps into xattrs and others,
// refusing what Linux cannot hold or beyond the bounds per entry.
func keptRecords(records map[string]string) (xattrs, others map[string]string, err error) {
	count, size := 0, 0
	// Sorted, so that of several faults the same one is reported every time.
	for _, k := range slices.Sorted(maps.Keys(records)) {
		v := records[k]
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			switch {
			case name == "" || len(name) > maxXattrName:
				return nil, nil, fmt.Errorf("xattr name of %d bytes, not 1 to %d", len(name), maxXattrName)
			case len(v) > maxXattrValue:
				return nil, nil, fmt.Errorf("xattr %q has a value of %d bytes, more than %d", name, len(v), maxXattrValue)
			}
			if xattrs == nil {
				xattrs = map[string]string{}
			}
			xattrs[name] = v
			k = name
		} else {
			if reflectedPAX(k) {
				continue
			}
			if others == nil {
				others = map[string]string{}
			}
			others[k] = v
		}
		count++
		size += len(k) + len(v)
		switch {
		case count > maxRecords:
			return nil, nil, fmt.Errorf("more than %d xattrs and PAX records", maxRecords)
		case size > maxRecordBytes:
			return nil, nil, fmt.Errorf("xattrs and PAX records of more than %d bytes", maxRecordBytes)
		}
	}
	return xattrs, others, nil
}

// reflectedPAX reports whether the PAX record k is already reflected in the
// header fields archive/tar parsed.
func reflectedPAX(k string) bool {
	switch k {
	case "path", "linkpath", "size", "uid", "gid", "uname", "gname", "mtime", "atime", "ctime":
		return true
	}
	return strings.HasPrefix(k, "GNU.sparse.")
}
