package acr

import (
	"context"
	"crypto/rand"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

// testACR is the registry of the unit tests: internal/acrtest's ACR token emulation in
// front of go-containerregistry's in-memory registry. The integration tests use the
// same emulation in front of docker-registry.
type testACR struct {
	*acrtest.Registry
	cred *recordingCredential
}

func newTestACR(t *testing.T, opts ...acrtest.Option) *testACR {
	t.Helper()
	r := acrtest.Start(t, append([]acrtest.Option{acrtest.WithInMemoryRegistry()}, opts...)...)
	return &testACR{Registry: r, cred: &recordingCredential{inner: r.TokenCredential()}}
}

func (f *testACR) host() string { return f.LoginServer() }

// credential returns the registry's Azure AD stand-in, which records what it issues.
func (f *testACR) credential() azcore.TokenCredential { return f.cred }

func (f *testACR) exchanges() int { return f.Stats().Exchanges }

// recordingCredential keeps the Azure AD tokens its credential issued, so that tests
// can look for them where they must not be.
type recordingCredential struct {
	inner azcore.TokenCredential

	mu     sync.Mutex
	issued []string
}

func (c *recordingCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.inner.GetToken(ctx, opts)
	if err == nil {
		c.mu.Lock()
		c.issued = append(c.issued, tok.Token)
		c.mu.Unlock()
	}
	return tok, err
}

func (c *recordingCredential) tokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.issued...)
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
