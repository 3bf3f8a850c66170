package imagebuild

import (
	"archive/tar"
	"syscall"
	"testing"

	"github.com/stretchr/testify/assert"
)

// A RUN step cannot make device nodes (mknod is refused in its user namespace, even for root), so the
// layer writers' device branch is checked here on the numbers Linux would report.
func TestSetDevice(t *testing.T) {
	rdev := func(major, minor uint64) uint64 {
		return minor&0xff | (major&0xfff)<<8 | (minor&^0xff)<<12 | (major&^0xfff)<<32
	}
	for _, c := range []struct {
		mode         uint32
		major, minor uint64
		typ          byte
	}{
		{syscall.S_IFCHR | 0o666, 1, 3, tar.TypeChar},
		{syscall.S_IFBLK | 0o660, 259, 70000, tar.TypeBlock},
		{syscall.S_IFCHR, 4095, 255, tar.TypeChar},
		{syscall.S_IFBLK, 4096, 256, tar.TypeBlock},
		{syscall.S_IFCHR, 0, 0, tar.TypeChar},
	} {
		var h tar.Header
		setDevice(&h, c.mode, rdev(c.major, c.minor))
		assert.Equal(t, c.typ, h.Typeflag, "%d:%d", c.major, c.minor)
		assert.Equal(t, int64(c.major), h.Devmajor, "%d:%d", c.major, c.minor)
		assert.Equal(t, int64(c.minor), h.Devminor, "%d:%d", c.major, c.minor)
	}
}
