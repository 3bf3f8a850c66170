package acr

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

// exchangeServer answers /oauth2/exchange with a fixed status and body and records the forms it got.
type exchangeServer struct {
	status int
	body   string
	// truncate, if set, promises more body than it sends and drops the connection.
	truncate bool

	mu    sync.Mutex
	forms []url.Values
	heads []http.Header
}

func (s *exchangeServer) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.URL.Path != "/oauth2/exchange" || req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	_ = req.ParseForm()
	s.mu.Lock()
	s.forms = append(s.forms, req.PostForm)
	s.heads = append(s.heads, req.Header.Clone())
	s.mu.Unlock()
	if s.truncate {
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = io.WriteString(w, `{"refresh_token":"`)
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
	w.WriteHeader(s.status)
	_, _ = io.WriteString(w, s.body)
}

func startExchange(t *testing.T, s *exchangeServer) string {
	t.Helper()
	srv := httptest.NewServer(s)
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://")
}

// TestExchangeStatusMapping checks what each answer of /oauth2/exchange becomes: 200 with a refresh token
// is a credential; 401 and 403 are an *AuthError (ErrUnauthorized) that unwraps to the *ExchangeError with
// the registry's code; every other status, 2xx ones included, is an *ExchangeError alone; a 200 without a
// refresh token is a plain error. No error carries the Azure AD token.
func TestExchangeStatusMapping(t *testing.T) {
	const aadToken = "aad-token-that-must-not-leak"
	refresh := jwtWithClaims(fmt.Sprintf(`{"exp":%d}`, time.Now().Add(time.Hour).Unix()))
	errBody := `{"errors":[{"code":"DENIED","message":"` + aadToken + `"}]}`
	tests := []struct {
		name       string
		status     int
		body       string
		wantToken  string
		wantAuth   bool
		wantStatus int
		wantCode   string
		wantText   string
	}{
		{name: "200 with a refresh token", status: 200, body: `{"refresh_token":"` + refresh + `"}`, wantToken: refresh},
		{name: "200 with an opaque refresh token", status: 200, body: `{"refresh_token":"opaque"}`, wantToken: "opaque"},
		{name: "201 is not an answer", status: 201, body: `{"refresh_token":"` + refresh + `"}`, wantStatus: 201},
		{name: "400", status: 400, body: errBody, wantStatus: 400, wantCode: "DENIED"},
		{name: "401", status: 401, body: errBody, wantAuth: true, wantStatus: 401, wantCode: "DENIED"},
		{name: "402", status: 402, body: errBody, wantStatus: 402, wantCode: "DENIED"},
		{name: "403", status: 403, body: errBody, wantAuth: true, wantStatus: 403, wantCode: "DENIED"},
		{name: "404 without a code", status: 404, body: "Ref A: 1234", wantStatus: 404},
		{name: "500 after its one attempt", status: 500, body: errBody, wantStatus: 500, wantCode: "DENIED"},
		{name: "200 without a refresh token", status: 200, body: `{"access_token":"x"}`, wantText: "answer has no refresh_token"},
		{name: "200 with an empty refresh token", status: 200, body: `{"refresh_token":""}`, wantText: "answer has no refresh_token"},
		{name: "200 that is not JSON", status: 200, body: `<html>`, wantText: "answer has no refresh_token"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			host := startExchange(t, &exchangeServer{status: tt.status, body: tt.body})
			a, err := NewAADAuthenticator(host, staticCredential(aadToken), WithRetry(1, 0))
			require.NoError(t, err)
			cfg, err := a.AuthorizationContext(t.Context())
			if tt.wantToken != "" {
				require.NoError(t, err)
				assert.Equal(t, authn.AuthConfig{Username: NullGUIDUsername, IdentityToken: tt.wantToken}, *cfg)
				return
			}
			require.Error(t, err)
			assert.Nil(t, cfg)
			assert.NotContains(t, err.Error(), aadToken)
			assert.Equal(t, tt.wantAuth, errors.Is(err, ErrUnauthorized), "errors.Is(err, ErrUnauthorized)")
			var aerr *AuthError
			assert.Equal(t, tt.wantAuth, errors.As(err, &aerr), "an *AuthError")
			if tt.wantAuth {
				assert.Equal(t, host, aerr.Registry)
				assert.Equal(t, tt.wantStatus, aerr.StatusCode)
			}
			var xerr *ExchangeError
			if tt.wantStatus == 0 {
				assert.False(t, errors.As(err, &xerr), "no *ExchangeError")
				assert.Contains(t, err.Error(), tt.wantText)
				return
			}
			require.ErrorAs(t, err, &xerr)
			assert.Equal(t, ExchangeError{Registry: host, StatusCode: tt.wantStatus, Code: tt.wantCode}, *xerr)
			assert.Contains(t, err.Error(), fmt.Sprintf("%d %s", tt.wantStatus, http.StatusText(tt.wantStatus)))
			if tt.wantCode != "" {
				assert.Contains(t, err.Error(), "("+tt.wantCode+")")
			} else {
				assert.NotContains(t, err.Error(), "(")
			}
		})
	}
}

