package arm

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
)

// TestManagementErrorMapping checks which sentinel each ARM answer matches and what its message says:
// every status and code next to the ones that map, and the underlying error's text only when there was no
// answer (an answer's error repeats ARM's whole response).
func TestManagementErrorMapping(t *testing.T) {
	respErr := func(status int, code string) error {
		return &azcore.ResponseError{StatusCode: status, ErrorCode: code}
	}
	dial := errors.New("dial tcp: connection refused")
	tests := []struct {
		name     string
		err      error
		want     []error // sentinels it matches
		wantMsg  string
		wantCode string
	}{
		{name: "400", err: respErr(400, "InvalidParameter"), wantMsg: "get registry hpcimages: 400 Bad Request (InvalidParameter)", wantCode: "InvalidParameter"},
		{name: "401", err: respErr(401, "InvalidAuthenticationToken"), want: []error{acr.ErrUnauthorized}, wantMsg: "get registry hpcimages: 401 Unauthorized (InvalidAuthenticationToken)", wantCode: "InvalidAuthenticationToken"},
		{name: "402", err: respErr(402, ""), wantMsg: "get registry hpcimages: 402 Payment Required"},
		{name: "403", err: respErr(403, "AuthorizationFailed"), want: []error{acr.ErrUnauthorized}, wantMsg: "get registry hpcimages: 403 Forbidden (AuthorizationFailed)", wantCode: "AuthorizationFailed"},
		{name: "404", err: respErr(404, "ResourceNotFound"), want: []error{ErrNotFound}, wantMsg: "get registry hpcimages: 404 Not Found (ResourceNotFound)", wantCode: "ResourceNotFound"},
		{name: "405", err: respErr(405, ""), wantMsg: "get registry hpcimages: 405 Method Not Allowed"},
		{name: "409 without a code is a taken name", err: respErr(409, ""), want: []error{ErrNameTaken}, wantMsg: "get registry hpcimages: 409 Conflict (AlreadyExists)", wantCode: "AlreadyExists"},
		{name: "409 keeps its code", err: respErr(409, "AnotherOperationInProgress"), wantMsg: "get registry hpcimages: 409 Conflict (AnotherOperationInProgress)", wantCode: "AnotherOperationInProgress"},
		{name: "400 without a code stays without", err: respErr(400, ""), wantMsg: "get registry hpcimages: 400 Bad Request"},
		{name: "AlreadyExists", err: respErr(400, "AlreadyExists"), want: []error{ErrNameTaken}, wantMsg: "get registry hpcimages: 400 Bad Request (AlreadyExists)", wantCode: "AlreadyExists"},
		{name: "RegistryNameNotAvailable", err: respErr(400, "RegistryNameNotAvailable"), want: []error{ErrNameTaken}, wantMsg: "get registry hpcimages: 400 Bad Request (RegistryNameNotAvailable)", wantCode: "RegistryNameNotAvailable"},
		{name: "NameNotAvailable", err: respErr(400, "NameNotAvailable"), want: []error{ErrNameTaken}, wantMsg: "get registry hpcimages: 400 Bad Request (NameNotAvailable)", wantCode: "NameNotAvailable"},
		{name: "AlreadyInUse", err: respErr(400, "AlreadyInUse"), want: []error{ErrNameTaken}, wantMsg: "get registry hpcimages: 400 Bad Request (AlreadyInUse)", wantCode: "AlreadyInUse"},
		{name: "500", err: respErr(500, "InternalServerError"), wantMsg: "get registry hpcimages: 500 Internal Server Error (InternalServerError)", wantCode: "InternalServerError"},
		{name: "no answer", err: dial, want: []error{dial}, wantMsg: "get registry hpcimages: dial tcp: connection refused"},
		{name: "wrapped answer", err: fmt.Errorf("polling: %w", respErr(404, "")), want: []error{ErrNotFound}, wantMsg: "get registry hpcimages: 404 Not Found"},
	}
	sentinels := []error{acr.ErrUnauthorized, ErrNotFound, ErrNameTaken, acr.ErrInvalidName}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := managementError("get", "hpcimages", tt.err)
			assert.Equal(t, tt.wantMsg, err.Error())
			for _, s := range sentinels {
				assert.Equal(t, containsErr(tt.want, s), errors.Is(err, s), "errors.Is(err, %v)", s)
			}
			for _, w := range tt.want {
				assert.ErrorIs(t, err, w)
			}
			assert.ErrorIs(t, err, tt.err, "it unwraps to the underlying error")
			var merr *ManagementError
			require.ErrorAs(t, err, &merr)
			assert.Equal(t, tt.wantCode, merr.Code)
		})
	}
}

func containsErr(list []error, err error) bool {
	for _, e := range list {
		if e == err {
			return true
		}
	}
	return false
}

