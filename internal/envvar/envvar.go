// Package envvar checks environment entries of the form exec.Cmd.Env takes, "NAME=VALUE", for the packages
// that produce them (mpi) and the ones that export them in a jobscript (scheduler and its backends).
package envvar

import (
	"fmt"
	"strings"
)

// IsName reports whether s is a portable environment variable name, which every shell can assign: a letter or
// underscore, then letters, digits and underscores.
func IsName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		letter := c == '_' || 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z'
		if !letter && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// Split splits one "NAME=VALUE" entry and checks it: a name IsName accepts, an "=", and a value without NUL
// bytes. The error never holds the value, which may be a secret, and quotes at most the first 64 bytes of a
// bad name.
func Split(kv string) (name, value string, err error) {
	name, value, ok := strings.Cut(kv, "=")
	switch {
	case !ok:
		return "", "", fmt.Errorf("want NAME=VALUE, got no '=' in %s", Clip(kv))
	case !IsName(name):
		return "", "", fmt.Errorf("%s is not a variable name (a letter or '_', then letters, digits and '_')", Clip(name))
	case strings.IndexByte(value, 0) >= 0:
		return "", "", fmt.Errorf("the value of %s holds a NUL byte", name)
	}
	return name, value, nil
}

// maxClip is how many bytes of an input an error message quotes.
const maxClip = 64

// Clip quotes s for an error message: at most its first 64 bytes, Go-quoted, followed by how long it was when
// it was longer, so that an error about a megabyte of input is still a line.
func Clip(s string) string {
	if len(s) <= maxClip {
		return fmt.Sprintf("%q", s)
	}
	return fmt.Sprintf("%q… (%d bytes)", s[:maxClip], len(s))
}
