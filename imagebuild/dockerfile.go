package imagebuild

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/hpcship/hpcship/internal/dockerfile"
)

// Dockerfile is a parsed Dockerfile: its base image and its instructions, checked
// but not yet expanded (variables such as $PATH may come from the base image).
type Dockerfile struct {
	// Base is the FROM image, after WithBaseImage substitutions.
	Base Base
	// Platform is FROM --platform, nil when not given.
	Platform *v1.Platform

	file      *dockerfile.File
	stage     []dockerfile.Instruction // the instructions after FROM
	metaArgs  []string                 // ARG values before FROM, KEY=VALUE
	buildArgs map[string]string
	opts      []Option
	log       func(msg string, args ...any)
}

// ParseDockerfile reads a Dockerfile and checks that every instruction is one
// imagebuild implements: FROM (one stage, scratch, --platform, ARG before FROM), ARG,
// ENV, LABEL, WORKDIR, ADD and COPY (--chown, --chmod), RUN, ENTRYPOINT, CMD, USER,
// EXPOSE, VOLUME, STOPSIGNAL, SHELL and HEALTHCHECK. Anything else (a second FROM,
// COPY --from, ONBUILD, RUN --mount, here-documents, remote sources, unknown
// instructions) is a *StepError naming the line, matching ErrUnsupportedInstruction;
// malformed instructions match ErrSyntax. Build arguments come from WithBuildArg, FROM
// substitutions from WithBaseImage; parser warnings go to WithLogger.
func ParseDockerfile(r io.Reader, opts ...Option) (*Dockerfile, error) {
	o, err := makeOptions(opts)
	if err != nil {
		return nil, err
	}
	f, err := dockerfile.Parse(r)
	if err != nil {
		var se *dockerfile.SyntaxError
		if errors.As(err, &se) {
			return nil, &StepError{Index: -1, Line: se.Line, Err: fmt.Errorf("%w: %s", ErrSyntax, se.Msg)}
		}
		return nil, err
	}
	for _, w := range f.Warnings {
		o.log.Warn("dockerfile: "+w.Message, "line", w.Line)
	}
	d := &Dockerfile{file: f, buildArgs: o.buildArgs, opts: opts, log: o.log.Warn}
	meta := platformArgs(o.platform)
	from := -1
	for i, in := range f.Instructions {
		fail := func(err error) error {
			return &StepError{Index: -1, Line: in.Line, Instruction: in.Original, Err: err}
		}
		if in.Command == "from" {
			if from >= 0 {
				return nil, fail(fmt.Errorf("%w: a second FROM (multi-stage builds are not supported)", ErrUnsupportedInstruction))
			}
			from = i
			if err := d.from(in, meta, o); err != nil {
				return nil, fail(err)
			}
			continue
		}
		if from < 0 {
			if in.Command != "arg" {
				return nil, fail(fmt.Errorf("%w: %s before FROM", ErrSyntax, strings.ToUpper(in.Command)))
			}
			if err := checkFlags(in); err != nil {
				return nil, fail(err)
			}
			for _, a := range in.Args {
				name, def, hasDef := strings.Cut(a, "=")
				v, given := o.buildArgs[name]
				if !given && hasDef {
					if v, err = f.Expand(def, meta); err != nil {
						return nil, fail(fmt.Errorf("%w: %v", ErrSyntax, err))
					}
					given = true
				}
				if given {
					meta = append(meta, name+"="+v)
					d.metaArgs = append(d.metaArgs, name+"="+v)
				}
			}
			continue
		}
		if err := checkInstruction(in); err != nil {
			return nil, fail(err)
		}
		d.stage = append(d.stage, in)
	}
	if from < 0 {
		return nil, &StepError{Index: -1, Err: fmt.Errorf("%w: no FROM", ErrSyntax)}
	}
	return d, nil
}

// platformArgs are the automatic platform build arguments.
func platformArgs(p *v1.Platform) []string {
	build := runtime.GOOS + "/" + runtime.GOARCH
	return []string{
		"TARGETPLATFORM=" + p.String(), "TARGETOS=" + p.OS, "TARGETARCH=" + p.Architecture, "TARGETVARIANT=" + p.Variant,
		"BUILDPLATFORM=" + build, "BUILDOS=" + runtime.GOOS, "BUILDARCH=" + runtime.GOARCH,
	}
}

