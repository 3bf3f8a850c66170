package main

import (
	"bytes"
	"fmt"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// openTerminal opens a pseudo-terminal and returns the end a program writes to and what it has shown.
func openTerminal(t *testing.T) (*os.File, func() string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	require.NoError(t, err)
	t.Cleanup(func() { master.Close() })
	var unlock int32
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock)))
	require.Zero(t, errno, "unlocking the terminal")
	var n uint32
	_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n)))
	require.Zero(t, errno, "numbering the terminal")
	term, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	require.NoError(t, err)
	t.Cleanup(func() { term.Close() })
	size := struct{ rows, cols, x, y uint16 }{rows: 24, cols: 120}
	_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, term.Fd(), syscall.TIOCSWINSZ, uintptr(unsafe.Pointer(&size)))
	require.Zero(t, errno, "sizing the terminal")

	var (
		mu    sync.Mutex
		shown bytes.Buffer
	)
	go func() {
		buf := make([]byte, 4096)
		for {
			n, err := master.Read(buf)
			mu.Lock()
			shown.Write(buf[:n])
			mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	return term, func() string {
		mu.Lock()
		defer mu.Unlock()
		return shown.String()
	}
}

// TestConsoleOnTerminal checks that a terminal gets progress bars counting files or bytes, and that
// anything else gets none.
func TestConsoleOnTerminal(t *testing.T) {
	term, shown := openTerminal(t)
	con := newConsole(term)
	require.True(t, con.tty, "a terminal shows progress")

	files := con.meter("sif", unitFiles)
	files.set(3, 10)
	assert.Eventually(t, func() bool { return bytes.Contains([]byte(shown()), []byte("3 / 10 files")) }, 30*time.Second, 20*time.Millisecond,
		"the bar counts files: %q", shown())
	files.done()
	files.done() // a second done is harmless

	bytesMeter := con.meter("push", unitBytes)
	bytesMeter.set(2048, 4096)
	assert.Eventually(t, func() bool { return bytes.Contains([]byte(shown()), []byte("2.0 KiB / 4.0 KiB")) }, 30*time.Second, 20*time.Millisecond,
		"the bar counts bytes: %q", shown())
	bytesMeter.done()

	file, err := os.Create(t.TempDir() + "/log")
	require.NoError(t, err)
	defer file.Close()
	for _, w := range []*console{newConsole(file), newConsole(&bytes.Buffer{})} {
		assert.False(t, w.tty, "no progress bars in a file or buffer")
		m := w.meter("push", unitBytes)
		m.set(1, 2)
		m.done()
	}
	fi, err := file.Stat()
	require.NoError(t, err)
	assert.Zero(t, fi.Size(), "no bar is drawn in a file")
}
