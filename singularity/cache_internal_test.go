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

// TestSquashEntryXattrs checks which xattrs reach the image: those of the
// three namespaces squashfs stores, with a name after the prefix; every other
// one is dropped with a warning naming it.
func TestSquashEntryXattrs(t *testing.T) {
	var log strings.Builder
	o := &options{logger: slog.New(slog.NewTextHandler(&log, nil))}
	in := map[string]string{
		"user.a": "1", "trusted.b": "2", "security.c": "3", // kept
		"system.posix_acl_access": "4", "user.": "5", "users.d": "6", "security": "7", "": "8",
	}
	se, err := o.squashEntry(rootfs.Entry{Path: "opt/f", Type: rootfs.TypeRegular, Mode: 0o644, Xattrs: in})
	require.NoError(t, err)
	assert.Equal(t, map[string]string{"user.a": "1", "trusted.b": "2", "security.c": "3"}, se.Xattrs)
	for _, dropped := range []string{"system.posix_acl_access", "user.", "users.d", "xattr=security\n"} {
		assert.Contains(t, log.String(), dropped)
	}
	assert.Equal(t, 5, strings.Count(log.String(), "dropping an xattr"))

	se, err = o.squashEntry(rootfs.Entry{Path: "opt/g", Type: rootfs.TypeRegular, Mode: 0o644, Xattrs: map[string]string{"system.x": "y"}})
	require.NoError(t, err)
	assert.Nil(t, se.Xattrs, "no xattr map for an entry without storable xattrs")
}
