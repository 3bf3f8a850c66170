package singularity_test

import (
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/static"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/acrtest"
	"github.com/hpcship/hpcship/singularity"
)

// TestPullSIFMediaTypes checks which one-layer manifests PullSIF takes: the
// SIF layer media type and the misspelt one older clients wrote, not others,
// nor an index.
func TestPullSIFMediaTypes(t *testing.T) {
	isolate(t)
	reg := acrtest.Start(t, acrtest.WithInMemoryRegistry())
	user, pass := reg.AdminCredentials()
	auth := &authn.Basic{Username: user, Password: pass}
	sifPath := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), sifPath, singularity.WithSourceDateEpoch(epoch)))
	sifBytes := mustRead(t, sifPath)

	for _, tt := range []struct {
		mediaType types.MediaType
		index     bool
		wantErr   string
	}{
		{mediaType: singularity.MediaTypeSIFLayer},
		{mediaType: "appliciation/vnd.sylabs.sif.layer.tar"},
		{mediaType: types.OCILayer, wantErr: `layer media type "application/vnd.oci.image.layer.v1.tar+gzip"`},
		{mediaType: singularity.MediaTypeSIFLayer, index: true, wantErr: "an index, not an image manifest"},
	} {
		t.Run(string(tt.mediaType), func(t *testing.T) {
			ref, err := name.ParseReference(reg.LoginServer() + "/art:x")
			require.NoError(t, err)
			img, err := mutate.AppendLayers(empty.Image, static.NewLayer(sifBytes, tt.mediaType))
			require.NoError(t, err)
			ropts := []remote.Option{remote.WithAuth(auth), remote.WithContext(t.Context())}
			if tt.index {
				require.NoError(t, remote.WriteIndex(ref, mutate.AppendManifests(empty.Index, mutate.IndexAddendum{Add: img}), ropts...))
			} else {
				require.NoError(t, remote.Write(ref, img, ropts...))
			}
			out := filepath.Join(t.TempDir(), "got.sif")
			got, err := singularity.PullSIF(t.Context(), ref, out, singularity.WithAuthenticator(auth))
			if tt.wantErr != "" {
				require.ErrorIs(t, err, singularity.ErrNotSIFArtifact)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.NoFileExists(t, out)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, out, got)
			assert.Equal(t, sifBytes, mustRead(t, got))
		})
	}
}
