package singularity_test

import (
	"archive/tar"
	"bytes"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/stretchr/testify/require"
)

var epoch = time.Unix(1700000000, 0).UTC()

// ent is one tar entry of a test layer.
type ent struct {
	hdr  tar.Header
	body []byte
}

func file(name, body string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode, Size: int64(len(body)), ModTime: epoch}, body: []byte(body)}
}

func dir(name string, mode int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode, ModTime: epoch}}
}

func symlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777, ModTime: epoch}}
}

func hardlink(name, target string) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644, ModTime: epoch}}
}

func chardev(name string, major, minor int64) ent {
	return ent{hdr: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: 0o666, Devmajor: major, Devminor: minor, ModTime: epoch}}
}

func owned(e ent, uid, gid int) ent {
	e.hdr.Uid, e.hdr.Gid = uid, gid
	return e
}

func withXattrs(e ent, kv ...string) ent {
	e.hdr.PAXRecords = map[string]string{}
	for i := 0; i < len(kv); i += 2 {
		e.hdr.PAXRecords["SCHILY.xattr."+kv[i]] = kv[i+1]
	}
	return e
}

func whiteout(path string) ent {
	i := strings.LastIndex(path, "/")
	return file(path[:i+1]+".wh."+path[i+1:], "", 0o644)
}

func opaque(dirPath string) ent { return file(dirPath+"/.wh..wh..opq", "", 0o644) }

func tarBytes(t testing.TB, entries ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		h.Format = tar.FormatPAX
		require.NoError(t, tw.WriteHeader(&h), "writing header %q", h.Name)
		_, err := tw.Write(e.body)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	return buf.Bytes()
}

func layer(t testing.TB, entries ...ent) v1.Layer {
	t.Helper()
	data := tarBytes(t, entries...)
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
	require.NoError(t, err)
	return l
}

func image(t testing.TB, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	require.NoError(t, err)
	cf, err := img.ConfigFile()
	require.NoError(t, err)
	cf = cf.DeepCopy()
	cf.Config = cfg
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: epoch}
	img, err = mutate.ConfigFile(img, cf)
	require.NoError(t, err)
	return img
}

// testEnv is the ENV of the test images: every character sh treats specially
// inside double quotes, and a name sh cannot hold, which is left out.
var testEnv = []string{
	"PATH=/usr/local/bin:/usr/bin:/bin",
	`QUOTED=say "hi" and 'bye'`,
	"DOLLAR=$HOME and ${PATH} and $(id)",
	`BACKSLASH=a\b\\c\`,
	"BACKTICK=`id`",
	"SPACES=  lead and  trail  ",
	"EMPTY=",
	"EQUALS=a=b=c",
	"bad-name=x",
}

// syntheticImage is a small image without binaries, for golden and unit tests.
func syntheticImage(t testing.TB) v1.Image {
	return image(t, v1.Config{
		Env:        testEnv,
		Entrypoint: []string{"/bin/printf", `[%s]\n`},
		Cmd:        []string{"default arg", "it's"},
		Labels:     map[string]string{"org.example.team": "hpc & <co>", "maintainer": "ops"},
	},
		layer(t,
			dir("etc", 0o755), file("etc/motd", "hello\n", 0o644), file("etc/hosts", "127.0.0.1 stale\n", 0o600),
			dir("opt", 0o755), file("opt/gone", "gone\n", 0o644), file("opt/orig", "original content\n", 0o644),
			dir("opt/dir", 0o755), file("opt/dir/a", "a\n", 0o644),
		),
		layer(t,
			whiteout("opt/gone"), opaque("opt/dir"), file("opt/dir/c", "c\n", 0o644),
			hardlink("opt/link", "opt/orig"), symlink("opt/sym", "dir/c"),
			chardev("opt/null", 1, 3),
			file("opt/suid", "#!/bin/sh\n", 0o4755),
			file("opt/secret", "top secret\n", 0),
			dir("opt/locked", 0), file("opt/locked/inner", "inner\n", 0o644),
			owned(dir("home/user", 0o750), 1000, 1000), owned(file("home/user/file", "mine\n", 0o640), 1000, 1000),
			withXattrs(file("opt/xattr", "x\n", 0o644), "user.comment", "kept", "system.posix_acl_access", "\x02\x00"),
		),
		layer(t,
			file("etc/motd", "changed\n", 0o644), whiteout("opt/orig"),
		),
	)
}

func mustRead(t testing.TB, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	require.NoError(t, err)
	return b
}

func v1Config() v1.Config { return v1.Config{Cmd: []string{"/bin/sh"}} }
