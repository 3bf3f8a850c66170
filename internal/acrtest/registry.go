package acrtest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/hpcship/hpcship/internal/testenv"
)

// NullGUID is the user name that tells ACR's token server the password is an ACR refresh
// token rather than an admin or token password.
const NullGUID = "00000000-0000-0000-0000-000000000000"

// issuer is the "iss" of every ACR token, as real ACR sets it.
const issuer = "Azure Container Registry"

// Registry is a running test registry: docker-registry behind the ACR emulating proxy.
type Registry struct {
	// errorf reports misuse of the test helpers (AccessToken, RefreshToken,
	// SetFaultRate): the test's Errorf under Start, the logger under New.
	errorf  func(format string, args ...any)
	opts    options
	log     *slog.Logger
	service string // the proxy's host:port: login server, token audience and "service"
	backend string // docker-registry's host:port; "" for the in-memory registry
	dataDir string // docker-registry's storage root
	// backendTransport carries the proxy's own requests to the registry.
	backendTransport http.RoundTripper

	acrKey *signer // signs refresh and access tokens; its certificate is the rootcertbundle
	aadKey *signer // the Azure AD stand-in's token signing key
	oid    string  // object ID of the Azure AD principal TokenCredential authenticates as

	faults  *faultInjector
	storage *storage

	mu    sync.Mutex
	stats Stats

	// closers release what the registry started, run in reverse order by Close.
	closers   []func()
	closeOnce sync.Once
	// backendLog is docker-registry's log file, "" for the in-memory registry.
	backendLog string
}

// Start launches Debian's docker-registry (distribution 2.8) with token authentication on
// a free 127.0.0.1 port, and in front of it, on another free 127.0.0.1 port, a proxy that
// serves ACR's /oauth2/exchange and /oauth2/token and forwards /v2/ to the registry
// keeping the client's Host header. Clients use LoginServer; the registry's 401 challenges
// name the proxy as realm and service, as ACR names the login server. With
// WithInMemoryRegistry the proxy serves /v2/ from go-containerregistry's in-memory
// registry instead, checking the access tokens itself.
//
// Start skips t when docker-registry is not installed (fails it under
// HPCSHIP_INTEGRATION=1) and stops everything when t ends. Defaults: docker-registry
// (WithInMemoryRegistry), admin user "admin" with a random password (WithAdmin), a random
// tenant (WithTenant), refresh tokens valid for 3h15m (WithRefreshTokenTTL), access tokens
// for 75 minutes (WithAccessTokenTTL), no faults (WithFaults, WithTokenEndpointFaults,
// WithRetryAfter 1 s), no added latency (WithRequestDelay), blobs served by the registry
// (WithBlobRedirect), Azure AD tokens for ACR's and ARM's audiences accepted
// (WithARMAudienceDisabled), error bodies without the credentials sent
// (WithEchoedCredentials), and a logger that discards (WithLogger).
func Start(t testing.TB, opts ...Option) *Registry {
	t.Helper()
	o, err := newOptions(opts)
	if err != nil {
		t.Fatalf("acrtest: %v", err)
	}
	var bin string
	if !o.inMemory {
		paths := testenv.Require(t, "docker-registry")
		if paths == nil {
			return nil
		}
		bin = paths[0]
	}
	r, err := start(t.Context(), o, bin, t.Errorf)
	if err != nil {
		t.Fatalf("acrtest: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() && r.backendLog != "" {
			t.Logf("acrtest: docker-registry log (last lines):\n%s", tail(r.backendLog, 15))
		}
		r.Close()
	})
	return r
}

