package acr

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

// TestClassifyStatuses lists which answers are tried again: 408, 429, 500, 502, 503 and 504, and none
// of their neighbours. A retried answer waits as Retry-After says, capped, or the backoff.
func TestClassifyStatuses(t *testing.T) {
	tr := testTransport(t, "myacr.azurecr.io", WithMaxRetryAfter(10*time.Second))
	retried := map[int]bool{408: true, 429: true, 500: true, 502: true, 503: true, 504: true}
	for _, status := range []int{200, 201, 307, 400, 401, 403, 404, 407, 408, 409, 428, 429, 430, 499, 500, 501, 502, 503, 504, 505, 599} {
		retry, wait := tr.classify(&http.Response{StatusCode: status, Header: http.Header{}}, nil, 1)
		assert.Equal(t, retried[status], retry, "status %d", status)
		if !retried[status] {
			assert.Zero(t, wait, "status %d", status)
			continue
		}
		assert.Greater(t, wait, time.Duration(0), "status %d waits the backoff", status)
		assert.Less(t, wait, 2*time.Millisecond, "status %d waits the backoff", status)
	}
	for _, tt := range []struct {
		header string
		want   time.Duration
	}{
		{"0", 0}, {"3", 3 * time.Second}, {"10", 10 * time.Second}, {"11", 10 * time.Second}, {"86400", 10 * time.Second},
	} {
		h := http.Header{"Retry-After": {tt.header}}
		retry, wait := tr.classify(&http.Response{StatusCode: 503, Header: h}, nil, 1)
		assert.True(t, retry)
		assert.Equal(t, tt.want, wait, "Retry-After %s", tt.header)
	}
}

// TestRetryAfterCap pins the one-day cap on a delay-seconds Retry-After.
func TestRetryAfterCap(t *testing.T) {
	now := time.Now()
	for _, tt := range []struct {
		in   string
		want time.Duration
	}{
		{"86399", 86399 * time.Second}, {"86400", 24 * time.Hour}, {"86401", 24 * time.Hour}, {"99999999999", 24 * time.Hour},
	} {
		got, ok := retryAfter(tt.in, now)
		assert.True(t, ok, tt.in)
		assert.Equal(t, tt.want, got, tt.in)
	}
}
