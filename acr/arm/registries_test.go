package arm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry/fake"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
)

// fakeARM is a small stateful Resource Manager for registries, built on the SDK's own
// fake server: registries live in resource groups, names are unique across them, and
// some names belong to other subscriptions.
type fakeARM struct {
	mu          sync.Mutex
	registries  map[string]armcontainerregistry.Registry // "rg/name" → registry
	takenAbroad map[string]bool
	creates     int
	denyAll     bool
	createCode  int
}

func (f *fakeARM) key(rg, name string) string { return rg + "/" + strings.ToLower(name) }

func (f *fakeARM) exists(name string) bool {
	for k := range f.registries {
		if strings.HasSuffix(k, "/"+strings.ToLower(name)) {
			return true
		}
	}
	return f.takenAbroad[strings.ToLower(name)]
}

func (f *fakeARM) server() *fake.RegistriesServer {
	return &fake.RegistriesServer{
		Get: func(_ context.Context, rg, name string, _ *armcontainerregistry.RegistriesClientGetOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientGetResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			if f.denyAll {
				errResp.SetResponseError(http.StatusForbidden, "AuthorizationFailed")
				return
			}
			r, ok := f.registries[f.key(rg, name)]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientGetResponse{Registry: r}, nil)
			return
		},
		CheckNameAvailability: func(_ context.Context, req armcontainerregistry.RegistryNameCheckRequest, _ *armcontainerregistry.RegistriesClientCheckNameAvailabilityOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientCheckNameAvailabilityResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			status := armcontainerregistry.RegistryNameStatus{NameAvailable: ptr(true)}
			if f.exists(*req.Name) {
				status = armcontainerregistry.RegistryNameStatus{NameAvailable: ptr(false), Reason: ptr("AlreadyExists"),
					Message: ptr(fmt.Sprintf("The registry %s is already in use.", *req.Name))}
			}
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientCheckNameAvailabilityResponse{RegistryNameStatus: status}, nil)
			return
		},
		BeginCreate: func(_ context.Context, rg, name string, reg armcontainerregistry.Registry, _ *armcontainerregistry.RegistriesClientBeginCreateOptions) (resp azfake.PollerResponder[armcontainerregistry.RegistriesClientCreateResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.creates++
			if f.createCode != 0 {
				errResp.SetResponseError(f.createCode, "RegistryNameNotAvailable")
				return
			}
			reg.ID = ptr("/subscriptions/sub/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + name)
			reg.Name = &name
			props := *reg.Properties
			props.LoginServer = ptr(strings.ToLower(name) + "-a1b2c3d4.azurecr.io")
			props.ProvisioningState = ptr(armcontainerregistry.ProvisioningStateSucceeded)
			reg.Properties = &props
			f.registries[f.key(rg, name)] = reg
			resp.AddNonTerminalResponse(http.StatusCreated, nil)
			resp.SetTerminalResponse(http.StatusOK, armcontainerregistry.RegistriesClientCreateResponse{Registry: reg}, nil)
			return
		},
		ListCredentials: func(_ context.Context, rg, name string, _ *armcontainerregistry.RegistriesClientListCredentialsOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientListCredentialsResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			r, ok := f.registries[f.key(rg, name)]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			if !*r.Properties.AdminUserEnabled {
				errResp.SetResponseError(http.StatusBadRequest, "AdminUserDisabled")
				return
			}
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientListCredentialsResponse{
				RegistryListCredentialsResult: armcontainerregistry.RegistryListCredentialsResult{
					Username: &name,
					Passwords: []*armcontainerregistry.RegistryPassword{
						{Name: ptr(armcontainerregistry.PasswordNamePassword), Value: ptr("Sentinel-pass-1")},
						{Name: ptr(armcontainerregistry.PasswordNamePassword2), Value: ptr("Sentinel-pass-2")},
					},
				}}, nil)
			return
		},
	}
}

