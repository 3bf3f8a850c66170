package singularity_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/rootfs"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/singularity"
)

var update = flag.Bool("update", false, "rewrite golden files")

func TestGoldenDigest(t *testing.T) {
	img := syntheticImage(t)
	dir := t.TempDir()
	for _, tt := range []struct {
		golden string
		opts   []singularity.Option
	}{
		{golden: "golden.sif.sha256"},
		{golden: "golden-zstd3.sif.sha256", opts: []singularity.Option{singularity.WithCompression(singularity.Zstd, 3)}},
	} {
		t.Run(tt.golden, func(t *testing.T) {
			var sums []string
			for _, workers := range []int{1, 3} {
				out := filepath.Join(dir, "x.sif")
				require.NoError(t, singularity.Build(t.Context(), img, out, append([]singularity.Option{
					singularity.WithSourceDateEpoch(epoch), singularity.WithSource("example.com/rdma:latest"),
					singularity.WithWorkers(workers)}, tt.opts...)...))
				sum := sha256.Sum256(mustRead(t, out))
				sums = append(sums, hex.EncodeToString(sum[:]))
			}
			require.Equal(t, sums[0], sums[1], "output depends on the number of workers")
			golden := filepath.Join("testdata", tt.golden)
			if *update {
				require.NoError(t, os.MkdirAll("testdata", 0o755))
				require.NoError(t, os.WriteFile(golden, []byte(sums[0]+"\n"), 0o644))
			}
			assert.Equal(t, strings.TrimSpace(string(mustRead(t, golden))), sums[0], "run with -update if the change is intended")
		})
	}
}

// TestZstd checks that unsquashfs reads a zstd SIF as zstd at the level
// asked, and that it holds what the gzip SIF of the same image holds, byte
// for byte.
func TestZstd(t *testing.T) {
	unsquashfs := testenv.Require(t, "unsquashfs")[0]
	dir := t.TempDir()
	img := syntheticImage(t)
	extract := func(sifPath string, opts ...singularity.Option) (string, string) {
		require.NoError(t, singularity.Build(t.Context(), img, sifPath, append(opts, singularity.WithSourceDateEpoch(epoch))...))
		off := strconv.FormatInt(partitionOffset(t, sifPath), 10)
		super, err := exec.Command(unsquashfs, "-o", off, "-s", sifPath).CombinedOutput()
		require.NoError(t, err, "%s", super)
		x := sifPath + ".d"
		// Mode-000 entries cannot be read back as an unprivileged user.
		if os.Geteuid() == 0 {
			out, err := exec.Command(unsquashfs, "-o", off, "-n", "-d", x, sifPath).CombinedOutput()
			require.NoError(t, err, "%s", out)
		}
		return string(super), x
	}
	for _, tt := range []struct {
		level     int
		wantLevel string // what unsquashfs -s says, "" for no compressor options
	}{
		{level: 3, wantLevel: "compression-level 3"},
		{level: 15}, // mksquashfs' default: no options written
	} {
		t.Run(strconv.Itoa(tt.level), func(t *testing.T) {
			zsif := filepath.Join(dir, "zstd"+strconv.Itoa(tt.level)+".sif")
			super, zx := extract(zsif, singularity.WithCompression(singularity.Zstd, tt.level))
			assert.Contains(t, super, "Compression zstd")
			if tt.wantLevel == "" {
				assert.NotContains(t, super, "compression-level")
			} else {
				assert.Contains(t, super, tt.wantLevel)
			}
			gsif := filepath.Join(dir, "gzip"+strconv.Itoa(tt.level)+".sif")
			super, gx := extract(gsif)
			assert.Contains(t, super, "Compression gzip")
			assert.Equal(t, unsquashfsList(t, gsif, partitionOffset(t, gsif)), unsquashfsList(t, zsif, partitionOffset(t, zsif)))
			if os.Geteuid() == 0 {
				// diff cannot compare the device node; the listings above did.
				out, err := exec.Command("diff", "-r", "--no-dereference", "-x", "null", gx, zx).CombinedOutput()
				assert.NoError(t, err, "%s", out)
			}
		})
	}
}

