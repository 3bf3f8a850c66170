package rootfs_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"path"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// A ggcr layer is a Layer.
var _ rootfs.Layer = v1.Layer(nil)

// stackGen builds random but well-formed layer stacks, and keeps its own model
// of the merged tree (path → kind) as a third opinion. It stays inside what
// ggcr's mutate.Extract handles like the OCI spec: it emits no duplicate paths
// in a layer (Extract keeps the first, tar extraction the last), re-adds nothing
// under a path whited out in the same layer (Extract drops it, the spec keeps
// it), puts whiteouts first (Extract is order-dependent there), writes no path
// through a symlink (Extract works on names, not on a tree) and no hardlinks
// (google/go-containerregistry#977, #2002).
//
// With umoci set it also writes hardlinks (to files of lower layers or earlier in
// the same layer), symlinks whose relative targets climb above the root, and
// entries through symlinks to directories, which umoci resolves inside the
// root as Flatten does.
type stackGen struct {
	r       *rand.Rand
	umoci   bool
	model   map[string]string // "dir", "file" or "symlink"
	targets map[string]string // symlink path → the directory it points to ("" for the root)
	// replacedDirs holds paths where a non-directory replaced a directory.
	// Extract gives a directory re-created there in a later layer the old
	// children back, so without umoci none is re-created.
	replacedDirs map[string]bool
}

func newStackGen(seed uint64, umoci bool) *stackGen {
	return &stackGen{r: rand.New(rand.NewPCG(seed, 7)), umoci: umoci, model: map[string]string{}, targets: map[string]string{}, replacedDirs: map[string]bool{}}
}

// pick returns a random element of the sorted keys of model whose kind is kind.
func (g *stackGen) pick(kind string) (string, bool) {
	var ps []string
	for _, p := range g.paths() {
		if g.model[p] == kind {
			ps = append(ps, p)
		}
	}
	if len(ps) == 0 {
		return "", false
	}
	return ps[g.r.IntN(len(ps))], true
}

// symlinkTarget points at a directory d: absolute, or (with umoci) relative
// with more ".." than the link is deep, which only resolves inside a root.
func (g *stackGen) symlinkTarget(link, d string) string {
	if g.umoci && g.r.IntN(2) == 0 {
		return strings.Repeat("../", strings.Count(link, "/")+2) + d
	}
	return "/" + d
}

func (g *stackGen) dirs() []string {
	out := []string{""}
	for p, k := range g.model {
		if k == "dir" {
			out = append(out, p)
		}
	}
	slices.Sort(out)
	return out
}

func (g *stackGen) paths() []string {
	return slices.Sorted(maps.Keys(g.model))
}

func (g *stackGen) removeTree(p string) {
	for q := range g.model {
		if q == p || strings.HasPrefix(q, p+"/") {
			delete(g.model, q)
			delete(g.targets, q)
		}
	}
}

func (g *stackGen) layer(li int) []ent {
	var out []ent
	removed := map[string]bool{}
	// Whiteouts and opaque markers first, applied to the model before any
	// addition, as the spec applies them.
	for range g.r.IntN(3) {
		ps := g.paths()
		if len(ps) == 0 {
			break
		}
		p := ps[g.r.IntN(len(ps))]
		if removed[p] || underAny(p, removed) {
			continue
		}
		removed[p] = true
		g.removeTree(p)
		out = append(out, whiteout(p))
	}
	if g.r.IntN(3) == 0 {
		ds := g.dirs()[1:]
		if len(ds) > 0 {
			d := ds[g.r.IntN(len(ds))]
			if !removed[d] && !underAny(d, removed) {
				for q := range g.model {
					if strings.HasPrefix(q, d+"/") {
						delete(g.model, q)
					}
				}
				out = append(out, opaque(d))
			}
		}
	}
	touched := map[string]bool{}
	for i := range 4 + g.r.IntN(8) {
		ds := g.dirs()
		name := string(rune('a' + g.r.IntN(5)))
		// written is the entry's name, p the path it lands on.
		written := path.Join(ds[g.r.IntN(len(ds))], name)
		p := written
		if g.umoci && g.r.IntN(2) == 0 {
			var links []string
			for _, l := range g.paths() {
				d, ok := g.targets[l]
				if ok && g.model[l] == "symlink" && (d == "" || g.model[d] == "dir") && !touched[l] && !underAny(l, touched) {
					links = append(links, l)
				}
			}
			if len(links) > 0 {
				l := links[g.r.IntN(len(links))]
				written, p = l+"/"+name, path.Join(g.targets[l], name)
			}
		}
		if touched[p] || removed[p] || underAny(p, removed) || underAny(p, touched) || hasTouchedBelow(p, touched) {
			continue
		}
		touched[p] = true
		op := g.r.IntN(5)
		if g.umoci && g.r.IntN(4) == 0 {
			op = 5
		}
		if (op == 2 || op == 3) && !g.umoci && g.replacedDirs[p] {
			op = 0
		}
		if op != 2 && op != 3 && g.model[p] == "dir" {
			g.replacedDirs[p] = true
		}
		switch op {
		case 0, 1:
			body := fmt.Sprintf("layer %d entry %d", li, i)
			out = append(out, withMode(file(written, body), int64(0o600+g.r.IntN(0o200))))
			g.removeTree(p)
			g.model[p] = "file"
		case 2, 3:
			out = append(out, withMode(dir(written), int64(0o700+g.r.IntN(0o100))))
			if g.model[p] != "dir" {
				g.removeTree(p)
				g.model[p] = "dir"
			}
		case 4:
			target := "/target/" + p
			g.removeTree(p)
			if d, ok := g.pick("dir"); ok && g.r.IntN(3) > 0 && d != p && !strings.HasPrefix(d, p+"/") {
				target = g.symlinkTarget(p, d)
				g.targets[p] = d
			} else if g.r.IntN(2) == 0 {
				target = g.symlinkTarget(p, "")
				g.targets[p] = ""
			}
			out = append(out, symlink(written, target))
			g.model[p] = "symlink"
		case 5:
			target, ok := g.pick("file")
			if !ok || target == p || strings.HasPrefix(target, p+"/") {
				continue
			}
			out = append(out, withMode(hardlink(written, target), 0o640))
			g.removeTree(p)
			g.model[p] = "file"
		}
	}
	return out
}

