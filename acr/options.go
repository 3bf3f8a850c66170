package acr

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/hpcship/hpcship/internal/callopt"
)

// Default values of the data-plane options.
const (
	// DefaultAADScope is the Azure AD scope whose tokens ACR's /oauth2/exchange accepts
	// in every cloud. It is the ACR audience, which grants nothing outside registries,
	// rather than the broader Azure Resource Manager audience.
	DefaultAADScope = "https://containerregistry.azure.net/.default"
	// NullGUIDUsername is the user name that tells ACR the secret next to it is an ACR
	// refresh token, not a password.
	NullGUIDUsername = "00000000-0000-0000-0000-000000000000"

	defaultJobs          = 4
	defaultAttempts      = 5
	defaultBackoff       = 250 * time.Millisecond
	defaultMaxRetryAfter = time.Minute
)

// Option configures a call of this package. Each option applies to some calls only,
// as its documentation says; a call given an option it does not take, or an invalid
// value, fails with an *OptionError that names both.
type Option struct{ opt callopt.Option[options] }

func option(name string, calls call, apply func(*options) error) Option {
	return Option{callopt.Option[options]{Name: name, Calls: calls, Apply: apply}}
}

func (o Option) spec() callopt.Option[options] { return o.opt }

// call is a set of the calls that take options.
type call = callopt.Calls

const (
	callPush        call = 1 << iota // Push, PushIndex
	callRead                         // Pull, ListTags, Catalog
	callAAD                          // NewAADAuthenticator
	callAADKeychain                  // NewAADKeychain
	callEnvKeychain                  // NewEnvKeychain
	callKeychain                     // NewKeychain

	callsRegistry = callPush | callRead
	callsAAD      = callAAD | callAADKeychain | callKeychain
	callsHTTP     = callsRegistry | callsAAD
	callsHosts    = callsRegistry | callAADKeychain | callEnvKeychain | callKeychain
)

// OptionError reports an option that a call rejected: an invalid value, an option the
// call does not take, or options that conflict. Its Call is the function that was given
// the option, such as "acr.Push", its Option the option's name, such as "WithJobs", and
// its Err what is wrong; its text is "Call: Option: Err", and Unwrap returns Err.
type OptionError = callopt.Error

type options struct {
	logger        *slog.Logger
	jobs          int
	progress      func(Progress)
	attempts      int
	backoff       time.Duration
	maxRetryAfter time.Duration
	transport     http.RoundTripper
	hosts         []string
	auth          authn.Authenticator
	keychain      authn.Keychain
	aadScope      string
	tenant        string
	userAgent     string
}

// makeOptions applies opts for the call named name, which is one of c.
func makeOptions(name string, c call, opts []Option) (*options, error) {
	o := &options{
		logger:        slog.New(slog.DiscardHandler),
		jobs:          defaultJobs,
		attempts:      defaultAttempts,
		backoff:       defaultBackoff,
		maxRetryAfter: defaultMaxRetryAfter,
		transport:     remote.DefaultTransport,
		aadScope:      DefaultAADScope,
		userAgent:     "hpcship-acr",
	}
	given, err := callopt.Apply(name, c, o, opts, Option.spec)
	if err != nil {
		return nil, err
	}
	if err := given.Exclusive(name, "WithAuth", "WithKeychain"); err != nil {
		return nil, err
	}
	if given["WithHosts"] && c&callsRegistry != 0 && (given["WithAuth"] || given["WithKeychain"]) {
		return nil, &OptionError{Call: name, Option: "WithHosts", Err: errors.New(
			"applies to the default keychain only: pass the hosts to the keychain given with WithKeychain")}
	}
	return o, nil
}

// Progress reports how far a push has come, in bytes of compressed blobs and manifests.
type Progress struct {
	Complete int64
	Total    int64
}

// WithLogger sets where the package logs retries, token renewals and skipped
// credentials. Log records never contain passwords, tokens or query strings. It applies
// to every call but NewEnvKeychain, which logs nothing. The default is a logger that
// discards everything.
func WithLogger(l *slog.Logger) Option {
	return option("WithLogger", callsHTTP, func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	})
}

// WithJobs sets how many blobs Push and PushIndex upload at once. The default is 4, as
// in go-containerregistry.
func WithJobs(n int) Option {
	return option("WithJobs", callPush, func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("jobs must be positive, got %d", n)
		}
		o.jobs = n
		return nil
	})
}

// WithProgress sets a function that Push and PushIndex call, from one goroutine at a
// time, as bytes reach the registry. The default is no progress reporting.
func WithProgress(f func(Progress)) Option {
	return option("WithProgress", callPush, func(o *options) error {
		o.progress = f
		return nil
	})
}

