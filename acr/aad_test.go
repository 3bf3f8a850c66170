package acr

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestAADAuthenticatorRenewsBeforeExpiry(t *testing.T) {
	f := newFakeACR(t)
	f.rtTTL = time.Hour
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
	assert.EqualValues(t, 1, f.exchanges.Load())

	now = now.Add(2 * time.Minute) // within 5m of exp: renewed
	renewed, err := authn.Authorization(t.Context(), a)
	require.NoError(t, err)
	assert.NotEqual(t, first.IdentityToken, renewed.IdentityToken)
	assert.EqualValues(t, 2, f.exchanges.Load())
}

func TestAADAuthenticatorShortLivedToken(t *testing.T) {
	f := newFakeACR(t)
	f.rtTTL = 10 * time.Second
	a, err := NewAADAuthenticator(f.host(), f.credential())
	require.NoError(t, err)
	now := time.Now()
	a.now = func() time.Time { return now }
	_, err = a.Authorization()
	require.NoError(t, err)
	now = now.Add(3 * time.Second)
	_, err = a.Authorization()
	require.NoError(t, err)
	assert.EqualValues(t, 1, f.exchanges.Load(), "a 10s token is kept for its first half")
	now = now.Add(3 * time.Second)
	_, err = a.Authorization()
	require.NoError(t, err)
	assert.EqualValues(t, 2, f.exchanges.Load(), "and renewed in its second half")
}

func TestAADAuthenticatorPrintsNoSecret(t *testing.T) {
	f := newFakeACR(t)
	a, err := NewAADAuthenticator(f.host(), f.credential())
	require.NoError(t, err)
	cfg, err := a.AuthorizationContext(t.Context())
	require.NoError(t, err)
	require.NotEmpty(t, cfg.IdentityToken)

	var logs bytes.Buffer
	slog.New(slog.NewTextHandler(&logs, nil)).Info("auth", "a", a)
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("auth", "a", a)
	for _, s := range []string{fmt.Sprint(a), fmt.Sprintf("%+v", a), fmt.Sprintf("%#v", a), logs.String()} {
		assert.Contains(t, s, f.host())
		assert.NotContains(t, s, cfg.IdentityToken)
		assert.NotContains(t, s, f.aadToken)
	}
}

func TestAADAuthenticatorErrors(t *testing.T) {
	f := newFakeACR(t)
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
