package acr_test

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/logs"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/internal/acrtest"
)

// isolateCredentials keeps the developer's docker config and environment out of a test.
func isolateCredentials(t *testing.T) {
	t.Helper()
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	// Unset rather than pointed elsewhere: docker-registry reads REGISTRY_* variables
	// as configuration, and go-containerregistry reads this one as an auth file.
	t.Setenv("REGISTRY_AUTH_FILE", "")
	os.Unsetenv("REGISTRY_AUTH_FILE")
	for _, k := range []string{acr.EnvApptainerUsername, acr.EnvApptainerPassword, acr.EnvSingularityUsername, acr.EnvSingularityPassword} {
		t.Setenv(k, "")
	}
}

func ref(t *testing.T, reg *acrtest.Registry, repoTag string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(reg.LoginServer() + "/" + repoTag)
	require.NoError(t, err)
	return r
}

func sentinel(t *testing.T) string {
	t.Helper()
	return "Sentinel" + rand.Text()
}

// roundTrip pushes a random image, pulls it back and checks it is the same image.
func roundTrip(t *testing.T, r name.Reference, opts ...acr.Option) v1.Hash {
	t.Helper()
	img, err := random.Image(64<<10, 3)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)

	got, err := acr.Push(t.Context(), r, img, opts...)
	require.NoError(t, err)
	assert.Equal(t, want, got)

	pulled, err := acr.Pull(t.Context(), r, opts...)
	require.NoError(t, err)
	pulledDigest, err := pulled.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, pulledDigest)
	require.NoError(t, validate.Image(pulled), "every layer reads back with its digest")
	return got
}

func TestIntegrationAAD(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t)
	kc, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()))
	require.NoError(t, err)
	r := ref(t, reg, "hpc/rdma:latest")
	roundTrip(t, r, acr.WithKeychain(kc))

	tags, err := acr.ListTags(t.Context(), r.Context(), acr.WithKeychain(kc))
	require.NoError(t, err)
	assert.Equal(t, []string{"latest"}, tags)
	repos, err := acr.Catalog(t.Context(), r.Context().Registry, acr.WithKeychain(kc))
	require.NoError(t, err)
	assert.Equal(t, []string{"hpc/rdma"}, repos)

	s := reg.Stats()
	assert.Equal(t, 1, s.Exchanges, "one refresh token serves the push, the pull and the listings")
	assert.Equal(t, map[string]int{"https://containerregistry.azure.net": 1}, s.ExchangeAudiences)
	assert.Positive(t, s.AccessTokens[acrtest.GrantRefreshToken])
	assert.Zero(t, s.TokenRefusals)
}

func TestIntegrationAdmin(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	kc := acr.WithKeychain(acr.NewAdminKeychain(reg.LoginServer(), user, pass))
	roundTrip(t, ref(t, reg, "hpc/admin:v1"), kc)

	idx, err := random.Index(4096, 2, 2)
	require.NoError(t, err)
	want, err := idx.Digest()
	require.NoError(t, err)
	r := ref(t, reg, "hpc/multi:v1")
	got, err := acr.PushIndex(t.Context(), r, idx, kc)
	require.NoError(t, err)
	assert.Equal(t, want, got)
	tags, err := acr.ListTags(t.Context(), r.Context(), kc)
	require.NoError(t, err)
	assert.Equal(t, []string{"v1"}, tags)

	s := reg.Stats()
	assert.Positive(t, s.AccessTokens[acrtest.GrantBasicAdmin])
	assert.Zero(t, s.Exchanges)
}

