package singularity_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/singularity"
)

// TestOptionsFitTheirCall checks that every call refuses options it does not
// take, invalid values and conflicting options, before doing anything, with an
// error naming the call and the option, and takes the options it documents.
func TestOptionsFitTheirCall(t *testing.T) {
	// A cancelled context makes a call that accepted its options stop at its
	// first I/O, so that nothing reaches the network.
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	dir := t.TempDir()
	ref, err := name.ParseReference("127.0.0.1:1/hpc/rdma:latest")
	require.NoError(t, err)
	img := syntheticImage(t)
	calls := map[string]func(...singularity.Option) error{
		"singularity.Build": func(opts ...singularity.Option) error {
			return singularity.Build(ctx, img, filepath.Join(dir, "b.sif"), opts...)
		},
		"singularity.Pull": func(opts ...singularity.Option) error {
			_, err := singularity.Pull(ctx, ref, filepath.Join(dir, "p.sif"), opts...)
			return err
		},
		"singularity.PushSIF": func(opts ...singularity.Option) error {
			_, err := singularity.PushSIF(ctx, filepath.Join(dir, "missing.sif"), ref, opts...)
			return err
		},
		"singularity.PullSIF": func(opts ...singularity.Option) error {
			_, err := singularity.PullSIF(ctx, ref, filepath.Join(dir, "s.sif"), opts...)
			return err
		},
	}
	logger := slog.New(slog.DiscardHandler)
	progress := singularity.WithProgress(func(singularity.Progress) {})
	tests := []struct {
		call    string
		opts    []singularity.Option
		wantErr string // "" for options the call takes
	}{
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithLogger(logger), progress,
			singularity.WithFormat(singularity.FormatSIMG), singularity.WithCompression(singularity.Zstd, 19),
			singularity.WithWorkers(2), singularity.WithSourceDateEpoch(epoch), singularity.WithID("x"),
			singularity.WithSource("s"), singularity.WithCacheDir(dir)}},
		{call: "singularity.Pull", opts: []singularity.Option{singularity.WithLogger(logger), progress,
			singularity.WithCompressionLevel(9), singularity.WithCacheDir(dir), singularity.WithKeychain(authn.DefaultKeychain),
			singularity.WithEnvCredentials(), singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "arm64"}),
			singularity.WithTransport(http.DefaultTransport)}},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithAuthenticator(authn.Anonymous),
			singularity.WithEnvCredentials(), singularity.WithTransport(http.DefaultTransport)}},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithKeychain(authn.DefaultKeychain),
			singularity.WithEnvCredentials(), singularity.WithTransport(http.DefaultTransport)}},

		{call: "singularity.Build", opts: []singularity.Option{singularity.WithKeychain(authn.DefaultKeychain)}, wantErr: "singularity.Build: WithKeychain: not an option of this call"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithAuthenticator(authn.Anonymous)}, wantErr: "singularity.Build: WithAuthenticator: not an option of this call"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithEnvCredentials()}, wantErr: "singularity.Build: WithEnvCredentials: not an option of this call"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithTransport(http.DefaultTransport)}, wantErr: "singularity.Build: WithTransport: not an option of this call"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})}, wantErr: "singularity.Build: WithPlatform: not an option of this call"},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithCompressionLevel(1)}, wantErr: "singularity.PushSIF: WithCompressionLevel: not an option of this call"},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"})}, wantErr: "singularity.PushSIF: WithPlatform: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithCacheDir(dir)}, wantErr: "singularity.PullSIF: WithCacheDir: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithFormat(singularity.FormatSIMG)}, wantErr: "singularity.PullSIF: WithFormat: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{progress}, wantErr: "singularity.PullSIF: WithProgress: not an option of this call"},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithLogger(logger)}, wantErr: "singularity.PushSIF: WithLogger: not an option of this call"},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithSourceDateEpoch(epoch)}, wantErr: "singularity.PushSIF: WithSourceDateEpoch: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithMksquashfs("/bin/true")}, wantErr: "singularity.PullSIF: WithMksquashfs: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithID("x")}, wantErr: "singularity.PullSIF: WithID: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithSource("x")}, wantErr: "singularity.PullSIF: WithSource: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithWorkers(1)}, wantErr: "singularity.PullSIF: WithWorkers: not an option of this call"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithCompression(singularity.Gzip, 1)}, wantErr: "singularity.PullSIF: WithCompression: not an option of this call"},

		{call: "singularity.Pull", opts: []singularity.Option{singularity.WithAuthenticator(authn.Anonymous), singularity.WithKeychain(authn.DefaultKeychain)}, wantErr: "singularity.Pull: WithAuthenticator: cannot be combined with WithKeychain"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithCompression(singularity.Zstd, 3), singularity.WithCompressionLevel(3)}, wantErr: "singularity.Build: WithCompressionLevel: cannot be combined with WithCompression"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithCompressionLevel(10)}, wantErr: "singularity.Build: WithCompressionLevel: gzip compression level must be 0 to 9, got 10"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithCompression(singularity.Zstd, 23)}, wantErr: "singularity.Build: WithCompression: zstd compression level must be 0 to 22, got 23"},
		{call: "singularity.Pull", opts: []singularity.Option{singularity.WithCompression(singularity.Zstd, -1)}, wantErr: "singularity.Pull: WithCompression: zstd compression level must be 0 to 22, got -1"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithCompression(singularity.Compressor(7), 1)}, wantErr: "singularity.Build: WithCompression: unknown compressor Compressor(7)"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithWorkers(0)}, wantErr: "singularity.Build: WithWorkers: workers must be positive, got 0"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithFormat(singularity.Format(2))}, wantErr: "singularity.Build: WithFormat: unknown format 2"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithLogger(nil)}, wantErr: "singularity.Build: WithLogger: logger must not be nil"},
		{call: "singularity.Build", opts: []singularity.Option{singularity.WithCacheDir("")}, wantErr: "singularity.Build: WithCacheDir: cache directory must not be empty"},
		{call: "singularity.Pull", opts: []singularity.Option{singularity.WithKeychain(nil)}, wantErr: "singularity.Pull: WithKeychain: keychain must not be nil"},
		{call: "singularity.PushSIF", opts: []singularity.Option{singularity.WithAuthenticator(nil)}, wantErr: "singularity.PushSIF: WithAuthenticator: authenticator must not be nil"},
		{call: "singularity.PullSIF", opts: []singularity.Option{singularity.WithTransport(nil)}, wantErr: "singularity.PullSIF: WithTransport: transport must not be nil"},
		{call: "singularity.Pull", opts: []singularity.Option{singularity.WithPlatform(v1.Platform{OS: "linux"})}, wantErr: `singularity.Pull: WithPlatform: platform needs an OS and an architecture, got "linux"/""`},
		{call: "singularity.Build", opts: []singularity.Option{{}}, wantErr: "singularity.Build: Option{}: the zero Option is not an option"},
	}
	for _, tt := range tests {
		t.Run(tt.call+" "+tt.wantErr, func(t *testing.T) {
			err := calls[tt.call](tt.opts...)
			var oerr *singularity.OptionError
			if tt.wantErr == "" {
				require.Error(t, err, "the cancelled context or missing file stops the call")
				require.False(t, errors.As(err, &oerr), "options refused: %v", err)
				return
			}
			require.ErrorAs(t, err, &oerr)
			assert.Equal(t, tt.wantErr, err.Error())
			assert.Equal(t, tt.call, oerr.Call)
		})
	}
}

