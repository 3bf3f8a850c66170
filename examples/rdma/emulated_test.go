package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/Azure/azure-sdk-for-go/sdk/azcore"
	azfake "github.com/Azure/azure-sdk-for-go/sdk/azcore/fake"
	"github.com/Azure/azure-sdk-for-go/sdk/azcore/policy"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry"
	"github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/containerregistry/armcontainerregistry/fake"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/acr"
	"github.com/hpcship/hpcship/acr/arm"
	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/singularity"
)

// fakeARM is Resource Manager for one subscription's registries, on the ARM SDK's own fake server: it
// creates registries whose login server is the test registry's, and lists the test registry's admin keys.
type fakeARM struct {
	loginServer         string
	adminUser, adminKey string

	mu         sync.Mutex
	registries map[string]armcontainerregistry.Registry // by resource group/name
	creates    int
}

func (f *fakeARM) client() *http.Client {
	srv := &fake.RegistriesServer{
		Get: func(_ context.Context, rg, name string, _ *armcontainerregistry.RegistriesClientGetOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientGetResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			r, ok := f.registries[rg+"/"+name]
			if !ok {
				errResp.SetResponseError(http.StatusNotFound, "ResourceNotFound")
				return
			}
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientGetResponse{Registry: r}, nil)
			return
		},
		CheckNameAvailability: func(_ context.Context, req armcontainerregistry.RegistryNameCheckRequest, _ *armcontainerregistry.RegistriesClientCheckNameAvailabilityOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientCheckNameAvailabilityResponse], errResp azfake.ErrorResponder) {
			yes := true
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientCheckNameAvailabilityResponse{
				RegistryNameStatus: armcontainerregistry.RegistryNameStatus{NameAvailable: &yes}}, nil)
			return
		},
		BeginCreate: func(_ context.Context, rg, name string, reg armcontainerregistry.Registry, _ *armcontainerregistry.RegistriesClientBeginCreateOptions) (resp azfake.PollerResponder[armcontainerregistry.RegistriesClientCreateResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.creates++
			id := "/subscriptions/sub/resourceGroups/" + rg + "/providers/Microsoft.ContainerRegistry/registries/" + name
			succeeded := armcontainerregistry.ProvisioningStateSucceeded
			reg.ID, reg.Name = &id, &name
			props := *reg.Properties
			props.LoginServer, props.ProvisioningState = &f.loginServer, &succeeded
			reg.Properties = &props
			f.registries[rg+"/"+name] = reg
			resp.AddNonTerminalResponse(http.StatusCreated, nil)
			resp.SetTerminalResponse(http.StatusOK, armcontainerregistry.RegistriesClientCreateResponse{Registry: reg}, nil)
			return
		},
		ListCredentials: func(_ context.Context, rg, name string, _ *armcontainerregistry.RegistriesClientListCredentialsOptions) (resp azfake.Responder[armcontainerregistry.RegistriesClientListCredentialsResponse], errResp azfake.ErrorResponder) {
			f.mu.Lock()
			defer f.mu.Unlock()
			r, ok := f.registries[rg+"/"+name]
			if !ok || !*r.Properties.AdminUserEnabled {
				errResp.SetResponseError(http.StatusBadRequest, "AdminUserDisabled")
				return
			}
			resp.SetResponse(http.StatusOK, armcontainerregistry.RegistriesClientListCredentialsResponse{
				RegistryListCredentialsResult: armcontainerregistry.RegistryListCredentialsResult{
					Username:  &f.adminUser,
					Passwords: []*armcontainerregistry.RegistryPassword{{Value: &f.adminKey}},
				}}, nil)
			return
		},
	}
	transport := fake.NewRegistriesServerTransport(srv)
	return &http.Client{Transport: roundTripFunc(transport.Do)}
}

// emulatedAzure is the Azure side of a run: Resource Manager on the SDK's fake server, and the registry it
// reports as Debian's docker-registry behind internal/acrtest's emulation of ACR's token endpoints, which
// also issues the Azure AD tokens.
type emulatedAzure struct {
	reg  *acrtest.Registry
	arm  *fakeARM
	cred *recordingCredential
}

func newEmulatedAzure(t *testing.T) *emulatedAzure {
	t.Helper()
	reg := acrtest.Start(t, acrtest.WithAdmin("rdmaacr", "Adm1n-key-that-must-not-show"))
	user, key := reg.AdminCredentials()
	return &emulatedAzure{reg: reg, cred: &recordingCredential{TokenCredential: reg.TokenCredential()},
		arm: &fakeARM{loginServer: reg.LoginServer(), adminUser: user, adminKey: key,
			registries: map[string]armcontainerregistry.Registry{}}}
}

