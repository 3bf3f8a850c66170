package acr

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Bounds of a secretSet: shorter strings would redact ordinary words of a message,
// and one call sends few distinct secrets (a password, a refresh token and an access
// token per repository scope).
const (
	minSecretLen = 4
	maxSecrets   = 256
)

// secretSet collects the secrets one call sends, passwords, identity tokens and the
// tokens in Authorization headers, so that a registry error that echoes them can be
// redacted before it reaches the caller. The zero value is ready to use; a nil
// *secretSet records nothing.
type secretSet struct {
	mu      sync.Mutex
	secrets []string
}

func (s *secretSet) add(values ...string) {
	if s == nil {
		return
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range values {
		if len(v) >= minSecretLen && len(s.secrets) < maxSecrets && !slices.Contains(s.secrets, v) {
			s.secrets = append(s.secrets, v)
		}
	}
}

// addConfig records the secrets of an authenticator's answer, with the Basic
// authentication value they are sent as.
func (s *secretSet) addConfig(cfg *authn.AuthConfig) {
	if cfg == nil {
		return
	}
	s.add(cfg.Password, cfg.IdentityToken, cfg.RegistryToken, cfg.Auth)
	if cfg.Password != "" {
		s.add(base64.StdEncoding.EncodeToString([]byte(cfg.Username + ":" + cfg.Password)))
	}
}

// addAuthorization records the credentials of an Authorization header.
func (s *secretSet) addAuthorization(header string) {
	scheme, value, ok := strings.Cut(header, " ")
	if !ok {
		return
	}
	s.add(value)
	if strings.EqualFold(scheme, "Basic") {
		if raw, err := base64.StdEncoding.DecodeString(value); err == nil {
			_, password, _ := strings.Cut(string(raw), ":")
			s.add(password)
		}
	}
}

// redact replaces every recorded secret in text, as it is or percent-encoded.
func (s *secretSet) redact(text string) string {
	if s == nil {
		return text
	}
	s.mu.Lock()
	secrets := slices.Clone(s.secrets)
	s.mu.Unlock()
	// Longest first, so that a secret containing another is replaced whole.
	slices.SortFunc(secrets, func(a, b string) int { return len(b) - len(a) })
	for _, secret := range secrets {
		text = strings.ReplaceAll(text, secret, "REDACTED")
		text = strings.ReplaceAll(text, url.QueryEscape(secret), "REDACTED")
	}
	return text
}

// redactError returns err, or, if its message holds a recorded secret, an error with
// the secrets redacted from its message that still matches, with errors.As, a copy of
// its *transport.Error (status and diagnostics, redacted; no body or headers) and,
// with errors.Is, the context error that ended the call.
func redactError(err error, s *secretSet) error {
	if err == nil {
		return nil
	}
	msg := err.Error()
	redacted := s.redact(msg)
	if redacted == msg {
		return err
	}
	r := &redactedError{msg: redacted}
	var terr *transport.Error
	if errors.As(err, &terr) {
		clean := &transport.Error{StatusCode: terr.StatusCode}
		if terr.Request != nil {
			clean.Request = &http.Request{Method: terr.Request.Method, URL: terr.Request.URL}
		}
		for _, d := range terr.Errors {
			d.Message = s.redact(d.Message)
			if d.Detail != nil && s.redact(fmt.Sprint(d.Detail)) != fmt.Sprint(d.Detail) {
				d.Detail = nil
			}
			clean.Errors = append(clean.Errors, d)
		}
		r.wrapped = append(r.wrapped, clean)
	}
	for _, cerr := range []error{context.Canceled, context.DeadlineExceeded} {
		if errors.Is(err, cerr) {
			r.wrapped = append(r.wrapped, cerr)
		}
	}
	return r
}

// redactedError is an error whose message had secrets in it.
type redactedError struct {
	msg     string
	wrapped []error
}

func (e *redactedError) Error() string   { return e.msg }
func (e *redactedError) Unwrap() []error { return e.wrapped }

// recordingAuth records the secrets its authenticator hands out.
type recordingAuth struct {
	inner   authn.Authenticator
	secrets *secretSet
}

func (a *recordingAuth) Authorization() (*authn.AuthConfig, error) {
	cfg, err := a.inner.Authorization()
	a.secrets.addConfig(cfg)
	return cfg, err
}

func (a *recordingAuth) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	cfg, err := authn.Authorization(ctx, a.inner)
	a.secrets.addConfig(cfg)
	return cfg, err
}

// recordingKeychain hands out its keychain's authenticators wrapped in recordingAuth.
type recordingKeychain struct {
	inner   authn.Keychain
	secrets *secretSet
}

func (k recordingKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	// The authn.Keychain interface has no context to pass on.
	return k.ResolveContext(context.Background(), r)
}

func (k recordingKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	a, err := authn.Resolve(ctx, k.inner, r)
	if err != nil || a == authn.Anonymous {
		return a, err
	}
	return &recordingAuth{inner: a, secrets: k.secrets}, nil
}
