package acrtest_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

// outcome is what a client saw for one request: a status code or "error".
func outcomes(t *testing.T, r *acrtest.Registry, n int) ([]string, map[string]int) {
	t.Helper()
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	seq := make([]string, n)
	counts := map[string]int{}
	for i := range seq {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+r.LoginServer()+"/v2/", nil)
		require.NoError(t, err)
		resp, err := client.Do(req)
		if err != nil {
			seq[i] = "error"
		} else {
			seq[i] = strconv.Itoa(resp.StatusCode)
			if resp.StatusCode == http.StatusTooManyRequests {
				assert.Equal(t, "1", resp.Header.Get("Retry-After"))
				var body map[string]any
				require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
				assert.Equal(t, "TOOMANYREQUESTS", errorCode(t, body))
			}
			resp.Body.Close()
		}
		counts[seq[i]]++
	}
	return seq, counts
}

func TestFaults(t *testing.T) {
	t.Parallel()
	const n, rate = 400, 0.2
	r := acrtest.Start(t, acrtest.WithFaults(rate, 42))
	seq, got := outcomes(t, r, n)

	faults := r.Stats().Faults
	assert.Equal(t, faults[acrtest.FaultInternalError], got["500"])
	assert.Equal(t, faults[acrtest.FaultUnavailable], got["503"])
	assert.Equal(t, faults[acrtest.FaultTooManyRequests], got["429"])
	assert.Equal(t, faults[acrtest.FaultReset], got["error"])
	assert.Equal(t, n-got["401"], got["500"]+got["503"]+got["429"]+got["error"], "every request is a fault or reaches the registry")
	for _, kind := range []string{"500", "503", "429", "error"} {
		assert.Positive(t, got[kind], "no %s", kind)
	}
	assert.InDelta(t, rate, float64(n-got["401"])/n, 0.06)
	assert.Equal(t, n, r.Stats().V2Requests)

	r.SetFaultRate(0)
	_, got = outcomes(t, r, 20)
	assert.Equal(t, map[string]int{"401": 20}, got, "no faults after SetFaultRate(0)")

	again := acrtest.Start(t, acrtest.WithFaults(rate, 42))
	seqAgain, _ := outcomes(t, again, n)
	assert.Equal(t, seq, seqAgain, "the same seed injects the same faults into the same request sequence")
}

func TestTokenEndpointFaults(t *testing.T) {
	r := acrtest.Start(t, acrtest.WithFaults(1, 1), acrtest.WithTokenEndpointFaults())
	tok, err := r.TokenCredential().GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{acrtest.AudienceACR + "/.default"}})
	require.NoError(t, err)
	form := url.Values{"grant_type": {"access_token"}, "service": {r.LoginServer()}, "access_token": {tok.Token}}
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	for _, path := range []string{"/oauth2/exchange", "/oauth2/token"} {
		resp, err := client.PostForm("http://"+r.LoginServer()+path, form)
		if err == nil {
			resp.Body.Close()
			assert.Contains(t, []int{http.StatusInternalServerError, http.StatusServiceUnavailable, http.StatusTooManyRequests}, resp.StatusCode)
		}
	}
	s := r.Stats()
	assert.Equal(t, 2, s.Faults[acrtest.FaultInternalError]+s.Faults[acrtest.FaultUnavailable]+
		s.Faults[acrtest.FaultTooManyRequests]+s.Faults[acrtest.FaultReset])
	assert.Zero(t, s.Exchanges+s.ExchangeRefusals, "faults come before the endpoint")
}

// A client that retries, as ggcr does, pushes and pulls through the faults; the registry
// never sees the faulted requests, so what it stores is consistent.
func TestFaultsRetriedPushPull(t *testing.T) {
	r := acrtest.Start(t, acrtest.WithFaults(0.2, 7), acrtest.WithRetryAfter(0))
	user, password := r.AdminCredentials()
	roundTrip(t.Context(), t, r, "demo/faults", &authn.Basic{Username: user, Password: password},
		remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1.5, Steps: 8}))
	s := r.Stats()
	assert.Positive(t, s.Faults[acrtest.FaultInternalError]+s.Faults[acrtest.FaultUnavailable]+
		s.Faults[acrtest.FaultTooManyRequests]+s.Faults[acrtest.FaultReset], "faults were injected")
}

