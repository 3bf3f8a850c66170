package acr

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// echoingRegistry is a registry whose token endpoint and API repeat, in their error
// bodies, the credentials they were sent, as careless registries and proxies do.
type echoingRegistry struct {
	token string // the access token the token endpoint grants, "" to refuse
	raw   bool   // plain-text error bodies rather than the registry's JSON errors
}

func (e echoingRegistry) refuse(w http.ResponseWriter, status int, what string) {
	if e.raw {
		http.Error(w, "refused "+what, status)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]any{{
		"code": "UNAUTHORIZED", "message": "refused " + what, "detail": map[string]string{"sent": what},
	}}})
}

func (e echoingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	auth := r.Header.Get("Authorization")
	switch {
	case r.URL.Path == "/token":
		user, pass, _ := r.BasicAuth()
		if e.token == "" {
			e.refuse(w, http.StatusUnauthorized, fmt.Sprintf("user %s password %s header %q refresh_token %s", user, pass, auth, r.PostFormValue("refresh_token")))
			return
		}
		_ = json.NewEncoder(w).Encode(map[string]string{"token": e.token})
	case auth == "":
		w.Header().Set("WWW-Authenticate", fmt.Sprintf(`Bearer realm="http://%s/token",service="echo"`, r.Host))
		e.refuse(w, http.StatusUnauthorized, "anonymous")
	default:
		e.refuse(w, http.StatusForbidden, "header "+auth)
	}
}

// TestRegistryErrorsHideEchoedSecrets checks that credentials a registry repeats in
// its error bodies, the password, its Basic encoding or an access token, do not reach
// the caller's error, while the error still says what failed.
func TestRegistryErrorsHideEchoedSecrets(t *testing.T) {
	password := "Sentinel-" + randomString(t)
	token := "Token-" + randomString(t)
	tests := []struct {
		name     string
		registry echoingRegistry
		status   int
		// configAuth gives the credentials as docker's config.json "auth" field does: user:password
		// encoded, so that the password itself is only seen in the Basic header sent.
		configAuth bool
		// identityToken gives an ACR refresh token, which go-containerregistry sends in a form, never
		// in a header.
		identityToken bool
	}{
		{name: "token endpoint, JSON errors", registry: echoingRegistry{}, status: http.StatusUnauthorized},
		{name: "token endpoint, config.json auth", registry: echoingRegistry{}, status: http.StatusUnauthorized, configAuth: true},
		{name: "token endpoint, identity token", registry: echoingRegistry{}, status: http.StatusUnauthorized, identityToken: true},
		{name: "token endpoint, text errors", registry: echoingRegistry{raw: true}, status: http.StatusUnauthorized},
		{name: "registry, access token", registry: echoingRegistry{token: token}, status: http.StatusForbidden},
		{name: "registry, access token, text errors", registry: echoingRegistry{token: token, raw: true}, status: http.StatusForbidden},
	}
	refreshToken := "Refresh-" + randomString(t)
	secrets := []string{password, token, refreshToken, base64.StdEncoding.EncodeToString([]byte("admin:" + password))}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.registry)
			defer srv.Close()
			host := strings.TrimPrefix(srv.URL, "http://")
			img, err := random.Image(256, 1)
			require.NoError(t, err)
			auth := WithAuth(&staticBasic{user: "admin", pass: password})
			if tt.identityToken {
				auth = WithAuth(authn.FromConfig(authn.AuthConfig{Username: NullGUIDUsername, IdentityToken: refreshToken}))
			}
			if tt.configAuth {
				auth = WithAuth(authn.FromConfig(authn.AuthConfig{Auth: base64.StdEncoding.EncodeToString([]byte("admin:" + password))}))
			}
			ref := mustRef(t, host+"/hpc/rdma:latest")

			_, pushErr := Push(t.Context(), ref, img, auth, WithRetry(1, 0))
			_, pullErr := Pull(t.Context(), ref, auth, WithRetry(1, 0))
			_, tagsErr := ListTags(t.Context(), ref.Context(), auth, WithRetry(1, 0))
			for _, err := range []error{pushErr, pullErr, tagsErr} {
				require.ErrorIs(t, err, ErrUnauthorized)
				var aerr *AuthError
				require.ErrorAs(t, err, &aerr)
				assert.Equal(t, tt.status, aerr.StatusCode)
				var terr *transport.Error
				require.ErrorAs(t, err, &terr, "the registry's answer stays reachable")
				assert.Equal(t, tt.status, terr.StatusCode)
				require.NotNil(t, terr.Request, "the request that failed stays known")
				assert.Equal(t, host, terr.Request.URL.Host)
				if !strings.Contains(err.Error(), "HEAD responses have no body") {
					assert.Contains(t, err.Error(), "REDACTED", "the body is reported, redacted")
					if !tt.registry.raw {
						// The registry's diagnostics stay readable: its code, its message redacted, and
						// no detail that held a secret.
						require.Len(t, terr.Errors, 1)
						assert.Equal(t, transport.ErrorCode("UNAUTHORIZED"), terr.Errors[0].Code)
						assert.True(t, strings.HasPrefix(terr.Errors[0].Message, "refused "), terr.Errors[0].Message)
						assert.Contains(t, terr.Errors[0].Message, "REDACTED")
						assert.Nil(t, terr.Errors[0].Detail)
					}
				}
				for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err), terr.Error(), fmt.Sprintf("%+v", terr.Errors)} {
					for _, secret := range secrets {
						assert.NotContains(t, s, secret)
					}
				}
			}
		})
	}
}

// TestRedactedErrorKeepsTheContextError: an error redacted for a secret still matches the context error
// that ended the call, and only that one.
func TestRedactedErrorKeepsTheContextError(t *testing.T) {
	secrets := &secretSet{}
	secrets.add("Secret-token")
	for _, cause := range []error{context.Canceled, context.DeadlineExceeded, errors.New("refused")} {
		err := redactError(fmt.Errorf("sending Secret-token: %w", cause), secrets)
		assert.Equal(t, "sending REDACTED: "+cause.Error(), err.Error())
		for _, cerr := range []error{context.Canceled, context.DeadlineExceeded} {
			assert.Equal(t, cerr == cause, errors.Is(err, cerr), "%v is %v", cause, cerr)
		}
	}
}
