package imagebuild

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// nsChildEnv carries the child's configuration (JSON) into the re-executed program.
const nsChildEnv = "HPCSHIP_IMAGEBUILD_RUN_CHILD"

// allIDs is the size of the identity mapping a root caller gets: every id but
// the invalid (uid_t)-1, as in the host's own namespace.
const allIDs = 1<<32 - 1

// outputTail is how many bytes of a failed command's output a RunError keeps.
const outputTail = 4096

// NamespaceRunner is a Runner that executes RUN steps without a daemon and
// without root, in new user, mount and pid namespaces (and a new network
// namespace with WithRunNetwork(false)).
//
// The image's root filesystem is unpacked from the layers once and kept in the
// build's cache directory (run-roots/, at most two roots, the least recently
// used removed first once no build uses them), so a later step or a later build
// on the same layers does not unpack it again. Each step runs on an overlay
// mount of that root and of the earlier steps' changes in the same build, and
// its layer is made from what the step wrote alone; nothing else is read or
// compared. Where the kernel refuses overlay mounts in a user namespace (before
// Linux 5.11), every step unpacks a root of its own into a temporary directory
// and compares the whole tree before and after it instead. On the overlay,
// changing a file that an earlier layer hardlinked changes that name only: its
// other names keep the old content.
//
// For each step it re-executes the current program
// (/proc/self/exe) as pid 1 of the new namespaces, mounts /proc, binds
// /dev/null, /dev/zero, /dev/full, /dev/random, /dev/urandom and /dev/tty from
// the host, chroots, switches to the image's USER and WORKDIR and executes the
// command with the image's environment. The host's /etc/resolv.conf and
// /etc/hosts are copied into the root before the step and are not part of its
// layer unless the step changes them. Afterwards it compares the tree with its
// state before the step and writes the difference as one layer: added and
// modified files, metadata-only changes, whiteouts for deletions, an opaque
// whiteout where a directory was replaced by a new one, hardlinks kept,
// modification times clamped to the build's epoch.
//
// Id mapping: a caller that is root on the host gets the identity mapping of
// all uids and gids, so chown, USER and the base's device nodes work and the
// image's files have the owners its layers record. An unprivileged caller whose
// /etc/subuid and /etc/subgid give it ranges, with newuidmap and newgidmap
// (Debian package uidmap) installed, gets its own uid and gid as 0 and its
// subordinate ranges as 1 to the ranges' size N: the step may chown to those
// ids and switch to a USER among them, and the layer records the ids as the
// step left them. The kept root's files get the owners the layers record, by a
// process in a user namespace with the same mapping (so a USER 1000 can write
// its files of the base or of a COPY --chown); an id above N stays the
// caller's, that is root's during the step, and Run logs a warning through
// RunRequest.Log naming how many files have such owners. Such a kept root
// holds directories of subordinate ids that the caller cannot remove itself:
// the runner removes the roots it evicts in such a namespace, and RemoveAll
// removes a whole cache directory. Other unprivileged callers get a single mapping,
// their own uid and gid as 0: the step runs as root of the namespace and may
// create, modify, chmod and delete anything in the root, but cannot chown to
// another uid (EINVAL) or switch to a USER other than root (a
// *UserNotMappedError before the step starts), and every file of the image is
// root's during the step. In all cases a file whose owner the step did not
// change keeps the owner its layer records, also one the mapping does not
// reach. Unprivileged, mknod fails and device nodes of the base image are left
// out. Extended attributes of the image are set where the kernel lets the
// caller (user.* attributes always) and those of changed files are recorded in
// the layer. Where overlay mounts are refused, an unprivileged caller's steps
// run with a single mapping on the root unpacked for each of them, subordinate
// ids or not.
//
// The program that uses a NamespaceRunner must not replace the process's
// environment variable HPCSHIP_IMAGEBUILD_RUN_CHILD: the package's init function
// uses it to recognise the re-executed child. Where user namespaces are not
// allowed, Run returns a *UserNamespaceError.
type NamespaceRunner struct {
	o nsOptions
	// noOverlay is set once the kernel refused an overlay mount: every later step
	// unpacks a root of its own.
	noOverlay atomic.Bool
	// ids finds the caller's subordinate ids once (idMap; nil: none).
	ids   sync.Once
	idMap *idMapping
}

type nsOptions struct {
	output  io.Writer
	network bool
	binds   []Bind
}

// Bind is a host path mounted read-only into the root of every RUN step.
type Bind struct {
	// Source is the host path, a directory or a file.
	Source string
	// Target is the absolute path in the image. Missing directories on the way are
	// created as mount points and are not part of the step's layer; none of them may
	// be a symlink.
	Target string
}

