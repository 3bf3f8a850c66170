package acr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/google/go-containerregistry/pkg/authn"
)

// maxRenewMargin is how long before its expiry an ACR refresh token is replaced at
// the latest. Real ones live about three hours.
const maxRenewMargin = 5 * time.Minute

// AADAuthenticator turns an Azure AD identity into registry credentials for one login
// server. It exchanges an Azure AD token at the registry's /oauth2/exchange endpoint
// for an ACR refresh token and hands go-containerregistry that refresh token as an
// identity token, with which go-containerregistry asks /oauth2/token for access tokens
// scoped to each repository it touches.
//
// The refresh token is cached and replaced before its exp claim: five minutes before,
// or halfway through its life if that is shorter. go-containerregistry asks its
// authenticator again whenever a scoped access token is rejected (it expired during a
// long push, say), so a push that outlives both tokens keeps going.
//
// It is safe for concurrent use.
type AADAuthenticator struct {
	loginServer string
	cred        azcore.TokenCredential
	scope       string
	tenant      string
	userAgent   string
	client      *http.Client
	logger      *slog.Logger
	now         func() time.Time

	mu      sync.Mutex
	token   string
	renewAt time.Time
	// pending is the exchange under way, if any: callers that need a token meanwhile
	// wait for it, or for their own context, rather than start another.
	pending *exchangeCall
}

// exchangeCall is one token exchange that concurrent callers share.
type exchangeCall struct {
	done  chan struct{} // closed when the fields below are set
	token string
	err   error
	// abandoned means the exchange failed because the context of the caller running
	// it ended, which says nothing about the credentials: a waiter whose own context
	// is live runs the exchange again.
	abandoned bool
}

var (
	_ authn.Authenticator        = (*AADAuthenticator)(nil)
	_ authn.ContextAuthenticator = (*AADAuthenticator)(nil)
)

// NewAADAuthenticator returns an authenticator for the registry at loginServer (such
// as myacr.azurecr.io, or 127.0.0.1:5000 for a local stand-in) that takes Azure AD
// tokens from cred: azidentity's DefaultAzureCredential, a managed identity, a service
// principal or the Azure CLI.
//
// It requests tokens for DefaultAADScope (WithAADScope), from the credential's own
// tenant (WithTenant), retries throttled exchanges 5 times (WithRetry, honouring
// Retry-After up to WithMaxRetryAfter), logs nothing (WithLogger) and speaks HTTPS
// except to loopback hosts. No request is made until the first Authorization call.
func NewAADAuthenticator(loginServer string, cred azcore.TokenCredential, opts ...Option) (*AADAuthenticator, error) {
	if cred == nil {
		return nil, errors.New("acr.NewAADAuthenticator: azure AD credential must not be nil")
	}
	if loginServer == "" || strings.ContainsAny(loginServer, "/@ ") {
		return nil, fmt.Errorf("acr.NewAADAuthenticator: login server %q must be a bare host or host:port", loginServer)
	}
	o, err := makeOptions("acr.NewAADAuthenticator", callAAD, opts)
	if err != nil {
		return nil, err
	}
	return newAADAuthenticator(strings.ToLower(loginServer), cred, o), nil
}

