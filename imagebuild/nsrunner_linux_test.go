package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/testenv"
)

// asUserEnv marks the copy of the test binary that runs as an unprivileged user.
const asUserEnv = "HPCSHIP_TEST_RUN_AS_USER"

// TestNamespaceRunner runs the RUN tests as the current user and, when that is
// root, again in a child process as the unprivileged user sgetest (created if
// missing), so both id mappings are exercised in CI.
func TestNamespaceRunner(t *testing.T) {
	t.Run("create modify delete", testRunChanges)
	t.Run("environment", testRunEnvironment)
	t.Run("failure names line and exit code", testRunFailure)
	t.Run("cancel kills the tree", testRunCancel)
	t.Run("deterministic", testRunDeterministic)
	t.Run("network off", testRunNetworkOff)
	t.Run("cached", testRunCached)
	t.Run("read-only binds", testRunBinds)
	t.Run("kept root and unpacked root agree", testRunModesAgree)
	t.Run("extended attributes", testRunXattrs)
	t.Run("owners of the image", testRunOwners)
	t.Run("owned roots are removed", testRunOwnedRootsRemoved)
	t.Run("name too long for the file system", testRunNameTooLong)
	t.Run("refused overlay mount", testRunOverlayRefused)
	t.Run("copied up unchanged", testRunCopiedUpUnchanged)
	t.Run("ended builds release their roots", testRunEndedBuildsReleaseRoots)
	t.Run("closed directories stay closed", testRunClosedDirectories)
	t.Run("exec form searches PATH", testRunExecFormPath)
	if os.Geteuid() != 0 || os.Getenv(asUserEnv) != "" {
		return
	}
	// sgetest has subordinate ids (scripts/services/imagebuild.sh sets them up),
	// nobody has none; the latter runs the tests the mapping changes.
	t.Run("as an unprivileged user with subordinate ids", func(t *testing.T) {
		if !hasSubIDs(t, "sgetest") {
			testenv.Skipf(t, "sgetest has no subordinate ids or newuidmap is missing; ./scripts/test.sh sets them up")
		}
		runAs(t, "sgetest", "subids", "^TestNamespaceRunner$/^(create|environment|failure|cancel|deterministic|network|read-only|kept|extended|owne)")
	})
	t.Run("as an unprivileged user with a single mapping", func(t *testing.T) {
		runAs(t, "nobody", "single", "^TestNamespaceRunner$/^(create|environment|kept|owne)")
	})
}

// hasSubIDs reports whether name has ranges in /etc/subuid and /etc/subgid and
// newuidmap and newgidmap are installed.
func hasSubIDs(t *testing.T, name string) bool {
	for _, p := range []string{"newuidmap", "newgidmap"} {
		if _, err := exec.LookPath(p); err != nil {
			return false
		}
	}
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		if err != nil || !strings.Contains("\n"+string(b), "\n"+name+":") {
			return false
		}
	}
	return true
}

// fullMapping reports whether RUN steps of this process map more than root:
// as root, or as a user with subordinate ids.
func fullMapping() bool { return os.Geteuid() == 0 || os.Getenv(asUserEnv) == "subids" }

// runAs runs the tests matching run in a copy of the test binary as the user
// name (created if missing), marked with mode.
func runAs(t *testing.T, name, mode, run string) {
	u, err := user.Lookup(name)
	if err != nil {
		out, aerr := exec.Command("useradd", "--system", "--no-create-home", name).CombinedOutput()
		require.NoError(t, aerr, "creating user %s: %s", name, out)
		u, err = user.Lookup(name)
	}
	require.NoError(t, err)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	dir, err := os.MkdirTemp("", "hpcship-runtest-")
	require.NoError(t, err)
	t.Cleanup(func() {
		// Steps with subordinate ids leave files the caller cannot remove as root
		// of the host only in the cache; root can.
		_ = os.RemoveAll(dir)
	})
	require.NoError(t, os.Chmod(dir, 0o755))
	bin := filepath.Join(dir, "imagebuild.test")
	self, err := os.ReadFile(os.Args[0])
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(bin, self, 0o755))
	tmp := filepath.Join(dir, "tmp")
	require.NoError(t, os.Mkdir(tmp, 0o755))
	require.NoError(t, os.Chown(tmp, uid, gid))
	cmd := exec.CommandContext(t.Context(), bin, "-test.run", run, "-test.v", "-test.count=1")
	cmd.Dir = tmp
	cmd.Env = []string{asUserEnv + "=" + mode, "TMPDIR=" + tmp, "HOME=" + tmp, "PATH=" + os.Getenv("PATH")}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	out, err := cmd.CombinedOutput()
	t.Logf("as %s (uid %d):\n%s", u.Username, uid, out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "--- PASS: TestNamespaceRunner/create_modify_delete")
	left, err := filepath.Glob(filepath.Join(tmp, "hpcship-run-*"))
	require.NoError(t, err)
	assert.Empty(t, left, "temporary directories left behind")
}

