package acr

import (
	"errors"
	"fmt"
	"net/http"
)

// Sentinel errors callers branch on. Every typed error in this package matches one of
// them with errors.Is.
var (
	// ErrInvalidName means a registry name breaks Azure's rules (5–50 letters and digits).
	ErrInvalidName = errors.New("invalid registry name")
	// ErrUnauthorized means the registry, the token exchange or Azure Resource Manager
	// (package acr/arm) rejected the credentials (HTTP 401 or 403).
	ErrUnauthorized = errors.New("unauthorized")
)

// NameError reports a registry name that Azure would reject. It matches ErrInvalidName.
type NameError struct {
	Name   string
	Reason string
}

func (e *NameError) Error() string {
	return fmt.Sprintf("invalid registry name %q: %s", e.Name, e.Reason)
}

// Is reports whether target is ErrInvalidName.
func (e *NameError) Is(target error) bool { return target == ErrInvalidName }

// AuthError reports credentials that a registry or its token service rejected. It
// matches ErrUnauthorized. Its message names the registry and the HTTP status, never a
// password or token.
type AuthError struct {
	// Registry is the login server, such as myacr.azurecr.io.
	Registry string
	// StatusCode is the HTTP status of the rejection: 401 or 403.
	StatusCode int
	// Err is the underlying error, if any.
	Err error
}

func (e *AuthError) Error() string {
	msg := fmt.Sprintf("registry %s rejected the credentials: %d %s", e.Registry, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Err != nil {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *AuthError) Unwrap() error { return e.Err }

// Is reports whether target is ErrUnauthorized.
func (e *AuthError) Is(target error) bool { return target == ErrUnauthorized }

// ExchangeError reports a failed call to a registry's /oauth2/exchange endpoint that
// was not a credential rejection (those are *AuthError).
type ExchangeError struct {
	Registry   string
	StatusCode int
	// Code is the registry's error code from the response body, if it sent one.
	Code string
}

func (e *ExchangeError) Error() string {
	msg := fmt.Sprintf("exchanging an Azure AD token at %s: %d %s", e.Registry, e.StatusCode, http.StatusText(e.StatusCode))
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	return msg
}
