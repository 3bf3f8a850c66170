package singularity_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

// TestInspectMetadataAsApptainer checks inspect-metadata.json against what
// Apptainer's build stores there: the output of its inspect command, which
// cuts the trailing newlines off the definition and off every script.
func TestInspectMetadataAsApptainer(t *testing.T) {
	unsquashfs := testenv.Require(t, "unsquashfs")
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithSource("example.com/rdma:latest")))

	f, err := sif.LoadContainerFromPath(out, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	d, err := f.GetDescriptor(sif.WithDataType(sif.DataGenericJSON), func(d sif.Descriptor) (bool, error) {
		return d.Name() == "inspect-metadata.json", nil
	})
	require.NoError(t, err)
	b, err := d.GetData()
	require.NoError(t, err)
	var md struct {
		Data struct {
			Attributes struct {
				Deffile     string            `json:"deffile"`
				Runscript   string            `json:"runscript"`
				Startscript string            `json:"startscript"`
				Environment map[string]string `json:"environment"`
			} `json:"attributes"`
		} `json:"data"`
	}
	require.NoError(t, json.Unmarshal(b, &md))
	a := md.Data.Attributes
	assert.Equal(t, "bootstrap: docker\nfrom: example.com/rdma:latest", a.Deffile)

	part, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	cat := func(path string) string {
		b, err := exec.Command(unsquashfs[0], "-o", strconv.FormatInt(part.Offset(), 10), "-cat", out, path).Output()
		require.NoError(t, err, "unsquashfs -cat %s", path)
		require.True(t, strings.HasSuffix(string(b), "\n"), "%s ends with a newline", path)
		return string(b)
	}
	want := map[string]string{
		"runscript":   cat("/.singularity.d/runscript"),
		"startscript": cat("/.singularity.d/startscript"),
	}
	got := map[string]string{"runscript": a.Runscript, "startscript": a.Startscript}
	require.Len(t, a.Environment, 2)
	for path, script := range a.Environment {
		want[path] = cat(path)
		got[path] = script
	}
	for k, v := range want {
		want[k] = strings.TrimRight(v, "\n")
	}
	assert.Equal(t, want, got)
}
