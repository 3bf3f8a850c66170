// Package arm manages Azure Container Registry registries through Azure Resource
// Manager, as `az acr create`, `az acr show --query loginServer`, `az acr credential
// show` and `az acr check-name` do: Registries creates a registry (idempotently),
// reads its login server, SKU and admin state, lists its admin credentials and checks
// whether a name is free.
//
// It is a package of its own so that a program that only pushes and pulls with package
// acr does not link the Azure Resource Manager SDK. Its output feeds acr as plain
// values: a login server string for name.ParseReference, admin credentials for
// acr.NewAdminKeychain.
//
//	NewRegistries(subscription, azcore.TokenCredential)
//	  ├─ Create(ctx, CreateSpec) ──► *Registry{LoginServer, SKU, AdminUserEnabled, …}
//	  ├─ LoginServer(ctx, rg, name) ──► "myacr.azurecr.io" ──► acr.Push(ctx, ref, img, …)
//	  └─ AdminCredentials(ctx, rg, name) ──► acr.NewAdminKeychain(loginServer, user, password)
//
// No ARM SDK type appears in this package's API. Registry names are checked
// (acr.ValidateRegistryName) before any call. Always push to the login server ARM
// reports: acr.Cloud.LoginServer only builds the conventional one.
//
// Errors: ARM failures are *ManagementError, matching acr.ErrUnauthorized (401/403 or a
// failing credential), ErrNotFound or ErrNameTaken; bad names are *acr.NameError
// (acr.ErrInvalidName). AdminCredentials prints without its passwords.
package arm