func (d *Dockerfile) from(in dockerfile.Instruction, meta []string, o *options) error {
	flags, err := parseFlags(in, "platform")
	if err != nil {
		return err
	}
	if len(in.Args) != 1 && (len(in.Args) != 3 || !strings.EqualFold(in.Args[1], "as")) {
		return fmt.Errorf("%w: FROM takes an image and optionally AS name", ErrSyntax)
	}
	image, err := d.file.Expand(in.Args[0], meta)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrSyntax, err)
	}
	if image == "" {
		return fmt.Errorf("%w: FROM names no image", ErrSyntax)
	}
	if p, ok := flags["platform"]; ok {
		ps, err := d.file.Expand(p, meta)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrSyntax, err)
		}
		plat, err := v1.ParsePlatform(ps)
		if err != nil || plat.OS == "" || plat.Architecture == "" {
			return fmt.Errorf("%w: --platform=%s", ErrSyntax, ps)
		}
		d.Platform = plat
	}
	switch b, ok := o.bases[image]; {
	case ok:
		d.Base = b
	case image == "scratch":
		d.Base = Scratch()
	default:
		d.Base = FromReference(image)
	}
	return nil
}

// allowedFlags lists, per instruction, the flags imagebuild implements.
func allowedFlags(cmd string) []string {
	switch cmd {
	case "add", "copy":
		return []string{"chown", "chmod"}
	case "healthcheck":
		return []string{"interval", "timeout", "start-period", "retries"}
	}
	return nil
}

// checkInstruction rejects what imagebuild does not implement, before any step runs.
func checkInstruction(in dockerfile.Instruction) error {
	switch in.Command {
	case "arg", "env", "label", "workdir", "add", "copy", "run", "entrypoint", "cmd", "user", "expose",
		"volume", "stopsignal", "shell", "healthcheck":
	case "onbuild":
		return fmt.Errorf("%w: ONBUILD", ErrUnsupportedInstruction)
	case "maintainer":
		return fmt.Errorf("%w: MAINTAINER is deprecated (use LABEL maintainer=NAME)", ErrUnsupportedInstruction)
	default:
		return fmt.Errorf("%w: unknown instruction %s", ErrUnsupportedInstruction, strings.ToUpper(in.Command))
	}
	if in.Heredoc {
		return fmt.Errorf("%w: here-documents", ErrUnsupportedInstruction)
	}
	if err := checkFlags(in); err != nil {
		return err
	}
	switch in.Command {
	case "arg", "workdir", "user", "stopsignal", "label", "env", "expose":
		if len(in.Args) == 0 {
			return fmt.Errorf("%w: %s needs an argument", ErrSyntax, strings.ToUpper(in.Command))
		}
	case "add", "copy":
		if len(in.Args) < 2 {
			return fmt.Errorf("%w: %s needs a source and a destination", ErrSyntax, strings.ToUpper(in.Command))
		}
	case "shell":
		if !in.JSON || len(in.Args) == 0 {
			return fmt.Errorf("%w: SHELL needs a JSON array such as [\"/bin/bash\", \"-c\"]", ErrSyntax)
		}
	case "run", "cmd", "entrypoint":
		if in.Command == "run" && len(in.Args) == 0 {
			return fmt.Errorf("%w: RUN needs a command", ErrSyntax)
		}
	case "healthcheck":
		if len(in.Args) == 0 {
			return fmt.Errorf("%w: HEALTHCHECK needs NONE or CMD", ErrSyntax)
		}
		switch strings.ToUpper(in.Args[0]) {
		case "NONE":
			if len(in.Args) > 1 || len(in.Flags) > 0 {
				return fmt.Errorf("%w: HEALTHCHECK NONE takes no arguments", ErrSyntax)
			}
		case "CMD":
			if len(in.Args) < 2 {
				return fmt.Errorf("%w: HEALTHCHECK CMD needs a command", ErrSyntax)
			}
		default:
			return fmt.Errorf("%w: HEALTHCHECK needs NONE or CMD, not %s", ErrSyntax, in.Args[0])
		}
	}
	return nil
}

func checkFlags(in dockerfile.Instruction) error {
	_, err := parseFlags(in, allowedFlags(in.Command)...)
	return err
}

// parseFlags reads "--name=value" flags, rejecting those not allowed.
func parseFlags(in dockerfile.Instruction, allowed ...string) (map[string]string, error) {
	out := map[string]string{}
	for _, f := range in.Flags {
		name, value, _ := strings.Cut(strings.TrimPrefix(f, "--"), "=")
		if !slices.Contains(allowed, name) {
			return nil, fmt.Errorf("%w: %s %s", ErrUnsupportedInstruction, strings.ToUpper(in.Command), f)
		}
		out[name] = value
	}
	return out, nil
}

