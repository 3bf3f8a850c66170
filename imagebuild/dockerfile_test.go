package imagebuild_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
)

const seedDockerfile = `FROM centos:7
WORKDIR /app
ADD intel.tgz /opt/
RUN yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl
ENV LD_LIBRARY_PATH /opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/
ENTRYPOINT ["exec", "\"$@\""]
`

func TestParseSeedDockerfile(t *testing.T) {
	d, err := imagebuild.ParseDockerfile(strings.NewReader(seedDockerfile))
	require.NoError(t, err)
	assert.Equal(t, "centos:7", d.Base.String())
	assert.Nil(t, d.Platform)
	steps, err := d.Steps(nil)
	require.NoError(t, err)
	assert.Equal(t, []imagebuild.Step{
		imagebuild.Workdir{Path: "/app"},
		imagebuild.Add{Sources: []string{"intel.tgz"}, Dest: "/opt/"},
		imagebuild.Run{Args: []string{"yum install -y tar gzip libmlx4 librdmacm libibverbs dapl rdma net-tools numactl"}, Shell: true},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "LD_LIBRARY_PATH", Value: "/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/"}}},
		imagebuild.Entrypoint{Args: []string{"exec", `"$@"`}},
	}, steps)
}

func TestParseExpansion(t *testing.T) {
	df := `ARG BASE=busybox
ARG TAG
FROM --platform=linux/arm64 ${BASE}:${TAG:-latest} AS build
ARG TAG DIR=/srv UNSET
ENV APP=$DIR/app OLD=$PATH
ENV LEGACY hello "quoted world" $APP
WORKDIR ${APP}
LABEL "com.example.name"="$APP" version=${TAG:-none}
COPY --chown=${UID:-1000}:hpcgrp --chmod=750 src/*.txt $APP/
USER ${USER_NAME:-hpc}
EXPOSE 80 53/udp
VOLUME ["/data", "$DIR"]
STOPSIGNAL SIGINT
SHELL ["/bin/sh", "-ec"]
RUN echo $APP
CMD echo "$APP"
HEALTHCHECK --interval=5s --retries=3 CMD wget -q localhost || exit 1
`
	d, err := imagebuild.ParseDockerfile(strings.NewReader(df), imagebuild.WithBuildArg("TAG", "1.36"))
	require.NoError(t, err)
	assert.Equal(t, "busybox:1.36", d.Base.String())
	require.NotNil(t, d.Platform)
	assert.Equal(t, "linux/arm64", d.Platform.String())
	steps, err := d.Steps([]string{"PATH=/bin"})
	require.NoError(t, err)
	want := []imagebuild.Step{
		imagebuild.Arg{Name: "TAG", Value: "1.36"},
		imagebuild.Arg{Name: "DIR", Value: "/srv"},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "APP", Value: "/srv/app"}, {Key: "OLD", Value: "/bin"}}},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "LEGACY", Value: "hello quoted world /srv/app"}}},
		imagebuild.Workdir{Path: "/srv/app"},
		imagebuild.Label{Labels: []imagebuild.KeyValue{{Key: "com.example.name", Value: "/srv/app"}, {Key: "version", Value: "1.36"}}},
		imagebuild.Copy{Sources: []string{"src/*.txt"}, Dest: "/srv/app/", Chown: "1000:hpcgrp", Chmod: "750"},
		imagebuild.User{Name: "hpc"},
		imagebuild.Expose{Ports: []string{"80", "53/udp"}},
		imagebuild.Volume{Paths: []string{"/data", "/srv"}},
		imagebuild.StopSignal{Signal: "SIGINT"},
		imagebuild.Shell{Args: []string{"/bin/sh", "-ec"}},
		imagebuild.Run{Args: []string{"echo $APP"}, Shell: true},
		imagebuild.Cmd{Args: []string{`echo "$APP"`}, Shell: true},
		imagebuild.Healthcheck{Test: []string{"CMD-SHELL", "wget -q localhost || exit 1"}, Interval: 5e9, Retries: 3},
	}
	assert.Equal(t, want, steps)
}