func newAADAuthenticator(loginServer string, cred azcore.TokenCredential, o *options) *AADAuthenticator {
	return &AADAuthenticator{
		loginServer: loginServer,
		cred:        cred,
		scope:       o.aadScope,
		tenant:      o.tenant,
		userAgent:   o.userAgent,
		client: &http.Client{
			Transport: newRegistryTransport(loginServer, o),
			// The request carries an Azure AD token: it goes to the login server or
			// nowhere.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		logger: o.logger,
		now:    time.Now,
	}
}

// Authorization implements authn.Authenticator. go-containerregistry calls
// AuthorizationContext instead, which honours cancellation; this method exists for
// callers of the plain interface and runs without a deadline.
func (a *AADAuthenticator) Authorization() (*authn.AuthConfig, error) {
	// The authn.Authenticator interface has no context to pass on.
	return a.AuthorizationContext(context.Background())
}

// AuthorizationContext implements authn.ContextAuthenticator: it returns the null-GUID
// user name and a current ACR refresh token as the identity token, exchanging a new
// one when the cached one is near its expiry. Concurrent callers share one exchange;
// each stops waiting for it when its own ctx ends, and if the caller running the
// exchange gives up, a waiter whose ctx is live runs it again.
func (a *AADAuthenticator) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	for {
		a.mu.Lock()
		if a.token != "" && a.now().Before(a.renewAt) {
			token := a.token
			a.mu.Unlock()
			return &authn.AuthConfig{Username: NullGUIDUsername, IdentityToken: token}, nil
		}
		call := a.pending
		if call == nil {
			call = &exchangeCall{done: make(chan struct{})}
			a.pending = call
			a.mu.Unlock()
			a.run(ctx, call)
		} else {
			a.mu.Unlock()
			select {
			case <-call.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
		}
		switch {
		case call.err == nil:
			return &authn.AuthConfig{Username: NullGUIDUsername, IdentityToken: call.token}, nil
		case call.abandoned && ctx.Err() == nil:
			continue
		}
		return nil, call.err
	}
}

// run performs the exchange of call on the caller's context and publishes its result
// to the callers waiting for it.
func (a *AADAuthenticator) run(ctx context.Context, call *exchangeCall) {
	token, renewAt, err := a.exchange(ctx)
	a.mu.Lock()
	if err == nil {
		a.token, a.renewAt = token, renewAt
	}
	a.pending = nil
	a.mu.Unlock()
	call.token, call.err, call.abandoned = token, err, err != nil && ctx.Err() != nil
	close(call.done)
}

// exchange gets an Azure AD token and trades it for an ACR refresh token, which it
// returns with the time to renew it.
func (a *AADAuthenticator) exchange(ctx context.Context) (token string, renewAt time.Time, err error) {
	aad, err := a.cred.GetToken(ctx, policy.TokenRequestOptions{Scopes: []string{a.scope}, TenantID: a.tenant})
	if err != nil {
		return "", time.Time{}, fmt.Errorf("getting an Azure AD token for %s: %w", a.loginServer, err)
	}
	form := url.Values{
		"grant_type":   {"access_token"},
		"service":      {a.loginServer},
		"access_token": {aad.Token},
	}
	if a.tenant != "" {
		form.Set("tenant", a.tenant)
	}
	u := url.URL{Scheme: "https", Host: a.loginServer, Path: "/oauth2/exchange"}
	if isLoopback(a.loginServer) {
		u.Scheme = "http"
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u.String(), strings.NewReader(form.Encode()))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("exchanging an Azure AD token at %s: %w", a.loginServer, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("User-Agent", a.userAgent)
	resp, err := a.client.Do(req)
	if err != nil {
		// *url.Error names the URL only, never the form.
		return "", time.Time{}, fmt.Errorf("exchanging an Azure AD token at %s: %w", a.loginServer, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return "", time.Time{}, fmt.Errorf("exchanging an Azure AD token at %s: reading the answer: %w", a.loginServer, err)
	}
	switch {
	case resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden:
		return "", time.Time{}, &AuthError{Registry: a.loginServer, StatusCode: resp.StatusCode, Err: &ExchangeError{
			Registry: a.loginServer, StatusCode: resp.StatusCode, Code: registryErrorCode(body)}}
	case resp.StatusCode != http.StatusOK:
		return "", time.Time{}, &ExchangeError{Registry: a.loginServer, StatusCode: resp.StatusCode, Code: registryErrorCode(body)}
	}
	var answer struct {
		RefreshToken string `json:"refresh_token"`
	}
	if err := json.Unmarshal(body, &answer); err != nil || answer.RefreshToken == "" {
		return "", time.Time{}, fmt.Errorf("exchanging an Azure AD token at %s: answer has no refresh_token", a.loginServer)
	}
	now := a.now()
	renewAt = now
	if exp, err := jwtExpiry(answer.RefreshToken); err == nil {
		if life := exp.Sub(now); life > 0 {
			renewAt = exp.Add(-min(maxRenewMargin, life/2))
		}
		a.logger.DebugContext(ctx, "exchanged an Azure AD token for an ACR refresh token",
			"registry", a.loginServer, "expires", exp.UTC(), "renew_at", renewAt.UTC())
	} else {
		// Without a readable exp the token is used once and exchanged again next time.
		a.logger.WarnContext(ctx, "ACR refresh token has no readable expiry", "registry", a.loginServer)
	}
	return answer.RefreshToken, renewAt, nil
}

// String names the login server and hides the refresh token and the credential, so
// that printing an authenticator with fmt or slog shows no secret.
func (a *AADAuthenticator) String() string {
	return "acr.AADAuthenticator{LoginServer:" + a.loginServer + "}"
}

// GoString is String, for the %#v verb.
func (a *AADAuthenticator) GoString() string { return a.String() }

// Format prints String for every verb, so that no verb shows the fields.
func (a *AADAuthenticator) Format(f fmt.State, verb rune) { formatString(f, verb, a.String()) }

// LogValue shows the login server only.
func (a *AADAuthenticator) LogValue() slog.Value {
	return slog.GroupValue(slog.String("source", "azure AD"), slog.String("registry", a.loginServer))
}

// registryErrorCode returns the first error code of a registry error body
// ({"errors":[{"code":"UNAUTHORIZED",...}]}), or "" if there is none. Only the code is
// kept: messages are free text that could echo what was sent.
func registryErrorCode(body []byte) string {
	var e struct {
		Errors []struct {
			Code string `json:"code"`
		} `json:"errors"`
	}
	if json.Unmarshal(body, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	code := e.Errors[0].Code
	if len(code) > 64 || strings.ContainsFunc(code, func(r rune) bool { return !('A' <= r && r <= 'Z' || 'a' <= r && r <= 'z' || r == '_') }) {
		return ""
	}
	return code
}
