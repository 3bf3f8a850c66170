package acrtest

import (
	"net/http"
	"strings"
	"testing"

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
