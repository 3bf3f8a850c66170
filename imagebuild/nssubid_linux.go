package imagebuild

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// idMapping is the full mapping of an unprivileged caller with subordinate ids:
// the caller is 0, its subordinate range 1 to count.
type idMapping struct {
	uid, gid             idRange
	newuidmap, newgidmap string
}

type idRange struct {
	Start, Count int
}

// inside returns the id in the namespace of a file's host id: 1 to Count for
// the range, 0 for anything else (the caller's own id, and ids the mapping
// does not reach, which only the caller's files have in a root it unpacked).
func (r idRange) inside(host uint32) int {
	if h := int(host); h >= r.Start && h < r.Start+r.Count {
		return h - r.Start + 1
	}
	return 0
}

// nsPlaceholders are the mount points (slash paths relative to the upper
// directory, parents first) that a step's preparation made, with subordinate
// ids: the child gives the directories of the root copied on the way their
// owners in the namespace (Chown) and records the state of them all in
// States (JSON, path → stat), for the diff to remove those the step left as
// they were.
type nsPlaceholders struct {
	Paths  []string
	Chown  map[string][2]int `json:",omitempty"`
	States string
}

// ownPlaceholders does p's work in upper, as root of the step's namespace.
func ownPlaceholders(upper string, p *nsPlaceholders) error {
	for rel, o := range p.Chown {
		if err := os.Lchown(filepath.Join(upper, filepath.FromSlash(rel)), o[0], o[1]); err != nil {
			return err
		}
	}
	states := make(map[string]syscall.Stat_t, len(p.Paths))
	for _, rel := range p.Paths {
		var sys syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(upper, filepath.FromSlash(rel)), &sys); err != nil {
			return err
		}
		states[rel] = sys
	}
	b, err := json.Marshal(states)
	if err != nil {
		return err
	}
	return os.WriteFile(p.States, b, 0o600)
}

// subordinateIDs finds the caller's ranges in /etc/subuid and /etc/subgid and
// the newuidmap and newgidmap programs; nil when any is missing.
func subordinateIDs() *idMapping {
	nu, err1 := exec.LookPath("newuidmap")
	ng, err2 := exec.LookPath("newgidmap")
	if err1 != nil || err2 != nil {
		return nil
	}
	uid, gid := os.Geteuid(), os.Getegid()
	names := []string{strconv.Itoa(uid)}
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		names = append(names, u.Username)
	}
	ur, ok1 := subRange("/etc/subuid", names)
	gr, ok2 := subRange("/etc/subgid", names)
	if !ok1 || !ok2 {
		return nil
	}
	_ = gid
	return &idMapping{uid: ur, gid: gr, newuidmap: nu, newgidmap: ng}
}

// subRange returns the first range of file that belongs to one of names.
func subRange(file string, names []string) (idRange, bool) {
	var r idRange
	found := false
	_ = scanColon(file, func(f []string) bool {
		if len(f) != 3 || !contains(names, f[0]) {
			return false
		}
		start, err1 := strconv.Atoi(f[1])
		count, err2 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || start <= 0 || count <= 0 {
			return false
		}
		r, found = idRange{Start: start, Count: count}, true
		return true
	})
	return r, found
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// mapping returns the caller's full mapping, or nil for root and for callers
// without subordinate ids.
func (r *NamespaceRunner) mapping() *idMapping {
	if os.Geteuid() == 0 {
		return nil
	}
	r.ids.Do(func() { r.idMap = subordinateIDs() })
	return r.idMap
}

// startMapped starts cmd, whose child waits for its maps (nsChild.WaitMaps),
// and writes them with newuidmap and newgidmap; with m nil it only starts cmd.
// cmd.ExtraFiles must hold exactly one file (fd 3); the sync pipe becomes fd 4.
func startMapped(cmd *exec.Cmd, m *idMapping) error {
	var release *os.File
	if m != nil {
		pr, pw, err := os.Pipe()
		if err != nil {
			return err
		}
		defer pr.Close()
		defer pw.Close()
		cmd.ExtraFiles = append(cmd.ExtraFiles, pr)
		release = pw
	}
	if err := cmd.Start(); err != nil {
		if errors.Is(err, syscall.EPERM) || errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, syscall.EACCES) {
			return &UserNamespaceError{Err: err}
		}
		return err
	}
	if m == nil {
		return nil
	}
	pid := strconv.Itoa(cmd.Process.Pid)
	for _, w := range []struct {
		prog string
		self int
		r    idRange
	}{{m.newuidmap, os.Geteuid(), m.uid}, {m.newgidmap, os.Getegid(), m.gid}} {
		out, err := exec.Command(w.prog, pid, "0", strconv.Itoa(w.self), "1", "1", strconv.Itoa(w.r.Start), strconv.Itoa(w.r.Count)).CombinedOutput()
		if err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("mapping subordinate ids with %s: %w: %s", filepath.Base(w.prog), err, strings.TrimSpace(string(out)))
		}
	}
	return release.Close()
}

