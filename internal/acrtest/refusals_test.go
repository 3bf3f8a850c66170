package acrtest_test

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

// errorCode returns the code of the first entry of an ACR error body.
func errorCode(t *testing.T, body map[string]any) string {
	t.Helper()
	errs, ok := body["errors"].([]any)
	require.True(t, ok, "no errors in %v", body)
	require.NotEmpty(t, errs)
	code, _ := errs[0].(map[string]any)["code"].(string)
	return code
}

func TestWrongAdminPassword(t *testing.T) {
	const sentinel = "wrong-Pa55word-sentinel"
	r := acrtest.Start(t)
	user, _ := r.AdminCredentials()
	img, err := random.Image(1024, 1)
	require.NoError(t, err)
	ref, err := name.ParseReference(r.LoginServer() + "/demo/app:v1")
	require.NoError(t, err)

	err = remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithAuth(&authn.Basic{Username: user, Password: sentinel}))
	var terr *transport.Error
	require.ErrorAs(t, err, &terr)
	assert.Equal(t, http.StatusUnauthorized, terr.StatusCode)
	assert.NotContains(t, err.Error(), sentinel)
	assert.Equal(t, 1, r.Stats().TokenRefusals)
	assert.Empty(t, r.Stats().AccessTokens)
}

func TestExchangeRefusals(t *testing.T) {
	r := acrtest.Start(t)
	armOnly := acrtest.Start(t, acrtest.WithARMAudienceDisabled())

	tests := []struct {
		name     string
		registry *acrtest.Registry
		creds    []acrtest.CredentialOption
		scope    string
		form     url.Values
		method   string
		want     int
		wantCode string
	}{
		{name: "ACR audience", want: http.StatusOK},
		{name: "ARM audience", scope: acrtest.AudienceARM + "/.default", want: http.StatusOK},
		{name: "classic ARM audience", scope: acrtest.AudienceARMClassic + "/.default", want: http.StatusOK},
		{name: "matching tenant", form: url.Values{"tenant": {r.Tenant()}}, want: http.StatusOK},
		{name: "ARM audience disabled", registry: armOnly, scope: acrtest.AudienceARM + "/.default",
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "ACR audience with ARM disabled", registry: armOnly, want: http.StatusOK},
		{name: "other audience", scope: "https://storage.azure.com/.default", want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "expired", creds: []acrtest.CredentialOption{acrtest.WithAADTokenLifetime(-time.Minute)},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "other tenant", creds: []acrtest.CredentialOption{acrtest.WithAADTenant("72f988bf-86f1-41af-91ab-2d7cd011db47")},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "tenant field mismatch", form: url.Values{"tenant": {"72f988bf-86f1-41af-91ab-2d7cd011db47"}},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "forged signature", creds: []acrtest.CredentialOption{acrtest.WithUntrustedSigner()},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "deprecated grant type", form: url.Values{"grant_type": {"access_token_refresh_token"}},
			want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
		{name: "other service", form: url.Values{"service": {"other.azurecr.io"}}, want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
		{name: "no access token", form: url.Values{"access_token": {""}}, want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
		{name: "GET", method: http.MethodGet, want: http.StatusNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reg := r
			if tt.registry != nil {
				reg = tt.registry
			}
			before := reg.Stats()
			if tt.method == http.MethodGet {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+reg.LoginServer()+"/oauth2/exchange", nil)
				require.NoError(t, err)
				status, _ := do(t, req)
				assert.Equal(t, tt.want, status)
				return
			}
			scope := tt.scope
			if scope == "" {
				scope = acrtest.AudienceACR + "/.default"
			}
			status, body := exchangeFor(t, reg, reg.TokenCredential(tt.creds...), scope, tt.form)
			require.Equal(t, tt.want, status, "body %v", body)
			after := reg.Stats()
			if tt.want == http.StatusOK {
				assert.NotEmpty(t, body["refresh_token"])
				assert.Equal(t, before.Exchanges+1, after.Exchanges)
				return
			}
			assert.Equal(t, tt.wantCode, errorCode(t, body))
			msg, _ := body["errors"].([]any)[0].(map[string]any)["message"].(string)
			if tt.want == http.StatusUnauthorized {
				// ACR's own wording first, then why, as az acr login shows it.
				assert.Regexp(t, `^authentication required, visit https://aka\.ms/acr/authorization for more information\. \S`, msg)
			} else {
				assert.NotContains(t, msg, "authentication required")
			}
			assert.NotContains(t, msg, "(sent:", "credentials are echoed only WithEchoedCredentials")
			assert.NotContains(t, body, "refresh_token")
			assert.Equal(t, before.ExchangeRefusals+1, after.ExchangeRefusals)
		})
	}
}

// claims decodes a JWT's claims without verifying it.
func claims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	var c map[string]any
	require.NoError(t, json.Unmarshal(b, &c))
	return c
}