// recordingCredential keeps the Azure AD tokens it issued, to look for them where they must not be.
type recordingCredential struct {
	azcore.TokenCredential
	mu     sync.Mutex
	issued []string
}

func (c *recordingCredential) GetToken(ctx context.Context, opts policy.TokenRequestOptions) (azcore.AccessToken, error) {
	tok, err := c.TokenCredential.GetToken(ctx, opts)
	if err == nil {
		c.mu.Lock()
		c.issued = append(c.issued, tok.Token)
		c.mu.Unlock()
	}
	return tok, err
}

func (c *recordingCredential) tokens() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]string(nil), c.issued...)
}

func (a *emulatedAzure) deps(t *testing.T) deps {
	return deps{
		getenv:     func(string) string { return "" },
		credential: func() (azcore.TokenCredential, error) { return a.cred, nil },
		armOptions: []arm.Option{arm.WithHTTPClient(a.arm.client()), arm.WithPollInterval(time.Millisecond)},
	}
}

// buildContext writes a Dockerfile of the seed's shape that needs no network (scratch instead of centos:7,
// no RUN) and an intel.tgz holding a stand-in of Intel MPI's tree.
func buildContext(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(`FROM scratch
WORKDIR /app
ADD intel.tgz /opt/
ENV LD_LIBRARY_PATH=/opt/intel/impi/5.1.3.223/lib64
ENTRYPOINT ["/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1"]
`), 0o644))
	f, err := os.Create(filepath.Join(dir, "intel.tgz"))
	require.NoError(t, err)
	gz := gzip.NewWriter(f)
	tw := tar.NewWriter(gz)
	for _, e := range []struct{ name, body string }{
		{"intel/impi/5.1.3.223/bin64/IMB-MPI1", "#!/bin/sh\necho IMB stand-in\n"},
		{"intel/impi/5.1.3.223/bin64/mpivars.sh", "export I_MPI_ROOT=/opt/intel/impi/5.1.3.223\n"},
	} {
		require.NoError(t, tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o755, Size: int64(len(e.body)), Typeflag: tar.TypeReg}))
		_, err := tw.Write([]byte(e.body))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, gz.Close())
	require.NoError(t, f.Close())
	return dir
}