// buildWith builds df on the busybox base with a NamespaceRunner.
func buildWith(ctx context.Context, t *testing.T, df string, opts ...imagebuild.Option) (v1.Image, error) {
	t.Helper()
	base := busyboxBase(t)
	all := append([]imagebuild.Option{imagebuild.WithBaseImage("base", imagebuild.FromImage(base)),
		imagebuild.WithContextDir(t.TempDir()), imagebuild.WithCacheDir(t.TempDir()),
		imagebuild.WithSourceDateEpoch(time.Unix(1_700_000_000, 0)),
		imagebuild.WithRunner(imagebuild.NewNamespaceRunner())}, opts...)
	d, err := imagebuild.ParseDockerfile(strings.NewReader(df), all...)
	require.NoError(t, err)
	return d.Build(ctx)
}

type layerEntry struct {
	typ      byte
	mode     int64
	link     string
	body     string
	uid, gid int
}

func layerEntries(t *testing.T, l v1.Layer) map[string]layerEntry {
	t.Helper()
	rc, err := l.Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	m := map[string]layerEntry{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		require.NoError(t, err)
		body, err := io.ReadAll(tr)
		require.NoError(t, err)
		m[h.Name] = layerEntry{typ: h.Typeflag, mode: h.Mode, link: h.Linkname, body: string(body), uid: h.Uid, gid: h.Gid}
	}
}

func testRunChanges(t *testing.T) {
	df := `FROM base
RUN mkdir -p /opt/gone/sub /opt/redir /opt/replace && touch /opt/gone/sub/a /opt/redir/old /opt/replace/x && echo one > /opt/mod && echo same > /opt/chm
RUN rm -rf /opt/gone && echo two >> /opt/mod && chmod 600 /opt/chm && rm -rf /opt/redir && echo f > /opt/redir && rm -rf /opt/replace && mkdir /opt/replace && touch /opt/replace/y && ln /opt/mod /opt/modlink && ln -s mod /opt/sym && mkfifo /opt/fifo && mkdir -m 0700 /opt/newdir
`
	img, err := buildWith(t.Context(), t, df)
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3)
	got := layerEntries(t, layers[2])
	names := make([]string, 0, len(got))
	for n := range got {
		names = append(names, n)
	}
	assert.ElementsMatch(t, []string{"opt/", "opt/.wh.gone", "opt/chm", "opt/fifo", "opt/mod", "opt/modlink",
		"opt/newdir/", "opt/redir", "opt/replace/", "opt/replace/.wh..wh..opq", "opt/replace/y", "opt/sym"}, names)
	assert.Equal(t, "one\ntwo\n", got["opt/mod"].body)
	assert.Equal(t, byte(tar.TypeLink), got["opt/modlink"].typ)
	assert.Equal(t, "opt/mod", got["opt/modlink"].link)
	assert.Equal(t, int64(0o600), got["opt/chm"].mode)
	assert.Equal(t, "same\n", got["opt/chm"].body)
	assert.Equal(t, byte(tar.TypeFifo), got["opt/fifo"].typ)
	assert.Equal(t, byte(tar.TypeSymlink), got["opt/sym"].typ)
	assert.Equal(t, "mod", got["opt/sym"].link)
	assert.Equal(t, int64(0o700), got["opt/newdir/"].mode)
	assert.Equal(t, "f\n", got["opt/redir"].body)
	for n, e := range got {
		assert.Zero(t, e.uid, n)
	}

	tr := tree(t, img)
	assert.Equal(t, "one\ntwo\n", content(t, tr, "opt/modlink"))
	testRunChown(t)
	for _, p := range []string{"opt/gone", "opt/gone/sub/a", "opt/redir/old", "opt/replace/x"} {
		_, ok := tr.Lookup(p)
		assert.False(t, ok, p)
	}
	_, ok := tr.Lookup("opt/replace/y")
	assert.True(t, ok)
	// The placeholders for /proc, /dev and the host's resolver files are not content.
	for _, p := range []string{"proc", "dev/null", "etc/resolv.conf", "etc/hosts"} {
		_, ok := tr.Lookup(p)
		assert.False(t, ok, p)
	}
}

func testRunEnvironment(t *testing.T) {
	df := `FROM base
ENV GREETING=hello
WORKDIR /work
RUN echo "$GREETING" > greeting && pwd > where && id -u > uid && test -e /proc/self/status && echo x > /dev/null && echo $$ > pid
`
	if fullMapping() {
		df += "USER hpc\nRUN id -u > /tmp/user && id -g > /tmp/group\n"
	}
	img, err := buildWith(t.Context(), t, df)
	require.NoError(t, err)
	tr := tree(t, img)
	assert.Equal(t, "hello\n", content(t, tr, "work/greeting"))
	assert.Equal(t, "/work\n", content(t, tr, "work/where"))
	assert.Equal(t, "0\n", content(t, tr, "work/uid"))
	assert.Equal(t, "1\n", content(t, tr, "work/pid"), "the step's shell is pid 1 of a new pid namespace")
	if fullMapping() {
		assert.Equal(t, "1000\n", content(t, tr, "tmp/user"))
		assert.Equal(t, "1001\n", content(t, tr, "tmp/group"))
		e, ok := tr.Lookup("tmp/user")
		require.True(t, ok)
		assert.Equal(t, 1000, e.UID)
		return
	}
	_, err = buildWith(t.Context(), t, "FROM base\nUSER hpc\nRUN true\n")
	var nm *imagebuild.UserNotMappedError
	require.ErrorAs(t, err, &nm)
	assert.Equal(t, 1000, nm.UID)
}

