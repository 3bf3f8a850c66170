package acrtest

import (
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"time"
)

// v2Handler serves /v2/: it counts, injects faults, refuses expired access tokens,
// redirects blob downloads to storage when enabled, and forwards the rest to the registry.
func (r *Registry) v2Handler(forward http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.count(func(s *Stats) { s.V2Requests++ })
		if d := r.opts.requestDelay; d > 0 {
			select {
			case <-time.After(d):
			case <-req.Context().Done():
				return
			}
		}
		if fault := r.faults.next(); fault != "" {
			r.inject(w, req, fault)
			return
		}
		if r.expiredAccessToken(req) {
			r.count(func(s *Stats) { s.ExpiredAccessTokens++ })
			r.log.Info("acrtest refused an expired access token", "method", req.Method, "path", req.URL.Path)
			w.Header().Set("WWW-Authenticate", r.challenge(req, "invalid_token"))
			writeErrors(w, http.StatusUnauthorized, "UNAUTHORIZED", msgUnauthorized)
			return
		}
		if r.storage != nil && req.Method == http.MethodGet {
			if m := blobPath.FindStringSubmatch(req.URL.Path); m != nil && r.redirectBlob(w, req, m[2]) {
				return
			}
		}
		forward.ServeHTTP(w, req)
	})
}

// blobPath matches a blob URL: repository name and digest.
var blobPath = regexp.MustCompile(`^/v2/(.+)/blobs/(sha256:[0-9a-f]{64})$`)

// repoPath matches the URLs of repository resources.
var repoPath = regexp.MustCompile(`^/v2/(.+)/(blobs|manifests|tags|referrers)/`)

// expiredAccessToken reports whether req carries one of our access tokens that has
// expired. docker-registry would accept it for another 60 s of leeway; ACR would not.
func (r *Registry) expiredAccessToken(req *http.Request) bool {
	token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return false
	}
	var c acrClaims
	if err := r.acrKey.verify(token, &c); err != nil {
		return false // the registry refuses it and says why
	}
	return time.Now().Unix() >= c.Exp
}

// challenge returns the WWW-Authenticate value docker-registry and ACR send for req:
// realm on the host the client used, service, the scope req needs, and the error if any.
func (r *Registry) challenge(req *http.Request, errCode string) string {
	c := fmt.Sprintf(`Bearer realm="http://%s/oauth2/token",service="%s"`, req.Host, r.service)
	if scope := requiredScope(req); scope != "" {
		c += fmt.Sprintf(`,scope="%s"`, scope)
	}
	if errCode != "" {
		c += fmt.Sprintf(`,error="%s"`, errCode)
	}
	return c
}

// requiredScope returns the token scope docker-registry demands for req.
func requiredScope(req *http.Request) string {
	if req.URL.Path == "/v2/_catalog" {
		return "registry:catalog:*"
	}
	m := repoPath.FindStringSubmatch(req.URL.Path)
	if m == nil {
		return ""
	}
	switch req.Method {
	case http.MethodGet, http.MethodHead:
		return "repository:" + m[1] + ":pull"
	case http.MethodDelete:
		return "repository:" + m[1] + ":delete"
	default:
		return "repository:" + m[1] + ":pull,push"
	}
}

// redirectBlob answers a blob GET the registry would serve to this client with a 307 to a
// signed storage URL, as ACR does. It asks the registry with HEAD and the client's own
// Authorization, so only authorized requests are redirected; it returns false, having
// written nothing, when the registry would not serve the blob.
func (r *Registry) redirectBlob(w http.ResponseWriter, req *http.Request, digest string) bool {
	backend := r.backend
	if backend == "" {
		backend = r.service // the in-memory registry, served in this process
	}
	head, err := http.NewRequestWithContext(req.Context(), http.MethodHead, "http://"+backend+req.URL.Path, nil)
	if err != nil {
		return false
	}
	head.Host = req.Host
	if a := req.Header.Get("Authorization"); a != "" {
		head.Header.Set("Authorization", a)
	}
	resp, err := r.backendTransport.RoundTrip(head)
	if err != nil {
		return false
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	r.count(func(s *Stats) { s.BlobRedirects++ })
	w.Header().Set("Docker-Content-Digest", digest)
	http.Redirect(w, req, r.storage.signedURL(digest), http.StatusTemporaryRedirect)
	return true
}

// requireAccessToken refuses, as docker-registry does, a request without an access token
// that this registry issued, for this service, unexpired, and granting the scope the
// request needs: 401 with a challenge that says what is missing.
func (r *Registry) requireAccessToken(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		token, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		if !ok {
			w.Header().Set("WWW-Authenticate", r.challenge(req, ""))
			writeErrors(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		var c acrClaims
		err := r.acrKey.verify(token, &c)
		if err != nil || c.Iss != issuer || c.Aud != r.service || time.Now().Unix() >= c.Exp {
			w.Header().Set("WWW-Authenticate", r.challenge(req, "invalid_token"))
			writeErrors(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		if scope := requiredScope(req); scope != "" && !grants(c.Access, scope) {
			w.Header().Set("WWW-Authenticate", r.challenge(req, "insufficient_scope"))
			writeErrors(w, http.StatusUnauthorized, "UNAUTHORIZED", "authentication required")
			return
		}
		next.ServeHTTP(w, req)
	})
}

// grants reports whether the access entries allow every action of scope
// ("type:name:action[,action...]").
func grants(access []accessEntry, scope string) bool {
	i, j := strings.Index(scope, ":"), strings.LastIndex(scope, ":")
	typ, name, actions := scope[:i], scope[i+1:j], strings.Split(scope[j+1:], ",")
	for _, action := range actions {
		if !slices.ContainsFunc(access, func(e accessEntry) bool {
			return e.Type == typ && e.Name == name && (slices.Contains(e.Actions, action) || slices.Contains(e.Actions, "*"))
		}) {
			return false
		}
	}
	return true
}
