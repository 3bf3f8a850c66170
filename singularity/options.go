package singularity

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/internal/callopt"
)

// Format is the container file format Build and Pull write.
type Format int

const (
	// FormatSIF is the SIF of Singularity 3+ and Apptainer: a launch header,
	// descriptors, the definition, oci-config.json and inspect-metadata.json,
	// and the squashfs root as primary system partition.
	FormatSIF Format = iota
	// FormatSIMG is Singularity 2.x's .simg: the line
	// "#!/usr/bin/env run-singularity\n" followed by the squashfs root, which
	// Apptainer and SingularityCE still run.
	FormatSIMG
)

// Progress reports how far a build is. BytesRead counts the uncompressed
// layer bytes read so far (the layers are read twice: once for metadata, once
// for contents), BytesWritten the bytes of the output written, Files the
// regular files stored of FilesTotal.
type Progress struct {
	BytesRead    int64
	BytesWritten int64
	Files        int
	FilesTotal   int
}

// Compressor is the compression of the squashfs root.
type Compressor int

const (
	// Gzip is squashfs "gzip" (zlib streams), which every Singularity and
	// Apptainer, every kernel and squashfuse reads.
	Gzip Compressor = iota
	// Zstd is Zstandard (squashfs compressor 6): read by kernels since Linux
	// 4.14, and by squashfuse and squashfs-tools built with libzstd (Debian's
	// and most distributions' are). Choose it only for clusters whose runtime
	// reads it.
	Zstd
)

func (c Compressor) String() string {
	switch c {
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compressor(%d)", int(c))
}

// LevelError reports a compression level outside its compressor's range, or
// an unknown compressor (Min and Max are then 0).
type LevelError struct {
	Compressor Compressor
	Level      int
	Min, Max   int
}

func (e *LevelError) Error() string {
	if e.Max == 0 {
		return fmt.Sprintf("unknown compressor %v", e.Compressor)
	}
	return fmt.Sprintf("%v compression level must be %d to %d, got %d", e.Compressor, e.Min, e.Max, e.Level)
}

// levelRange returns the levels c takes; 0 stores everything uncompressed.
func levelRange(c Compressor) (lo, hi int, ok bool) {
	switch c {
	case Gzip:
		return 0, 9, true
	case Zstd:
		return 0, 22, true
	}
	return 0, 0, false
}

type options struct {
	logger       *slog.Logger
	progress     func(Progress)
	format       Format
	comp         Compressor
	level        int
	levelSet     bool
	workers      int
	epoch        *time.Time
	id           string
	from         string
	cacheDir     string
	keychain     authn.Keychain
	auth         authn.Authenticator
	envCreds     bool
	platform     v1.Platform
	transport    http.RoundTripper
	mksquashfs   string
	useMksquashf bool
}

// Option configures a call of this package. Each option applies to some calls
// only, as its documentation says; a call given an option it does not take,
// an invalid value or options that conflict fails with an *OptionError that
// names both, before doing anything.
type Option struct{ opt callopt.Option[options] }

func option(name string, calls call, apply func(*options) error) Option {
	return Option{callopt.Option[options]{Name: name, Calls: calls, Apply: apply}}
}

func (o Option) spec() callopt.Option[options] { return o.opt }

// call is a set of the calls that take options.
type call = callopt.Calls

const (
	callBuild   call = 1 << iota // Build
	callPull                     // Pull
	callPushSIF                  // PushSIF
	callPullSIF                  // PullSIF

	callsConvert  = callBuild | callPull
	callsRegistry = callPull | callPushSIF | callPullSIF
)

// OptionError reports an option that a call rejected: an invalid value, an
// option the call does not take, or options that conflict. Its Call is the
// function that was given the option, such as "singularity.PushSIF", its
// Option the option's name, such as "WithCompression", and its Err what is
// wrong; its text is "Call: Option: Err", and Unwrap returns Err.
type OptionError = callopt.Error

// newOptions applies opts for the call named name, which is one of c.
func newOptions(name string, c call, opts []Option) (*options, error) {
	o := &options{
		logger:   slog.New(slog.DiscardHandler),
		level:    6,
		workers:  runtime.GOMAXPROCS(0),
		keychain: authn.DefaultKeychain,
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
	}
	given, err := callopt.Apply(name, c, o, opts, Option.spec)
	if err != nil {
		return nil, err
	}
	if err := given.Exclusive(name, "WithAuthenticator", "WithKeychain"); err != nil {
		return nil, err
	}
	if err := given.Exclusive(name, "WithCompressionLevel", "WithCompression"); err != nil {
		return nil, err
	}
	return o, nil
}

// WithLogger sets where Build and Pull report dropped xattrs, skipped ENV
// names and replaced paths, at warning level. The default discards.
func WithLogger(l *slog.Logger) Option {
	return option("WithLogger", callsConvert, func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	})
}

