package singularity_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// TestSqfstarArguments checks what sqfstar is told about the image: the root
// directory's mode, owner and time (which the tar stream on its standard input
// cannot carry), the source date epoch, the compression, and where in the
// output the partition starts. sqfstar 4.5.1 ignores -root-uid, -root-gid and
// -root-time (see TestSqfstarRoot), later versions apply them, so the
// arguments are read from a wrapper that records them and runs the real
// sqfstar.
func TestSqfstarArguments(t *testing.T) {
	sqfstar := testenv.Require(t, "sqfstar")[0]
	rootTime := time.Unix(1600000000, 0).UTC()
	dated := dir("./", 0o750)
	dated.hdr.ModTime = rootTime
	withRoot := image(t, v1Config(), layer(t, owned(dated, 7, 8), file("f", "x", 0o644)))
	noRoot := image(t, v1Config(), layer(t, file("f", "x", 0o644)))
	epochSecs := strconv.FormatInt(epoch.Unix(), 10)

	tests := []struct {
		name    string
		img     v1.Image
		opts    []singularity.Option
		want    map[string]string // flag → value; "" for a flag without a value
		without []string
		wantErr string
	}{
		{
			name: "root from the image", img: withRoot,
			want:    map[string]string{"-root-mode": "750", "-root-uid": "7", "-root-gid": "8", "-root-time": "1600000000"},
			without: []string{"-mkfs-time", "-comp", "-noI"},
		},
		{
			name: "source date epoch", img: withRoot, opts: []singularity.Option{singularity.WithSourceDateEpoch(epoch)},
			want: map[string]string{"-root-mode": "750", "-root-uid": "7", "-root-gid": "8", "-root-time": epochSecs, "-mkfs-time": epochSecs},
		},
		{
			name: "no root entry", img: noRoot,
			want:    map[string]string{"-root-mode": "755", "-root-uid": "0", "-root-gid": "0"},
			without: []string{"-root-time", "-mkfs-time"},
		},
		{
			name: "stored", img: withRoot, opts: []singularity.Option{singularity.WithCompression(singularity.Gzip, 0)},
			want:    map[string]string{"-noI": "", "-noD": "", "-noF": "", "-noX": ""},
			without: []string{"-comp", "-Xcompression-level"},
		},
		{
			name: "default level", img: withRoot, opts: []singularity.Option{singularity.WithCompression(singularity.Zstd, 15)},
			want:    map[string]string{"-comp": "zstd"},
			without: []string{"-Xcompression-level", "-noI"},
		},
		{
			// sqfstar 4.5.1 refuses every -X option; its message comes back.
			name: "other level", img: withRoot, opts: []singularity.Option{singularity.WithCompression(singularity.Gzip, 8)},
			want:    map[string]string{"-comp": "gzip", "-Xcompression-level": "8"},
			wantErr: "sqfstar: exit status 1: ",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			argsFile := filepath.Join(dir, "args")
			wrapper := filepath.Join(dir, "sqfstar")
			script := fmt.Sprintf("#!/bin/sh\nprintf '%%s\\n' \"$@\" > %s\nexec %s \"$@\"\n", argsFile, sqfstar)
			require.NoError(t, os.WriteFile(wrapper, []byte(script), 0o755))
			out := filepath.Join(dir, "x.sif")
			err := singularity.Build(t.Context(), tt.img, out, append(tt.opts, singularity.WithMksquashfs(wrapper))...)
			args := strings.Split(strings.TrimSuffix(string(mustRead(t, argsFile)), "\n"), "\n")
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
			} else {
				require.NoError(t, err)
				assert.Equal(t, strconv.FormatInt(partitionOffset(t, out), 10), value(args, "-offset"), "%q", args)
			}
			for flag, want := range tt.want {
				assert.Equal(t, want, value(args, flag), "%s in %q", flag, args)
			}
			for _, flag := range tt.without {
				assert.NotContains(t, args, flag)
			}
		})
	}
}

// value returns the argument after flag in args, "" for a flag followed by
// another flag, and "absent" for a missing one.
func value(args []string, flag string) string {
	for i, a := range args {
		if a != flag {
			continue
		}
		if i+1 < len(args) && !strings.HasPrefix(args[i+1], "-") {
			return args[i+1]
		}
		return ""
	}
	return "absent"
}

// TestSqfstarExitsEarly checks that a sqfstar that stops before reading its
// whole input (here, one that refuses its arguments) makes Build return its
// error instead of waiting forever to hand it the rest of the tar stream.
func TestSqfstarExitsEarly(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "sqfstar")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'sqfstar: bad option' >&2\nexit 1\n"), 0o755))
	// More than the pipes between Build and sqfstar hold.
	big := strings.Repeat("x", 4<<20)
	img := image(t, v1Config(), layer(t, file("big", big, 0o644)))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "x.sif")
	err := singularity.Build(ctx, img, out, singularity.WithMksquashfs(fake))
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Build waited for a sqfstar that had exited")
	require.ErrorContains(t, err, "sqfstar: exit status 1: sqfstar: bad option")
	_, err = os.Stat(out)
	require.ErrorIs(t, err, os.ErrNotExist)
}
