package acrtest

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
)

// TestTail: the lines of docker-registry's log a failure shows, at and on both sides of the count asked
// for, and what shows when the log cannot be read.
func TestTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "registry.log")
	assert.NoError(t, os.WriteFile(path, []byte("one\ntwo\nthree\n"), 0o600))
	for n, want := range map[int]string{
		2: "two\nthree",
		3: "one\ntwo\nthree",
		4: "one\ntwo\nthree",
	} {
		assert.Equal(t, want, tail(path, n), "last %d lines", n)
	}
	assert.Contains(t, tail(filepath.Join(t.TempDir(), "missing.log"), 3), "no such file or directory")
}
