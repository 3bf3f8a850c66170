package singularity_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// childEnv makes the test binary build a SIF and exit, so that the build runs
// as an unprivileged user: HPCSHIP_SIF_CHILD=layout-dir:output-path.
const childEnv = "HPCSHIP_SIF_CHILD"

func TestMain(m *testing.M) {
	if spec := os.Getenv(childEnv); spec != "" {
		os.Exit(childBuild(spec))
	}
	os.Exit(m.Run())
}

func childBuild(spec string) int {
	dir, out, _ := strings.Cut(spec, ":")
	idx, err := layout.ImageIndexFromPath(dir)
	if err == nil {
		var m *v1.IndexManifest
		if m, err = idx.IndexManifest(); err == nil {
			var img v1.Image
			if img, err = idx.Image(m.Manifests[0].Digest); err == nil {
				opts := []singularity.Option{singularity.WithSource("example.com/busybox:test")}
				if os.Getenv(childEnv+"_ZSTD") != "" {
					opts = append(opts, singularity.WithCompression(singularity.Zstd, 3))
				}
				if os.Getenv(childEnv+"_STALL") != "" {
					// Announce the first file stored, then wait to be killed.
					opts = append(opts, singularity.WithProgress(func(p singularity.Progress) {
						if p.Files == 1 {
							fmt.Println("storing files")
							time.Sleep(time.Minute)
						}
					}))
				}
				err = singularity.Build(context.Background(), img, out, opts...)
			}
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	fmt.Printf("built as uid %d\n", os.Geteuid())
	return 0
}

// busyboxImage is a runnable image made of Debian's static busybox, with
// every kind of entry rootless Apptainer loses.
func busyboxImage(t *testing.T) (v1.Image, []byte) {
	bb := mustRead(t, testenv.Require(t, "busybox")[0])
	base := []ent{
		dir("bin", 0o755), file("bin/busybox", string(bb), 0o755),
		dir("etc", 0o755),
		file("etc/passwd", "root:x:0:0:root:/root:/bin/sh\nuser:x:1000:1000:user:/home/user:/bin/sh\n", 0o644),
		file("etc/group", "root:x:0:\nuser:x:1000:\n", 0o644),
		file("etc/motd", "first\n", 0o644),
		dir("opt", 0o755), file("opt/gone", "gone\n", 0o644), file("opt/orig", "original content\n", 0o644),
		dir("opt/dir", 0o755), file("opt/dir/a", "a\n", 0o644), file("opt/keep", "kept twice\n", 0o644),
	}
	for _, applet := range []string{"sh", "env", "cat", "printf", "stat", "sha256sum", "ls", "id", "od"} {
		base = append(base, symlink("bin/"+applet, "busybox"))
	}
	img := image(t, v1.Config{
		Env:        testEnv,
		Entrypoint: []string{"/bin/printf", `[%s]\n`},
		Cmd:        []string{"default arg", "it's $HOME"},
		Labels:     map[string]string{"org.example.team": "hpc"},
	},
		layer(t, base...),
		layer(t,
			whiteout("opt/gone"), opaque("opt/dir"), file("opt/dir/c", "c\n", 0o644),
			hardlink("opt/link", "opt/orig"), symlink("opt/sym", "dir/c"), hardlink("opt/keep2", "opt/keep"),
			chardev("opt/null", 1, 3),
			file("opt/suid", "#!/bin/sh\n", 0o4755),
			file("opt/secret", "top secret\n", 0),
			dir("opt/locked", 0), file("opt/locked/inner", "inner\n", 0o644),
			owned(dir("home/user", 0o750), 1000, 1000), owned(file("home/user/file", "mine\n", 0o640), 1000, 1000),
			withXattrs(file("opt/xattr", "x\n", 0o644), "user.comment", "kept", "system.posix_acl_access", "\x02\x00"),
		),
		layer(t, file("etc/motd", "changed\n", 0o644), whiteout("opt/orig")),
	)
	return img, bb
}

// buildUnprivileged builds img into dir/out.sif in a child process that runs
// as nobody when the test runs as root, with env added to its environment.
func buildUnprivileged(t *testing.T, img v1.Image, env ...string) string {
	cmd, out := childCommand(t, img)
	cmd.Env = append(cmd.Env, env...)
	b, err := cmd.CombinedOutput()
	require.NoError(t, err, "%s", b)
	uid := os.Geteuid()
	if cmd.SysProcAttr != nil {
		uid = int(cmd.SysProcAttr.Credential.Uid)
	}
	require.Contains(t, string(b), fmt.Sprintf("built as uid %d", uid))
	require.NotZero(t, uid, "the build must not run as root")
	return out
}

// childCommand returns the command that builds img into a SIF in a child
// process, as nobody when the test runs as root, and the output path.
func childCommand(t *testing.T, img v1.Image) (*exec.Cmd, string) {
	shared, err := os.MkdirTemp("", "sif-run-*")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(shared) })
	require.NoError(t, os.Chmod(shared, 0o777))
	lp, err := layout.Write(filepath.Join(shared, "layout"), empty.Index)
	require.NoError(t, err)
	require.NoError(t, lp.AppendImage(img))
	require.NoError(t, filepath.Walk(string(lp), func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Chmod(p, fi.Mode().Perm()|0o555)
	}))
	bin := filepath.Join(shared, "test.bin")
	self, err := os.Open(os.Args[0])
	require.NoError(t, err)
	defer self.Close()
	dst, err := os.OpenFile(bin, os.O_CREATE|os.O_WRONLY, 0o755)
	require.NoError(t, err)
	_, err = io.Copy(dst, self)
	require.NoError(t, err)
	require.NoError(t, dst.Close())

	out := filepath.Join(shared, "out.sif")
	cmd := exec.Command(bin, "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+filepath.Join(shared, "layout")+":"+out)
	if os.Geteuid() == 0 {
		nobody, err := user.Lookup("nobody")
		require.NoError(t, err)
		uid, _ := strconv.Atoi(nobody.Uid)
		gid, _ := strconv.Atoi(nobody.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	}
	return cmd, out
}

// mount mounts the SIF's partition with squashfuse and returns the mount point.
func mount(t *testing.T, sifPath string) string {
	progs := testenv.Require(t, "squashfuse", "fusermount")
	mnt := t.TempDir()
	off := partitionOffset(t, sifPath)
	out, err := exec.Command(progs[0], "-o", "offset="+strconv.FormatInt(off, 10), sifPath, mnt).CombinedOutput()
	require.NoError(t, err, "%s", out)
	t.Cleanup(func() {
		for i := 0; i < 50; i++ {
			if exec.Command(progs[1], "-u", mnt).Run() == nil {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Errorf("could not unmount %s", mnt)
	})
	return mnt
}

// chRun runs a shell script in the image at mnt with an empty environment.
func chRun(t *testing.T, mnt string, argv ...string) string {
	return chRunWith(t, mnt, nil, argv...)
}

// chRunWith is chRun with more ch-run options.
func chRunWith(t *testing.T, mnt string, opts []string, argv ...string) string {
	chrun := testenv.Require(t, "ch-run")[0]
	args := append(append([]string{"--unset-env=*"}, opts...), mnt, "--")
	cmd := exec.Command(chrun, append(args, argv...)...)
	cmd.Env = []string{"USER=" + currentUser(t)}
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	require.NoError(t, err, "ch-run %q: %s", argv, stderr.String())
	return string(out)
}

func currentUser(t *testing.T) string {
	u, err := user.Current()
	require.NoError(t, err)
	return u.Username
}

func TestRunUnderCharliecloud(t *testing.T) {
	testenv.Require(t, "unsquashfs", "squashfuse", "ch-run", "busybox")
	img, bb := busyboxImage(t)
	t.Run("gzip", func(t *testing.T) { runUnderCharliecloud(t, buildUnprivileged(t, img), bb) })
	t.Run("zstd", func(t *testing.T) {
		sifPath := buildUnprivileged(t, img, childEnv+"_ZSTD=1")
		out, err := exec.Command(testenv.Require(t, "unsquashfs")[0], "-o", strconv.FormatInt(partitionOffset(t, sifPath), 10), "-s", sifPath).CombinedOutput()
		require.NoError(t, err, "%s", out)
		require.Contains(t, string(out), "Compression zstd")
		runUnderCharliecloud(t, sifPath, bb)
	})
}

// runUnderCharliecloud checks the SIF built from busyboxImage with
// unsquashfs, then mounts it with squashfuse and runs it with ch-run.
func runUnderCharliecloud(t *testing.T, sifPath string, bb []byte) {
	t.Run("unsquashfs", func(t *testing.T) {
		got := unsquashfsList(t, sifPath, partitionOffset(t, sifPath))
		for path, want := range map[string]string{
			"/opt/null":         "crw-rw-rw- 0/0 1,",
			"/opt/suid":         "-rwsr-xr-x 0/0 10",
			"/opt/secret":       "---------- 0/0 11",
			"/opt/locked":       "d--------- 0/0",
			"/opt/locked/inner": "-rw-r--r-- 0/0 6",
			"/home/user":        "drwxr-x--- 1000/1000",
			"/home/user/file":   "-rw-r----- 1000/1000 5",
			"/bin/busybox":      "-rwxr-xr-x 0/0 " + strconv.Itoa(len(bb)),
			"/opt/link":         "-rw-r--r-- 0/0 17",
		} {
			require.Contains(t, got, path)
			assert.True(t, strings.HasPrefix(got[path], want), "%s: got %q, want %q", path, got[path], want)
		}
		for _, gone := range []string{"/opt/gone", "/opt/orig", "/opt/dir/a"} {
			assert.NotContains(t, got, gone)
		}
	})

	mnt := mount(t, sifPath)

	t.Run("env", func(t *testing.T) {
		out := chRun(t, mnt, "/bin/sh", "-c", `for s in /.singularity.d/env/*.sh; do . "$s"; done; exec /bin/env -0`)
		got := map[string]string{}
		for _, kv := range strings.Split(strings.TrimSuffix(out, "\x00"), "\x00") {
			k, v, _ := strings.Cut(kv, "=")
			got[k] = v
		}
		want := map[string]string{"LD_LIBRARY_PATH": "/.singularity.d/libs"}
		for _, kv := range testEnv {
			k, v, _ := strings.Cut(kv, "=")
			if k != "bad-name" {
				want[k] = v
			}
		}
		// The shell itself sets PWD, SHLVL and PS1 (which 99-base.sh then
		// keeps); ch-run sets HOME and its marker.
		for _, k := range []string{"PWD", "SHLVL", "PS1", "HOME", "CH_RUNNING", "TMPDIR", "USER"} {
			delete(got, k)
		}
		assert.Equal(t, want, got)
	})

	t.Run("runscript", func(t *testing.T) {
		// As in Apptainer, arguments pass through the shell once (so $HOME
		// expands, here to nothing) unless SINGULARITY_NO_EVAL is set.
		assert.Equal(t, "[a b]\n[]\n", chRun(t, mnt, "/.singularity.d/runscript", "a b", "$HOME"))
		assert.Equal(t, "[a b]\n[$HOME]\n", chRunWith(t, mnt, []string{"--set-env=SINGULARITY_NO_EVAL=1"}, "/.singularity.d/runscript", "a b", "$HOME"))
		assert.Equal(t, "[default arg]\n[it's $HOME]\n", chRun(t, mnt, "/.singularity.d/runscript"))
		assert.Equal(t, "[x]\n", chRun(t, mnt, "/singularity", "x"))
	})

	t.Run("contents", func(t *testing.T) {
		sum := sha256.Sum256(bb)
		assert.Equal(t, hex.EncodeToString(sum[:])+"  /bin/busybox\n", chRun(t, mnt, "/bin/sha256sum", "/bin/busybox"))
		for path, want := range map[string]string{
			"/opt/secret": "top secret\n", "/opt/locked/inner": "inner\n", "/opt/link": "original content\n",
			"/opt/sym": "c\n", "/etc/motd": "changed\n", "/home/user/file": "mine\n", "/opt/dir/c": "c\n",
		} {
			if os.Geteuid() != 0 && strings.HasPrefix(path, "/opt/secret") {
				continue
			}
			assert.Equal(t, want, chRun(t, mnt, "/bin/cat", path), path)
		}
		value := make([]byte, 64)
		n, err := syscall.Getxattr(filepath.Join(mnt, "opt/xattr"), "user.comment", value)
		require.NoError(t, err)
		assert.Equal(t, "kept", string(value[:n]))
		_, err = syscall.Getxattr(filepath.Join(mnt, "opt/xattr"), "system.posix_acl_access", value)
		assert.Error(t, err, "the ACL squashfs cannot store is dropped (and logged)")

		// Inside ch-run's user namespace only the caller is mapped, so owners
		// are checked on the mount from outside.
		for path, want := range map[string][2]uint32{"home/user/file": {1000, 1000}, "home/user": {1000, 1000}, "opt/suid": {0, 0}} {
			fi, err := os.Lstat(filepath.Join(mnt, path))
			require.NoError(t, err)
			st := fi.Sys().(*syscall.Stat_t)
			assert.Equal(t, want, [2]uint32{st.Uid, st.Gid}, path)
		}
		lines := strings.Split(strings.TrimSpace(chRun(t, mnt, "/bin/stat", "-c", "%n %a %F %t:%T %h",
			"/opt/null", "/opt/suid", "/opt/secret", "/opt/locked", "/home/user/file", "/opt/link", "/opt/keep", "/opt/keep2")), "\n")
		sort.Strings(lines)
		assert.Equal(t, []string{
			"/home/user/file 640 regular file 0:0 1",
			"/opt/keep 644 regular file 0:0 2",
			"/opt/keep2 644 regular file 0:0 2",
			"/opt/link 644 regular file 0:0 1",
			"/opt/locked 0 directory 0:0 2",
			"/opt/null 666 character special file 1:3 1",
			"/opt/secret 0 regular file 0:0 1",
			"/opt/suid 4755 regular file 0:0 1",
		}, lines)
	})
}

// TestKilledBuildLeavesNoOutput kills the building process mid-way: the
// output path must not exist, only the temporary file next to it.
func TestKilledBuildLeavesNoOutput(t *testing.T) {
	testenv.Require(t, "busybox")
	img, _ := busyboxImage(t)
	cmd, out := childCommand(t, img)
	cmd.Env = append(cmd.Env, childEnv+"_STALL=1")
	stdout, err := cmd.StdoutPipe()
	require.NoError(t, err)
	require.NoError(t, cmd.Start())
	line := make([]byte, 64)
	n, err := stdout.Read(line)
	require.NoError(t, err)
	require.Equal(t, "storing files\n", string(line[:n]))
	require.NoError(t, cmd.Process.Kill())
	_ = cmd.Wait()
	_, err = os.Stat(out)
	assert.ErrorIs(t, err, os.ErrNotExist)
	tmp, err := filepath.Glob(filepath.Join(filepath.Dir(out), ".out.sif.tmp-*"))
	require.NoError(t, err)
	assert.Len(t, tmp, 1, "the partial file has a temporary name")
}