// TestExchangeTruncatedAnswer drops the connection in the middle of a 200 answer: the error says the
// answer could not be read and nothing is cached.
func TestExchangeTruncatedAnswer(t *testing.T) {
	s := &exchangeServer{truncate: true}
	a, err := NewAADAuthenticator(startExchange(t, s), staticCredential("aad"), WithRetry(1, 0))
	require.NoError(t, err)
	for range 2 {
		_, err = a.AuthorizationContext(t.Context())
		require.Error(t, err)
		assert.Contains(t, err.Error(), "reading the answer")
		assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
	}
	assert.Len(t, s.forms, 2, "a failed exchange is not cached")
}

// TestExchangeRequest checks the form and headers sent to /oauth2/exchange, with and without a tenant.
func TestExchangeRequest(t *testing.T) {
	for _, tenant := range []string{"", "72f988bf-86f1-41af-91ab-2d7cd011db47"} {
		t.Run("tenant="+tenant, func(t *testing.T) {
			s := &exchangeServer{status: 200, body: `{"refresh_token":"opaque"}`}
			host := startExchange(t, s)
			opts := []Option{WithUserAgent("hpcship-test/1")}
			if tenant != "" {
				opts = append(opts, WithTenant(tenant))
			}
			a, err := NewAADAuthenticator(host, staticCredential("aad-token"), opts...)
			require.NoError(t, err)
			_, err = a.AuthorizationContext(t.Context())
			require.NoError(t, err)
			require.Len(t, s.forms, 1)
			want := url.Values{"grant_type": {"access_token"}, "service": {host}, "access_token": {"aad-token"}}
			if tenant != "" {
				want.Set("tenant", tenant)
			}
			assert.Equal(t, want, s.forms[0])
			assert.Equal(t, "application/x-www-form-urlencoded", s.heads[0].Get("Content-Type"))
			assert.Equal(t, "hpcship-test/1", s.heads[0].Get("User-Agent"))
		})
	}
}

// TestRefreshTokenRenewal pins when a cached refresh token is replaced: at exp minus five minutes, or
// halfway through a shorter life, and at once for a token without a readable or future exp.
func TestRefreshTokenRenewal(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	tests := []struct {
		name string
		life time.Duration // 0: opaque token without exp
		// renewAfter is how long after the exchange the token is replaced; it is kept until just before.
		renewAfter time.Duration
	}{
		{name: "three hours", life: 3 * time.Hour, renewAfter: 3*time.Hour - 5*time.Minute},
		{name: "ten minutes: margin and half are equal", life: 10 * time.Minute, renewAfter: 5 * time.Minute},
		{name: "eleven minutes: the margin", life: 11 * time.Minute, renewAfter: 6 * time.Minute},
		{name: "nine minutes: half", life: 9 * time.Minute, renewAfter: 270 * time.Second},
		{name: "two seconds: half", life: 2 * time.Second, renewAfter: time.Second},
		{name: "already expired", life: -time.Minute, renewAfter: 0},
		{name: "no exp", life: 0, renewAfter: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token := "opaque"
			if tt.life != 0 {
				token = jwtWithClaims(fmt.Sprintf(`{"exp":%d}`, now.Add(tt.life).Unix()))
			}
			s := &exchangeServer{status: 200, body: `{"refresh_token":"` + token + `"}`}
			a, err := NewAADAuthenticator(startExchange(t, s), staticCredential("aad"))
			require.NoError(t, err)
			clock := now
			a.now = func() time.Time { return clock }

			_, err = a.AuthorizationContext(t.Context())
			require.NoError(t, err)
			require.Len(t, s.forms, 1)
			if tt.renewAfter > 0 {
				clock = now.Add(tt.renewAfter - time.Nanosecond)
				_, err = a.AuthorizationContext(t.Context())
				require.NoError(t, err)
				assert.Len(t, s.forms, 1, "kept until just before %s", tt.renewAfter)
			}
			clock = now.Add(tt.renewAfter)
			_, err = a.AuthorizationContext(t.Context())
			require.NoError(t, err)
			assert.Len(t, s.forms, 2, "replaced at %s", tt.renewAfter)
		})
	}
}

// TestExchangeAudience: the Azure AD token exchanged is for the scope WithAADScope names, ACR's own by
// default.
func TestExchangeAudience(t *testing.T) {
	for _, tt := range []struct {
		opts []Option
		want string
	}{
		{want: acrtest.AudienceACR},
		{opts: []Option{WithAADScope(acrtest.AudienceARM + "/.default")}, want: acrtest.AudienceARM},
	} {
		f := newTestACR(t)
		a, err := NewAADAuthenticator(f.host(), f.credential(), tt.opts...)
		require.NoError(t, err)
		_, err = a.AuthorizationContext(t.Context())
		require.NoError(t, err)
		assert.Equal(t, map[string]int{tt.want: 1}, f.Stats().ExchangeAudiences)
	}
}
