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
}

type nsDiffJob struct {
	Upper  string
	Lowers []nsLower
	Epoch  time.Time
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
	j := h.Diff
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

// removeMapped removes dir, whose files may belong to subordinate ids.
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
func (r *NamespaceRunner) diffMapped(ctx context.Context, req RunRequest, upper string, st *layerStack, m *idMapping) (v1.Layer, map[string][2]int, error) {
	j := &nsDiffJob{Upper: upper, Epoch: req.Epoch, Owners: filepath.Join(filepath.Dir(upper), "owners.json")}
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