// RunnerOption configures a NamespaceRunner.
type RunnerOption func(*nsOptions)

// WithRunOutput streams the standard output and error of every RUN command to w
// as it is written (writes are serialised). The default discards it; the tail
// is kept for errors in any case.
func WithRunOutput(w io.Writer) RunnerOption {
	return func(o *nsOptions) { o.output = w }
}

// WithRunNetwork sets whether RUN commands use the host's network. Off, they
// run in a new network namespace that has only a loopback interface, down. The
// default is on.
func WithRunNetwork(on bool) RunnerOption {
	return func(o *nsOptions) { o.network = on }
}

// WithRunBinds mounts host paths read-only into every RUN step. The default
// mounts none.
func WithRunBinds(binds ...Bind) RunnerOption {
	return func(o *nsOptions) { o.binds = append(o.binds, binds...) }
}

// NewNamespaceRunner returns a NamespaceRunner. The defaults: the host's
// network, output discarded (WithRunOutput).
func NewNamespaceRunner(opts ...RunnerOption) *NamespaceRunner {
	o := nsOptions{network: true}
	for _, opt := range opts {
		opt(&o)
	}
	return &NamespaceRunner{o: o}
}

// RunError is a RUN command that ran and failed.
type RunError struct {
	Argv []string
	// ExitCode is the command's exit status, or -1 when a signal ended it.
	ExitCode int
	// Signal is the signal that ended the command, or 0.
	Signal syscall.Signal
	// Output is the tail of the command's standard output and error.
	Output string
}

func (e *RunError) Error() string {
	how := fmt.Sprintf("exit code %d", e.ExitCode)
	if e.Signal != 0 {
		how = "killed by " + e.Signal.String()
	}
	msg := fmt.Sprintf("command %q failed: %s", e.Argv, how)
	if out := strings.TrimSpace(e.Output); out != "" {
		msg += "; output ends:\n" + out
	}
	return msg
}

// UserNamespaceError is the failure to create the step's namespaces, usually
// because unprivileged user namespaces are disabled on the host.
type UserNamespaceError struct {
	Err error
}

func (e *UserNamespaceError) Error() string {
	return "cannot create a user namespace for RUN (" + e.Err.Error() + "): allow unprivileged user namespaces " +
		"(sysctl user.max_user_namespaces > 0; on Debian/Ubuntu kernels also kernel.unprivileged_userns_clone=1, " +
		"and on Ubuntu 24.04+ kernel.apparmor_restrict_unprivileged_userns=0), or run as root"
}

func (e *UserNamespaceError) Unwrap() error { return e.Err }

// UserNotMappedError is a USER that the step's id mapping cannot switch to.
type UserNotMappedError struct {
	User     string
	UID, GID int
}

func (e *UserNotMappedError) Error() string {
	return fmt.Sprintf("USER %q (uid %d, gid %d) is not mapped in the RUN user namespace: an unprivileged build maps only root, "+
		"unless /etc/subuid and /etc/subgid give the user a range that large and newuidmap and newgidmap (Debian package uidmap) are installed",
		e.User, e.UID, e.GID)
}

// nsChild is what the re-executed child needs.
type nsChild struct {
	Root  string
	Argv  []string
	Env   []string
	Dir   string
	UID   int
	GID   int
	Binds []Bind
	// Overlay, when set, is mounted on Root first.
	Overlay *nsOverlay `json:",omitempty"`
	// WaitMaps makes the child wait for newuidmap and newgidmap, then start
	// again as root of the namespace.
	WaitMaps bool `json:",omitempty"`
	// Chore, when set, is work on the step's files that needs the subordinate
	// ids; the child does it instead of running a command.
	Chore *nsChore `json:",omitempty"`
	// Placeholders, when set, are mount points in the overlay's upper
	// directory that the child gives owners before mounting it.
	Placeholders *nsPlaceholders `json:",omitempty"`
}

// nsOverlay is an overlay mount: Lower holds paths relative to Dir (the first on
// top), Upper and Work are absolute.
type nsOverlay struct {
	Dir   string
	Lower []string
	Upper string
	Work  string
}

func init() {
	if cfg, ok := os.LookupEnv(nsChildEnv); ok {
		err := nsChildMain(cfg)
		fmt.Fprintf(os.Stderr, "imagebuild RUN: %v\n", err)
		os.Exit(125)
	}
}

