package singularity

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"sync/atomic"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/sylabs/sif/v2/pkg/sif"

	"github.com/hpcship/hpcship/internal/atomicfile"
	"github.com/hpcship/hpcship/internal/rootfs"
)

// launchScript is the first line of every SIF and .simg: it lets the file be
// run directly where run-singularity is installed.
const launchScript = "#!/usr/bin/env run-singularity\n"

// ErrUnrepresentable reports an entry of the image that squashfs cannot store
// and that the builder will not silently change: a device number out of
// squashfs' range (major ≥ 4096 or minor ≥ 2^20).
var ErrUnrepresentable = errors.New("entry squashfs cannot store")

// EntryError is the error for one path of the image's root that cannot be
// stored. It wraps ErrUnrepresentable.
type EntryError struct {
	Path   string
	Reason string
	Err    error
}

func (e *EntryError) Error() string {
	return fmt.Sprintf("/%s: %s: %v", strings.TrimPrefix(e.Path, "."), e.Reason, e.Err)
}

func (e *EntryError) Unwrap() error { return e.Err }

// Build converts img into a container file at path: a SIF by default, or a
// .simg (WithFormat). The layers are merged in memory (internal/rootfs) and
// streamed into the squashfs root; nothing is unpacked to disk and nothing
// needs root. The result is written to a temporary file next to path and
// renamed into place with mode 0755 only when complete, so a failure,
// cancelled ctx or killed process never leaves a partial file at path.
//
// By default the output is a SIF (WithFormat) compressed with gzip (zlib)
// at level 6 (WithCompression, WithCompressionLevel) by runtime.GOMAXPROCS(0) workers (WithWorkers), dated
// now with a random ID (WithSourceDateEpoch, WithID), recording the image's
// digest as its source (WithSource), reading layers straight from img
// (WithCacheDir), without progress reports (WithProgress) or logging
// (WithLogger).
func Build(ctx context.Context, img v1.Image, path string, opts ...Option) error {
	o, err := newOptions("singularity.Build", callBuild, opts)
	if err != nil {
		return err
	}
	src := source{From: o.from}
	if src.From == "" {
		d, err := img.Digest()
		if err != nil {
			return fmt.Errorf("reading image digest: %w", err)
		}
		src.From = d.String()
	}
	return build(ctx, img, path, src, o)
}

func build(ctx context.Context, img v1.Image, path string, src source, o *options) error {
	cfgFile, err := img.ConfigFile()
	if err != nil {
		return fmt.Errorf("reading image config: %w", err)
	}
	arch := cfgFile.Architecture
	if arch == "" {
		arch = runtime.GOARCH
		o.logger.Warn("image config names no architecture, assuming the running one", "arch", arch)
	}
	imgLayers, err := img.Layers()
	if err != nil {
		return fmt.Errorf("listing layers: %w", err)
	}
	var stats buildStats
	layers := make([]rootfs.Layer, len(imgLayers))
	for i, l := range imgLayers {
		if o.cacheDir != "" {
			l = &cachedLayer{Layer: l, dir: o.cacheDir}
		}
		layers[i] = countedLayer{l: l, n: &stats.read}
	}
	tree, err := rootfs.Flatten(ctx, layers, rootfs.WithLogger(o.logger))
	if err != nil {
		return fmt.Errorf("merging layers: %w", err)
	}

	created := time.Now().UTC()
	if o.epoch != nil {
		created = *o.epoch
	}
	gen, deffile, inspectJSON, skipped, err := singularityFiles(&cfgFile.Config, src, arch, cfgFile.Variant, created)
	if err != nil {
		return err
	}
	for _, k := range skipped {
		o.logger.Warn("ENV name sh cannot hold left out of 10-docker2singularity.sh", "name", k)
	}
	ociConfig, err := json.Marshal(cfgFile.Config)
	if err != nil {
		return fmt.Errorf("encoding oci-config.json: %w", err)
	}
	plan, err := planRoot(tree, gen, created, o)
	if err != nil {
		return err
	}

	return atomicfile.Write(ctx, path, 0o755, func(f *os.File) error {
		if o.format == FormatSIMG {
			// The launch line goes in last: sqfstar clears what lies before its offset.
			if _, err := packRoot(ctx, f, int64(len(launchScript)), plan, &stats, o); err != nil {
				return err
			}
			_, err := f.WriteAt([]byte(launchScript), 0)
			return err
		}
		return writeSIF(ctx, f, plan, &stats, arch, []metaObject{
			{name: "", data: []byte(deffile)},
			{name: "inspect-metadata.json", data: inspectJSON},
			{name: "oci-config.json", data: ociConfig},
		}, created, o)
	})
}