func TestTokenEndpoint(t *testing.T) {
	r := acrtest.Start(t)
	user, password := r.AdminCredentials()
	rt := refreshToken(t, r)
	at := r.AccessToken("repository:demo/app:pull")
	tokenURL := "http://" + r.LoginServer() + "/oauth2/token"
	svc := r.LoginServer()

	tests := []struct {
		name       string
		form       url.Values // POST form; nil means GET
		query      url.Values
		user, pass string // Basic auth for GET when user is set
		want       int
		wantCode   string
		wantMsg    string // the end of a refusal's message, if given
		wantGrant  acrtest.Grant
		wantAccess int
	}{
		{name: "refresh token grant", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {svc},
			"scope": {"repository:demo/app:push,pull repository:demo/base:pull"}}, want: http.StatusOK, wantGrant: acrtest.GrantRefreshToken, wantAccess: 2},
		{name: "password grant admin", form: url.Values{"grant_type": {"password"}, "username": {user}, "password": {password}, "service": {svc},
			"scope": {"repository:demo/app:pull", "registry:catalog:*"}}, want: http.StatusOK, wantGrant: acrtest.GrantPasswordAdmin, wantAccess: 2},
		{name: "password grant null GUID", form: url.Values{"grant_type": {"password"}, "username": {acrtest.NullGUID}, "password": {rt}, "service": {svc},
			"scope": {"repository:demo/app:pull"}}, want: http.StatusOK, wantGrant: acrtest.GrantPasswordRT, wantAccess: 1},
		{name: "basic admin", query: url.Values{"service": {svc}, "scope": {"repository:demo/app:pull", "repository:demo/x:pull"}},
			user: user, pass: password, want: http.StatusOK, wantGrant: acrtest.GrantBasicAdmin, wantAccess: 2},
		{name: "basic null GUID", query: url.Values{"service": {svc}}, user: acrtest.NullGUID, pass: rt,
			want: http.StatusOK, wantGrant: acrtest.GrantBasicRT},
		{name: "basic wrong password", query: url.Values{"service": {svc}}, user: user, pass: "nope", want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "basic wrong user", query: url.Values{"service": {svc}}, user: "root", pass: password, want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "basic null GUID with garbage", query: url.Values{"service": {svc}}, user: acrtest.NullGUID, pass: "x.y.z", want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "basic null GUID with an access token", query: url.Values{"service": {svc}}, user: acrtest.NullGUID, pass: at, want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "anonymous GET", query: url.Values{"service": {svc}, "scope": {"repository:demo/app:pull"}}, want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "anonymous password grant", form: url.Values{"grant_type": {"password"}, "refresh_token": {""}, "service": {svc}},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED", wantMsg: "anonymous pull is not enabled"},
		{name: "password grant without a password", form: url.Values{"grant_type": {"password"}, "username": {user}, "service": {svc}},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED", wantMsg: "wrong user name or password"},
		{name: "password grant without a user", form: url.Values{"grant_type": {"password"}, "password": {password}, "service": {svc}},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED", wantMsg: "wrong user name or password"},
		{name: "access token as refresh token", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {at}, "service": {svc}},
			want: http.StatusUnauthorized, wantCode: "UNAUTHORIZED"},
		{name: "client credentials", form: url.Values{"grant_type": {"client_credentials"}, "service": {svc}}, want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
		{name: "other service", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {"x.azurecr.io"}},
			want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
		{name: "malformed scope", form: url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {svc}, "scope": {"repository:demo"}},
			want: http.StatusBadRequest, wantCode: "BAD_REQUEST"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := r.Stats()
			var status int
			var body map[string]any
			if tt.form != nil {
				status, body = postForm(t, tokenURL, tt.form)
			} else {
				req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, tokenURL+"?"+tt.query.Encode(), nil)
				require.NoError(t, err)
				if tt.user != "" {
					req.SetBasicAuth(tt.user, tt.pass)
				}
				status, body = do(t, req)
			}
			require.Equal(t, tt.want, status, "body %v", body)
			after := r.Stats()
			if tt.want != http.StatusOK {
				assert.Equal(t, tt.wantCode, errorCode(t, body))
				assert.True(t, strings.HasSuffix(errorMessage(t, body), tt.wantMsg), errorMessage(t, body))
				assert.Equal(t, before.TokenRefusals+1, after.TokenRefusals)
				return
			}
			// ACR answers access_token only; ggcr would swap credentials on a refresh_token.
			assert.Len(t, body, 1)
			token, ok := body["access_token"].(string)
			require.True(t, ok)
			c := claims(t, token)
			assert.Equal(t, svc, c["aud"])
			access, _ := c["access"].([]any)
			assert.Len(t, access, tt.wantAccess)
			assert.Equal(t, before.AccessTokens[tt.wantGrant]+1, after.AccessTokens[tt.wantGrant])
		})
	}
}