// nsChildMain runs as pid 1 of the step's namespaces and only returns on error.
func nsChildMain(cfg string) error {
	var c nsChild
	if err := json.Unmarshal([]byte(cfg), &c); err != nil {
		return err
	}
	if c.WaitMaps {
		return awaitMaps(c)
	}
	if c.Chore != nil {
		return runChore(c.Chore)
	}
	if err := syscall.Mount("", "/", "", syscall.MS_REC|syscall.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making mounts private: %w", err)
	}
	if o := c.Overlay; o != nil {
		if c.Placeholders != nil {
			if err := ownPlaceholders(o.Upper, c.Placeholders); err != nil {
				return fmt.Errorf("preparing mount points: %w", err)
			}
		}
		syscall.CloseOnExec(3)
		// Relative lower paths keep the options short; userxattr because this is
		// a user namespace.
		err := syscall.Chdir(o.Dir)
		if err == nil {
			opts := "lowerdir=" + strings.Join(o.Lower, ":") + ",upperdir=" + o.Upper + ",workdir=" + o.Work + ",userxattr"
			err = syscall.Mount("overlay", c.Root, "overlay", 0, opts)
		}
		if err != nil {
			// The parent reads this and unpacks the root instead.
			_, _ = os.NewFile(3, "status").WriteString("overlay: " + err.Error())
			os.Exit(125)
		}
	}
	if err := syscall.Mount("proc", filepath.Join(c.Root, "proc"), "proc", syscall.MS_NOSUID|syscall.MS_NODEV|syscall.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	for _, d := range nsDevices {
		if err := syscall.Mount("/dev/"+d, filepath.Join(c.Root, "dev", d), "", syscall.MS_BIND, ""); err != nil && d != "tty" {
			return fmt.Errorf("binding /dev/%s: %w", d, err)
		}
	}
	for _, b := range c.Binds {
		target := filepath.Join(c.Root, b.Target)
		if err := syscall.Mount(b.Source, target, "", syscall.MS_BIND|syscall.MS_REC, ""); err != nil {
			return fmt.Errorf("binding %s to %s: %w", b.Source, b.Target, err)
		}
		// A read-only remount must keep the flags the kernel locked on the source.
		var sfs syscall.Statfs_t
		if err := syscall.Statfs(b.Source, &sfs); err != nil {
			return err
		}
		locked := uintptr(sfs.Flags) & (syscall.MS_NOSUID | syscall.MS_NODEV | syscall.MS_NOEXEC | syscall.MS_NOATIME | syscall.MS_NODIRATIME)
		if sfs.Flags&4096 != 0 { // ST_RELATIME
			locked |= syscall.MS_RELATIME
		}
		if err := syscall.Mount("", target, "", syscall.MS_BIND|syscall.MS_REMOUNT|syscall.MS_RDONLY|locked, ""); err != nil {
			return fmt.Errorf("making %s read-only: %w", b.Target, err)
		}
	}
	if err := syscall.Chroot(c.Root); err != nil {
		return fmt.Errorf("chroot: %w", err)
	}
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return fmt.Errorf("WORKDIR: %w", err)
	}
	if err := syscall.Chdir(c.Dir); err != nil {
		return fmt.Errorf("WORKDIR: %w", err)
	}
	if c.GID != 0 || c.UID != 0 {
		_ = syscall.Setgroups(nil)
		if err := syscall.Setgid(c.GID); err != nil {
			return fmt.Errorf("setgid %d: %w", c.GID, err)
		}
		if err := syscall.Setuid(c.UID); err != nil {
			return fmt.Errorf("setuid %d: %w", c.UID, err)
		}
	}
	prog := c.Argv[0]
	if !strings.Contains(prog, "/") {
		p, err := lookPathIn(prog, c.Env)
		if err != nil {
			return err
		}
		prog = p
	}
	return fmt.Errorf("exec %s: %w", c.Argv[0], syscall.Exec(prog, c.Argv, c.Env))
}

// lookPathIn finds an executable in the PATH of env (inside the chroot).
func lookPathIn(prog string, env []string) (string, error) {
	pathVar := "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			pathVar = v
		}
	}
	for _, dir := range filepath.SplitList(pathVar) {
		p := filepath.Join(dir, prog)
		if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s: executable file not found in PATH %s", prog, pathVar)
}

var nsDevices = []string{"null", "zero", "full", "random", "urandom", "tty"}

// Run implements Runner.
func (r *NamespaceRunner) Run(ctx context.Context, req RunRequest) (v1.Layer, error) {
	if len(req.Argv) == 0 {
		return nil, fmt.Errorf("%w: RUN without a command", ErrSyntax)
	}
	if !r.noOverlay.Load() {
		l, err := r.runOverlay(ctx, req)
		if !errors.Is(err, errOverlayUnavailable) {
			return l, err
		}
		r.noOverlay.Store(true)
	}
	return r.runCopy(ctx, req)
}

