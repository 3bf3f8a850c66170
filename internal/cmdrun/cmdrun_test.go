package cmdrun

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestRun(t *testing.T) {
	for _, tt := range []struct {
		name       string
		args       []string
		env        []string
		stdin      []byte
		wantOut    string
		wantErrOut string
		wantExit   int
	}{
		{name: "success", args: []string{"-c", "echo out; echo err >&2"}, wantOut: "out\n", wantErrOut: "err\n"},
		{name: "failure reports its exit code", args: []string{"-c", "exit 3"}, wantExit: 3},
		{name: "stdin", args: []string{"-c", "cat"}, stdin: []byte("in"), wantOut: "in"},
		{name: "env replaces the environment", args: []string{"-c", `echo "$A${HOME:-}"`}, env: []string{"A=a"}, wantOut: "a\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			res, err := Run(t.Context(), "/bin/sh", tt.args, tt.env, tt.stdin)
			require.NoError(t, err)
			assert.Equal(t, tt.wantOut, string(res.Stdout))
			assert.Equal(t, tt.wantErrOut, string(res.Stderr))
			assert.Equal(t, tt.wantExit, res.ExitCode)
		})
	}
}

func TestRunCannotRun(t *testing.T) {
	_, err := Run(t.Context(), "hpcship-no-such-command", nil, nil, nil)
	require.ErrorIs(t, err, exec.ErrNotFound)
	assert.Contains(t, err.Error(), "running hpcship-no-such-command")
}

// TestRunKillsTheWholeGroup: when ctx ends, a child that holds the command's output must not keep Run
// waiting until it exits.
func TestRunKillsTheWholeGroup(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := Run(ctx, "sh", []string{"-c", "sleep 120 & wait"}, nil, nil)
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.False(t, errors.Is(err, exec.ErrNotFound))
	assert.Less(t, time.Since(start), 60*time.Second, "Run waited for the orphaned child")
}

func TestMessage(t *testing.T) {
	assert.Equal(t, "err", Message([]byte("out"), []byte("  err\n")))
	assert.Equal(t, "out", Message([]byte(" out\n"), []byte(" \n")))
	long := strings.Repeat("x", maxMessage+1)
	assert.Equal(t, long[:maxMessage]+"…", Message(nil, []byte(long)))
	assert.Equal(t, long[:maxMessage], Message(nil, []byte(long[:maxMessage])))
}
