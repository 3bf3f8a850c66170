package acrtest_test

import (
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
)

func TestTokenCredential(t *testing.T) {
	r := acrtest.Start(t)
	before := time.Now()
	tok, err := r.TokenCredential().GetToken(t.Context(), policy.TokenRequestOptions{Scopes: []string{acrtest.AudienceACR + "/.default"}})
	require.NoError(t, err)
	assert.WithinDuration(t, before.Add(75*time.Minute), tok.ExpiresOn, 2*time.Second)

	parts := strings.Split(tok.Token, ".")
	require.Len(t, parts, 3)
	h, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	var header map[string]string
	require.NoError(t, json.Unmarshal(h, &header))
	assert.Equal(t, "RS256", header["alg"])
	assert.NotEmpty(t, header["kid"])
	assert.Equal(t, header["kid"], header["x5t"])

	c := claims(t, tok.Token)
	assert.Equal(t, acrtest.AudienceACR, c["aud"])
	assert.Equal(t, "https://sts.windows.net/"+r.Tenant()+"/", c["iss"])
	assert.Equal(t, r.Tenant(), c["tid"])
	assert.NotEmpty(t, c["oid"])
	assert.Equal(t, float64(tok.ExpiresOn.Unix()), c["exp"])
	assert.Less(t, c["nbf"], c["exp"])
	assert.Equal(t, 1, r.Stats().AADTokens)

	t.Run("expired", func(t *testing.T) {
		// An expired token was valid once: its nbf comes before its exp, however long ago that was.
		for _, d := range []time.Duration{-time.Minute, -time.Hour} {
			tok, err := r.TokenCredential(acrtest.WithAADTokenLifetime(d)).GetToken(t.Context(),
				policy.TokenRequestOptions{Scopes: []string{acrtest.AudienceACR + "/.default"}})
			require.NoError(t, err)
			c := claims(t, tok.Token)
			assert.Less(t, c["nbf"], c["exp"], "lifetime %v", d)
			assert.Equal(t, c["nbf"], c["iat"], "lifetime %v", d)
			assert.Less(t, c["exp"], float64(time.Now().Unix()), "lifetime %v", d)
		}
	})

	t.Run("tenant of the request", func(t *testing.T) {
		const other = "72f988bf-86f1-41af-91ab-2d7cd011db47"
		tok, err := r.TokenCredential().GetToken(t.Context(), policy.TokenRequestOptions{
			Scopes: []string{acrtest.AudienceACR + "/.default"}, TenantID: other})
		require.NoError(t, err)
		assert.Equal(t, other, claims(t, tok.Token)["tid"])
		status, _ := postForm(t, "http://"+r.LoginServer()+"/oauth2/exchange", url.Values{
			"grant_type": {"access_token"}, "service": {r.LoginServer()}, "access_token": {tok.Token}})
		assert.Equal(t, 401, status)
	})

	for name, tt := range map[string]struct {
		cred   []acrtest.CredentialOption
		scopes []string
	}{
		"no scope":      {},
		"two resources": {scopes: []string{acrtest.AudienceACR + "/.default", acrtest.AudienceARM + "/.default"}},
		"zero lifetime": {cred: []acrtest.CredentialOption{acrtest.WithAADTokenLifetime(0)}, scopes: []string{acrtest.AudienceACR + "/.default"}},
		"empty tenant":  {cred: []acrtest.CredentialOption{acrtest.WithAADTenant("")}, scopes: []string{acrtest.AudienceACR + "/.default"}},
	} {
		t.Run(name, func(t *testing.T) {
			_, err := r.TokenCredential(tt.cred...).GetToken(t.Context(), policy.TokenRequestOptions{Scopes: tt.scopes})
			assert.Error(t, err)
		})
	}
}