func TestSIFDescriptors(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.sif")
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, singularity.WithSource("example.com/rdma:latest")))
	fi, err := os.Stat(out)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o755), fi.Mode().Perm())

	f, err := sif.LoadContainerFromPath(out, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	assert.Equal(t, "#!/usr/bin/env run-singularity\n", f.LaunchScript())
	assert.Equal(t, "amd64", f.PrimaryArch())
	def, err := f.GetDescriptor(sif.WithDataType(sif.DataDeffile))
	require.NoError(t, err)
	b, err := def.GetData()
	require.NoError(t, err)
	assert.Equal(t, "bootstrap: docker\nfrom: example.com/rdma:latest\n\n", string(b))

	cfgDesc, err := f.GetDescriptor(sif.WithDataType(sif.DataGenericJSON), func(d sif.Descriptor) (bool, error) { return d.Name() == "oci-config.json", nil })
	require.NoError(t, err)
	b, err = cfgDesc.GetData()
	require.NoError(t, err)
	var cfg map[string]any
	require.NoError(t, json.Unmarshal(b, &cfg))
	assert.Equal(t, []any{"/bin/printf", `[%s]\n`}, cfg["Entrypoint"])

	part, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	fs, pt, arch, err := part.PartitionMetadata()
	require.NoError(t, err)
	assert.Equal(t, sif.FsSquash, fs)
	assert.Equal(t, sif.PartPrimSys, pt)
	assert.Equal(t, "amd64", arch)
	assert.Zero(t, part.Offset()%4096)
	magic := make([]byte, 4)
	_, err = part.GetReader().Read(magic)
	require.NoError(t, err)
	assert.Equal(t, "hsqs", string(magic))
	assert.Equal(t, fi.Size(), part.Offset()+part.Size())

	ids := []sif.DataType{}
	f.WithDescriptors(func(d sif.Descriptor) bool { ids = append(ids, d.DataType()); return false })
	assert.Equal(t, []sif.DataType{sif.DataDeffile, sif.DataGenericJSON, sif.DataGenericJSON, sif.DataPartition}, ids)
}

// unsquashfsList returns `unsquashfs -lln` of the squashfs at off in file,
// keyed by path without the squashfs-root prefix.
func unsquashfsList(t *testing.T, file string, off int64) map[string]string {
	t.Helper()
	unsquashfs := testenv.Require(t, "unsquashfs")[0]
	out, err := exec.Command(unsquashfs, "-o", strconv.FormatInt(off, 10), "-lln", file).CombinedOutput()
	require.NoError(t, err, "%s", out)
	m := map[string]string{}
	for _, line := range strings.Split(string(out), "\n") {
		i := strings.Index(line, "squashfs-root")
		if i < 0 {
			continue
		}
		p := strings.TrimPrefix(line[i:], "squashfs-root")
		if j := strings.Index(p, " -> "); j >= 0 {
			p = p[:j]
		}
		fields := strings.Fields(line[:i])
		// permissions owner size-or-device date time
		m["/"+strings.TrimPrefix(p, "/")] = strings.Join(fields[:3], " ")
	}
	return m
}

func partitionOffset(t *testing.T, file string) int64 {
	t.Helper()
	f, err := sif.LoadContainerFromPath(file, sif.OptLoadWithFlag(os.O_RDONLY))
	require.NoError(t, err)
	defer f.UnloadContainer()
	part, err := f.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	require.NoError(t, err)
	return part.Offset()
}

func TestFidelityUnsquashfs(t *testing.T) {
	out := filepath.Join(t.TempDir(), "x.sif")
	var logs bytes.Buffer
	require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out,
		singularity.WithLogger(slog.New(slog.NewTextHandler(&logs, nil)))))
	got := unsquashfsList(t, out, partitionOffset(t, out))
	for path, want := range map[string]string{
		"/":                         "drwxr-xr-x 0/0 ",
		"/opt/null":                 "crw-rw-rw- 0/0 1,",
		"/opt/suid":                 "-rwsr-xr-x 0/0 10",
		"/opt/secret":               "---------- 0/0 11",
		"/opt/locked":               "d--------- 0/0 ",
		"/opt/locked/inner":         "-rw-r--r-- 0/0 6",
		"/home/user":                "drwxr-x--- 1000/1000 ",
		"/home/user/file":           "-rw-r----- 1000/1000 5",
		"/opt/link":                 "-rw-r--r-- 0/0 17",
		"/opt/sym":                  "lrwxrwxrwx 0/0 5",
		"/opt/dir/c":                "-rw-r--r-- 0/0 2",
		"/etc/hosts":                "-rw-r--r-- 0/0 0",
		"/etc/resolv.conf":          "-rw-r--r-- 0/0 0",
		"/singularity":              "lrwxrwxrwx 0/0 24",
		"/.singularity.d/env":       "drwxr-xr-x 0/0 ",
		"/.singularity.d/runscript": "-rwxr-xr-x 0/0 ",
		"/.singularity.d/env/10-docker2singularity.sh": "-rwxr-xr-x 0/0 ",
		"/.singularity.d/labels.json":                  "-rw-r--r-- 0/0 ",
		"/.singularity.d/libs":                         "drwxr-xr-x 0/0 ",
		"/var/tmp":                                     "drwxr-xr-x 0/0 ",
	} {
		require.Contains(t, got, path)
		assert.True(t, strings.HasPrefix(got[path]+" ", want) || strings.HasPrefix(got[path], want), "%s: got %q, want prefix %q", path, got[path], want)
	}
	assert.Contains(t, got["/opt/null"], "1,")
	for _, gone := range []string{"/opt/gone", "/opt/orig", "/opt/dir/a"} {
		assert.NotContains(t, got, gone)
	}
	assert.Contains(t, logs.String(), "system.posix_acl_access", "a dropped xattr is logged")
}