// awaitMaps waits until the parent has written the namespace's maps, then
// executes the program again: only then is it root of the namespace with its
// capabilities.
func awaitMaps(c nsChild) error {
	sync := os.NewFile(4, "sync")
	_, _ = io.Copy(io.Discard, sync)
	sync.Close()
	c.WaitMaps = false
	cfg, err := json.Marshal(c)
	if err != nil {
		return err
	}
	return syscall.Exec("/proc/self/exe", []string{"imagebuild-run"}, []string{nsChildEnv + "=" + string(cfg)})
}

// nsChore is work on a step's files done inside a user namespace with the
// subordinate ids, where the files the step made under other ids are
// accessible: removing a directory, or making a step's layer entries.
type nsChore struct {
	// Remove is a directory to remove.
	Remove string `json:",omitempty"`
	// Diff describes a step whose upper directory becomes a tar stream on
	// standard output.
	Diff *nsDiffJob `json:",omitempty"`
	// Chown gives the files of a root being unpacked the owners its layers
	// record, as far as the mapping reaches.
	Chown *nsChownJob `json:",omitempty"`
}

// nsChownJob is a root whose files the caller unpacked, all owned by it (0 in
// the namespace), and the owners the layers record for them (owners.json:
// slash path → [uid, gid], only those not 0:0).
type nsChownJob struct {
	Root   string
	Owners string
	// MaxUID and MaxGID are the highest ids of the mapping.
	MaxUID, MaxGID int
}

type nsDiffJob struct {
	// Placeholders are removed from Upper first where the step left them as
	// they were.
	Placeholders *nsPlaceholders `json:",omitempty"`
	Upper        string
	Lowers       []nsLower
	Epoch        time.Time
	// Owners is where the recorded owners of the entries go (JSON).
	Owners string
}

type nsLower struct {
	Path   string
	Owners map[string][2]int
}

