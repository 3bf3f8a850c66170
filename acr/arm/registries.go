package arm

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azarm "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/cloud"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/runtime"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"

	"github.com/hpcship/hpcship/acr"
)

// SKU is a registry's service tier.
type SKU string

// The service tiers of ACR.
const (
	SKUBasic    SKU = "Basic"
	SKUStandard SKU = "Standard"
	SKUPremium  SKU = "Premium"
)

// Registry describes a container registry as Azure Resource Manager reports it.
type Registry struct {
	// Name is the registry name, as created.
	Name string
	// ResourceGroup is the resource group the registry lives in.
	ResourceGroup string
	// ID is the ARM resource ID.
	ID string
	// Location is the Azure region, such as "westeurope".
	Location string
	// LoginServer is the host to push to, such as myacr.azurecr.io. Use it rather
	// than a name built from Name: Azure may add a hash to it.
	LoginServer string
	// SKU is the service tier.
	SKU SKU
	// AdminUserEnabled tells whether the admin user (Access keys) may log in.
	AdminUserEnabled bool
	// ProvisioningState is ARM's state, such as "Succeeded".
	ProvisioningState string
}

// CreateSpec says what registry Registries.Create makes.
type CreateSpec struct {
	// ResourceGroup must exist already.
	ResourceGroup string
	// Name is the registry name: 5 to 50 letters and digits, unique in Azure.
	Name string
	// Location is the Azure region, such as "westeurope".
	Location string
	// SKU is the service tier. The zero value means SKUBasic.
	SKU SKU
	// AdminUserEnabled turns on the admin user, as `az acr create --admin-enabled true`.
	AdminUserEnabled bool
}

// AdminCredentials are a registry's admin user name and its passwords. Printing them
// with fmt or slog shows the user name only.
type AdminCredentials struct {
	Username  string
	Passwords []string
}

// String shows the user name and hides the passwords.
func (c AdminCredentials) String() string {
	return fmt.Sprintf("{Username:%s Passwords:[%d redacted]}", c.Username, len(c.Passwords))
}

// GoString shows the user name and hides the passwords.
func (c AdminCredentials) GoString() string { return "arm.AdminCredentials" + c.String() }

// LogValue shows the user name and hides the passwords.
func (c AdminCredentials) LogValue() slog.Value {
	return slog.GroupValue(slog.String("username", c.Username), slog.Int("passwords", len(c.Passwords)))
}

// NameAvailability is Azure's answer to whether a registry name can be taken.
type NameAvailability struct {
	Available bool
	// Reason is Azure's reason code when the name is not available, such as
	// "AlreadyExists".
	Reason string
	// Message explains Reason.
	Message string
}

// Registries manages container registries in one Azure subscription through Azure
// Resource Manager, as `az acr create/show/credential show/check-name` do.
type Registries struct {
	client       *armcontainerregistry.RegistriesClient
	cloud        acr.Cloud
	pollInterval time.Duration
}

// Option configures NewRegistries.
type Option func(*options) error

type options struct {
	cloud        acr.Cloud
	client       *http.Client
	pollInterval time.Duration
}

// WithCloud sets the Azure cloud whose Resource Manager is called. The credential must
// belong to the same cloud (azidentity's ClientOptions.Cloud). The default is
// AzurePublic.
func WithCloud(c acr.Cloud) Option {
	return func(o *options) error {
		if c.LoginServerSuffix() == "" {
			return fmt.Errorf("WithCloud: unknown cloud %v", c)
		}
		o.cloud = c
		return nil
	}
}

// WithHTTPClient sets the HTTP client that sends Resource Manager requests, such as one
// with a proxy or a custom transport. Azure's authentication, retry and logging policies
// still run above it. The default is azcore's shared client.
func WithHTTPClient(c *http.Client) Option {
	return func(o *options) error {
		if c == nil {
			return errors.New("WithHTTPClient: client must not be nil")
		}
		o.client = c
		return nil
	}
}

// WithPollInterval sets how often Create asks whether a new registry is ready. The
// default is 5s.
func WithPollInterval(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("WithPollInterval: poll interval must be positive, got %v", d)
		}
		o.pollInterval = d
		return nil
	}
}

