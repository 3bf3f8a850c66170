package acrtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// libtrustVector is the key ID docker/libtrust's KeyID() returns for the public key of
// testdata/libtrust-rsa2048.pem (computed once with libtrust itself, commit aabc10e).
const libtrustVector = "LJPX:L7FE:7OHY:6B57:PRJW:UJWK:HSQE:NGMR:HGFC:RVXA:XSF5:AIPR"

func testKey(t testing.TB) *rsa.PrivateKey {
	t.Helper()
	b, err := os.ReadFile("testdata/libtrust-rsa2048.pem")
	require.NoError(t, err)
	block, _ := pem.Decode(b)
	require.NotNil(t, block)
	key, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	require.NoError(t, err)
	return key.(*rsa.PrivateKey)
}

func TestLibtrustKeyID(t *testing.T) {
	got, err := libtrustKeyID(&testKey(t).PublicKey)
	require.NoError(t, err)
	assert.Equal(t, libtrustVector, got)

	// A key x509 cannot encode has neither ID.
	_, err = libtrustKeyID(struct{}{})
	assert.ErrorContains(t, err, "encoding public key")
	_, err = thumbprint(struct{}{})
	assert.ErrorContains(t, err, "encoding public key")
}

// signRaw signs header.payload as they are, encoded or not, so that a token can be
// malformed after its signature.
func signRaw(t *testing.T, key *rsa.PrivateKey, header, payload string) string {
	t.Helper()
	digest := sha256.Sum256([]byte(header + "." + payload))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	require.NoError(t, err)
	return header + "." + payload + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestSignVerify(t *testing.T) {
	key := testKey(t)
	s := &signer{key: key, kid: libtrustVector}
	token, err := s.sign(acrClaims{Sub: "someone", Aud: "svc", Exp: 1795888098})
	require.NoError(t, err)

	parts := strings.Split(token, ".")
	require.Len(t, parts, 3)
	header, err := base64.RawURLEncoding.DecodeString(parts[0])
	require.NoError(t, err)
	assert.JSONEq(t, `{"typ":"JWT","alg":"RS256","kid":"`+libtrustVector+`"}`, string(header))
	claims, err := base64.RawURLEncoding.DecodeString(parts[1])
	require.NoError(t, err)
	// docker-registry needs a string aud and integer times.
	assert.Contains(t, string(claims), `"aud":"svc"`)
	assert.Contains(t, string(claims), `"exp":1795888098`)

	var got acrClaims
	require.NoError(t, s.verify(token, &got))
	assert.Equal(t, "someone", got.Sub)

	other, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	forged, err := (&signer{key: other, kid: libtrustVector}).sign(acrClaims{Sub: "someone"})
	require.NoError(t, err)
	tampered := parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"sub":"admin"}`)) + "." + parts[2]
	b64 := base64.RawURLEncoding.EncodeToString
	// One row per check, in the order verify makes them: each token passes the checks before.
	for _, tt := range []struct{ name, token, reason string }{
		{"two parts", parts[0] + "." + parts[1], "not a compact JWS"},
		{"four parts", token + ".x", "not a compact JWS"},
		{"garbage", "a.b.c", "header encoding"},
		{"header not JSON", b64([]byte(`not json`)) + "." + parts[1] + "." + parts[2], "header"},
		{"alg none", b64([]byte(`{"alg":"none","kid":"`+libtrustVector+`"}`)) + "." + parts[1] + ".", `algorithm "none"`},
		{"other kid", mustSign(t, &signer{key: key, kid: "AAAA"}, acrClaims{}), "signed by an unknown key"},
		{"signature not base64url", parts[0] + "." + parts[1] + ".+/+/", "signature encoding"},
		{"other key", forged, "bad signature"},
		{"tampered claims", tampered, "bad signature"},
		{"claims not base64url", signRaw(t, key, parts[0], "e30+"), "claims encoding"},
		{"claims not JSON", signRaw(t, key, parts[0], b64([]byte(`[1]`))), "claims"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := s.verify(tt.token, &got)
			require.ErrorIs(t, err, errInvalidToken)
			assert.Equal(t, "invalid token: "+tt.reason, err.Error())
		})
	}
}

func mustSign(t *testing.T, s *signer, claims any) string {
	t.Helper()
	token, err := s.sign(claims)
	require.NoError(t, err)
	return token
}

func FuzzVerify(f *testing.F) {
	key := testKey(f)
	s := &signer{key: key, kid: libtrustVector}
	f.Add(mustSignF(f, s))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		var c acrClaims
		if err := s.verify(token, &c); err != nil {
			assert.ErrorIs(t, err, errInvalidToken)
			if len(token) > 16 {
				assert.NotContains(t, err.Error(), token, "the error must not echo the token")
			}
		}
	})
}

func mustSignF(f *testing.F, s *signer) string {
	token, err := s.sign(acrClaims{Sub: "x", Aud: "y", Exp: 1})
	require.NoError(f, err)
	return token
}

// TestRegistryAcceptsAccessTokens checks with docker-registry itself that the access
// tokens are in the format it accepts, and that it refuses the variants it must; and
// that the in-memory registry's token check, behind the proxy, agrees.
func TestRegistryAcceptsAccessTokens(t *testing.T) {
	t.Run("docker-registry", func(t *testing.T) {
		r := Start(t)
		testRegistryAcceptsAccessTokens(t, r, r.Backend())
	})
	t.Run("in-memory", func(t *testing.T) {
		r := Start(t, WithInMemoryRegistry())
		testRegistryAcceptsAccessTokens(t, r, r.LoginServer())
	})
}

func testRegistryAcceptsAccessTokens(t *testing.T, r *Registry, host string) {
	now := time.Now()
	valid := acrClaims{
		Iss: issuer, Aud: r.service, Sub: "admin", Nbf: now.Unix(), Iat: now.Unix(), Exp: now.Add(time.Minute).Unix(),
		Access: []accessEntry{{Type: "repository", Name: "demo/app", Actions: []string{"pull"}}},
	}
	otherKey, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	otherKID, err := libtrustKeyID(&otherKey.PublicKey)
	require.NoError(t, err)

	tests := []struct {
		name   string
		signer *signer
		claims func(c acrClaims) acrClaims
		want   int
	}{
		// 404 NAME_UNKNOWN: the token was accepted and the repository does not exist.
		{name: "valid", signer: r.acrKey, want: http.StatusNotFound},
		{name: "untrusted key", signer: &signer{key: otherKey, kid: otherKID}, want: http.StatusUnauthorized},
		{name: "trusted kid, wrong key", signer: &signer{key: otherKey, kid: r.acrKey.kid}, want: http.StatusUnauthorized},
		{name: "wrong audience", signer: r.acrKey, claims: func(c acrClaims) acrClaims { c.Aud = "elsewhere"; return c }, want: http.StatusUnauthorized},
		{name: "wrong issuer", signer: r.acrKey, claims: func(c acrClaims) acrClaims { c.Iss = "someone"; return c }, want: http.StatusUnauthorized},
		{name: "other repository", signer: r.acrKey, claims: func(c acrClaims) acrClaims {
			c.Access = []accessEntry{{Type: "repository", Name: "demo/other", Actions: []string{"pull"}}}
			return c
		}, want: http.StatusUnauthorized},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := valid
			if tt.claims != nil {
				c = tt.claims(c)
			}
			token := mustSign(t, tt.signer, c)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/v2/demo/app/tags/list", nil)
			require.NoError(t, err)
			req.Header.Set("Authorization", "Bearer "+token)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
		})
	}
}