func testRunFailure(t *testing.T) {
	_, err := buildWith(t.Context(), t, "FROM base\nRUN true\n\nRUN echo boom >&2 && exit 3\n")
	var se *imagebuild.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 4, se.Line)
	var re *imagebuild.RunError
	require.ErrorAs(t, err, &re)
	assert.Equal(t, 3, re.ExitCode)
	assert.Contains(t, re.Output, "boom")
	assert.Contains(t, err.Error(), "line 4")
	assert.Contains(t, err.Error(), "exit code 3")

	_, err = buildWith(t.Context(), t, "FROM base\nUSER nosuch\nRUN true\n")
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 3, se.Line)
	assert.ErrorContains(t, err, `USER "nosuch": no such user in the image's /etc/passwd`)
}

func testRunCancel(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	marker := "31" + strconv.Itoa(os.Getpid()%1000+100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		// Cancel once the step's processes exist.
		for ctx.Err() == nil {
			if len(processesWith(t, "sleep "+marker)) >= 2 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := buildWith(ctx, t, "FROM base\nRUN sleep "+marker+" & sleep "+marker+"; wait\n")
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, processesWith(t, "sleep "+marker), "processes of the step survived")
	left, err := filepath.Glob(filepath.Join(tmp, "hpcship-run-*"))
	require.NoError(t, err)
	assert.Empty(t, left)
}

// processesWith lists the pids whose command line is exactly cmd.
func processesWith(t *testing.T, cmd string) []string {
	var pids []string
	dirs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, f := range dirs {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		if string(bytes.TrimRight(bytes.ReplaceAll(b, []byte{0}, []byte{' '}), " ")) == cmd {
			pids = append(pids, f)
		}
	}
	return pids
}

func testRunDeterministic(t *testing.T) {
	df := "FROM base\nRUN mkdir -p /opt/x && echo data > /opt/x/f && ln -s f /opt/x/l && rm /etc/group\n"
	a, err := buildWith(t.Context(), t, df)
	require.NoError(t, err)
	b, err := buildWith(t.Context(), t, df)
	require.NoError(t, err)
	assert.Equal(t, digestOf(t, a), digestOf(t, b))
}

func testRunNetworkOff(t *testing.T) {
	var out bytes.Buffer
	img, err := buildWith(t.Context(), t, "FROM base\nRUN ls /sys/class/net 2>/dev/null; cat /proc/net/dev | tail -n +3 | cut -d: -f1 | tr -d ' ' > /ifaces; echo visible\n",
		imagebuild.WithRunner(imagebuild.NewNamespaceRunner(imagebuild.WithRunNetwork(false), imagebuild.WithRunOutput(&out))))
	require.NoError(t, err)
	assert.Equal(t, "lo\n", content(t, tree(t, img), "ifaces"))
	assert.Contains(t, out.String(), "visible")
}

func testRunCached(t *testing.T) {
	base := busyboxBase(t)
	cache := t.TempDir()
	build := func(arg string) (string, string) {
		var out bytes.Buffer
		d, err := imagebuild.ParseDockerfile(strings.NewReader("FROM base\nARG V\nRUN echo ran $V && echo $V > /v\n"),
			imagebuild.WithBaseImage("base", imagebuild.FromImage(base)), imagebuild.WithContextDir(t.TempDir()),
			imagebuild.WithCacheDir(cache), imagebuild.WithSourceDateEpoch(time.Unix(1_700_000_000, 0)),
			imagebuild.WithBuildArg("V", arg),
			imagebuild.WithRunner(imagebuild.NewNamespaceRunner(imagebuild.WithRunOutput(&out))))
		require.NoError(t, err)
		img, err := d.Build(t.Context())
		require.NoError(t, err)
		return digestOf(t, img), out.String()
	}
	first, out := build("1")
	assert.Equal(t, "ran 1\n", out)
	again, out := build("1")
	assert.Empty(t, out, "a rebuild with nothing changed must not run the step")
	assert.Equal(t, first, again)
	other, out := build("2")
	assert.Equal(t, "ran 2\n", out, "another build argument runs the step again")
	assert.NotEqual(t, first, other)
}

func testRunBinds(t *testing.T) {
	host := t.TempDir()
	require.NoError(t, os.Chmod(host, 0o755))
	require.NoError(t, os.WriteFile(filepath.Join(host, "f"), []byte("from the host\n"), 0o644))
	runner := imagebuild.NewNamespaceRunner(imagebuild.WithRunBinds(imagebuild.Bind{Source: host, Target: "/mnt/data"}))
	img, err := buildWith(t.Context(), t, "FROM base\nRUN cat /mnt/data/f > /out && ! touch /mnt/data/x 2>/dev/null && ! rm /mnt/data/f\n",
		imagebuild.WithRunner(runner))
	require.NoError(t, err)
	tr := tree(t, img)
	assert.Equal(t, "from the host\n", content(t, tr, "out"))
	_, ok := tr.Lookup("mnt")
	assert.False(t, ok, "the mount point is not content")
	entries, err := os.ReadDir(host)
	require.NoError(t, err)
	assert.Len(t, entries, 1)

	// A target through a symlink of the image is refused before anything is created.
	runner = imagebuild.NewNamespaceRunner(imagebuild.WithRunBinds(imagebuild.Bind{Source: host, Target: "/bin/sh/x"}))
	_, err = buildWith(t.Context(), t, "FROM base\nRUN true\n", imagebuild.WithRunner(runner))
	require.ErrorIs(t, err, imagebuild.ErrUnsafePath)

	// So is a target through a file, on the kept root and on an unpacked one.
	for _, target := range []string{"/etc/passwd/x", "/etc/passwd/x/y"} {
		for _, r := range []*imagebuild.NamespaceRunner{
			imagebuild.NewNamespaceRunner(imagebuild.WithRunBinds(imagebuild.Bind{Source: host, Target: target})),
			imagebuild.UnpackEveryStep(imagebuild.NewNamespaceRunner(imagebuild.WithRunBinds(imagebuild.Bind{Source: host, Target: target}))),
		} {
			_, err = buildWith(t.Context(), t, "FROM base\nRUN true\n", imagebuild.WithRunner(r))
			require.ErrorContains(t, err, fmt.Sprintf("bind target %q: /etc/passwd is not a directory", target))
		}
	}
}

// testRunChown checks chown to another uid: it works with the identity mapping a
// root caller gets and fails, as documented, with a single mapping.
func testRunChown(t *testing.T) {
	img, err := buildWith(t.Context(), t, "FROM base\nRUN touch /opt/owned && chown 1000:1001 /opt/owned && echo chowned || echo refused > /opt/refused\n")
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	rc, err := layers[len(layers)-1].Uncompressed()
	require.NoError(t, err)
	defer rc.Close()
	owners := map[string][2]int{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		owners[h.Name] = [2]int{h.Uid, h.Gid}
	}
	if fullMapping() {
		assert.Equal(t, [2]int{1000, 1001}, owners["opt/owned"])
		assert.NotContains(t, owners, "opt/refused")
		return
	}
	assert.Equal(t, [2]int{0, 0}, owners["opt/owned"])
	assert.Contains(t, owners, "opt/refused")
}

// testRunModesAgree builds the same steps on an overlay of the kept root and on
// a root unpacked for every step (what happens where the kernel refuses overlay
// mounts): the layers must be the same, and a second build that reuses the kept
// root too. Not covered, because the two differ: changing a file that an
// earlier layer hardlinked (on the overlay, the other names keep the old
// content and metadata, and removing one name leaves the others out of the
// layer), and replacing a directory with a new one, which the unpacked root
// records as an opaque directory or as whiteouts depending on whether the file
// system reused the inode number.
func testRunModesAgree(t *testing.T) {
	df := `FROM base
RUN mkdir -p /opt/gone/sub /opt/replace /opt/keep && touch /opt/gone/sub/a /opt/replace/x /opt/keep/k && echo one > /opt/mod && ln /opt/mod /opt/hl
RUN rm -rf /opt/gone && echo two >> /opt/keep/k && chmod 600 /etc/passwd && rm /etc/group && ln -s mod /opt/sym && mkfifo /opt/fifo && ln /opt/keep/k /opt/k2 && rm /opt/k2
RUN cat /opt/mod > /opt/copy && touch /opt/keep && chmod 640 /opt/keep/k && mv /opt/replace /opt/moved && rm -rf /bin/sh && echo x > /bin/sh
`
	cache := t.TempDir()
	build := func(r *imagebuild.NamespaceRunner) []string {
		img, err := buildWith(t.Context(), t, df, imagebuild.WithRunner(r), imagebuild.WithCacheDir(cache), imagebuild.WithoutCache())
		require.NoError(t, err)
		layers, err := img.Layers()
		require.NoError(t, err)
		var listing []string
		for i, l := range layers[1:] {
			rc, err := l.Uncompressed()
			require.NoError(t, err)
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				listing = append(listing, fmt.Sprintf("%d %s %c %o %d:%d %d %s %s", i+1, h.Name, h.Typeflag, h.Mode, h.Uid, h.Gid, h.Size, h.Linkname, h.ModTime.UTC().Format(time.RFC3339Nano)))
			}
			require.NoError(t, rc.Close())
		}
		return append(listing, digestOf(t, img))
	}
	r := imagebuild.NewNamespaceRunner()
	kept := build(r)
	require.True(t, imagebuild.Overlaid(r), "the kernel refused the overlay mount")
	again := kept
	if os.Getenv(asUserEnv) == "" { // once is enough
		again = build(imagebuild.NewNamespaceRunner())
	}
	unpacked := build(imagebuild.UnpackEveryStep(imagebuild.NewNamespaceRunner()))
	assert.Equal(t, unpacked, kept)
	assert.Equal(t, kept, again)
	roots, err := filepath.Glob(filepath.Join(cache, "run-roots", "*.lock"))
	require.NoError(t, err)
	assert.Len(t, roots, 1, "one kept root for the base")
}