// runCopy runs the step in a root of its own, unpacked from all layers, and
// compares the whole tree before and after.
func (r *NamespaceRunner) runCopy(ctx context.Context, req RunRequest) (_ v1.Layer, err error) {
	tmp, err := os.MkdirTemp("", "hpcship-run-")
	if err != nil {
		return nil, err
	}
	defer func() {
		if rerr := removeTree(tmp); rerr != nil && err == nil {
			err = rerr
		}
	}()
	root := filepath.Join(tmp, "root")
	hostRoot := os.Geteuid() == 0
	tree, err := materialise(ctx, root, req.Layers, hostRoot)
	if err != nil {
		return nil, fmt.Errorf("materialising the root filesystem: %w", err)
	}
	if err := preparePlaceholders(root); err != nil {
		return nil, err
	}
	for _, b := range r.o.binds {
		if err := prepareBind(root, b); err != nil {
			return nil, err
		}
	}
	uid, gid, err := resolveUser(func(rel string) string { return filepath.Join(root, rel) }, req.User)
	if err != nil {
		return nil, err
	}
	if !hostRoot && (uid != 0 || gid != 0) {
		return nil, &UserNotMappedError{User: req.User, UID: uid, GID: gid}
	}
	before, err := snapshot(root)
	if err != nil {
		return nil, err
	}
	dir := req.WorkingDir
	if dir == "" {
		dir = "/"
	}
	if err := r.exec(ctx, nsChild{Root: root, Argv: req.Argv, Env: req.Env, Dir: dir, UID: uid, GID: gid, Binds: r.o.binds}, hostRoot, nil); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return writeDiff(ctx, req, root, tree, before, hostRoot)
}

// exec runs the child in its namespaces and waits for it. With m set (an
// unprivileged caller with subordinate ids) the namespace maps the caller to 0
// and the subordinate ranges above it.
func (r *NamespaceRunner) exec(ctx context.Context, c nsChild, hostRoot bool, m *idMapping) error {
	c.WaitMaps = m != nil
	cfg, err := json.Marshal(c)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, "/proc/self/exe")
	cmd.Args = []string{"imagebuild-run"}
	cmd.Env = []string{nsChildEnv + "=" + string(cfg)}
	flags := uintptr(syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID)
	if !r.o.network {
		flags |= syscall.CLONE_NEWNET
	}
	attr := &syscall.SysProcAttr{Cloneflags: flags, Pdeathsig: syscall.SIGKILL}
	switch {
	case m != nil:
		// newuidmap and newgidmap write the maps once the child exists.
	case hostRoot:
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: allIDs}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: allIDs}}
		attr.GidMappingsEnableSetgroups = true
	default:
		attr.UidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Geteuid(), Size: 1}}
		attr.GidMappings = []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getegid(), Size: 1}}
	}
	cmd.SysProcAttr = attr
	tail := &tailBuffer{max: outputTail}
	var out io.Writer = tail
	if r.o.output != nil {
		out = io.MultiWriter(tail, r.o.output)
	}
	sw := &syncWriter{w: out}
	cmd.Stdout, cmd.Stderr = sw, sw
	cmd.WaitDelay = 5 * time.Second
	status, pw, err := os.Pipe()
	if err != nil {
		return err
	}
	defer status.Close()
	defer pw.Close()
	cmd.ExtraFiles = []*os.File{pw}
	if err := startMapped(cmd, m); err != nil {
		return err
	}
	_ = pw.Close()
	err = cmd.Wait()
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if msg, _ := io.ReadAll(io.LimitReader(status, 4096)); len(msg) > 0 {
		return fmt.Errorf("%w: %s", errOverlayUnavailable, msg)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		re := &RunError{Argv: c.Argv, ExitCode: ee.ExitCode(), Output: tail.String()}
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			re.Signal = ws.Signal()
		}
		return re
	}
	return err
}

type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(p)
}

