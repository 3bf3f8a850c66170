package singularity

import (
	"errors"
	"fmt"
	"strings"
)

// Runtime names the container runtime binary a job runs: Singularity or
// Apptainer. Their exec command lines are the same; their environment
// variables differ in prefix.
type Runtime string

// The runtimes.
const (
	Singularity Runtime = "singularity"
	Apptainer   Runtime = "apptainer"
)

// ErrInvalidBind reports a bind spec that the runtimes would misread.
var ErrInvalidBind = errors.New("invalid bind spec")

// BindError names a bind spec that cannot be passed on and why.
type BindError struct {
	Spec   string
	Reason string
}

func (e *BindError) Error() string {
	return fmt.Sprintf("bind %q: %s", e.Spec, e.Reason)
}

func (e *BindError) Unwrap() error { return ErrInvalidBind }

// validBinds checks Apptainer bind specs "src[:dst[:opts]]": a non-empty
// absolute source, an absolute destination, options ro or rw, and no comma
// (the separator of bind lists) or control character anywhere.
func validBinds(binds []string) error {
	for _, b := range binds {
		if strings.ContainsRune(b, ',') {
			return &BindError{Spec: b, Reason: "a comma separates binds in a list"}
		}
		if strings.ContainsFunc(b, func(r rune) bool { return r < 0x20 || r == 0x7f }) {
			return &BindError{Spec: b, Reason: "control character"}
		}
		parts := strings.Split(b, ":")
		if len(parts) > 3 {
			return &BindError{Spec: b, Reason: "more than src:dst:opts"}
		}
		for i, p := range parts[:min(len(parts), 2)] {
			if !strings.HasPrefix(p, "/") {
				return &BindError{Spec: b, Reason: []string{"source", "destination"}[i] + " is not an absolute path"}
			}
		}
		if len(parts) == 3 && parts[2] != "ro" && parts[2] != "rw" {
			return &BindError{Spec: b, Reason: "options must be ro or rw"}
		}
	}
	return nil
}

// BindPathEnv returns the environment variable that makes rt bind binds into
// every container it starts, "SINGULARITY_BINDPATH=/a,/b:/c:ro" or
// "APPTAINER_BINDPATH=…", ready for exec.Cmd.Env or a job's environment. Each
// bind is "src[:dst[:opts]]" with absolute paths and opts ro or rw; a bind the
// runtime would misread is a *BindError. No binds give an empty string.
func BindPathEnv(rt Runtime, binds ...string) (string, error) {
	if err := rt.valid(); err != nil {
		return "", err
	}
	if len(binds) == 0 {
		return "", nil
	}
	if err := validBinds(binds); err != nil {
		return "", err
	}
	return strings.ToUpper(string(rt)) + "_BINDPATH=" + strings.Join(binds, ","), nil
}

func (rt Runtime) valid() error {
	if rt != Singularity && rt != Apptainer {
		return fmt.Errorf("unknown runtime %q: want %q or %q", rt, Singularity, Apptainer)
	}
	return nil
}

// Exec describes a `singularity exec` or `apptainer exec` command line, the
// container wrapper an MPI launcher puts before the program it starts on
// every rank.
type Exec struct {
	// Runtime is the binary to run. Empty means Singularity.
	Runtime Runtime
	// Image is the container file (SIF or .simg) or an oras:// or docker://
	// reference, as the runtime accepts it.
	Image string
	// Binds are "src[:dst[:opts]]" specs passed as one --bind option; use
	// BindPathEnv instead to pass them through the environment.
	Binds []string
	// CleanEnv starts the program without the host environment (--cleanenv).
	CleanEnv bool
	// Contain uses minimal /dev and empty home and tmp directories (--contain).
	Contain bool
	// NV binds the host's NVIDIA driver libraries (--nv).
	NV bool
	// Pwd is the working directory inside the container (--pwd); empty keeps
	// the runtime's default.
	Pwd string
}

// Argv returns the command line prefix, "singularity exec [options] IMAGE",
// to which the program and its arguments are appended.
func (e Exec) Argv() ([]string, error) {
	rt := e.Runtime
	if rt == "" {
		rt = Singularity
	}
	if err := rt.valid(); err != nil {
		return nil, err
	}
	if e.Image == "" {
		return nil, errors.New("exec needs an image")
	}
	if strings.HasPrefix(e.Image, "-") {
		return nil, fmt.Errorf("image %q would be read as an option", e.Image)
	}
	argv := []string{string(rt), "exec"}
	if len(e.Binds) > 0 {
		if err := validBinds(e.Binds); err != nil {
			return nil, err
		}
		argv = append(argv, "--bind", strings.Join(e.Binds, ","))
	}
	if e.CleanEnv {
		argv = append(argv, "--cleanenv")
	}
	if e.Contain {
		argv = append(argv, "--contain")
	}
	if e.NV {
		argv = append(argv, "--nv")
	}
	if e.Pwd != "" {
		argv = append(argv, "--pwd", e.Pwd)
	}
	return append(argv, e.Image), nil
}
