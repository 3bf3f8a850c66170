package acr

import (
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOptionsFitTheirCall checks that every call refuses options it does not take and
// invalid values, before any request, with an error naming the call and the option.
func TestOptionsFitTheirCall(t *testing.T) {
	f := newTestACR(t)
	ref := mustRef(t, "127.0.0.1:1/hpc/rdma:latest")
	calls := map[string]func(...Option) error{
		"acr.Push": func(opts ...Option) error {
			_, err := Push(t.Context(), ref, empty.Image, opts...)
			return err
		},
		"acr.PushIndex": func(opts ...Option) error {
			_, err := PushIndex(t.Context(), ref, empty.Index, opts...)
			return err
		},
		"acr.Pull": func(opts ...Option) error {
			_, err := Pull(t.Context(), ref, opts...)
			return err
		},
		"acr.ListTags": func(opts ...Option) error {
			_, err := ListTags(t.Context(), ref.Context(), opts...)
			return err
		},
		"acr.Catalog": func(opts ...Option) error {
			_, err := Catalog(t.Context(), ref.Context().Registry, opts...)
			return err
		},
		"acr.NewAADAuthenticator": func(opts ...Option) error {
			_, err := NewAADAuthenticator(f.host(), f.credential(), opts...)
			return err
		},
		"acr.NewAADKeychain": func(opts ...Option) error {
			_, err := NewAADKeychain(f.credential(), opts...)
			return err
		},
		"acr.NewEnvKeychain": func(opts ...Option) error {
			_, err := NewEnvKeychain(opts...)
			return err
		},
		"acr.NewKeychain": func(opts ...Option) error {
			_, err := NewKeychain(f.credential(), opts...)
			return err
		},
	}
	// Only constructors that make no request are given options they take.
	tests := []struct {
		call    string
		opts    []Option
		wantErr string // "" for options the call takes
	}{
		{call: "acr.NewEnvKeychain", opts: []Option{WithJobs(3)}, wantErr: "acr.NewEnvKeychain: WithJobs: not an option of this call"},
		{call: "acr.NewEnvKeychain", opts: []Option{WithRetry(3, 0)}, wantErr: "acr.NewEnvKeychain: WithRetry: not an option of this call"},
		{call: "acr.NewEnvKeychain", opts: []Option{WithHosts("127.0.0.1:5000")}},
		{call: "acr.NewKeychain", opts: []Option{WithProgress(func(Progress) {})}, wantErr: "acr.NewKeychain: WithProgress: not an option of this call"},
		{call: "acr.NewKeychain", opts: []Option{WithHosts("127.0.0.1:5000"), WithTenant("t"), WithRetry(2, 0)}},
		{call: "acr.NewAADAuthenticator", opts: []Option{WithHosts("127.0.0.1:5000")}, wantErr: "acr.NewAADAuthenticator: WithHosts: not an option of this call"},
		{call: "acr.NewAADAuthenticator", opts: []Option{WithAuth(authn.Anonymous)}, wantErr: "acr.NewAADAuthenticator: WithAuth: not an option of this call"},
		{call: "acr.NewAADKeychain", opts: []Option{WithKeychain(authn.DefaultKeychain)}, wantErr: "acr.NewAADKeychain: WithKeychain: not an option of this call"},
		{call: "acr.Pull", opts: []Option{WithJobs(2)}, wantErr: "acr.Pull: WithJobs: not an option of this call"},
		{call: "acr.ListTags", opts: []Option{WithAADScope("x")}, wantErr: "acr.ListTags: WithAADScope: not an option of this call"},
		{call: "acr.Catalog", opts: []Option{WithTenant("t")}, wantErr: "acr.Catalog: WithTenant: not an option of this call"},
		{call: "acr.Push", opts: []Option{WithJobs(0)}, wantErr: "acr.Push: WithJobs: jobs must be positive, got 0"},
		{call: "acr.PushIndex", opts: []Option{WithRetry(11, 0)}, wantErr: "acr.PushIndex: WithRetry: retry attempts must be 1 to 10, got 11"},
		{call: "acr.Push", opts: []Option{WithAuth(authn.Anonymous), WithKeychain(authn.DefaultKeychain)}, wantErr: "acr.Push: WithAuth: cannot be combined with WithKeychain"},
		{call: "acr.Pull", opts: []Option{WithKeychain(authn.DefaultKeychain), WithHosts("h:1")}, wantErr: "acr.Pull: WithHosts: applies to the default keychain only"},
		{call: "acr.NewEnvKeychain", opts: []Option{WithHosts("https://myacr.azurecr.io")}, wantErr: `acr.NewEnvKeychain: WithHosts: host "https://myacr.azurecr.io" must be a bare host or host:port`},
		{call: "acr.NewAADAuthenticator", opts: []Option{WithLogger(nil)}, wantErr: "acr.NewAADAuthenticator: WithLogger: logger must not be nil"},
		{call: "acr.NewAADAuthenticator", opts: []Option{WithAADScope("")}, wantErr: "acr.NewAADAuthenticator: WithAADScope: AAD scope must not be empty"},
		{call: "acr.NewAADKeychain", opts: []Option{WithAADScope(DefaultAADScope)}},
		{call: "acr.NewAADAuthenticator", opts: []Option{{}}, wantErr: "acr.NewAADAuthenticator: Option{}: the zero Option is not an option"},
	}
	for _, tt := range tests {
		t.Run(tt.call+" "+tt.wantErr, func(t *testing.T) {
			err := calls[tt.call](tt.opts...)
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			assert.Contains(t, err.Error(), tt.wantErr)
			var oerr *OptionError
			require.ErrorAs(t, err, &oerr)
			assert.Equal(t, tt.call, oerr.Call)
		})
	}
}