// testRunXattrs checks that user.* extended attributes of the base survive RUN
// steps that change the files' content or metadata, on the overlay and on an
// unpacked root.
func testRunXattrs(t *testing.T) {
	var files []baseFile
	for _, name := range []string{"opt/x", "opt/y", "opt/z"} {
		files = append(files, baseFile{tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX,
			PAXRecords: map[string]string{"SCHILY.xattr.user.greeting": "hello " + name}}, "x\n"})
	}
	base := withLayer(t, busyboxBase(t), files...)
	for _, r := range []*imagebuild.NamespaceRunner{imagebuild.NewNamespaceRunner(), imagebuild.UnpackEveryStep(imagebuild.NewNamespaceRunner())} {
		img, err := buildWith(t.Context(), t, "FROM base\nRUN echo more >> /opt/x && chmod 600 /opt/y\n",
			imagebuild.WithBaseImage("base", imagebuild.FromImage(base)), imagebuild.WithRunner(r))
		require.NoError(t, err)
		tr := tree(t, img)
		for _, name := range []string{"opt/x", "opt/y", "opt/z"} {
			e, ok := tr.Lookup(name)
			require.True(t, ok, name)
			assert.Equal(t, map[string]string{"user.greeting": "hello " + name}, e.Xattrs, name)
		}
		layers, err := img.Layers()
		require.NoError(t, err)
		got := layerEntries(t, layers[len(layers)-1])
		assert.Contains(t, got, "opt/y", "a change of mode only is in the layer")
		assert.NotContains(t, got, "opt/z")
	}
}

