package imagebuild

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// How a NamespaceRunner keeps roots between steps.
//
// The root a step starts from is an overlay mount in the step's mount namespace:
// the lower directories are the image's root unpacked once (kept in the build
// cache directory under run-roots/, shared by later builds on the same layers)
// and, on top of it, the upper directories of the build's earlier RUN steps; the
// step writes into a fresh upper directory. What the step changed is exactly
// what its upper directory holds (overlayfs records deletions as 0/0 character
// devices and replaced directories with the user.overlay.opaque attribute), so
// the layer comes from that directory alone, and only entries that are there are
// compared with the state below. Where the kernel refuses the overlay mount,
// every step unpacks a root of its own (runCopy).

// errOverlayUnavailable is the kernel refusing the overlay mount in the step's
// namespaces.
var errOverlayUnavailable = errors.New("overlay mount unavailable")

// maxKeptRoots is how many unpacked roots run-roots/ in a cache directory keeps;
// older ones are removed once no build uses them.
const maxKeptRoots = 2

// rootsFormat changes whenever what a kept root holds changes.
const rootsFormat = "hpcship-run-root-1"

// opaqueXattr marks an upper directory that hides the directories below it.
const opaqueXattr = "user.overlay.opaque"

// nsBuild is a NamespaceRunner's state during one build.
type nsBuild struct {
	dir    string // temporary; holds the steps' directories
	steps  int
	stacks map[string]*layerStack // by chain key of the image's layers
}

// layerStack is a root filesystem as overlay lower directories, top first.
type layerStack struct {
	lowers []*lowerDir
}

// lowerDir is one directory of a stack.
type lowerDir struct {
	path string
	// owners holds the owners the layers record where they are not 0:0 and the
	// files on disk cannot carry them (single mapping); nil otherwise.
	owners map[string][2]int
}

// find looks rel up as the overlay would, returning its state, the host path and
// the directory holding it.
func (st *layerStack) find(rel string) (fileState, string, *lowerDir, bool) {
	comps := strings.Split(rel, "/")
	for _, l := range st.lowers {
		p := l.path
		opaque := false
		for i, c := range comps {
			p = filepath.Join(p, c)
			var sys syscall.Stat_t
			if err := syscall.Lstat(p, &sys); err != nil {
				if opaque {
					return fileState{}, "", nil, false
				}
				break // not in this directory: look below
			}
			if isWhiteout(&sys) {
				return fileState{}, "", nil, false
			}
			if i == len(comps)-1 {
				return stateOf(&sys), p, l, true
			}
			if sys.Mode&syscall.S_IFMT != syscall.S_IFDIR {
				return fileState{}, "", nil, false
			}
			if isOpaque(p) {
				opaque = true
			}
		}
	}
	return fileState{}, "", nil, false
}

// owner is the owner the layers record for rel, whose state on disk is s.
func (l *lowerDir) owner(rel string, s fileState, hostRoot bool) (int, int) {
	if o, ok := l.owners[rel]; ok {
		return o[0], o[1]
	}
	if hostRoot {
		return int(s.uid), int(s.gid)
	}
	return mapBack(s.uid, uint32(os.Geteuid())), mapBack(s.gid, uint32(os.Getegid()))
}

func isWhiteout(st *syscall.Stat_t) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFCHR && st.Rdev == 0
}

func isOpaque(p string) bool {
	var b [1]byte
	n, err := syscall.Getxattr(p, opaqueXattr, b[:])
	return err == nil && n == 1 && b[0] == 'y'
}

// chainKey identifies the root of layers for the caller's id mapping (m: its
// subordinate ids, whose host ids own the files of such a root).
func chainKey(layers []v1.Layer, hostRoot bool, m *idMapping) (string, error) {
	k := keyOf(rootsFormat, strconv.FormatBool(hostRoot), strconv.Itoa(os.Geteuid()))
	if m != nil {
		k = keyOf(k, "subids", strconv.Itoa(m.uid.Start), strconv.Itoa(m.uid.Count), strconv.Itoa(m.gid.Start), strconv.Itoa(m.gid.Count))
	}
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return "", err
		}
		k = keyOf(k, d.String())
	}
	return k, nil
}

