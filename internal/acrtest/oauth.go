package acrtest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"
)

// acrClaims are the claims of ACR's refresh and access tokens. Times are integer seconds
// and aud a single string: docker-registry rejects tokens with fractional times or an
// audience array.
type acrClaims struct {
	Jti       string        `json:"jti"`
	Sub       string        `json:"sub"`
	Nbf       int64         `json:"nbf"`
	Exp       int64         `json:"exp"`
	Iat       int64         `json:"iat"`
	Iss       string        `json:"iss"`
	Aud       string        `json:"aud"`
	Version   string        `json:"version"`
	GrantType string        `json:"grant_type"`
	Tenant    string        `json:"tenant,omitempty"`
	Access    []accessEntry `json:"access,omitempty"`
}

// accessEntry is one resource an access token grants, docker's token format.
type accessEntry struct {
	Type    string   `json:"type"`
	Name    string   `json:"name"`
	Actions []string `json:"actions"`
}

// acrError is one entry of ACR's {"errors":[...]} response body.
type acrError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// The messages of ACR's error bodies.
const (
	msgUnauthorized    = "authentication required, visit https://aka.ms/acr/authorization for more information."
	msgTooManyRequests = "Too many requests. Please visit https://aka.ms/acr/skus#sku-feature-matrix to view limits of all service tiers."
)

// writeErrors answers with ACR's error body. The message contains no secret unless
// WithEchoedCredentials asks for them.
func writeErrors(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(struct { // The client went away.
		Errors []acrError `json:"errors"`
	}{[]acrError{{Code: code, Message: message}}})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	json.NewEncoder(w).Encode(v) // The client went away.
}

// requestError is a refusal the token endpoints answer with an ACR error body.
type requestError struct {
	status int
	code   string
	reason string // logged and sent; never contains a secret
}

func (e *requestError) Error() string { return e.reason }

func badRequest(format string, args ...any) error {
	return &requestError{http.StatusBadRequest, "BAD_REQUEST", fmt.Sprintf(format, args...)}
}

func unauthorized(format string, args ...any) error {
	return &requestError{http.StatusUnauthorized, "UNAUTHORIZED", fmt.Sprintf(format, args...)}
}

// refuse answers err as ACR would and logs why.
func (r *Registry) refuse(w http.ResponseWriter, req *http.Request, err error) {
	var re *requestError
	if !errors.As(err, &re) {
		re = &requestError{http.StatusInternalServerError, "UNKNOWN", err.Error()}
	}
	r.log.Info("acrtest refused token request", "path", req.URL.Path, "status", re.status, "reason", re.reason)
	msg := re.reason
	if re.status == http.StatusUnauthorized {
		msg = msgUnauthorized + " " + re.reason
		if r.opts.echoCredentials {
			msg += " (sent: " + sentCredentials(req) + ")"
		}
	}
	writeErrors(w, re.status, re.code, msg)
}

// sentCredentials lists the credentials a token request carried, for
// WithEchoedCredentials.
func sentCredentials(req *http.Request) string {
	var sent []string
	if a := req.Header.Get("Authorization"); a != "" {
		sent = append(sent, "Authorization: "+a)
	}
	for _, k := range []string{"username", "password", "refresh_token", "access_token"} {
		if v := req.PostForm.Get(k); v != "" {
			sent = append(sent, k+"="+v)
		}
	}
	return strings.Join(sent, ", ")
}

// parseForm reads a form-encoded body (and the query) of at most 1 MiB.
func parseForm(w http.ResponseWriter, req *http.Request) error {
	req.Body = http.MaxBytesReader(w, req.Body, 1<<20)
	if err := req.ParseForm(); err != nil {
		return badRequest("malformed form: %v", err)
	}
	return nil
}

// serveExchange implements POST /oauth2/exchange: an Azure AD access token in, an ACR
// refresh token out. ACR answers other methods with 404.
func (r *Registry) serveExchange(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		http.NotFound(w, req)
		return
	}
	rt, aud, err := r.exchange(w, req)
	if err != nil {
		r.count(func(s *Stats) { s.ExchangeRefusals++ })
		r.refuse(w, req, err)
		return
	}
	r.count(func(s *Stats) {
		s.Exchanges++
		s.ExchangeAudiences[aud]++
	})
	r.log.Info("acrtest exchanged an Azure AD token for a refresh token", "audience", aud)
	writeJSON(w, struct {
		RefreshToken string `json:"refresh_token"`
	}{rt})
}

