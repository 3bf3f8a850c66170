package singularity_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// TestPullLabels checks what Pull records of the reference it pulled: the
// definition's source (unless WithSource says otherwise) and the base image's
// name and digest, which Build alone does not know.
func TestPullLabels(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	ref, err := name.ParseReference(reg.LoginServer() + "/rdma:latest")
	require.NoError(t, err)
	img := syntheticImage(t)
	require.NoError(t, remote.Write(ref, img, remote.WithAuth(auth), remote.WithContext(t.Context())))
	digest, err := img.Digest()
	require.NoError(t, err)
	cache := t.TempDir()

	for _, tt := range []struct {
		name     string
		opts     []singularity.Option
		wantFrom string
	}{
		{name: "reference", wantFrom: ref.String()},
		{name: "WithSource", opts: []singularity.Option{singularity.WithSource("myacr.azurecr.io/rdma:latest")}, wantFrom: "myacr.azurecr.io/rdma:latest"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := singularity.Pull(t.Context(), ref, t.TempDir(), append(tt.opts,
				singularity.WithAuthenticator(auth), singularity.WithCacheDir(cache))...)
			require.NoError(t, err)
			assert.Equal(t, "rdma_latest.sif", filepath.Base(out))
			info, err := singularity.Inspect(out)
			require.NoError(t, err)
			assert.Equal(t, "bootstrap: docker\nfrom: "+tt.wantFrom+"\n\n", info.Definition)
			assert.Equal(t, tt.wantFrom, info.Labels["org.label-schema.usage.singularity.deffile.from"])
			assert.Equal(t, ref.String(), info.Labels["org.opencontainers.image.base.name"])
			assert.Equal(t, digest.String(), info.Labels["org.opencontainers.image.base.digest"])
		})
	}

	// Build knows no registry: no base name or digest.
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), img, out))
	info, err := singularity.Inspect(out)
	require.NoError(t, err)
	assert.NotContains(t, info.Labels, "org.opencontainers.image.base.name")
	assert.NotContains(t, info.Labels, "org.opencontainers.image.base.digest")
	assert.Equal(t, digest.String(), info.Labels["org.label-schema.usage.singularity.deffile.from"])
}

// TestReplacedHardlinkTarget checks an image whose /etc/hosts, which the
// builder replaces by an empty file, has hardlinks: they keep its content,
// as one inode.
func TestReplacedHardlinkTarget(t *testing.T) {
	img := image(t, v1Config(), layer(t,
		dir("etc", 0o755), file("etc/hosts", "10.0.0.1 head\n", 0o644),
		hardlink("etc/hosts.orig", "etc/hosts"), hardlink("etc/hosts.bak", "etc/hosts"),
	))
	for _, packer := range []string{"built-in", "sqfstar"} {
		t.Run(packer, func(t *testing.T) {
			opts := []singularity.Option{singularity.WithSourceDateEpoch(epoch)}
			if packer == "sqfstar" {
				opts = append(opts, singularity.WithMksquashfs(testenv.Require(t, "sqfstar")[0]))
			}
			out := filepath.Join(t.TempDir(), "x.sif")
			require.NoError(t, singularity.Build(t.Context(), img, out, opts...))
			got := unsquashfsList(t, out, partitionOffset(t, out))
			assert.Equal(t, "-rw-r--r-- 0/0 0", got["/etc/hosts"])
			assert.Equal(t, "-rw-r--r-- 0/0 14", got["/etc/hosts.orig"])
			assert.Equal(t, "-rw-r--r-- 0/0 14", got["/etc/hosts.bak"])
			// unsquashfs recreates hardlinks as hardlinks.
			x := filepath.Join(t.TempDir(), "x")
			b, err := exec.Command(testenv.Require(t, "unsquashfs")[0], "-o", strconv.FormatInt(partitionOffset(t, out), 10),
				"-n", "-d", x, out, "etc").CombinedOutput()
			require.NoError(t, err, "%s", b)
			orig, err := os.Stat(filepath.Join(x, "etc/hosts.orig"))
			require.NoError(t, err)
			bak, err := os.Stat(filepath.Join(x, "etc/hosts.bak"))
			require.NoError(t, err)
			hosts, err := os.Stat(filepath.Join(x, "etc/hosts"))
			require.NoError(t, err)
			assert.True(t, os.SameFile(orig, bak), "one inode")
			assert.False(t, os.SameFile(hosts, bak))
			assert.Equal(t, "10.0.0.1 head\n", string(mustRead(t, filepath.Join(x, "etc/hosts.bak"))))
		})
	}
}

// TestMksquashfsLookPath checks that WithMksquashfs("") takes the first
// executable sqfstar on PATH, and fails when there is none.
func TestMksquashfsLookPath(t *testing.T) {
	progs := testenv.Require(t, "sqfstar", "unsquashfs")
	real, unsquashfs := progs[0], progs[1]
	notExec, exe := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(notExec, "sqfstar"), []byte("#!/bin/sh\nexit 1\n"), 0o644))
	require.NoError(t, os.MkdirAll(filepath.Join(notExec, "sqfstar.d"), 0o755))
	require.NoError(t, os.Symlink(real, filepath.Join(exe, "sqfstar")))
	t.Setenv("PATH", notExec+string(os.PathListSeparator)+exe)
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithMksquashfs("")))
	b, err := exec.Command(unsquashfs, "-o", strconv.FormatInt(partitionOffset(t, out), 10), "-cat", out, "etc/motd").CombinedOutput()
	require.NoError(t, err, "%s", b)
	assert.Equal(t, "changed\n", string(b))

	t.Setenv("PATH", notExec)
	err = singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithMksquashfs(""))
	var oerr *singularity.OptionError
	require.ErrorAs(t, err, &oerr)
	assert.Equal(t, "singularity.Build: WithMksquashfs: sqfstar not found on PATH", err.Error())
}

// TestSqfstarRoot checks that sqfstar gives the root directory the image's
// mode, as the built-in writer does, which also keeps its owner and time.
// sqfstar 4.5.1 takes -root-uid, -root-gid and -root-time but does not apply
// them (its root is 0/0, dated now), so only the mode is compared.
func TestSqfstarRoot(t *testing.T) {
	sqfstar := testenv.Require(t, "sqfstar")[0]
	t.Setenv("TZ", "UTC") // of unsquashfs' listing
	img := image(t, v1Config(), layer(t, owned(dir("./", 0o750), 7, 8), file("f", "x", 0o644)))
	root := func(opts ...singularity.Option) []string {
		out := filepath.Join(t.TempDir(), "x.sif")
		require.NoError(t, singularity.Build(t.Context(), img, out, opts...))
		b, err := exec.Command(testenv.Require(t, "unsquashfs")[0], "-o", strconv.FormatInt(partitionOffset(t, out), 10),
			"-lln", out).CombinedOutput()
		require.NoError(t, err, "%s", b)
		for _, line := range strings.Split(string(b), "\n") {
			if f := strings.Fields(line); len(f) == 6 && f[5] == "squashfs-root" {
				return f
			}
		}
		t.Fatalf("no root in %s", b)
		return nil
	}
	builtin := root()
	assert.Equal(t, []string{"drwxr-x---", "7/8", "2023-11-14", "22:13"}, []string{builtin[0], builtin[1], builtin[3], builtin[4]})
	assert.Equal(t, "drwxr-x---", root(singularity.WithMksquashfs(sqfstar))[0])
}
