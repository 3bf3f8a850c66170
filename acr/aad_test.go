package acr

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

func TestAADAuthenticatorRenewsBeforeExpiry(t *testing.T) {
	f := newTestACR(t, acrtest.WithRefreshTokenTTL(time.Hour))
	a, err := NewAADAuthenticator(f.host(), f.credential())
	require.NoError(t, err)
	now := time.Now()
	a.now = func() time.Time { return now }

	first, err := authn.Authorization(t.Context(), a)
	require.NoError(t, err)
	assert.Equal(t, NullGUIDUsername, first.Username)
	assert.NotEmpty(t, first.IdentityToken)
	assert.Empty(t, first.Password)

	now = now.Add(54 * time.Minute) // before exp-5m: cached
	again, err := authn.Authorization(t.Context(), a)
	require.NoError(t, err)
	assert.Equal(t, first.IdentityToken, again.IdentityToken)
	assert.EqualValues(t, 1, f.exchanges())

	now = now.Add(2 * time.Minute) // within 5m of exp: renewed
	renewed, err := authn.Authorization(t.Context(), a)
	require.NoError(t, err)
	assert.NotEqual(t, first.IdentityToken, renewed.IdentityToken)
	assert.EqualValues(t, 2, f.exchanges())
}

func TestAADAuthenticatorShortLivedToken(t *testing.T) {
	f := newTestACR(t, acrtest.WithRefreshTokenTTL(10*time.Second))
	a, err := NewAADAuthenticator(f.host(), f.credential())
	require.NoError(t, err)
	now := time.Now()
	a.now = func() time.Time { return now }
	_, err = a.Authorization()
	require.NoError(t, err)
	now = now.Add(3 * time.Second)
	_, err = a.Authorization()
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.exchanges(), "a 10s token is kept for its first half")
	now = now.Add(3 * time.Second)
	_, err = a.Authorization()
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.exchanges(), "and renewed in its second half")
}

func TestAADAuthenticatorErrors(t *testing.T) {
	f := newTestACR(t)
	sentinel := "aad-secret-" + randomString(t)

	t.Run("rejected AAD token", func(t *testing.T) {
		a, err := NewAADAuthenticator(f.host(), staticCredential(sentinel))
		require.NoError(t, err)
		_, err = a.AuthorizationContext(t.Context())
		require.ErrorIs(t, err, ErrUnauthorized)
		var aerr *AuthError
		require.ErrorAs(t, err, &aerr)
		assert.Equal(t, 401, aerr.StatusCode)
		assert.Equal(t, f.host(), aerr.Registry)
		assert.NotContains(t, err.Error(), sentinel)
		assert.Contains(t, err.Error(), "UNAUTHORIZED")
	})
	t.Run("credential failure", func(t *testing.T) {
		boom := errors.New("no managed identity here")
		a, err := NewAADAuthenticator(f.host(), failingCredential{boom})
		require.NoError(t, err)
		_, err = a.AuthorizationContext(t.Context())
		require.ErrorIs(t, err, boom)
	})
	t.Run("exchange endpoint missing", func(t *testing.T) {
		a, err := NewAADAuthenticator(f.host()+"0", f.credential(), WithRetry(1, 0))
		require.NoError(t, err)
		_, err = a.AuthorizationContext(t.Context())
		require.Error(t, err)
	})
	t.Run("bad arguments", func(t *testing.T) {
		_, err := NewAADAuthenticator("", f.credential())
		require.Error(t, err)
		_, err = NewAADAuthenticator("https://myacr.azurecr.io/", f.credential())
		require.Error(t, err)
		_, err = NewAADAuthenticator("myacr.azurecr.io", nil)
		require.Error(t, err)
	})
}

type failingCredential struct{ err error }

func (c failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	return azcore.AccessToken{}, c.err
}

