package rootfs_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// benchStack is three layers of 20,000 small files in 200 directories each; the
// upper layers replace a tenth of the files below and white out a tenth.
func benchStack(b *testing.B) ([]rootfs.Layer, []v1.Layer) {
	b.Helper()
	var ours []rootfs.Layer
	var theirs []v1.Layer
	for li := range 3 {
		var ents []ent
		for d := range 200 {
			ents = append(ents, dir(fmt.Sprintf("usr/share/d%03d", d)))
			for f := range 100 {
				name := fmt.Sprintf("usr/share/d%03d/f%03d", d, f)
				switch {
				case li > 0 && f%10 == 1:
					ents = append(ents, whiteout(name))
				case li == 0 || f%10 == 0:
					ents = append(ents, file(name, fmt.Sprintf("layer %d file %s, some bytes of content", li, name)))
				}
			}
		}
		data := tarBytes(b, ents...)
		ours = append(ours, bytesLayer{data: data})
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(data)), nil })
		if err != nil {
			b.Fatal(err)
		}
		theirs = append(theirs, l)
	}
	return ours, theirs
}

// BenchmarkFlatten merges the stack and reads every surviving file, with
// Flatten and WalkContents and, for comparison, with ggcr's mutate.Extract.
func BenchmarkFlatten(b *testing.B) {
	ours, theirs := benchStack(b)
	b.Run("rootfs", func(b *testing.B) {
		for b.Loop() {
			tree, err := rootfs.Flatten(b.Context(), ours)
			if err != nil {
				b.Fatal(err)
			}
			err = tree.WalkContents(b.Context(), func(_ rootfs.Entry, r io.Reader) error {
				_, err := io.Copy(io.Discard, r)
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("ggcr-Extract", func(b *testing.B) {
		img, err := mutate.AppendLayers(empty.Image, theirs...)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			rc := mutate.Extract(img)
			tr := tar.NewReader(rc)
			for {
				if _, err := tr.Next(); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, tr); err != nil {
					b.Fatal(err)
				}
			}
			rc.Close()
		}
	})
}