// WithProgress sets a function that Build and Pull call as the build
// proceeds, from the building goroutine, after every file stored and at the
// end. The default is none.
func WithProgress(fn func(Progress)) Option {
	return option("WithProgress", callsConvert, func(o *options) error {
		o.progress = fn
		return nil
	})
}

// WithFormat sets the format Build and Pull write. The default is FormatSIF.
func WithFormat(f Format) Option {
	return option("WithFormat", callsConvert, func(o *options) error {
		if f != FormatSIF && f != FormatSIMG {
			return fmt.Errorf("unknown format %d", f)
		}
		o.format = f
		return nil
	})
}

// WithCompressionLevel sets the zlib level of the squashfs root that Build
// and Pull write, 1 (fastest) to 9 (smallest, mksquashfs' default), or 0 to
// store it uncompressed; it is WithCompression(Gzip, level) and cannot be
// combined with WithCompression. A level out of range is a *LevelError. The
// default is 6: on a real 1.07 GB tree of programs and libraries its image was
// 5.5 % larger than mksquashfs' level 9 (see the package doc).
func WithCompressionLevel(level int) Option {
	opt := WithCompression(Gzip, level)
	opt.opt.Name = "WithCompressionLevel"
	return opt
}

// WithCompression sets the compressor and level of the squashfs root that
// Build and Pull write: Gzip with a zlib level 1 to 9, or Zstd with a zstd
// level 1 to 22, which klauspost/compress maps onto four encoder speeds (1–2
// fastest, 3–5 default, 6–9 better, 10–22 best); 0 stores the root
// uncompressed. A level other than mksquashfs' default for the compressor (9
// for gzip, 15 for zstd) is recorded in compressor options after the
// superblock, as mksquashfs writes them. A level out of range, or an unknown
// compressor, is a *LevelError. Zstd images are smaller and faster to read
// and write, but only runtimes built with zstd read them (see Zstd and the
// package doc for what each choice costs). The default is Gzip at level 6.
func WithCompression(c Compressor, level int) Option {
	return option("WithCompression", callsConvert, func(o *options) error {
		lo, hi, ok := levelRange(c)
		if !ok || level < lo || level > hi {
			return &LevelError{Compressor: c, Level: level, Min: lo, Max: hi}
		}
		o.comp, o.level, o.levelSet = c, level, true
		return nil
	})
}

// WithWorkers sets how many squashfs blocks Build and Pull compress at once;
// the output is the same for any value. The default is
// runtime.GOMAXPROCS(0).
func WithWorkers(n int) Option {
	return option("WithWorkers", callsConvert, func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("workers must be positive, got %d", n)
		}
		o.workers = n
		return nil
	})
}

// WithSourceDateEpoch makes the output of Build and Pull reproducible: the
// SIF's creation times, the labels' build date, the generated files and the
// squashfs image time are t, and the SIF's ID is derived from nothing but the
// options (the nil UUID unless WithID sets one). The same image and options
// then give the same bytes. The default is the current time and a random ID.
func WithSourceDateEpoch(t time.Time) Option {
	return option("WithSourceDateEpoch", callsConvert, func(o *options) error {
		t := t.UTC()
		o.epoch = &t
		return nil
	})
}

// WithID sets the ID of the SIF that Build and Pull write, a UUID in its
// string form. The default is a random UUID, or the nil UUID under
// WithSourceDateEpoch.
func WithID(id string) Option {
	return option("WithID", callsConvert, func(o *options) error {
		o.id = id
		return nil
	})
}

// WithSource sets the image reference recorded in the definition file
// ("from: …") and the labels by Build and Pull. The default for Build is the
// image's manifest digest, for Pull the reference pulled.
func WithSource(ref string) Option {
	return option("WithSource", callsConvert, func(o *options) error {
		o.from = ref
		return nil
	})
}

