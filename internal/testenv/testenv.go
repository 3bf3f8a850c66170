// Package testenv lets integration tests state what they need from the machine.
//
// A test that needs a program, root or a running service calls Require, RequireRoot
// or Skipf. Run as a plain `go test`, a missing requirement skips the test with a
// message that says what to install. With HPCSHIP_INTEGRATION=1 in the environment
// (scripts/test.sh sets it), the same missing requirement fails the test instead, so
// CI can never go green by skipping the real thing.
package testenv

import (
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// IntegrationEnv is the environment variable that turns skips into failures.
const IntegrationEnv = "HPCSHIP_INTEGRATION"

// Integration reports whether missing requirements must fail tests rather than skip
// them, that is whether IntegrationEnv is set to "1".
func Integration() bool {
	return os.Getenv(IntegrationEnv) == "1"
}

// Skipf skips t with the formatted reason, or fails it when Integration is true.
func Skipf(t testing.TB, format string, args ...any) {
	t.Helper()
	msg := fmt.Sprintf(format, args...)
	if Integration() {
		t.Fatalf("%s (%s=1: integration requirements must be met, not skipped)", msg, IntegrationEnv)
		return
	}
	t.Skip(msg)
}

// Require checks that every program is found on PATH and returns their full paths in
// the same order. A missing program skips t, or fails it under Integration.
func Require(t testing.TB, programs ...string) []string {
	t.Helper()
	paths := make([]string, 0, len(programs))
	for _, p := range programs {
		path, err := exec.LookPath(p)
		if err != nil {
			Skipf(t, "%s not found on PATH; ./scripts/test.sh installs it", p)
			return nil
		}
		paths = append(paths, path)
	}
	return paths
}

// RequireRoot skips t, or fails it under Integration, unless the test runs as root.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		Skipf(t, "test needs root (running as uid %d)", os.Geteuid())
	}
}
