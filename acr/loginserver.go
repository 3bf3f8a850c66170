package acr

import (
	"fmt"
	"net"
	"strings"
)

// Cloud is an Azure cloud. It decides the login-server suffix of a registry and the
// Azure Resource Manager endpoint that manages it.
type Cloud int

// The Azure clouds ACR runs in.
const (
	// AzurePublic is the global Azure cloud: login servers end in .azurecr.io.
	AzurePublic Cloud = iota
	// AzureChina is Azure operated by 21Vianet: login servers end in .azurecr.cn.
	AzureChina
	// AzureUSGovernment is Azure Government: login servers end in .azurecr.us.
	AzureUSGovernment
)

// LoginServerSuffix returns the domain suffix of the cloud's login servers, with its
// leading dot, such as ".azurecr.io", or "" for an unknown cloud.
func (c Cloud) LoginServerSuffix() string {
	switch c {
	case AzurePublic:
		return ".azurecr.io"
	case AzureChina:
		return ".azurecr.cn"
	case AzureUSGovernment:
		return ".azurecr.us"
	}
	return ""
}

func (c Cloud) String() string {
	switch c {
	case AzurePublic:
		return "AzurePublic"
	case AzureChina:
		return "AzureChina"
	case AzureUSGovernment:
		return "AzureUSGovernment"
	}
	return fmt.Sprintf("Cloud(%d)", int(c))
}

// ValidateRegistryName checks a registry name against Azure's rules: 5 to 50
// characters, ASCII letters and digits only. It returns a *NameError, which matches
// ErrInvalidName, so a bad name fails before any network call.
func ValidateRegistryName(name string) error {
	if n := len(name); n < 5 || n > 50 {
		return &NameError{Name: name, Reason: fmt.Sprintf("must be 5 to 50 characters, got %d", n)}
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9') {
			return &NameError{Name: name, Reason: fmt.Sprintf("character %q at offset %d is not a letter or digit", c, i)}
		}
	}
	return nil
}

// LoginServer returns the conventional login server of a registry in the cloud, such
// as myacr.azurecr.io for "myACR" in AzurePublic. Registry names are case-insensitive
// and login servers are lower case.
//
// Azure may assign a different login server (registries created with a domain-name
// label get a hashed suffix), so prefer the one Azure Resource Manager reports
// (package acr/arm: Registry.LoginServer, Registries.LoginServer) and use this only
// when ARM is out of reach.
func (c Cloud) LoginServer(registryName string) (string, error) {
	if err := ValidateRegistryName(registryName); err != nil {
		return "", err
	}
	suffix := c.LoginServerSuffix()
	if suffix == "" {
		return "", fmt.Errorf("unknown cloud %v", c)
	}
	return strings.ToLower(registryName) + suffix, nil
}

// IsLoginServer reports whether host is an ACR login server in one of the known clouds:
// exactly one DNS label of lower-case letters, digits and hyphens followed by
// .azurecr.io, .azurecr.cn or .azurecr.us, with no port. The match is anchored at both
// ends, so evil.azurecr.io.example.com and azurecr.io.evil are not login servers, and
// neither are deeper names such as a dedicated data endpoint
// (myacr.westeurope.data.azurecr.io), which never needs registry credentials.
func IsLoginServer(host string) bool {
	for _, c := range []Cloud{AzurePublic, AzureChina, AzureUSGovernment} {
		label, ok := strings.CutSuffix(host, c.LoginServerSuffix())
		if ok && isLabel(label) {
			return true
		}
	}
	return false
}

// isLabel reports whether s is one lower-case DNS label: 1 to 63 of [a-z0-9-], not
// starting or ending with a hyphen.
func isLabel(s string) bool {
	if len(s) == 0 || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// isLoopback reports whether host (with or without a port) names this machine, the
// only place this package talks plain HTTP to.
func isLoopback(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return ip != nil && ip.IsLoopback()
}
