package acrtest

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"time"
)

// storage stands in for Azure Blob Storage behind ACR's blob redirects: it serves blobs
// straight from the registry's storage to anyone holding a signed, unexpired URL, and,
// like Azure Storage, refuses requests that carry an Authorization header.
type storage struct {
	r    *Registry
	host string // host:port of the listener
	key  []byte // signs the URLs' "sig", as a storage account key signs a SAS
	srv  *http.Server
	blob blobServer
}

// blobServer answers a GET or HEAD of the blob sha256:hex from the registry's storage.
type blobServer func(w http.ResponseWriter, req *http.Request, hex string)

// sasTTL is how long a redirect URL stays valid.
const sasTTL = 10 * time.Minute

func startStorage(r *Registry, blob blobServer) (*storage, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for storage: %w", err)
	}
	s := &storage{r: r, host: ln.Addr().String(), key: []byte(rand.Text()), blob: blob}
	s.srv = &http.Server{Handler: s, ReadHeaderTimeout: 10 * time.Second}
	go s.srv.Serve(ln) // Serve returns ErrServerClosed on Close.
	return s, nil
}

func (s *storage) close() { s.srv.Close() }

// storagePath matches docker-registry's filesystem layout of a blob.
var storagePath = regexp.MustCompile(`^/docker/registry/v2/blobs/sha256/([0-9a-f]{2})/([0-9a-f]{64})/data$`)

// signedURL returns the storage URL of the blob digest ("sha256:<hex>") with a SAS-like
// query: version, resource, permission, expiry and signature.
func (s *storage) signedURL(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	path := "/docker/registry/v2/blobs/sha256/" + hex[:2] + "/" + hex + "/data"
	se := time.Now().Add(sasTTL).UTC().Format(time.RFC3339)
	q := url.Values{"sv": {"2021-08-06"}, "sr": {"b"}, "sp": {"r"}, "se": {se}, "sig": {s.sign(path, se)}}
	return (&url.URL{Scheme: "http", Host: s.host, Path: path, RawQuery: q.Encode()}).String()
}

func (s *storage) sign(path, expiry string) string {
	mac := hmac.New(sha256.New, s.key)
	mac.Write([]byte(path + "\n" + expiry))
	return base64.StdEncoding.EncodeToString(mac.Sum(nil))
}

func (s *storage) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	auth := req.Header.Get("Authorization") != ""
	s.r.count(func(st *Stats) {
		st.StorageRequests++
		if auth {
			st.StorageAuthorizations++
		}
	})
	if auth {
		s.r.log.Warn("acrtest storage refused a request that carried an Authorization header", "path", req.URL.Path)
		storageError(w, http.StatusBadRequest, "InvalidAuthenticationInfo",
			"Authentication information is not given in the correct format. Check the value of Authorization header.")
		return
	}
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		storageError(w, http.StatusMethodNotAllowed, "UnsupportedHttpVerb", "The resource doesn't support specified Http Verb.")
		return
	}
	m := storagePath.FindStringSubmatch(req.URL.Path)
	if m == nil || m[1] != m[2][:2] {
		storageError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	se := req.URL.Query().Get("se")
	expiry, err := time.Parse(time.RFC3339, se)
	sig := req.URL.Query().Get("sig")
	if err != nil || !hmac.Equal([]byte(sig), []byte(s.sign(req.URL.Path, se))) || time.Now().After(expiry) {
		storageError(w, http.StatusForbidden, "AuthenticationFailed",
			"Server failed to authenticate the request. Make sure the value of Authorization header is formed correctly including the signature.")
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Server", "Windows-Azure-Blob/1.0")
	w.Header().Set("X-Ms-Blob-Type", "BlockBlob")
	w.Header().Set("Etag", `"`+m[2]+`"`)
	s.blob(w, req, m[2])
}

// fileBlobs serves blobs from docker-registry's filesystem.
func (r *Registry) fileBlobs(w http.ResponseWriter, req *http.Request, hex string) {
	f, err := os.Open(filepath.Join(r.dataDir, filepath.FromSlash(req.URL.Path)))
	if err != nil {
		storageError(w, http.StatusNotFound, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		storageError(w, http.StatusInternalServerError, "InternalError", "The server encountered an internal error.")
		return
	}
	http.ServeContent(w, req, "", fi.ModTime(), f)
}

// inMemoryBlobs serves blobs from go-containerregistry's in-memory registry, whose blob
// store is shared by all repositories, asking it without credentials as storage does.
func inMemoryBlobs(reg http.Handler) blobServer {
	return func(w http.ResponseWriter, req *http.Request, hex string) {
		get := req.Clone(req.Context())
		get.URL.Path = "/v2/storage/blobs/sha256:" + hex
		get.URL.RawQuery = ""
		reg.ServeHTTP(&blobNotFound{ResponseWriter: w}, get)
	}
}

// blobNotFound passes a registry's answer on, except that a 404 becomes Azure
// Storage's BlobNotFound.
type blobNotFound struct {
	http.ResponseWriter
	missing bool
}

func (b *blobNotFound) WriteHeader(status int) {
	if status == http.StatusNotFound {
		b.missing = true
		storageError(b.ResponseWriter, status, "BlobNotFound", "The specified blob does not exist.")
		return
	}
	b.ResponseWriter.WriteHeader(status)
}

func (b *blobNotFound) Write(p []byte) (int, error) {
	if b.missing {
		return len(p), nil
	}
	return b.ResponseWriter.Write(p)
}

// handlerTransport serves the proxy's own requests to the in-memory registry in this
// process.
type handlerTransport struct{ h http.Handler }

func (t handlerTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	rec := httptest.NewRecorder()
	t.h.ServeHTTP(rec, req)
	return rec.Result(), nil
}

// storageError answers as Azure Storage does: an XML error body.
func storageError(w http.ResponseWriter, status int, code, message string) {
	w.Header().Set("Content-Type", "application/xml")
	w.Header().Set("X-Ms-Error-Code", code)
	w.WriteHeader(status)
	fmt.Fprintf(w, "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>%s</Code><Message>%s</Message></Error>", code, message)
}