// nsBuild returns the runner's state in rs, made on first use.
func (r *NamespaceRunner) nsBuild(rs *buildState) (*nsBuild, error) {
	v, err := rs.value(r, func() (any, func() error, error) {
		dir, err := os.MkdirTemp("", "hpcship-run-")
		if err != nil {
			return nil, nil, err
		}
		if abs, err := filepath.Abs(dir); err == nil {
			dir = abs
		}
		m := r.mapping()
		return &nsBuild{dir: dir, stacks: map[string]*layerStack{}}, func() error { return r.removeMapped(dir, m) }, nil
	})
	if err != nil {
		return nil, err
	}
	return v.(*nsBuild), nil
}

// runOverlay runs the step on an overlay of the kept root.
func (r *NamespaceRunner) runOverlay(ctx context.Context, req RunRequest) (_ v1.Layer, err error) {
	hostRoot := os.Geteuid() == 0
	rs := req.state
	if rs == nil {
		rs = &buildState{}
		defer func() {
			if eerr := rs.end(); eerr != nil && err == nil {
				err = eerr
			}
		}()
	}
	sess, err := r.nsBuild(rs)
	if err != nil {
		return nil, err
	}
	m := r.mapping()
	key, err := chainKey(req.Layers, hostRoot, m)
	if err != nil {
		return nil, err
	}
	st := sess.stacks[key]
	if st == nil {
		base, err := r.keptRoot(ctx, req, rs, sess, key, hostRoot, m)
		if err != nil {
			return nil, err
		}
		st = &layerStack{lowers: []*lowerDir{base}}
		sess.stacks[key] = st
	}
	sess.steps++
	stepDir := filepath.Join(sess.dir, "s"+strconv.Itoa(sess.steps))
	upper, work, merged := filepath.Join(stepDir, "upper"), filepath.Join(stepDir, "work"), filepath.Join(stepDir, "merged")
	keep := false
	defer func() {
		var rerr error
		if keep {
			rerr = errors.Join(r.removeMapped(work, m), removeTree(merged))
		} else {
			rerr = r.removeMapped(stepDir, m)
		}
		if rerr != nil && err == nil {
			err = rerr
		}
	}()
	for _, d := range []string{stepDir, upper, work, merged} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	var placeholders []string
	for _, b := range r.o.binds {
		made, err := prepareBindOverlay(upper, st, b, hostRoot)
		if err != nil {
			return nil, err
		}
		placeholders = append(placeholders, made...)
	}
	// With subordinate ids the directories of the root copied on the way to a
	// mount point get their owners in the step's namespace, which records the
	// mount points' state then and removes them afterwards.
	var ph *nsPlaceholders
	before := map[string]fileState{}
	if m != nil && len(placeholders) > 0 {
		ph = &nsPlaceholders{Paths: placeholders, States: filepath.Join(stepDir, "placeholders.json")}
		for _, rel := range placeholders {
			if s, _, _, ok := st.find(rel); ok {
				if o := [2]int{m.uid.inside(s.uid), m.gid.inside(s.gid)}; o != [2]int{} {
					if ph.Chown == nil {
						ph.Chown = map[string][2]int{}
					}
					ph.Chown[rel] = o
				}
			}
		}
	} else {
		for _, rel := range placeholders {
			var sys syscall.Stat_t
			if err := syscall.Lstat(filepath.Join(upper, rel), &sys); err != nil {
				return nil, err
			}
			before[rel] = stateOf(&sys)
		}
	}
	uid, gid, err := resolveUser(func(rel string) string {
		_, p, _, _ := st.find(rel)
		return p
	}, req.User)
	if err != nil {
		return nil, err
	}
	if !hostRoot && (uid != 0 || gid != 0) && (m == nil || uid > m.uid.Count || gid > m.gid.Count) {
		return nil, &UserNotMappedError{User: req.User, UID: uid, GID: gid}
	}
	lowers := make([]string, len(st.lowers))
	optLen := 0
	for i, l := range st.lowers {
		lowers[i] = l.path
		if rel, err := filepath.Rel(sess.dir, l.path); err == nil && !strings.HasPrefix(rel, "..") {
			lowers[i] = rel
		}
		optLen += len(lowers[i]) + 1
	}
	for _, p := range append([]string{upper, work, sess.dir}, lowers...) {
		if strings.ContainsAny(p, ",:\\") {
			return nil, fmt.Errorf("%w: path %q cannot be an overlay option", errOverlayUnavailable, p)
		}
	}
	if optLen+len(upper)+len(work) > 3500 || len(lowers) > 400 {
		return nil, fmt.Errorf("%w: %d layers are too many for one overlay mount", errOverlayUnavailable, len(lowers))
	}
	dir := req.WorkingDir
	if dir == "" {
		dir = "/"
	}
	child := nsChild{Root: merged, Argv: req.Argv, Env: req.Env, Dir: dir, UID: uid, GID: gid, Binds: r.o.binds,
		Overlay: &nsOverlay{Dir: sess.dir, Lower: lowers, Upper: upper, Work: work}, Placeholders: ph}
	if err := r.exec(ctx, child, hostRoot, m); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if ph == nil {
		if err := removePlaceholders(upper, placeholders, before); err != nil {
			return nil, err
		}
	}
	var l v1.Layer
	var owners map[string][2]int
	if m != nil {
		if l, owners, err = r.diffMapped(ctx, req, upper, st, m, ph); err != nil {
			return nil, fmt.Errorf("comparing the root filesystem: %w", err)
		}
	} else {
		var out []diffEntry
		if out, owners, err = overlayDiff(req.Epoch, upper, st, hostRoot); err != nil {
			return nil, fmt.Errorf("comparing the root filesystem: %w", err)
		}
		if l, err = writeEntries(ctx, req, out); err != nil {
			return nil, err
		}
		// The upper directory becomes a lower one for later steps: give it the
		// times the layer records, as an unpacked root would have.
		if l != nil {
			if err := setUpperTimes(upper, out); err != nil {
				return nil, err
			}
		}
	}
	if l == nil {
		return nil, nil
	}
	dg, err := l.Digest()
	if err != nil {
		return nil, err
	}
	keep = true
	sess.stacks[keyOf(key, dg.String())] = &layerStack{lowers: append([]*lowerDir{{path: upper, owners: owners}}, st.lowers...)}
	return l, nil
}