// WithRetry sets how often a request that failed with 408, 429, 5xx or a dropped
// connection is tried in all (1 to 10), and the first backoff (up to 30s), which
// doubles (with jitter) on each try. A Retry-After header from the registry replaces
// the backoff, up to WithMaxRetryAfter. A blob upload whose data (a PATCH, which is
// never resent into the same upload session) failed that way, or that the registry lost
// (BLOB_UPLOAD_UNKNOWN), is started over from a new session, up to as many uploads in
// all, with the same backoff. Every wait ends with the call's context. It applies to
// every call but NewEnvKeychain, which makes no request. The default is 5 attempts
// starting at 250ms.
func WithRetry(attempts int, backoff time.Duration) Option {
	return option("WithRetry", callsHTTP, func(o *options) error {
		if attempts <= 0 || attempts > 10 {
			return fmt.Errorf("retry attempts must be 1 to 10, got %d", attempts)
		}
		if backoff < 0 || backoff > maxBackoff {
			return fmt.Errorf("retry backoff must be 0 to %v, got %v", maxBackoff, backoff)
		}
		o.attempts, o.backoff = attempts, backoff
		return nil
	})
}

// WithMaxRetryAfter caps how long one wait requested by a Retry-After header may be.
// It applies to every call but NewEnvKeychain. The default is one minute.
func WithMaxRetryAfter(d time.Duration) Option {
	return option("WithMaxRetryAfter", callsHTTP, func(o *options) error {
		if d < 0 {
			return fmt.Errorf("max Retry-After must not be negative, got %v", d)
		}
		o.maxRetryAfter = d
		return nil
	})
}

// WithTransport sets the HTTP transport under the package's retry and
// credential-stripping layer. It applies to every call but NewEnvKeychain. The default
// is go-containerregistry's remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return option("WithTransport", callsHTTP, func(o *options) error {
		if t == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = t
		return nil
	})
}

// WithHosts adds registry hosts, matched exactly including any port (such as
// "127.0.0.1:5000" or "registry.internal.example"), for which the keychains of this
// package hand out credentials in addition to ACR login servers (see IsLoginServer).
// It applies to the keychains, and to Push, PushIndex, Pull, ListTags and Catalog when
// they use the default keychain (given neither WithAuth nor WithKeychain). The default
// is ACR login servers only.
func WithHosts(hosts ...string) Option {
	return option("WithHosts", callsHosts, func(o *options) error {
		for _, h := range hosts {
			if h == "" || strings.ContainsAny(h, "/@ ") {
				return fmt.Errorf("host %q must be a bare host or host:port", h)
			}
			o.hosts = append(o.hosts, strings.ToLower(h))
		}
		return nil
	})
}

// WithAuth sets the credentials Push, PushIndex, Pull, ListTags and Catalog use. It cannot be
// combined with WithKeychain. The default is NewKeychain(nil): the environment, then
// the docker config file.
func WithAuth(a authn.Authenticator) Option {
	return option("WithAuth", callsRegistry, func(o *options) error {
		if a == nil {
			return errors.New("authenticator must not be nil")
		}
		o.auth = a
		return nil
	})
}

// WithKeychain sets the keychain Push, PushIndex, Pull, ListTags and Catalog take
// credentials from. It cannot be combined with WithAuth. The default is NewKeychain(nil): the
// environment, then the docker config file.
func WithKeychain(k authn.Keychain) Option {
	return option("WithKeychain", callsRegistry, func(o *options) error {
		if k == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = k
		return nil
	})
}

// WithAADScope sets the Azure AD scope requested for the token exchanged at
// /oauth2/exchange. ACR also accepts Azure Resource Manager tokens unless the registry
// disabled that ("https://management.azure.com/.default"). It applies to
// NewAADAuthenticator, NewAADKeychain and NewKeychain. The default is DefaultAADScope.
func WithAADScope(scope string) Option {
	return option("WithAADScope", callsAAD, func(o *options) error {
		if scope == "" {
			return errors.New("AAD scope must not be empty")
		}
		o.aadScope = scope
		return nil
	})
}

// WithTenant sets the Azure AD tenant that tokens are requested from and that is sent
// to /oauth2/exchange. It applies to NewAADAuthenticator, NewAADKeychain and
// NewKeychain. The default is the credential's own tenant, and none is sent.
func WithTenant(tenantID string) Option {
	return option("WithTenant", callsAAD, func(o *options) error {
		o.tenant = tenantID
		return nil
	})
}

// WithUserAgent sets the User-Agent of registry requests, token exchanges included. It
// applies to every call but NewEnvKeychain. The default is "hpcship-acr".
func WithUserAgent(ua string) Option {
	return option("WithUserAgent", callsHTTP, func(o *options) error {
		o.userAgent = ua
		return nil
	})
}