// Steps expands the Dockerfile's variables, with baseEnv (KEY=VALUE, the base
// image's environment) as the environment before the first instruction, and returns
// the steps in order.
func (d *Dockerfile) Steps(baseEnv []string) ([]Step, error) {
	ls, err := d.located(baseEnv)
	if err != nil {
		return nil, err
	}
	steps := make([]Step, len(ls))
	for i, l := range ls {
		steps[i] = l.step
	}
	return steps, nil
}

func (d *Dockerfile) located(baseEnv []string) ([]located, error) {
	env := slices.Clone(baseEnv)
	var args []string // declared build arguments with values, KEY=VALUE
	var out []located
	used := map[string]bool{}
	var stage []dockerfile.Instruction
	for _, in := range d.stage { // ARG a b declares a and b in turn
		if in.Command != "arg" || len(in.Args) < 2 {
			stage = append(stage, in)
			continue
		}
		for _, a := range in.Args {
			one := in
			one.Args = []string{a}
			stage = append(stage, one)
		}
	}
	for _, in := range stage {
		vars := append(slices.Clone(args), env...) // ENV wins over ARG
		expand := func(w string) (string, error) {
			s, err := d.file.Expand(w, vars)
			if err != nil {
				return "", fmt.Errorf("%w: %v", ErrSyntax, err)
			}
			return s, nil
		}
		step, err := d.step(in, expand, &env, &args, used)
		if err != nil {
			return nil, &StepError{Index: len(out), Line: in.Line, Instruction: in.Original, Err: err}
		}
		if step != nil {
			out = append(out, located{step: step, line: in.Line, text: in.Original})
		}
	}
	for name := range d.buildArgs {
		if !used[name] && !slices.ContainsFunc(d.metaArgs, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }) {
			d.log("build argument not declared by any ARG", "name", name)
		}
	}
	return out, nil
}

