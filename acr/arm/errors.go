package arm

import (
	"errors"
	"fmt"
	"net/http"

	"github.com/hpcship/hpcship/acr"
)

// Sentinel errors callers branch on. ManagementError matches them, and
// acr.ErrUnauthorized, with errors.Is.
var (
	// ErrNotFound means the registry does not exist in the given resource group.
	ErrNotFound = errors.New("registry not found")
	// ErrNameTaken means the registry name is already in use, by another subscription
	// or in another resource group.
	ErrNameTaken = errors.New("registry name not available")
)

// ManagementError reports a failed Azure Resource Manager call. It matches
// acr.ErrUnauthorized for 401/403, ErrNotFound for 404 and ErrNameTaken when Azure says
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
	case acr.ErrUnauthorized:
		return e.StatusCode == http.StatusUnauthorized || e.StatusCode == http.StatusForbidden
	case ErrNotFound:
		return e.StatusCode == http.StatusNotFound
	case ErrNameTaken:
		return e.Code == "AlreadyExists" || e.Code == "RegistryNameNotAvailable" || e.Code == "NameNotAvailable" || e.Code == "AlreadyInUse"
	}
	return false
}