// TestWorkflowEmulated runs the steps up to the jobscript for real against emulated Azure: the registry is
// created through Resource Manager, the image built and pushed with Azure AD or admin credentials, pulled
// back as a SIF, and the jobscript written. The cluster steps are not run (-submit=false).
func TestWorkflowEmulated(t *testing.T) {
	t.Parallel()
	az := newEmulatedAzure(t)
	contextDir := buildContext(t)
	cache := t.TempDir()
	_, adminKey := az.reg.AdminCredentials()

	// The admin run goes first and creates the registry with its admin user enabled; the Azure AD run then
	// finds it.
	for _, auth := range []string{authAdmin, authAAD} {
		t.Run(auth, func(t *testing.T) {
			workdir := t.TempDir()
			code, stdout, stderr := runRdma(t, az.deps(t), "-subscription", "sub", "-resource-group", "hpc-rg",
				"-registry", "rdmaacr", "-create", "-location", "westeurope", "-auth", auth, "-context", contextDir,
				"-cache-dir", cache, "-workdir", workdir, "-submit=false")
			require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
			for _, secret := range append(az.cred.tokens(), adminKey) {
				assert.NotContains(t, stdout+stderr, secret)
			}
			assert.Contains(t, stdout, "[6/6] Jobscript for Grid Engine")
			m := regexp.MustCompile(`(?m)^      (\d+) of (\d+) files, \d+ bytes written$`).FindAllStringSubmatch(stdout, -1)
			require.NotEmpty(t, m, "the pull reports its progress")
			assert.Equal(t, m[len(m)-1][2], m[len(m)-1][1], "the last report counts every file")
			assertRising(t, m, "the pull's reports")
			m = regexp.MustCompile(`(?m)^      (\d+)% of (\d+) bytes$`).FindAllStringSubmatch(stdout, -1)
			if auth == authAdmin { // the second run's push finds the image there
				require.NotEmpty(t, m, "the push reports its progress")
				assert.Equal(t, "100", m[len(m)-1][1], "the last report is the whole image")
			}
			assertRising(t, m, "the push's reports")
			assert.Regexp(t, `(?m)^      `+regexp.QuoteMeta(filepath.Join(workdir, "rdma_latest.sif"))+`, [1-9]\d* bytes, in \S+$`, stdout)

			// Each build step is reported once, when done; the second run finds them in the cache.
			steps := regexp.MustCompile(`(?m)^      step (\d+)/(\d+) (.*)$`).FindAllStringSubmatch(stdout, -1)
			require.Len(t, steps, 4, stdout)
			cached := 0
			for i, s := range steps {
				assert.Equal(t, []string{strconv.Itoa(i + 1), "4"}, s[1:3], s[0])
				if strings.HasSuffix(s[3], " (cached)") {
					cached++
				}
			}
			if auth == authAdmin {
				assert.Zero(t, cached, "the first build has no cache")
			} else {
				assert.Positive(t, cached, "the second build's layers come from the cache")
			}
			assert.Contains(t, stdout, "rdmaacr: "+az.reg.LoginServer()+", westeurope, Basic, admin user enabled: true")

			// What the registry holds is what the program built: pull it back by the tag it pushed.
			ref, err := name.NewTag(az.reg.LoginServer()+"/rdma:latest", name.StrictValidation)
			require.NoError(t, err)
			img, err := acr.Pull(t.Context(), ref, acr.WithKeychain(acr.NewAdminKeychain(az.reg.LoginServer(), az.arm.adminUser, adminKey)))
			require.NoError(t, err)
			digest, err := img.Digest()
			require.NoError(t, err)
			assert.Contains(t, stdout, "pushed "+ref.Context().String()+"@"+digest.String())

			// The SIF is the image: its environment and runscript come from the Dockerfile.
			info, err := singularity.Inspect(filepath.Join(workdir, "rdma_latest.sif"))
			require.NoError(t, err)
			require.NotNil(t, info.OCIConfig)
			assert.Contains(t, info.OCIConfig.Env, "LD_LIBRARY_PATH=/opt/intel/impi/5.1.3.223/lib64")
			assert.Contains(t, info.Runscript, "/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1")

			script, err := os.ReadFile(filepath.Join(workdir, "rdma.job"))
			require.NoError(t, err)
			assert.Contains(t, string(script), "singularity exec ./rdma_latest.sif /opt/intel/impi/5.1.3.223/bin64/IMB-MPI1 PingPong")
		})
	}
	assert.Equal(t, 1, az.arm.creates, "the second run finds the registry the first created")
	for _, dir := range []string{"imagebuild", "singularity"} {
		entries, err := os.ReadDir(filepath.Join(cache, dir))
		require.NoError(t, err, "-cache-dir holds the %s cache", dir)
		assert.NotEmpty(t, entries, dir)
	}
	st := az.reg.Stats()
	assert.Positive(t, st.Exchanges, "Azure AD tokens were exchanged at the registry")
	assert.NotEmpty(t, az.cred.tokens(), "Resource Manager and the registry had Azure AD tokens")
	assert.Positive(t, st.AccessTokens[acrtest.GrantRefreshToken], "the AAD run used refresh tokens")
	assert.Positive(t, st.AccessTokens[acrtest.GrantBasicAdmin]+st.AccessTokens[acrtest.GrantPasswordAdmin],
		"the admin run used the admin keys")
}

// assertRising checks that progress reports, each a match of (done, total), have a positive total and
// report more done each time.
func assertRising(t *testing.T, reports [][]string, what string) {
	t.Helper()
	last := -1
	for _, r := range reports {
		done, err := strconv.Atoi(r[1])
		require.NoError(t, err)
		total, err := strconv.Atoi(r[2])
		require.NoError(t, err)
		assert.Positive(t, total, "%s: %s", what, r[0])
		assert.Greater(t, done, last, "%s: %s", what, r[0])
		last = done
	}
}

// TestPullHonoursEnvironment checks that SINGULARITY_DOCKER_USERNAME/PASSWORD, when set, are the credentials
// of the pull, as in the seed workflow, while the push uses Azure AD.
func TestPullHonoursEnvironment(t *testing.T) {
	az := newEmulatedAzure(t)
	user, key := az.reg.AdminCredentials()
	t.Setenv(acr.EnvSingularityUsername, user)
	t.Setenv(acr.EnvSingularityPassword, key)
	workdir := t.TempDir()
	code, stdout, stderr := runRdma(t, az.deps(t), "-subscription", "sub", "-resource-group", "hpc-rg",
		"-registry", "rdmaacr", "-create", "-location", "westeurope", "-context", buildContext(t),
		"-cache-dir", t.TempDir(), "-workdir", workdir, "-submit=false")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.NotContains(t, stdout+stderr, key)
	st := az.reg.Stats()
	assert.Positive(t, st.AccessTokens[acrtest.GrantRefreshToken], "the push used Azure AD")
	assert.Positive(t, st.AccessTokens[acrtest.GrantBasicAdmin]+st.AccessTokens[acrtest.GrantPasswordAdmin],
		"the pull used the environment's admin keys")

	// A wrong password in the environment is the pull's, even though Azure AD would do: the run stops there.
	t.Setenv(acr.EnvSingularityPassword, "Wrong-password-that-must-not-show")
	workdir = t.TempDir()
	code, stdout, stderr = runRdma(t, az.deps(t), "-subscription", "sub", "-resource-group", "hpc-rg",
		"-registry", "rdmaacr", "-context", buildContext(t), "-cache-dir", t.TempDir(), "-workdir", workdir, "-submit=false")
	assert.Equal(t, 1, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "[5/6] Pull it as a SIF")
	assert.NotContains(t, stdout, "[6/6]")
	assert.Contains(t, stderr, "rdma: pulling ")
	assert.Contains(t, stderr, "UNAUTHORIZED")
	assert.NotContains(t, stdout+stderr, "Wrong-password-that-must-not-show")
	assert.NoFileExists(t, filepath.Join(workdir, "rdma_latest.sif"))
}