// subIDCount is the size N of the id mapping of a process with subordinate
// ids (the smaller of its /etc/subuid and /etc/subgid ranges), and 65536
// otherwise.
func subIDCount(t *testing.T) int {
	if os.Getenv(asUserEnv) != "subids" {
		return 65536
	}
	u, err := user.Current()
	require.NoError(t, err)
	n := -1
	for _, f := range []string{"/etc/subuid", "/etc/subgid"} {
		b, err := os.ReadFile(f)
		require.NoError(t, err)
		for _, line := range strings.Split(string(b), "\n") {
			if fields := strings.Split(line, ":"); len(fields) == 3 && (fields[0] == u.Username || fields[0] == u.Uid) {
				c, err := strconv.Atoi(fields[2])
				require.NoError(t, err)
				if n < 0 || c < n {
					n = c
				}
				break
			}
		}
	}
	require.Positive(t, n, "no subordinate ids for %s", u.Username)
	return n
}

// ownedBase is the busybox base with a layer of files that root does not own:
// /home/hpc (1000:1001, 0700) holding f (1000:1001, 0600), /opt/suid
// (1000:1001, 6755, set-user-ID and set-group-ID), /opt/edge owned by
// the highest id of the mapping (N:N, see subIDCount) and /opt/far by the next
// (N+1:N+1), both 0644. tag goes into /opt/tag, so that bases with different
// tags differ.
func ownedBase(t *testing.T, tag string) v1.Image {
	n := subIDCount(t)
	t.Helper()
	return withLayer(t, busyboxBase(t),
		baseFile{tar.Header{Name: "home/", Typeflag: tar.TypeDir, Mode: 0o755}, ""},
		baseFile{tar.Header{Name: "home/hpc/", Typeflag: tar.TypeDir, Mode: 0o700, Uid: 1000, Gid: 1001}, ""},
		baseFile{tar.Header{Name: "home/hpc/f", Typeflag: tar.TypeReg, Mode: 0o600, Uid: 1000, Gid: 1001}, "mine\n"},
		baseFile{tar.Header{Name: "opt/edge", Typeflag: tar.TypeReg, Mode: 0o644, Uid: n, Gid: n}, "edge\n"},
		baseFile{tar.Header{Name: "opt/suid", Typeflag: tar.TypeReg, Mode: 0o6755, Uid: 1000, Gid: 1001}, "#!/bin/sh\n"},
		baseFile{tar.Header{Name: "opt/far", Typeflag: tar.TypeReg, Mode: 0o644, Uid: n + 1, Gid: n + 1}, "far\n"},
		baseFile{tar.Header{Name: "opt/tag", Typeflag: tar.TypeReg, Mode: 0o644}, tag})
}

// removedCache is a cache directory for r's builds that r removes at the end of
// the test: with subordinate ids its kept roots hold files the caller cannot
// remove itself.
func removedCache(t *testing.T, r *imagebuild.NamespaceRunner) string {
	dir := t.TempDir()
	t.Cleanup(func() { assert.NoError(t, r.RemoveAll(context.WithoutCancel(t.Context()), dir)) })
	return dir
}

