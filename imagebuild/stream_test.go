package imagebuild_test

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"errors"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/zstd"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/imagebuild"
)

// writeGenerated writes size bytes of half-compressible data (32 KiB random, 32 KiB
// of one byte, repeated) to path, without holding them in memory.
func writeGenerated(t testing.TB, path string, size int64) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	w := bufio.NewWriterSize(f, 1<<20)
	rng := rand.NewChaCha8([32]byte{1, 2, 3})
	buf := make([]byte, 64<<10)
	for written, n := int64(0), 0; written < size; written, n = written+int64(len(buf)), n+1 {
		_, _ = rng.Read(buf[:32<<10]) // never fails
		copy(buf[32<<10:], bytes.Repeat([]byte{byte(n)}, 32<<10))
		_, err := w.Write(buf[:min(int64(len(buf)), size-written)])
		require.NoError(t, err)
	}
	require.NoError(t, w.Flush())
	require.NoError(t, f.Close())
}

// peakHeap samples the heap in use until stop is called, and returns the largest.
func peakHeap() (stop func() uint64) {
	var peak atomic.Uint64
	done := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		var m runtime.MemStats
		for {
			runtime.ReadMemStats(&m)
			if m.HeapInuse > peak.Load() {
				peak.Store(m.HeapInuse)
			}
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
		}
	})
	return func() uint64 { close(done); wg.Wait(); return peak.Load() }
}

func TestLayersStream(t *testing.T) {
	if testing.Short() {
		t.Skip("writes and reads 512 MiB")
	}
	size := 256 << 20
	if raceEnabled {
		size = 72 << 20 // still more than the bound below, in a fraction of the time
	}
	ctxDir := t.TempDir()
	writeGenerated(t, filepath.Join(ctxDir, "big.bin"), int64(size))
	makeArchiveOf(t, ctxDir, "big.tgz", "gzip", "big.bin")
	// Collect often, so that the peak is what is live rather than garbage awaiting collection.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	stop := peakHeap()
	img, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Copy{Sources: []string{"big.bin"}, Dest: "/data/"},
		imagebuild.Add{Sources: []string{"big.tgz"}, Dest: "/unpacked/"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.NoError(t, err)
	layers, err := img.Layers()
	require.NoError(t, err)
	for _, l := range layers {
		rc, err := l.Uncompressed()
		require.NoError(t, err)
		n, err := io.Copy(io.Discard, rc)
		require.NoError(t, err)
		assert.Greater(t, n, int64(size))
		require.NoError(t, rc.Close())
	}
	peak := stop()
	t.Logf("peak heap in use: %.1f MiB for two %d MiB layers", float64(peak)/(1<<20), size>>20)
	assert.Less(t, peak, uint64(64<<20), "layers are streamed, never held in memory")
}

func TestCancelLeavesNothing(t *testing.T) {
	ctxDir, cacheDir := t.TempDir(), t.TempDir()
	writeGenerated(t, filepath.Join(ctxDir, "big.bin"), 16<<20)
	ctx, cancel := context.WithCancel(t.Context())
	var once sync.Once
	_, err := imagebuild.Build(ctx, imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Copy{Sources: []string{"big.bin"}, Dest: "/data/"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(cacheDir),
		imagebuild.WithProgress(func(p imagebuild.Progress) {
			if p.Bytes > 0 {
				once.Do(cancel)
			}
		}))
	require.ErrorIs(t, err, context.Canceled)
	var se *imagebuild.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 0, se.Index)
	blobs, err := os.ReadDir(filepath.Join(cacheDir, "blobs", "sha256"))
	require.NoError(t, err)
	assert.Empty(t, blobs, "the partial layer is removed")
	_, err = os.Stat(filepath.Join(cacheDir, "steps"))
	assert.True(t, errors.Is(err, os.ErrNotExist), "nothing is cached")
}

// nilRunner is a Runner whose steps change nothing.
type nilRunner struct{ calls atomic.Int32 }

func (r *nilRunner) Run(context.Context, imagebuild.RunRequest) (v1.Layer, error) {
	r.calls.Add(1)
	return nil, nil
}

func TestRunWithoutChanges(t *testing.T) {
	cacheDir := t.TempDir()
	steps := []imagebuild.Step{
		imagebuild.Arg{Name: "MODE", Value: "fast"},
		imagebuild.Env{Vars: []imagebuild.KeyValue{{Key: "A", Value: "1"}}},
		imagebuild.Run{Args: []string{"/bin/true", "--mode"}},
	}
	for i, wantCalls := range []int32{1, 0} {
		r := &nilRunner{}
		img, err := imagebuild.Build(t.Context(), imagebuild.FromImage(busyboxBase(t)), steps,
			imagebuild.WithCacheDir(cacheDir), imagebuild.WithRunner(r))
		require.NoError(t, err)
		assert.Equal(t, wantCalls, r.calls.Load(), "build %d", i+1)
		cf := configOf(t, img)
		last := cf.History[len(cf.History)-1]
		assert.Equal(t, "RUN /bin/true --mode", last.CreatedBy)
		assert.True(t, last.EmptyLayer)
		assert.NotContains(t, cf.Config.Env, "MODE=fast", "build arguments stay out of the image")
	}
}

func TestUnwritableBlobDirectory(t *testing.T) {
	ctxDir, cacheDir := t.TempDir(), t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(ctxDir, "a.txt"), []byte("a"), 0o644))
	// /proc is a directory in which nobody, root included, can create a file.
	blobDir := filepath.Join(cacheDir, "blobs", "sha256")
	require.NoError(t, os.Mkdir(filepath.Dir(blobDir), 0o755))
	require.NoError(t, os.Symlink("/proc", blobDir))
	_, err := imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Copy{Sources: []string{"a.txt"}, Dest: "/"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(cacheDir))
	var se *imagebuild.StepError
	require.ErrorAs(t, err, &se)
	assert.Equal(t, 0, se.Index)
	var pe *fs.PathError
	require.ErrorAs(t, err, &pe)
	assert.Equal(t, blobDir, filepath.Dir(pe.Path), "the error names the blob directory")
	_, err = os.Stat(filepath.Join(cacheDir, "steps"))
	assert.ErrorIs(t, err, fs.ErrNotExist, "nothing is cached")
}