// A push that outlives its access token: the proxy refuses the expired token at once, and
// ggcr fetches a new one and completes. When the refusal hits an upload's PATCH, ggcr
// v0.22.1 resends the consumed body and fails with io.ErrClosedPipe; its upload retry
// starts the blob over only if the retry predicate accepts that error.
func TestSlowPushOutlivesAccessToken(t *testing.T) {
	t.Parallel()
	r := acrtest.Start(t, acrtest.WithAccessTokenTTL(time.Second), acrtest.WithRequestDelay(300*time.Millisecond))
	user, password := r.AdminCredentials()
	start := time.Now()
	img, err := random.Image(1024, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(r.LoginServer() + "/demo/slow:v1")
	require.NoError(t, err)
	retryable := func(err error) bool {
		return errors.Is(err, io.ErrClosedPipe) || errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET)
	}
	require.NoError(t, remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithJobs(1),
		remote.WithRetryPredicate(retryable),
		remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1, Steps: 3}),
		remote.WithAuth(&authn.Basic{Username: user, Password: password})))
	assert.GreaterOrEqual(t, time.Since(start), 2500*time.Millisecond, "every request was held")
	s := r.Stats()
	assert.Positive(t, s.ExpiredAccessTokens)
	assert.GreaterOrEqual(t, s.AccessTokens[acrtest.GrantBasicAdmin], 2)
}

func TestBlobRedirect(t *testing.T) {
	forEachBackend(t, testBlobRedirect)
}

func testBlobRedirect(t *testing.T, opts ...acrtest.Option) {
	r := acrtest.Start(t, append(opts, acrtest.WithBlobRedirect())...)
	user, password := r.AdminCredentials()

	// ggcr: the blobs come from storage and no credential goes with them, for basic and
	// identity-token authentication alike.
	roundTrip(t.Context(), t, r, "demo/basic", &authn.Basic{Username: user, Password: password})
	roundTrip(t.Context(), t, r, "demo/identity", authn.FromConfig(authn.AuthConfig{IdentityToken: refreshToken(t, r)}))
	s := r.Stats()
	assert.GreaterOrEqual(t, s.BlobRedirects, 6, "config and two layers, twice")
	assert.Equal(t, s.BlobRedirects, s.StorageRequests)
	assert.Zero(t, s.StorageAuthorizations)

	// The redirect itself, by hand.
	img, err := random.Image(4096, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(r.LoginServer() + "/demo/raw:v1")
	require.NoError(t, err)
	require.NoError(t, remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithAuth(&authn.Basic{Username: user, Password: password})))
	layers, err := img.Layers()
	require.NoError(t, err)
	digest, err := layers[0].Digest()
	require.NoError(t, err)
	blobURL := "http://" + r.LoginServer() + "/v2/demo/raw/blobs/" + digest.String()
	noFollow := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	get := func(c *http.Client, u, auth string) *http.Response {
		req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, u, nil)
		require.NoError(t, err)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := c.Do(req)
		require.NoError(t, err)
		t.Cleanup(func() { resp.Body.Close() })
		return resp
	}

	assert.Equal(t, http.StatusUnauthorized, get(noFollow, blobURL, "").StatusCode, "no redirect without authorization")
	bearer := "Bearer " + r.AccessToken("repository:demo/raw:pull")
	resp := get(noFollow, blobURL, bearer)
	require.Equal(t, http.StatusTemporaryRedirect, resp.StatusCode)
	loc, err := url.Parse(resp.Header.Get("Location"))
	require.NoError(t, err)
	assert.NotEqual(t, r.LoginServer(), loc.Host)
	for _, k := range []string{"sv", "sr", "sp", "se", "sig"} {
		assert.NotEmpty(t, loc.Query().Get(k), "SAS field %s", k)
	}

	resp = get(noFollow, loc.String(), "")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	b, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	sum := sha256.Sum256(b)
	assert.Equal(t, digest.Hex, hex.EncodeToString(sum[:]))

	forged := *loc
	q := forged.Query()
	q.Set("se", time.Now().Add(time.Hour).UTC().Format(time.RFC3339))
	forged.RawQuery = q.Encode()
	assert.Equal(t, http.StatusForbidden, get(noFollow, forged.String(), "").StatusCode, "signature covers the expiry")

	// A client that puts the Authorization header on the request itself, rather than
	// adding it per host in its transport, has it forwarded by net/http (same host name,
	// other port): the storage refuses it and the count shows the leak.
	before := r.Stats().StorageAuthorizations
	resp = get(http.DefaultClient, blobURL, bearer)
	assert.Equal(t, http.StatusBadRequest, resp.StatusCode)
	assert.Equal(t, "InvalidAuthenticationInfo", resp.Header.Get("X-Ms-Error-Code"))
	assert.Equal(t, before+1, r.Stats().StorageAuthorizations)
}

