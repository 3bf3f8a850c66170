package imagebuild

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/klauspost/compress/gzip"
)

// Option configures Build, BuildDockerfile, ParseDockerfile and the output functions.
type Option func(*options) error

type options struct {
	contextDir   string
	cacheDir     string
	noCache      bool
	epoch        *time.Time
	level        int
	concurrency  int
	runner       Runner
	log          *slog.Logger
	progress     func(Progress)
	keychain     authn.Keychain
	platform     *v1.Platform
	buildArgs    map[string]string
	bases        map[string]Base
	dockerignore bool
}

// DefaultCompressionLevel is the gzip level of new layers unless WithCompressionLevel
// says otherwise.
const DefaultCompressionLevel = gzip.BestSpeed

// EpochEnv is the environment variable that sets the build's time (seconds since
// 1970-01-01 UTC), as for other reproducible build tools.
const EpochEnv = "SOURCE_DATE_EPOCH"

func makeOptions(opts []Option) (*options, error) {
	o := &options{
		level:        DefaultCompressionLevel,
		concurrency:  runtime.GOMAXPROCS(0),
		runner:       unavailableRunner{},
		log:          slog.New(slog.DiscardHandler),
		keychain:     authn.DefaultKeychain,
		dockerignore: true,
	}
	for _, opt := range opts {
		if err := opt(o); err != nil {
			return nil, err
		}
	}
	if o.epoch == nil {
		t := time.Unix(0, 0).UTC()
		if v, ok := os.LookupEnv(EpochEnv); ok && v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, fmt.Errorf("%s=%q: want a non-negative integer number of seconds", EpochEnv, v)
			}
			t = time.Unix(n, 0).UTC()
		}
		o.epoch = &t
	}
	if o.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return nil, fmt.Errorf("finding the cache directory (set one with WithCacheDir): %w", err)
		}
		o.cacheDir = filepath.Join(dir, "hpcship", "imagebuild")
	}
	if o.platform == nil {
		o.platform = &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
	}
	return o, nil
}

// WithContextDir sets the build context: the directory that ADD and COPY sources are
// relative to, and whose .dockerignore applies. The default is the current directory
// for Build and the Dockerfile's directory for BuildDockerfile.
func WithContextDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("context directory is empty")
		}
		o.contextDir = dir
		return nil
	}
}

// WithCacheDir sets the directory of the build cache, which also holds the blobs of
// the layers a build creates: the image Build returns reads them, so keep the
// directory until the image is written out. Builds may share it concurrently. The
// default is "hpcship/imagebuild" under os.UserCacheDir.
func WithCacheDir(dir string) Option {
	return func(o *options) error {
		if dir == "" {
			return errors.New("cache directory is empty")
		}
		o.cacheDir = dir
		return nil
	}
}

// WithoutCache makes the build reuse no cached step: every step runs and every layer
// is written again (and replaces its cache entry). The default is to reuse.
func WithoutCache() Option {
	return func(o *options) error {
		o.noCache = true
		return nil
	}
}

// WithSourceDateEpoch sets the build's time: the image's and its history's creation
// time, and the latest modification time of any file a step adds (later ones are
// clamped to it). The default is $SOURCE_DATE_EPOCH if set, else 1970-01-01 UTC, so
// that building twice gives the same image.
func WithSourceDateEpoch(t time.Time) Option {
	return func(o *options) error {
		if t.Before(time.Unix(0, 0)) {
			return fmt.Errorf("source date epoch %s is before 1970", t)
		}
		u := t.UTC().Truncate(time.Second)
		o.epoch = &u
		return nil
	}
}

// WithCompressionLevel sets the gzip level (1 to 9) of new layers. Layers compress in
// parallel 1 MiB blocks, so the output depends on the level and the compressor's
// version but not on the number of cores. The default is DefaultCompressionLevel (1).
func WithCompressionLevel(level int) Option {
	return func(o *options) error {
		if level < gzip.BestSpeed || level > gzip.BestCompression {
			return fmt.Errorf("compression level %d out of range 1-9", level)
		}
		o.level = level
		return nil
	}
}

// WithConcurrency sets how many blocks of a layer compress at once. The default is
// GOMAXPROCS.
func WithConcurrency(n int) Option {
	return func(o *options) error {
		if n <= 0 {
			return fmt.Errorf("concurrency must be positive, got %d", n)
		}
		o.concurrency = n
		return nil
	}
}

// WithRunner sets what executes RUN steps. The default fails every RUN step with
// ErrRunUnavailable.
func WithRunner(r Runner) Option {
	return func(o *options) error {
		if r == nil {
			return errors.New("runner is nil")
		}
		o.runner = r
		return nil
	}
}

// WithLogger sets where warnings and debug messages go. The default discards them.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return errors.New("logger is nil")
		}
		o.log = l
		return nil
	}
}

// WithProgress sets a function called as steps start, advance and finish, and as
// blobs upload. It is called from the building goroutine and must not block for long.
// The default reports nothing.
func WithProgress(f func(Progress)) Option {
	return func(o *options) error {
		o.progress = f
		return nil
	}
}

// WithKeychain sets the credentials for pulling base images and pushing. The default
// is authn.DefaultKeychain (docker's config.json and credential helpers).
func WithKeychain(k authn.Keychain) Option {
	return func(o *options) error {
		if k == nil {
			return errors.New("keychain is nil")
		}
		o.keychain = k
		return nil
	}
}

// WithPlatform sets the platform of base images picked from an index and of a
// scratch image. A Dockerfile's FROM --platform overrides it for that image. The
// default is linux on the running architecture.
func WithPlatform(p v1.Platform) Option {
	return func(o *options) error {
		if p.OS == "" || p.Architecture == "" {
			return fmt.Errorf("platform %q needs an OS and an architecture", p.String())
		}
		o.platform = &p
		return nil
	}
}

// WithBuildArg sets a Dockerfile build argument (docker build --build-arg). The
// default is the Dockerfile's own defaults.
func WithBuildArg(name, value string) Option {
	return func(o *options) error {
		if name == "" {
			return errors.New("build argument name is empty")
		}
		if o.buildArgs == nil {
			o.buildArgs = map[string]string{}
		}
		o.buildArgs[name] = value
		return nil
	}
}

// WithBaseImage makes a Dockerfile's FROM name (as written, after variable
// expansion) resolve to b instead of a registry, for example an OCI layout on an
// air-gapped cluster. The default resolves every FROM name in its registry.
func WithBaseImage(name string, b Base) Option {
	return func(o *options) error {
		if name == "" || b == nil {
			return errors.New("base image name and base must be set")
		}
		if o.bases == nil {
			o.bases = map[string]Base{}
		}
		o.bases[name] = b
		return nil
	}
}

// WithoutDockerignore ignores the context's .dockerignore file. The default applies
// it to ADD and COPY sources.
func WithoutDockerignore() Option {
	return func(o *options) error {
		o.dockerignore = false
		return nil
	}
}

// Progress reports a build's advance.
type Progress struct {
	// Step is the 1-based step, out of Steps; 0 for a push.
	Step, Steps int
	// Instruction is the step's instruction.
	Instruction string
	// Cached is set when the step's result came from the cache.
	Cached bool
	// Bytes counts the uncompressed bytes of the step's layer written so far, or the
	// bytes of a push uploaded so far (out of Total).
	Bytes, Total int64
	// Done is set in the step's last report.
	Done bool
}
