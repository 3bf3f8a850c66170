package acrtest

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestStorageMissingBlob checks that storage answers a signed URL of a blob the
// registry does not hold as Azure Storage does, whichever registry is behind it.
func TestStorageMissingBlob(t *testing.T) {
	for name, opts := range map[string][]Option{
		"docker-registry": {WithBlobRedirect()},
		"in-memory":       {WithBlobRedirect(), WithInMemoryRegistry()},
	} {
		t.Run(name, func(t *testing.T) {
			r := Start(t, opts...)
			req, err := http.NewRequestWithContext(t.Context(), http.MethodGet, r.storage.signedURL("sha256:"+strings.Repeat("0", 64)), nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, http.StatusNotFound, resp.StatusCode)
			assert.Equal(t, "BlobNotFound", resp.Header.Get("X-Ms-Error-Code"))
		})
	}
}

// TestStorageRefusals: each way a storage request can be wrong gets Azure Storage's status and error code,
// the signature and expiry checked before the blob is looked up.
func TestStorageRefusals(t *testing.T) {
	r := Start(t, WithBlobRedirect(), WithInMemoryRegistry())
	s := r.storage
	hex := strings.Repeat("0", 64)
	path := "/docker/registry/v2/blobs/sha256/00/" + hex + "/data"
	signed := func(path string, expiry time.Time) string {
		se := expiry.UTC().Format(time.RFC3339)
		q := url.Values{"se": {se}, "sig": {s.sign(path, se)}}
		return "http://" + s.host + path + "?" + q.Encode()
	}
	future := time.Now().Add(time.Hour)
	tests := []struct {
		name, method, url string
		want              int
		wantCode          string
	}{
		{name: "missing blob", method: http.MethodGet, url: signed(path, future), want: http.StatusNotFound, wantCode: "BlobNotFound"},
		{name: "missing blob, HEAD", method: http.MethodHead, url: signed(path, future), want: http.StatusNotFound, wantCode: "BlobNotFound"},
		{name: "PUT", method: http.MethodPut, url: signed(path, future), want: http.StatusMethodNotAllowed, wantCode: "UnsupportedHttpVerb"},
		{name: "other path", method: http.MethodGet, url: signed("/docker/registry/v2/repositories/x", future), want: http.StatusNotFound, wantCode: "BlobNotFound"},
		{name: "directory not matching the digest", method: http.MethodGet, url: signed("/docker/registry/v2/blobs/sha256/01/"+hex+"/data", future), want: http.StatusNotFound, wantCode: "BlobNotFound"},
		{name: "expired", method: http.MethodGet, url: signed(path, time.Now().Add(-time.Second)), want: http.StatusForbidden, wantCode: "AuthenticationFailed"},
		{name: "no signature", method: http.MethodGet, url: "http://" + s.host + path + "?se=" + url.QueryEscape(future.UTC().Format(time.RFC3339)), want: http.StatusForbidden, wantCode: "AuthenticationFailed"},
		{name: "malformed expiry", method: http.MethodGet, url: "http://" + s.host + path + "?se=soon&sig=" + url.QueryEscape(s.sign(path, "soon")), want: http.StatusForbidden, wantCode: "AuthenticationFailed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, tt.url, nil)
			require.NoError(t, err)
			resp, err := http.DefaultClient.Do(req)
			require.NoError(t, err)
			defer resp.Body.Close()
			assert.Equal(t, tt.want, resp.StatusCode)
			assert.Equal(t, tt.wantCode, resp.Header.Get("X-Ms-Error-Code"))
		})
	}
	assert.Equal(t, len(tests), r.Stats().StorageRequests)
	assert.Zero(t, r.Stats().StorageAuthorizations)
}
