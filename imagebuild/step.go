package imagebuild

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Step is one instruction of a build. Steps are plain values; the types of this
// package that implement Step are Arg, Env, Label, Workdir, Add, Copy, Run,
// Entrypoint, Cmd, User, Expose, Volume, StopSignal, Shell and Healthcheck. Values in
// steps are used as they are: variable expansion is the Dockerfile front end's job.
type Step interface {
	// String is the instruction as the image history records it, e.g. "WORKDIR /app".
	String() string
	isStep()
}

// KeyValue is one KEY=VALUE pair of an ENV or LABEL instruction.
type KeyValue struct {
	Key, Value string
}

// Arg declares a build argument with its value. Build arguments are in the
// environment of RUN steps and in the cache key of every later step, but not in the
// image's configuration.
type Arg struct {
	Name, Value string
}

// Env sets environment variables in the image configuration, in order.
type Env struct {
	Vars []KeyValue
}

// Label sets labels in the image configuration.
type Label struct {
	Labels []KeyValue
}

// Workdir sets the working directory and creates it, with its missing parents, in a
// layer of its own (as BuildKit does). A relative Path resolves against the current
// working directory.
type Workdir struct {
	Path string
}

// Copy copies files and directories of the build context into the image, never
// extracting archives. Sources are paths relative to the context directory and may
// be glob patterns; a directory source copies its contents. Dest is a path in the
// image, relative to the working directory unless absolute; with several sources, or
// one ending in "/", it is a directory.
type Copy struct {
	Sources []string
	Dest    string
	// Chown is "user[:group]" by name or number; names are looked up in the image's
	// /etc/passwd and /etc/group. Empty means 0:0.
	Chown string
	// Chmod is an octal mode ("755") applied to every copied file and directory. Empty
	// keeps the source modes.
	Chmod string
}

// Add is Copy that also extracts local tar archives (uncompressed, gzip, bzip2, xz or
// zstd, recognised by content, not by name) into Dest. Remote URLs are not supported.
type Add struct {
	Sources []string
	Dest    string
	Chown   string
	Chmod   string
}

// Run runs a command in the image through the build's Runner. With Shell set, Args
// holds one command line that runs under the image's shell (SHELL, default
// ["/bin/sh", "-c"]); otherwise Args is the argv (exec form).
type Run struct {
	Args  []string
	Shell bool
}

// Entrypoint sets the image's entrypoint and, unless the same build sets CMD, clears
// an inherited command. Shell form as in Run.
type Entrypoint struct {
	Args  []string
	Shell bool
}

// Cmd sets the image's default command. Shell form as in Run.
type Cmd struct {
	Args  []string
	Shell bool
}

// User sets the user (and optionally ":group") that the image runs as.
type User struct {
	Name string
}

// Expose records ports ("80", "53/udp") the image listens on.
type Expose struct {
	Ports []string
}

// Volume records mount points of the image.
type Volume struct {
	Paths []string
}

// StopSignal sets the signal that stops the container ("SIGTERM", "9").
type StopSignal struct {
	Signal string
}

// Shell sets the shell that shell-form RUN, CMD and ENTRYPOINT use.
type Shell struct {
	Args []string
}

// Healthcheck records a health check in the image configuration. Test is
// ["NONE"] to disable an inherited check, ["CMD", args...] or ["CMD-SHELL", command].
// Zero durations and retries mean "inherit the runtime's default".
type Healthcheck struct {
	Test                           []string
	Interval, Timeout, StartPeriod time.Duration
	Retries                        int
}

func (Arg) isStep()         {}
func (Env) isStep()         {}
func (Label) isStep()       {}
func (Workdir) isStep()     {}
func (Copy) isStep()        {}
func (Add) isStep()         {}
func (Run) isStep()         {}
func (Entrypoint) isStep()  {}
func (Cmd) isStep()         {}
func (User) isStep()        {}
func (Expose) isStep()      {}
func (Volume) isStep()      {}
func (StopSignal) isStep()  {}
func (Shell) isStep()       {}
func (Healthcheck) isStep() {}

func (s Arg) String() string     { return "ARG " + s.Name + "=" + s.Value }
func (s Env) String() string     { return "ENV " + joinKV(s.Vars) }
func (s Label) String() string   { return "LABEL " + joinKV(s.Labels) }
func (s Workdir) String() string { return "WORKDIR " + s.Path }
func (s Copy) String() string    { return copyString("COPY", s.Sources, s.Dest, s.Chown, s.Chmod) }
func (s Add) String() string     { return copyString("ADD", s.Sources, s.Dest, s.Chown, s.Chmod) }
func (s Run) String() string     { return "RUN " + formString(s.Args, s.Shell) }
func (s Entrypoint) String() string {
	return "ENTRYPOINT " + formString(s.Args, s.Shell)
}
func (s Cmd) String() string        { return "CMD " + formString(s.Args, s.Shell) }
func (s User) String() string       { return "USER " + s.Name }
func (s Expose) String() string     { return "EXPOSE " + strings.Join(s.Ports, " ") }
func (s Volume) String() string     { return "VOLUME " + jsonList(s.Paths) }
func (s StopSignal) String() string { return "STOPSIGNAL " + s.Signal }
func (s Shell) String() string      { return "SHELL " + jsonList(s.Args) }
func (s Healthcheck) String() string {
	var b strings.Builder
	b.WriteString("HEALTHCHECK")
	for _, d := range []struct {
		flag string
		v    time.Duration
	}{{"interval", s.Interval}, {"timeout", s.Timeout}, {"start-period", s.StartPeriod}} {
		if d.v != 0 {
			fmt.Fprintf(&b, " --%s=%s", d.flag, d.v)
		}
	}
	if s.Retries != 0 {
		fmt.Fprintf(&b, " --retries=%d", s.Retries)
	}
	b.WriteString(" " + jsonList(s.Test))
	return b.String()
}

func joinKV(kvs []KeyValue) string {
	parts := make([]string, len(kvs))
	for i, kv := range kvs {
		parts[i] = kv.Key + "=" + kv.Value
	}
	return strings.Join(parts, " ")
}

func copyString(kw string, srcs []string, dest, chown, chmod string) string {
	var b strings.Builder
	b.WriteString(kw)
	if chown != "" {
		b.WriteString(" --chown=" + chown)
	}
	if chmod != "" {
		b.WriteString(" --chmod=" + chmod)
	}
	for _, s := range srcs {
		b.WriteString(" " + s)
	}
	b.WriteString(" " + dest)
	return b.String()
}

// formString renders exec form as Docker's history does (["a" "b"]) and shell form
// as the command line.
func formString(args []string, shell bool) string {
	if shell {
		return strings.Join(args, " ")
	}
	q := make([]string, len(args))
	for i, a := range args {
		q[i] = fmt.Sprintf("%q", a)
	}
	return "[" + strings.Join(q, " ") + "]"
}

func jsonList(v []string) string {
	if v == nil {
		v = []string{}
	}
	b, _ := json.Marshal(v) // a []string always marshals
	return string(b)
}
