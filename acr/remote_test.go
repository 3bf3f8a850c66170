package acr

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestPushPull(t *testing.T) {
	f := newTestACR(t)
	adminUser, adminPass := f.AdminCredentials()
	aad, err := NewAADKeychain(f.credential(), WithHosts(f.host()))
	require.NoError(t, err)
	tests := []struct {
		name string
		auth Option
	}{
		{name: "azure AD", auth: WithKeychain(aad)},
		{name: "admin", auth: WithKeychain(NewAdminKeychain(f.host(), adminUser, adminPass))},
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

func TestPushIndex(t *testing.T) {
	f := newTestACR(t)
	adminUser, adminPass := f.AdminCredentials()
	idx, err := random.Index(1024, 2, 2)
	require.NoError(t, err)
	ref := mustRef(t, f.host()+"/hpc/multi:v1")
	got, err := PushIndex(t.Context(), ref, idx, WithKeychain(NewAdminKeychain(f.host(), adminUser, adminPass)))
	require.NoError(t, err)
	want, err := idx.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, got)
}

func TestPushWrongPassword(t *testing.T) {
	f := newTestACR(t)
	adminUser, _ := f.AdminCredentials()
	sentinel := "Sentinel-" + randomString(t)
	var logs bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	img, err := random.Image(512, 1)
	require.NoError(t, err)
	ref := mustRef(t, f.host()+"/hpc/rdma:latest")

	_, err = Push(t.Context(), ref, img, WithKeychain(NewAdminKeychain(f.host(), adminUser, sentinel)), WithLogger(logger))
	require.ErrorIs(t, err, ErrUnauthorized)
	var aerr *AuthError
	require.ErrorAs(t, err, &aerr)
	assert.Equal(t, f.host(), aerr.Registry)
	assert.NotContains(t, err.Error(), sentinel)
	assert.NotContains(t, logs.String(), sentinel)

	_, err = Pull(t.Context(), ref, WithAuth(&staticBasic{user: adminUser, pass: sentinel}))
	require.ErrorIs(t, err, ErrUnauthorized)
	assert.NotContains(t, err.Error(), sentinel)
}

func TestOptionsConflict(t *testing.T) {
	f := newTestACR(t)
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

// flakyUploads is a registry without authentication whose upload requests fail as
// told, counting what it is sent.
type flakyUploads struct {
	post, patch func(w http.ResponseWriter) // nil answers as a registry does

	mu     sync.Mutex
	counts map[string]int
}

func (f *flakyUploads) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.counts[r.Method]++
	f.mu.Unlock()
	switch {
	case r.URL.Path == "/v2/":
		w.WriteHeader(http.StatusOK)
	case r.Method == http.MethodHead:
		w.WriteHeader(http.StatusNotFound)
	case r.Method == http.MethodPost && f.post != nil:
		f.post(w)
	case r.Method == http.MethodPost:
		w.Header().Set("Location", "/v2/x/blobs/uploads/1")
		w.WriteHeader(http.StatusAccepted)
	case r.Method == http.MethodPatch && f.patch != nil:
		_, _ = io.Copy(io.Discard, r.Body)
		f.patch(w)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

func (f *flakyUploads) count(method string) int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.counts[method]
}

func unavailable(w http.ResponseWriter) { w.WriteHeader(http.StatusServiceUnavailable) }

func resetConnection(w http.ResponseWriter) {
	conn, _, err := http.NewResponseController(w).Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	if tcp, ok := conn.(*net.TCPConn); ok {
		_ = tcp.SetLinger(0)
	}
	conn.Close()
}

// TestRetryAttemptsInAll checks that WithRetry bounds the tries of every request in
// all: go-containerregistry retries neither a request the transport gave up on nor an
// upload whose failed request was retried already.
func TestRetryAttemptsInAll(t *testing.T) {
	tests := []struct {
		name        string
		post, patch func(http.ResponseWriter)
		wantPosts   int
		wantPatches int
	}{
		{name: "503 on upload start", post: unavailable, wantPosts: 3},
		{name: "reset on upload start", post: resetConnection, wantPosts: 3},
		{name: "503 on PATCH starts the upload over", patch: unavailable, wantPosts: 3, wantPatches: 3},
		{name: "reset on PATCH starts the upload over", patch: resetConnection, wantPosts: 3, wantPatches: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := &flakyUploads{post: tt.post, patch: tt.patch, counts: map[string]int{}}
			srv := httptest.NewServer(f)
			defer srv.Close()
			img, err := random.Image(256, 1)
			require.NoError(t, err)
			ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/x:v1")
			_, err = Push(t.Context(), ref, img, WithJobs(1), WithRetry(3, time.Millisecond))
			require.Error(t, err)
			assert.Equal(t, tt.wantPosts, f.count(http.MethodPost), "upload starts")
			assert.Equal(t, tt.wantPatches, f.count(http.MethodPatch), "PATCH requests")
		})
	}
}

// TestUploadRestartWaitEndsWithContext checks that the wait before an upload starts over
// ends when the context does, however long the backoff.
func TestUploadRestartWaitEndsWithContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var once sync.Once
	firstPatch := make(chan time.Time, 1)
	f := &flakyUploads{counts: map[string]int{}, patch: func(w http.ResponseWriter) {
		unavailable(w)
		// Cancel once the client is waiting to start the upload over.
		once.Do(func() {
			firstPatch <- time.Now()
			time.AfterFunc(100*time.Millisecond, cancel)
		})
	}}
	srv := httptest.NewServer(f)
	defer srv.Close()
	img, err := random.Image(256, 1)
	require.NoError(t, err)
	ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/x:v1")
	_, err = Push(ctx, ref, img, WithJobs(1), WithRetry(5, maxBackoff))
	require.ErrorIs(t, err, context.Canceled)
	select {
	case at := <-firstPatch:
		assert.Less(t, time.Since(at), 10*time.Second, "a 30s backoff must not outlast the context")
	default:
		t.Fatal("no PATCH reached the registry")
	}
	assert.Equal(t, 1, f.count(http.MethodPatch))
}

func TestRestartable(t *testing.T) {
	req := func(method string) *http.Request { return &http.Request{Method: method} }
	reset := &net.OpError{Op: "read", Err: syscall.ECONNRESET}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{name: "PATCH 503", err: &transport.Error{StatusCode: 503, Request: req(http.MethodPatch)}, want: true},
		{name: "PATCH 429", err: &transport.Error{StatusCode: 429, Request: req(http.MethodPatch)}, want: true},
		{name: "PATCH 400", err: &transport.Error{StatusCode: 400, Request: req(http.MethodPatch)}},
		{name: "POST 503, retried in place", err: &transport.Error{StatusCode: 503, Request: req(http.MethodPost)}},
		{name: "PUT lost upload", want: true, err: &transport.Error{StatusCode: 404, Request: req(http.MethodPut),
			Errors: []transport.Diagnostic{{Code: transport.BlobUploadUnknownErrorCode}}}},
		{name: "PATCH reset", err: &url.Error{Op: "Patch", URL: "http://r/v2/x/blobs/uploads/1", Err: reset}, want: true},
		{name: "POST reset, retried in place", err: &url.Error{Op: "Post", URL: "http://r/v2/x/blobs/uploads/", Err: reset}},
		{name: "reset below the client, retried in place", err: reset},
		{name: "PATCH cancelled", err: &url.Error{Op: "Patch", URL: "http://r/", Err: context.Canceled}},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, restartable(tt.err), tt.name)
	}
}