// TestWorkflowEmulatedErrors checks that a step failing in Azure stops the run with Azure's reason and
// exit status 1, before anything is built.
func TestWorkflowEmulatedErrors(t *testing.T) {
	t.Parallel()
	az := newEmulatedAzure(t)
	base := []string{"-subscription", "sub", "-resource-group", "hpc-rg", "-registry", "rdmaacr",
		"-context", buildContext(t), "-cache-dir", t.TempDir(), "-submit=false"}

	t.Run("registry missing", func(t *testing.T) {
		workdir := t.TempDir()
		code, stdout, stderr := runRdma(t, az.deps(t), append(base, "-workdir", workdir)...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "rdmaacr")
		assert.Contains(t, stderr, "ResourceNotFound")
		assert.NotContains(t, stdout, "[3/6]")
	})
	t.Run("admin user disabled", func(t *testing.T) {
		workdir := t.TempDir()
		args := append(base, "-workdir", workdir, "-create", "-location", "westeurope")
		code, _, stderr := runRdma(t, az.deps(t), args...) // creates it with Azure AD only
		require.Equal(t, 0, code, stderr)
		code, stdout, stderr := runRdma(t, az.deps(t), append(args, "-auth", "admin")...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "rdma: the admin user of registry rdmaacr is disabled: enable it (az acr update --name rdmaacr --admin-enabled true) or use -auth aad")
		assert.NotContains(t, stdout, "[3/6]")
	})
	t.Run("build fails", func(t *testing.T) {
		contextDir := buildContext(t)
		require.NoError(t, os.Remove(filepath.Join(contextDir, "intel.tgz")))
		code, stdout, stderr := runRdma(t, az.deps(t), "-subscription", "sub", "-resource-group", "hpc-rg", "-registry", "rdmaacr",
			"-create", "-location", "westeurope", "-context", contextDir, "-cache-dir", t.TempDir(), "-submit=false", "-workdir", t.TempDir())
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "intel.tgz")
		assert.Contains(t, stdout, "[3/6] Build the image")
		assert.NotContains(t, stdout, "[4/6]")
	})
	t.Run("credential unavailable", func(t *testing.T) {
		d := az.deps(t)
		d.credential = func() (azcore.TokenCredential, error) {
			return nil, errors.New("DefaultAzureCredential: no credential in the chain")
		}
		code, _, stderr := runRdma(t, d, append(base, "-workdir", t.TempDir())...)
		assert.Equal(t, 1, code)
		assert.Contains(t, stderr, "rdma: getting the Azure AD credential: DefaultAzureCredential: no credential in the chain")
	})
}

// TestBaseInRegistry builds FROM an image in the same registry, as a site's own CentOS base would be: the
// base is pulled with the registry's Azure AD credentials.
func TestBaseInRegistry(t *testing.T) {
	t.Parallel()
	az := newEmulatedAzure(t)
	user, key := az.reg.AdminCredentials()
	base, err := name.NewTag(az.reg.LoginServer()+"/base/centos:7", name.StrictValidation)
	require.NoError(t, err)
	baseImg, err := random.Image(512, 1)
	require.NoError(t, err)
	_, err = acr.Push(t.Context(), base, baseImg, acr.WithKeychain(acr.NewAdminKeychain(az.reg.LoginServer(), user, key)))
	require.NoError(t, err)

	contextDir := buildContext(t)
	dockerfile := filepath.Join(contextDir, "Dockerfile")
	body, err := os.ReadFile(dockerfile)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(dockerfile, bytes.Replace(body, []byte("FROM scratch"), []byte("FROM "+base.String()), 1), 0o644))

	code, stdout, stderr := runRdma(t, az.deps(t), "-subscription", "sub", "-resource-group", "hpc-rg",
		"-registry", "rdmaacr", "-create", "-location", "westeurope", "-context", contextDir,
		"-cache-dir", t.TempDir(), "-workdir", t.TempDir(), "-submit=false")
	require.Equal(t, 0, code, "stdout:\n%s\nstderr:\n%s", stdout, stderr)
	assert.Contains(t, stdout, "[3/6] Build the image from "+dockerfile)
	assert.Contains(t, stdout, "[6/6] Jobscript")
}