// keptRoot returns the unpacked root of req.Layers, from run-roots/ in the cache
// directory or unpacked there now; it stays locked against removal until the
// build ends. Without a cache directory it is unpacked into the build's directory.
// With subordinate ids (m) its files have the owners the layers record where
// the mapping reaches them; it warns through req.Log about those it does not.
func (r *NamespaceRunner) keptRoot(ctx context.Context, req RunRequest, rs *buildState, sess *nsBuild, key string, hostRoot bool, m *idMapping) (*lowerDir, error) {
	store := sess.dir
	if req.CacheDir != "" {
		abs, err := filepath.Abs(req.CacheDir)
		if err != nil {
			return nil, err
		}
		store = filepath.Join(abs, "run-roots")
		if err := os.MkdirAll(store, 0o700); err != nil {
			return nil, err
		}
		lock, err := os.OpenFile(filepath.Join(store, key+".lock"), os.O_CREATE|os.O_RDWR, 0o600)
		if err != nil {
			return nil, err
		}
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_SH); err != nil {
			lock.Close()
			return nil, err
		}
		rs.onEnd(lock.Close)
		now := time.Now()
		_ = os.Chtimes(lock.Name(), now, now)
	}
	dir := filepath.Join(store, key)
	if _, err := os.Stat(filepath.Join(dir, "owners.json")); err != nil {
		if err := r.unpackRoot(ctx, req, store, dir, hostRoot, m); err != nil {
			return nil, fmt.Errorf("materialising the root filesystem: %w", err)
		}
		if req.CacheDir != "" {
			evictRoots(store, key, func(dir string) error { return r.removeMapped(dir, m) })
		}
	}
	b, err := os.ReadFile(filepath.Join(dir, "owners.json"))
	if err != nil {
		return nil, err
	}
	l := &lowerDir{path: filepath.Join(dir, "root")}
	if err := json.Unmarshal(b, &l.owners); err != nil {
		return nil, fmt.Errorf("kept root %s: %w", dir, err)
	}
	if m != nil {
		warnUnmapped(req.Log, l.owners, m)
	}
	return l, nil
}

// warnUnmapped logs how many files of the image have owners beyond the
// subordinate ids: the step sees those ids as root (the caller), and the layer
// keeps the recorded owners of such files unless the step chowns them.
func warnUnmapped(log *slog.Logger, owners map[string][2]int, m *idMapping) {
	if log == nil {
		return
	}
	var beyond []string
	for rel, o := range owners {
		if o[0] > m.uid.Count || o[1] > m.gid.Count {
			beyond = append(beyond, rel)
		}
	}
	if len(beyond) == 0 {
		return
	}
	slices.Sort(beyond)
	o := owners[beyond[0]]
	log.Warn("RUN: files of the image are owned by ids beyond the subordinate ids; the step sees those ids as root, the layer keeps them",
		"files", len(beyond), "first", "/"+beyond[0], "uid", o[0], "gid", o[1],
		"max_uid", m.uid.Count, "max_gid", m.gid.Count)
}

