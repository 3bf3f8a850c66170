package singularity_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/singularity"
)

func TestBindPathEnv(t *testing.T) {
	tests := []struct {
		name    string
		rt      singularity.Runtime
		binds   []string
		want    string
		wantErr error
	}{
		{name: "singularity", rt: singularity.Singularity, binds: []string{"/etc/rdma/dat.conf"}, want: "SINGULARITY_BINDPATH=/etc/rdma/dat.conf"},
		{name: "apptainer several", rt: singularity.Apptainer, binds: []string{"/a", "/b:/c", "/d:/e:ro"}, want: "APPTAINER_BINDPATH=/a,/b:/c,/d:/e:ro"},
		{name: "none", rt: singularity.Apptainer, want: ""},
		{name: "comma", rt: singularity.Apptainer, binds: []string{"/a,/b"}, wantErr: singularity.ErrInvalidBind},
		{name: "relative", rt: singularity.Apptainer, binds: []string{"a:/b"}, wantErr: singularity.ErrInvalidBind},
		{name: "relative destination", rt: singularity.Apptainer, binds: []string{"/a:b"}, wantErr: singularity.ErrInvalidBind},
		{name: "bad option", rt: singularity.Apptainer, binds: []string{"/a:/b:rx"}, wantErr: singularity.ErrInvalidBind},
		{name: "too many fields", rt: singularity.Apptainer, binds: []string{"/a:/b:ro:x"}, wantErr: singularity.ErrInvalidBind},
		{name: "newline", rt: singularity.Apptainer, binds: []string{"/a\n"}, wantErr: singularity.ErrInvalidBind},
		{name: "empty", rt: singularity.Apptainer, binds: []string{""}, wantErr: singularity.ErrInvalidBind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := singularity.BindPathEnv(tt.rt, tt.binds...)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
	_, err := singularity.BindPathEnv("docker", "/a")
	require.Error(t, err)
}

func TestExecArgv(t *testing.T) {
	tests := []struct {
		name    string
		exec    singularity.Exec
		want    []string
		wantErr bool
	}{
		{name: "plain", exec: singularity.Exec{Image: "./rdma-latest.simg"}, want: []string{"singularity", "exec", "./rdma-latest.simg"}},
		{name: "all options", exec: singularity.Exec{Runtime: singularity.Apptainer, Image: "rdma_latest.sif",
			Binds: []string{"/etc/rdma/dat.conf", "/opt/intel:/opt/intel:ro"}, CleanEnv: true, Contain: true, NV: true, Pwd: "/work"},
			want: []string{"apptainer", "exec", "--bind", "/etc/rdma/dat.conf,/opt/intel:/opt/intel:ro", "--cleanenv", "--contain", "--nv", "--pwd", "/work", "rdma_latest.sif"}},
		{name: "no image", exec: singularity.Exec{}, wantErr: true},
		{name: "image like an option", exec: singularity.Exec{Image: "--help"}, wantErr: true},
		{name: "bad bind", exec: singularity.Exec{Image: "x.sif", Binds: []string{"a"}}, wantErr: true},
		{name: "bad runtime", exec: singularity.Exec{Runtime: "docker", Image: "x.sif"}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.exec.Argv()
			if tt.wantErr {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}