// runChore does h and exits.
func runChore(h *nsChore) error {
	if h.Remove != "" {
		if err := removeTree(h.Remove); err != nil {
			return err
		}
		os.Exit(0)
	}
	if h.Chown != nil {
		if err := chownRoot(h.Chown); err != nil {
			return err
		}
		os.Exit(0)
	}
	j := h.Diff
	if p := j.Placeholders; p != nil {
		b, err := os.ReadFile(p.States)
		if err != nil {
			return err
		}
		var states map[string]syscall.Stat_t
		if err := json.Unmarshal(b, &states); err != nil {
			return err
		}
		before := make(map[string]fileState, len(states))
		for rel, sys := range states {
			before[rel] = stateOf(&sys)
		}
		if err := removePlaceholders(j.Upper, p.Paths, before); err != nil {
			return err
		}
	}
	st := &layerStack{}
	for _, l := range j.Lowers {
		st.lowers = append(st.lowers, &lowerDir{path: l.Path, owners: l.Owners})
	}
	// Inside the namespace the files' ids are those of the image.
	out, owners, err := overlayDiff(j.Epoch, j.Upper, st, true)
	if err != nil {
		return err
	}
	bw := bufio.NewWriterSize(os.Stdout, 1<<20)
	tw := tar.NewWriter(bw)
	if err := writeDiffEntries(context.Background(), tw, out); err != nil {
		return err
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	if err := setUpperTimes(j.Upper, out); err != nil {
		return err
	}
	b, err := json.Marshal(owners)
	if err != nil {
		return err
	}
	if err := os.WriteFile(j.Owners, b, 0o644); err != nil {
		return err
	}
	os.Exit(0)
	return nil
}

// chownRoot gives the files of j.Root the owners j.Owners records, each id
// that is beyond the mapping left as it is (0, the caller). It runs in the
// namespace, as its root. chown clears the set-user-ID and set-group-ID bits
// of a file, so they are set again.
func chownRoot(j *nsChownJob) error {
	b, err := os.ReadFile(j.Owners)
	if err != nil {
		return err
	}
	var owners map[string][2]int
	if err := json.Unmarshal(b, &owners); err != nil {
		return err
	}
	for rel, o := range owners {
		uid, gid := mappedOwner(o, j.MaxUID, j.MaxGID)
		if rel == "." || (uid < 0 && gid < 0) {
			continue
		}
		p := filepath.Join(j.Root, filepath.FromSlash(rel))
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); errors.Is(err, syscall.ENOENT) {
			continue // a device node, which an unprivileged caller cannot make
		} else if err != nil {
			return &os.PathError{Op: "lstat", Path: p, Err: err}
		}
		if err := syscall.Lchown(p, uid, gid); err != nil {
			return &os.PathError{Op: "chown", Path: p, Err: err}
		}
		if st.Mode&syscall.S_IFMT != syscall.S_IFLNK && st.Mode&(syscall.S_ISUID|syscall.S_ISGID) != 0 {
			if err := syscall.Chmod(p, st.Mode&0o7777); err != nil {
				return &os.PathError{Op: "chmod", Path: p, Err: err}
			}
		}
	}
	return nil
}

// mappedOwner returns the ids of o that a mapping whose highest ids are maxUID
// and maxGID reaches, and -1 for each that is 0 or beyond it.
func mappedOwner(o [2]int, maxUID, maxGID int) (int, int) {
	uid, gid := o[0], o[1]
	if uid <= 0 || uid > maxUID {
		uid = -1
	}
	if gid <= 0 || gid > maxGID {
		gid = -1
	}
	return uid, gid
}

// reachesAny reports whether the mapping reaches an id of owners other than 0.
func (m *idMapping) reachesAny(owners map[string][2]int) bool {
	for _, o := range owners {
		if uid, gid := mappedOwner(o, m.uid.Count, m.gid.Count); uid >= 0 || gid >= 0 {
			return true
		}
	}
	return false
}