func TestDeviceOutOfRange(t *testing.T) {
	img := image(t, v1Config(), layer(t, chardev("dev/big", 5000, 1)))
	out := filepath.Join(t.TempDir(), "x.sif")
	err := singularity.Build(t.Context(), img, out)
	// internal/rootfs refuses it while merging, naming layer, entry and device.
	var le *rootfs.LayerError
	require.ErrorAs(t, err, &le)
	assert.ErrorIs(t, err, rootfs.ErrInvalidLayer)
	assert.Equal(t, "dev/big", le.Name)
	assert.Contains(t, err.Error(), "5000:1")
	_, statErr := os.Stat(out)
	assert.True(t, errors.Is(statErr, os.ErrNotExist), "no output after a failed build")
	entries, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Empty(t, entries, "no temporary file left")
}

func TestCancelLeavesNothing(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	out := filepath.Join(t.TempDir(), "x.sif")
	n := 0
	err := singularity.Build(ctx, syntheticImage(t), out, singularity.WithProgress(func(p singularity.Progress) {
		if n++; n == 2 {
			cancel()
		}
	}))
	require.ErrorIs(t, err, context.Canceled)
	entries, err := os.ReadDir(filepath.Dir(out))
	require.NoError(t, err)
	assert.Empty(t, entries)
}

func TestSqfstar(t *testing.T) {
	sqfstar := testenv.Require(t, "sqfstar")[0]
	dir := t.TempDir()
	for _, tt := range []struct {
		format singularity.Format
		comp   []singularity.Option
		want   string // compressor in unsquashfs -s
	}{
		{format: singularity.FormatSIF, want: "gzip"},
		{format: singularity.FormatSIMG, want: "gzip"},
		// The default zstd level, which sqfstar 4.5.1 takes.
		{format: singularity.FormatSIF, comp: []singularity.Option{singularity.WithCompression(singularity.Zstd, 15)}, want: "zstd"},
	} {
		format := tt.format
		out := filepath.Join(dir, "x"+strconv.Itoa(int(format))+tt.want)
		ours := out + ".ours"
		require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), out, append(tt.comp, singularity.WithMksquashfs(sqfstar),
			singularity.WithSourceDateEpoch(epoch), singularity.WithFormat(format))...))
		require.NoError(t, singularity.Build(t.Context(), syntheticImage(t), ours,
			singularity.WithSourceDateEpoch(epoch), singularity.WithFormat(format)))
		off := int64(31)
		if format == singularity.FormatSIF {
			off = partitionOffset(t, out)
			info, err := singularity.Inspect(out)
			require.NoError(t, err)
			assert.Equal(t, "amd64", info.Arch)
		} else {
			assert.Equal(t, "#!/usr/bin/env run-singularity\nhsqs", string(mustRead(t, out)[:35]))
		}
		super, err := exec.Command(testenv.Require(t, "unsquashfs")[0], "-o", strconv.FormatInt(off, 10), "-s", out).CombinedOutput()
		require.NoError(t, err, "%s", super)
		assert.Contains(t, string(super), "Compression "+tt.want)
		got, want := unsquashfsList(t, out, off), unsquashfsList(t, ours, off)
		for path, w := range want {
			// Sizes of directories differ between writers; everything else must not.
			if strings.HasPrefix(w, "d") {
				w = w[:strings.LastIndex(w, " ")]
				g := got[path]
				if i := strings.LastIndex(g, " "); i > 0 {
					g = g[:i]
				}
				assert.Equal(t, w, g, path)
				continue
			}
			assert.Equal(t, w, got[path], path)
		}
		assert.Len(t, got, len(want))
	}
}
