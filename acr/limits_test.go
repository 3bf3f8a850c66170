package acr

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestValidateRegistryNameLimits has a row at and on both sides of every limit: the length (5 to 50) and
// each end of the three character ranges.
func TestValidateRegistryNameLimits(t *testing.T) {
	tests := []struct {
		name string
		ok   bool
	}{
		{"abcd", false}, {"abcde", true}, {strings.Repeat("a", 50), true}, {strings.Repeat("a", 51), false},
		{"abcd/", false}, {"abcd0", true}, {"abcd9", true}, {"abcd:", false},
		{"abcd@", false}, {"abcdA", true}, {"abcdZ", true}, {"abcd[", false},
		{"abcd`", false}, {"abcda", true}, {"abcdz", true}, {"abcd{", false},
		{"0abcd", true}, {"Zabcd", true}, {"\x80abcd", false},
	}
	for _, tt := range tests {
		err := ValidateRegistryName(tt.name)
		if tt.ok {
			assert.NoError(t, err, "%q", tt.name)
			continue
		}
		var nerr *NameError
		require.ErrorAs(t, err, &nerr, "%q", tt.name)
		assert.ErrorIs(t, err, ErrInvalidName)
		assert.Equal(t, tt.name, nerr.Name)
	}
	assert.Equal(t, `invalid registry name "abcd": must be 5 to 50 characters, got 4`, ValidateRegistryName("abcd").Error())
	assert.Equal(t, `invalid registry name "abcd{": character '{' at offset 4 is not a letter or digit`, ValidateRegistryName("abcd{").Error())
}

// TestIsLabelLimits pins the DNS label rule at its limits: 1 and 63 characters, hyphens only inside,
// each end of the two character ranges.
func TestIsLabelLimits(t *testing.T) {
	tests := []struct {
		s  string
		ok bool
	}{
		{"", false}, {"a", true}, {strings.Repeat("a", 63), true}, {strings.Repeat("a", 64), false},
		{"-a", false}, {"a-", false}, {"a-b", true}, {"-", false},
		{"/", false}, {"0", true}, {"9", true}, {":", false},
		{"`", false}, {"a", true}, {"z", true}, {"{", false}, {"A", false}, {"a_b", false}, {"a.b", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ok, isLabel(tt.s), "%q", tt.s)
	}
}

// TestRegistryErrorCodeLimits keeps only codes of letters and underscores, up to 64 characters.
func TestRegistryErrorCodeLimits(t *testing.T) {
	body := func(code string) []byte { return []byte(`{"errors":[{"code":"` + code + `"},{"code":"SECOND"}]}`) }
	for _, code := range []string{"A", "Z", "a", "z", "_", "NAME_UNKNOWN", strings.Repeat("A", 64)} {
		assert.Equal(t, code, registryErrorCode(body(code)), code)
	}
	for _, code := range []string{"@", "[", "`", "{", "0", "A-B", "A B", strings.Repeat("A", 65), ""} {
		assert.Empty(t, registryErrorCode(body(code)), code)
	}
	assert.Empty(t, registryErrorCode([]byte(`{"errors":[]}`)))
}

// TestIsTransient lists which transport errors are worth another try.
func TestIsTransient(t *testing.T) {
	wrap := func(err error) error { return &url.Error{Op: "Put", URL: "http://x/v2/", Err: err} }
	tests := []struct {
		err  error
		want bool
	}{
		{io.EOF, true},
		{io.ErrUnexpectedEOF, true},
		{wrap(syscall.ECONNRESET), true},
		{wrap(syscall.EPIPE), true},
		{wrap(net.ErrClosed), true},
		{wrap(syscall.ECONNREFUSED), false},
		{context.Canceled, false},
		{context.DeadlineExceeded, false},
		{errors.Join(context.Canceled, io.EOF), false},
		{errors.Join(io.EOF, context.DeadlineExceeded), false},
		{errors.New("tls: bad certificate"), false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, isTransient(tt.err), "%v", tt.err)
	}
}

// TestErrString keeps a *url.Error's cause and drops its URL, which may carry a storage SAS.
func TestErrString(t *testing.T) {
	assert.Empty(t, errString(nil))
	assert.Equal(t, "EOF", errString(&url.Error{Op: "Get", URL: "https://x.blob.core.windows.net/b?sig=SECRET", Err: io.EOF}))
	assert.Equal(t, "wrapped: EOF", errString(fmt.Errorf("wrapped: %w", io.EOF)))
	assert.Equal(t, 0, statusOf(nil))
	assert.Equal(t, 418, statusOf(&http.Response{StatusCode: 418}))
}

// TestExchangeDoesNotFollowRedirects keeps the Azure AD token on the login server: an exchange answered
// with a redirect fails with that status and the other host sees nothing.
func TestExchangeDoesNotFollowRedirects(t *testing.T) {
	var elsewhere atomic.Int32
	other := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		elsewhere.Add(1)
		_, _ = io.WriteString(w, `{"refresh_token":"stolen"}`)
	}))
	defer other.Close()
	for _, status := range []int{http.StatusFound, http.StatusTemporaryRedirect, http.StatusPermanentRedirect} {
		login := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
			http.Redirect(w, req, other.URL+"/oauth2/exchange", status)
		}))
		a, err := NewAADAuthenticator(strings.TrimPrefix(login.URL, "http://"), staticCredential("aad-token"), WithRetry(1, 0))
		require.NoError(t, err)
		_, err = a.AuthorizationContext(t.Context())
		var xerr *ExchangeError
		require.ErrorAs(t, err, &xerr, "status %d", status)
		assert.Equal(t, status, xerr.StatusCode)
		login.Close()
	}
	assert.Zero(t, elsewhere.Load(), "the other host got no request")
}

func TestWithKeychainNil(t *testing.T) {
	_, err := Pull(t.Context(), mustRef(t, "127.0.0.1:1/a/b:c"), WithKeychain(nil))
	var oerr *OptionError
	require.ErrorAs(t, err, &oerr)
	assert.Equal(t, "acr.Pull: WithKeychain: keychain must not be nil", err.Error())
	_, err = Pull(t.Context(), mustRef(t, "127.0.0.1:1/a/b:c"), WithAuth(nil))
	require.ErrorAs(t, err, &oerr)
}

func TestFormatQuotes(t *testing.T) {
	k := NewAdminKeychain("myacr.azurecr.io", "user", "secret-password")
	s := fmt.Sprintf("%s", k)
	assert.Equal(t, fmt.Sprintf("%q", s), fmt.Sprintf("%q", k))
	assert.Equal(t, s, fmt.Sprintf("%v", k))
	assert.NotContains(t, s, "secret-password")
}
