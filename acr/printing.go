package acr

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"strconv"

	"github.com/google/go-containerregistry/pkg/authn"
)

// credentials is an authenticator of this package's keychains. It prints as its
// source, registry and user name, never its secrets, whatever the fmt verb or slog
// handler: Format serves every verb, so not even %d or %x reach the fields.
type credentials struct {
	source string // where the credentials came from, such as "admin" or "environment"
	host   string
	user   string
	inner  authn.Authenticator
}

var (
	_ authn.Authenticator        = (*credentials)(nil)
	_ authn.ContextAuthenticator = (*credentials)(nil)
	_ fmt.Formatter              = (*credentials)(nil)
	_ slog.LogValuer             = (*credentials)(nil)
)

// fixedCredentials returns the credentials cfg from source for host.
func fixedCredentials(source, host string, cfg authn.AuthConfig) *credentials {
	return &credentials{source: source, host: host, user: cfg.Username, inner: authn.FromConfig(cfg)}
}

// Authorization implements authn.Authenticator.
func (c *credentials) Authorization() (*authn.AuthConfig, error) { return c.inner.Authorization() }

// AuthorizationContext implements authn.ContextAuthenticator.
func (c *credentials) AuthorizationContext(ctx context.Context) (*authn.AuthConfig, error) {
	return authn.Authorization(ctx, c.inner)
}

func (c *credentials) String() string {
	s := "acr.Credentials{Source:" + c.source + " Registry:" + c.host
	if c.user != "" {
		s += " Username:" + c.user
	}
	return s + "}"
}

// GoString is String, for %#v.
func (c *credentials) GoString() string { return c.String() }

// Format prints String for every verb.
func (c *credentials) Format(f fmt.State, verb rune) { formatString(f, verb, c.String()) }

// LogValue shows the source, registry and user name.
func (c *credentials) LogValue() slog.Value {
	attrs := []slog.Attr{slog.String("source", c.source), slog.String("registry", c.host)}
	if c.user != "" {
		attrs = append(attrs, slog.String("username", c.user))
	}
	return slog.GroupValue(attrs...)
}

// formatString writes s for any verb: quoted for %q, as it is otherwise.
func formatString(f fmt.State, verb rune, s string) {
	if verb == 'q' {
		s = strconv.Quote(s)
	}
	io.WriteString(f, s) // fmt.State's writes go to fmt's buffer, which does not fail.
}