// tailBuffer keeps the last max bytes written.
type tailBuffer struct {
	max int
	b   []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.b = append(t.b, p...)
	if len(t.b) > t.max {
		t.b = append(t.b[:0], t.b[len(t.b)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.b) }

// resolveUser turns USER ("name", "uid", optionally ":group") into ids through
// the root's /etc/passwd and /etc/group; file gives the host path of a path in the root.
func resolveUser(file func(rel string) string, user string) (int, int, error) {
	if user == "" {
		return 0, 0, nil
	}
	name, group, hasGroup := strings.Cut(user, ":")
	uid, gid := -1, -1
	if n, err := strconv.Atoi(name); err == nil {
		uid = n
	}
	if err := scanColon(file("etc/passwd"), func(f []string) bool {
		if len(f) >= 4 && (f[0] == name || (uid >= 0 && f[2] == name)) {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			return true
		}
		return false
	}); err != nil {
		return 0, 0, err
	}
	if uid < 0 {
		return 0, 0, fmt.Errorf("USER %q: no such user in the image's /etc/passwd", user)
	}
	if hasGroup {
		gid = -1
		if n, err := strconv.Atoi(group); err == nil {
			gid = n
		} else if err := scanColon(file("etc/group"), func(f []string) bool {
			if len(f) >= 3 && f[0] == group {
				gid, _ = strconv.Atoi(f[2])
				return true
			}
			return false
		}); err != nil {
			return 0, 0, err
		}
		if gid < 0 {
			return 0, 0, fmt.Errorf("USER %q: no such group in the image's /etc/group", user)
		}
	}
	if gid < 0 {
		gid = 0
	}
	return uid, gid, nil
}

func scanColon(file string, match func([]string) bool) error {
	f, err := os.Open(file)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if match(strings.Split(sc.Text(), ":")) {
			return nil
		}
	}
	return sc.Err()
}

// removeTree removes dir even where the step left directories without write or
// search permission.
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d != nil && d.IsDir() {
			_ = os.Chmod(p, 0o700)
		}
		return nil
	})
	return os.RemoveAll(dir)
}

// materialise writes the merged layers under root.
func materialise(ctx context.Context, root string, layers []v1.Layer, hostRoot bool) (*rootfs.Tree, error) {
	ls := make([]rootfs.Layer, len(layers))
	for i, l := range layers {
		ls[i] = l
	}
	tree, err := rootfs.Flatten(ctx, ls)
	if err != nil {
		return nil, err
	}
	entries := tree.Entries()
	if err := os.Mkdir(root, 0o700); err != nil {
		return nil, err
	}
	// Directories stay open to the caller until the end; regular files are
	// made complete, metadata and all, in one open as their content streams by;
	// hardlinks follow them.
	for _, e := range entries {
		if e.Path == "." {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		var err error
		switch e.Type {
		case rootfs.TypeDir:
			err = os.Mkdir(p, 0o700)
		case rootfs.TypeSymlink:
			err = os.Symlink(e.Linkname, p)
		case rootfs.TypeFIFO:
			err = syscall.Mkfifo(p, 0o600)
		case rootfs.TypeCharDevice, rootfs.TypeBlockDevice:
			if hostRoot {
				mode := uint32(syscall.S_IFCHR)
				if e.Type == rootfs.TypeBlockDevice {
					mode = syscall.S_IFBLK
				}
				err = syscall.Mknod(p, mode|0o600, int(mkdev(e.Devmajor, e.Devminor)))
			}
		}
		if err != nil {
			return nil, err
		}
	}
	buf := make([]byte, 256<<10)
	if err := tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
		return writeRegular(filepath.Join(root, filepath.FromSlash(e.Path)), e, r, buf, hostRoot)
	}); err != nil {
		return nil, err
	}
	for _, e := range entries {
		if e.Type == rootfs.TypeHardlink {
			if err := os.Link(filepath.Join(root, filepath.FromSlash(e.Linkname)), filepath.Join(root, filepath.FromSlash(e.Path))); err != nil {
				return nil, err
			}
		}
	}
	for i := len(entries) - 1; i >= 0; i-- {
		e := entries[i]
		if e.Type == rootfs.TypeHardlink || e.Type == rootfs.TypeRegular || e.Path == "." {
			continue
		}
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if (e.Type == rootfs.TypeCharDevice || e.Type == rootfs.TypeBlockDevice) && !hostRoot {
			continue
		}
		if hostRoot {
			if err := os.Lchown(p, e.UID, e.GID); err != nil {
				return nil, err
			}
		}
		if e.Type == rootfs.TypeSymlink {
			continue
		}
		if err := setXattrs(p, e.Xattrs); err != nil {
			return nil, err
		}
		if err := os.Chmod(p, fileMode(e.Mode)); err != nil {
			return nil, err
		}
		if err := os.Chtimes(p, e.ModTime, e.ModTime); err != nil {
			return nil, err
		}
	}
	return tree, nil
}