// TestAbortedArchiveStopsDecoding checks that an ADD that stops reading a zstd
// archive early, at an escaping entry before 8 MiB of content, leaves no
// decoder behind: zstd decodes ahead on goroutines of its own, which would
// otherwise wait forever for a reader.
func TestAbortedArchiveStopsDecoding(t *testing.T) {
	ctxDir := t.TempDir()
	f, err := os.Create(filepath.Join(ctxDir, "evil.tar.zst"))
	require.NoError(t, err)
	zw, err := zstd.NewWriter(f)
	require.NoError(t, err)
	tw := tar.NewWriter(zw)
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "../escape", Typeflag: tar.TypeReg, Mode: 0o644, Size: 1}))
	_, err = tw.Write([]byte("x"))
	require.NoError(t, err)
	const size = 8 << 20
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: "big.bin", Typeflag: tar.TypeReg, Mode: 0o644, Size: size}))
	_, err = io.Copy(tw, io.LimitReader(rand.NewChaCha8([32]byte{4}), size))
	require.NoError(t, err)
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())

	before := zstdGoroutines()
	_, err = imagebuild.Build(t.Context(), imagebuild.Scratch(), []imagebuild.Step{
		imagebuild.Add{Sources: []string{"evil.tar.zst"}, Dest: "/opt/"},
	}, imagebuild.WithContextDir(ctxDir), imagebuild.WithCacheDir(t.TempDir()))
	require.ErrorIs(t, err, imagebuild.ErrUnsafePath)
	assert.Eventually(t, func() bool { return zstdGoroutines() <= before }, 5*time.Second, 10*time.Millisecond,
		"zstd goroutines left running")
}

// zstdGoroutines counts the goroutines running zstd code.
func zstdGoroutines() int {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	n := 0
	for g := range strings.SplitSeq(string(buf), "\n\n") {
		if strings.Contains(g, "klauspost/compress/zstd.") {
			n++
		}
	}
	return n
}
