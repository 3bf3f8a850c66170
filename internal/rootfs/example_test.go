package rootfs_test

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// memLayer is a layer whose tar stream is held in memory; a ggcr v1.Layer works
// the same way.
type memLayer []byte

func (l memLayer) Uncompressed() (io.ReadCloser, error) {
	return io.NopCloser(bytes.NewReader(l)), nil
}

func tarOf(hdrs ...tar.Header) memLayer {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		body := h.Linkname
		if h.Typeflag == tar.TypeReg {
			h.Size, h.Linkname = int64(len(body)), ""
		}
		if err := tw.WriteHeader(&h); err != nil {
			panic(err)
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.WriteString(tw, body); err != nil {
				panic(err)
			}
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return buf.Bytes()
}

func ExampleFlatten() {
	// A regular file's Linkname is used as its content here, to keep the
	// example short.
	base := tarOf(
		tar.Header{Typeflag: tar.TypeDir, Name: "etc/", Mode: 0o755},
		tar.Header{Typeflag: tar.TypeReg, Name: "etc/motd", Mode: 0o644, Linkname: "hello"},
		tar.Header{Typeflag: tar.TypeReg, Name: "etc/old.conf", Mode: 0o644, Linkname: "old"},
	)
	update := tarOf(
		tar.Header{Typeflag: tar.TypeReg, Name: "etc/.wh.old.conf", Mode: 0o644},
		tar.Header{Typeflag: tar.TypeLink, Name: "etc/motd.bak", Linkname: "etc/motd"},
		tar.Header{Typeflag: tar.TypeReg, Name: "opt/app/run", Mode: 0o755, Linkname: "#!/bin/sh"},
	)

	ctx := context.Background()
	tree, err := rootfs.Flatten(ctx, []rootfs.Layer{base, update})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, e := range tree.Entries() {
		link := ""
		if e.Linkname != "" {
			link = " => " + e.Linkname
		}
		fmt.Printf("%-8s %04o %s%s\n", e.Type, e.Mode, e.Path, link)
	}
	err = tree.WalkContents(ctx, func(e rootfs.Entry, r io.Reader) error {
		b, err := io.ReadAll(r)
		fmt.Printf("%s (layer %d, %d links): %q\n", e.Path, e.Source.Layer, e.Nlink, b)
		return err
	})
	if err != nil {
		fmt.Println(err)
	}
	// Output:
	// dir      0755 .
	// dir      0755 etc
	// regular  0644 etc/motd
	// hardlink 0644 etc/motd.bak => etc/motd
	// dir      0755 opt
	// dir      0755 opt/app
	// regular  0755 opt/app/run
	// etc/motd (layer 0, 2 links): "hello"
	// opt/app/run (layer 1, 1 links): "#!/bin/sh"
}

func ExampleLayerError() {
	evil := tarOf(tar.Header{Typeflag: tar.TypeLink, Name: "shadow", Linkname: "../../etc/shadow"})
	_, err := rootfs.Flatten(context.Background(), []rootfs.Layer{evil})
	fmt.Println(err)
	// Output:
	// layer 0 entry 0 "shadow": hardlink target: name has a ".." component: unsafe path in layer
}
