// Package callopt holds the functional options of packages whose calls take
// different subsets of one set of options, as acr's and singularity's do. An
// option carries its exported name and the set of calls that take it; a call
// applies the options it is given with Apply, which rejects, before the call
// does anything, the zero option, an option the call does not take and an
// invalid value, each with an *Error naming the call and the option.
//
// A package keeps its own exported Option type around an Option of this
// package, its own unexported options struct, and aliases Error as its
// OptionError.
package callopt

import "errors"

// Calls is a set of the calls of a package that take options, one bit a call.
type Calls uint32

// Option is one option of a package whose options struct is T: the name the
// package exports it under (such as "WithJobs"), the calls that take it and
// how it sets T. The zero Option is no option: Apply rejects it.
type Option[T any] struct {
	Name  string
	Calls Calls
	Apply func(*T) error
}

// Error reports an option that a call rejected: an invalid value, an option
// the call does not take, or options that conflict.
type Error struct {
	// Call is the function that was given the option, such as "acr.Push" or
	// "singularity.PushSIF".
	Call string
	// Option is the option's name, such as "WithJobs" or "WithCompression".
	Option string
	Err    error
}

func (e *Error) Error() string { return e.Call + ": " + e.Option + ": " + e.Err.Error() }

// Unwrap returns the underlying error.
func (e *Error) Unwrap() error { return e.Err }

// Given is the set of the names of the options a call was given.
type Given map[string]bool

// Apply applies opts, in order, to o for the call named call, whose bit in the
// options' Calls is c; spec gives the Option of each element of opts. It
// returns the names of the options given, or an *Error for the first option
// that is the zero Option ("Option{}: the zero Option is not an option"),
// that c does not take ("not an option of this call") or whose Apply fails.
func Apply[T, O any](call string, c Calls, o *T, opts []O, spec func(O) Option[T]) (Given, error) {
	given := make(Given, len(opts))
	for _, opt := range opts {
		s := spec(opt)
		switch {
		case s.Apply == nil:
			return nil, &Error{Call: call, Option: "Option{}", Err: errors.New("the zero Option is not an option")}
		case s.Calls&c == 0:
			return nil, &Error{Call: call, Option: s.Name, Err: errors.New("not an option of this call")}
		}
		if err := s.Apply(o); err != nil {
			return nil, &Error{Call: call, Option: s.Name, Err: err}
		}
		given[s.Name] = true
	}
	return given, nil
}

// Exclusive returns an *Error of the call named call, naming a, when both the
// options a and b were given ("a: cannot be combined with b"), and nil
// otherwise.
func (g Given) Exclusive(call, a, b string) error {
	if g[a] && g[b] {
		return &Error{Call: call, Option: a, Err: errors.New("cannot be combined with " + b)}
	}
	return nil
}