func TestLevelError(t *testing.T) {
	tests := []struct {
		comp       singularity.Compressor
		level      int
		wantMax    int
		wantString string
	}{
		{comp: singularity.Gzip, level: 10, wantMax: 9, wantString: "gzip compression level must be 0 to 9, got 10"},
		{comp: singularity.Gzip, level: -1, wantMax: 9, wantString: "gzip compression level must be 0 to 9, got -1"},
		{comp: singularity.Zstd, level: 23, wantMax: 22, wantString: "zstd compression level must be 0 to 22, got 23"},
		{comp: singularity.Compressor(-1), level: 1, wantString: "unknown compressor Compressor(-1)"},
	}
	for _, tt := range tests {
		t.Run(tt.wantString, func(t *testing.T) {
			err := singularity.Build(t.Context(), syntheticImage(t), filepath.Join(t.TempDir(), "x.sif"),
				singularity.WithCompression(tt.comp, tt.level))
			var le *singularity.LevelError
			require.ErrorAs(t, err, &le)
			assert.Equal(t, singularity.LevelError{Compressor: tt.comp, Level: tt.level, Max: tt.wantMax}, *le)
			assert.Equal(t, tt.wantString, le.Error())
		})
	}
	// The edges of each range are levels.
	for _, tt := range []struct {
		comp  singularity.Compressor
		level int
	}{{singularity.Gzip, 0}, {singularity.Gzip, 9}, {singularity.Zstd, 0}, {singularity.Zstd, 22}} {
		out := filepath.Join(t.TempDir(), "x.sif")
		require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithCompression(tt.comp, tt.level)),
			"%v %d", tt.comp, tt.level)
	}
}
