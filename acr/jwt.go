package acr

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"time"
)

// errMalformedJWT is what jwtExpiry returns for a token it cannot read; the token
// itself never appears in the error.
var errMalformedJWT = errors.New("malformed JWT")

// jwtExpiry returns the exp claim of a JWT without verifying its signature: the
// registry verifies its own tokens, and the client only needs to know when to renew.
func jwtExpiry(token string) (time.Time, error) {
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return time.Time{}, errMalformedJWT
	}
	payload, err := base64.RawURLEncoding.DecodeString(strings.TrimRight(parts[1], "="))
	if err != nil {
		return time.Time{}, errMalformedJWT
	}
	var claims struct {
		Exp *json.Number `json:"exp"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil || claims.Exp == nil {
		return time.Time{}, errMalformedJWT
	}
	exp, err := claims.Exp.Float64()
	if err != nil || exp <= 0 || exp > 1<<40 {
		return time.Time{}, errMalformedJWT
	}
	sec := int64(exp)
	return time.Unix(sec, int64((exp-float64(sec))*1e9)), nil
}
