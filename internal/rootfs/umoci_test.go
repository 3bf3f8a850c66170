package rootfs_test

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/testenv"
)

// umociUnpack writes layers as an OCI layout and unpacks it with umoci, the
// unpacker apptainer and SingularityCE use, returning the rootfs directory.
func umociUnpack(t *testing.T, umoci string, ls []v1.Layer) string {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, ls...)
	require.NoError(t, err)
	cfg, err := img.ConfigFile()
	require.NoError(t, err)
	cfg.OS, cfg.Architecture = "linux", "amd64" // umoci needs them for config.json
	img, err = mutate.ConfigFile(img, cfg)
	require.NoError(t, err)
	img = mutate.ConfigMediaType(mutate.MediaType(img, types.OCIManifestSchema1), types.OCIConfigJSON)
	dir := t.TempDir()
	p, err := layout.Write(filepath.Join(dir, "layout"), empty.Index)
	require.NoError(t, err)
	require.NoError(t, p.AppendImage(img, layout.WithAnnotations(map[string]string{"org.opencontainers.image.ref.name": "test"})))

	bundle := filepath.Join(dir, "bundle")
	args := []string{"--log", "error", "unpack", "--image", filepath.Join(dir, "layout") + ":test", bundle}
	if os.Geteuid() != 0 {
		args = slices.Insert(args, 3, "--rootless")
	}
	out, err := exec.CommandContext(t.Context(), umoci, args...).CombinedOutput()
	require.NoError(t, err, "umoci %s: %s", strings.Join(args, " "), out)
	return filepath.Join(bundle, "rootfs")
}

// diskTree describes every path below root: type, mode and content or link
// target, plus the groups of paths sharing an inode.
func diskTree(t *testing.T, root string) (map[string]string, [][]string) {
	t.Helper()
	got := map[string]string{}
	inodes := map[uint64][]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == root {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		mode := int64(st.Mode & 0o7777)
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			got[rel] = describe("regular", mode, string(b))
			inodes[st.Ino] = append(inodes[st.Ino], rel)
		case fi.IsDir():
			got[rel] = describe("dir", mode, "")
		case fi.Mode()&fs.ModeSymlink != 0:
			target, err := os.Readlink(p)
			if err != nil {
				return err
			}
			got[rel] = describe("symlink", mode, target)
		default:
			return fmt.Errorf("%s: unexpected mode %v", rel, fi.Mode())
		}
		return nil
	})
	require.NoError(t, err)
	return got, linkGroups(inodes)
}

func linkGroups[K comparable](m map[K][]string) [][]string {
	var out [][]string
	for _, ps := range m {
		if len(ps) > 1 {
			out = append(out, slices.Sorted(slices.Values(ps)))
		}
	}
	slices.SortFunc(out, func(a, b []string) int { return strings.Compare(a[0], b[0]) })
	return out
}

// TestFlattenAgreesWithUmoci unpacks random layer stacks, with hardlinks across
// layers, writes through symlinks and symlinks climbing above the root, with
// umoci onto disk, and compares that tree with Flatten's: paths, types, modes,
// contents, link targets and which paths share an inode.
func TestFlattenAgreesWithUmoci(t *testing.T) {
	umoci := testenv.Require(t, "umoci")[0]
	for seed := range uint64(25) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			ls, ours := newStackGen(seed, true).stack(t)
			tree, err := rootfs.Flatten(t.Context(), ours)
			require.NoError(t, err)
			checkContained(t, tree)
			data := contents(t, tree)

			got := map[string]string{}
			groups := map[string][]string{}
			for _, e := range tree.Entries() {
				if e.Path == "." {
					continue
				}
				assert.False(t, e.Implied, "%s: no implied directories expected", e.Path)
				switch e.Type {
				case rootfs.TypeRegular:
					got[e.Path] = describe("regular", int64(e.Mode), data[e.Path])
					groups[e.Path] = append(groups[e.Path], e.Path)
				case rootfs.TypeHardlink:
					got[e.Path] = describe("regular", int64(e.Mode), data[e.Linkname])
					groups[e.Linkname] = append(groups[e.Linkname], e.Path)
				case rootfs.TypeSymlink:
					got[e.Path] = describe("symlink", int64(e.Mode), e.Linkname)
				default:
					got[e.Path] = describe(e.Type.String(), int64(e.Mode), "")
				}
			}
			want, wantGroups := diskTree(t, umociUnpack(t, umoci, ls))
			assert.Equal(t, want, got, "Flatten (+got) against umoci unpack (-want)")
			assert.Equal(t, wantGroups, linkGroups(groups), "hardlink groups")
		})
	}
}