func TestIntegrationEnvironment(t *testing.T) {
	reg := acrtest.Start(t)
	user, pass := reg.AdminCredentials()
	tests := []struct {
		name      string
		env       map[string]string
		wantGrant acrtest.Grant
	}{
		{
			name:      "singularity admin",
			env:       map[string]string{acr.EnvSingularityUsername: user, acr.EnvSingularityPassword: pass},
			wantGrant: acrtest.GrantBasicAdmin,
		},
		{
			name: "apptainer wins over a wrong singularity pair",
			env: map[string]string{acr.EnvApptainerUsername: user, acr.EnvApptainerPassword: pass,
				acr.EnvSingularityUsername: user, acr.EnvSingularityPassword: "wrong"},
			wantGrant: acrtest.GrantBasicAdmin,
		},
		{
			name:      "null GUID and a refresh token",
			env:       map[string]string{acr.EnvApptainerUsername: acr.NullGUIDUsername, acr.EnvApptainerPassword: reg.RefreshToken()},
			wantGrant: acrtest.GrantRefreshToken,
		},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			isolateCredentials(t)
			for k, v := range tt.env {
				t.Setenv(k, v)
			}
			before := reg.Stats().AccessTokens[tt.wantGrant]
			// No WithAuth or WithKeychain: the default keychain reads the environment.
			roundTrip(t, ref(t, reg, fmt.Sprintf("hpc/env%d:latest", i)), acr.WithHosts(reg.LoginServer()))
			assert.Greater(t, reg.Stats().AccessTokens[tt.wantGrant], before)
		})
	}
}

func TestIntegrationDockerConfig(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t)
	// What `az acr login` leaves behind: the null GUID with an empty password, and the
	// refresh token as identitytoken.
	cfg := map[string]any{"auths": map[string]any{reg.LoginServer(): map[string]string{
		"auth":          base64.StdEncoding.EncodeToString([]byte(acr.NullGUIDUsername + ":")),
		"identitytoken": reg.RefreshToken(),
	}}}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), raw, 0o600))
	t.Setenv("DOCKER_CONFIG", dir)

	roundTrip(t, ref(t, reg, "hpc/config:latest"))
	assert.Positive(t, reg.Stats().AccessTokens[acrtest.GrantRefreshToken])
}

func TestIntegrationWrongPassword(t *testing.T) {
	for _, echo := range []bool{false, true} {
		t.Run(fmt.Sprintf("echoed=%v", echo), func(t *testing.T) {
			isolateCredentials(t)
			secret := sentinel(t)
			var regOpts []acrtest.Option
			if echo {
				// The token endpoint repeats the password in its 401 body.
				regOpts = append(regOpts, acrtest.WithEchoedCredentials())
			}
			reg := acrtest.Start(t, regOpts...)
			user, _ := reg.AdminCredentials()
			var logBuf bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
			img, err := random.Image(1024, 1)
			require.NoError(t, err)
			opts := []acr.Option{acr.WithKeychain(acr.NewAdminKeychain(reg.LoginServer(), user, secret)), acr.WithLogger(logger)}
			basic := base64.StdEncoding.EncodeToString([]byte(user + ":" + secret))

			_, pushErr := acr.Push(t.Context(), ref(t, reg, "hpc/denied:latest"), img, opts...)
			_, pullErr := acr.Pull(t.Context(), ref(t, reg, "hpc/denied:latest"), opts...)
			for _, err := range []error{pushErr, pullErr} {
				require.ErrorIs(t, err, acr.ErrUnauthorized)
				var aerr *acr.AuthError
				require.ErrorAs(t, err, &aerr)
				assert.Equal(t, reg.LoginServer(), aerr.Registry)
				assert.Equal(t, http.StatusUnauthorized, aerr.StatusCode)
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
					assert.NotContains(t, s, secret)
					assert.NotContains(t, s, basic)
				}
				if echo {
					assert.Contains(t, err.Error(), "REDACTED", "the echoed body is reported, redacted")
				}
			}
			assert.NotContains(t, logBuf.String(), secret)
			assert.Positive(t, reg.Stats().TokenRefusals)
		})
	}
}

func TestIntegrationRejectedAADToken(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t)
	kc, err := acr.NewAADKeychain(reg.TokenCredential(acrtest.WithUntrustedSigner()), acr.WithHosts(reg.LoginServer()))
	require.NoError(t, err)
	img, err := random.Image(1024, 1)
	require.NoError(t, err)
	_, err = acr.Push(t.Context(), ref(t, reg, "hpc/denied:latest"), img, acr.WithKeychain(kc))
	require.ErrorIs(t, err, acr.ErrUnauthorized)
	assert.Positive(t, reg.Stats().ExchangeRefusals)
}

