package acr

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestPulledLayerErrorsHideSAS checks that when the storage a layer GET is redirected
// to fails, the error from the pulled image's layer, and the log, name the storage host
// and path but never the SAS signature. net/http builds the *url.Error carrying the
// redirect URL above registryTransport; go-containerregistry's blob fetch redacts its
// query, and this test fails if that stops.
func TestPulledLayerErrorsHideSAS(t *testing.T) {
	tests := []struct {
		name string
		// storage answers the redirected GET of body; nil means nothing listens.
		storage func(w http.ResponseWriter, body []byte)
		check   func(t *testing.T, err error, storageHost string)
	}{
		{
			name:    "nothing listening",
			storage: nil,
			check:   wantURLError,
		},
		{
			name:    "connection dropped before the headers",
			storage: func(w http.ResponseWriter, _ []byte) { resetConnection(w) },
			check:   wantURLError,
		},
		{
			name: "connection dropped in the body",
			storage: func(w http.ResponseWriter, body []byte) {
				w.Header().Set("Content-Length", strconv.Itoa(len(body)))
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write(body[:len(body)/2])
				closeConnection(w)
			},
			check: func(t *testing.T, err error, _ string) {
				assert.ErrorIs(t, err, io.ErrUnexpectedEOF)
			},
		},
		{
			name: "signature refused",
			storage: func(w http.ResponseWriter, _ []byte) {
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusForbidden)
				_, _ = io.WriteString(w, `<?xml version="1.0" encoding="utf-8"?><Error><Code>AuthenticationFailed</Code>`+
					`<Message>Server failed to authenticate the request.</Message></Error>`)
			},
			check: func(t *testing.T, err error, storageHost string) {
				var terr *transport.Error
				require.ErrorAs(t, err, &terr)
				assert.Equal(t, http.StatusForbidden, terr.StatusCode)
				assert.Contains(t, err.Error(), storageHost+"/sha256:")
				assert.Contains(t, err.Error(), "AuthenticationFailed")
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			img, err := random.Image(64<<10, 1)
			require.NoError(t, err)
			layers, err := img.Layers()
			require.NoError(t, err)
			layerDigest, err := layers[0].Digest()
			require.NoError(t, err)
			body := compressedBytes(t, layers[0])

			var storageHost string
			var storageRequests atomic.Int32
			if tt.storage == nil {
				ln, err := net.Listen("tcp", "127.0.0.1:0")
				require.NoError(t, err)
				storageHost = ln.Addr().String()
				require.NoError(t, ln.Close())
			} else {
				storage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					storageRequests.Add(1)
					tt.storage(w, body)
				}))
				t.Cleanup(storage.Close)
				storageHost = storage.Listener.Addr().String()
			}
			// Base64, as Azure's signatures are: in a URL it shows percent-encoded.
			sig := "sig+" + randomString(t) + "/="
			sas := url.Values{"sv": {"2021-08-06"}, "sr": {"b"}, "sp": {"r"}, "se": {"2030-01-01T00:00:00Z"}, "sig": {sig}}
			location := "http://" + storageHost + "/" + layerDigest.String() + "/data?" + sas.Encode()

			reg := httptest.NewServer(redirectingRegistry(layerDigest, location))
			t.Cleanup(reg.Close)
			ref := mustRef(t, reg.Listener.Addr().String()+"/hpc/redirect:v1")
			require.NoError(t, remote.Write(ref, img, remote.WithContext(t.Context())))

			var logs bytes.Buffer
			logger := slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
			pulled, err := Pull(t.Context(), ref, WithAuth(authn.Anonymous), WithLogger(logger), WithRetry(2, time.Millisecond))
			require.NoError(t, err)
			layer, err := pulled.LayerByDigest(layerDigest)
			require.NoError(t, err)

			for _, read := range []struct {
				name string
				open func() (io.ReadCloser, error)
			}{
				{name: "compressed", open: layer.Compressed},
				{name: "uncompressed", open: layer.Uncompressed},
			} {
				t.Run(read.name, func(t *testing.T) {
					err := readAll(read.open)
					require.Error(t, err)
					for _, s := range []string{err.Error(), fmt.Sprintf("%+v", err), fmt.Sprintf("%#v", err)} {
						assertNoSecret(t, s, sig)
					}
					tt.check(t, err, storageHost)
				})
			}
			if tt.storage != nil {
				assert.Positive(t, storageRequests.Load(), "the layer GET must have been redirected to storage")
			}
			assertNoSecret(t, logs.String(), sig)
		})
	}
}

// assertNoSecret checks that s holds secret neither as is nor percent-encoded.
func assertNoSecret(t *testing.T, s, secret string) {
	t.Helper()
	assert.NotContains(t, s, secret)
	assert.NotContains(t, s, url.QueryEscape(secret))
}

// wantURLError checks that a failed storage request is still a *url.Error that names
// the storage host and blob path, with the SAS query redacted.
func wantURLError(t *testing.T, err error, storageHost string) {
	var uerr *url.Error
	require.ErrorAs(t, err, &uerr)
	u, perr := url.Parse(uerr.URL)
	require.NoError(t, perr)
	assert.Equal(t, storageHost, u.Host)
	assert.True(t, strings.HasPrefix(u.Path, "/sha256:"), "path %q", u.Path)
	assert.NotEmpty(t, u.Query().Get("sig"), "the query is redacted, not dropped")
}

// redirectingRegistry is an in-memory registry that answers GETs of the blob digest
// with a 307 to location, as ACR redirects blob GETs to Azure Storage.
func redirectingRegistry(digest v1.Hash, location string) http.Handler {
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && strings.HasSuffix(r.URL.Path, "/blobs/"+digest.String()) {
			http.Redirect(w, r, location, http.StatusTemporaryRedirect)
			return
		}
		reg.ServeHTTP(w, r)
	})
}

// closeConnection flushes what the handler wrote and closes the connection, so that
// the client sees the body end early.
func closeConnection(w http.ResponseWriter) {
	rc := http.NewResponseController(w)
	if rc.Flush() != nil {
		panic(http.ErrAbortHandler)
	}
	conn, _, err := rc.Hijack()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	conn.Close()
}

func compressedBytes(t *testing.T, l v1.Layer) []byte {
	rc, err := l.Compressed()
	require.NoError(t, err)
	defer rc.Close()
	b, err := io.ReadAll(rc)
	require.NoError(t, err)
	return b
}

// readAll opens a layer stream and reads it to the end, returning the first error.
func readAll(open func() (io.ReadCloser, error)) error {
	rc, err := open()
	if err != nil {
		return err
	}
	defer rc.Close()
	_, err = io.Copy(io.Discard, rc)
	return err
}