// testRunOwners checks that a step sees the owners the layers record, as far as
// the id mapping reaches (as root: all; with subordinate ids: up to the range's
// size; with a single mapping: none, every file is root's), that a USER among
// them can use their files, and that the layer keeps the recorded owners of
// files whose owner the step did not change.
func testRunOwners(t *testing.T) {
	ctxDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "g"), []byte("copied\n"), 0o600))
	user := ""
	if fullMapping() {
		user = "USER hpc\n"
	}
	n := subIDCount(t)
	df := "FROM base\nRUN stat -c %u:%g /opt/edge /opt/far > /tmp/far && echo y >> /opt/far && stat -c %a /tmp /opt/suid > /tmp/modes\nCOPY --chown=1000:1001 g /home/hpc/g\n" + user +
		"RUN stat -c %u:%g /home/hpc /home/hpc/f /home/hpc/g > /tmp/seen && test -d /home/hpc/data && echo x >> /home/hpc/f && echo x >> /home/hpc/g && touch /home/hpc/new\n"
	log, logs := newLogger()
	// A mount point below /home/hpc: the directories on the way keep their
	// owners, and the mount point is not part of the layer.
	host := t.TempDir()
	require.NoError(t, os.Chmod(host, 0o755))
	r := imagebuild.NewNamespaceRunner(imagebuild.WithRunBinds(imagebuild.Bind{Source: host, Target: "/home/hpc/data"}))
	img, err := buildWith(t.Context(), t, df, imagebuild.WithBaseImage("base", imagebuild.FromImage(ownedBase(t, ""))),
		imagebuild.WithContextDir(ctxDir), imagebuild.WithRunner(r), imagebuild.WithCacheDir(removedCache(t, r)), imagebuild.WithLogger(log))
	require.NoError(t, err)
	tr := tree(t, img)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 5)
	assert.Equal(t, "1777\n6755\n", content(t, tr, "tmp/modes"), "the step sees the sticky, set-user-ID and set-group-ID bits")
	far := layerEntries(t, layers[2])["opt/far"]
	assert.Equal(t, [2]int{n + 1, n + 1}, [2]int{far.uid, far.gid}, "the layer keeps an owner beyond the mapping")
	assert.Equal(t, "far\ny\n", far.body)
	got := layerEntries(t, layers[4])
	assert.Equal(t, "mine\nx\n", got["home/hpc/f"].body)
	assert.Equal(t, "copied\nx\n", got["home/hpc/g"].body)
	for _, name := range []string{"home/hpc/", "home/hpc/f", "home/hpc/g"} {
		assert.Equal(t, [2]int{1000, 1001}, [2]int{got[name].uid, got[name].gid}, name)
	}
	assert.NotContains(t, got, "home/hpc/data/")
	_, ok := tr.Lookup("home/hpc/data")
	assert.False(t, ok, "the mount point is not content")
	switch {
	case os.Geteuid() == 0:
		assert.Equal(t, fmt.Sprintf("%d:%d\n%d:%d\n", n, n, n+1, n+1), content(t, tr, "tmp/far"))
		assert.Equal(t, "1000:1001\n1000:1001\n1000:1001\n", content(t, tr, "tmp/seen"))
		assert.Equal(t, [2]int{1000, 1001}, [2]int{got["home/hpc/new"].uid, got["home/hpc/new"].gid})
		assert.NotContains(t, logs.String(), "beyond")
	case fullMapping():
		assert.Equal(t, fmt.Sprintf("%d:%d\n0:0\n", n, n), content(t, tr, "tmp/far"), "ids beyond the range are root's during the step")
		assert.Equal(t, "1000:1001\n1000:1001\n1000:1001\n", content(t, tr, "tmp/seen"))
		assert.Equal(t, [2]int{1000, 1001}, [2]int{got["home/hpc/new"].uid, got["home/hpc/new"].gid})
		assert.Contains(t, logs.String(), "level=WARN")
		assert.Contains(t, logs.String(), "beyond the subordinate ids")
		assert.Contains(t, logs.String(), fmt.Sprintf("files=1 first=/opt/far uid=%d gid=%d", n+1, n+1))
	default:
		assert.Equal(t, "0:0\n0:0\n", content(t, tr, "tmp/far"))
		assert.Equal(t, "0:0\n0:0\n0:0\n", content(t, tr, "tmp/seen"), "with a single mapping every file is root's")
		assert.Equal(t, [2]int{0, 0}, [2]int{got["home/hpc/new"].uid, got["home/hpc/new"].gid})
		assert.NotContains(t, logs.String(), "beyond")
	}
}