// unpackRoot unpacks req.Layers into dir (as dir/root, with dir/owners.json),
// atomically: another process unpacking the same root at the same time wins or
// loses as a whole.
// With subordinate ids (m) the files get the owners the layers record, as far
// as the mapping reaches, by a process in a user namespace with that mapping.
func (r *NamespaceRunner) unpackRoot(ctx context.Context, req RunRequest, store, dir string, hostRoot bool, m *idMapping) (err error) {
	tmp, err := os.MkdirTemp(store, "tmp-")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil || tmp != "" {
			_ = r.removeMapped(tmp, m)
		}
	}()
	root := filepath.Join(tmp, "root")
	tree, err := materialise(ctx, root, req.Layers, hostRoot)
	if err != nil {
		return err
	}
	if err := os.Chmod(root, 0o755); err != nil {
		return err
	}
	if err := preparePlaceholders(root); err != nil {
		return err
	}
	owners := map[string][2]int{}
	if !hostRoot {
		for _, e := range tree.Entries() {
			if e.UID != 0 || e.GID != 0 {
				owners[e.Path] = [2]int{e.UID, e.GID}
			}
		}
	}
	b, err := json.Marshal(owners)
	if err != nil {
		return err
	}
	ownersFile := filepath.Join(tmp, "owners.json")
	if err := os.WriteFile(ownersFile, b, 0o600); err != nil {
		return err
	}
	if m != nil && m.reachesAny(owners) {
		job := &nsChownJob{Root: root, Owners: ownersFile, MaxUID: m.uid.Count, MaxGID: m.gid.Count}
		if err := r.chore(ctx, &nsChore{Chown: job}, m, io.Discard); err != nil {
			return fmt.Errorf("giving the files their owners: %w", err)
		}
	}
	if err := os.Rename(tmp, dir); err != nil {
		if _, serr := os.Stat(filepath.Join(dir, "owners.json")); serr == nil {
			return nil // unpacked by someone else meanwhile
		}
		return err
	}
	tmp = ""
	return nil
}

// evictRoots removes the least recently used kept roots beyond maxKeptRoots that
// no build is using, and unpacking leftovers older than a day, with remove.
func evictRoots(store, keep string, remove func(dir string) error) {
	locks, _ := filepath.Glob(filepath.Join(store, "*.lock"))
	type used struct {
		key string
		at  time.Time
	}
	var all []used
	for _, l := range locks {
		if st, err := os.Stat(l); err == nil {
			all = append(all, used{strings.TrimSuffix(filepath.Base(l), ".lock"), st.ModTime()})
		}
	}
	sort.Slice(all, func(i, j int) bool { return all[i].at.After(all[j].at) })
	kept := 0
	for _, u := range all {
		if u.key == keep || kept < maxKeptRoots-1 {
			if u.key != keep {
				kept++
			}
			continue
		}
		f, err := os.OpenFile(filepath.Join(store, u.key+".lock"), os.O_RDWR, 0)
		if err != nil {
			continue
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			if gone, err := os.MkdirTemp(store, "tmp-"); err == nil {
				_ = os.Rename(filepath.Join(store, u.key), filepath.Join(gone, "root"))
				_ = remove(gone)
			}
		}
		f.Close()
	}
	old, _ := filepath.Glob(filepath.Join(store, "tmp-*"))
	for _, t := range old {
		if st, err := os.Stat(t); err == nil && time.Since(st.ModTime()) > 24*time.Hour {
			_ = remove(t)
		}
	}
}