func (r *Registry) exchange(w http.ResponseWriter, req *http.Request) (refreshToken, audience string, err error) {
	if err := parseForm(w, req); err != nil {
		return "", "", err
	}
	if g := req.PostForm.Get("grant_type"); g != "access_token" {
		return "", "", badRequest("unsupported grant_type %q, want access_token", g)
	}
	if err := r.checkService(req.PostForm.Get("service")); err != nil {
		return "", "", err
	}
	aadToken := req.PostForm.Get("access_token")
	if aadToken == "" {
		return "", "", badRequest("access_token is required")
	}
	claims, err := r.verifyAADToken(aadToken, req.PostForm.Get("tenant"))
	if err != nil {
		return "", "", err
	}
	rt, err := r.refreshToken(claims.Oid, claims.Tid)
	return rt, claims.Aud, err
}

// refreshToken mints an ACR refresh token for the Azure AD principal oid of tenant.
func (r *Registry) refreshToken(oid, tenant string) (string, error) {
	now := time.Now()
	return r.acrKey.sign(acrClaims{
		Jti:       newGUID(),
		Sub:       oid,
		Nbf:       now.Unix(),
		Iat:       now.Unix(),
		Exp:       expiry(now, r.opts.refreshTTL),
		Iss:       issuer,
		Aud:       r.service,
		Version:   "1.0",
		GrantType: "refresh_token",
		Tenant:    tenant,
	})
}

func (r *Registry) checkService(service string) error {
	if service != r.service {
		return badRequest("service %q is not this registry, want %q", service, r.service)
	}
	return nil
}

// verifyRefreshToken checks an ACR refresh token from /oauth2/exchange: signature, issuer,
// audience, kind and expiry.
func (r *Registry) verifyRefreshToken(token string) (acrClaims, error) {
	var c acrClaims
	if err := r.acrKey.verify(token, &c); err != nil {
		return c, unauthorized("refresh token: %v", err)
	}
	switch {
	case c.Iss != issuer:
		return c, unauthorized("refresh token: untrusted issuer")
	case c.Aud != r.service:
		return c, unauthorized("refresh token: intended for another registry")
	case c.GrantType != "refresh_token":
		return c, unauthorized("refresh token: not a refresh token")
	case time.Now().Unix() >= c.Exp:
		return c, unauthorized("refresh token: expired")
	}
	return c, nil
}

// serveToken implements /oauth2/token: POST grant_type=refresh_token or
// grant_type=password (form), and GET with Basic authentication. Every way answers
// {"access_token": ...} for the requested scopes.
func (r *Registry) serveToken(w http.ResponseWriter, req *http.Request) {
	subject, grant, err := r.authenticateTokenRequest(w, req)
	var scopes []accessEntry
	if err == nil {
		scopes, err = parseScopes(req.Form["scope"])
	}
	var at string
	if err == nil {
		at, err = r.accessToken(subject, grant, scopes)
	}
	if err != nil {
		r.count(func(s *Stats) { s.TokenRefusals++ })
		r.refuse(w, req, err)
		return
	}
	r.count(func(s *Stats) { s.AccessTokens[grant]++ })
	r.log.Info("acrtest issued an access token", "grant", string(grant), "scopes", scopeList(scopes))
	writeJSON(w, struct {
		AccessToken string `json:"access_token"`
	}{at})
}