func TestParseHealthcheckLimits(t *testing.T) {
	tests := []struct {
		flags   string
		want    imagebuild.Healthcheck
		wantErr error
	}{
		{"--interval=-1ns", imagebuild.Healthcheck{}, imagebuild.ErrSyntax},
		{"--interval=0s", imagebuild.Healthcheck{}, nil},
		{"--interval=1ns", imagebuild.Healthcheck{Interval: 1}, nil},
		{"--timeout=-1s", imagebuild.Healthcheck{}, imagebuild.ErrSyntax},
		{"--timeout=0s", imagebuild.Healthcheck{}, nil},
		{"--start-period=-1s", imagebuild.Healthcheck{}, imagebuild.ErrSyntax},
		{"--start-period=0s", imagebuild.Healthcheck{}, nil},
		{"--retries=-1", imagebuild.Healthcheck{}, imagebuild.ErrSyntax},
		{"--retries=0", imagebuild.Healthcheck{}, nil},
		{"--retries=1", imagebuild.Healthcheck{Retries: 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.flags, func(t *testing.T) {
			d, err := imagebuild.ParseDockerfile(strings.NewReader("FROM scratch\nHEALTHCHECK " + tt.flags + " CMD [\"true\"]\n"))
			if err == nil {
				var steps []imagebuild.Step
				steps, err = d.Steps(nil)
				if tt.wantErr == nil {
					require.NoError(t, err)
					tt.want.Test = []string{"CMD", "true"}
					assert.Equal(t, []imagebuild.Step{tt.want}, steps)
					return
				}
			}
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestParseErrors(t *testing.T) {
	tests := []struct {
		name     string
		df       string
		wantLine int
		wantErr  error
	}{
		{"unknown instruction", "FROM scratch\nWORKDIR /a\nFROB x\n", 3, imagebuild.ErrUnsupportedInstruction},
		{"multi-stage", "FROM scratch AS a\nFROM scratch\nCOPY --from=a / /\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"copy from", "FROM scratch\nCOPY --from=other /a /b\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"onbuild", "FROM scratch\n\nONBUILD RUN true\n", 3, imagebuild.ErrUnsupportedInstruction},
		{"run mount", "FROM scratch\nRUN --mount=type=cache,target=/x true\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"heredoc", "FROM scratch\nRUN <<EOF\ntrue\nEOF\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"add checksum", "FROM scratch\nADD --checksum=sha256:00 https://example.com/a.tgz /\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"maintainer", "FROM scratch\nMAINTAINER me\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"no from", "WORKDIR /a\n", 1, imagebuild.ErrSyntax},
		{"shell not json", "FROM scratch\nSHELL /bin/bash -c\n", 2, imagebuild.ErrSyntax},
		{"copy one arg", "FROM scratch\nCOPY a\n", 2, imagebuild.ErrSyntax},
		{"bad json", "FROM scratch\nCMD [\"a\", 1]\n", 2, imagebuild.ErrSyntax},
		{"bad port", "FROM scratch\nEXPOSE http\n", 2, imagebuild.ErrSyntax},
		{"bad expansion", "FROM scratch\nWORKDIR ${A:?needs A}\n", 2, imagebuild.ErrSyntax},
		{"empty", "# nothing\n", 1, imagebuild.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := imagebuild.ParseDockerfile(strings.NewReader(tt.df))
			if err == nil {
				_, err = d.Steps(nil)
			}
			require.Error(t, err)
			var se *imagebuild.StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.wantLine, se.Line, "%v", err)
			assert.ErrorIs(t, err, tt.wantErr)
		})
	}
}

func TestBuildErrorsNameTheLine(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte("a"), 0o644))
	evil := filepath.Join(ctxDir, "evil.tar")
	writeTar(t, evil, map[string]string{"ok.txt": "fine", "../../etc/passwd": "root::0:0::/:/bin/sh"})
	badLink := filepath.Join(ctxDir, "badlink.tar")
	writeTarEntries(t, badLink, []tarEntry{{name: "up", link: "../../.."}, {name: "up/etc/passwd", body: "x"}})
	require.NoError(t, os.Symlink("nothere", filepath.Join(ctxDir, "dangling")))
	through := filepath.Join(ctxDir, "through.tar")
	writeTarEntries(t, through, []tarEntry{{name: "etc", link: "/etc"}, {name: "etc/passwd", body: "x"}})
	var odd bytes.Buffer
	tw := tar.NewWriter(&odd)
	for _, h := range []*tar.Header{{Name: "a", Typeflag: tar.TypeReg}, {Name: "tape", Typeflag: 'V'}, {Name: "b", Typeflag: tar.TypeReg}} {
		require.NoError(t, tw.WriteHeader(h))
	}
	require.NoError(t, tw.Close())
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "odd.tar"), odd.Bytes(), 0o644))

	tests := []struct {
		name     string
		df       string
		wantLine int
		wantErr  error
	}{
		{"run without runner", "FROM base\nCOPY a.txt /\nRUN true\n", 3, imagebuild.ErrRunUnavailable},
		{"missing source", "FROM base\nWORKDIR /x\n\nCOPY nothere.txt /\n", 4, fs.ErrNotExist},
		{"no glob match", "FROM base\nCOPY *.none /\n", 2, fs.ErrNotExist},
		{"dangling symlink source", "FROM base\nCOPY dangling /\n", 2, fs.ErrNotExist},
		{"escaping archive entry", "FROM base\nADD evil.tar /opt/\n", 2, imagebuild.ErrUnsafePath},
		{"through an escaping archive symlink", "FROM base\nADD badlink.tar /opt/\n", 2, imagebuild.ErrUnsafePath},
		{"through archive symlink", "FROM base\nADD through.tar /opt/\n", 2, imagebuild.ErrUnsafePath},
		{"source outside context", "FROM base\nCOPY ../x /\n", 2, imagebuild.ErrUnsafePath},
		{"unsupported archive entry", "FROM base\nADD odd.tar /opt/\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"remote add", "FROM base\nADD https://example.com/x.tgz /\n", 2, imagebuild.ErrUnsupportedInstruction},
		{"bad chmod", "FROM base\nCOPY --chmod=99 a.txt /\n", 2, imagebuild.ErrSyntax},
		{"unknown user", "FROM base\nCOPY --chown=nobody a.txt /\n", 2, nil},
		{"empty user", "FROM base\nCOPY --chown=:0 a.txt /\n", 2, imagebuild.ErrSyntax},
		{"empty group", "FROM base\nCOPY --chown=0: a.txt /\n", 2, imagebuild.ErrSyntax},
		{"empty volume path", "FROM base\nVOLUME [\"/data\", \"\"]\n", 2, imagebuild.ErrSyntax},
		{"stop signal expanding to nothing", "FROM base\nARG S\nSTOPSIGNAL $S\n", 3, imagebuild.ErrSyntax},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := imagebuild.ParseDockerfile(strings.NewReader(tt.df),
				imagebuild.WithBaseImage("base", imagebuild.FromImage(base)),
				imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
			require.NoError(t, err)
			_, err = d.Build(t.Context())
			require.Error(t, err)
			var se *imagebuild.StepError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.wantLine, se.Line, "%v", err)
			assert.Contains(t, err.Error(), "line "+string(rune('0'+tt.wantLine))+": ")
			if tt.wantErr != nil {
				assert.ErrorIs(t, err, tt.wantErr)
			}
			if errors.Is(err, imagebuild.ErrUnsafePath) && strings.Contains(tt.name, "archive") {
				var ae *imagebuild.ArchiveEntryError
				require.ErrorAs(t, err, &ae)
				assert.Equal(t, filepath.Base(ae.Archive), ae.Archive)
			}
		})
	}
}