func TestTokenExpiry(t *testing.T) {
	t.Parallel()
	t.Run("refresh token", func(t *testing.T) {
		t.Parallel()
		r := acrtest.Start(t, acrtest.WithRefreshTokenTTL(time.Second))
		rt := refreshToken(t, r)
		form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "service": {r.LoginServer()}, "scope": {"repository:demo/app:pull"}}
		status, _ := postForm(t, "http://"+r.LoginServer()+"/oauth2/token", form)
		require.Equal(t, http.StatusOK, status)

		sleepPast(t, claims(t, rt)["exp"])
		status, body := postForm(t, "http://"+r.LoginServer()+"/oauth2/token", form)
		assert.Equal(t, http.StatusUnauthorized, status)
		assert.Equal(t, "UNAUTHORIZED", errorCode(t, body))

		img, err := random.Image(1024, 1)
		require.NoError(t, err)
		ref, err := name.ParseReference(r.LoginServer() + "/demo/app:v1")
		require.NoError(t, err)
		err = remote.Write(ref, img, remote.WithContext(t.Context()), remote.WithAuth(authn.FromConfig(authn.AuthConfig{IdentityToken: rt})))
		var terr *transport.Error
		require.ErrorAs(t, err, &terr)
		assert.Equal(t, http.StatusUnauthorized, terr.StatusCode)
	})
	t.Run("access token", func(t *testing.T) {
		t.Parallel()
		r := acrtest.Start(t, acrtest.WithAccessTokenTTL(time.Second))
		at := r.AccessToken("repository:demo/app:pull,push")
		get := func(method, path, token string) *http.Response {
			req, err := http.NewRequestWithContext(t.Context(), method, "http://"+r.LoginServer()+path, nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			return resp
		}
		assert.Equal(t, http.StatusNotFound, get(http.MethodGet, "/v2/demo/app/tags/list", at).StatusCode, "accepted while valid")

		sleepPast(t, claims(t, at)["exp"])
		for _, c := range []struct{ method, path string }{
			{http.MethodGet, "/v2/demo/app/tags/list"},
			{http.MethodPost, "/v2/demo/app/blobs/uploads/"},
		} {
			resp := get(c.method, c.path, at)
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			// The challenge is what docker-registry itself sends for an invalid token.
			want := get(c.method, c.path, "not-a-token").Header.Get("WWW-Authenticate")
			assert.Equal(t, want, resp.Header.Get("WWW-Authenticate"))
			assert.Contains(t, want, `error="invalid_token"`)
		}
		assert.Equal(t, 2, r.Stats().ExpiredAccessTokens)
	})
}

// sleepPast sleeps until the JWT time exp (seconds) has passed.
func sleepPast(t *testing.T, exp any) {
	t.Helper()
	secs, ok := exp.(float64)
	require.True(t, ok, "exp %v", exp)
	time.Sleep(time.Until(time.Unix(int64(secs), 0)) + 10*time.Millisecond)
}

func TestChallenge(t *testing.T) {
	forEachBackend(t, testChallenge)
}