// New starts the registry Start starts, outside a test, for programs such as the
// examples: it returns an error where Start would skip or fail the test, and the caller
// stops the registry with Close. ctx bounds the start only. The defaults are Start's;
// without WithInMemoryRegistry it needs docker-registry on PATH. Misuse of the test
// helpers (a malformed scope for AccessToken, a fault rate outside [0, 1]) is logged at
// error level through WithLogger instead of failing a test.
func New(ctx context.Context, opts ...Option) (*Registry, error) {
	o, err := newOptions(opts)
	if err != nil {
		return nil, fmt.Errorf("acrtest: %w", err)
	}
	var bin string
	if !o.inMemory {
		if bin, err = exec.LookPath("docker-registry"); err != nil {
			return nil, fmt.Errorf("acrtest: %w", err)
		}
	}
	errorf := func(format string, args ...any) { o.logger.Error(fmt.Sprintf(format, args...)) }
	r, err := start(ctx, o, bin, errorf)
	if err != nil {
		return nil, fmt.Errorf("acrtest: %w", err)
	}
	return r, nil
}

// Close stops the proxy and the registry behind it and removes the registry's files.
// It is safe to call more than once; Start calls it when the test ends.
func (r *Registry) Close() {
	r.closeOnce.Do(func() {
		for i := len(r.closers) - 1; i >= 0; i-- {
			r.closers[i]()
		}
	})
}

// onClose registers f to run when the registry is closed, before everything registered
// earlier.
func (r *Registry) onClose(f func()) { r.closers = append(r.closers, f) }

// start brings up the registry of o (docker-registry at bin, or the in-memory one) and
// the proxy in front of it; on error it releases whatever it had started.
func start(ctx context.Context, o options, bin string, errorf func(string, ...any)) (_ *Registry, err error) {
	dir, err := os.MkdirTemp("", "acrtest-")
	if err != nil {
		return nil, fmt.Errorf("creating the registry's directory: %w", err)
	}
	r := &Registry{
		errorf:  errorf,
		opts:    o,
		log:     o.logger,
		oid:     newGUID(),
		faults:  newFaultInjector(o.faultRate, o.faultSeed),
		stats:   newStats(),
		dataDir: filepath.Join(dir, "data"),
	}
	r.onClose(func() { os.RemoveAll(dir) })
	defer func() {
		if err != nil {
			r.Close()
		}
	}()
	if err := r.generateKeys(); err != nil {
		return nil, err
	}
	proxyLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, fmt.Errorf("listening for the proxy: %w", err)
	}
	r.service = proxyLn.Addr().String()

	var v2 http.Handler
	if o.inMemory {
		v2, err = r.inMemoryBackend()
	} else {
		v2, err = r.dockerRegistryBackend(ctx, bin)
	}
	if err != nil {
		proxyLn.Close()
		return nil, err
	}
	r.serve(proxyLn, v2)
	r.log.Info("acrtest registry started", "login_server", r.service, "backend", r.backend, "in_memory", o.inMemory)
	return r, nil
}

// dockerRegistryBackend starts docker-registry, and storage if blobs are redirected,
// and returns the handler that forwards /v2/ requests to docker-registry.
func (r *Registry) dockerRegistryBackend(ctx context.Context, bin string) (http.Handler, error) {
	if r.opts.blobRedirect {
		st, err := startStorage(r, r.fileBlobs)
		if err != nil {
			return nil, err
		}
		r.storage = st
		r.onClose(st.close)
	}
	if err := r.startBackend(ctx, bin); err != nil {
		return nil, err
	}
	backendURL := &url.URL{Scheme: "http", Host: r.backend}
	transport := &http.Transport{
		Proxy:               nil,
		MaxIdleConnsPerHost: 64,
		IdleConnTimeout:     30 * time.Second,
	}
	r.onClose(transport.CloseIdleConnections)
	r.backendTransport = transport
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(backendURL)
			// Keep the client's Host: docker-registry builds upload Locations from it, and
			// they must point back at the proxy.
			pr.Out.Host = pr.In.Host
		},
		Transport:      transport,
		ModifyResponse: r.rewriteChallenge,
		ErrorLog:       slog.NewLogLogger(r.log.Handler(), slog.LevelWarn),
	}, nil
}

// inMemoryBackend returns go-containerregistry's in-memory registry behind the checks
// docker-registry makes of access tokens, and starts storage for it if blobs are
// redirected.
func (r *Registry) inMemoryBackend() (http.Handler, error) {
	reg := registry.New(registry.Logger(slog.NewLogLogger(r.log.Handler(), slog.LevelDebug)))
	gated := r.requireAccessToken(reg)
	r.backendTransport = handlerTransport{gated}
	if r.opts.blobRedirect {
		st, err := startStorage(r, inMemoryBlobs(reg))
		if err != nil {
			return nil, err
		}
		r.storage = st
		r.onClose(st.close)
	}
	return gated, nil
}

