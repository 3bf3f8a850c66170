package acr

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Environment variables read by NewEnvKeychain, in the order they are looked at.
// Apptainer reads its own names first and falls back to Singularity's; a pair is used
// only as a whole, so a user name from one never meets a password from the other.
const (
	EnvApptainerUsername   = "APPTAINER_DOCKER_USERNAME"
	EnvApptainerPassword   = "APPTAINER_DOCKER_PASSWORD"
	EnvSingularityUsername = "SINGULARITY_DOCKER_USERNAME"
	EnvSingularityPassword = "SINGULARITY_DOCKER_PASSWORD"
)

// hostKeychain answers for ACR login servers and explicitly allowed hosts, and with
// authn.Anonymous for every other host, so that authn.NewMultiKeychain moves on to
// the next keychain.
type hostKeychain struct {
	kind  string // the constructor's name, for printing
	hosts []string
	// auth returns the authenticator for a host that matched, or nil for none.
	auth func(host string) authn.Authenticator
}

var (
	_ authn.Keychain        = (*hostKeychain)(nil)
	_ authn.ContextKeychain = (*hostKeychain)(nil)
	_ fmt.Formatter         = (*hostKeychain)(nil)
	_ slog.LogValuer        = (*hostKeychain)(nil)
)

func (k *hostKeychain) String() string {
	return fmt.Sprintf("acr.%s{Hosts:%v}", k.kind, k.hosts)
}

// GoString is String, for %#v.
func (k *hostKeychain) GoString() string { return k.String() }

// Format prints String for every verb: the keychain holds secrets in its closure.
func (k *hostKeychain) Format(f fmt.State, verb rune) { formatString(f, verb, k.String()) }

// LogValue shows the kind of keychain and the hosts it answers for.
func (k *hostKeychain) LogValue() slog.Value {
	return slog.GroupValue(slog.String("keychain", k.kind), slog.Any("hosts", k.hosts))
}

// Resolve implements authn.Keychain.
func (k *hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	host := strings.ToLower(r.RegistryStr())
	if !IsLoginServer(host) && !slices.Contains(k.hosts, host) {
		return authn.Anonymous, nil
	}
	if a := k.auth(host); a != nil {
		return a, nil
	}
	return authn.Anonymous, nil
}

// ResolveContext implements authn.ContextKeychain. Resolving makes no request, so the
// context is not used.
func (k *hostKeychain) ResolveContext(_ context.Context, r authn.Resource) (authn.Authenticator, error) {
	return k.Resolve(r)
}

// NewAADKeychain returns a keychain that hands out an AADAuthenticator for every ACR
// login server (see IsLoginServer) and for the hosts added with WithHosts, and
// authn.Anonymous for any other host, so an Azure AD token never reaches a registry
// that is not ACR. One authenticator is kept per host, so its refresh token is reused
// across pushes. The options are those of NewAADAuthenticator, plus WithHosts; the
// defaults are the same.
func NewAADKeychain(cred azcore.TokenCredential, opts ...Option) (authn.Keychain, error) {
	o, err := makeOptions("acr.NewAADKeychain", callAADKeychain, opts)
	if err != nil {
		return nil, err
	}
	if cred == nil {
		return nil, errors.New("acr.NewAADKeychain: azure AD credential must not be nil")
	}
	return newAADKeychain(cred, o), nil
}

func newAADKeychain(cred azcore.TokenCredential, o *options) authn.Keychain {
	var mu sync.Mutex
	byHost := map[string]*AADAuthenticator{}
	return &hostKeychain{kind: "AADKeychain", hosts: o.hosts, auth: func(host string) authn.Authenticator {
		mu.Lock()
		defer mu.Unlock()
		a, ok := byHost[host]
		if !ok {
			a = newAADAuthenticator(host, cred, o)
			byHost[host] = a
		}
		return a
	}}
}

// NewAdminKeychain returns a keychain that answers with the admin user name and
// password (the portal's Access keys) for exactly one login server, and with
// authn.Anonymous for every other host: one registry's key is no use to another, and
// must not be shown to it.
func NewAdminKeychain(loginServer, username, password string) authn.Keychain {
	host := strings.ToLower(loginServer)
	admin := fixedCredentials("admin", host, authn.AuthConfig{Username: username, Password: password})
	return &hostKeychain{kind: "AdminKeychain", hosts: []string{host}, auth: func(h string) authn.Authenticator {
		if h != host {
			return nil
		}
		return admin
	}}
}

// NewEnvKeychain returns a keychain that reads APPTAINER_DOCKER_USERNAME and
// APPTAINER_DOCKER_PASSWORD, or else SINGULARITY_DOCKER_USERNAME and
// SINGULARITY_DOCKER_PASSWORD, each time it is asked, the way Apptainer and
// Singularity take registry credentials from the environment. It answers for ACR login
// servers and the hosts added with WithHosts only, and with authn.Anonymous when the
// variables are unset or the host is another one.
//
// A user name of 00000000-0000-0000-0000-000000000000 (NullGUIDUsername) marks the
// password as an ACR refresh token, as `az acr login --expose-token` prints it; it is
// then used as an identity token. Only WithHosts applies; the default is ACR login
// servers only.
func NewEnvKeychain(opts ...Option) (authn.Keychain, error) {
	o, err := makeOptions("acr.NewEnvKeychain", callEnvKeychain, opts)
	if err != nil {
		return nil, err
	}
	return newEnvKeychain(o), nil
}

