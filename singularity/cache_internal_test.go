package singularity

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

type closeRecorder struct {
	io.Reader
	closed bool
}

func (c *closeRecorder) Close() error { c.closed = true; return nil }

// TestCacheBlobClosesDownloads checks that a download is closed whether it
// is kept or refused.
func TestCacheBlobClosesDownloads(t *testing.T) {
	content := "blob content"
	sum := sha256.Sum256([]byte(content))
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	for _, body := range []string{content, "damaged"} {
		rc := &closeRecorder{Reader: strings.NewReader(body)}
		_, err := cacheBlob(t.TempDir(), h, func() (io.ReadCloser, error) { return rc, nil })
		assert.Equal(t, body == content, err == nil, "%q: %v", body, err)
		assert.True(t, rc.closed, "%q", body)
	}
	_, err := blobPath(t.TempDir(), v1.Hash{Algorithm: "sha256", Hex: strings.Repeat("g", 64)})
	assert.ErrorContains(t, err, "invalid byte")
	_, err = blobPath(t.TempDir(), v1.Hash{Algorithm: "sha512", Hex: strings.Repeat("0", 64)})
	assert.ErrorContains(t, err, "only sha256 digests are cached")
}

// TestSquashEntryDeviceRange checks the device numbers squashfs can hold, at
// their edges; internal/rootfs refuses the others first, this is the guard
// behind it.
func TestSquashEntryDeviceRange(t *testing.T) {
	o := &options{logger: slog.New(slog.DiscardHandler)}
	for _, tt := range []struct {
		major, minor int64
		ok           bool
	}{
		{major: 4095, minor: 1<<20 - 1, ok: true},
		{major: 0, minor: 0, ok: true},
		{major: 4096, minor: 0},
		{major: 0, minor: 1 << 20},
		{major: -1, minor: 0},
		{major: 0, minor: -1},
	} {
		for _, typ := range []rootfs.Type{rootfs.TypeCharDevice, rootfs.TypeBlockDevice} {
			_, err := o.squashEntry(rootfs.Entry{Path: "dev/x", Type: typ, Devmajor: tt.major, Devminor: tt.minor})
			if tt.ok {
				assert.NoError(t, err, "%d:%d", tt.major, tt.minor)
				continue
			}
			var ee *EntryError
			require.ErrorAs(t, err, &ee, "%d:%d", tt.major, tt.minor)
			assert.ErrorIs(t, err, ErrUnrepresentable)
			assert.Equal(t, "dev/x", ee.Path)
		}
	}
}
