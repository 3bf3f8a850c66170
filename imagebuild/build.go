package imagebuild

import (
	"archive/tar"
	"context"
	"fmt"
	"path"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/hpcship/hpcship/internal/rootfs"
)

// located is a step with where it came from.
type located struct {
	step Step
	line int    // Dockerfile line, 0 for steps given in code
	text string // the instruction as written; the step's String for steps given in code
}

// Build runs steps on base and returns the image, whose new layers are files in the
// cache directory (see WithCacheDir).
//
// By default, ADD and COPY sources are relative to the current directory
// (WithContextDir), with its .dockerignore applied (WithoutDockerignore); steps are
// taken from the cache under os.UserCacheDir when their inputs did not change
// (WithCacheDir, WithoutCache); times are $SOURCE_DATE_EPOCH or 1970
// (WithSourceDateEpoch); layers are gzip level 1 compressed on all cores
// (WithCompressionLevel, WithConcurrency); RUN fails with ErrRunUnavailable
// (WithRunner); registry bases are pulled with authn.DefaultKeychain (WithKeychain) for
// linux on the running architecture (WithPlatform); nothing is logged (WithLogger)
// and no progress is reported (WithProgress).
//
// A failing step is a *StepError.
func Build(ctx context.Context, base Base, steps []Step, opts ...Option) (v1.Image, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	if o.contextDir == "" {
		o.contextDir = "."
	}
	ls := make([]located, len(steps))
	for i, s := range steps {
		if s == nil {
			return nil, &StepError{Index: i, Err: fmt.Errorf("%w: nil step", ErrSyntax)}
		}
		ls[i] = located{step: s, text: s.String()}
	}
	return build(ctx, base, o.platform, ls, o)
}

// builder holds the state of one build between steps.
type builder struct {
	o        *options
	cache    *cache
	lw       *layerWriter
	cfg      v1.Config
	layers   []v1.Layer // base layers, then the new ones
	adds     []mutate.Addendum
	chain    string     // key of the image so far: base digest, then every step and its content
	args     []KeyValue // build arguments declared so far, in order
	cmdSet   bool
	ignore   *ignoreMatcher
	tree     *rootfs.Tree // the root filesystem of layers[:treeN], built on demand
	treeN    int
	index    int
	total    int
	instText string
	state    *buildState
}

func build(ctx context.Context, base Base, platform *v1.Platform, steps []located, o *options) (_ v1.Image, err error) {
	baseImg, err := base.image(ctx, o, platform)
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + base.String(), Err: err}
	}
	baseDigest, err := baseImg.Digest()
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + base.String(), Err: err}
	}
	cf, err := baseImg.ConfigFile()
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + base.String(), Err: err}
	}
	layers, err := baseImg.Layers()
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + base.String(), Err: err}
	}
	mt, err := baseImg.MediaType()
	if err != nil {
		return nil, err
	}
	layerType := types.OCILayer
	if mt == types.DockerManifestSchema2 {
		layerType = types.DockerLayer
	}
	c := &cache{dir: o.cacheDir}
	b := &builder{
		o:      o,
		cache:  c,
		lw:     &layerWriter{blobDir: c.blobDir(), level: o.level, concurrency: o.concurrency, mediaType: layerType},
		cfg:    *cf.Config.DeepCopy(),
		layers: layers,
		chain:  keyOf(cacheFormat, "FROM", baseDigest.String()),
		total:  len(steps),
		state:  &buildState{},
	}
	defer func() {
		if serr := b.state.end(); serr != nil && err == nil {
			err = fmt.Errorf("cleaning up after RUN: %w", serr)
		}
	}()
	for i, s := range steps {
		b.index, b.instText = i, s.text
		b.report(Progress{})
		cached, err := b.apply(ctx, s.step)
		if err != nil {
			return nil, &StepError{Index: i, Line: s.line, Instruction: s.text, Err: err}
		}
		b.report(Progress{Cached: cached, Done: true})
	}
	img, err := mutate.Append(baseImg, b.adds...)
	if err != nil {
		return nil, err
	}
	out, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	out = out.DeepCopy()
	out.Config = b.cfg
	out.Created = v1.Time{Time: *o.epoch}
	out.Author = ""
	if out.OS == "" {
		out.OS, out.Architecture, out.Variant = platform.OS, platform.Architecture, platform.Variant
	}
	return mutate.ConfigFile(img, out)
}

