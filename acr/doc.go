// Package acr pushes and pulls images to and from Azure Container Registry with
// go-containerregistry, without Docker, the Azure CLI or root. It replaces `az acr
// login` and `docker tag` + `docker push` in the hpcship workflow: an image built by
// imagebuild goes to ACR with Push, and the cluster pulls it from there. Creating
// registries and reading their admin keys through Azure Resource Manager (`az acr
// create`, `az acr show`, `az acr credential show`) is package acr/arm, kept apart so
// that a program that only pushes does not link the ARM SDK.
//
// # Credentials
//
// Every credential is a go-containerregistry authn.Authenticator or authn.Keychain, so
// it also works with crane, ko or any remote.Option user:
//
//   - Azure AD (NewAADAuthenticator, NewAADKeychain) from any azcore.TokenCredential:
//     azidentity's DefaultAzureCredential, a managed identity, a service principal, the
//     Azure CLI. The AAD token is exchanged for an ACR refresh token, which is renewed
//     before its expiry, so a push that takes hours does not fail halfway.
//   - The admin user (NewAdminKeychain), as the portal's Access keys show it or
//     acr/arm's Registries.AdminCredentials returns it.
//   - The environment (NewEnvKeychain): APPTAINER_DOCKER_USERNAME/PASSWORD, else
//     SINGULARITY_DOCKER_USERNAME/PASSWORD, as Apptainer reads them.
//   - The docker config file, including the identitytoken `az acr login` stores, through
//     go-containerregistry's authn.DefaultKeychain; NewKeychain chains all of these.
//
// The keychains of this package hand credentials only to ACR login servers, matched
// exactly (one DNS label, then .azurecr.io, .azurecr.cn or .azurecr.us; see
// IsLoginServer), and to hosts named with WithHosts. Any other host gets
// authn.Anonymous, so they compose with authn.NewMultiKeychain.
//
// The Azure AD flow, all on the login server, as ACR documents it:
//
//	azcore.TokenCredential ──GetToken(containerregistry.azure.net)──► AAD token
//	AAD token      ──POST /oauth2/exchange grant_type=access_token──► ACR refresh token (~3 h)
//	refresh token  ──POST /oauth2/token grant_type=refresh_token────► access token per scope (~75 min)
//	               (go-containerregistry does this step: AuthConfig{Username: 00000000-…, IdentityToken: rt})
//	access token   ──Bearer──► /v2/<repo>/blobs, /v2/<repo>/manifests
//	                            └─ blob GET ─307─► Azure Storage (SAS in the URL; no Authorization sent)
//
// # Push and pull
//
// Push, PushIndex, Pull, ListTags and Catalog wrap go-containerregistry's remote package.
// Beneath it, a transport retries 408, 429 and 5xx answers and dropped connections,
// waiting as long as Retry-After asks (go-containerregistry does not), and strips
// credentials from any request to a host other than the registry, such as ACR's
// redirects of blob downloads to storage.
//
// # Login servers
//
// Push to the login server Azure Resource Manager reports (acr/arm: Registry.LoginServer,
// Registries.LoginServer). Cloud.LoginServer builds the conventional one from a registry
// name (ValidateRegistryName checks it), for when ARM is out of reach, and IsLoginServer
// tells whether a host is one, which decides where the keychains hand out credentials.
//
// Errors: rejected credentials are *AuthError (ErrUnauthorized); bad names are
// *NameError (ErrInvalidName). No error or log line contains a password or token.
package acr