func TestIntegrationTokensExpireDuringPush(t *testing.T) {
	isolateCredentials(t)
	// Token lifetimes are rounded up to whole seconds of exp: refresh tokens live 1 to 2 s,
	// access tokens 1.5 to 2.5 s. Every /v2/ request is held 300ms, so the push of five
	// blobs takes over 6 s and needs at least three access tokens. The third is asked for
	// at least 3 s after the first refresh token was issued, when that one has expired:
	// the push completes only if the refresh token is renewed.
	reg := acrtest.Start(t, acrtest.WithRefreshTokenTTL(time.Second), acrtest.WithAccessTokenTTL(1500*time.Millisecond),
		acrtest.WithRequestDelay(300*time.Millisecond))
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	kc, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()), acr.WithLogger(logger))
	require.NoError(t, err)
	img, err := random.Image(32<<10, 4)
	require.NoError(t, err)
	want, err := img.Digest()
	require.NoError(t, err)

	start := time.Now()
	got, err := acr.Push(t.Context(), ref(t, reg, "hpc/slow:latest"), img, acr.WithKeychain(kc), acr.WithJobs(1))
	require.NoError(t, err)
	assert.Equal(t, want, got)
	elapsed := time.Since(start)

	s := reg.Stats()
	t.Logf("push took %v: %d exchanges, %d access tokens, %d expired tokens refused", elapsed.Round(time.Millisecond),
		s.Exchanges, s.AccessTokens[acrtest.GrantRefreshToken], s.ExpiredAccessTokens)
	require.GreaterOrEqual(t, s.AccessTokens[acrtest.GrantRefreshToken], 3, "the push outlived two access tokens")
	assert.Positive(t, s.ExpiredAccessTokens, "an access token expired mid-push")
	assert.GreaterOrEqual(t, s.Exchanges, 2, "the refresh token was renewed mid-push")
	assert.Zero(t, s.TokenRefusals, "no expired refresh token was ever presented")
	assert.Contains(t, logBuf.String(), "exchanged an Azure AD token")
	assert.NotContains(t, logBuf.String(), "eyJ", "no JWT in the log")
}

