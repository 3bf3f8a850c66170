package singularity

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// DefaultName returns the file name Apptainer gives a container pulled from
// ref: "rdma_latest.sif" for myacr.azurecr.io/rdma:latest, or for FormatSIMG
// Singularity 2.x's "rdma-latest.simg".
func DefaultName(ref name.Reference, format Format) string {
	s := ref.String()
	if t, ok := ref.(name.Tag); ok {
		s = t.Context().String() + ":" + t.TagStr()
	}
	last := s[strings.LastIndex(s, "/")+1:]
	if format == FormatSIMG {
		return strings.ReplaceAll(last, ":", "-") + ".simg"
	}
	container, tag, ok := strings.Cut(last, ":")
	if !ok {
		tag = "latest"
	}
	tag, _, _ = strings.Cut(tag, ",")
	return container + "_" + tag + ".sif"
}

// envAuthenticator returns Apptainer's registry credentials from the
// environment: APPTAINER_DOCKER_USERNAME and _PASSWORD, else the SINGULARITY_
// pair, or nil when neither pair is set.
func envAuthenticator() authn.Authenticator {
	for _, prefix := range []string{"APPTAINER", "SINGULARITY"} {
		user, hasUser := os.LookupEnv(prefix + "_DOCKER_USERNAME")
		pass, hasPass := os.LookupEnv(prefix + "_DOCKER_PASSWORD")
		if hasUser && hasPass {
			return &authn.Basic{Username: user, Password: pass}
		}
	}
	return nil
}

func (o *options) remoteOptions(ctx context.Context) []remote.Option {
	ropts := []remote.Option{remote.WithContext(ctx), remote.WithPlatform(o.platform)}
	switch a := envAuthenticator(); {
	case o.envCreds && a != nil:
		ropts = append(ropts, remote.WithAuth(a))
	case o.auth != nil:
		ropts = append(ropts, remote.WithAuth(o.auth))
	default:
		ropts = append(ropts, remote.WithAuthFromKeychain(o.keychain))
	}
	if o.transport != nil {
		ropts = append(ropts, remote.WithTransport(o.transport))
	}
	return ropts
}

// Pull converts the image ref names into a container file at path and
// returns the path written. An empty path means DefaultName(ref) in the
// current directory, and an existing directory DefaultName(ref) in it. A
// multi-platform index is resolved to the image for WithPlatform. Layers and
// config are downloaded once into the blob cache and read from there, so
// pulling an image whose blobs are cached downloads nothing but its manifest.
// The output is written as Build writes it.
//
// By default credentials come from authn.DefaultKeychain (WithKeychain,
// WithAuthenticator, WithEnvCredentials), the platform is linux on the running
// architecture (WithPlatform), the cache is "hpcship" under os.UserCacheDir
// (WithCacheDir), and the output and its defaults are those of Build, with the
// reference as source (WithSource).
func Pull(ctx context.Context, ref name.Reference, path string, opts ...Option) (string, error) {
	o, err := newOptions("singularity.Pull", callPull, opts)
	if err != nil {
		return "", err
	}
	if o.cacheDir == "" {
		dir, err := os.UserCacheDir()
		if err != nil {
			return "", fmt.Errorf("finding the cache directory: %w (set one with WithCacheDir)", err)
		}
		o.cacheDir = filepath.Join(dir, "hpcship")
	}
	if path == "" {
		path = DefaultName(ref, o.format)
	} else if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		path = filepath.Join(path, DefaultName(ref, o.format))
	}

	desc, err := remote.Get(ref, o.remoteOptions(ctx)...)
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	img, err := desc.Image()
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	src := source{From: o.from, Name: ref.String(), Digest: desc.Digest.String()}
	if src.From == "" {
		src.From = ref.String()
	}
	img, err = cachedConfig(img, o.cacheDir)
	if err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	if err := build(ctx, img, path, src, o); err != nil {
		return "", fmt.Errorf("pulling %s: %w", ref, err)
	}
	return path, nil
}

// configCachedImage is an image whose config is read from the blob cache.
type configCachedImage struct {
	v1.Image
	config []byte
}

func (c configCachedImage) RawConfigFile() ([]byte, error) { return c.config, nil }

func (c configCachedImage) ConfigFile() (*v1.ConfigFile, error) {
	return v1.ParseConfigFile(bytes.NewReader(c.config))
}

func cachedConfig(img v1.Image, dir string) (v1.Image, error) {
	m, err := img.Manifest()
	if err != nil {
		return nil, err
	}
	p, err := cacheBlob(dir, m.Config.Digest, func() (io.ReadCloser, error) {
		b, err := img.RawConfigFile()
		if err != nil {
			return nil, err
		}
		return io.NopCloser(bytes.NewReader(b)), nil
	})
	if err != nil {
		return nil, err
	}
	b, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return configCachedImage{Image: img, config: b}, nil
}
