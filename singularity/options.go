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

type options struct {
	logger       *slog.Logger
	progress     func(Progress)
	format       Format
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

// Option configures Build, Pull, PushSIF and PullSIF. Options that do not
// apply to a call are ignored by it.
type Option func(*options) error

func newOptions(opts []Option) (*options, error) {
	o := &options{
		logger:   slog.New(slog.DiscardHandler),
		level:    6,
		workers:  runtime.GOMAXPROCS(0),
		keychain: authn.DefaultKeychain,
		platform: v1.Platform{OS: "linux", Architecture: runtime.GOARCH},
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	return o, nil
}

// WithLogger sets where dropped xattrs, skipped ENV names and replaced paths
// are reported, at warning level. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger must not be nil")
		}
		o.logger = l
		return nil
	}
}

// WithProgress sets a function called as the build proceeds, from the
// building goroutine, after every file stored and at the end. The default is
// none.
func WithProgress(fn func(Progress)) Option {
	return func(o *options) error {
		o.progress = fn
		return nil
	}
}

// WithFormat sets the output format. The default is FormatSIF.
func WithFormat(f Format) Option {
	return func(o *options) error {
		if f != FormatSIF && f != FormatSIMG {
			return fmt.Errorf("unknown format %d", f)
		}
		o.format = f
		return nil
	}
}

// WithCompressionLevel sets the zlib level of the squashfs root, 1 (fastest)
// to 9 (smallest, mksquashfs' default), or 0 to store it uncompressed.
// The default is 6: on a real 1.06 GB tree of programs and libraries its image
// was 5.5 % larger than mksquashfs' level 9 (see the package doc).
func WithCompressionLevel(level int) Option {
	return func(o *options) error {
		if level < 0 || level > 9 {
			return fmt.Errorf("compression level must be 0 to 9, got %d", level)
		}
		o.level, o.levelSet = level, true
		return nil
	}
}

// WithWorkers sets how many squashfs blocks are compressed at once; the
// output is the same for any value. The default is runtime.GOMAXPROCS(0).
func WithWorkers(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("workers must be positive, got %d", n)
		}
		o.workers = n
		return nil
	}
}

// WithSourceDateEpoch makes the output reproducible: the SIF's creation
// times, the labels' build date, the generated files and the squashfs image
// time are t, and the SIF's ID is derived from nothing but the options (the
// nil UUID unless WithID sets one). The same image and options then give the
// same bytes. The default is the current time and a random ID.
func WithSourceDateEpoch(t time.Time) Option {
	return func(o *options) error {
		t := t.UTC()
		o.epoch = &t
		return nil
	}
}

// WithID sets the SIF's ID, a UUID in its string form. The default is a
// random UUID, or the nil UUID under WithSourceDateEpoch.
func WithID(id string) Option {
	return func(o *options) error {
		o.id = id
		return nil
	}
}

// WithSource sets the image reference recorded in the definition file
// ("from: …") and the labels. Pull sets it to the reference pulled. The
// default for Build is the image's manifest digest.
func WithSource(ref string) Option {
	return func(o *options) error {
		o.from = ref
		return nil
	}
}

// WithCacheDir sets the blob cache directory: every layer and config is
// downloaded once into dir/blobs/sha256 (compressed, as the registry serves
// it; each file written under a temporary name and renamed, so concurrent
// builds share it safely) and read from there; a cached blob is checked
// against its digest once per build and fetched again if damaged. Build uses
// the cache only when this option is given. The default for Pull is the
// directory "hpcship" under os.UserCacheDir.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("cache directory must not be empty")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithKeychain sets where registry credentials come from, for example an acr
// keychain. The default is authn.DefaultKeychain (docker's config.json).
func WithKeychain(kc authn.Keychain) Option {
	return func(o *options) error {
		if kc == nil {
			return errors.New("keychain must not be nil")
		}
		o.keychain = kc
		return nil
	}
}

// WithAuthenticator sets the registry credentials directly, overriding the
// keychain. The default is to ask the keychain.
func WithAuthenticator(a authn.Authenticator) Option {
	return func(o *options) error {
		if a == nil {
			return errors.New("authenticator must not be nil")
		}
		o.auth = a
		return nil
	}
}

// WithEnvCredentials makes registry calls use APPTAINER_DOCKER_USERNAME and
// APPTAINER_DOCKER_PASSWORD when both are set, else SINGULARITY_DOCKER_USERNAME
// and SINGULARITY_DOCKER_PASSWORD, as Apptainer does; when neither pair is set
// the keychain answers. The default is not to read the environment.
func WithEnvCredentials() Option {
	return func(o *options) error {
		o.envCreds = true
		return nil
	}
}

// WithPlatform sets which image of a multi-platform index Pull converts.
// The default is linux on the architecture of the running program.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform needs an OS and an architecture, got %q/%q", p.OS, p.Architecture)
		}
		o.platform = p
		return nil
	}
}

// WithTransport sets the HTTP transport of registry calls. The default is
// ggcr's remote.DefaultTransport.
func WithTransport(t http.RoundTripper) Option {
	return func(o *options) error {
		if t == nil {
			return errors.New("transport must not be nil")
		}
		o.transport = t
		return nil
	}
}

// WithMksquashfs makes the root file system be packed by squashfs-tools'
// sqfstar (4.5.1 or later; it comes with mksquashfs) at path, fed a tar stream
// of the merged root, instead of the built-in writer. Nothing is unpacked to
// disk and sqfstar writes straight into the output at the partition's offset,
// so owners, device nodes, setuid bits, xattrs and mode-000 files survive as
// with the built-in writer. It compresses with sqfstar's default, gzip level
// 9, unless WithCompressionLevel is given too (sqfstar 4.5.1 rejects any
// -Xcompression-level; 4.6 takes it). An empty path looks for sqfstar on PATH.
// The default is the built-in writer.
func WithMksquashfs(path string) Option {
	return func(o *options) error {
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
	}
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