func testChallenge(t *testing.T, opts ...acrtest.Option) {
	r := acrtest.Start(t, opts...)
	ls := r.LoginServer()
	_, port, _ := strings.Cut(ls, ":")
	tests := []struct {
		name, method, path, host, want string
	}{
		{name: "ping", method: http.MethodGet, path: "/v2/",
			want: `Bearer realm="http://` + ls + `/oauth2/token",service="` + ls + `"`},
		{name: "pull", method: http.MethodGet, path: "/v2/demo/app/manifests/v1",
			want: `Bearer realm="http://` + ls + `/oauth2/token",service="` + ls + `",scope="repository:demo/app:pull"`},
		{name: "push", method: http.MethodPost, path: "/v2/demo/app/blobs/uploads/",
			want: `Bearer realm="http://` + ls + `/oauth2/token",service="` + ls + `",scope="repository:demo/app:pull,push"`},
		{name: "catalog", method: http.MethodGet, path: "/v2/_catalog",
			want: `Bearer realm="http://` + ls + `/oauth2/token",service="` + ls + `",scope="registry:catalog:*"`},
		{name: "realm follows the client's host", method: http.MethodGet, path: "/v2/", host: "localhost:" + port,
			want: `Bearer realm="http://localhost:` + port + `/oauth2/token",service="` + ls + `"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, "http://"+ls+tt.path, nil)
			require.NoError(t, err)
			if tt.host != "" {
				req.Host = tt.host
			}
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusUnauthorized, resp.StatusCode)
			assert.Equal(t, tt.want, resp.Header.Get("WWW-Authenticate"))
			var body map[string]any
			require.NoError(t, json.NewDecoder(resp.Body).Decode(&body))
			assert.Equal(t, "UNAUTHORIZED", errorCode(t, body))
		})
	}
}

// Check that errors from the token endpoint surface in ggcr as transport errors, so the
// acr package's typed errors can be built on them.
func TestRefusalIsTransportError(t *testing.T) {
	forEachBackend(t, testRefusalIsTransportError)
}

func testRefusalIsTransportError(t *testing.T, opts ...acrtest.Option) {
	r := acrtest.Start(t, opts...)
	ref, err := name.ParseReference(r.LoginServer() + "/demo/app:v1")
	require.NoError(t, err)
	_, err = remote.Image(ref, remote.WithContext(t.Context()), remote.WithAuth(&authn.Basic{Username: acrtest.NullGUID, Password: "x.y.z"}))
	var terr *transport.Error
	require.True(t, errors.As(err, &terr), "%v", err)
	assert.Equal(t, http.StatusUnauthorized, terr.StatusCode)
}

// errorMessage returns the message of the first entry of an ACR error body.
func errorMessage(t *testing.T, body map[string]any) string {
	t.Helper()
	errs, _ := body["errors"].([]any)
	require.NotEmpty(t, errs, "no errors in %v", body)
	msg, _ := errs[0].(map[string]any)["message"].(string)
	return msg
}

// TestRefusalMessages: what a refused token request reads, with and without WithEchoedCredentials, and the
// refusals of requests that are not token requests at all.
func TestRefusalMessages(t *testing.T) {
	plain := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	echo := acrtest.Start(t, acrtest.WithInMemoryRegistry(), acrtest.WithEchoedCredentials())
	for _, tt := range []struct {
		name string
		r    *acrtest.Registry
		echo bool
	}{{"plain", plain, false}, {"echoed", echo, true}} {
		t.Run(tt.name, func(t *testing.T) {
			user, _ := tt.r.AdminCredentials()
			tokenURL := "http://" + tt.r.LoginServer() + "/oauth2/token"
			status, body := postForm(t, tokenURL, url.Values{"grant_type": {"password"}, "username": {user}, "password": {"wrong-secret"}, "service": {tt.r.LoginServer()}})
			require.Equal(t, http.StatusUnauthorized, status)
			msg := errorMessage(t, body)
			assert.True(t, strings.HasPrefix(msg, "authentication required"), msg)
			if tt.echo {
				assert.Contains(t, msg, "(sent: username="+user+", password=wrong-secret)")
			} else {
				assert.NotContains(t, msg, "wrong-secret")
				assert.NotContains(t, msg, "sent:")
			}

			// A refusal that is not about credentials never echoes them.
			status, body = postForm(t, tokenURL, url.Values{"grant_type": {"client_credentials"}, "password": {"other-secret"}, "service": {tt.r.LoginServer()}})
			require.Equal(t, http.StatusBadRequest, status)
			assert.NotContains(t, errorMessage(t, body), "other-secret")
		})
	}

	tokenURL := "http://" + plain.LoginServer() + "/oauth2/token"
	big := url.Values{"grant_type": {"password"}, "pad": {strings.Repeat("x", 1<<20)}}
	status, body := postForm(t, tokenURL, big)
	require.Equal(t, http.StatusBadRequest, status, "a form over 1 MiB")
	assert.Equal(t, "BAD_REQUEST", errorCode(t, body))
	assert.Contains(t, errorMessage(t, body), "malformed form")

	req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+plain.LoginServer()+"/oauth2/exchange", nil)
	require.NoError(t, err)
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusNotFound, resp.StatusCode, "ACR answers a GET of the exchange endpoint with 404")
}

// TestRegistryRefreshToken: the refresh token the registry hands to tests works at the token endpoint as one
// from /oauth2/exchange does, for the principal of TokenCredential.
func TestRegistryRefreshToken(t *testing.T) {
	r := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	rt := r.RefreshToken()
	require.NotEmpty(t, rt)
	status, body := postForm(t, "http://"+r.LoginServer()+"/oauth2/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
		"service": {r.LoginServer()}, "scope": {"repository:demo/app:pull"}})
	require.Equal(t, http.StatusOK, status, "%v", body)
	token, _ := body["access_token"].(string)
	c := claims(t, token)
	assert.Equal(t, r.LoginServer(), c["aud"])
	assert.Equal(t, 1, r.Stats().AccessTokens[acrtest.GrantRefreshToken])
}
