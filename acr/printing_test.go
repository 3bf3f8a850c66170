package acr

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// printed renders v with every fmt verb and both slog handlers.
func printed(v any) map[string]string {
	out := map[string]string{}
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d", "%T"} {
		out[verb] = fmt.Sprintf(verb, v)
	}
	var text, js bytes.Buffer
	slog.New(slog.NewTextHandler(&text, nil)).Info("credentials", "value", v)
	slog.New(slog.NewJSONHandler(&js, nil)).Info("credentials", "value", v)
	out["slog text"], out["slog json"] = text.String(), js.String()
	if b, err := json.Marshal(v); err == nil {
		out["json"] = string(b)
	}
	return out
}

// TestCredentialsPrintNoSecret prints every keychain this package returns and every
// authenticator they hand out, and checks that no secret shows, in any encoding the
// secret could be sent in, while the registry does.
func TestCredentialsPrintNoSecret(t *testing.T) {
	f := newTestACR(t)
	host := "myacr.azurecr.io"
	password := "Password-" + randomString(t)
	refreshToken := "eyJ.Refresh-" + randomString(t) + ".sig"
	configPassword := "Config-" + randomString(t)

	dir := t.TempDir()
	config := fmt.Sprintf(`{"auths":{"other.example":{"auth":%q}}}`,
		base64.StdEncoding.EncodeToString([]byte("config-user:"+configPassword)))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
	t.Setenv(EnvApptainerUsername, "")
	t.Setenv(EnvSingularityUsername, NullGUIDUsername)
	t.Setenv(EnvSingularityPassword, refreshToken)

	aadAuth, err := NewAADAuthenticator(f.host(), f.credential())
	require.NoError(t, err)
	aadCfg, err := aadAuth.AuthorizationContext(t.Context())
	require.NoError(t, err)
	aadKeychain, err := NewAADKeychain(f.credential(), WithHosts(f.host()))
	require.NoError(t, err)
	envKeychain, err := NewEnvKeychain()
	require.NoError(t, err)
	chain, err := NewKeychain(f.credential(), WithHosts("other.example"))
	require.NoError(t, err)
	admin := NewAdminKeychain(host, "myacr", password)

	resolved := func(kc authn.Keychain, host string) authn.Authenticator {
		a, err := kc.Resolve(mustRef(t, host+"/hpc/rdma:latest").Context())
		require.NoError(t, err)
		require.NotEqual(t, authn.Anonymous, a, "%v has no credentials for %s", kc, host)
		return a
	}
	values := []struct {
		name  string
		value any
		shows string
	}{
		{"AAD authenticator", aadAuth, f.host()},
		{"AAD keychain", aadKeychain, f.host()},
		{"admin keychain", admin, host},
		{"admin credentials", resolved(admin, host), host},
		{"env keychain", envKeychain, "EnvKeychain"},
		{"env credentials", resolved(envKeychain, host), host},
		{"default keychain", chain, "other.example"},
		{"env credentials through the default keychain", resolved(chain, host), host},
		{"docker config credentials", resolved(chain, "other.example"), "other.example"},
	}
	secrets := append([]string{password, refreshToken, configPassword, aadCfg.IdentityToken}, f.cred.tokens()...)
	for _, s := range []string{password, configPassword} {
		secrets = append(secrets, base64.StdEncoding.EncodeToString([]byte("myacr:"+s)),
			base64.StdEncoding.EncodeToString([]byte("config-user:"+s)))
	}
	for _, v := range values {
		for how, s := range printed(v.value) {
			for _, secret := range secrets {
				assert.NotContains(t, s, secret, "%s printed with %s", v.name, how)
			}
			if how != "%T" && how != "%x" && how != "json" {
				assert.Contains(t, s, v.shows, "%s printed with %s", v.name, how)
			}
		}
	}
}

// TestCredentialsUser: credentials show their user name when they have one, and no empty one when they
// have none (an identity token alone).
func TestCredentialsUser(t *testing.T) {
	with := fixedCredentials("admin", "myacr.azurecr.io", authn.AuthConfig{Username: "myacr", Password: "Secret-pw"})
	without := fixedCredentials("docker config", "myacr.azurecr.io", authn.AuthConfig{IdentityToken: "Secret-token"})
	assert.Equal(t, "acr.Credentials{Source:admin Registry:myacr.azurecr.io Username:myacr}", with.String())
	assert.Equal(t, "acr.Credentials{Source:docker config Registry:myacr.azurecr.io}", without.String())
	attrs := func(c *credentials) []string {
		var keys []string
		for _, a := range c.LogValue().Group() {
			keys = append(keys, a.Key+"="+a.Value.String())
		}
		return keys
	}
	assert.Equal(t, []string{"source=admin", "registry=myacr.azurecr.io", "username=myacr"}, attrs(with))
	assert.Equal(t, []string{"source=docker config", "registry=myacr.azurecr.io"}, attrs(without))
}
