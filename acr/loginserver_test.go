package acr

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestLoginServer(t *testing.T) {
	tests := []struct {
		name     string
		registry string
		cloud    Cloud
		want     string
		wantErr  error
	}{
		{name: "public", registry: "myacr", cloud: AzurePublic, want: "myacr.azurecr.io"},
		{name: "upper case is folded", registry: "MyACR2024", cloud: AzurePublic, want: "myacr2024.azurecr.io"},
		{name: "china", registry: "hpcimages", cloud: AzureChina, want: "hpcimages.azurecr.cn"},
		{name: "us government", registry: "hpcimages", cloud: AzureUSGovernment, want: "hpcimages.azurecr.us"},
		{name: "50 characters", registry: strings.Repeat("a", 50), cloud: AzurePublic, want: strings.Repeat("a", 50) + ".azurecr.io"},
		{name: "too short", registry: "acr1", wantErr: ErrInvalidName},
		{name: "too long", registry: strings.Repeat("a", 51), wantErr: ErrInvalidName},
		{name: "hyphen", registry: "my-acr", wantErr: ErrInvalidName},
		{name: "dot", registry: "my.acr.io", wantErr: ErrInvalidName},
		{name: "non-ASCII", registry: "myacrü", wantErr: ErrInvalidName},
		{name: "empty", registry: "", wantErr: ErrInvalidName},
		{name: "unknown cloud", registry: "myacr", cloud: Cloud(7), wantErr: nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.cloud.LoginServer(tt.registry)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				var nerr *NameError
				require.ErrorAs(t, err, &nerr)
				assert.Equal(t, tt.registry, nerr.Name)
				return
			}
			if tt.want == "" {
				require.Error(t, err)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			assert.True(t, IsLoginServer(got))
		})
	}
}

func TestIsLoginServer(t *testing.T) {
	tests := []struct {
		host string
		want bool
	}{
		{"myacr.azurecr.io", true},
		{"myacr.azurecr.cn", true},
		{"myacr.azurecr.us", true},
		{"myregistry-a1b2c3d4e5f6.azurecr.io", true},
		{"azurecr.io", false},
		{".azurecr.io", false},
		{"-myacr.azurecr.io", false},
		{"MyACR.azurecr.io", false},
		{"myacr.azurecr.io:443", false},
		{"myacr.azurecr.io.evil.example", false},
		{"evil-azurecr.io", false},
		{"myacrazurecr.io", false},
		{"evil.example/myacr.azurecr.io", false},
		{"myacr.westeurope.data.azurecr.io", false},
		{"a.b.azurecr.io", false},
		{"myacr.azurecr.de", false},
		{"127.0.0.1:5000", false},
		{"mcr.microsoft.com", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, IsLoginServer(tt.host), tt.host)
	}
}

func TestIsLoopback(t *testing.T) {
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "localhost": true, "localhost:80": true, "[::1]:5000": true, "127.1.2.3": true,
		"10.0.0.1:5000": false, "myacr.azurecr.io": false, "localhost.evil.example": false,
	} {
		assert.Equal(t, want, isLoopback(host), host)
	}
}

func FuzzIsLoginServer(f *testing.F) {
	for _, s := range []string{"myacr.azurecr.io", "a.azurecr.cn", "x.azurecr.us.evil", "127.0.0.1:1", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, host string) {
		if !IsLoginServer(host) {
			return
		}
		// Anything accepted is exactly one label under a known suffix.
		label, _, ok := strings.Cut(host, ".azurecr.")
		require.True(t, ok)
		assert.NotContains(t, label, ".")
		assert.NotContains(t, host, ":")
		assert.NotContains(t, host, "/")
		assert.Equal(t, strings.ToLower(host), host)
	})
}

func FuzzValidateRegistryName(f *testing.F) {
	for _, s := range []string{"myacr", "my-acr", "", strings.Repeat("z", 60)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		err := ValidateRegistryName(name)
		if err != nil {
			require.ErrorIs(t, err, ErrInvalidName)
			return
		}
		ls, err := AzurePublic.LoginServer(name)
		require.NoError(t, err)
		assert.True(t, IsLoginServer(ls), ls)
	})
}
