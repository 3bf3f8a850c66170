package acr

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func testTransport(t *testing.T, host string, opts ...Option) *registryTransport {
	t.Helper()
	o, err := makeOptions("acr.Push", callPush, append([]Option{WithRetry(3, time.Millisecond)}, opts...))
	require.NoError(t, err)
	return newRegistryTransport(host, o)
}

// recorder answers with the given statuses in turn (the last one repeats) and
// records what it was sent.
type recorder struct {
	mu       sync.Mutex
	statuses []int
	bodies   []string
	times    []time.Time
}

func (r *recorder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.bodies = append(r.bodies, string(body))
	r.times = append(r.times, time.Now())
	status := r.statuses[min(len(r.bodies), len(r.statuses))-1]
	if status == http.StatusTooManyRequests {
		w.Header().Set("Retry-After", "1")
	}
	w.WriteHeader(status)
}

func TestRegistryTransportRetries(t *testing.T) {
	tests := []struct {
		name       string
		method     string
		statuses   []int
		wantStatus int
		wantSent   int
		minWait    time.Duration
		oneShot    bool // a body without GetBody
	}{
		{name: "ok", method: http.MethodPut, statuses: []int{200}, wantStatus: 200, wantSent: 1},
		{name: "503 then ok replays the body", method: http.MethodPut, statuses: []int{503, 200}, wantStatus: 200, wantSent: 2},
		{name: "429 waits Retry-After", method: http.MethodPost, statuses: []int{429, 201}, wantStatus: 201, wantSent: 2, minWait: time.Second},
		{name: "gives up after the attempts", method: http.MethodPut, statuses: []int{502}, wantStatus: 502, wantSent: 3},
		{name: "404 is final", method: http.MethodPut, statuses: []int{404, 200}, wantStatus: 404, wantSent: 1},
		{name: "upload PATCH is not replayed", method: http.MethodPatch, statuses: []int{503, 200}, wantStatus: 503, wantSent: 1},
		{name: "throttled PATCH waits before it returns", method: http.MethodPatch, statuses: []int{429, 200}, wantStatus: 429, wantSent: 1, minWait: time.Second},
		{name: "a body that cannot be replayed is sent once", method: http.MethodPut, statuses: []int{503, 200}, oneShot: true, wantStatus: 503, wantSent: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{statuses: tt.statuses}
			srv := httptest.NewServer(rec)
			defer srv.Close()
			tr := testTransport(t, strings.TrimPrefix(srv.URL, "http://"))

			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+"/v2/x/blobs/uploads/1", bytes.NewReader([]byte("layer bytes")))
			require.NoError(t, err)
			if tt.oneShot {
				req.GetBody = nil
			}
			start := time.Now()
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			elapsed := time.Since(start)

			assert.Equal(t, tt.wantStatus, resp.StatusCode)
			require.Len(t, rec.bodies, tt.wantSent)
			for _, b := range rec.bodies {
				assert.Equal(t, "layer bytes", b, "every attempt carries the whole body")
			}
			assert.GreaterOrEqual(t, elapsed, tt.minWait)
		})
	}
}

// TestLastAnswerIsNotHeld: the answer to the last attempt of a request goes back at once, whatever its
// Retry-After says; only a throttled upload PATCH waits before go-containerregistry starts it over (see
// TestRegistryTransportRetries). Were the answer held, the hour-long Retry-After would end the request's
// context first.
func TestLastAnswerIsNotHeld(t *testing.T) {
	for _, status := range []int{http.StatusTooManyRequests, http.StatusServiceUnavailable} {
		t.Run(http.StatusText(status), func(t *testing.T) {
			var sent atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				sent.Add(1)
				w.Header().Set("Retry-After", "3600")
				w.WriteHeader(status)
			}))
			defer srv.Close()
			tr := testTransport(t, strings.TrimPrefix(srv.URL, "http://"), WithRetry(1, 0), WithMaxRetryAfter(time.Hour))
			ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
			defer cancel()
			req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/x/manifests/v1", nil)
			require.NoError(t, err)
			resp, err := tr.RoundTrip(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, status, resp.StatusCode)
			assert.EqualValues(t, 1, sent.Load())
		})
	}
}