// TestManagementErrorWithoutStatus covers the errors that are not ARM answers: no status and no
// underlying error, and a code with an underlying error but no status (a name check that says no).
func TestManagementErrorWithoutStatus(t *testing.T) {
	e := &ManagementError{Op: "create", Registry: "hpcimages", Code: "AlreadyExists"}
	assert.Equal(t, "create registry hpcimages (AlreadyExists)", e.Error())
	assert.ErrorIs(t, e, ErrNameTaken)
	assert.NotErrorIs(t, e, ErrNotFound)
	assert.NotErrorIs(t, e, acr.ErrUnauthorized)

	e = &ManagementError{Op: "list credentials of", Registry: "hpcimages", Err: errors.New("admin user disabled")}
	assert.Equal(t, "list credentials of registry hpcimages: admin user disabled", e.Error())
	assert.Equal(t, "create registry x", (&ManagementError{Op: "create", Registry: "x"}).Error())
}

// TestCredentialErrors marks a credential's failure as ErrUnauthorized, but not when it failed because
// the caller's context ended: that is the caller's cancellation, not bad credentials.
func TestCredentialErrors(t *testing.T) {
	bad := errors.New("AADSTS7000215: invalid client secret")
	_, err := credentialErrors{failingCredential{bad}}.GetToken(t.Context(), policy.TokenRequestOptions{})
	require.ErrorIs(t, err, acr.ErrUnauthorized)
	require.ErrorIs(t, err, bad)

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err = credentialErrors{failingCredential{context.Canceled}}.GetToken(ctx, policy.TokenRequestOptions{})
	require.ErrorIs(t, err, context.Canceled)
	assert.NotErrorIs(t, err, acr.ErrUnauthorized)

	tok, err := credentialErrors{failingCredential{nil}}.GetToken(t.Context(), policy.TokenRequestOptions{})
	require.NoError(t, err)
	assert.Equal(t, "token", tok.Token)
}

type failingCredential struct{ err error }

func (c failingCredential) GetToken(context.Context, policy.TokenRequestOptions) (azcore.AccessToken, error) {
	if c.err != nil {
		return azcore.AccessToken{}, c.err
	}
	return azcore.AccessToken{Token: "token"}, nil
}

func TestResourceGroupOf(t *testing.T) {
	tests := []struct{ id, want string }{
		{"/subscriptions/s/resourceGroups/hpc/providers/Microsoft.ContainerRegistry/registries/x", "hpc"},
		{"/subscriptions/s/resourcegroups/HPC/providers/x", "HPC"},
		{"/subscriptions/s/resourceGroups/last", "last"},
		{"/subscriptions/s/resourceGroups", ""},
		{"resourceGroups/first", "first"},
		{"", ""},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.want, resourceGroupOf(tt.id), tt.id)
	}
}

func TestFromARM(t *testing.T) {
	state := armcontainerregistry.ProvisioningStateSucceeded
	sku := armcontainerregistry.SKUNamePremium
	got := fromARM(armcontainerregistry.Registry{
		Name:     ptr("hpcimages"),
		ID:       ptr("/subscriptions/s/resourceGroups/Real/providers/Microsoft.ContainerRegistry/registries/hpcimages"),
		Location: ptr("westeurope"),
		SKU:      &armcontainerregistry.SKU{Name: &sku},
		Properties: &armcontainerregistry.RegistryProperties{
			LoginServer: ptr("HPCImages.azurecr.io"), AdminUserEnabled: ptr(true), ProvisioningState: &state,
		},
	}, "asked")
	assert.Equal(t, &Registry{Name: "hpcimages", ResourceGroup: "Real", ID: "/subscriptions/s/resourceGroups/Real/providers/Microsoft.ContainerRegistry/registries/hpcimages",
		Location: "westeurope", SKU: SKUPremium, LoginServer: "hpcimages.azurecr.io", AdminUserEnabled: true, ProvisioningState: "Succeeded"}, got)

	got = fromARM(armcontainerregistry.Registry{Name: ptr("bare1"), Properties: &armcontainerregistry.RegistryProperties{AdminUserEnabled: ptr(false)}}, "asked")
	assert.Equal(t, &Registry{Name: "bare1", ResourceGroup: "asked"}, got)
	got = fromARM(armcontainerregistry.Registry{SKU: &armcontainerregistry.SKU{}}, "asked")
	assert.Equal(t, &Registry{ResourceGroup: "asked"}, got)
}

// TestCreateNeedsGroupAndLocation refuses a spec missing either, before any call to ARM.
func TestCreateNeedsGroupAndLocation(t *testing.T) {
	r, f, _ := newTestRegistries(t)
	for _, spec := range []CreateSpec{
		{Name: "hpcimages", Location: "westeurope"},
		{Name: "hpcimages", ResourceGroup: "hpc"},
		{Name: "hpcimages"},
	} {
		_, err := r.Create(t.Context(), spec)
		require.Error(t, err, "%+v", spec)
		assert.Contains(t, err.Error(), "resource group and location are required")
	}
	assert.Zero(t, f.creates)
}