type buildStats struct {
	read    atomic.Int64
	written atomic.Int64
	files   atomic.Int64
	total   int
}

func (s *buildStats) report(o *options) {
	if o.progress != nil {
		o.progress(Progress{
			BytesRead: s.read.Load(), BytesWritten: s.written.Load(),
			Files: int(s.files.Load()), FilesTotal: s.total,
		})
	}
}

// countedLayer counts the uncompressed bytes read from a layer.
type countedLayer struct {
	l interface {
		Uncompressed() (io.ReadCloser, error)
	}
	n *atomic.Int64
}

func (c countedLayer) Uncompressed() (io.ReadCloser, error) {
	rc, err := c.l.Uncompressed()
	if err != nil {
		return nil, err
	}
	return countedReadCloser{rc, c.n}, nil
}

type countedReadCloser struct {
	io.ReadCloser
	n *atomic.Int64
}

func (c countedReadCloser) Read(p []byte) (int, error) {
	n, err := c.ReadCloser.Read(p)
	c.n.Add(int64(n))
	return n, err
}

// metaObject is a data object of the SIF ahead of the partition: the
// definition file (no name) or a generic JSON object.
type metaObject struct {
	name string
	data []byte
}

// sifCreateOpts are the container options of a build.
func sifCreateOpts(created time.Time, o *options) []sif.CreateOpt {
	opts := []sif.CreateOpt{
		sif.OptCreateWithLaunchScript(launchScript),
		sif.OptCreateWithTime(created),
		sif.OptCreateWithCloseOnUnload(false),
	}
	switch {
	case o.id != "":
		opts = append(opts, sif.OptCreateWithID(o.id))
	case o.epoch != nil:
		opts = append(opts, sif.OptCreateWithID("00000000-0000-0000-0000-000000000000"))
	}
	return opts
}

func descriptorInputs(objs []metaObject, part io.Reader, arch string, created time.Time) ([]sif.DescriptorInput, error) {
	var dis []sif.DescriptorInput
	for _, obj := range objs {
		t, opts := sif.DataGenericJSON, []sif.DescriptorInputOpt{sif.OptObjectTime(created)}
		if obj.name == "" {
			t = sif.DataDeffile
		} else {
			opts = append(opts, sif.OptObjectName(obj.name))
		}
		di, err := sif.NewDescriptorInput(t, strings.NewReader(string(obj.data)), opts...)
		if err != nil {
			return nil, err
		}
		dis = append(dis, di)
	}
	di, err := sif.NewDescriptorInput(sif.DataPartition, part,
		sif.OptPartitionMetadata(sif.FsSquash, sif.PartPrimSys, arch), sif.OptObjectTime(created))
	if err != nil {
		return nil, fmt.Errorf("partition of architecture %q: %w", arch, err)
	}
	return append(dis, di), nil
}

