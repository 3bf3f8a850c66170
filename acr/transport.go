package acr

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/hpcship/hpcship/internal/backoff"
)

// registryTransport sits under go-containerregistry's transports (and under the
// token exchange). It does two things:
//
//   - It never lets credentials follow a redirect to another host. ACR redirects blob
//     GETs to Azure Storage with a SAS in the URL, which rejects a forwarded
//     Authorization, and no other host may see the registry's token.
//     go-containerregistry sets Authorization only on requests for the registry host,
//     after net/http has taken the copy of the first request's headers that it puts on
//     redirects, so with it nothing arrives here to strip. But net/http does forward
//     an Authorization the first request carried to the same host name on another port
//     or to a subdomain, so as the last layer before the wire, a redirected request for
//     a host other than the registry loses its Authorization and Cookie headers here,
//     whoever set them.
//   - It retries 408, 429 and 5xx answers and dropped connections, waiting as long as
//     Retry-After says (go-containerregistry's own retry ignores it), with bodies
//     replayed from Request.GetBody. A PATCH into an upload session is never replayed
//     into the same session, because the registry may have kept part of the body:
//     after waiting, the answer goes back to go-containerregistry, whose upload retry
//     starts the blob over from a new session.
type registryTransport struct {
	inner         http.RoundTripper
	host          string
	attempts      int
	backoff       time.Duration
	maxRetryAfter time.Duration
	logger        *slog.Logger
	// secrets, if not nil, records the credentials of the Authorization headers sent.
	secrets *secretSet
}

// maxBackoff caps the doubling backoff between two tries of one request.
const maxBackoff = 30 * time.Second

func newRegistryTransport(host string, o *options) *registryTransport {
	return &registryTransport{
		inner:         o.transport,
		host:          strings.ToLower(host),
		attempts:      o.attempts,
		backoff:       o.backoff,
		maxRetryAfter: o.maxRetryAfter,
		logger:        o.logger,
	}
}

func (t *registryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	// req.Response is set on requests net/http makes to follow a redirect. Token
	// requests to a realm on another host (Docker Hub's) are no redirects and keep
	// the credentials go-containerregistry gave them.
	foreign := req.Response != nil && !strings.EqualFold(req.URL.Host, t.host)
	if foreign && (req.Header.Get("Authorization") != "" || req.Header.Get("Cookie") != "") {
		t.logger.DebugContext(ctx, "dropping credentials on a redirect to another host", "registry", t.host, "host", req.URL.Host)
	}
	// Requests with GetBody always send a fresh copy, so a request that
	// go-containerregistry sends again after a 401 carries its whole body.
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil
	if req.Body != nil && req.Body != http.NoBody && req.GetBody != nil {
		req.Body.Close()
	}
	inPlace := replayable && req.Method != http.MethodPatch

	for attempt := 1; ; attempt++ {
		out := req.Clone(ctx)
		if foreign {
			out.Header.Del("Authorization")
			out.Header.Del("Cookie")
		}
		if a := out.Header.Get("Authorization"); a != "" {
			t.secrets.addAuthorization(a)
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			out.Body = body
		}
		resp, err := t.inner.RoundTrip(out)
		retry, wait := t.classify(resp, err, attempt)
		last := !retry || attempt >= t.attempts || !inPlace
		if last {
			// Nothing to replay, but a throttled upload still waits as asked before
			// go-containerregistry starts it over.
			if retry && !inPlace && resp != nil && resp.Header.Get("Retry-After") != "" {
				if werr := backoff.Sleep(ctx, wait); werr != nil {
					resp.Body.Close()
					return nil, werr
				}
			}
			return resp, err
		}
		t.logger.WarnContext(ctx, "retrying registry request", "method", req.Method, "host", req.URL.Host,
			"path", req.URL.Path, "status", statusOf(resp), "error", errString(err), "attempt", attempt, "wait", wait)
		if resp != nil {
			_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
			resp.Body.Close()
		}
		if err := backoff.Sleep(ctx, wait); err != nil {
			return nil, err
		}
	}
}

// classify says whether an answer is worth another try and how long to wait first.
func (t *registryTransport) classify(resp *http.Response, err error, attempt int) (bool, time.Duration) {
	wait := backoff.Exponential(t.backoff, maxBackoff, attempt)
	if err != nil {
		return isTransient(err), wait
	}
	switch resp.StatusCode {
	case http.StatusRequestTimeout, http.StatusTooManyRequests, http.StatusInternalServerError,
		http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
	default:
		return false, 0
	}
	if d, ok := retryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return true, min(d, t.maxRetryAfter)
	}
	return true, wait
}

// retryAfter parses a Retry-After header: delay-seconds or an HTTP date.
func retryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.ParseInt(v, 10, 64); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, int64(24*time.Hour/time.Second))) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}

// isTransient reports whether a transport error is a dropped connection that a new
// attempt may get past. A cancelled or expired context is not, and neither is a
// refused connection or a timeout: retrying those only makes a dead registry slower
// to report.
func isTransient(err error) bool {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, syscall.ECONNRESET) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed)
}

func statusOf(resp *http.Response) int {
	if resp == nil {
		return 0
	}
	return resp.StatusCode
}

// errString renders a transport error for a log line. A *url.Error carries the
// request URL, whose query may hold a storage SAS, so only its cause is kept.
func errString(err error) string {
	if err == nil {
		return ""
	}
	var uerr *url.Error
	if errors.As(err, &uerr) {
		return uerr.Err.Error()
	}
	return err.Error()
}