func (b *builder) report(p Progress) {
	if b.o.progress == nil {
		return
	}
	p.Step, p.Steps, p.Instruction = b.index+1, b.total, b.instText
	b.o.progress(p)
}

// history appends a history entry, and the layer if there is one.
func (b *builder) history(createdBy string, l v1.Layer) {
	b.adds = append(b.adds, mutate.Addendum{
		Layer: l,
		History: v1.History{
			Created:    v1.Time{Time: *b.o.epoch},
			CreatedBy:  createdBy,
			EmptyLayer: l == nil,
		},
		MediaType: b.lw.mediaType,
	})
	if l != nil {
		b.layers = append(b.layers, l)
	}
}

// configStep records a step that changes only the configuration.
func (b *builder) configStep(s Step) {
	b.chain = keyOf(b.chain, s.String())
	b.history(s.String(), nil)
}

// apply runs one step and reports whether its layer came from the cache.
func (b *builder) apply(ctx context.Context, step Step) (bool, error) {
	if err := ctx.Err(); err != nil {
		return false, err
	}
	switch s := step.(type) {
	case Arg:
		if s.Name == "" {
			return false, fmt.Errorf("%w: ARG without a name", ErrSyntax)
		}
		b.args = slices.DeleteFunc(b.args, func(kv KeyValue) bool { return kv.Key == s.Name })
		b.args = append(b.args, KeyValue{s.Name, s.Value})
		b.chain = keyOf(b.chain, s.String())
	case Env:
		for _, kv := range s.Vars {
			if kv.Key == "" {
				return false, fmt.Errorf("%w: ENV with an empty name", ErrSyntax)
			}
			b.cfg.Env = setEnv(b.cfg.Env, kv.Key, kv.Value)
		}
		b.configStep(s)
	case Label:
		if b.cfg.Labels == nil {
			b.cfg.Labels = map[string]string{}
		}
		for _, kv := range s.Labels {
			b.cfg.Labels[kv.Key] = kv.Value
		}
		b.configStep(s)
	case Workdir:
		return b.workdir(ctx, s)
	case Copy:
		return b.copyStep(ctx, s, copySpec{sources: s.Sources, dest: s.Dest, chown: s.Chown, chmod: s.Chmod})
	case Add:
		return b.copyStep(ctx, s, copySpec{sources: s.Sources, dest: s.Dest, chown: s.Chown, chmod: s.Chmod, extract: true})
	case Run:
		return b.run(ctx, s)
	case Entrypoint:
		b.cfg.Entrypoint = b.form(s.Args, s.Shell)
		b.warnExec("ENTRYPOINT", s.Args, s.Shell)
		if !b.cmdSet {
			b.cfg.Cmd = nil
		}
		b.configStep(s)
	case Cmd:
		b.cfg.Cmd = b.form(s.Args, s.Shell)
		b.warnExec("CMD", s.Args, s.Shell)
		b.cmdSet = true
		b.configStep(s)
	case User:
		if s.Name == "" {
			return false, fmt.Errorf("%w: USER without a name", ErrSyntax)
		}
		b.cfg.User = s.Name
		b.configStep(s)
	case Expose:
		if b.cfg.ExposedPorts == nil {
			b.cfg.ExposedPorts = map[string]struct{}{}
		}
		for _, p := range s.Ports {
			port, err := normalizePort(p)
			if err != nil {
				return false, err
			}
			b.cfg.ExposedPorts[port] = struct{}{}
		}
		b.configStep(s)
	case Volume:
		if b.cfg.Volumes == nil {
			b.cfg.Volumes = map[string]struct{}{}
		}
		for _, p := range s.Paths {
			if p == "" {
				return false, fmt.Errorf("%w: VOLUME with an empty path", ErrSyntax)
			}
			b.cfg.Volumes[p] = struct{}{}
		}
		b.configStep(s)
	case StopSignal:
		if s.Signal == "" {
			return false, fmt.Errorf("%w: STOPSIGNAL without a signal", ErrSyntax)
		}
		b.cfg.StopSignal = s.Signal
		b.configStep(s)
	case Shell:
		if len(s.Args) == 0 {
			return false, fmt.Errorf("%w: SHELL needs at least one argument", ErrSyntax)
		}
		b.cfg.Shell = slices.Clone(s.Args)
		b.configStep(s)
	case Healthcheck:
		if len(s.Test) == 0 || (s.Test[0] != "NONE" && s.Test[0] != "CMD" && s.Test[0] != "CMD-SHELL") {
			return false, fmt.Errorf("%w: HEALTHCHECK test must start with NONE, CMD or CMD-SHELL", ErrSyntax)
		}
		b.cfg.Healthcheck = &v1.HealthConfig{Test: slices.Clone(s.Test), Interval: s.Interval, Timeout: s.Timeout,
			StartPeriod: s.StartPeriod, Retries: s.Retries}
		b.configStep(s)
	default:
		return false, fmt.Errorf("%w: step type %T", ErrUnsupportedInstruction, step)
	}
	return false, nil
}