// prepareBindOverlay creates the mount point of b in upper where the root lacks
// it, copying the metadata of existing directories on the way, and returns what
// it created (relative paths, parents first).
func prepareBindOverlay(upper string, st *layerStack, b Bind, hostRoot bool) ([]string, error) {
	src, err := os.Stat(b.Source)
	if err != nil {
		return nil, fmt.Errorf("bind source: %w", err)
	}
	if !path.IsAbs(b.Target) || path.Clean(b.Target) == "/" {
		return nil, fmt.Errorf("bind target %q: %w: must be an absolute path below /", b.Target, ErrUnsafePath)
	}
	comps := strings.Split(strings.TrimPrefix(path.Clean(b.Target), "/"), "/")
	missing := -1
	for i := range comps {
		rel := strings.Join(comps[:i+1], "/")
		last := i == len(comps)-1
		var sys syscall.Stat_t
		var s fileState
		found := false
		if err := syscall.Lstat(filepath.Join(upper, rel), &sys); err == nil {
			s, found = stateOf(&sys), true
		} else {
			s, _, _, found = st.find(rel)
		}
		switch {
		case !found:
			missing = i
		case s.mode&syscall.S_IFMT == syscall.S_IFLNK:
			return nil, fmt.Errorf("bind target %q: %w: /%s is a symlink", b.Target, ErrUnsafePath, rel)
		case !last && !s.isDir():
			return nil, fmt.Errorf("bind target %q: /%s is not a directory", b.Target, rel)
		}
		if missing >= 0 {
			break
		}
	}
	if missing < 0 {
		return nil, nil
	}
	var made []string
	var copied []string
	for i := range comps {
		rel := strings.Join(comps[:i+1], "/")
		p := filepath.Join(upper, filepath.FromSlash(rel))
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if i < missing {
			s, _, _, _ := st.find(rel)
			if err := os.Mkdir(p, 0o700); err != nil {
				return nil, err
			}
			if hostRoot {
				if err := os.Lchown(p, int(s.uid), int(s.gid)); err != nil {
					return nil, err
				}
			}
			if err := os.Chmod(p, fileMode(s.mode)); err != nil {
				return nil, err
			}
			copied = append(copied, rel)
		} else if i < len(comps)-1 || src.IsDir() {
			err = os.Mkdir(p, 0o755)
		} else {
			err = os.WriteFile(p, nil, 0o644)
		}
		if err != nil {
			return nil, err
		}
		made = append(made, rel)
	}
	for i := len(copied) - 1; i >= 0; i-- {
		s, _, _, _ := st.find(copied[i])
		t := time.Unix(s.mtime.Unix())
		if err := os.Chtimes(filepath.Join(upper, filepath.FromSlash(copied[i])), t, t); err != nil {
			return nil, err
		}
	}
	return made, nil
}

// removePlaceholders removes the mount points the step left as they were, which
// are no part of the root, keeping the times of the directories holding them.
func removePlaceholders(upper string, placeholders []string, before map[string]fileState) error {
	unchanged := map[string]bool{}
	for _, rel := range placeholders {
		var sys syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(upper, rel), &sys); err == nil && stateOf(&sys) == before[rel] {
			unchanged[rel] = true
		}
	}
	for i := len(placeholders) - 1; i >= 0; i-- {
		rel := placeholders[i]
		if !unchanged[rel] {
			continue
		}
		parent := filepath.Dir(filepath.Join(upper, rel))
		var sys syscall.Stat_t
		if err := syscall.Lstat(parent, &sys); err != nil {
			return err
		}
		if err := os.Remove(filepath.Join(upper, rel)); err != nil {
			continue // not empty: the step put something below it
		}
		at, mt := time.Unix(sys.Atim.Unix()), time.Unix(sys.Mtim.Unix())
		if err := os.Chtimes(parent, at, mt); err != nil {
			return err
		}
	}
	return nil
}

// sameMeta reports whether an entry kept the metadata of the one below.
func sameMeta(a, b fileState) bool {
	return a.mode == b.mode && a.uid == b.uid && a.gid == b.gid && a.mtime == b.mtime && a.size == b.size &&
		(a.isDir() || a.nlink == b.nlink)
}

