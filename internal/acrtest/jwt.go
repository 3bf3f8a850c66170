package acrtest

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha1"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
)

// errInvalidToken is the cause behind every rejected JWT; its message never contains the token.
var errInvalidToken = errors.New("invalid token")

// jwtHeader is the JOSE header of every token the test bed signs.
type jwtHeader struct {
	Typ string `json:"typ"`
	Alg string `json:"alg"`
	Kid string `json:"kid"`
	X5t string `json:"x5t,omitempty"`
}

// signer signs RS256 JWTs with one RSA key and names the key in the header.
type signer struct {
	key *rsa.PrivateKey
	kid string
	x5t string // set for Azure AD style headers, which carry the thumbprint twice
}

// sign returns the compact serialization of claims signed with s's key.
func (s *signer) sign(claims any) (string, error) {
	h, err := json.Marshal(jwtHeader{Typ: "JWT", Alg: "RS256", Kid: s.kid, X5t: s.x5t})
	if err != nil {
		return "", err
	}
	c, err := json.Marshal(claims)
	if err != nil {
		return "", err
	}
	b64 := base64.RawURLEncoding
	input := b64.EncodeToString(h) + "." + b64.EncodeToString(c)
	digest := sha256.Sum256([]byte(input))
	sig, err := rsa.SignPKCS1v15(rand.Reader, s.key, crypto.SHA256, digest[:])
	if err != nil {
		return "", fmt.Errorf("signing token: %w", err)
	}
	return input + "." + b64.EncodeToString(sig), nil
}

// verify checks that token is an RS256 JWT signed by s's key and decodes its claims into
// claims. Times and audiences are the caller's to check.
func (s *signer) verify(token string, claims any) error {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return fmt.Errorf("%w: not a compact JWS", errInvalidToken)
	}
	b64 := base64.RawURLEncoding
	rawHeader, err := b64.DecodeString(parts[0])
	if err != nil {
		return fmt.Errorf("%w: header encoding", errInvalidToken)
	}
	var h jwtHeader
	if err := json.Unmarshal(rawHeader, &h); err != nil {
		return fmt.Errorf("%w: header", errInvalidToken)
	}
	if h.Alg != "RS256" {
		return fmt.Errorf("%w: algorithm %q", errInvalidToken, h.Alg)
	}
	if h.Kid != s.kid {
		return fmt.Errorf("%w: signed by an unknown key", errInvalidToken)
	}
	sig, err := b64.DecodeString(parts[2])
	if err != nil {
		return fmt.Errorf("%w: signature encoding", errInvalidToken)
	}
	digest := sha256.Sum256([]byte(parts[0] + "." + parts[1]))
	if err := rsa.VerifyPKCS1v15(&s.key.PublicKey, crypto.SHA256, digest[:], sig); err != nil {
		return fmt.Errorf("%w: bad signature", errInvalidToken)
	}
	rawClaims, err := b64.DecodeString(parts[1])
	if err != nil {
		return fmt.Errorf("%w: claims encoding", errInvalidToken)
	}
	if err := json.Unmarshal(rawClaims, claims); err != nil {
		return fmt.Errorf("%w: claims", errInvalidToken)
	}
	return nil
}

// libtrustKeyID returns the key ID docker-registry derives for pub (libtrust's format):
// the SHA-256 of the DER SubjectPublicKeyInfo, truncated to 240 bits, base32-encoded and
// grouped as 12 blocks of 4 characters. The registry trusts a token's kid only if it is
// the ID of a certificate key in its rootcertbundle.
func libtrustKeyID(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha256.Sum256(der)
	s := base32.StdEncoding.EncodeToString(sum[:30])
	groups := make([]string, 0, len(s)/4)
	for i := 0; i < len(s); i += 4 {
		groups = append(groups, s[i:i+4])
	}
	return strings.Join(groups, ":"), nil
}

// thumbprint returns an Azure AD style key thumbprint: the base64url SHA-1 of the key's
// DER encoding. Azure AD puts it in both "kid" and "x5t".
func thumbprint(pub crypto.PublicKey) (string, error) {
	der, err := x509.MarshalPKIXPublicKey(pub)
	if err != nil {
		return "", fmt.Errorf("encoding public key: %w", err)
	}
	sum := sha1.Sum(der)
	return base64.RawURLEncoding.EncodeToString(sum[:]), nil
}