// writeRegular creates the regular file p with e's content from r and its
// owner (hostRoot), extended attributes, mode and times, through one file
// descriptor and without the runtime poller.
func writeRegular(p string, e rootfs.Entry, r io.Reader, buf []byte, hostRoot bool) (err error) {
	fd, err := syscall.Open(p, syscall.O_CREAT|syscall.O_EXCL|syscall.O_WRONLY|syscall.O_CLOEXEC|syscall.O_NOFOLLOW, 0o600)
	if err != nil {
		return &os.PathError{Op: "create", Path: p, Err: err}
	}
	defer func() {
		if cerr := syscall.Close(fd); cerr != nil && err == nil {
			err = &os.PathError{Op: "close", Path: p, Err: cerr}
		}
	}()
	if _, err := io.CopyBuffer(fdWriter(fd), r, buf); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	if hostRoot {
		if err := syscall.Fchown(fd, e.UID, e.GID); err != nil {
			return &os.PathError{Op: "chown", Path: p, Err: err}
		}
	}
	if err := setXattrs(p, e.Xattrs); err != nil {
		return err
	}
	if err := syscall.Fchmod(fd, e.Mode&0o7777); err != nil {
		return &os.PathError{Op: "chmod", Path: p, Err: err}
	}
	ts := []syscall.Timespec{syscall.NsecToTimespec(e.ModTime.UnixNano()), syscall.NsecToTimespec(e.ModTime.UnixNano())}
	if err := syscall.UtimesNano(p, ts); err != nil {
		return &os.PathError{Op: "chtimes", Path: p, Err: err}
	}
	return nil
}

// fdWriter writes to a file descriptor.
type fdWriter int

func (w fdWriter) Write(b []byte) (int, error) {
	n := 0
	for n < len(b) {
		m, err := syscall.Write(int(w), b[n:])
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		n += m
	}
	return n, nil
}

func mkdev(major, minor int64) uint64 {
	ma, mi := uint64(major), uint64(minor)
	return (ma&0xfff)<<8 | (ma&^0xfff)<<32 | mi&0xff | (mi&^0xff)<<12
}

func fileMode(m uint32) os.FileMode {
	mode := os.FileMode(m & 0o777)
	if m&syscall.S_ISUID != 0 {
		mode |= os.ModeSetuid
	}
	if m&syscall.S_ISGID != 0 {
		mode |= os.ModeSetgid
	}
	if m&syscall.S_ISVTX != 0 {
		mode |= os.ModeSticky
	}
	return mode
}

// preparePlaceholders creates the mount points for /proc and /dev and copies the
// host's resolv.conf and hosts, so that they are part of the state before the
// step and stay out of its layer unless the step changes them.
func preparePlaceholders(root string) error {
	for _, d := range []string{"proc", "dev", "etc"} {
		p := filepath.Join(root, d)
		st, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(p, 0o755); err != nil {
				return err
			}
		case err != nil:
			return err
		case !st.IsDir():
			return fmt.Errorf("the image's /%s is not a directory", d)
		}
	}
	for _, d := range nsDevices {
		p := filepath.Join(root, "dev", d)
		if _, err := os.Lstat(p); err == nil {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, nil, 0o666); err != nil {
			return err
		}
	}
	for _, f := range []string{"resolv.conf", "hosts"} {
		data, err := os.ReadFile("/etc/" + f)
		if err != nil {
			continue
		}
		p := filepath.Join(root, "etc", f)
		if st, err := os.Lstat(p); err == nil && !st.Mode().IsRegular() {
			if err := os.Remove(p); err != nil {
				return err
			}
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// prepareBind creates the mount point of b under root, refusing symlinks on the
// way so that nothing is created outside root.
func prepareBind(root string, b Bind) error {
	st, err := os.Stat(b.Source)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	if !path.IsAbs(b.Target) || path.Clean(b.Target) == "/" {
		return fmt.Errorf("bind target %q: %w: must be an absolute path below /", b.Target, ErrUnsafePath)
	}
	comps := strings.Split(strings.TrimPrefix(path.Clean(b.Target), "/"), "/")
	p := root
	for i, c := range comps {
		p = filepath.Join(p, c)
		last := i == len(comps)-1
		fi, err := os.Lstat(p)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if !last || st.IsDir() {
				err = os.Mkdir(p, 0o755)
			} else {
				err = os.WriteFile(p, nil, 0o644)
			}
			if err != nil {
				return err
			}
		case err != nil:
			return err
		case fi.Mode()&fs.ModeSymlink != 0:
			return fmt.Errorf("bind target %q: %w: /%s is a symlink", b.Target, ErrUnsafePath, path.Join(comps[:i+1]...))
		case !last && !fi.IsDir():
			return fmt.Errorf("bind target %q: /%s is not a directory", b.Target, path.Join(comps[:i+1]...))
		}
	}
	return nil
}

// fileState is what the diff compares.
type fileState struct {
	ino, size, nlink uint64
	mode, uid, gid   uint32
	mtime, ctime     syscall.Timespec
}

func stateOf(st *syscall.Stat_t) fileState {
	return fileState{ino: st.Ino, size: uint64(st.Size), nlink: uint64(st.Nlink), mode: st.Mode, uid: st.Uid, gid: st.Gid, mtime: st.Mtim, ctime: st.Ctim}
}

func (s fileState) isDir() bool { return s.mode&syscall.S_IFMT == syscall.S_IFDIR }

// snapshot records the state of every path under root, keyed by slash path
// relative to root.
func snapshot(root string) (map[string]fileState, error) {
	m := map[string]fileState{}
	err := walkRoot(root, func(rel string, st fileState) error {
		m[rel] = st
		return nil
	})
	return m, err
}

// walkRoot calls fn for every path under root in lexical order, making
// directories the caller owns searchable where the step left them closed.
func walkRoot(root string, fn func(rel string, st fileState) error) error {
	return filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if err := fn(filepath.ToSlash(rel), stateOf(&st)); err != nil {
			return err
		}
		if d.IsDir() && st.Mode&0o500 != 0o500 && int(st.Uid) == os.Geteuid() {
			return os.Chmod(p, os.FileMode(st.Mode&0o777|0o700))
		}
		return nil
	})
}