// overlayDiff turns the step's upper directory into layer entries. It also
// returns the recorded owners of what it emitted that the files cannot carry.
func overlayDiff(epoch time.Time, upper string, st *layerStack, hostRoot bool) ([]diffEntry, map[string][2]int, error) {
	var out []diffEntry
	owners := map[string][2]int{}
	links := map[uint64]string{}
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	err := walkUpper(upper, func(rel string, s fileState, sys *syscall.Stat_t) error {
		if rel == "." {
			return nil
		}
		p := filepath.Join(upper, filepath.FromSlash(rel))
		low, lowPath, lowDir, inLower := st.find(rel)
		mt := time.Unix(s.mtime.Unix())
		if !epoch.IsZero() && mt.After(epoch) {
			mt = epoch
		}
		if isWhiteout(sys) {
			if inLower {
				wh := path.Join(path.Dir(rel), ".wh."+path.Base(rel))
				out = append(out, diffEntry{name: wh, hdr: &tar.Header{Name: wh, Typeflag: tar.TypeReg, ModTime: epoch, Format: tar.FormatPAX}})
			}
			return nil
		}
		h := &tar.Header{Name: rel, Mode: int64(s.mode & 0o7777), ModTime: mt, Format: tar.FormatPAX}
		h.Uid, h.Gid = int(s.uid), int(s.gid)
		if !hostRoot {
			h.Uid, h.Gid = mapBack(s.uid, euid), mapBack(s.gid, egid)
		}
		if inLower && low.uid == s.uid && low.gid == s.gid {
			h.Uid, h.Gid = lowDir.owner(rel, low, hostRoot)
		}
		d := diffEntry{name: rel, hdr: h}
		same := inLower && low.mode == s.mode && sameMeta(low, s)
		if same && s.mode&syscall.S_IFMT != syscall.S_IFLNK {
			a, err := xattrsOf(p)
			if err != nil {
				return err
			}
			b, err := xattrsOf(lowPath)
			if err != nil {
				return err
			}
			same = maps.Equal(a, b)
		}
		switch s.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
			if isOpaque(p) && inLower && low.isDir() {
				if err := addXattrs(h, p); err != nil {
					return err
				}
				opq := rel + "/.wh..wh..opq"
				out = append(out, d, diffEntry{name: opq, hdr: &tar.Header{Name: opq, Typeflag: tar.TypeReg, ModTime: mt, Format: tar.FormatPAX}})
				recordOwner(owners, rel, h)
				return nil
			}
			if same {
				return nil
			}
		case syscall.S_IFREG:
			if first, ok := links[s.ino]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				break
			}
			if same {
				eq, err := sameContent(p, lowPath)
				if err != nil {
					return err
				}
				if eq {
					return nil
				}
			}
			if s.nlink > 1 {
				links[s.ino] = rel
			}
			h.Typeflag, h.Size, d.file = tar.TypeReg, int64(s.size), p
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			if same {
				if old, err := os.Readlink(lowPath); err == nil && old == target {
					return nil
				}
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case syscall.S_IFIFO:
			if same {
				return nil
			}
			h.Typeflag = tar.TypeFifo
		case syscall.S_IFCHR, syscall.S_IFBLK:
			setDevice(h, s.mode, sys.Rdev)
		default:
			return nil // sockets are not layer content
		}
		if err := addXattrs(h, p); err != nil {
			return err
		}
		recordOwner(owners, rel, h)
		out = append(out, d)
		return nil
	})
	return out, owners, err
}

func recordOwner(owners map[string][2]int, rel string, h *tar.Header) {
	if h.Uid != 0 || h.Gid != 0 {
		owners[rel] = [2]int{h.Uid, h.Gid}
	}
}

// sameContent compares two regular files' bytes.
func sameContent(a, b string) (bool, error) {
	fa, err := os.Open(a)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.Open(b)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	ba, bb := make([]byte, 64<<10), make([]byte, 64<<10)
	for {
		na, ea := io.ReadFull(fa, ba)
		nb, eb := io.ReadFull(fb, bb)
		if !bytes.Equal(ba[:na], bb[:nb]) {
			return false, nil
		}
		if ea != nil || eb != nil {
			if (errors.Is(ea, io.EOF) || errors.Is(ea, io.ErrUnexpectedEOF)) && (errors.Is(eb, io.EOF) || errors.Is(eb, io.ErrUnexpectedEOF)) {
				return true, nil
			}
			return false, errors.Join(ea, eb)
		}
	}
}

// walkUpper calls fn for every path under root in lexical order. Directories
// the step closed to their owner are opened for the walk and closed again.
func walkUpper(root string, fn func(rel string, s fileState, sys *syscall.Stat_t) error) error {
	var reclose []func()
	defer func() {
		for _, f := range slices.Backward(reclose) {
			f()
		}
	}()
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var sys syscall.Stat_t
		if err := syscall.Lstat(p, &sys); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if err := fn(filepath.ToSlash(rel), stateOf(&sys), &sys); err != nil {
			return err
		}
		if d.IsDir() && sys.Mode&0o500 != 0o500 && int(sys.Uid) == os.Geteuid() {
			mode := os.FileMode(sys.Mode & 0o777)
			if err := os.Chmod(p, mode|0o700); err != nil {
				return err
			}
			mt := time.Unix(sys.Mtim.Unix())
			reclose = append(reclose, func() {
				_ = os.Chmod(p, fileMode(sys.Mode))
				_ = os.Chtimes(p, mt, mt)
			})
		}
		return nil
	})
}