// testRunOwnedRootsRemoved checks that kept roots whose files belong to other
// ids leave nothing behind: evicted by a later build (the third root, in a
// build that is cancelled during its step), and when the caller removes the
// cache directory with RemoveAll.
func testRunOwnedRootsRemoved(t *testing.T) {
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	r := imagebuild.NewNamespaceRunner()
	cache := t.TempDir()
	for _, tag := range []string{"1", "2"} {
		_, err := buildWith(t.Context(), t, "FROM base\nRUN echo x >> /home/hpc/f\n", imagebuild.WithRunner(r),
			imagebuild.WithBaseImage("base", imagebuild.FromImage(ownedBase(t, tag))), imagebuild.WithCacheDir(cache))
		require.NoError(t, err)
	}
	marker := "32" + strconv.Itoa(os.Getpid()%1000+100)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go func() {
		for ctx.Err() == nil {
			if len(processesWith(t, "sleep "+marker)) > 0 {
				cancel()
				return
			}
			time.Sleep(20 * time.Millisecond)
		}
	}()
	_, err := buildWith(ctx, t, "FROM base\nRUN sleep "+marker+"\n", imagebuild.WithRunner(r),
		imagebuild.WithBaseImage("base", imagebuild.FromImage(ownedBase(t, "3"))), imagebuild.WithCacheDir(cache))
	require.ErrorIs(t, err, context.Canceled)

	left, err := filepath.Glob(filepath.Join(tmp, "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "temporary directories left behind")
	roots := keptRoots(t, cache)
	assert.Len(t, roots, 2, "two kept roots, the others evicted and nothing else: %v", roots)
	if os.Getenv(asUserEnv) == "subids" {
		// The kept roots really hold files of the subordinate ids: the caller
		// cannot remove them itself.
		require.Error(t, os.RemoveAll(cache))
	}
	require.NoError(t, r.RemoveAll(t.Context(), cache))
	_, err = os.Lstat(cache)
	require.ErrorIs(t, err, os.ErrNotExist)
}

// testRunNameTooLong checks that a file of the image whose path, below the
// directory the root is unpacked in, is longer than the host's PATH_MAX fails
// the step, on the kept root and on an unpacked one, instead of going missing
// from it. Its name is within what a layer may hold (4096 bytes).
func testRunNameTooLong(t *testing.T) {
	dirs := strings.Repeat(strings.Repeat("d", 255)+"/", 15)
	for _, tt := range []struct {
		name    string
		wantErr bool
	}{
		{"opt/" + dirs + "short", false},
		{"opt/" + dirs + strings.Repeat("f", 4096-len("opt/"+dirs)), true},
	} {
		require.LessOrEqual(t, len(tt.name), 4096)
		base := withLayer(t, busyboxBase(t), baseFile{tar.Header{Name: tt.name, Typeflag: tar.TypeReg, Mode: 0o644, Format: tar.FormatPAX}, "x\n"})
		runners := []*imagebuild.NamespaceRunner{imagebuild.NewNamespaceRunner()}
		if tt.wantErr {
			runners = append(runners, imagebuild.UnpackEveryStep(imagebuild.NewNamespaceRunner()))
		}
		for _, r := range runners {
			img, err := buildWith(t.Context(), t, "FROM base\nRUN touch /ran\n",
				imagebuild.WithBaseImage("base", imagebuild.FromImage(base)), imagebuild.WithRunner(r))
			if tt.wantErr {
				require.ErrorIs(t, err, syscall.ENAMETOOLONG, "overlay: %v", imagebuild.Overlaid(r))
				continue
			}
			require.NoError(t, err)
			tr := tree(t, img)
			_, ok := tr.Lookup("ran")
			assert.True(t, ok)
			assert.Equal(t, "x\n", content(t, tr, tt.name))
		}
	}
}

// testRunOverlayRefused checks that a step whose overlay mount the kernel
// refuses runs on an unpacked root instead, and that the runner keeps doing so.
// The kernel refuses overlapping layers: with TMPDIR inside the kept root, the
// step's upper directory would lie inside its lower one.
func testRunOverlayRefused(t *testing.T) {
	cache := t.TempDir()
	_, err := buildWith(t.Context(), t, "FROM base\nRUN true\n", imagebuild.WithCacheDir(cache))
	require.NoError(t, err)
	roots, err := filepath.Glob(filepath.Join(cache, "run-roots", "*", "root"))
	require.NoError(t, err)
	require.Len(t, roots, 1)
	t.Setenv("TMPDIR", filepath.Join(roots[0], "tmp"))

	r := imagebuild.NewNamespaceRunner()
	img, err := buildWith(t.Context(), t, "FROM base\nRUN echo one > /one\nRUN echo two > /two\n",
		imagebuild.WithCacheDir(cache), imagebuild.WithRunner(r))
	require.NoError(t, err)
	assert.False(t, imagebuild.Overlaid(r), "the runner goes on unpacking roots")
	tr := tree(t, img)
	assert.Equal(t, "one\n", content(t, tr, "one"))
	assert.Equal(t, "two\n", content(t, tr, "two"))
	left, err := filepath.Glob(filepath.Join(roots[0], "tmp", "*"))
	require.NoError(t, err)
	assert.Empty(t, left, "temporary directories left behind")
}

// testRunCopiedUpUnchanged checks that files the overlay copies up without a
// change (a chown to the owner they have), symlinks among them, from the base
// and from an earlier step, stay out of the layer.
func testRunCopiedUpUnchanged(t *testing.T) {
	img, err := buildWith(t.Context(), t, "FROM base\nRUN ln -s busybox /bin/ls\nRUN chown -h 0:0 /bin/sh /bin/ls /etc/passwd\n",
		imagebuild.WithRunner(imagebuild.NewNamespaceRunner()))
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	if assert.Len(t, layers, 2, "the step adds no layer") {
		return
	}
	assert.Empty(t, layerEntries(t, layers[2]))
}

// testRunEndedBuildsReleaseRoots checks that a build releases the kept root it
// used when it ends, so that a later build on other layers can evict it. The
// collector is off: it would close a lock file left open, and release it, at
// a time of its own.
func testRunEndedBuildsReleaseRoots(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	cache := t.TempDir()
	r := imagebuild.NewNamespaceRunner()
	for _, tag := range []string{"1", "2", "3"} {
		_, err := buildWith(t.Context(), t, "FROM base\nRUN true\n", imagebuild.WithRunner(r),
			imagebuild.WithBaseImage("base", imagebuild.FromImage(ownedBase(t, tag))), imagebuild.WithCacheDir(cache))
		require.NoError(t, err)
	}
	roots := keptRoots(t, cache)
	assert.Len(t, roots, 2, "the oldest root is evicted: %v", roots)
}

// testRunClosedDirectories checks that directories a step closed to their
// owner (no read or search permission for it) keep their modes, in the layer
// and for the next step, although the step's changes are read through them.
func testRunClosedDirectories(t *testing.T) {
	img, err := buildWith(t.Context(), t, "FROM base\nRUN mkdir -m 0 /opt/a && mkdir -m 400 /opt/b && mkdir -m 500 /opt/c\n"+
		"RUN stat -c %a /opt/a /opt/b /opt/c > /modes\n")
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	require.Len(t, layers, 3)
	got := layerEntries(t, layers[1])
	assert.Equal(t, [3]int64{0, 0o400, 0o500}, [3]int64{got["opt/a/"].mode, got["opt/b/"].mode, got["opt/c/"].mode})
	assert.Equal(t, "0\n400\n500\n", content(t, tree(t, img), "modes"))
}

// testRunExecFormPath checks that an exec-form RUN finds a program named
// without a slash in the step's PATH, and fails clearly where it is not there.
func testRunExecFormPath(t *testing.T) {
	img, err := buildWith(t.Context(), t, "FROM base\nRUN [\"busybox\", \"touch\", \"/ran\"]\n")
	require.NoError(t, err)
	_, ok := tree(t, img).Lookup("ran")
	assert.True(t, ok)

	_, err = buildWith(t.Context(), t, "FROM base\nENV PATH=/opt\nRUN [\"busybox\", \"true\"]\n")
	var re *imagebuild.RunError
	require.ErrorAs(t, err, &re)
	assert.Contains(t, re.Output, "busybox: executable file not found in PATH /opt")
}

// rootOfOneID marks the copy of the test binary that runs as root of a user
// namespace mapping only root.
const rootOfOneID = "root-of-one-id"

// TestRunAsRootOfOneID checks that a RUN as root of a user namespace that maps
// only root (unshare -r, as in a rootless container: the effective uid is 0 but
// other ids do not exist) fails on the first file of the image that it cannot
// give its owner, and names it.
func TestRunAsRootOfOneID(t *testing.T) {
	if os.Getenv(asUserEnv) == rootOfOneID {
		_, err := buildWith(t.Context(), t, "FROM base\nRUN true\n", imagebuild.WithBaseImage("base", imagebuild.FromImage(ownedBase(t, ""))),
			imagebuild.WithRunner(imagebuild.UnpackEveryStep(imagebuild.NewNamespaceRunner())))
		require.ErrorIs(t, err, syscall.EINVAL)
		var pe *fs.PathError
		require.ErrorAs(t, err, &pe)
		assert.Equal(t, "chown", pe.Op)
		assert.True(t, strings.HasSuffix(pe.Path, "/root/home/hpc/f"), "the error names the file: %s", pe.Path)
		return
	}
	if os.Getenv(asUserEnv) != "" {
		return
	}
	testenv.Require(t, "unshare")
	cmd := exec.CommandContext(t.Context(), "unshare", "--user", "--map-root-user", os.Args[0],
		"-test.run", "^TestRunAsRootOfOneID$", "-test.v", "-test.count=1")
	cmd.Env = append(os.Environ(), asUserEnv+"="+rootOfOneID)
	out, err := cmd.CombinedOutput()
	t.Logf("in a user namespace that maps only root:\n%s", out)
	require.NoError(t, err)
	assert.Contains(t, string(out), "--- PASS: TestRunAsRootOfOneID")
}

// keptRoots lists the kept roots in cache's run-roots directory, without their lock files.
func keptRoots(t *testing.T, cache string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(cache, "run-roots"))
	require.NoError(t, err)
	var roots []string
	for _, e := range entries {
		if !strings.HasSuffix(e.Name(), ".lock") {
			roots = append(roots, e.Name())
		}
	}
	return roots
}