// closeTracker is a request body that records whether it was closed.
type closeTracker struct {
	io.Reader
	closed atomic.Bool
}

func (c *closeTracker) Close() error {
	c.closed.Store(true)
	return nil
}

// TestRegistryTransportClosesTheBody: a request whose body is sent from GetBody copies still has its own
// body closed, as a RoundTripper must, so that a body backed by a file or a pipe is released.
func TestRegistryTransportClosesTheBody(t *testing.T) {
	rec := &recorder{statuses: []int{503, 201}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tr := testTransport(t, strings.TrimPrefix(srv.URL, "http://"))
	body := &closeTracker{Reader: strings.NewReader("layer bytes")}
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPut, srv.URL+"/v2/x/blobs/uploads/1", body)
	require.NoError(t, err)
	req.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(strings.NewReader("layer bytes")), nil }
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusCreated, resp.StatusCode)
	assert.Equal(t, []string{"layer bytes", "layer bytes"}, rec.bodies)
	assert.True(t, body.closed.Load(), "the request's own body is closed")
}

func TestRegistryTransportRetryAfterCap(t *testing.T) {
	rec := &recorder{statuses: []int{429, 200}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tr := testTransport(t, strings.TrimPrefix(srv.URL, "http://"), WithMaxRetryAfter(10*time.Millisecond))
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, srv.URL+"/v2/", nil)
	require.NoError(t, err)
	start := time.Now()
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
	assert.Less(t, time.Since(start), 900*time.Millisecond)
}

func TestRegistryTransportCancelledWait(t *testing.T) {
	rec := &recorder{statuses: []int{429}}
	srv := httptest.NewServer(rec)
	defer srv.Close()
	tr := testTransport(t, strings.TrimPrefix(srv.URL, "http://"))
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+"/v2/", nil)
	require.NoError(t, err)
	_, err = tr.RoundTrip(req)
	require.ErrorIs(t, err, context.DeadlineExceeded)
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"3", 3 * time.Second, true},
		{" 0 ", 0, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := retryAfter(tt.in, now)
		assert.Equal(t, tt.wantOK, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}

// TestRedirectDropsCredentials shows why the transport strips Authorization: net/http
// copies it onto a redirect to the same host name on another port, which is where a
// storage stand-in lives in tests, and the transport must stop it there too.
func TestRedirectDropsCredentials(t *testing.T) {
	var mu sync.Mutex
	var seen []string
	storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		seen = append(seen, r.Header.Get("Authorization"))
		mu.Unlock()
		_, _ = io.WriteString(w, "blob")
	}))
	defer storage.Close()
	reg := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, storage.URL+"/blob?sig=secret", http.StatusTemporaryRedirect)
	}))
	defer reg.Close()

	get := func(rt http.RoundTripper) {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, reg.URL+"/v2/x/blobs/sha256:00", nil)
		require.NoError(t, err)
		req.Header.Set("Authorization", "Bearer registry-token")
		resp, err := (&http.Client{Transport: rt}).Do(req)
		require.NoError(t, err)
		resp.Body.Close()
		assert.Equal(t, http.StatusOK, resp.StatusCode)
	}
	get(http.DefaultTransport)
	get(testTransport(t, strings.TrimPrefix(reg.URL, "http://")))
	require.Len(t, seen, 2)
	assert.Equal(t, "Bearer registry-token", seen[0], "net/http forwards credentials to another port of the same host")
	assert.Empty(t, seen[1], "the registry transport must not")
}

