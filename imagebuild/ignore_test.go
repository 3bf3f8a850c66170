package imagebuild

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDockerignore(t *testing.T) {
	m, err := parseIgnore(strings.NewReader(`# comments and blank lines are skipped

/build
*.o
**/*.tmp
docs/**/draft?.md
!docs/keep/draft1.md
vendor/
!vendor/keep
[ab].txt
\!literal
`))
	require.NoError(t, err)
	tests := []struct {
		path    string
		ignored bool
	}{
		{"build", true},
		{"build/out/x", true},
		{"src/build", false},
		{"main.o", true},
		{"src/main.o", false},
		{"a.tmp", true},
		{"deep/er/x.tmp", true},
		{"docs/draft1.md", true},
		{"docs/x/y/draft2.md", true},
		{"docs/keep/draft1.md", false},
		{"docs/final.md", false},
		{"vendor/lib.go", true},
		{"vendor/keep", false},
		{"vendor/keep/file", false},
		{"a.txt", true},
		{"c.txt", false},
		{"!literal", true},
		{"literal", false},
		{"Dockerfile", false},
	}
	for _, tt := range tests {
		assert.Equal(t, tt.ignored, m.ignored(tt.path), tt.path)
	}
	assert.True(t, m.negated)

	_, err = parseIgnore(strings.NewReader("ok\n[unterminated\n"))
	assert.ErrorContains(t, err, "line 2")
}

func FuzzDockerignore(f *testing.F) {
	f.Add("*.o\n!keep.o\n**/x\n[a-c]?\n", "dir/keep.o")
	f.Add("\\*\n/abs/../x\n", "x")
	f.Fuzz(func(t *testing.T, patterns, path string) {
		m, err := parseIgnore(strings.NewReader(patterns))
		if err != nil {
			return
		}
		_ = m.ignored(path)
	})
}

func TestArchivePath(t *testing.T) {
	tests := []struct {
		name, want string
		unsafe     bool
	}{
		{"intel/lib/a.so", "intel/lib/a.so", false},
		{"./intel/", "intel", false},
		{"/abs/x", "abs/x", false},
		{".", "", false},
		{"a/../b", "b", false},
		{"../x", "", true},
		{"a/../../x", "", true},
		{"..", "", true},
		{"a\x00b", "", true},
	}
	for _, tt := range tests {
		got, err := archivePath(tt.name)
		if tt.unsafe {
			assert.ErrorIs(t, err, ErrUnsafePath, tt.name)
			continue
		}
		require.NoError(t, err, tt.name)
		assert.Equal(t, tt.want, got, tt.name)
	}
}
