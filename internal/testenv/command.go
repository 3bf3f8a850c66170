package testenv

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"slices"
	"testing"
)

// commandEnv tells a test binary started by Command to run its package's main.
const commandEnv = "HPCSHIP_TEST_AS_COMMAND"

// RunAsCommand, called first in the TestMain of a command's tests, runs main with the arguments Command
// gave instead of the tests when Command started the test binary, and exits with main's status (0 when
// main returns); otherwise it returns at once.
func RunAsCommand(main func()) {
	if os.Getenv(commandEnv) != "1" {
		return
	}
	os.Args = append(os.Args[:1], os.Args[slices.Index(os.Args, "--")+1:]...)
	main()
	os.Exit(0)
}

// Command runs the test binary as its package's command (see RunAsCommand) with args, and returns the
// command's exit status and what it printed. A command that cannot be started fails t.
func Command(t testing.TB, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), os.Args[0], append([]string{"-test.run=^$", "--"}, args...)...)
	cmd.Env = append(os.Environ(), commandEnv+"=1")
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Run(); err != nil && !errors.As(err, new(*exec.ExitError)) {
		t.Fatalf("running %s as its command: %v", os.Args[0], err)
		return -1, "", ""
	}
	return cmd.ProcessState.ExitCode(), out.String(), errOut.String()
}
