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
	// rejected the credentials (HTTP 401 or 403).
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNotFound means the registry does not exist in the given resource group.
	ErrNotFound = errors.New("registry not found")
	// ErrNameTaken means the registry name is already in use, by another subscription
	// or in another resource group.
	ErrNameTaken = errors.New("registry name not available")
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

// ManagementError reports a failed Azure Resource Manager call. It matches
// ErrUnauthorized for 401/403, ErrNotFound for 404 and ErrNameTaken when Azure says
// the name is in use.
type ManagementError struct {
	// Op names the operation, such as "create" or "get".
	Op string
	// Registry is the registry name the call was about.
	Registry string
	// StatusCode is the HTTP status ARM answered with, 0 if none.
	StatusCode int
	// Code is ARM's error code, such as "ResourceNotFound" or "AlreadyExists".
	Code string
	// Err is the underlying error.
	Err error
}

func (e *ManagementError) Error() string {
	msg := fmt.Sprintf("%s registry %s", e.Op, e.Registry)
	if e.StatusCode != 0 {
		msg += fmt.Sprintf(": %d %s", e.StatusCode, http.StatusText(e.StatusCode))
	}
	if e.Code != "" {
		msg += " (" + e.Code + ")"
	}
	if e.Err != nil && e.StatusCode == 0 {
		msg += ": " + e.Err.Error()
	}
	return msg
}

// Unwrap returns the underlying error.
func (e *ManagementError) Unwrap() error { return e.Err }

// Is maps the ARM answer to this package's sentinels.
func (e *ManagementError) Is(target error) bool {
	switch target {
	case ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrNameTaken:
		return e.Code == "AlreadyExists" || e.Code == "RegistryNameNotAvailable" || e.Code == "NameNotAvailable" || e.Code == "AlreadyInUse"
	}
	return false
}
