package acr

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestNewKeychainWithoutAzure resolves through the environment and the docker config only when no
// Azure credential is given: a host the config names gets its credentials, any other host (an ACR login
// server included) is anonymous, exactly authn.Anonymous so that go-containerregistry sends nothing.
func TestNewKeychainWithoutAzure(t *testing.T) {
	dir := t.TempDir()
	config := fmt.Sprintf(`{"auths":{"other.example":{"auth":%q}}}`, base64.StdEncoding.EncodeToString([]byte("config-user:config-pass")))
	require.NoError(t, os.WriteFile(filepath.Join(dir, "config.json"), []byte(config), 0o600))
	t.Setenv("DOCKER_CONFIG", dir)
	for _, env := range []string{EnvApptainerUsername, EnvApptainerPassword, EnvSingularityUsername, EnvSingularityPassword} {
		t.Setenv(env, "")
	}
	kc, err := NewKeychain(nil)
	require.NoError(t, err)
	assert.Equal(t, &authn.AuthConfig{Username: "config-user", Password: "config-pass"}, resolve(t, kc, "other.example"))
	for _, host := range []string{"myacr.azurecr.io", "unknown.example"} {
		a, err := kc.Resolve(mustRef(t, host+"/hpc/rdma:latest").Context())
		require.NoError(t, err)
		assert.Same(t, authn.Anonymous, a, host)
	}

	a, err := dockerConfigKeychain{}.Resolve(mustRef(t, "unknown.example/a:b").Context())
	require.NoError(t, err)
	assert.Same(t, authn.Anonymous, a)
	a, err = dockerConfigKeychain{}.Resolve(mustRef(t, "other.example/a:b").Context())
	require.NoError(t, err)
	assert.Contains(t, fmt.Sprint(a), "docker config")
	assert.NotContains(t, fmt.Sprint(a), "config-pass")
}