// stack generates two to five layers as ggcr layers, and the same layers as
// Layers for Flatten: ggcr's own, decompressed by ggcr.
func (g *stackGen) stack(t *testing.T) ([]v1.Layer, []rootfs.Layer) {
	t.Helper()
	var ls []v1.Layer
	var ours []rootfs.Layer
	for li := range 2 + g.r.IntN(4) {
		data := tarBytes(t, g.layer(li)...)
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
			return io.NopCloser(bytes.NewReader(data)), nil
		}, tarball.WithMediaType(types.OCILayer))
		require.NoError(t, err)
		ls = append(ls, l)
		ours = append(ours, l)
	}
	return ls, ours
}

func underAny(p string, set map[string]bool) bool {
	for q := range set {
		if strings.HasPrefix(p, q+"/") {
			return true
		}
	}
	return false
}

func hasTouchedBelow(p string, touched map[string]bool) bool {
	for q := range touched {
		if strings.HasPrefix(q, p+"/") {
			return true
		}
	}
	return false
}

// describe renders an entry the way both sides can: type, mode and content or
// link target.
func describe(typ string, mode int64, content string) string {
	return fmt.Sprintf("%s %04o %s", typ, mode, content)
}

func ggcrFlatten(t *testing.T, ls []v1.Layer) map[string]string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	require.NoError(t, err)
	rc := mutate.Extract(img)
	defer rc.Close()
	tr := tar.NewReader(rc)
	got := map[string]string{}
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		require.NoError(t, err)
		switch h.Typeflag {
		case tar.TypeReg:
			b, err := io.ReadAll(tr)
			require.NoError(t, err)
			got[h.Name] = describe("regular", h.Mode&0o7777, string(b))
		case tar.TypeDir:
			got[h.Name] = describe("dir", h.Mode&0o7777, "")
		case tar.TypeSymlink:
			got[h.Name] = describe("symlink", h.Mode&0o7777, h.Linkname)
		default:
			t.Fatalf("unexpected type %q for %s", h.Typeflag, h.Name)
		}
	}
	return got
}

// TestFlattenAgreesWithGGCRExtract flattens random well-formed layer stacks with
// Flatten and with ggcr's mutate.Extract, an independent implementation, and
// compares every path, type, mode and content.
func TestFlattenAgreesWithGGCRExtract(t *testing.T) {
	for seed := range uint64(40) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			g := newStackGen(seed, false)
			theirs, ours := g.stack(t)
			tree, err := rootfs.Flatten(t.Context(), ours)
			require.NoError(t, err)
			checkContained(t, tree)
			data := contents(t, tree)
			got := map[string]string{}
			kinds := map[string]string{}
			for _, e := range tree.Entries() {
				if e.Path == "." {
					continue
				}
				assert.False(t, e.Implied, "%s: no implied directories expected", e.Path)
				content := data[e.Path]
				if e.Type == rootfs.TypeSymlink {
					content = e.Linkname
				}
				got[e.Path] = describe(e.Type.String(), int64(e.Mode), content)
				kinds[e.Path] = map[rootfs.Type]string{rootfs.TypeDir: "dir", rootfs.TypeRegular: "file", rootfs.TypeSymlink: "symlink"}[e.Type]
			}
			assert.Equal(t, ggcrFlatten(t, theirs), got, "Flatten (+got) against mutate.Extract (-want)")
			assert.Equal(t, g.model, kinds, "Flatten against the generator's model")
		})
	}
}