// chore runs h in a user namespace with the subordinate ids, its standard
// output going to stdout.
func (r *NamespaceRunner) chore(ctx context.Context, h *nsChore, m *idMapping, stdout io.Writer) error {
	cfg, err := json.Marshal(nsChild{Chore: h, WaitMaps: true})
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"imagebuild-run"}
	cmd.Env = []string{nsChildEnv + "=" + string(cfg)}
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER, Pdeathsig: syscall.SIGKILL}
	var stderr tailBuffer
	stderr.max = outputTail
	cmd.Stdout, cmd.Stderr = stdout, &stderr
	null, err := os.Open(os.DevNull)
	if err != nil {
		return err
	}
	defer null.Close()
	cmd.ExtraFiles = []*os.File{null}
	if err := startMapped(cmd, m); err != nil {
		return err
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s", err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// RemoveAll removes dir and everything below it, as os.RemoveAll does, also
// where the caller cannot do that itself because RUN steps left files owned by
// subordinate ids there: the kept roots in run-roots/ of a build cache
// directory of an unprivileged caller with subordinate ids hold files and
// directories owned by the ids the image records, and a build killed with
// SIGKILL can leave such files in a hpcship-run-* directory in $TMPDIR. With
// subordinate ids it removes dir in a user namespace with the same mapping as
// the steps; otherwise it removes dir directly, making directories that the
// steps closed writable on the way. A missing dir is no error.
func (r *NamespaceRunner) RemoveAll(ctx context.Context, dir string) error {
	m := r.mapping()
	if m == nil {
		return removeTree(dir)
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return err
	}
	if _, err := os.Lstat(abs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return r.chore(ctx, &nsChore{Remove: abs}, m, io.Discard)
}

// removeMapped removes dir, whose files may belong to subordinate ids, also
// once the build's context is cancelled.
func (r *NamespaceRunner) removeMapped(dir string, m *idMapping) error {
	if m == nil {
		return removeTree(dir)
	}
	if _, err := os.Lstat(dir); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	return r.chore(context.Background(), &nsChore{Remove: dir}, m, io.Discard)
}

// diffMapped makes the step's layer in a child process and returns it with the
// recorded owners of its entries.
func (r *NamespaceRunner) diffMapped(ctx context.Context, req RunRequest, upper string, st *layerStack, m *idMapping, ph *nsPlaceholders) (v1.Layer, map[string][2]int, error) {
	j := &nsDiffJob{Upper: upper, Epoch: req.Epoch, Owners: filepath.Join(filepath.Dir(upper), "owners.json"), Placeholders: ph}
	for _, l := range st.lowers {
		j.Lowers = append(j.Lowers, nsLower{Path: l.path, Owners: l.owners})
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := r.chore(ctx, &nsChore{Diff: j}, m, pw)
		pw.CloseWithError(err)
		done <- err
	}()
	l, err := copyLayer(ctx, req, pr)
	_ = pr.CloseWithError(errors.New("layer abandoned"))
	herr := <-done
	if err != nil {
		return nil, nil, errors.Join(err, herr)
	}
	if herr != nil {
		return nil, nil, herr
	}
	b, err := os.ReadFile(j.Owners)
	if err != nil {
		return nil, nil, err
	}
	var owners map[string][2]int
	if err := json.Unmarshal(b, &owners); err != nil {
		return nil, nil, err
	}
	return l, owners, nil
}

// copyLayer writes the entries of the tar stream r as the step's layer, or
// returns nil when it has none.
func copyLayer(ctx context.Context, req RunRequest, r io.Reader) (v1.Layer, error) {
	tr := tar.NewReader(r)
	first, err := tr.Next()
	if errors.Is(err, io.EOF) {
		_, _ = io.Copy(io.Discard, r)
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	return req.WriteLayer(ctx, func(tw *tar.Writer) error {
		for h := first; ; {
			out := &tar.Header{Name: h.Name, Typeflag: h.Typeflag, Mode: h.Mode, Uid: h.Uid, Gid: h.Gid, Size: h.Size,
				ModTime: h.ModTime, Linkname: h.Linkname, Devmajor: h.Devmajor, Devminor: h.Devminor, Format: tar.FormatPAX}
			for k, v := range h.PAXRecords {
				if strings.HasPrefix(k, xattrPAX) {
					if out.PAXRecords == nil {
						out.PAXRecords = map[string]string{}
					}
					out.PAXRecords[k] = v
				}
			}
			if err := tw.WriteHeader(out); err != nil {
				return err
			}
			if _, err := io.Copy(tw, tr); err != nil {
				return err
			}
			var err error
			if h, err = tr.Next(); errors.Is(err, io.EOF) {
				_, _ = io.Copy(io.Discard, r)
				return nil
			} else if err != nil {
				return err
			}
		}
	})
}

// setUpperTimes gives the entries of a step's upper directory the times its
// layer records, as an unpacked root would have them.
func setUpperTimes(upper string, out []diffEntry) error {
	for _, d := range out {
		if d.hdr.Typeflag == tar.TypeSymlink || strings.HasPrefix(path.Base(d.name), ".wh.") {
			continue
		}
		if err := os.Chtimes(filepath.Join(upper, filepath.FromSlash(d.name)), d.hdr.ModTime, d.hdr.ModTime); err != nil {
			return err
		}
	}
	return nil
}
