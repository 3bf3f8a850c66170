package acr

import (
	"os/exec"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
)

// The Azure Resource Manager SDK: the registry management client and azcore's ARM
// pipeline. Package acr links neither; a program that only pushes does not link the
// management client, although azidentity brings azcore's ARM pipeline with it.
const (
	armClients  = "github.com/Azure/azure-sdk-for-go/sdk/resourcemanager/"
	armPipeline = "github.com/Azure/azure-sdk-for-go/sdk/azcore/arm"
)

// TestPushOnlyLinksNoARM lists the packages that package acr, and a program pushing
// with every kind of acr credential, link, and checks that the ARM SDK is not among
// them, while a program using acr/arm does link it (so that the check can fail).
func TestPushOnlyLinksNoARM(t *testing.T) {
	gobin := testenv.Require(t, "go")
	if gobin == nil {
		return
	}
	deps := func(pkg string) []string {
		out, err := exec.CommandContext(t.Context(), gobin[0], "list", "-deps", pkg).Output()
		require.NoError(t, err, "go list -deps %s", pkg)
		return strings.Fields(string(out))
	}
	matching := func(pkgs []string, prefixes ...string) []string {
		var found []string
		for _, p := range pkgs {
			for _, prefix := range prefixes {
				if strings.HasPrefix(p, prefix) {
					found = append(found, p)
				}
			}
		}
		return found
	}

	acr := deps(".")
	assert.Empty(t, matching(acr, armClients, armPipeline), "package acr links the ARM SDK")

	pushOnly := deps("./testdata/pushonly")
	assert.Contains(t, pushOnly, "github.com/hpcship/hpcship/acr")
	assert.Contains(t, pushOnly, "github.com/Azure/azure-sdk-for-go/sdk/azidentity")
	assert.Empty(t, matching(pushOnly, armClients), "a push-only program links the ARM management client")
	t.Logf("package acr: %d packages; push-only program: %d packages; ARM SDK packages among them: %q, %q",
		len(acr), len(pushOnly), matching(acr, armClients, armPipeline), matching(pushOnly, armClients))

	management := deps("./arm")
	assert.NotEmpty(t, matching(management, armClients), "acr/arm must be where the ARM SDK is linked")
}