// shell is the image's shell for shell-form commands.
func (b *builder) shell() []string {
	if len(b.cfg.Shell) > 0 {
		return slices.Clone(b.cfg.Shell)
	}
	return []string{"/bin/sh", "-c"}
}

// form turns a command in exec or shell form into an argv.
func (b *builder) form(args []string, shell bool) []string {
	if shell {
		return append(b.shell(), strings.Join(args, " "))
	}
	return slices.Clone(args)
}

// shellBuiltins are words that name no program, so an exec-form command starting
// with one fails when the container starts.
var shellBuiltins = []string{"exec", "cd", "export", "source", ".", "set", "unset", "eval", "ulimit", "umask"}

// warnExec warns about exec-form commands that look written for a shell: they are
// kept as written, as Docker keeps them.
func (b *builder) warnExec(kw string, args []string, shell bool) {
	if shell || len(args) == 0 {
		return
	}
	if slices.Contains(shellBuiltins, args[0]) {
		b.o.log.Warn(kw+" in exec form starts with a shell builtin, which no program implements; "+
			"kept as written (use the shell form, or a program path, to run it)",
			"step", b.index+1, "instruction", b.instText, "argv0", args[0])
	}
	for _, a := range args {
		if strings.Contains(a, "$") {
			b.o.log.Warn(kw+" in exec form is not expanded by a shell: \"$\" stays literal; kept as written",
				"step", b.index+1, "instruction", b.instText, "arg", a)
			break
		}
	}
}

// setEnv sets key=value in env, replacing an earlier value in place.
func setEnv(env []string, key, value string) []string {
	env = slices.Clone(env)
	for i, e := range env {
		if k, _, _ := strings.Cut(e, "="); k == key {
			env[i] = key + "=" + value
			return env
		}
	}
	return append(env, key+"="+value)
}

func normalizePort(p string) (string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if port == "" || strings.Trim(port, "0123456789-") != "" || (proto != "tcp" && proto != "udp" && proto != "sctp") {
		return "", fmt.Errorf("%w: invalid port %q", ErrSyntax, p)
	}
	return port + "/" + proto, nil
}

// workingDir is the image's working directory, "/" when unset.
func (b *builder) workingDir() string {
	if b.cfg.WorkingDir == "" {
		return "/"
	}
	return b.cfg.WorkingDir
}

// inImage resolves p against the working directory; the result is absolute and
// clean, and keeps a trailing slash.
func (b *builder) inImage(p string) string {
	slash := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	if !path.IsAbs(p) {
		p = path.Join(b.workingDir(), p)
	}
	p = path.Clean(p)
	if slash && p != "/" {
		p += "/"
	}
	return p
}

func (b *builder) workdir(ctx context.Context, s Workdir) (bool, error) {
	if s.Path == "" {
		return false, fmt.Errorf("%w: WORKDIR without a path", ErrSyntax)
	}
	p := strings.TrimSuffix(b.inImage(s.Path), "/")
	if p == "" {
		p = "/"
	}
	b.cfg.WorkingDir = p
	canon := Workdir{Path: p}.String()
	return b.layerStep(ctx, canon, s.String(), nil, func(tw *tar.Writer) error {
		w := &entryWriter{ctx: ctx, tw: tw, epoch: *b.o.epoch, written: map[string]bool{}}
		return w.dirAll(strings.TrimPrefix(p, "/"))
	})
}