// No password or token appears in the proxy's log, whatever happens.
func TestLogsHoldNoSecrets(t *testing.T) {
	var buf bytes.Buffer
	const password = "Sentinel-Pa55word-0f-the-admin"
	r := acrtest.Start(t, acrtest.WithAdmin("admin", password), acrtest.WithFaults(0.1, 1), acrtest.WithRetryAfter(0),
		acrtest.WithLogger(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	rt := refreshToken(t, r)
	retry := remote.WithRetryBackoff(remote.Backoff{Duration: 10 * time.Millisecond, Factor: 1.5, Steps: 8})
	roundTrip(t.Context(), t, r, "demo/admin", &authn.Basic{Username: "admin", Password: password}, retry)
	roundTrip(t.Context(), t, r, "demo/identity", authn.FromConfig(authn.AuthConfig{IdentityToken: rt}), retry)
	postForm(t, "http://"+r.LoginServer()+"/oauth2/token", url.Values{"grant_type": {"password"}, "username": {"admin"},
		"password": {password + "x"}, "service": {r.LoginServer()}})
	postForm(t, "http://"+r.LoginServer()+"/oauth2/token", url.Values{"grant_type": {"refresh_token"},
		"refresh_token": {rt + "x"}, "service": {r.LoginServer()}})

	logs := buf.String()
	require.Contains(t, logs, "issued an access token")
	require.Contains(t, logs, "refused token request")
	assert.NotContains(t, logs, password)
	for _, part := range strings.Split(rt, ".") {
		assert.NotContains(t, logs, part)
	}
	assert.NotContains(t, logs, "eyJ", "no JWT in the log")
}

// TestFaultsAreLogged: each injected fault is logged with its kind and the request it hit.
func TestFaultsAreLogged(t *testing.T) {
	var buf lockedBuffer
	r := acrtest.Start(t, acrtest.WithInMemoryRegistry(), acrtest.WithFaults(1, 3),
		acrtest.WithLogger(slog.New(slog.NewTextHandler(&buf, nil))))
	client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
	resp, err := client.Get("http://" + r.LoginServer() + "/v2/")
	if err == nil {
		resp.Body.Close()
	}
	faults := r.Stats().Faults
	require.Len(t, faults, 1)
	for fault := range faults {
		assert.Contains(t, buf.String(), `msg="acrtest injected a fault" fault=`+string(fault)+` method=GET path=/v2/`)
	}
}

// lockedBuffer is a bytes.Buffer that the proxy's handlers may write while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestRetryAfterRoundsUp: the Retry-After of an injected 429 is WithRetryAfter rounded up to whole seconds.
func TestRetryAfterRoundsUp(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want string
	}{{0, "0"}, {time.Nanosecond, "1"}, {time.Second, "1"}, {time.Second + 1, "2"}, {1500 * time.Millisecond, "2"}} {
		t.Run(tt.d.String(), func(t *testing.T) {
			r := acrtest.Start(t, acrtest.WithInMemoryRegistry(), acrtest.WithFaults(1, 3), acrtest.WithRetryAfter(tt.d))
			client := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}
			for range 100 {
				resp, err := client.Get("http://" + r.LoginServer() + "/v2/")
				if err != nil {
					continue // a reset
				}
				resp.Body.Close()
				if resp.StatusCode == http.StatusTooManyRequests {
					assert.Equal(t, tt.want, resp.Header.Get("Retry-After"))
					return
				}
			}
			t.Fatal("no 429 in 100 faulted requests")
		})
	}
}
