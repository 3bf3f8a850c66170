package acr

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/stretchr/testify/require"
)

// fakeACR is a unit-test stand-in for ACR's token endpoints in front of
// go-containerregistry's in-memory registry, all on one httptest server as ACR
// serves them. The integration tests use internal/acrtest and a real registry.
type fakeACR struct {
	srv       *httptest.Server
	aadToken  string
	adminUser string
	adminPass string
	rtTTL     time.Duration
	atTTL     time.Duration

	mu     sync.Mutex
	issued map[string]time.Time // token → expiry

	exchanges atomic.Int32
	tokens    atomic.Int32
}

func newFakeACR(t *testing.T) *fakeACR {
	f := &fakeACR{
		aadToken:  "aad-" + randomString(t),
		adminUser: "fakeacr",
		adminPass: "admin-" + randomString(t),
		rtTTL:     3 * time.Hour,
		atTTL:     75 * time.Minute,
		issued:    map[string]time.Time{},
	}
	reg := registry.New()
	mux := http.NewServeMux()
	mux.HandleFunc("/oauth2/exchange", f.exchange)
	mux.HandleFunc("/oauth2/token", f.token)
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if !f.valid(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")) {
			w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/oauth2/token",service="%s"`, r.Host, r.Host))
			http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
	f.srv = httptest.NewServer(mux)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeACR) host() string { return strings.TrimPrefix(f.srv.URL, "http://") }

func (f *fakeACR) credential() azcore.TokenCredential { return staticCredential(f.aadToken) }

func (f *fakeACR) mint(ttl time.Duration, kind string) string {
	exp := time.Now().Add(ttl)
	claims, _ := json.Marshal(map[string]any{"exp": exp.Unix(), "grant_type": kind, "jti": rand.Text()})
	tok := "eyJhbGciOiJub25lIn0." + base64.RawURLEncoding.EncodeToString(claims) + ".c2ln"
	f.mu.Lock()
	f.issued[tok] = exp
	f.mu.Unlock()
	return tok
}

func (f *fakeACR) valid(tok string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	exp, ok := f.issued[tok]
	return ok && time.Now().Before(exp)
}

func (f *fakeACR) exchange(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.NotFound(w, r)
		return
	}
	f.exchanges.Add(1)
	if r.PostFormValue("grant_type") != "access_token" || r.PostFormValue("access_token") != f.aadToken ||
		r.PostFormValue("service") != r.Host {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad token"}]}`, http.StatusUnauthorized)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"refresh_token": f.mint(f.rtTTL, "refresh_token")})
}

func (f *fakeACR) token(w http.ResponseWriter, r *http.Request) {
	f.tokens.Add(1)
	ok := false
	switch r.Method {
	case http.MethodPost:
		ok = r.PostFormValue("grant_type") == "refresh_token" && f.valid(r.PostFormValue("refresh_token"))
	case http.MethodGet:
		user, pass, _ := r.BasicAuth()
		ok = user == f.adminUser && pass == f.adminPass || user == NullGUIDUsername && f.valid(pass)
	}
	if !ok {
		http.Error(w, `{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}`, http.StatusUnauthorized)
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]string{"access_token": f.mint(f.atTTL, "access_token")})
}

// staticCredential is an azcore.TokenCredential that always returns one token.
type staticCredential string

func (s staticCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{Token: string(s), ExpiresOn: time.Now().Add(time.Hour)}, nil
}

func randomString(t testing.TB) string {
	t.Helper()
	return strings.ToLower(rand.Text())
}

// staticBasic is an authenticator with a fixed user name and password.
type staticBasic struct{ user, pass string }

func (s *staticBasic) Authorization() (*authn.AuthConfig, error) {
	return &authn.AuthConfig{Username: s.user, Password: s.pass}, nil
}

func mustRef(t testing.TB, s string) name.Reference {
	t.Helper()
	ref, err := name.ParseReference(s)
	require.NoError(t, err)
	return ref
}
