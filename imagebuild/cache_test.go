package imagebuild_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
)

func TestReproducible(t *testing.T) {
	base := busyboxBase(t)
	build := func(epoch time.Time, opts ...imagebuild.Option) string {
		ctxDir := seedContext(t, "gzip") // new files: new mtimes, inodes, archive bytes
		now := time.Now()
		require.NoError(t, os.Chtimes(filepath.Join(ctxDir, "intel.tgz"), now, now))
		opts = append(opts, imagebuild.WithBaseImage("centos:7", imagebuild.FromImage(base)),
			imagebuild.WithCacheDir(t.TempDir()), imagebuild.WithRunner(&fakeRunner{}), imagebuild.WithSourceDateEpoch(epoch))
		img, err := imagebuild.BuildDockerfile(t.Context(), filepath.Join(ctxDir, "Dockerfile"), opts...)
		require.NoError(t, err)
		cf := configOf(t, img)
		assert.Equal(t, epoch.UTC(), cf.Created.UTC())
		layers, err := img.Layers()
		require.NoError(t, err)
		for _, l := range layers[1:] {
			rc, err := l.Uncompressed()
			require.NoError(t, err)
			tr := tar.NewReader(rc)
			for {
				h, err := tr.Next()
				if errors.Is(err, io.EOF) {
					break
				}
				require.NoError(t, err)
				assert.False(t, h.ModTime.After(epoch), "%s clamped", h.Name)
				assert.Empty(t, h.Uname+h.Gname, h.Name)
				assert.True(t, h.AccessTime.IsZero() && h.ChangeTime.IsZero(), h.Name)
			}
			require.NoError(t, rc.Close())
		}
		return digestOf(t, img)
	}
	epoch := time.Unix(1_700_000_000, 0)
	first := build(epoch)
	assert.Equal(t, first, build(epoch, imagebuild.WithConcurrency(1)), "another build, other files and mtimes, one core")
	assert.NotEqual(t, first, build(epoch.Add(time.Hour)), "the epoch is part of the image")

	t.Setenv(imagebuild.EpochEnv, "1700000000")
	img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), nil, imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	assert.Equal(t, epoch.UTC(), configOf(t, img).Created.UTC())
	t.Setenv(imagebuild.EpochEnv, "yesterday")
	_, err = imagebuild.Build(t.Context(), imagebuild.Scratch(), nil, imagebuild.WithCacheDir(t.TempDir()))
	assert.ErrorContains(t, err, "SOURCE_DATE_EPOCH")
}

// progressLog records which steps came from the cache.
type progressLog struct {
	mu     sync.Mutex
	cached map[int]bool
}

