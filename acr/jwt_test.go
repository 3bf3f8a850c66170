package acr

import (
	"encoding/base64"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func jwtWithClaims(claims string) string {
	return "eyJhbGciOiJSUzI1NiJ9." + base64.RawURLEncoding.EncodeToString([]byte(claims)) + ".c2lnbmF0dXJl"
}

func TestJWTExpiry(t *testing.T) {
	tests := []struct {
		name    string
		token   string
		want    time.Time
		wantErr bool
	}{
		{name: "integer exp", token: jwtWithClaims(`{"exp":1795888098,"grant_type":"refresh_token"}`), want: time.Unix(1795888098, 0)},
		{name: "fractional exp", token: jwtWithClaims(`{"exp":1795888098.5}`), want: time.Unix(1795888098, 5e8)},
		{name: "padded payload", token: "a." + base64.URLEncoding.EncodeToString([]byte(`{"exp":10}`)) + ".b", want: time.Unix(10, 0)},
		{name: "no exp", token: jwtWithClaims(`{"sub":"x"}`), wantErr: true},
		{name: "string exp", token: jwtWithClaims(`{"exp":"soon"}`), wantErr: true},
		{name: "negative exp", token: jwtWithClaims(`{"exp":-5}`), wantErr: true},
		{name: "exp 0", token: jwtWithClaims(`{"exp":0}`), wantErr: true},
		{name: "exp 1", token: jwtWithClaims(`{"exp":1}`), want: time.Unix(1, 0)},
		{name: "largest exp", token: jwtWithClaims(`{"exp":1099511627776}`), want: time.Unix(1<<40, 0)},
		{name: "past the largest exp", token: jwtWithClaims(`{"exp":1099511627777}`), wantErr: true},
		{name: "two parts", token: "a.b", wantErr: true},
		{name: "not base64", token: "a.!!!.c", wantErr: true},
		{name: "not JSON", token: jwtWithClaims(`exp=5`), wantErr: true},
		{name: "opaque", token: "opaque-refresh-token", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := jwtExpiry(tt.token)
			if tt.wantErr {
				require.ErrorIs(t, err, errMalformedJWT)
				assert.NotContains(t, err.Error(), tt.token)
				return
			}
			require.NoError(t, err)
			assert.True(t, tt.want.Equal(got), "got %v, want %v", got, tt.want)
		})
	}
}

func FuzzJWTExpiry(f *testing.F) {
	f.Add(jwtWithClaims(`{"exp":1795888098}`))
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, token string) {
		exp, err := jwtExpiry(token)
		if err != nil {
			require.ErrorIs(t, err, errMalformedJWT)
			return
		}
		assert.True(t, exp.After(time.Unix(0, 0)))
	})
}