// serve runs the proxy on ln until the registry is closed: the token endpoints, and /v2/
// through the proxy's own checks to v2.
func (r *Registry) serve(ln net.Listener, v2 http.Handler) {
	mux := http.NewServeMux()
	mux.Handle("/oauth2/exchange", r.tokenEndpoint(r.serveExchange))
	mux.Handle("/oauth2/token", r.tokenEndpoint(r.serveToken))
	mux.Handle("/v2/", r.v2Handler(v2))
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(r.log.Handler(), slog.LevelDebug),
	}
	go srv.Serve(ln) // Serve returns ErrServerClosed on Close.
	r.onClose(func() { srv.Close() })
}

// LoginServer returns the proxy's address, "127.0.0.1:PORT": what clients use as the
// registry host. The realm and service of the registry's challenges name it.
func (r *Registry) LoginServer() string { return r.service }

// Backend returns docker-registry's own address, "127.0.0.1:PORT", for checks that bypass
// the proxy. It still requires tokens, see AccessToken. With WithInMemoryRegistry it
// returns "": that registry has no address of its own.
func (r *Registry) Backend() string { return r.backend }

// AdminCredentials returns the admin user and password.
func (r *Registry) AdminCredentials() (user, password string) {
	return r.opts.adminUser, r.opts.adminPassword
}

// Tenant returns the Azure AD tenant ID the registry belongs to.
func (r *Registry) Tenant() string { return r.opts.tenant }

// generateKeys makes the ACR token signing key and the Azure AD stand-in's key.
func (r *Registry) generateKeys() error {
	keys := make([]*rsa.PrivateKey, 2)
	errs := make([]error, 2)
	var wg sync.WaitGroup
	for i := range keys {
		wg.Go(func() { keys[i], errs[i] = rsa.GenerateKey(rand.Reader, 2048) })
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("generating keys: %w", err)
	}
	kid, err := libtrustKeyID(&keys[0].PublicKey)
	if err != nil {
		return err
	}
	r.acrKey = &signer{key: keys[0], kid: kid}
	x5t, err := thumbprint(&keys[1].PublicKey)
	if err != nil {
		return err
	}
	r.aadKey = &signer{key: keys[1], kid: x5t, x5t: x5t}
	return nil
}

// startBackend writes docker-registry's configuration and starts it on a free port. A
// port taken between choosing and binding it makes the registry exit; then it tries
// another.
func (r *Registry) startBackend(ctx context.Context, bin string) error {
	dir := filepath.Dir(r.dataDir)
	bundle := filepath.Join(dir, "rootcertbundle.pem")
	if err := writeCertificate(bundle, r.acrKey.key); err != nil {
		return err
	}
	var lastErr error
	for range 3 {
		addr, err := freePort()
		if err != nil {
			return err
		}
		lastErr = r.runBackend(ctx, bin, dir, addr, bundle)
		if lastErr == nil {
			r.backend = addr
			return nil
		}
	}
	return lastErr
}

func (r *Registry) runBackend(ctx context.Context, bin, dir, addr, bundle string) error {
	config := fmt.Sprintf(`version: 0.1
log:
  level: info
  formatter: text
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %q
  delete:
    enabled: true
  redirect:
    disable: true
http:
  addr: %q
  secret: %q
auth:
  token:
    realm: %q
    service: %q
    issuer: %q
    rootcertbundle: %q
`, r.dataDir, addr, rand.Text(), "http://"+r.service+"/oauth2/token", r.service, issuer, bundle)
	configPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(configPath, []byte(config), 0o600); err != nil {
		return fmt.Errorf("writing registry config: %w", err)
	}
	logPath := filepath.Join(dir, "registry.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return fmt.Errorf("creating registry log: %w", err)
	}
	cmd := exec.Command(bin, "serve", configPath)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting docker-registry: %w", err)
	}
	exited := make(chan struct{})
	go func() {
		cmd.Wait() // The registry is killed on cleanup; its status says nothing.
		logFile.Close()
		close(exited)
	}()
	stop := func() {
		cmd.Process.Kill() // It may have exited already.
		<-exited
	}
	if err := waitReady(ctx, addr, exited); err != nil {
		stop()
		return fmt.Errorf("docker-registry on %s: %w; log:\n%s", addr, err, tail(logPath, 20))
	}
	r.backendLog = logPath
	r.onClose(stop)
	return nil
}