// layerStep takes a step's layer from the cache, or makes it with fill and caches
// it. lookup is what identifies the step besides the image so far: its canonical
// instruction and a fingerprint of its inputs' metadata. After the step the image's
// key covers the layer's content (its diffID), not the fingerprint, so touching an
// input rebuilds this step only.
func (b *builder) layerStep(ctx context.Context, canon, createdBy string, fingerprint []string, fill func(tw *tar.Writer) error) (bool, error) {
	key := keyOf(append([]string{b.chain, canon, fmt.Sprint(b.o.level), b.o.epoch.String(), string(b.lw.mediaType)}, fingerprint...)...)
	l, found := (*fileLayer)(nil), false
	if !b.o.noCache {
		l, found = b.cache.lookup(key)
	}
	cached := found && l != nil
	if !cached {
		var err error
		l, err = b.lw.write(ctx, fill, func(n int64) { b.report(Progress{Bytes: n}) })
		if err != nil {
			return false, err
		}
		if err := b.cache.store(ctx, key, l); err != nil {
			return false, fmt.Errorf("caching the layer: %w", err)
		}
	}
	b.chain = keyOf(b.chain, canon, l.diffID.String())
	b.history(createdBy, l)
	return cached, nil
}

func (b *builder) run(ctx context.Context, s Run) (bool, error) {
	if len(s.Args) == 0 {
		return false, fmt.Errorf("%w: RUN without a command", ErrSyntax)
	}
	argv := b.form(s.Args, s.Shell)
	env := slices.Clone(b.cfg.Env)
	for _, kv := range b.args {
		if !slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, kv.Key+"=") }) {
			env = append(env, kv.Key+"="+kv.Value)
		}
	}
	createdBy := "RUN " + strings.Join(argv, " ")
	parts := append([]string{b.chain, "RUN", b.workingDir(), b.cfg.User, fmt.Sprint(b.o.level), b.o.epoch.String()}, argv...)
	key := keyOf(append(parts, env...)...)
	if !b.o.noCache {
		if l, found := b.cache.lookup(key); found {
			b.chain = keyOf(key, "done")
			if l == nil {
				b.history(createdBy, nil)
			} else {
				b.chain = keyOf(key, l.diffID.String())
				b.history(createdBy, l)
			}
			return true, nil
		}
	}
	req := RunRequest{
		Argv: argv, Env: env, WorkingDir: b.workingDir(), User: b.cfg.User, Shell: b.shell(),
		Layers: slices.Clone(b.layers), Epoch: *b.o.epoch,
		WriteLayer: func(ctx context.Context, fill func(tw *tar.Writer) error) (v1.Layer, error) {
			return b.lw.write(ctx, fill, nil)
		},
		CacheDir: b.o.cacheDir,
		Log:      b.o.log,
		state:    b.state,
	}
	got, err := b.o.runner.Run(ctx, req)
	if err != nil {
		return false, err
	}
	var l *fileLayer
	if got != nil {
		if l, err = b.cache.adopt(got); err != nil {
			return false, fmt.Errorf("storing the RUN layer: %w", err)
		}
	}
	if err := b.cache.store(ctx, key, l); err != nil {
		return false, fmt.Errorf("caching the layer: %w", err)
	}
	b.chain = keyOf(key, "done")
	if l == nil {
		b.history(createdBy, nil)
	} else {
		b.chain = keyOf(key, l.diffID.String())
		b.history(createdBy, l)
	}
	return false, nil
}

// rootTree is the root filesystem of the image so far, flattened on first use and
// again after new layers.
func (b *builder) rootTree(ctx context.Context) (*rootfs.Tree, error) {
	if b.tree != nil && b.treeN == len(b.layers) {
		return b.tree, nil
	}
	ls := make([]rootfs.Layer, len(b.layers))
	for i, l := range b.layers {
		ls[i] = l
	}
	t, err := rootfs.Flatten(ctx, ls)
	if err != nil {
		return nil, fmt.Errorf("reading the image's files: %w", err)
	}
	b.tree, b.treeN = t, len(b.layers)
	return t, nil
}