// diffEntry is one entry of the step's layer.
type diffEntry struct {
	name string
	hdr  *tar.Header
	file string // host path of a regular file's content
}

// writeDiff writes what changed under root since before as one layer, or
// returns nil when nothing changed.
func writeDiff(ctx context.Context, req RunRequest, root string, tree *rootfs.Tree, before map[string]fileState, hostRoot bool) (v1.Layer, error) {
	var out []diffEntry
	after := map[string]fileState{}
	replaced := map[string]bool{} // directories that are new or replaced: no whiteouts needed below them
	links := map[uint64]string{}
	euid, egid := uint32(os.Geteuid()), uint32(os.Getegid())
	err := walkRoot(root, func(rel string, st fileState) error {
		after[rel] = st
		if rel == "." {
			return nil
		}
		old, existed := before[rel]
		if existed && old == st {
			return nil
		}
		p := filepath.Join(root, filepath.FromSlash(rel))
		h := &tar.Header{Name: rel, Mode: int64(st.mode & 0o7777), Format: tar.FormatPAX}
		h.Uid, h.Gid = int(st.uid), int(st.gid)
		if !hostRoot {
			h.Uid, h.Gid = mapBack(st.uid, euid), mapBack(st.gid, egid)
		}
		if existed && old.uid == st.uid && old.gid == st.gid {
			if e, ok := tree.Lookup(rel); ok {
				h.Uid, h.Gid = e.UID, e.GID
			}
		}
		mt := time.Unix(st.mtime.Unix())
		if !req.Epoch.IsZero() && mt.After(req.Epoch) {
			mt = req.Epoch
		}
		h.ModTime = mt
		d := diffEntry{name: rel, hdr: h}
		if existed && old.isDir() && !st.isDir() {
			replaced[rel] = true // the entry replaces the directory's subtree
		}
		switch st.mode & syscall.S_IFMT {
		case syscall.S_IFDIR:
			h.Typeflag = tar.TypeDir
			h.Name += "/"
			if !existed || !old.isDir() || old.ino != st.ino {
				replaced[rel] = true
			}
			if existed && old.isDir() && old.ino != st.ino {
				out = append(out, d, diffEntry{name: rel + "/.wh..wh..opq", hdr: &tar.Header{Name: rel + "/.wh..wh..opq", Typeflag: tar.TypeReg, ModTime: mt, Format: tar.FormatPAX}})
				return nil
			}
		case syscall.S_IFREG:
			if first, ok := links[st.ino]; ok {
				h.Typeflag, h.Linkname = tar.TypeLink, first
				break
			}
			if st.nlink > 1 {
				links[st.ino] = rel
			}
			h.Typeflag, h.Size, d.file = tar.TypeReg, int64(st.size), p
		case syscall.S_IFLNK:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			h.Typeflag, h.Linkname = tar.TypeSymlink, target
		case syscall.S_IFIFO:
			h.Typeflag = tar.TypeFifo
		case syscall.S_IFCHR, syscall.S_IFBLK:
			var sys syscall.Stat_t
			if err := syscall.Lstat(p, &sys); err != nil {
				return err
			}
			setDevice(h, st.mode, sys.Rdev)
		default:
			return nil // sockets are not layer content
		}
		if err := addXattrs(h, p); err != nil {
			return err
		}
		out = append(out, d)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("comparing the root filesystem: %w", err)
	}
	for rel := range before {
		if _, ok := after[rel]; ok || rel == "." {
			continue
		}
		parent := path.Dir(rel)
		if _, gone := after[parent]; !gone && parent != "." {
			continue // an ancestor's whiteout covers it
		}
		if replaced[parent] {
			continue
		}
		if _, ok := before[parent]; !ok && parent != "." {
			continue
		}
		wh := path.Join(parent, ".wh."+path.Base(rel))
		out = append(out, diffEntry{name: wh, hdr: &tar.Header{Name: wh, Typeflag: tar.TypeReg, ModTime: req.Epoch, Format: tar.FormatPAX}})
	}
	return writeEntries(ctx, req, out)
}

// writeEntries writes out, sorted by name, as the step's layer, or returns nil
// when out is empty.
func writeEntries(ctx context.Context, req RunRequest, out []diffEntry) (v1.Layer, error) {
	if len(out) == 0 {
		return nil, nil
	}
	return req.WriteLayer(ctx, func(tw *tar.Writer) error { return writeDiffEntries(ctx, tw, out) })
}

// writeDiffEntries sorts out by name and writes it to tw.
func writeDiffEntries(ctx context.Context, tw *tar.Writer, out []diffEntry) error {
	sort.SliceStable(out, func(i, j int) bool { return out[i].name < out[j].name })
	for _, d := range out {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := tw.WriteHeader(d.hdr); err != nil {
			return err
		}
		if d.file == "" || d.hdr.Size == 0 {
			continue
		}
		if err := copyFile(tw, d.file, d.hdr.Size); err != nil {
			return err
		}
	}
	return nil
}

// mapBack maps a host id to the namespace under a single mapping.
func mapBack(host, mine uint32) int {
	if host == mine {
		return 0
	}
	return 65534
}

func copyFile(w io.Writer, p string, size int64) error {
	f, err := os.Open(p)
	if errors.Is(err, fs.ErrPermission) {
		if st, serr := os.Stat(p); serr == nil {
			_ = os.Chmod(p, st.Mode().Perm()|0o400)
			f, err = os.Open(p)
		}
	}
	if err != nil {
		return err
	}
	defer f.Close()
	n, err := io.Copy(w, io.LimitReader(f, size))
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%s changed size while being read", p)
	}
	return nil
}

