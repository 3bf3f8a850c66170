package testenv

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestFilesLeftOpen(t *testing.T) {
	dir := t.TempDir()
	real, err := filepath.EvalSymlinks(dir)
	require.NoError(t, err)
	opened := func(name string) *os.File {
		f, err := os.Create(filepath.Join(dir, name))
		require.NoError(t, err)
		return f
	}
	earlier := opened("earlier")
	defer earlier.Close()
	outside, err := os.CreateTemp("", "testenv-outside-")
	require.NoError(t, err)
	defer os.Remove(outside.Name())

	var kept []*os.File
	left := FilesLeftOpen(t, dir, func() {
		opened("closed").Close()
		kept = append(kept, opened("b"), opened("a"))
		d, err := os.Open(dir)
		require.NoError(t, err)
		kept = append(kept, d)
		kept = append(kept, outside)
	})
	assert.Equal(t, []string{real, filepath.Join(real, "a"), filepath.Join(real, "b")}, left,
		"what f left open under dir, the directory itself included; not what was open before, nor what is outside")
	for _, f := range kept {
		require.NoError(t, f.Close())
	}
	assert.Empty(t, FilesLeftOpen(t, dir, func() { opened("c").Close() }))
	assert.Empty(t, FilesLeftOpen(t, dir, func() {
		closing := opened("closed later")
		time.AfterFunc(closeGrace/4, func() { closing.Close() })
	}), "a file that a goroutine closes soon after is not left open")
	var ab *os.File
	assert.Empty(t, FilesLeftOpen(t, filepath.Join(dir, "a"), func() { ab = opened("ab") }),
		"a file whose name starts with dir's is not under it")
	require.NoError(t, ab.Close())
}

func TestFilesLeftOpenMissingDir(t *testing.T) {
	r := &recorder{TB: t}
	ran := false
	missing := filepath.Join(t.TempDir(), "missing")
	FilesLeftOpen(r, missing, func() { ran = true })
	assert.True(t, r.failed)
	assert.Contains(t, r.msg, "checking files left open: lstat "+missing)
	assert.False(t, ran)
}
