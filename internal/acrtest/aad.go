package acrtest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
)

// The Azure AD audiences ACR accepts by default: its own, and Azure Resource Manager's
// unless azureADAuthenticationAsArmPolicy is disabled (WithARMAudienceDisabled).
const (
	AudienceACR = "https://containerregistry.azure.net"
	AudienceARM = "https://management.azure.com"
	// AudienceARMClassic is the ARM resource ID the az CLI asks for.
	AudienceARMClassic = "https://management.core.windows.net"
)

// aadClaims are the claims of an Azure AD v1 access token for an application.
type aadClaims struct {
	Aud      string `json:"aud"`
	Iss      string `json:"iss"`
	Iat      int64  `json:"iat"`
	Nbf      int64  `json:"nbf"`
	Exp      int64  `json:"exp"`
	AppID    string `json:"appid"`
	AppIDAcr string `json:"appidacr"`
	IDP      string `json:"idp"`
	IDTyp    string `json:"idtyp"`
	Oid      string `json:"oid"`
	Sub      string `json:"sub"`
	Tid      string `json:"tid"`
	Uti      string `json:"uti"`
	Ver      string `json:"ver"`
}

func aadIssuer(tenant string) string { return "https://sts.windows.net/" + tenant + "/" }

// CredentialOption configures a credential from Registry.TokenCredential.
type CredentialOption func(*credentialOptions) error

type credentialOptions struct {
	lifetime  time.Duration
	tenant    string
	untrusted bool
}

// WithAADTokenLifetime sets how long the tokens the credential issues are valid. A
// negative d issues tokens that expired -d ago, which /oauth2/exchange refuses. The
// default is 75 minutes, Azure AD's average.
func WithAADTokenLifetime(d time.Duration) CredentialOption {
	return func(o *credentialOptions) error {
		if d == 0 {
			return errors.New("token lifetime must not be zero")
		}
		o.lifetime = d
		return nil
	}
}

// WithAADTenant makes the credential issue tokens in tenant, unless a request names its
// own TenantID. The default is the registry's tenant; /oauth2/exchange refuses tokens of
// any other.
func WithAADTenant(tenant string) CredentialOption {
	return func(o *credentialOptions) error {
		if tenant == "" {
			return errors.New("tenant must not be empty")
		}
		o.tenant = tenant
		return nil
	}
}

// WithUntrustedSigner makes the credential sign its tokens with a key the registry does
// not trust, as a forged token would be. The default signs with the test Azure AD key.
func WithUntrustedSigner() CredentialOption {
	return func(o *credentialOptions) error {
		o.untrusted = true
		return nil
	}
}

// credential is the Azure AD stand-in: an azcore.TokenCredential issuing JWTs signed by
// the test Azure AD key.
type credential struct {
	r      *Registry
	opts   credentialOptions
	signer *signer
	err    error // an invalid option: every GetToken fails with it
}

// TokenCredential returns an Azure AD stand-in for azidentity's credentials: GetToken
// issues an RS256 JWT shaped like an Azure AD v1 application token (iss
// https://sts.windows.net/<tenant>/, tid, oid, appid, aud from the requested
// "<resource>/.default" scope, integer iat/nbf/exp) that /oauth2/exchange accepts.
// Options make tokens the exchange must refuse: expired (WithAADTokenLifetime), from
// another tenant (WithAADTenant) or forged (WithUntrustedSigner). An invalid option makes
// every GetToken fail with the option's error.
func (r *Registry) TokenCredential(opts ...CredentialOption) azcore.TokenCredential {
	c := &credential{r: r, opts: credentialOptions{lifetime: 75 * time.Minute, tenant: r.opts.tenant}, signer: r.aadKey}
	for _, opt := range opts {
		if err := opt(&c.opts); err != nil {
			c.err = fmt.Errorf("acrtest credential: %w", err)
			return c
		}
	}
	if c.opts.untrusted {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			c.err = fmt.Errorf("acrtest credential: generating key: %w", err)
			return c
		}
		// Same kid as the trusted key: only the signature gives the forgery away.
		c.signer = &signer{key: key, kid: r.aadKey.kid, x5t: r.aadKey.x5t}
	}
	return c
}

// GetToken issues a token for the resource of options.Scopes, which must all name the same
// resource, as Azure AD requires of one request.
func (c *credential) GetToken(ctx context.Context, options policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	if err := ctx.Err(); err != nil {
		return azcore.AccessToken{}, err
	}
	if len(options.Scopes) == 0 {
		return azcore.AccessToken{}, errors.New("acrtest credential: at least one scope is required")
	}
	resource := strings.TrimSuffix(options.Scopes[0], "/.default")
	for _, s := range options.Scopes[1:] {
		if strings.TrimSuffix(s, "/.default") != resource {
			return azcore.AccessToken{}, fmt.Errorf("acrtest credential: scopes %q name more than one resource", options.Scopes)
		}
	}
	tenant := c.opts.tenant
	if options.TenantID != "" {
		tenant = options.TenantID
	}
	now := time.Now()
	exp := now.Add(c.opts.lifetime)
	// Azure AD backdates nbf by five minutes for clock skew; an expired token was valid once.
	nbf := now
	if exp.Before(nbf) {
		nbf = exp.Add(-75 * time.Minute)
	}
	nbf = nbf.Add(-5 * time.Minute)
	appID := newGUID()
	token, err := c.signer.sign(aadClaims{
		Aud:      resource,
		Iss:      aadIssuer(tenant),
		Iat:      nbf.Unix(),
		Nbf:      nbf.Unix(),
		Exp:      exp.Unix(),
		AppID:    appID,
		AppIDAcr: "1",
		IDP:      aadIssuer(tenant),
		IDTyp:    "app",
		Oid:      c.r.oid,
		Sub:      c.r.oid,
		Tid:      tenant,
		Uti:      rand.Text()[:22],
		Ver:      "1.0",
	})
	if err != nil {
		return azcore.AccessToken{}, fmt.Errorf("acrtest credential: %w", err)
	}
	c.r.count(func(s *Stats) { s.AADTokens++ })
	return azcore.AccessToken{Token: token, ExpiresOn: exp, RefreshOn: now.Add(c.opts.lifetime / 2)}, nil
}

// verifyAADToken checks an Azure AD token given to /oauth2/exchange: signature, expiry,
// issuer and tenant (the registry's, and the form's tenant when given) and audience.
func (r *Registry) verifyAADToken(token, formTenant string) (aadClaims, error) {
	var c aadClaims
	if err := r.aadKey.verify(token, &c); err != nil {
		return c, unauthorized("Azure AD token: %v", err)
	}
	now := time.Now().Unix()
	switch {
	case now >= c.Exp:
		return c, unauthorized("Azure AD token: expired")
	case now < c.Nbf:
		return c, unauthorized("Azure AD token: not valid yet")
	case c.Tid != r.opts.tenant || c.Iss != aadIssuer(c.Tid):
		return c, unauthorized("Azure AD token: issued in tenant %q, not the registry's", c.Tid)
	case formTenant != "" && formTenant != c.Tid:
		return c, unauthorized("Azure AD token: issued in tenant %q, not the requested %q", c.Tid, formTenant)
	}
	aud := strings.TrimSuffix(c.Aud, "/")
	switch aud {
	case AudienceACR:
	case AudienceARM, AudienceARMClassic:
		if r.opts.armAudienceDisabled {
			return c, unauthorized("Azure AD token: ARM audience %q is disabled for this registry", c.Aud)
		}
	default:
		return c, unauthorized("Azure AD token: audience %q is not accepted", c.Aud)
	}
	c.Aud = aud
	return c, nil
}
