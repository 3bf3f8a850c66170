package imagebuild_test

import (
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
	"github.com/hpcship/hpcship/internal/rootfs"
)

// seedContext writes the seed Dockerfile and intel.tgz (compressed with compressor)
// into a new build context.
func seedContext(t *testing.T, compressor string) string {
	t.Helper()
	src, ctxDir := t.TempDir(), t.TempDir()
	intelTree(t, src)
	makeArchive(t, src, filepath.Join(ctxDir, "intel.tgz"), compressor)
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "Dockerfile"), []byte(seedDockerfile), 0o644))
	return ctxDir
}

func TestSeedDockerfile(t *testing.T) {
	base := busyboxBase(t)
	for _, compressor := range []string{"gzip", "xz", "bzip2", "zstd", ""} {
		t.Run("intel.tgz by "+compressor, func(t *testing.T) {
			ctxDir := seedContext(t, compressor)
			log, logs := newLogger()
			runner := &fakeRunner{}
			img, err := imagebuild.BuildDockerfile(t.Context(), filepath.Join(ctxDir, "Dockerfile"),
				imagebuild.WithBaseImage("centos:7", imagebuild.FromImage(base)), imagebuild.WithCacheDir(t.TempDir()),
				imagebuild.WithRunner(runner), imagebuild.WithLogger(log))
			require.NoError(t, err)
			cf := configOf(t, img)
			assert.Equal(t, "/app", cf.Config.WorkingDir)
			assert.Equal(t, []string{"exec", `"$@"`}, cf.Config.Entrypoint, "kept as written")
			assert.Nil(t, cf.Config.Cmd, "ENTRYPOINT resets the inherited CMD")
			assert.Contains(t, cf.Config.Env, "LD_LIBRARY_PATH=/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/")
			assert.Contains(t, cf.Config.Env, "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "inherited")
			assert.Contains(t, logs.String(), "shell builtin")
			assert.Contains(t, logs.String(), "exec")

			require.Len(t, runner.reqs, 1)
			req := runner.reqs[0]
			assert.Equal(t, []string{"/bin/sh", "-c", "yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl"}, req.Argv)
			assert.Equal(t, "/app", req.WorkingDir)
			assert.Len(t, req.Layers, 3, "busybox, WORKDIR, ADD")

			tr := tree(t, img)
			e, ok := tr.Lookup("app")
			require.True(t, ok)
			assert.Equal(t, rootfs.TypeDir, e.Type)
			lib := "opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/"
			assert.Equal(t, strings.Repeat("libmpi ", 10000), content(t, tr, lib+"libmpi.so.12.0"))
			e, ok = tr.Lookup(lib + "libmpi.so.12")
			require.True(t, ok)
			assert.Equal(t, rootfs.TypeSymlink, e.Type)
			assert.Equal(t, "libmpi.so.12.0", e.Linkname)
			e, ok = tr.Lookup("opt/intel/impi/5.1.3.223/bin64/IMB-MPI1.hard")
			require.True(t, ok)
			assert.Equal(t, rootfs.TypeHardlink, e.Type, "hardlinks stay hardlinks")
			e, _ = tr.Lookup("opt/intel/impi/5.1.3.223/bin64/IMB-MPI1")
			assert.Equal(t, uint32(0o755), e.Mode)
			assert.Equal(t, "yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl"[:3], content(t, tr, "run-1")[len("/bin/sh -c "):][:3])
			e, _ = tr.Lookup("tmp")
			assert.Equal(t, uint32(0o1777), e.Mode, "base directories keep their modes")

			var created []string
			for _, h := range cf.History {
				created = append(created, h.CreatedBy)
			}
			assert.Equal(t, []string{"busybox-static", "WORKDIR /app", "ADD intel.tgz /opt/",
				"RUN /bin/sh -c yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl",
				"ENV LD_LIBRARY_PATH=/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/",
				`ENTRYPOINT ["exec" "\"$@\""]`}, created)
		})
	}
}

func TestCopyDoesNotExtractAddDoes(t *testing.T) {
	src, ctxDir := t.TempDir(), t.TempDir()
	intelTree(t, src)
	makeArchive(t, src, filepath.Join(ctxDir, "intel.tgz"), "gzip")
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "notes.gz"), gzipBytes(t, "not a tar"), 0o600))
	img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Copy{Sources: []string{"intel.tgz"}, Dest: "/copied/"},
		imagebuild.Add{Sources: []string{"intel.tgz"}, Dest: "/added"},
		imagebuild.Add{Sources: []string{"notes.gz"}, Dest: "/notes.gz"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	configOf(t, img)
	tr := tree(t, img)
	tgz, err := os.ReadFile(filepath.Join(ctxDir, "intel.tgz"))
	require.NoError(t, err)
	assert.Equal(t, string(tgz), content(t, tr, "copied/intel.tgz"), "COPY copies the archive as it is")
	assert.Equal(t, "export I_MPI_ROOT=/opt/intel\n", content(t, tr, "added/intel/impi/5.1.3.223/bin64/mpivars.sh"))
	_, ok := tr.Lookup("added/intel.tgz")
	assert.False(t, ok)
	assert.Equal(t, string(gzipBytes(t, "not a tar")), content(t, tr, "notes.gz"), "a compressed non-tar is copied")
	e, _ := tr.Lookup("notes.gz")
	assert.Equal(t, uint32(0o600), e.Mode)
	assert.Zero(t, e.UID)
}