// xattrPAX prefixes an extended attribute's name in a PAX record.
const xattrPAX = "SCHILY.xattr."

// setXattrs sets a file's extended attributes as far as the kernel lets the
// caller: attributes it refuses (trusted.* and security.* without privilege, any
// on a file system without them) are left out.
func setXattrs(p string, xattrs map[string]string) error {
	for name, value := range xattrs {
		err := syscall.Setxattr(p, name, []byte(value), 0)
		if err != nil && !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EPERM) && !errors.Is(err, syscall.EACCES) {
			return fmt.Errorf("setting %s on %s: %w", name, p, err)
		}
	}
	return nil
}

// xattrsOf returns the extended attributes of p (not a symlink), without the
// ones overlayfs keeps for itself.
func xattrsOf(p string) (map[string]string, error) {
	buf := make([]byte, 1024)
	var n int
	for {
		var err error
		n, err = syscall.Listxattr(p, buf)
		if errors.Is(err, syscall.ERANGE) {
			buf = make([]byte, 2*len(buf))
			continue
		}
		if errors.Is(err, syscall.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("listing the extended attributes of %s: %w", p, err)
		}
		break
	}
	var m map[string]string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name == "" || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		v := make([]byte, 256)
		for {
			k, err := syscall.Getxattr(p, name, v)
			if errors.Is(err, syscall.ERANGE) {
				v = make([]byte, 2*len(v))
				continue
			}
			if errors.Is(err, syscall.ENODATA) {
				break
			}
			if err != nil {
				return nil, fmt.Errorf("reading %s of %s: %w", name, p, err)
			}
			if m == nil {
				m = map[string]string{}
			}
			m[name] = string(v[:k])
			break
		}
	}
	return m, nil
}

// addXattrs records the extended attributes of p in h (not for symlinks and
// hardlinks, whose attributes are their target's).
func addXattrs(h *tar.Header, p string) error {
	if h.Typeflag == tar.TypeSymlink || h.Typeflag == tar.TypeLink {
		return nil
	}
	x, err := xattrsOf(p)
	if err != nil || len(x) == 0 {
		return err
	}
	if h.PAXRecords == nil {
		h.PAXRecords = map[string]string{}
	}
	for k, v := range x {
		h.PAXRecords[xattrPAX+k] = v
	}
	return nil
}

// setDevice makes h a character or block device entry (as mode's file type says) with the major and minor
// numbers of rdev, decoded as Linux encodes them in a stat.
func setDevice(h *tar.Header, mode uint32, rdev uint64) {
	h.Typeflag = tar.TypeChar
	if mode&syscall.S_IFMT == syscall.S_IFBLK {
		h.Typeflag = tar.TypeBlock
	}
	h.Devmajor = int64((rdev>>8)&0xfff | (rdev>>32)&0xfffff000)
	h.Devminor = int64(rdev&0xff | (rdev>>12)&0xffffff00)
}
