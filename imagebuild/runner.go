package imagebuild

import (
	"archive/tar"
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Runner executes RUN steps. Build calls it for every RUN step it cannot take from
// the cache, one at a time.
type Runner interface {
	// Run executes req.Argv in the root filesystem that req.Layers make and returns
	// what the command changed as one layer (added and modified files, whiteouts for
	// deletions), or nil when it changed nothing. req.WriteLayer writes such a layer
	// the way the build writes its own. A failure of the command itself is an error
	// that says how it failed (exit status, output tail); Build adds the line.
	Run(ctx context.Context, req RunRequest) (v1.Layer, error)
}

// RunRequest is one RUN step with the state of the image it runs in.
type RunRequest struct {
	// Argv is the command: the exec form as written, or the shell form prefixed with
	// Shell.
	Argv []string
	// Env is the image's environment followed by the build arguments it does not
	// override, as KEY=VALUE.
	Env []string
	// WorkingDir is the image's working directory ("/" when unset).
	WorkingDir string
	// User is the image's USER ("" for root).
	User string
	// Shell is the image's shell (SHELL, default ["/bin/sh", "-c"]).
	Shell []string
	// Layers are the image's layers so far, bottom first.
	Layers []v1.Layer
	// Epoch is the build's time; files the step writes should have their
	// modification times clamped to it.
	Epoch time.Time
	// WriteLayer writes a layer in one streaming pass with the build's compression,
	// into the build's blob store: fill writes tar entries (and must not close the
	// writer). The layer's media type matches the image's.
	WriteLayer func(ctx context.Context, fill func(tw *tar.Writer) error) (v1.Layer, error)
	// CacheDir is a directory the Runner may keep state in between builds: Build sets
	// it to its cache directory. Empty means none.
	CacheDir string
	// Log is where the Runner's warnings go: Build sets it to its logger
	// (WithLogger). Nil discards them.
	Log *slog.Logger

	// state is what the build the step belongs to keeps for its Runner; nil outside Build.
	state *buildState
}

// buildState is what a Runner keeps between the RUN steps of one build, released
// when the build ends, whatever way it ends.
type buildState struct {
	mu     sync.Mutex
	values map[any]any
	close  []func() error
}

// value returns the state's value for key, making it with mk on first use.
func (s *buildState) value(key any, mk func() (any, func() error, error)) (any, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v, ok := s.values[key]; ok {
		return v, nil
	}
	v, closeFn, err := mk()
	if err != nil {
		return nil, err
	}
	if s.values == nil {
		s.values = map[any]any{}
	}
	s.values[key] = v
	if closeFn != nil {
		s.close = append(s.close, closeFn)
	}
	return v, nil
}

// onEnd registers f to run when the state ends.
func (s *buildState) onEnd(f func() error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.close = append(s.close, f)
}

// end releases everything the state holds, last acquired first.
func (s *buildState) end() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for i := len(s.close) - 1; i >= 0; i-- {
		errs = append(errs, s.close[i]())
	}
	s.close, s.values = nil, nil
	return errors.Join(errs...)
}

// unavailableRunner is the default Runner: every RUN fails with ErrRunUnavailable.
type unavailableRunner struct{}

func (unavailableRunner) Run(context.Context, RunRequest) (v1.Layer, error) {
	return nil, ErrRunUnavailable
}