// waitReady polls the registry's /v2/ until it answers, which with token auth is a 401.
func waitReady(ctx context.Context, addr string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	deadline := time.Now().Add(15 * time.Second)
	for {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/v2/", nil)
		if err != nil {
			return err
		}
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			return fmt.Errorf("unexpected status %s from /v2/", resp.Status)
		}
		select {
		case <-exited:
			return errors.New("exited during startup")
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after 15 s: %w", err)
		}
	}
}

// freePort returns a 127.0.0.1 address no listener used a moment ago.
func freePort() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("finding a free port: %w", err)
	}
	addr := ln.Addr().String()
	return addr, ln.Close()
}

// writeCertificate writes a self-signed certificate for key to path: the registry trusts
// tokens whose kid is the libtrust ID of a certificate key in this bundle.
func writeCertificate(path string, key *rsa.PrivateKey) error {
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	if err != nil {
		return err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: "acrtest token signer"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return fmt.Errorf("creating signing certificate: %w", err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		return fmt.Errorf("writing rootcertbundle: %w", err)
	}
	return nil
}

// tail returns the last n lines of the file at path, for failure messages.
func tail(path string, n int) string {
	b, err := os.ReadFile(path)
	if err != nil {
		return err.Error()
	}
	lines := bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n"))
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return string(bytes.Join(lines, []byte("\n")))
}

// rewriteChallenge makes docker-registry's challenges read as ACR's: the realm on the host
// the client spelled (so that "localhost:PORT" clients see a realm on "localhost:PORT", as
// ggcr's realm check wants; ACR's realm is always on the login server the client used),
// and push scopes as "pull,push" where docker-registry says "push,pull".
func (r *Registry) rewriteChallenge(resp *http.Response) error {
	configured := `realm="http://` + r.service + `/oauth2/token"`
	wanted := `realm="http://` + resp.Request.Host + `/oauth2/token"`
	values := resp.Header[http.CanonicalHeaderKey("WWW-Authenticate")]
	for i, v := range values {
		v = strings.Replace(v, configured, wanted, 1)
		values[i] = strings.Replace(v, `:push,pull"`, `:pull,push"`, 1)
	}
	return nil
}

// newGUID returns a random version 4 GUID in Azure's lower-case form.
func newGUID() string {
	var b [16]byte
	rand.Read(b[:]) // crypto/rand.Read never fails.
	b[6] = b[6]&0x0f | 0x40
	b[8] = b[8]&0x3f | 0x80
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// AccessToken returns an access token of the admin user for scopes such as
// "repository:demo/app:pull", as /oauth2/token would issue it, for direct requests to
// LoginServer or Backend. A malformed scope fails the test that started the registry
// (with Errorf, so it is safe from any goroutine) and returns "".
func (r *Registry) AccessToken(scopes ...string) string {
	entries, err := parseScopes(scopes)
	if err != nil {
		r.errorf("acrtest: %v", err)
		return ""
	}
	at, err := r.accessToken(r.opts.adminUser, GrantPasswordAdmin, entries)
	if err != nil {
		r.errorf("acrtest: %v", err)
	}
	return at
}

// RefreshToken returns a refresh token for the Azure AD principal of TokenCredential, as
// /oauth2/exchange would issue it: what `az acr login --expose-token` prints and what
// docker's config.json stores as identitytoken.
func (r *Registry) RefreshToken() string {
	rt, err := r.refreshToken(r.oid, r.opts.tenant)
	if err != nil {
		r.errorf("acrtest: %v", err)
	}
	return rt
}
