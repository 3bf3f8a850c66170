package imagebuild

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"strings"
)

// ignoreMatcher applies .dockerignore patterns as Docker does: one pattern a line,
// "#" comments, "!" re-includes, "*" and "?" within a path component, "**" across
// components, a pattern matching a directory matching everything below it, and the
// last matching pattern deciding.
type ignoreMatcher struct {
	patterns []ignorePattern
	negated  bool // some pattern re-includes, so excluded directories must be walked
}

type ignorePattern struct {
	re     *regexp.Regexp
	negate bool
}

// readIgnore reads dir/.dockerignore; a missing file ignores nothing.
func readIgnore(dir string) (*ignoreMatcher, error) {
	f, err := os.Open(filepath.Join(dir, ".dockerignore"))
	if errors.Is(err, fs.ErrNotExist) {
		return &ignoreMatcher{}, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseIgnore(f)
}

func parseIgnore(r io.Reader) (*ignoreMatcher, error) {
	m := &ignoreMatcher{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		negate := strings.HasPrefix(line, "!")
		if negate {
			line = strings.TrimSpace(line[1:])
		}
		line = path.Clean(filepath.ToSlash(line))
		line = strings.TrimPrefix(line, "/")
		if line == "" {
			continue
		}
		re, err := patternRegexp(line)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore line %d: %q: %w", n, line, err)
		}
		m.patterns = append(m.patterns, ignorePattern{re: re, negate: negate})
		m.negated = m.negated || negate
	}
	return m, sc.Err()
}

// patternRegexp translates a .dockerignore pattern into an anchored regexp.
func patternRegexp(p string) (*regexp.Regexp, error) {
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch {
		case c == '*' && i+1 < len(p) && p[i+1] == '*':
			i++
			if i+1 < len(p) && p[i+1] == '/' { // "**/" matches zero or more directories
				i++
				b.WriteString("(.*/)?")
			} else {
				b.WriteString(".*")
			}
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[':
			j := strings.IndexByte(p[i:], ']')
			if j < 0 {
				return nil, errors.New("unterminated character class")
			}
			class := p[i+1 : i+j]
			if strings.HasPrefix(class, "!") {
				class = "^" + class[1:]
			}
			b.WriteString("[" + class + "]")
			i += j
		case c == '\\' && i+1 < len(p):
			i++
			b.WriteString(regexp.QuoteMeta(string(p[i])))
		default:
			b.WriteString(regexp.QuoteMeta(string(c)))
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

// ignored reports whether rel, a slash-separated path relative to the context, is
// excluded.
func (m *ignoreMatcher) ignored(rel string) bool {
	if m == nil || len(m.patterns) == 0 {
		return false
	}
	excluded := false
	for _, p := range m.patterns {
		if matchesOrParent(p.re, rel) {
			excluded = !p.negate
		}
	}
	return excluded
}

func matchesOrParent(re *regexp.Regexp, rel string) bool {
	for i := 0; i <= len(rel); i++ {
		if (i == len(rel) || rel[i] == '/') && re.MatchString(rel[:i]) {
			return true
		}
	}
	return false
}