// writeSIF writes the SIF to f with the sif library, without copying the
// squashfs: it learns where the library will place the partition from a dry
// run, writes the squashfs there, and lets the library write header,
// descriptors and metadata objects around it through a writer that skips the
// partition's bytes.
func writeSIF(ctx context.Context, f *os.File, plan *rootPlan, stats *buildStats, arch string, objs []metaObject, created time.Time, o *options) error {
	dis, err := descriptorInputs(objs, strings.NewReader(""), arch, created)
	if err != nil {
		return err
	}
	dry, err := sif.CreateContainer(sif.NewBuffer(nil), append(sifCreateOpts(created, o), sif.OptCreateWithDescriptors(dis...))...)
	if err != nil {
		return fmt.Errorf("laying out SIF: %w", err)
	}
	d, err := dry.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return fmt.Errorf("laying out SIF: %w", err)
	}
	off := d.Offset()

	size, err := packRoot(ctx, f, off, plan, stats, o)
	if err != nil {
		return err
	}
	dis, err = descriptorInputs(objs, &placeholder{n: size}, arch, created)
	if err != nil {
		return err
	}
	rw := &skipWriter{f: f, skipFrom: off, skipTo: off + size}
	img, err := sif.CreateContainer(rw, append(sifCreateOpts(created, o), sif.OptCreateWithDescriptors(dis...))...)
	if err != nil {
		return fmt.Errorf("writing SIF: %w", err)
	}
	d, err = img.GetDescriptor(sif.WithPartitionType(sif.PartPrimSys))
	if err != nil {
		return fmt.Errorf("writing SIF: %w", err)
	}
	if d.Offset() != off || d.Size() != size {
		return fmt.Errorf("writing SIF: partition placed at %d (%d bytes), squashfs written at %d (%d bytes)", d.Offset(), d.Size(), off, size)
	}
	if err := img.UnloadContainer(); err != nil {
		return err
	}
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() != off+size {
		return fmt.Errorf("writing SIF: file is %d bytes, want %d", fi.Size(), off+size)
	}
	return nil
}

// placeholder stands for the squashfs the SIF library would copy: n bytes
// that a skipWriter passes over without writing.
type placeholder struct{ n int64 }

func (p *placeholder) Read(b []byte) (int, error) {
	if p.n == 0 {
		return 0, io.EOF
	}
	k := min(int64(len(b)), p.n)
	clear(b[:k])
	p.n -= k
	return int(k), nil
}

// WriteTo skips the placeholder's bytes in a skipWriter instead of writing
// zeros over the squashfs.
func (p *placeholder) WriteTo(w io.Writer) (int64, error) {
	sw, ok := w.(*skipWriter)
	if !ok || sw.pos != sw.skipFrom {
		return io.Copy(w, struct{ io.Reader }{p})
	}
	n := p.n
	sw.pos += n
	p.n = 0
	return n, nil
}

// skipWriter is the sif.ReadWriter over the output file that leaves the
// bytes in [skipFrom, skipTo), the squashfs, as they are.
type skipWriter struct {
	f                *os.File
	pos              int64
	skipFrom, skipTo int64
}

func (w *skipWriter) ReadAt(p []byte, off int64) (int, error) { return w.f.ReadAt(p, off) }

func (w *skipWriter) Write(p []byte) (int, error) {
	start, end := w.pos, w.pos+int64(len(p))
	if end > w.skipFrom && start < w.skipTo {
		return 0, fmt.Errorf("SIF library wrote %d bytes at %d, over the squashfs at %d-%d", len(p), start, w.skipFrom, w.skipTo)
	}
	n, err := w.f.WriteAt(p, start)
	w.pos += int64(n)
	return n, err
}

func (w *skipWriter) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekStart:
	case io.SeekCurrent:
		offset += w.pos
	case io.SeekEnd:
		fi, err := w.f.Stat()
		if err != nil {
			return 0, err
		}
		offset += fi.Size()
	default:
		return 0, errors.New("invalid whence")
	}
	if offset < 0 {
		return 0, errors.New("negative position")
	}
	w.pos = offset
	return offset, nil
}

func (w *skipWriter) Truncate(size int64) error {
	if size < w.skipTo {
		return fmt.Errorf("SIF library truncated to %d, into the squashfs ending at %d", size, w.skipTo)
	}
	return w.f.Truncate(size)
}