func TestIntegrationFaults(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t, acrtest.WithFaults(0.2, 4), acrtest.WithTokenEndpointFaults())
	user, pass := reg.AdminCredentials()
	admin := acr.NewAdminKeychain(reg.LoginServer(), user, pass)
	aad, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()), acr.WithRetry(10, 20*time.Millisecond))
	require.NoError(t, err)
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, nil))

	const pushes = 50
	type result struct {
		ref  name.Reference
		want v1.Hash
		got  v1.Hash
		err  error
	}
	results := make([]result, pushes)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			img, err := random.Image(2048, 2)
			if err != nil {
				results[i].err = err
				return
			}
			r := ref(t, reg, fmt.Sprintf("faults/app%d:v1", i%10))
			if i%10 != i {
				r = ref(t, reg, fmt.Sprintf("faults/app%d:v%d", i%10, i))
			}
			results[i].ref = r
			results[i].want, _ = img.Digest()
			// Half the pushes exchange Azure AD tokens through the faulty token endpoints.
			kc := admin
			if i%2 == 1 {
				kc = aad
			}
			results[i].got, results[i].err = acr.Push(t.Context(), r, img, acr.WithKeychain(kc),
				acr.WithRetry(10, 20*time.Millisecond), acr.WithLogger(logger))
		}()
	}
	wg.Wait()

	s := reg.Stats()
	var ok int
	for _, res := range results {
		if res.err != nil {
			// A push that gives up says why, in a type the caller can inspect.
			var terr *transport.Error
			t.Logf("push %s failed: %v", res.ref, res.err)
			assert.True(t, errors.As(res.err, &terr) || errors.Is(res.err, acr.ErrUnauthorized), "untyped error: %v", res.err)
			continue
		}
		ok++
		assert.Equal(t, res.want, res.got)
	}
	t.Logf("%d of %d pushes completed; %d /v2 requests, faults %v", ok, pushes, s.V2Requests, s.Faults)
	assert.GreaterOrEqual(t, ok, pushes-2, "retries must get nearly every push through 20%% faults")
	assert.Positive(t, s.Faults[acrtest.FaultTooManyRequests])
	assert.Positive(t, s.Faults[acrtest.FaultReset])
	assert.Positive(t, s.Exchanges)
	assert.Contains(t, logBuf.String(), "retrying registry request")

	// With the faults over, every completed push reads back whole through the login
	// server.
	reg.SetFaultRate(0)
	for _, res := range results {
		if res.err != nil {
			continue
		}
		img, err := acr.Pull(t.Context(), res.ref, acr.WithKeychain(admin))
		require.NoError(t, err)
		require.NoError(t, validate.Image(img), "%s", res.ref)
	}

	// Straight to docker-registry: every manifest the registry holds, from failed
	// pushes too, refers only to blobs it has.
	client := &http.Client{}
	for _, res := range results {
		if res.ref == nil {
			continue
		}
		repo := res.ref.Context().RepositoryStr()
		token := reg.AccessToken("repository:" + repo + ":pull")
		get := func(method, path string) (*http.Response, []byte) {
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+reg.Backend()+"/v2/"+repo+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			req.Header.Set("Accept", "application/vnd.docker.distribution.manifest.v2+json, application/vnd.oci.image.manifest.v1+json")
			resp, err := client.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			body, err := io.ReadAll(resp.Body)
			require.NoError(t, err)
			return resp, body
		}
		tag := res.ref.Identifier()
		resp, body := get(http.MethodGet, "/manifests/"+tag)
		if res.err != nil && resp.StatusCode == http.StatusNotFound {
			continue
		}
		require.Equal(t, http.StatusOK, resp.StatusCode, "manifest %s", res.ref)
		if res.err == nil {
			assert.Equal(t, res.want.String(), resp.Header.Get("Docker-Content-Digest"))
		}
		m, err := v1.ParseManifest(bytes.NewReader(body))
		require.NoError(t, err)
		for _, d := range append([]v1.Descriptor{m.Config}, m.Layers...) {
			blob, _ := get(http.MethodHead, "/blobs/"+d.Digest.String())
			assert.Equal(t, http.StatusOK, blob.StatusCode, "%s refers to %s", res.ref, d.Digest)
		}
	}
}

func TestIntegrationSecretsStayOut(t *testing.T) {
	isolateCredentials(t)
	secret := sentinel(t)
	reg := acrtest.Start(t, acrtest.WithAdmin("hpcadmin", secret), acrtest.WithFaults(0.15, 7))

	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	// go-containerregistry's own warnings and progress lines go to the same buffer.
	oldWarn, oldProgress := logs.Warn.Writer(), logs.Progress.Writer()
	logs.Warn.SetOutput(&logBuf)
	logs.Progress.SetOutput(&logBuf)
	t.Cleanup(func() { logs.Warn.SetOutput(oldWarn); logs.Progress.SetOutput(oldProgress) })

	good := acr.NewAdminKeychain(reg.LoginServer(), "hpcadmin", secret)
	wrongSecret := secret + "x"
	bad := acr.NewAdminKeychain(reg.LoginServer(), "hpcadmin", wrongSecret)
	var errs []error
	for i := range 3 {
		img, err := random.Image(1024, 1)
		require.NoError(t, err)
		r := ref(t, reg, fmt.Sprintf("secret/app:v%d", i))
		_, err = acr.Push(t.Context(), r, img, acr.WithKeychain(good), acr.WithLogger(logger), acr.WithRetry(10, 10*time.Millisecond))
		require.NoError(t, err)
		_, err = acr.Push(t.Context(), r, img, acr.WithKeychain(bad), acr.WithLogger(logger), acr.WithRetry(10, 10*time.Millisecond))
		require.ErrorIs(t, err, acr.ErrUnauthorized)
		errs = append(errs, err)
		_, err = acr.Pull(t.Context(), r, acr.WithKeychain(bad), acr.WithLogger(logger), acr.WithRetry(10, 10*time.Millisecond))
		require.Error(t, err)
		errs = append(errs, err)
	}
	t.Setenv(acr.EnvSingularityUsername, "hpcadmin")
	t.Setenv(acr.EnvSingularityPassword, wrongSecret)
	_, err := acr.ListTags(t.Context(), ref(t, reg, "secret/app:v0").Context(), acr.WithHosts(reg.LoginServer()), acr.WithLogger(logger),
		acr.WithRetry(10, 10*time.Millisecond))
	require.ErrorIs(t, err, acr.ErrUnauthorized)
	errs = append(errs, err)

	for _, err := range errs {
		for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
			assert.NotContains(t, s, secret)
		}
	}
	assert.NotEmpty(t, logBuf.String())
	assert.NotContains(t, logBuf.String(), secret)
}