// NewRegistries returns a client for the registries of one subscription,
// authenticated by cred, which needs the Contributor role (or
// Microsoft.ContainerRegistry/registries/write, read and listCredentials/action).
//
// It calls the Azure public cloud (WithCloud), through azcore's shared HTTP client
// (WithHTTPClient), and polls a registry being created every 5s (WithPollInterval).
func NewRegistries(subscriptionID string, cred azcore.TokenCredential, opts ...Option) (*Registries, error) {
	if subscriptionID == "" {
		return nil, errors.New("arm.NewRegistries: subscription ID must not be empty")
	}
	if cred == nil {
		return nil, errors.New("arm.NewRegistries: azure credential must not be nil")
	}
	o := &options{cloud: acr.AzurePublic, pollInterval: 5 * time.Second}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, fmt.Errorf("arm.NewRegistries: %w", err)
		}
	}
	copts := &azarm.ClientOptions{}
	copts.Cloud = clouds[o.cloud]
	if o.client != nil {
		copts.Transport = o.client
	}
	client, err := armcontainerregistry.NewRegistriesClient(subscriptionID, credentialErrors{cred}, copts)
	if err != nil {
		return nil, fmt.Errorf("creating the registries client: %w", err)
	}
	return &Registries{client: client, cloud: o.cloud, pollInterval: o.pollInterval}, nil
}

// clouds maps acr's clouds to azcore's configurations.
var clouds = map[acr.Cloud]cloud.Configuration{
	acr.AzurePublic:       cloud.AzurePublic,
	acr.AzureChina:        cloud.AzureChina,
	acr.AzureUSGovernment: cloud.AzureGovernment,
}

// credentialErrors marks the credential's own failures as ErrUnauthorized, so a
// service principal with a wrong secret is told apart from a network failure.
type credentialErrors struct{ azcore.TokenCredential }

func (c credentialErrors) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.TokenCredential.GetToken(ctx, opts)
	if err != nil && ctx.Err() == nil {
		return tok, fmt.Errorf("%w: getting an Azure token: %w", acr.ErrUnauthorized, err)
	}
	return tok, err
}

// Get returns the registry called name in a resource group. A registry that does not
// exist gives a *ManagementError matching ErrNotFound.
func (r *Registries) Get(ctx context.Context, resourceGroup, name string) (*Registry, error) {
	if err := acr.ValidateRegistryName(name); err != nil {
		return nil, err
	}
	resp, err := r.client.Get(ctx, resourceGroup, name, nil)
	if err != nil {
		return nil, managementError("get", name, err)
	}
	return fromARM(resp.Registry, resourceGroup), nil
}

// LoginServer returns the host to push to for a registry, as `az acr show --query
// loginServer` does: the login server ARM reports, or, if ARM reports none (a registry
// still being provisioned), the conventional one of the client's cloud.
func (r *Registries) LoginServer(ctx context.Context, resourceGroup, name string) (string, error) {
	reg, err := r.Get(ctx, resourceGroup, name)
	if err != nil {
		return "", err
	}
	if reg.LoginServer != "" {
		return reg.LoginServer, nil
	}
	return r.cloud.LoginServer(name)
}

