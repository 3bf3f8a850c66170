package testenv

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"slices"
	"strings"
	"testing"
	"time"
)

// closeGrace is how long FilesLeftOpen lets files that f left to a goroutine be closed after f returns.
const closeGrace = time.Second

// FilesLeftOpen runs f and returns the files under dir (absolute, with symlinks resolved) that
// f opened and left open, sorted, for tests that check that a function closes what it opens. A
// file that a goroutine f started closes within a second of f's return, as go-containerregistry's
// compressing readers close their source once the compressed stream has been read, is not left
// open. The garbage collector, which closes a forgotten *os.File some time later, is held off
// meanwhile. It reads /proc/self/fd, so it sees the files of the whole test process: give it a dir
// that only the test uses.
func FilesLeftOpen(t testing.TB, dir string, f func()) []string {
	t.Helper()
	dir, err := filepath.EvalSymlinks(dir)
	if err != nil {
		t.Fatalf("checking files left open: %v", err)
		return nil
	}
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before, err := openUnder(dir)
	if err != nil {
		t.Fatalf("checking files left open: %v", err)
		return nil
	}
	f()
	deadline := time.Now().Add(closeGrace)
	for {
		after, err := openUnder(dir)
		if err != nil {
			t.Fatalf("checking files left open: %v", err)
			return nil
		}
		var left []string
		for fd, p := range after {
			if before[fd] != p {
				left = append(left, p)
			}
		}
		if len(left) == 0 || time.Now().After(deadline) {
			slices.Sort(left)
			return left
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// openUnder maps the process's descriptors of files under dir to their paths.
func openUnder(dir string) (map[string]string, error) {
	fds, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return nil, err
	}
	open := make(map[string]string)
	for _, fd := range fds {
		// A descriptor closed since the listing, such as the listing's own, has no link.
		p, err := os.Readlink(filepath.Join("/proc/self/fd", fd.Name()))
		if err == nil && (p == dir || strings.HasPrefix(p, dir+string(filepath.Separator))) {
			open[fd.Name()] = p
		}
	}
	return open, nil
}