// fakeClient sends requests to the SDK's fake server for srv, through an *http.Client
// as a user's own client would be.
func fakeClient(srv *fake.RegistriesServer) *http.Client {
	return &http.Client{Transport: roundTripFunc(fake.NewRegistriesServerTransport(srv).Do)}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

func newTestRegistries(t *testing.T) (*Registries, *fakeARM, *azfake.TokenCredential) {
	t.Helper()
	f := &fakeARM{registries: map[string]armcontainerregistry.Registry{}, takenAbroad: map[string]bool{"contoso": true}}
	cred := &azfake.TokenCredential{}
	r, err := NewRegistries("sub", cred, WithHTTPClient(fakeClient(f.server())), WithPollInterval(time.Millisecond))
	require.NoError(t, err)
	return r, f, cred
}

func TestRegistriesCreate(t *testing.T) {
	r, f, _ := newTestRegistries(t)
	spec := CreateSpec{ResourceGroup: "hpc", Name: "HpcImages", Location: "westeurope", AdminUserEnabled: true}

	got, err := r.Create(t.Context(), spec)
	require.NoError(t, err)
	want := &Registry{
		Name: "HpcImages", ResourceGroup: "hpc", Location: "westeurope",
		ID:          "/subscriptions/sub/resourceGroups/hpc/providers/Microsoft.ContainerRegistry/registries/HpcImages",
		LoginServer: "hpcimages-a1b2c3d4.azurecr.io", SKU: SKUBasic, AdminUserEnabled: true, ProvisioningState: "Succeeded",
	}
	assert.Equal(t, want, got)

	again, err := r.Create(t.Context(), spec)
	require.NoError(t, err, "an existing registry in the same group is success")
	assert.Equal(t, want, again)
	assert.Equal(t, 1, f.creates)

	shown, err := r.Get(t.Context(), "hpc", "HpcImages")
	require.NoError(t, err)
	assert.Equal(t, want, shown)

	ls, err := r.LoginServer(t.Context(), "hpc", "HpcImages")
	require.NoError(t, err)
	assert.Equal(t, "hpcimages-a1b2c3d4.azurecr.io", ls, "ARM's login server wins over the conventional one")
}

func TestRegistriesLoginServerFallback(t *testing.T) {
	f := &fakeARM{registries: map[string]armcontainerregistry.Registry{
		"hpc/newacr1": {Name: ptr("newacr1"), Properties: &armcontainerregistry.RegistryProperties{}},
	}}
	r, err := NewRegistries("sub", &azfake.TokenCredential{}, WithCloud(acr.AzureChina),
		WithHTTPClient(fakeClient(f.server())))
	require.NoError(t, err)
	ls, err := r.LoginServer(t.Context(), "hpc", "newacr1")
	require.NoError(t, err)
	assert.Equal(t, "newacr1.azurecr.cn", ls)
	_, err = r.LoginServer(t.Context(), "hpc", "missing1")
	require.ErrorIs(t, err, ErrNotFound)
}

func TestRegistriesErrors(t *testing.T) {
	tests := []struct {
		name    string
		setup   func(*fakeARM, *azfake.TokenCredential)
		call    func(context.Context, *Registries) error
		wantErr error
		creates int
	}{
		{
			name: "name in use in another group",
			setup: func(f *fakeARM, _ *azfake.TokenCredential) {
				f.registries["other/hpcimages"] = armcontainerregistry.Registry{}
			},
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Create(ctx, CreateSpec{ResourceGroup: "hpc", Name: "hpcimages", Location: "westeurope"})
				return err
			},
			wantErr: ErrNameTaken,
		},
		{
			name: "name taken by another subscription",
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Create(ctx, CreateSpec{ResourceGroup: "hpc", Name: "contoso", Location: "westeurope"})
				return err
			},
			wantErr: ErrNameTaken,
		},
		{
			name:  "name lost in a race",
			setup: func(f *fakeARM, _ *azfake.TokenCredential) { f.createCode = http.StatusConflict },
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Create(ctx, CreateSpec{ResourceGroup: "hpc", Name: "hpcimages", Location: "westeurope"})
				return err
			},
			wantErr: ErrNameTaken,
			creates: 1,
		},
		{
			name: "not found",
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Get(ctx, "hpc", "missing1")
				return err
			},
			wantErr: ErrNotFound,
		},
		{
			name: "credentials of a missing registry",
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.AdminCredentials(ctx, "hpc", "missing1")
				return err
			},
			wantErr: ErrNotFound,
		},
		{
			name:  "forbidden",
			setup: func(f *fakeARM, _ *azfake.TokenCredential) { f.denyAll = true },
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Create(ctx, CreateSpec{ResourceGroup: "hpc", Name: "hpcimages", Location: "westeurope"})
				return err
			},
			wantErr: acr.ErrUnauthorized,
		},
		{
			name: "credential fails",
			setup: func(_ *fakeARM, c *azfake.TokenCredential) {
				c.SetError(errors.New("AADSTS7000215: invalid client secret"))
			},
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Get(ctx, "hpc", "hpcimages")
				return err
			},
			wantErr: acr.ErrUnauthorized,
		},
		{
			name: "invalid name makes no call",
			setup: func(f *fakeARM, _ *azfake.TokenCredential) {
				f.denyAll = true
			},
			call: func(ctx context.Context, r *Registries) error {
				_, err := r.Create(ctx, CreateSpec{ResourceGroup: "hpc", Name: "hpc-images", Location: "westeurope"})
				return err
			},
			wantErr: acr.ErrInvalidName,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r, f, cred := newTestRegistries(t)
			if tt.setup != nil {
				tt.setup(f, cred)
			}
			err := tt.call(t.Context(), r)
			require.ErrorIs(t, err, tt.wantErr)
			assert.Equal(t, tt.creates, f.creates)
			if !errors.Is(err, acr.ErrInvalidName) {
				var merr *ManagementError
				require.ErrorAs(t, err, &merr)
				assert.NotEmpty(t, merr.Op)
			}
		})
	}
}