func TestRegistryErrorCode(t *testing.T) {
	assert.Equal(t, "UNAUTHORIZED", registryErrorCode([]byte(`{"errors":[{"code":"UNAUTHORIZED","message":"x"}]}`)))
	assert.Empty(t, registryErrorCode([]byte(`{"errors":[{"code":"token abc.def"}]}`)))
	assert.Empty(t, registryErrorCode([]byte(`Ref A: 123`)))
	assert.Empty(t, registryErrorCode(nil))
}

func FuzzRegistryErrorCode(f *testing.F) {
	f.Add([]byte(`{"errors":[{"code":"UNAUTHORIZED"}]}`))
	f.Add([]byte(`{"errors":[]}`))
	f.Add([]byte(`Ref A: 1`))
	f.Fuzz(func(t *testing.T, body []byte) {
		code := registryErrorCode(body)
		assert.LessOrEqual(t, len(code), 64)
		assert.NotContains(t, code, " ")
	})
}

// gatedCredential is a credential whose GetToken waits for a release, or for its
// caller's context, before answering with its inner credential: it holds an exchange
// open as a slow Azure AD endpoint would.
type gatedCredential struct {
	inner   azcore.TokenCredential
	entered chan struct{}
	release chan struct{}
}

func newGatedCredential(inner azcore.TokenCredential) *gatedCredential {
	return &gatedCredential{inner: inner, entered: make(chan struct{}, 16), release: make(chan struct{})}
}

func (g *gatedCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	g.entered <- struct{}{}
	select {
	case <-g.release:
		return g.inner.GetToken(ctx, opts)
	case <-ctx.Done():
		return azcore.AccessToken{}, ctx.Err()
	}
}

type authResult struct {
	cfg *authn.AuthConfig
	err error
}

func authorizeAsync(ctx context.Context, a *AADAuthenticator) <-chan authResult {
	out := make(chan authResult, 1)
	go func() {
		cfg, err := a.AuthorizationContext(ctx)
		out <- authResult{cfg, err}
	}()
	return out
}

// waitResult returns the result of an authorization, failing the test if none comes
// while the exchange is held open: a caller that waits longer is blocked behind it.
func waitResult(t *testing.T, ch <-chan authResult) authResult {
	t.Helper()
	select {
	case r := <-ch:
		return r
	case <-time.After(30 * time.Second):
		t.Fatal("the caller is still waiting for an exchange it should not wait for")
		return authResult{}
	}
}

func TestAADAuthenticatorWaitersHonourTheirContext(t *testing.T) {
	f := newTestACR(t)
	gate := newGatedCredential(f.credential())
	a, err := NewAADAuthenticator(f.host(), gate)
	require.NoError(t, err)

	first := authorizeAsync(t.Context(), a)
	<-gate.entered // the first caller is exchanging

	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	impatient := waitResult(t, authorizeAsync(ctx, a))
	require.ErrorIs(t, impatient.err, context.DeadlineExceeded, "a waiter returns when its own context ends")

	patient := authorizeAsync(t.Context(), a)
	close(gate.release)
	got, again := waitResult(t, first), waitResult(t, patient)
	require.NoError(t, got.err)
	require.NoError(t, again.err)
	assert.Equal(t, got.cfg.IdentityToken, again.cfg.IdentityToken)
	assert.EqualValues(t, 1, f.exchanges(), "concurrent callers share one exchange")
}

func TestAADAuthenticatorWaiterTakesOverCancelledExchange(t *testing.T) {
	f := newTestACR(t)
	gate := newGatedCredential(f.credential())
	a, err := NewAADAuthenticator(f.host(), gate)
	require.NoError(t, err)

	ctx, cancel := context.WithCancel(t.Context())
	first := authorizeAsync(ctx, a)
	<-gate.entered
	second := authorizeAsync(t.Context(), a)
	cancel()
	require.ErrorIs(t, waitResult(t, first).err, context.Canceled)

	<-gate.entered // the waiter exchanges on its own context
	close(gate.release)
	got := waitResult(t, second)
	require.NoError(t, got.err, "the first caller's cancellation is not the waiter's")
	assert.NotEmpty(t, got.cfg.IdentityToken)
}
