package acr

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func resolve(t *testing.T, kc authn.Keychain, host string) *authn.AuthConfig {
	t.Helper()
	reg, err := name.NewRegistry(host)
	require.NoError(t, err)
	a, err := kc.Resolve(reg)
	require.NoError(t, err)
	if a == authn.Anonymous {
		return nil
	}
	cfg, err := authn.Authorization(t.Context(), a)
	require.NoError(t, err)
	return cfg
}

func TestAADKeychainHosts(t *testing.T) {
	f := newTestACR(t)
	kc, err := NewAADKeychain(f.credential(), WithHosts(f.host()))
	require.NoError(t, err)

	got := resolve(t, kc, f.host())
	require.NotNil(t, got)
	assert.Equal(t, NullGUIDUsername, got.Username)
	assert.NotEmpty(t, got.IdentityToken)
	again := resolve(t, kc, f.host())
	assert.Equal(t, got.IdentityToken, again.IdentityToken, "one authenticator per host keeps its refresh token")
	assert.EqualValues(t, 1, f.exchanges())

	for _, host := range []string{
		"index.docker.io", "ghcr.io", "myacr.azurecr.io.evil.example", "evil.azurecr.io.attacker.com", "azurecr.io",
		"myacr.azurecr.io.", "myacr.azurecr.io:443", "myacr.azurecr.io:5000", "a.b.azurecr.io",
		"127.0.0.1:1", "localhost:" + portOf(f.host()),
	} {
		a, err := kc.Resolve(mustRef(t, host+"/rdma:latest").Context())
		require.NoError(t, err)
		assert.Equal(t, authn.Anonymous, a, host)
	}

	for _, host := range []string{"myacr.azurecr.io", "MyACR.AzureCR.io", "xn--80ak6aa92e.azurecr.cn"} {
		a, err := kc.Resolve(mustRef(t, host+"/rdma:latest").Context())
		require.NoError(t, err)
		assert.IsType(t, &AADAuthenticator{}, a, "ACR login servers match without being listed: %s", host)
	}
}

func portOf(host string) string {
	for i := len(host) - 1; i >= 0; i-- {
		if host[i] == ':' {
			return host[i+1:]
		}
	}
	return ""
}

func TestAdminKeychain(t *testing.T) {
	kc := NewAdminKeychain("MyACR.azurecr.io", "myacr", "p4ss")
	assert.Equal(t, &authn.AuthConfig{Username: "myacr", Password: "p4ss"}, resolve(t, kc, "myacr.azurecr.io"))
	assert.Nil(t, resolve(t, kc, "otheracr.azurecr.io"), "another ACR registry never sees the key")
	assert.Nil(t, resolve(t, kc, "ghcr.io"))
}

func TestEnvKeychain(t *testing.T) {
	tests := []struct {
		name string
		env  map[string]string
		want *authn.AuthConfig
	}{
		{name: "none"},
		{
			name: "singularity",
			env:  map[string]string{EnvSingularityUsername: "s-user", EnvSingularityPassword: "s-pass"},
			want: &authn.AuthConfig{Username: "s-user", Password: "s-pass"},
		},
		{
			name: "apptainer wins",
			env: map[string]string{EnvSingularityUsername: "s-user", EnvSingularityPassword: "s-pass",
				EnvApptainerUsername: "a-user", EnvApptainerPassword: "a-pass"},
			want: &authn.AuthConfig{Username: "a-user", Password: "a-pass"},
		},
		{
			name: "half an apptainer pair falls back to singularity",
			env: map[string]string{EnvSingularityUsername: "s-user", EnvSingularityPassword: "s-pass",
				EnvApptainerUsername: "a-user"},
			want: &authn.AuthConfig{Username: "s-user", Password: "s-pass"},
		},
		{
			name: "null GUID means a refresh token",
			env:  map[string]string{EnvApptainerUsername: NullGUIDUsername, EnvApptainerPassword: "eyJ.refresh.token"},
			want: &authn.AuthConfig{Username: NullGUIDUsername, IdentityToken: "eyJ.refresh.token"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, k := range []string{EnvApptainerUsername, EnvApptainerPassword, EnvSingularityUsername, EnvSingularityPassword} {
				t.Setenv(k, tt.env[k])
			}
			kc, err := NewEnvKeychain(WithHosts("127.0.0.1:5000"))
			require.NoError(t, err)
			assert.Equal(t, tt.want, resolve(t, kc, "myacr.azurecr.us"))
			assert.Equal(t, tt.want, resolve(t, kc, "127.0.0.1:5000"))
			assert.Nil(t, resolve(t, kc, "index.docker.io"), "environment credentials stay with ACR")
		})
	}
}

func TestNewKeychainOrder(t *testing.T) {
	f := newTestACR(t)
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(EnvApptainerUsername, "")
	t.Setenv(EnvSingularityUsername, "env-user")
	t.Setenv(EnvSingularityPassword, "env-pass")
	kc, err := NewKeychain(f.credential(), WithHosts(f.host()))
	require.NoError(t, err)
	assert.Equal(t, &authn.AuthConfig{Username: "env-user", Password: "env-pass"}, resolve(t, kc, f.host()))

	t.Setenv(EnvSingularityPassword, "")
	got := resolve(t, kc, f.host())
	require.NotNil(t, got)
	assert.Equal(t, NullGUIDUsername, got.Username, "without the environment, Azure AD answers")
}

func TestAADKeychainNeedsACredential(t *testing.T) {
	kc, err := NewAADKeychain(nil)
	require.EqualError(t, err, "acr.NewAADKeychain: azure AD credential must not be nil")
	assert.Nil(t, kc)
}

func TestWithHostsRejectsURLs(t *testing.T) {
	for _, h := range []string{"", "https://myacr.azurecr.io", "user@host", "a b"} {
		_, err := NewEnvKeychain(WithHosts(h))
		assert.Error(t, err, h)
	}
}

// fixedKeychain answers every host with the same credentials.
type fixedKeychain struct{ cfg authn.AuthConfig }

func (k fixedKeychain) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(k.cfg), nil
}

func TestKeychainsCompose(t *testing.T) {
	f := newTestACR(t)
	aad, err := NewAADKeychain(f.credential())
	require.NoError(t, err)
	other := authn.AuthConfig{Username: "ghcr-user", Password: "ghcr-token"}
	kc := authn.NewMultiKeychain(aad, fixedKeychain{other})

	a, err := kc.Resolve(mustRef(t, "myacr.azurecr.io/rdma:latest").Context())
	require.NoError(t, err)
	assert.IsType(t, &AADAuthenticator{}, a, "the first keychain answers for ACR")
	assert.Equal(t, &other, resolve(t, kc, "ghcr.io"), "other hosts fall through to the next keychain")
}
