// Package acrtest runs a test registry that behaves like Azure Container Registry, for the
// integration tests and examples of the acr package and the workflow built on it.
//
// Start launches a real Debian docker-registry (distribution 2.8) with token
// authentication, or go-containerregistry's in-memory registry (WithInMemoryRegistry),
// and in front of it an in-process proxy on the host:port that clients use, as ACR
// serves its token endpoints from the login server itself:
//
//	ggcr / acr client                proxy 127.0.0.1:P (LoginServer)            docker-registry 127.0.0.1:B
//	─────────────────                ──────────────────────────────             ─────────────────────────
//	AAD token (TokenCredential) ───► POST /oauth2/exchange  → {"refresh_token"}
//	refresh token / admin / null GUID ► /oauth2/token       → {"access_token"}  (JWT, RS256, libtrust kid)
//	Bearer access token ────────────► /v2/...  faults? expired? blob redirect? ─► verifies the JWT against
//	                                                                              its rootcertbundle
//	                                  307 for blob GETs (WithBlobRedirect) ───► storage 127.0.0.1:S (no auth)
//
// The token protocol follows ACR's documentation and recorded traffic:
//
//   - POST /oauth2/exchange with grant_type=access_token, service, access_token and an
//     optional tenant answers {"refresh_token": JWT} valid 3h15m; other methods get 404.
//     The Azure AD token must be signed by the test Azure AD key (TokenCredential), be
//     unexpired, come from the registry's tenant (and the form's tenant if given) and be
//     for ACR's audience or, unless WithARMAudienceDisabled, ARM's.
//   - /oauth2/token answers {"access_token": JWT} valid 75 minutes for POST
//     grant_type=refresh_token (ggcr's identity-token flow, one space-joined scope field),
//     POST grant_type=password with username and password, and GET with Basic
//     authentication (ggcr's and docker's basic flow); the scope parameter may repeat.
//     Passwords are the admin user's, or, for the user NullGUID, a refresh token.
//   - Refusals are 401 (bad credentials, expired or foreign tokens, anonymous requests) or
//     400 (malformed requests, wrong service or grant type), with ACR's
//     {"errors":[{"code":...,"message":...}]} body.
//   - /v2/ challenges are docker-registry's own, `Bearer realm="http://<host>/oauth2/token",
//     service="<LoginServer>"[,scope=...][,error=...]`, with the realm on the host the client
//     used.
//
// docker-registry accepts an expired token for 60 s more; the proxy refuses it as soon as it
// expires, so short WithAccessTokenTTL values take effect. WithFaults makes the proxy fail a
// share of /v2/ requests before they reach the registry (500, 503, 429 with Retry-After,
// connection resets; WithTokenEndpointFaults adds the token endpoints), so the registry's
// state stays consistent; SetFaultRate(0) turns them off to verify what a run stored.
// WithRequestDelay holds every /v2/ request to stretch a push over token lifetimes. Stats
// counts exchanges, grants, expired tokens, faults, and any Authorization header that
// reached storage.
//
// New starts the same registry outside a test, for the examples; the caller stops it with
// Close.
//
// WithInMemoryRegistry puts go-containerregistry's in-memory registry behind the same
// proxy instead of docker-registry: the proxy then checks access tokens as docker-registry
// would, and nothing needs installing. Unit tests and examples use it; integration tests
// use docker-registry.
//
// Requirements: /usr/bin/docker-registry (Debian package docker-registry), unless
// WithInMemoryRegistry. Without it Start skips the test, or fails it under
// HPCSHIP_INTEGRATION=1 (see internal/testenv).
package acrtest