func (p *progressLog) record(pr imagebuild.Progress) {
	if !pr.Done {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cached[pr.Step] = pr.Cached
}

func TestCache(t *testing.T) {
	base := imagebuild.FromImage(busyboxBase(t))
	ctxDir, cacheDir := t.TempDir(), t.TempDir()
	for _, f := range []string{"a.txt", "b.txt", "c.txt"} {
		require.NoError(t, os.WriteFile(filepath.Join(ctxDir, f), []byte(f), 0o644))
	}
	steps := []imagebuild.Step{
		imagebuild.Workdir{Path: "/w"},                          // 1
		imagebuild.Copy{Sources: []string{"a.txt"}, Dest: "./"}, // 2
		imagebuild.Arg{Name: "V", Value: "1"},                   // 3
		imagebuild.Copy{Sources: []string{"b.txt"}, Dest: "./"}, // 4
		imagebuild.Run{Args: []string{"make"}, Shell: true},     // 5
		imagebuild.Copy{Sources: []string{"c.txt"}, Dest: "./"}, // 6
	}
	layerSteps := []int{1, 2, 4, 5, 6}
	build := func(steps []imagebuild.Step, opts ...imagebuild.Option) (string, map[int]bool, int) {
		p := &progressLog{cached: map[int]bool{}}
		r := &fakeRunner{}
		opts = append(opts, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(cacheDir),
			imagebuild.WithProgress(p.record), imagebuild.WithRunner(r))
		img, err := imagebuild.Build(t.Context(), base, steps, opts...)
		require.NoError(t, err)
		configOf(t, img)
		cached := map[int]bool{}
		for _, s := range layerSteps {
			cached[s] = p.cached[s]
		}
		return digestOf(t, img), cached, len(r.reqs)
	}
	all := func(v bool) map[int]bool { return map[int]bool{1: v, 2: v, 4: v, 5: v, 6: v} }

	first, cached, runs := build(steps)
	assert.Equal(t, all(false), cached)
	assert.Equal(t, 1, runs)
	blobs, err := os.ReadDir(filepath.Join(cacheDir, "blobs", "sha256"))
	require.NoError(t, err)
	stamps := map[string]time.Time{}
	for _, b := range blobs {
		info, err := b.Info()
		require.NoError(t, err)
		stamps[b.Name()] = info.ModTime()
	}

	again, cached, runs := build(steps)
	assert.Equal(t, first, again)
	assert.Equal(t, all(true), cached, "nothing changed: every layer from the cache")
	assert.Zero(t, runs, "RUN is cached too")
	blobs, err = os.ReadDir(filepath.Join(cacheDir, "blobs", "sha256"))
	require.NoError(t, err)
	for _, b := range blobs {
		info, err := b.Info()
		require.NoError(t, err)
		assert.Equal(t, stamps[b.Name()], info.ModTime(), "blob %s was not written again", b.Name())
	}

	// Same content, new mtime: step 2 is read again, and since its layer is the same
	// the later steps still hit.
	later := time.Now().Add(time.Minute)
	require.NoError(t, os.Chtimes(filepath.Join(ctxDir, "a.txt"), later, later))
	touched, cached, _ := build(steps)
	assert.Equal(t, first, touched)
	assert.Equal(t, map[int]bool{1: true, 2: false, 4: true, 5: true, 6: true}, cached)

	// A change at step 4 rebuilds from step 4.
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "b.txt"), []byte("b changed"), 0o644))
	changed, cached, runs := build(steps)
	assert.NotEqual(t, first, changed)
	assert.Equal(t, map[int]bool{1: true, 2: true, 4: false, 5: false, 6: false}, cached)
	assert.Equal(t, 1, runs)

	// A build argument is part of the key of every later step.
	steps[2] = imagebuild.Arg{Name: "V", Value: "2"}
	_, cached, _ = build(steps)
	assert.Equal(t, map[int]bool{1: true, 2: true, 4: false, 5: false, 6: false}, cached)

	_, cached, runs = build(steps, imagebuild.WithoutCache())
	assert.Equal(t, all(false), cached)
	assert.Equal(t, 1, runs)
}

func TestCacheConcurrentBuilds(t *testing.T) {
	ctxDir, cacheDir := t.TempDir(), t.TempDir()
	intelTree(t, ctxDir)
	makeArchive(t, ctxDir, filepath.Join(ctxDir, "intel.tgz"), "gzip")
	steps := []imagebuild.Step{
		imagebuild.Add{Sources: []string{"intel.tgz"}, Dest: "/opt/"},
		imagebuild.Copy{Sources: []string{"intel"}, Dest: "/srv/intel"},
	}
	digests := make([]string, 4)
	var wg sync.WaitGroup
	for i := range digests {
		wg.Go(func() {
			img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), steps,
				imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(cacheDir))
			if assert.NoError(t, err) {
				d, err := img.Digest()
				assert.NoError(t, err)
				digests[i] = d.String()
				assert.NoError(t, validateImage(img))
			}
		})
	}
	wg.Wait()
	for _, d := range digests[1:] {
		assert.Equal(t, digests[0], d)
	}
	leftovers, err := filepath.Glob(filepath.Join(cacheDir, "*", "*", ".*"))
	require.NoError(t, err)
	assert.Empty(t, leftovers, "no temporary files left")
}