func TestCopySemantics(t *testing.T) {
	ctxDir := t.TempDir()
	intelTree(t, ctxDir)
	for _, f := range []string{"a.txt", "b.txt", "c.log", "skip.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(ctxDir, f), []byte(f), 0o644))
	}
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, ".dockerignore"), []byte("# comment\nskip.txt\n**/mpivars.sh\nintel/impi\n!intel/impi/5.1.3.223/bin64/IMB-MPI1\n"), 0o644))
	require.NoError(t, os.Symlink("a.txt", filepath.Join(ctxDir, "latest.link")))
	img, err := imagebuild.Build(t.Context(), imagebuild.FromImage(busyboxBase(t)), []imagebuild.Step{
		imagebuild.Workdir{Path: "/work"},
		imagebuild.Copy{Sources: []string{"latest.link"}, Dest: "/opt/latest"},
		imagebuild.Copy{Sources: []string{"*.txt"}, Dest: "txt/"},
		imagebuild.Copy{Sources: []string{"c.log"}, Dest: "/opt"},
		imagebuild.Copy{Sources: []string{"c.log"}, Dest: "renamed.log", Chown: "hpc", Chmod: "600"},
		imagebuild.Copy{Sources: []string{"intel"}, Dest: "/srv/intel", Chown: "hpc:hpcgrp"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	configOf(t, img)
	tr := tree(t, img)
	assert.Equal(t, "a.txt", content(t, tr, "work/txt/a.txt"))
	assert.Equal(t, "b.txt", content(t, tr, "work/txt/b.txt"))
	_, ok := tr.Lookup("work/txt/skip.txt")
	assert.False(t, ok, ".dockerignore excludes it from a glob")
	assert.Equal(t, "c.log", content(t, tr, "opt/c.log"), "an existing directory receives the file")
	e, ok := tr.Lookup("opt/latest")
	require.True(t, ok)
	assert.Equal(t, rootfs.TypeRegular, e.Type, "a source that is a symlink is copied as its target, as Docker does")
	assert.Equal(t, "a.txt", content(t, tr, "opt/latest"))
	e, ok = tr.Lookup("work/renamed.log")
	require.True(t, ok)
	assert.Equal(t, [3]int{0o600, 1000, 1000}, [3]int{int(e.Mode), e.UID, e.GID}, "--chown=user takes the user's number as group, as Docker does")
	e, ok = tr.Lookup("srv/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/libmpi.so.12.0")
	require.True(t, ok, "a directory's contents are copied")
	assert.Equal(t, [2]int{1000, 1001}, [2]int{e.UID, e.GID})
	_, ok = tr.Lookup("srv/intel/impi/5.1.3.223/bin64/mpivars.sh")
	assert.False(t, ok, "excluded by **/mpivars.sh")
	_, ok = tr.Lookup("srv/intel/impi/5.1.3.223/bin64/IMB-MPI1")
	assert.True(t, ok, "re-included by !")
	_, ok = tr.Lookup("srv/intel/impi/5.1.3.223/bin64/IMB-MPI1.hard")
	assert.False(t, ok, "still excluded by intel/impi")
}

func TestConfigInstructions(t *testing.T) {
	df := `FROM base
ENV A=1 B="two words"
ENV C $A-$B
LABEL org.opencontainers.image.title="hpc app" version=2
USER hpc:hpcgrp
EXPOSE 8080 53/udp
VOLUME /data
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
CMD echo hi
ENTRYPOINT ["/bin/busybox"]
HEALTHCHECK --interval=30s --timeout=3s --start-period=1s --retries=2 CMD ["true"]
`
	d, err := imagebuild.ParseDockerfile(strings.NewReader(df), imagebuild.WithBaseImage("base", imagebuild.FromImage(busyboxBase(t))),
		imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	img, err := d.Build(t.Context())
	require.NoError(t, err)
	cf := configOf(t, img)
	c := cf.Config
	assert.Equal(t, []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "A=1", "B=two words", "C=1-two words"}, c.Env)
	assert.Equal(t, map[string]string{"org.opencontainers.image.title": "hpc app", "version": "2"}, c.Labels)
	assert.Equal(t, "hpc:hpcgrp", c.User)
	assert.Equal(t, map[string]struct{}{"8080/tcp": {}, "53/udp": {}}, c.ExposedPorts)
	assert.Equal(t, map[string]struct{}{"/data": {}}, c.Volumes)
	assert.Equal(t, "SIGINT", c.StopSignal)
	assert.Equal(t, []string{"/bin/sh", "-ec"}, c.Shell)
	assert.Equal(t, []string{"/bin/sh", "-ec", "echo hi"}, c.Cmd, "CMD set in the same build survives ENTRYPOINT")
	assert.Equal(t, []string{"/bin/busybox"}, c.Entrypoint)
	assert.Equal(t, &v1.HealthConfig{Test: []string{"CMD", "true"}, Interval: 30 * time.Second, Timeout: 3 * time.Second,
		StartPeriod: time.Second, Retries: 2}, c.Healthcheck)
	assert.Equal(t, time.Unix(0, 0).UTC(), cf.Created.UTC())
	last := cf.History[len(cf.History)-1].CreatedBy
	assert.Contains(t, last, "HEALTHCHECK --interval=30s --timeout=3s --start-period=1s --retries=2 ", "the history names the health check")
	assert.Contains(t, last, `"true"]`, "the history names the health check's command")
	var instructions []string
	for _, h := range cf.History[1:] {
		assert.True(t, h.EmptyLayer, h.CreatedBy)
		instructions = append(instructions, strings.Fields(h.CreatedBy)[0])
	}
	assert.Equal(t, []string{"ENV", "ENV", "LABEL", "USER", "EXPOSE", "VOLUME", "STOPSIGNAL", "SHELL", "CMD", "ENTRYPOINT", "HEALTHCHECK"},
		instructions, "every instruction has its history entry")
	assert.Contains(t, cf.History, v1.History{CreatedBy: "EXPOSE 8080 53/udp", Created: cf.Created, EmptyLayer: true})
	layers, err := img.Layers()
	require.NoError(t, err)
	assert.Len(t, layers, 1, "configuration steps add no layer")
}

func TestAddArchiveOwners(t *testing.T) {
	ctxDir := t.TempDir()
	writeTarEntries(t, filepath.Join(ctxDir, "owned.tar"), []tarEntry{
		{name: "d", dir: true, uid: 1000}, {name: "d/f", body: "x", uid: 1000}, {name: "/abs", body: "y", uid: 7},
	})
	for _, tt := range []struct {
		chown   string
		wantUID int
	}{{"", 1000}, {"0:0", 0}, {"42", 42}} {
		img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
			imagebuild.Add{Sources: []string{"owned.tar"}, Dest: "/x", Chown: tt.chown},
		}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
		require.NoError(t, err)
		configOf(t, img)
		tr := tree(t, img)
		e, ok := tr.Lookup("x/d/f")
		require.True(t, ok)
		assert.Equal(t, [2]int{tt.wantUID, tt.wantUID}, [2]int{e.UID, e.GID}, "--chown=%q", tt.chown)
		assert.Empty(t, e.Uname, "owner names are dropped")
		e, ok = tr.Lookup("x/abs")
		require.True(t, ok, "absolute names land under the destination")
		assert.Equal(t, "y", content(t, tr, "x/abs"))
	}
}

func TestAddKeepsSymlinksThatClimb(t *testing.T) {
	ctxDir := t.TempDir()
	writeTarEntries(t, filepath.Join(ctxDir, "links.tar"), []tarEntry{
		{name: "lib/mpich", dir: true}, {name: "lib/mpich/include", link: "../../../include/x86_64-linux-gnu/mpich"},
		{name: "abs", link: "/etc/passwd"},
	})
	img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Add{Sources: []string{"links.tar"}, Dest: "/usr/"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	configOf(t, img)
	tr := tree(t, img)
	e, ok := tr.Lookup("usr/lib/mpich/include")
	require.True(t, ok)
	assert.Equal(t, "../../../include/x86_64-linux-gnu/mpich", e.Linkname, "targets are data, kept as written")
	e, _ = tr.Lookup("usr/abs")
	assert.Equal(t, "/etc/passwd", e.Linkname)
}

// readCountingLayer counts how often a layer's content is opened.
type readCountingLayer struct {
	v1.Layer
	opens *atomic.Int32
}

func (l readCountingLayer) Compressed() (io.ReadCloser, error) {
	l.opens.Add(1)
	return l.Layer.Compressed()
}

func (l readCountingLayer) Uncompressed() (io.ReadCloser, error) {
	l.opens.Add(1)
	return l.Layer.Uncompressed()
}

// TestChownReadsTheBaseOnce checks that the lookups of a --chown's user and
// group read the base's layer only for the files they read: the root is listed
// once per step (a COPY needs it anyway), and a base from a registry is
// downloaded as often as it is read.
func TestChownReadsTheBaseOnce(t *testing.T) {
	ctxDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte("a"), 0o644))
	layers, err := busyboxBase(t).Layers()
	require.NoError(t, err)
	for _, tt := range []struct {
		chown     string
		wantOpens int32
	}{{"1000:1001", 1}, {"hpc:1001", 2}, {"hpc:hpcgrp", 3}} {
		var opens atomic.Int32
		base, err := mutate.AppendLayers(empty.Image, readCountingLayer{layers[0], &opens})
		require.NoError(t, err)
		img, err := imagebuild.Build(t.Context(), imagebuild.FromImage(base), []imagebuild.Step{
			imagebuild.Copy{Sources: []string{"a.txt"}, Dest: "/a.txt", Chown: tt.chown},
		}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
		require.NoError(t, err)
		assert.Equal(t, tt.wantOpens, opens.Load(), "--chown=%s", tt.chown)
		e, ok := tree(t, img).Lookup("a.txt")
		require.True(t, ok)
		assert.Equal(t, [2]int{1000, 1001}, [2]int{e.UID, e.GID})
	}
}

// TestContextDirRelativeToRemovedDirectory checks that a relative build context
// in a working directory that was removed fails the step instead of finding no
// files in it.
func TestContextDirRelativeToRemovedDirectory(t *testing.T) {
	gone, cacheDir := t.TempDir(), t.TempDir()
	t.Chdir(gone)
	require.NoError(t, os.Remove(gone))
	_, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Copy{Sources: []string{"*.txt"}, Dest: "/"},
	}, imagebuild.WithContextDir("."), imagebuild.WithCacheDir(cacheDir))
	var se *imagebuild.StepError
	require.ErrorAs(t, err, &se)
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestTypedStepErrors(t *testing.T) {
	tests := []struct {
		name    string
		step    imagebuild.Step
		wantErr error
	}{
		{"arg without a name", imagebuild.Arg{Value: "1"}, imagebuild.ErrSyntax},
		{"env without a name", imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "A", Value: "1"}, {Value: "2"}}}, imagebuild.ErrSyntax},
		{"user without a name", imagebuild.User{}, imagebuild.ErrSyntax},
		{"volume with an empty path", imagebuild.Volume{Paths: []string{"/data", ""}}, imagebuild.ErrSyntax},
		{"stop signal without a signal", imagebuild.StopSignal{}, imagebuild.ErrSyntax},
		{"shell without arguments", imagebuild.Shell{}, imagebuild.ErrSyntax},
		{"health check without a test", imagebuild.Healthcheck{}, imagebuild.ErrSyntax},
		{"health check of another kind", imagebuild.Healthcheck{Test: []string{"EXEC", "true"}}, imagebuild.ErrSyntax},
		{"health check NONE", imagebuild.Healthcheck{Test: []string{"NONE"}}, nil},
		{"health check CMD", imagebuild.Healthcheck{Test: []string{"CMD", "true"}}, nil},
		{"health check CMD-SHELL", imagebuild.Healthcheck{Test: []string{"CMD-SHELL", "true"}}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{imagebuild.Workdir{Path: "/app"}, tt.step},
				imagebuild.WithCacheDir(t.TempDir()))
			if tt.wantErr == nil {
				require.NoError(t, err)
				configOf(t, img)
				return
			}
			require.ErrorIs(t, err, tt.wantErr)
			var se *imagebuild.StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, 1, se.Index)
		})
	}
}
