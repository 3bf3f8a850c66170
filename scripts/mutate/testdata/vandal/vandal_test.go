package vandal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestRemovesWorkDir removes the directory its binary was built in, two levels up, when the mutate
// command built it there ($TMPDIR/mutate-*/pkg-*/pkg.test), as a disk cleaner might.
func TestRemovesWorkDir(t *testing.T) {
	work := filepath.Dir(filepath.Dir(os.Args[0]))
	if strings.HasPrefix(filepath.Base(work), "mutate-") {
		os.RemoveAll(work)
	}
	if Two() != 2 {
		t.Error("Two() != 2")
	}
}
