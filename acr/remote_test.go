package acr

import (
	"bytes"
	"log/slog"
	"sync"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPushPullFakeACR(t *testing.T) {
	f := newFakeACR(t)
	aad, err := NewAADKeychain(f.credential(), WithHosts(f.host()))
	require.NoError(t, err)
	tests := []struct {
		name string
		auth Option
	}{
		{name: "azure AD", auth: WithKeychain(aad)},
		{name: "admin", auth: WithKeychain(NewAdminKeychain(f.host(), f.adminUser, f.adminPass))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := random.Image(4096, 3)
			require.NoError(t, err)
			ref := mustRef(t, f.host()+"/hpc/rdma:latest")

			var mu sync.Mutex
			var last Progress
			got, err := Push(t.Context(), ref, img, tt.auth, WithJobs(2), WithProgress(func(p Progress) {
				mu.Lock()
				last = p
				mu.Unlock()
			}))
			require.NoError(t, err)
			want, err := img.Digest()
			require.NoError(t, err)
			assert.Equal(t, want, got)
			assert.Positive(t, last.Total)
			assert.Equal(t, last.Total, last.Complete)

			pulled, err := Pull(t.Context(), ref, tt.auth)
			require.NoError(t, err)
			pulledDigest, err := pulled.Digest()
			require.NoError(t, err)
			assert.Equal(t, want, pulledDigest)
			require.NoError(t, validate.Image(pulled))

			tags, err := ListTags(t.Context(), ref.Context(), tt.auth)
			require.NoError(t, err)
			assert.Equal(t, []string{"latest"}, tags)
			repos, err := Catalog(t.Context(), ref.Context().Registry, tt.auth)
			require.NoError(t, err)
			assert.Contains(t, repos, "hpc/rdma")
		})
	}
}

func TestPushIndexFakeACR(t *testing.T) {
	f := newFakeACR(t)
	idx, err := random.Index(1024, 2, 2)
	require.NoError(t, err)
	ref := mustRef(t, f.host()+"/hpc/multi:v1")
	got, err := PushIndex(t.Context(), ref, idx, WithKeychain(NewAdminKeychain(f.host(), f.adminUser, f.adminPass)))
	require.NoError(t, err)
	want, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestPushWrongPasswordFakeACR(t *testing.T) {
	f := newFakeACR(t)
	sentinel := "Sentinel-" + randomString(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	ref := mustRef(t, f.host()+"/hpc/rdma:latest")

	_, err = Push(t.Context(), ref, img, WithKeychain(NewAdminKeychain(f.host(), f.adminUser, sentinel)), WithLogger(logger))
	require.ErrorIs(t, err, ErrUnauthorized)
	var aerr *AuthError
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, f.host(), aerr.Registry)
	assert.NotContains(t, err.Error(), sentinel)
	assert.NotContains(t, logs.String(), sentinel)

	_, err = Pull(t.Context(), ref, WithAuth(&staticBasic{user: f.adminUser, pass: sentinel}))
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), sentinel)
}

func TestOptionsConflict(t *testing.T) {
	f := newFakeACR(t)
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	ref := mustRef(t, f.host()+"/x:y")
	kc := NewAdminKeychain(f.host(), "a", "b")
	_, err = Push(t.Context(), ref, img, WithAuth(&staticBasic{}), WithKeychain(kc))
	require.Error(t, err)
	_, err = Push(t.Context(), ref, img, WithJobs(0))
	require.Error(t, err)
	_, err = Push(t.Context(), ref, img, WithRetry(0, 0))
	require.Error(t, err)
}