// Create makes a registry as spec says and waits until Azure reports it ready, like
// `az acr create`. It is idempotent: a registry of that name already in that resource
// group is returned as it is, unchanged, and no error. A name that is taken elsewhere
// gives a *ManagementError matching ErrNameTaken, before anything is created.
func (r *Registries) Create(ctx context.Context, spec CreateSpec) (*Registry, error) {
	if err := acr.ValidateRegistryName(spec.Name); err != nil {
		return nil, err
	}
	if spec.ResourceGroup == "" || spec.Location == "" {
		return nil, fmt.Errorf("creating registry %s: resource group and location are required", spec.Name)
	}
	sku := spec.SKU
	if sku == "" {
		sku = SKUBasic
	}
	existing, err := r.Get(ctx, spec.ResourceGroup, spec.Name)
	switch {
	case err == nil:
		return existing, nil
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	avail, err := r.CheckName(ctx, spec.Name)
	if err != nil {
		return nil, err
	}
	if !avail.Available {
		return nil, &ManagementError{Op: "create", Registry: spec.Name, Code: avail.Reason,
			Err: fmt.Errorf("%w: %s", ErrNameTaken, avail.Message)}
	}
	poller, err := r.client.BeginCreate(ctx, spec.ResourceGroup, spec.Name, armcontainerregistry.Registry{
		Location:   &spec.Location,
		SKU:        &armcontainerregistry.SKU{Name: ptr(armcontainerregistry.SKUName(sku))},
		Properties: &armcontainerregistry.RegistryProperties{AdminUserEnabled: &spec.AdminUserEnabled},
	}, nil)
	if err != nil {
		return nil, managementError("create", spec.Name, err)
	}
	resp, err := poller.PollUntilDone(ctx, &runtime.PollUntilDoneOptions{Frequency: r.pollInterval})
	if err != nil {
		return nil, managementError("create", spec.Name, err)
	}
	return fromARM(resp.Registry, spec.ResourceGroup), nil
}

// AdminCredentials returns the admin user name and passwords of a registry, as the
// portal's Access keys show them. The admin user must be enabled.
func (r *Registries) AdminCredentials(ctx context.Context, resourceGroup, name string) (AdminCredentials, error) {
	if err := acr.ValidateRegistryName(name); err != nil {
		return AdminCredentials{}, err
	}
	resp, err := r.client.ListCredentials(ctx, resourceGroup, name, nil)
	if err != nil {
		return AdminCredentials{}, managementError("list credentials of", name, err)
	}
	c := AdminCredentials{Username: deref(resp.Username)}
	for _, p := range resp.Passwords {
		if p != nil && p.Value != nil {
			c.Passwords = append(c.Passwords, *p.Value)
		}
	}
	if c.Username == "" || len(c.Passwords) == 0 {
		return AdminCredentials{}, &ManagementError{Op: "list credentials of", Registry: name,
			Err: errors.New("no admin credentials returned; is the admin user enabled?")}
	}
	return c, nil
}

// CheckName asks Azure whether a registry name is free. Names are global across
// Azure, so a name can be taken by someone else's subscription.
func (r *Registries) CheckName(ctx context.Context, name string) (NameAvailability, error) {
	if err := acr.ValidateRegistryName(name); err != nil {
		return NameAvailability{}, err
	}
	resp, err := r.client.CheckNameAvailability(ctx, armcontainerregistry.RegistryNameCheckRequest{
		Name: &name,
		Type: ptr("Microsoft.ContainerRegistry/registries"),
	}, nil)
	if err != nil {
		return NameAvailability{}, managementError("check name of", name, err)
	}
	return NameAvailability{
		Available: resp.NameAvailable != nil && *resp.NameAvailable,
		Reason:    deref(resp.Reason),
		Message:   deref(resp.Message),
	}, nil
}

func managementError(op, name string, err error) error {
	e := &ManagementError{Op: op, Registry: name, Err: err}
	var rerr *azcore.ResponseError
	if errors.As(err, &rerr) {
		e.StatusCode = rerr.StatusCode
		e.Code = rerr.ErrorCode
		if e.StatusCode == http.StatusConflict && e.Code == "" {
			e.Code = "AlreadyExists"
		}
	}
	return e
}

func fromARM(r armcontainerregistry.Registry, resourceGroup string) *Registry {
	out := &Registry{
		Name:          deref(r.Name),
		ResourceGroup: resourceGroup,
		ID:            deref(r.ID),
		Location:      deref(r.Location),
	}
	if rg := resourceGroupOf(out.ID); rg != "" {
		out.ResourceGroup = rg
	}
	if r.SKU != nil && r.SKU.Name != nil {
		out.SKU = SKU(*r.SKU.Name)
	}
	if p := r.Properties; p != nil {
		out.LoginServer = strings.ToLower(deref(p.LoginServer))
		out.AdminUserEnabled = p.AdminUserEnabled != nil && *p.AdminUserEnabled
		if p.ProvisioningState != nil {
			out.ProvisioningState = string(*p.ProvisioningState)
		}
	}
	return out
}

// resourceGroupOf returns the resource group in an ARM resource ID.
func resourceGroupOf(id string) string {
	parts := strings.Split(id, "/")
	for i := 0; i+1 < len(parts); i++ {
		if strings.EqualFold(parts[i], "resourceGroups") {
			return parts[i+1]
		}
	}
	return ""
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
