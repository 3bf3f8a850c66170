package cmdrun

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
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

// TestRunLeavesNoOrphan: when ctx ends, what the command started in the background dies with it, rather
// than running on after Run has returned.
func TestRunLeavesNoOrphan(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	started := make(chan struct{})
	var res Result
	var err error
	pidFile := filepath.Join(t.TempDir(), "pid")
	go func() {
		defer close(started)
		res, err = Run(ctx, "sh", []string{"-c", `sleep 120 & echo $! > "$0.tmp" && mv "$0.tmp" "$0"; wait`, pidFile}, nil, nil)
	}()
	// Once the background sleep exists, end ctx.
	var pidText []byte
	require.Eventually(t, func() bool {
		pidText, _ = os.ReadFile(pidFile)
		return len(pidText) > 0
	}, time.Minute, 10*time.Millisecond)
	cancel()
	<-started
	require.ErrorIs(t, err, context.Canceled)
	assert.Empty(t, res.Stdout)
	pid, perr := strconv.Atoi(strings.TrimSpace(string(pidText)))
	require.NoError(t, perr)
	require.Eventually(t, func() bool { return !running(pid) }, 30*time.Second, 50*time.Millisecond,
		"the command's background child %d outlived Run", pid)
}

// TestRunReturnsWhenAnEscapedChildHoldsTheOutput: a child that left the process group (setsid) survives the
// kill and keeps the command's output open; Run still returns once ctx ends, without waiting for it.
func TestRunReturnsWhenAnEscapedChildHoldsTheOutput(t *testing.T) {
	setsid, err := exec.LookPath("setsid")
	if err != nil {
		t.Fatalf("setsid (util-linux) is needed: %v", err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	pidFile := filepath.Join(t.TempDir(), "pid")
	done := make(chan error, 1)
	go func() {
		_, err := Run(ctx, "sh", []string{"-c", `"$1" sh -c 'echo $$ > "$0.tmp" && mv "$0.tmp" "$0"; exec sleep 120' "$0" & wait`, pidFile, setsid}, nil, nil)
		done <- err
	}()
	var pidText []byte
	require.Eventually(t, func() bool {
		pidText, _ = os.ReadFile(pidFile)
		return len(pidText) > 0
	}, time.Minute, 10*time.Millisecond)
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	require.NoError(t, err)
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	cancel()
	require.ErrorIs(t, <-done, context.Canceled)
	assert.True(t, running(pid), "Run returned before the escaped child ended, not after it")
}

// running reports whether pid is a live process (not gone, not a zombie waiting to be reaped).
func running(pid int) bool {
	stat, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	_, rest, _ := strings.Cut(string(stat), ") ")
	return !strings.HasPrefix(rest, "Z") && !strings.HasPrefix(rest, "X")
}

// TestRunKilledBySignal: a command that a signal ended did not report an exit code; Run says it could not
// complete rather than pretend it exited 0 or -1.
func TestRunKilledBySignal(t *testing.T) {
	res, err := Run(t.Context(), "sh", []string{"-c", "echo partial; kill -KILL $$"}, nil, nil)
	require.Error(t, err)
	assert.ErrorContains(t, err, "running sh: signal: killed")
	assert.Equal(t, "partial\n", string(res.Stdout), "what it printed is kept")
	assert.Zero(t, res.ExitCode)
}
