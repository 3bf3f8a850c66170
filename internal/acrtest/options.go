package acrtest

import (
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"time"
)

// Option configures a test registry started by Start.
type Option func(*options) error

type options struct {
	adminUser, adminPassword string
	tenant                   string
	refreshTTL, accessTTL    time.Duration
	faultRate                float64
	faultSeed                int64
	tokenFaults              bool
	retryAfter               time.Duration
	requestDelay             time.Duration
	blobRedirect             bool
	armAudienceDisabled      bool
	echoCredentials          bool
	inMemory                 bool
	logger                   *slog.Logger
}

// newOptions applies opts over the defaults and rejects combinations that cannot work.
func newOptions(opts []Option) (options, error) {
	o := options{
		adminUser:  "admin",
		refreshTTL: defaultRefreshTTL,
		accessTTL:  defaultAccessTTL,
		retryAfter: time.Second,
		logger:     slog.New(slog.DiscardHandler),
	}
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return o, err
		}
	}
	if o.adminPassword == "" {
		o.adminPassword = rand.Text()
	}
	if o.tenant == "" {
		o.tenant = newGUID()
	}
	return o, nil
}

// ACR's token lifetimes as observed on real registries (see the package documentation).
const (
	defaultRefreshTTL = 3*time.Hour + 15*time.Minute
	defaultAccessTTL  = 75 * time.Minute
)

// WithAdmin enables the admin user with this name and password, as the portal's Access
// keys page shows them. The default is user "admin" with a random password, see
// Registry.AdminCredentials.
func WithAdmin(user, password string) Option {
	return func(o *options) error {
		if user == "" || password == "" {
			return errors.New("admin user and password must not be empty")
		}
		if user == NullGUID {
			return fmt.Errorf("admin user must not be the null GUID %s", NullGUID)
		}
		o.adminUser, o.adminPassword = user, password
		return nil
	}
}

// WithTenant sets the Azure AD tenant ID the registry belongs to: /oauth2/exchange accepts
// only Azure AD tokens issued in this tenant. The default is a random GUID, see
// Registry.Tenant.
func WithTenant(tenant string) Option {
	return func(o *options) error {
		if tenant == "" {
			return errors.New("tenant must not be empty")
		}
		o.tenant = tenant
		return nil
	}
}

// WithRefreshTokenTTL sets how long refresh tokens from /oauth2/exchange stay valid; the
// token server refuses them afterwards. The default is 3h15m, what ACR issues.
func WithRefreshTokenTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("refresh token TTL must be positive, got %v", d)
		}
		o.refreshTTL = d
		return nil
	}
}

// WithAccessTokenTTL sets how long access tokens from /oauth2/token stay valid. The proxy
// answers a /v2/ request that carries an expired access token with 401 and
// error="invalid_token", as docker-registry alone would only after 60 s of leeway.
// The default is 75 minutes, what ACR issues.
func WithAccessTokenTTL(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("access token TTL must be positive, got %v", d)
		}
		o.accessTTL = d
		return nil
	}
}

// WithFaults makes the proxy fail about rate of all /v2/ requests before they reach the
// registry, with the kinds of failure ACR clients meet: 500, 503, 429 with Retry-After,
// and a connection reset. Which request fails and how is drawn from a generator seeded
// with seed, so a sequential client sees the same faults on every run. The default is
// no faults.
func WithFaults(rate float64, seed int64) Option {
	return func(o *options) error {
		if rate < 0 || rate > 1 {
			return fmt.Errorf("fault rate must be within [0, 1], got %v", rate)
		}
		o.faultRate, o.faultSeed = rate, seed
		return nil
	}
}

// WithTokenEndpointFaults extends WithFaults to /oauth2/exchange and /oauth2/token, which
// ACR throttles too. The default injects faults into /v2/ requests only.
func WithTokenEndpointFaults() Option {
	return func(o *options) error {
		o.tokenFaults = true
		return nil
	}
}

// WithRetryAfter sets the Retry-After of injected 429 responses, rounded up to whole
// seconds as the header carries them. The default is 1 s.
func WithRetryAfter(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("retry-after must not be negative, got %v", d)
		}
		o.retryAfter = d
		return nil
	}
}

// WithRequestDelay makes the proxy hold every /v2/ request for d before handling it, to
// stretch a push over token lifetimes or to emulate a distant region. The default is no
// delay.
func WithRequestDelay(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("request delay must not be negative, got %v", d)
		}
		o.requestDelay = d
		return nil
	}
}

// WithBlobRedirect makes the registry answer an authorized blob GET with a 307 redirect
// to a separate storage listener, as ACR redirects to Azure Blob Storage with a SAS URL.
// The storage listener serves the blob without authentication, refuses any request that
// carries an Authorization header (400 InvalidAuthenticationInfo, as Azure Storage does)
// and counts such requests in Stats.StorageAuthorizations. The default is no redirect:
// blobs are served by the registry itself.
func WithBlobRedirect() Option {
	return func(o *options) error {
		o.blobRedirect = true
		return nil
	}
}

// WithARMAudienceDisabled makes /oauth2/exchange refuse Azure AD tokens issued for Azure
// Resource Manager, as a registry with azureADAuthenticationAsArmPolicy disabled does;
// only the ACR audience https://containerregistry.azure.net is accepted. The default
// accepts both.
func WithARMAudienceDisabled() Option {
	return func(o *options) error {
		o.armAudienceDisabled = true
		return nil
	}
}

// WithInMemoryRegistry serves /v2/ from go-containerregistry's in-memory registry
// (pkg/registry) in the test process instead of docker-registry, so that Start needs no
// binary and never skips. The proxy then checks access tokens itself as docker-registry
// does: signature, issuer, audience, expiry and the scope each request needs, answering
// 401 with error="invalid_token" or "insufficient_scope" challenges. Everything else,
// token endpoints, faults, delays and Stats, is the same. Images live in memory until the
// test ends, and Backend returns "". The default is docker-registry.
func WithInMemoryRegistry() Option {
	return func(o *options) error {
		o.inMemory = true
		return nil
	}
}

// WithEchoedCredentials makes the token endpoints repeat, in the message of their 401
// answers, the credentials they were sent: the Authorization header and the password,
// refresh_token and access_token form fields, as careless registries and proxies do.
// It tests that clients keep such answers out of their errors and logs. The proxy's own
// log still never shows them. The default echoes nothing.
func WithEchoedCredentials() Option {
	return func(o *options) error {
		o.echoCredentials = true
		return nil
	}
}

// WithLogger sets where the proxy logs token grants, refusals and injected faults. Tokens
// and passwords are never logged. The default discards everything.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}
