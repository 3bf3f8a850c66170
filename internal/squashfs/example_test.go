package squashfs_test

import (
	"context"
	"crypto/sha256"
	"fmt"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/squashfs"
)

func Example() {
	ctx := context.Background()
	dir, err := os.MkdirTemp("", "squashfs-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	img := filepath.Join(dir, "rootfs.sqfs")
	mtime := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hosts := "127.0.0.1 localhost\n"
	err = squashfs.WriteFile(ctx, img, func(w *squashfs.Writer) error {
		for _, e := range []squashfs.Entry{
			{Path: "etc", Type: squashfs.TypeDir, Mode: 0o755, ModTime: mtime},
			{Path: "etc/hosts", Mode: 0o644, ModTime: mtime, Size: int64(len(hosts)), Content: strings.NewReader(hosts)},
			{Path: "usr/bin/ping", Mode: 0o4755, ModTime: mtime, Xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02\x00\x20\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00"}},
			{Path: "dev/null", Type: squashfs.TypeCharDevice, Mode: 0o666, ModTime: mtime, Devmajor: 1, Devminor: 3},
			{Path: "bin", Type: squashfs.TypeSymlink, Mode: 0o777, ModTime: mtime, Linkname: "usr/bin"},
		} {
			if err := w.Add(ctx, e); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		log.Fatal(err)
	}
	b, err := os.ReadFile(img)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%d bytes, sha256 %x\n", len(b), sha256.Sum256(b))
	// Output:
	// 4096 bytes, sha256 52fc419b154212c4a87fdc6d78c7d2c46ea66de9b06530e84642a7a3e5e7c610
}
