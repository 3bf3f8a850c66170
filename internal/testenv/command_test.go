package testenv

import (
	"fmt"
	"os"
	"testing"

	"github.com/stretchr/testify/assert"
)

// fakeMain is the command TestMain runs through RunAsCommand: it prints its arguments and exits with
// the status its first argument names, or returns.
func fakeMain() {
	fmt.Printf("args %q\n", os.Args[1:])
	fmt.Fprintln(os.Stderr, "to stderr")
	switch os.Args[1] {
	case "exit 4":
		os.Exit(4)
	case "return":
		return
	}
}

func TestMain(m *testing.M) {
	RunAsCommand(fakeMain)
	os.Exit(m.Run())
}

func TestCommand(t *testing.T) {
	code, stdout, stderr := Command(t, "exit 4", "-flag", "--")
	assert.Equal(t, 4, code)
	assert.Equal(t, "args [\"exit 4\" \"-flag\" \"--\"]\n", stdout, "the arguments after the test binary's own")
	assert.Equal(t, "to stderr\n", stderr)

	code, stdout, _ = Command(t, "return")
	assert.Equal(t, 0, code, "main returned")
	assert.Equal(t, "args [\"return\"]\n", stdout)
}

func TestCommandCannotStart(t *testing.T) {
	r := &recorder{TB: t}
	exe := os.Args[0]
	os.Args[0] = "/hpcship-no-such-test-binary"
	defer func() { os.Args[0] = exe }()
	code, _, _ := Command(r, "return")
	assert.True(t, r.failed)
	assert.Contains(t, r.msg, "running /hpcship-no-such-test-binary as its command: ")
	assert.Equal(t, -1, code)
}
