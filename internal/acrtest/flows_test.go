package acrtest_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

// exchange trades an Azure AD token from cred for an ACR refresh token, as the acr
// package does, and returns the HTTP status and the decoded body.
func exchange(t *testing.T, r *acrtest.Registry, cred azcore.TokenCredential, form url.Values) (int, map[string]any) {
	t.Helper()
	return exchangeFor(t, r, cred, acrtest.AudienceACR+"/.default", form)
}

// exchangeFor is exchange with an Azure AD token for scope.
func exchangeFor(t *testing.T, r *acrtest.Registry, cred azcore.TokenCredential, scope string, form url.Values) (int, map[string]any) {
	t.Helper()
	tok, err := cred.GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{scope}})
	require.NoError(t, err)
	f := url.Values{"grant_type": {"access_token"}, "service": {r.LoginServer()}, "access_token": {tok.Token}}
	for k, v := range form {
		f[k] = v
	}
	return postForm(t, "http://"+r.LoginServer()+"/oauth2/exchange", f)
}

func postForm(t *testing.T, u string, form url.Values) (int, map[string]any) {
	t.Helper()
	req, err := http.NewRequestWithContext(t.Context(), http.MethodPost, u, strings.NewReader(form.Encode()))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return do(t, req)
}

func do(t *testing.T, req *http.Request) (int, map[string]any) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	var body map[string]any
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
	}
	return resp.StatusCode, body
}

func refreshToken(t *testing.T, r *acrtest.Registry) string {
	t.Helper()
	status, body := exchange(t, r, r.TokenCredential(), nil)
	require.Equal(t, http.StatusOK, status, "exchange: %v", body)
	rt, ok := body["refresh_token"].(string)
	require.True(t, ok, "exchange answered %v", body)
	return rt
}

// roundTrip pushes a random image to repo with auth, pulls it back and checks it.
func roundTrip(ctx context.Context, t *testing.T, r *acrtest.Registry, repo string, auth authn.Authenticator, opts ...remote.Option) v1.Hash {
	t.Helper()
	img, err := random.Image(64<<10, 2)
	require.NoError(t, err)
	ref, err := name.ParseReference(r.LoginServer() + "/" + repo + ":v1")
	require.NoError(t, err)
	opts = append([]remote.Option{remote.WithContext(ctx), remote.WithAuth(auth)}, opts...)
	require.NoError(t, remote.Write(ref, img, opts...))

	got, err := remote.Image(ref, opts...)
	require.NoError(t, err)
	require.NoError(t, validate.Image(got))
	want, err := img.Digest()
	require.NoError(t, err)
	gotDigest, err := got.Digest()
	require.NoError(t, err)
	assert.Equal(t, want, gotDigest)
	return want
}

func TestPushPull(t *testing.T) {
	forEachBackend(t, testPushPull)
}

func testPushPull(t *testing.T, opts ...acrtest.Option) {
	r := acrtest.Start(t, opts...)
	user, password := r.AdminCredentials()

	tests := []struct {
		name  string
		auth  func(t *testing.T) authn.Authenticator
		grant acrtest.Grant
	}{
		{
			name: "identity token from the exchange",
			auth: func(t *testing.T) authn.Authenticator {
				return authn.FromConfig(authn.AuthConfig{Username: acrtest.NullGUID, IdentityToken: refreshToken(t, r)})
			},
			grant: acrtest.GrantRefreshToken,
		},
		{
			name:  "admin basic",
			auth:  func(*testing.T) authn.Authenticator { return &authn.Basic{Username: user, Password: password} },
			grant: acrtest.GrantBasicAdmin,
		},
		{
			name: "null GUID with the refresh token as password",
			auth: func(t *testing.T) authn.Authenticator {
				return &authn.Basic{Username: acrtest.NullGUID, Password: refreshToken(t, r)}
			},
			grant: acrtest.GrantBasicRT,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.Stats().AccessTokens[tt.grant]
			roundTrip(t.Context(), t, r, "demo/"+strings.ToLower(strings.ReplaceAll(tt.name, " ", "-")), tt.auth(t))
			assert.Greater(t, r.Stats().AccessTokens[tt.grant], before, "access tokens granted by %s", tt.grant)
		})
	}
}

// forEachBackend runs test against docker-registry and against the in-memory registry,
// which must behave alike behind the proxy.
func forEachBackend(t *testing.T, test func(t *testing.T, opts ...acrtest.Option)) {
	t.Run("docker-registry", func(t *testing.T) { test(t) })
	t.Run("in-memory", func(t *testing.T) { test(t, acrtest.WithInMemoryRegistry()) })
}