func newEnvKeychain(o *options) authn.Keychain {
	return &hostKeychain{kind: "EnvKeychain", hosts: o.hosts, auth: func(host string) authn.Authenticator {
		cfg, ok := envCredentials(os.Getenv)
		if !ok {
			return nil
		}
		return fixedCredentials("environment", host, cfg)
	}}
}

// envCredentials returns the first complete pair of Apptainer or Singularity
// registry credentials; a variable set to "" counts as unset.
func envCredentials(getenv func(string) string) (authn.AuthConfig, bool) {
	pairs := [][2]string{
		{EnvApptainerUsername, EnvApptainerPassword},
		{EnvSingularityUsername, EnvSingularityPassword},
	}
	for _, p := range pairs {
		user, pass := getenv(p[0]), getenv(p[1])
		if user == "" || pass == "" {
			continue
		}
		if user == NullGUIDUsername {
			return authn.AuthConfig{Username: user, IdentityToken: pass}, true
		}
		return authn.AuthConfig{Username: user, Password: pass}, true
	}
	return authn.AuthConfig{}, false
}

// NewKeychain returns the keychain Push, Pull, ListTags and Catalog use by default,
// tried in this order, the first with credentials for a host winning:
//
//  1. the environment (NewEnvKeychain), which Apptainer and Singularity document as
//     overriding stored credentials;
//  2. the docker config file (go-containerregistry's authn.DefaultKeychain:
//     $DOCKER_CONFIG/config.json or ~/.docker/config.json, including the identitytoken
//     `az acr login` writes, and $REGISTRY_AUTH_FILE);
//  3. Azure AD through cred (NewAADKeychain), if cred is not nil.
//
// The first and third answer for ACR login servers and WithHosts hosts only; the docker
// config file answers for the hosts it lists. The options are those of NewAADKeychain.
func NewKeychain(cred azcore.TokenCredential, opts ...Option) (authn.Keychain, error) {
	o, err := makeOptions("acr.NewKeychain", callKeychain, opts)
	if err != nil {
		return nil, err
	}
	return newKeychain(cred, o), nil
}

func newKeychain(cred azcore.TokenCredential, o *options) authn.Keychain {
	chain := chainKeychain{newEnvKeychain(o), dockerConfigKeychain{}}
	if cred != nil {
		chain = append(chain, newAADKeychain(cred, o))
	}
	return chain
}

// chainKeychain is authn.NewMultiKeychain's rule, the first keychain with credentials
// for a host wins, in a type that prints its members.
type chainKeychain []authn.Keychain

var (
	_ authn.Keychain        = chainKeychain(nil)
	_ authn.ContextKeychain = chainKeychain(nil)
	_ fmt.Formatter         = chainKeychain(nil)
	_ slog.LogValuer        = chainKeychain(nil)
)

// Resolve implements authn.Keychain.
func (c chainKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	// The authn.Keychain interface has no context to pass on.
	return c.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (c chainKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	for _, kc := range c {
		a, err := authn.Resolve(ctx, kc, r)
		if err != nil {
			return nil, err
		}
		if a != authn.Anonymous {
			return a, nil
		}
	}
	return authn.Anonymous, nil
}

func (c chainKeychain) String() string {
	s := make([]string, len(c))
	for i, kc := range c {
		s[i] = fmt.Sprint(kc)
	}
	return "acr.Keychain[" + strings.Join(s, " ") + "]"
}

// GoString is String, for %#v.
func (c chainKeychain) GoString() string { return c.String() }

// Format prints String for every verb.
func (c chainKeychain) Format(f fmt.State, verb rune) { formatString(f, verb, c.String()) }

// LogValue lists the keychains in their order.
func (c chainKeychain) LogValue() slog.Value { return slog.StringValue(c.String()) }

// dockerConfigKeychain is go-containerregistry's authn.DefaultKeychain, whose
// authenticators it hands out in a type that prints without their secrets.
type dockerConfigKeychain struct{}

// Resolve implements authn.Keychain.
func (k dockerConfigKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	// The authn.Keychain interface has no context to pass on.
	return k.ResolveContext(context.Background(), r)
}

// ResolveContext implements authn.ContextKeychain.
func (dockerConfigKeychain) ResolveContext(ctx context.Context, r authn.Resource) (authn.Authenticator, error) {
	a, err := authn.Resolve(ctx, authn.DefaultKeychain, r)
	if err != nil || a == authn.Anonymous {
		return a, err
	}
	return &credentials{source: "docker config", host: r.RegistryStr(), inner: a}, nil
}

func (dockerConfigKeychain) String() string { return "acr.DockerConfigKeychain" }
