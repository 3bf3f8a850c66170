package acrtest_test

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/internal/testenv"
)

// TestNewOutsideATest starts registries the way a program does, pushes and pulls with the admin user,
// and checks that Close stops the proxy, the registry and removes their files.
func TestNewOutsideATest(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []acrtest.Option
	}{
		{"in memory", []acrtest.Option{acrtest.WithInMemoryRegistry()}},
		{"docker-registry", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.opts == nil {
				testenv.Require(t, "docker-registry")
			}
			tmp := t.TempDir()
			t.Setenv("TMPDIR", tmp) // where New keeps the registry's files
			r, err := acrtest.New(t.Context(), tc.opts...)
			require.NoError(t, err)
			t.Cleanup(r.Close) // in case the test fails before its own Close

			user, password := r.AdminCredentials()
			ref, err := name.ParseReference(r.LoginServer() + "/demo/app:v1")
			require.NoError(t, err)
			img, err := random.Image(1024, 2)
			require.NoError(t, err)
			auth := remote.WithAuth(&authn.Basic{Username: user, Password: password})
			require.NoError(t, remote.Write(ref, img, auth, remote.WithContext(t.Context())))
			got, err := remote.Image(ref, auth, remote.WithContext(t.Context()))
			require.NoError(t, err)
			want, err := img.Digest()
			require.NoError(t, err)
			gotDigest, err := got.Digest()
			require.NoError(t, err)
			assert.Equal(t, want, gotDigest)

			// A new directory of the registry's exists while it runs, and none after Close.
			created, err := filepath.Glob(filepath.Join(tmp, "acrtest-*"))
			require.NoError(t, err)
			require.Len(t, created, 1)
			backend := r.Backend()

			r.Close()
			r.Close() // a second Close does nothing
			_, err = os.Stat(created[0])
			assert.ErrorIs(t, err, os.ErrNotExist, "the registry's directory is removed")
			for _, addr := range []string{r.LoginServer(), backend} {
				if addr == "" {
					continue
				}
				conn, err := net.DialTimeout("tcp", addr, time.Second)
				if err == nil {
					conn.Close()
				}
				assert.Error(t, err, "nothing listens on %s after Close", addr)
			}
		})
	}
}

// TestNewLogsHelperMisuse checks that New reports misuse of the test helpers through the logger, having
// no test to fail.
func TestNewLogsHelperMisuse(t *testing.T) {
	var buf bytes.Buffer
	r, err := acrtest.New(t.Context(), acrtest.WithInMemoryRegistry(),
		acrtest.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	require.NoError(t, err)
	defer r.Close()
	assert.Empty(t, r.AccessToken("not a scope"))
	r.SetFaultRate(2)
	assert.Contains(t, buf.String(), "level=ERROR")
	assert.Contains(t, buf.String(), "fault rate must be within [0, 1], got 2")
}

func TestNewRejectsBadOptions(t *testing.T) {
	_, err := acrtest.New(t.Context(), acrtest.WithAdmin("", ""))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "admin user and password must not be empty")
}

// TestNewCancelled: a start cut short by its context fails with the context's error, and removes the
// registry's files.
func TestNewCancelled(t *testing.T) {
	testenv.Require(t, "docker-registry")
	tmp := t.TempDir()
	t.Setenv("TMPDIR", tmp)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	r, err := acrtest.New(ctx)
	require.ErrorIs(t, err, context.Canceled)
	assert.Nil(t, r)
	left, err := os.ReadDir(tmp)
	require.NoError(t, err)
	assert.Empty(t, left, "the registry's files are removed")
}
