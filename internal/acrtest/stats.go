package acrtest

import "maps"

// Fault is a kind of failure WithFaults injects.
type Fault string

// The faults WithFaults injects, in equal shares.
const (
	FaultInternalError   Fault = "500"   // 500 Internal Server Error with an UNKNOWN error body
	FaultUnavailable     Fault = "503"   // 503 Service Unavailable with an UNAVAILABLE error body
	FaultTooManyRequests Fault = "429"   // 429 Too Many Requests with Retry-After and ACR's TOOMANYREQUESTS body
	FaultReset           Fault = "reset" // the connection is reset (TCP RST) without any response
)

// Grant names how an access token was obtained from /oauth2/token, the keys of
// Stats.AccessTokens.
type Grant string

// The ways /oauth2/token issues access tokens.
const (
	GrantRefreshToken  Grant = "refresh_token"          // POST grant_type=refresh_token (ggcr's identity token flow)
	GrantPasswordAdmin Grant = "password/admin"         // POST grant_type=password with the admin user
	GrantPasswordRT    Grant = "password/refresh_token" // POST grant_type=password, null GUID + refresh token
	GrantBasicAdmin    Grant = "basic/admin"            // GET with Basic auth of the admin user
	GrantBasicRT       Grant = "basic/refresh_token"    // GET with Basic auth of the null GUID + refresh token
)

// Stats counts what the registry's proxy and storage saw. Maps are never nil.
type Stats struct {
	// AADTokens counts tokens issued by the credentials from TokenCredential.
	AADTokens int
	// Exchanges counts refresh tokens issued by /oauth2/exchange.
	Exchanges int
	// ExchangeAudiences counts the audiences of the Azure AD tokens exchanged.
	ExchangeAudiences map[string]int
	// ExchangeRefusals counts /oauth2/exchange requests answered with an error.
	ExchangeRefusals int
	// AccessTokens counts access tokens issued by /oauth2/token, by grant.
	AccessTokens map[Grant]int
	// TokenRefusals counts /oauth2/token requests answered with an error.
	TokenRefusals int
	// V2Requests counts requests for /v2/... that reached the proxy, faulted ones included.
	V2Requests int
	// ExpiredAccessTokens counts /v2/ requests refused because their access token had expired.
	ExpiredAccessTokens int
	// Faults counts injected faults by kind.
	Faults map[Fault]int
	// BlobRedirects counts blob GETs answered with a redirect to storage.
	BlobRedirects int
	// StorageRequests counts requests that reached the storage listener.
	StorageRequests int
	// StorageAuthorizations counts storage requests that carried an Authorization header:
	// credentials forwarded across the redirect. A correct client never sends one.
	StorageAuthorizations int
}

func newStats() Stats {
	return Stats{
		ExchangeAudiences: map[string]int{},
		AccessTokens:      map[Grant]int{},
		Faults:            map[Fault]int{},
	}
}

// Stats returns a copy of the counters so far.
func (r *Registry) Stats() Stats {
	r.mu.Lock()
	defer r.mu.Unlock()
	s := r.stats
	s.ExchangeAudiences = maps.Clone(r.stats.ExchangeAudiences)
	s.AccessTokens = maps.Clone(r.stats.AccessTokens)
	s.Faults = maps.Clone(r.stats.Faults)
	return s
}

// count applies f to the counters under the lock.
func (r *Registry) count(f func(*Stats)) {
	r.mu.Lock()
	defer r.mu.Unlock()
	f(&r.stats)
}