// authenticateTokenRequest finds who asks for an access token and how.
func (r *Registry) authenticateTokenRequest(w http.ResponseWriter, req *http.Request) (subject string, grant Grant, err error) {
	if err := parseForm(w, req); err != nil {
		return "", "", err
	}
	switch req.Method {
	case http.MethodGet:
		if err := r.checkService(req.Form.Get("service")); err != nil {
			return "", "", err
		}
		user, password, ok := req.BasicAuth()
		if !ok {
			return "", "", unauthorized("anonymous pull is not enabled")
		}
		subject, viaRT, err := r.checkPassword(user, password)
		if viaRT {
			return subject, GrantBasicRT, err
		}
		return subject, GrantBasicAdmin, err
	case http.MethodPost:
		if err := r.checkService(req.PostForm.Get("service")); err != nil {
			return "", "", err
		}
		switch g := req.PostForm.Get("grant_type"); g {
		case "refresh_token":
			rt := req.PostForm.Get("refresh_token")
			if rt == "" {
				return "", "", badRequest("refresh_token is required")
			}
			c, err := r.verifyRefreshToken(rt)
			return c.Sub, GrantRefreshToken, err
		case "password":
			user, password := req.PostForm.Get("username"), req.PostForm.Get("password")
			if user == "" && password == "" {
				return "", "", unauthorized("anonymous pull is not enabled")
			}
			subject, viaRT, err := r.checkPassword(user, password)
			if viaRT {
				return subject, GrantPasswordRT, err
			}
			return subject, GrantPasswordAdmin, err
		default:
			return "", "", badRequest("unsupported grant_type %q, want refresh_token or password", g)
		}
	default:
		return "", "", &requestError{http.StatusMethodNotAllowed, "UNSUPPORTED", "method not allowed"}
	}
}

// checkPassword accepts the admin user with its password, or the null GUID with an ACR
// refresh token as the password.
func (r *Registry) checkPassword(user, password string) (subject string, viaRefreshToken bool, err error) {
	if user == NullGUID {
		c, err := r.verifyRefreshToken(password)
		return c.Sub, true, err
	}
	userOK := subtle.ConstantTimeCompare([]byte(user), []byte(r.opts.adminUser)) == 1
	passOK := subtle.ConstantTimeCompare([]byte(password), []byte(r.opts.adminPassword)) == 1
	if !userOK || !passOK {
		return "", false, unauthorized("wrong user name or password")
	}
	return user, false, nil
}

// accessToken mints an access token for subject that docker-registry accepts: RS256, the
// libtrust kid of the certificate in its rootcertbundle, aud = service.
func (r *Registry) accessToken(subject string, grant Grant, scopes []accessEntry) (string, error) {
	now := time.Now()
	return r.acrKey.sign(acrClaims{
		Jti:       rand.Text(),
		Sub:       subject,
		Nbf:       now.Unix(),
		Iat:       now.Unix(),
		Exp:       expiry(now, r.opts.accessTTL),
		Iss:       issuer,
		Aud:       r.service,
		Version:   "1.0",
		GrantType: grantType(grant),
		Access:    scopes,
	})
}

// grantType is the grant_type claim ACR puts in access tokens: how the caller
// authenticated, refresh token or password (Basic authentication is a password too).
func grantType(g Grant) string {
	if g == GrantRefreshToken {
		return "refresh_token"
	}
	return "password"
}

// parseScopes parses docker token scopes, "type:name:action[,action...]". Values may
// repeat (as ACR documents) or hold several space-separated scopes (as ggcr sends them).
// The name is everything between the first and the last colon.
func parseScopes(values []string) ([]accessEntry, error) {
	var out []accessEntry
	for _, v := range values {
		for _, s := range strings.Fields(v) {
			i, j := strings.Index(s, ":"), strings.LastIndex(s, ":")
			if i <= 0 || j <= i+1 || j == len(s)-1 {
				return nil, badRequest("malformed scope %q", s)
			}
			out = append(out, accessEntry{Type: s[:i], Name: s[i+1 : j], Actions: strings.Split(s[j+1:], ",")})
		}
	}
	return out, nil
}

// scopeList formats scopes for logs.
func scopeList(scopes []accessEntry) []string {
	out := make([]string, len(scopes))
	for i, s := range scopes {
		out[i] = s.Type + ":" + s.Name + ":" + strings.Join(s.Actions, ",")
	}
	return out
}

// expiry returns the "exp" of a token issued at now for ttl: whole seconds, rounded up so
// that the token lives at least ttl.
func expiry(now time.Time, ttl time.Duration) int64 {
	return now.Add(ttl + time.Second - 1).Unix()
}