func FuzzRetryAfter(f *testing.F) {
	for _, s := range []string{"1", "120", "-3", "Wed, 21 Oct 2015 07:28:00 GMT", "", "1.5", "99999999999999999999"} {
		f.Add(s)
	}
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := retryAfter(v, now)
		if !ok {
			assert.Zero(t, d)
			return
		}
		assert.GreaterOrEqual(t, d, time.Duration(0))
	})
}

func TestRegistryTransportKeepsRealmCredentials(t *testing.T) {
	var got string
	realm := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Get("Authorization")
	}))
	defer realm.Close()
	tr := testTransport(t, "registry.example:443")
	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, realm.URL+"/token?scope=x", nil)
	require.NoError(t, err)
	req.SetBasicAuth("user", "pass")
	resp, err := tr.RoundTrip(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.NotEmpty(t, got, "a token request to a realm on another host is no redirect")
}

func TestBackoffIsCapped(t *testing.T) {
	tr := testTransport(t, "registry.example", WithRetry(10, maxBackoff))
	for _, attempt := range []int{1, 2, 10, 64} {
		_, wait := tr.classify(nil, io.ErrUnexpectedEOF, attempt)
		assert.Positive(t, wait, "attempt %d", attempt)
		assert.LessOrEqual(t, wait, maxBackoff+maxBackoff/5, "attempt %d", attempt)
	}
}

// TestWithRetryBounds has rows at and on both sides of each limit of WithRetry and WithMaxRetryAfter, and
// checks that an accepted value is the one used.
func TestWithRetryBounds(t *testing.T) {
	tests := []struct {
		name    string
		opt     Option
		wantErr string
		check   func(t *testing.T, o *options)
	}{
		{name: "no attempt", opt: WithRetry(0, 0), wantErr: "acr.Push: WithRetry: retry attempts must be 1 to 10, got 0"},
		{name: "one attempt", opt: WithRetry(1, 0), check: func(t *testing.T, o *options) {
			assert.Equal(t, 1, o.attempts)
			assert.Zero(t, o.backoff)
		}},
		{name: "ten attempts", opt: WithRetry(10, time.Second), check: func(t *testing.T, o *options) {
			assert.Equal(t, 10, o.attempts)
			assert.Equal(t, time.Second, o.backoff)
		}},
		{name: "eleven attempts", opt: WithRetry(11, 0), wantErr: "acr.Push: WithRetry: retry attempts must be 1 to 10, got 11"},
		{name: "negative backoff", opt: WithRetry(3, -1), wantErr: "acr.Push: WithRetry: retry backoff must be 0 to 30s, got -1ns"},
		{name: "largest backoff", opt: WithRetry(3, maxBackoff), check: func(t *testing.T, o *options) { assert.Equal(t, maxBackoff, o.backoff) }},
		{name: "backoff above the largest", opt: WithRetry(3, maxBackoff+1), wantErr: "acr.Push: WithRetry: retry backoff must be 0 to 30s, got 30.000000001s"},
		{name: "negative max Retry-After", opt: WithMaxRetryAfter(-1), wantErr: "acr.Push: WithMaxRetryAfter: max Retry-After must not be negative, got -1ns"},
		{name: "no Retry-After wait", opt: WithMaxRetryAfter(0), check: func(t *testing.T, o *options) { assert.Zero(t, o.maxRetryAfter) }},
		{name: "1ns of Retry-After", opt: WithMaxRetryAfter(1), check: func(t *testing.T, o *options) { assert.Equal(t, time.Duration(1), o.maxRetryAfter) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o, err := makeOptions("acr.Push", callPush, []Option{tt.opt})
			if tt.wantErr != "" {
				require.EqualError(t, err, tt.wantErr)
				var oerr *OptionError
				require.ErrorAs(t, err, &oerr)
				assert.Equal(t, strings.TrimPrefix(tt.wantErr, oerr.Call+": "+oerr.Option+": "), errors.Unwrap(err).Error(),
					"the option's own error is underneath")
				return
			}
			require.NoError(t, err)
			tt.check(t, o)
		})
	}
}