func expandAll(ws []string, expand func(string) (string, error)) ([]string, error) {
	out := make([]string, len(ws))
	for i, w := range ws {
		var err error
		if out[i], err = expand(w); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// step turns one checked instruction into a step; ARG without a value gives none.
func (d *Dockerfile) step(in dockerfile.Instruction, expand func(string) (string, error), env, args *[]string, used map[string]bool) (Step, error) {
	flags, err := parseFlags(in, allowedFlags(in.Command)...)
	if err != nil {
		return nil, err
	}
	for k, v := range flags {
		if flags[k], err = expand(v); err != nil {
			return nil, err
		}
	}
	switch in.Command {
	case "arg":
		name, def, hasDef := strings.Cut(in.Args[0], "=")
		used[name] = true
		v, ok := d.buildArgs[name]
		if !ok && hasDef {
			if v, err = expand(def); err != nil {
				return nil, err
			}
			ok = true
		}
		if !ok {
			if i := slices.IndexFunc(d.metaArgs, func(kv string) bool { return strings.HasPrefix(kv, name+"=") }); i >= 0 {
				v, ok = strings.TrimPrefix(d.metaArgs[i], name+"="), true
			}
			for _, kv := range platformArgs(platformOr(d.Platform)) {
				if strings.HasPrefix(kv, name+"=") && !ok {
					v, ok = strings.TrimPrefix(kv, name+"="), true
				}
			}
		}
		if !ok {
			return nil, nil
		}
		*args = slices.DeleteFunc(*args, func(kv string) bool { return strings.HasPrefix(kv, name+"=") })
		*args = append(*args, name+"="+v)
		return Arg{Name: name, Value: v}, nil
	case "env", "label":
		if len(in.Args)%3 != 0 {
			return nil, fmt.Errorf("%w: malformed %s", ErrSyntax, strings.ToUpper(in.Command))
		}
		var kvs []KeyValue
		for i := 0; i < len(in.Args); i += 3 {
			k, err := expand(in.Args[i])
			if err != nil {
				return nil, err
			}
			v, err := expand(in.Args[i+1])
			if err != nil {
				return nil, err
			}
			kvs = append(kvs, KeyValue{k, v})
		}
		if in.Command == "label" {
			return Label{Labels: kvs}, nil
		}
		for _, kv := range kvs {
			*env = setEnv(*env, kv.Key, kv.Value)
		}
		return Env{Vars: kvs}, nil
	case "workdir":
		p, err := expand(in.Args[0])
		if err != nil {
			return nil, err
		}
		return Workdir{Path: p}, nil
	case "user":
		u, err := expand(in.Args[0])
		if err != nil {
			return nil, err
		}
		return User{Name: u}, nil
	case "stopsignal":
		s, err := expand(in.Args[0])
		if err != nil {
			return nil, err
		}
		return StopSignal{Signal: s}, nil
	case "add", "copy":
		words, err := expandAll(in.Args, expand)
		if err != nil {
			return nil, err
		}
		srcs, dest := words[:len(words)-1], words[len(words)-1]
		if in.Command == "add" {
			return Add{Sources: srcs, Dest: dest, Chown: flags["chown"], Chmod: flags["chmod"]}, nil
		}
		return Copy{Sources: srcs, Dest: dest, Chown: flags["chown"], Chmod: flags["chmod"]}, nil
	case "run":
		return Run{Args: slices.Clone(in.Args), Shell: !in.JSON}, nil
	case "cmd":
		return Cmd{Args: slices.Clone(in.Args), Shell: !in.JSON}, nil
	case "entrypoint":
		return Entrypoint{Args: slices.Clone(in.Args), Shell: !in.JSON}, nil
	case "shell":
		return Shell{Args: slices.Clone(in.Args)}, nil
	case "expose":
		ports, err := expandAll(in.Args, expand)
		if err != nil {
			return nil, err
		}
		for _, p := range ports {
			if _, err := normalizePort(p); err != nil {
				return nil, err
			}
		}
		return Expose{Ports: ports}, nil
	case "volume":
		paths, err := expandAll(in.Args, expand)
		if err != nil {
			return nil, err
		}
		if len(paths) == 0 {
			return nil, fmt.Errorf("%w: VOLUME needs a path", ErrSyntax)
		}
		return Volume{Paths: paths}, nil
	case "healthcheck":
		return healthcheck(in, flags)
	}
	return nil, fmt.Errorf("%w: %s", ErrUnsupportedInstruction, in.Command)
}

func platformOr(p *v1.Platform) *v1.Platform {
	if p != nil {
		return p
	}
	return &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

func healthcheck(in dockerfile.Instruction, flags map[string]string) (Step, error) {
	if strings.EqualFold(in.Args[0], "NONE") {
		return Healthcheck{Test: []string{"NONE"}}, nil
	}
	h := Healthcheck{Test: append([]string{"CMD"}, in.Args[1:]...)}
	if !in.JSON {
		h.Test = []string{"CMD-SHELL", strings.Join(in.Args[1:], " ")}
	}
	for name, dst := range map[string]*time.Duration{"interval": &h.Interval, "timeout": &h.Timeout, "start-period": &h.StartPeriod} {
		if v, ok := flags[name]; ok {
			dur, err := time.ParseDuration(v)
			if err != nil || dur < 0 {
				return nil, fmt.Errorf("%w: --%s=%s", ErrSyntax, name, v)
			}
			*dst = dur
		}
	}
	if v, ok := flags["retries"]; ok {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			return nil, fmt.Errorf("%w: --retries=%s", ErrSyntax, v)
		}
		h.Retries = n
	}
	return h, nil
}

// Build builds the Dockerfile. Options are those given to ParseDockerfile followed by
// opts; see Build for the defaults. The base image's environment is the starting
// point of variable expansion.
func (d *Dockerfile) Build(ctx context.Context, opts ...Option) (v1.Image, error) {
	o, err := makeOptions(append(slices.Clone(d.opts), opts...))
	if err != nil {
		return nil, err
	}
	if o.contextDir == "" {
		o.contextDir = "."
	}
	platform := o.platform
	if d.Platform != nil {
		platform = d.Platform
	}
	baseImg, err := d.Base.image(ctx, o, platform)
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + d.Base.String(), Err: err}
	}
	cf, err := baseImg.ConfigFile()
	if err != nil {
		return nil, &StepError{Index: -1, Instruction: "FROM " + d.Base.String(), Err: err}
	}
	steps, err := d.located(cf.Config.Env)
	if err != nil {
		return nil, err
	}
	return build(ctx, FromImage(baseImg), platform, steps, o)
}

// BuildDockerfile parses and builds the Dockerfile at path, with the Dockerfile's
// directory as the build context unless WithContextDir says otherwise. See Build for
// the defaults.
func BuildDockerfile(ctx context.Context, path string, opts ...Option) (v1.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	opts = append([]Option{WithContextDir(filepath.Dir(path))}, opts...)
	d, err := ParseDockerfile(f, opts...)
	if err != nil {
		return nil, err
	}
	return d.Build(ctx)
}