func TestIntegrationBlobRedirect(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t, acrtest.WithBlobRedirect())
	kc, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()))
	require.NoError(t, err)
	roundTrip(t, ref(t, reg, "hpc/redirect:latest"), acr.WithKeychain(kc))
	s := reg.Stats()
	assert.Positive(t, s.BlobRedirects)
	assert.Positive(t, s.StorageRequests)
	assert.Zero(t, s.StorageAuthorizations, "no credentials may follow the redirect to storage")
}

// syncBuffer is a bytes.Buffer safe for the concurrent writes of a shared logger.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestIntegrationStorageDownHidesSAS pulls through ACR's blob redirect while the
// storage it redirects to cannot be reached: the layer's error names the storage
// host, and neither it nor the log holds the SAS signature.
func TestIntegrationStorageDownHidesSAS(t *testing.T) {
	isolateCredentials(t)
	reg := acrtest.Start(t, acrtest.WithBlobRedirect())
	kc, err := acr.NewAADKeychain(reg.TokenCredential(), acr.WithHosts(reg.LoginServer()))
	require.NoError(t, err)
	r := ref(t, reg, "hpc/storage-down:v1")
	img, err := random.Image(64<<10, 1)
	require.NoError(t, err)
	_, err = acr.Push(t.Context(), r, img, acr.WithKeychain(kc))
	require.NoError(t, err)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	down := &unreachableStorage{registry: reg.LoginServer(), inner: remote.DefaultTransport, closed: ln.Addr().String()}
	require.NoError(t, ln.Close())
	var logBuf syncBuffer
	logger := slog.New(slog.NewTextHandler(&logBuf, &slog.HandlerOptions{Level: slog.LevelDebug}))
	pulled, err := acr.Pull(t.Context(), r, acr.WithKeychain(kc), acr.WithTransport(down), acr.WithLogger(logger),
		acr.WithRetry(2, 10*time.Millisecond))
	require.NoError(t, err)
	layers, err := pulled.Layers()
	require.NoError(t, err)
	_, err = layers[0].Compressed()
	require.Error(t, err)

	storageURL := down.lastURL()
	require.NotNil(t, storageURL, "the layer GET must have been redirected to storage")
	sig := storageURL.Query().Get("sig")
	require.NotEmpty(t, sig)
	// The signature is base64: in a URL it shows percent-encoded.
	for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), logBuf.String()} {
		assert.NotContains(t, s, sig)
		assert.NotContains(t, s, url.QueryEscape(sig))
	}
	var uerr *url.Error
	require.ErrorAs(t, err, &uerr)
	assert.Contains(t, uerr.URL, storageURL.Host+storageURL.Path)
	assert.Positive(t, reg.Stats().BlobRedirects)
}

// unreachableStorage sends requests for the registry on and dials a closed port for
// every other host, as if the storage ACR redirects to were down.
type unreachableStorage struct {
	registry string
	inner    http.RoundTripper
	closed   string

	mu   sync.Mutex
	last *url.URL
}

func (u *unreachableStorage) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host == u.registry {
		return u.inner.RoundTrip(req)
	}
	u.mu.Lock()
	u.last = req.URL
	u.mu.Unlock()
	out := req.Clone(req.Context())
	out.URL.Host = u.closed
	out.Host = ""
	return u.inner.RoundTrip(out)
}

func (u *unreachableStorage) lastURL() *url.URL {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.last
}