// WithCacheDir sets the blob cache directory of Build and Pull: every layer
// and config is downloaded once into dir/blobs/sha256 (compressed, as the
// registry serves it; each file written under a temporary name and renamed,
// so concurrent builds share it safely) and read from there; a cached blob is
// checked against its digest once per build and fetched again if damaged.
// Build uses the cache only when this option is given. The default for Pull
// is the directory "hpcship" under os.UserCacheDir.
func WithCacheDir(dir string) Option {
	return option("WithCacheDir", callsConvert, func(o *options) error {
		if dir == "" {
			return errors.New("cache directory must not be empty")
		}
		o.cacheDir = dir
		return nil
	})
}

// WithKeychain sets where Pull, PushSIF and PullSIF find registry
// credentials, for example an acr keychain. It cannot be combined with
// WithAuthenticator. The default is authn.DefaultKeychain (docker's
// config.json).
func WithKeychain(kc authn.Keychain) Option {
	return option("WithKeychain", callsRegistry, func(o *options) error {
		if kc == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = kc
		return nil
	})
}

// WithAuthenticator sets the registry credentials of Pull, PushSIF and
// PullSIF directly. It cannot be combined with WithKeychain. The default is
// to ask the keychain.
func WithAuthenticator(a authn.Authenticator) Option {
	return option("WithAuthenticator", callsRegistry, func(o *options) error {
		if a == nil {
			return errors.New("authenticator must not be nil")
		}
		o.auth = a
		return nil
	})
}

// WithEnvCredentials makes Pull, PushSIF and PullSIF use
// APPTAINER_DOCKER_USERNAME and APPTAINER_DOCKER_PASSWORD when both are set,
// else SINGULARITY_DOCKER_USERNAME and SINGULARITY_DOCKER_PASSWORD, as
// Apptainer does; when neither pair is set the authenticator or keychain
// answers. The default is not to read the environment.
func WithEnvCredentials() Option {
	return option("WithEnvCredentials", callsRegistry, func(o *options) error {
		o.envCreds = true
		return nil
	})
}

// WithPlatform sets which image of a multi-platform index Pull converts.
// The default is linux on the architecture of the running program.
func WithPlatform(p v1.Platform) Option {
	return option("WithPlatform", callPull, func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform needs an OS and an architecture, got %q/%q", p.OS, p.Architecture)
		}
		o.platform = p
		return nil
	})
}

// WithTransport sets the HTTP transport of the registry calls of Pull,
// PushSIF and PullSIF. The default is ggcr's remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return option("WithTransport", callsRegistry, func(o *options) error {
		if t == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = t
		return nil
	})
}

// WithMksquashfs makes Build and Pull pack the root file system with
// squashfs-tools' sqfstar (4.5.1 or later; it comes with mksquashfs) at path,
// fed a tar stream of the merged root, instead of the built-in writer.
// Nothing is unpacked to disk and sqfstar writes straight into the output at
// the partition's offset, so owners, device nodes, setuid bits, xattrs and
// mode-000 files survive as with the built-in writer. It compresses with
// sqfstar's default, gzip level 9, unless WithCompression or
// WithCompressionLevel is given too; sqfstar 4.5.1 takes only the default
// levels, gzip 9 and zstd 15 (it rejects any -Xcompression-level, which 4.6
// takes). sqfstar 4.5.1 also takes but ignores -root-uid, -root-gid and
// -root-time: its root directory is owned by 0/0 and dated now, where the
// built-in writer keeps the owner and time the image gives it. An empty path
// looks for sqfstar on PATH.
// The default is the built-in writer.
func WithMksquashfs(path string) Option {
	return option("WithMksquashfs", callsConvert, func(o *options) error {
		if path == "" {
			p, err := lookPath("sqfstar")
			if err != nil {
				return err
			}
			path = p
		}
		o.mksquashfs = path
		o.useMksquashf = true
		return nil
	})
}

func lookPath(name string) (string, error) {
	for _, dir := range filepath.SplitList(os.Getenv("PATH")) {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			return p, nil
		}
	}
	for _, dir := range []string{"/usr/sbin", "/sbin"} {
		p := filepath.Join(dir, name)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() {
			return p, nil
		}
	}
	return "", fmt.Errorf("%s not found on PATH", name)
}