func TestRegistriesAdminCredentials(t *testing.T) {
	r, _, _ := newTestRegistries(t)
	_, err := r.Create(t.Context(), CreateSpec{ResourceGroup: "hpc", Name: "hpcimages", Location: "westeurope", AdminUserEnabled: true})
	require.NoError(t, err)

	creds, err := r.AdminCredentials(t.Context(), "hpc", "hpcimages")
	require.NoError(t, err)
	assert.Equal(t, "hpcimages", creds.Username)
	assert.Equal(t, []string{"Sentinel-pass-1", "Sentinel-pass-2"}, creds.Passwords)

	var logs bytes.Buffer
	slog.New(slog.NewJSONHandler(&logs, nil)).Info("got", "creds", creds)
	for _, s := range []string{fmt.Sprint(creds), fmt.Sprintf("%+v", creds), fmt.Sprintf("%#v", creds), logs.String()} {
		assert.NotContains(t, s, "Sentinel")
		assert.Contains(t, s, "hpcimages")
	}

	_, err = r.Create(t.Context(), CreateSpec{ResourceGroup: "hpc", Name: "noadmin1", Location: "westeurope"})
	require.NoError(t, err)
	_, err = r.AdminCredentials(t.Context(), "hpc", "noadmin1")
	var merr *ManagementError
	require.ErrorAs(t, err, &merr)
	assert.Equal(t, http.StatusBadRequest, merr.StatusCode)
	assert.Equal(t, "AdminUserDisabled", merr.Code)
}

func TestRegistriesCheckName(t *testing.T) {
	r, _, _ := newTestRegistries(t)
	got, err := r.CheckName(t.Context(), "contoso")
	require.NoError(t, err)
	assert.Equal(t, NameAvailability{Reason: "AlreadyExists", Message: "The registry contoso is already in use."}, got)
	got, err = r.CheckName(t.Context(), "freename")
	require.NoError(t, err)
	assert.Equal(t, NameAvailability{Available: true}, got)
	_, err = r.CheckName(t.Context(), "no")
	require.ErrorIs(t, err, acr.ErrInvalidName)
}

func TestNewRegistriesArguments(t *testing.T) {
	cred := &azfake.TokenCredential{}
	_, err := NewRegistries("", cred)
	require.Error(t, err)
	_, err = NewRegistries("sub", nil)
	require.Error(t, err)
	_, err = NewRegistries("sub", cred, WithCloud(acr.Cloud(9)))
	require.Error(t, err)
	_, err = NewRegistries("sub", cred, WithPollInterval(0))
	require.Error(t, err)
	_, err = NewRegistries("sub", cred, WithCloud(acr.AzureChina))
	require.NoError(t, err)
}
