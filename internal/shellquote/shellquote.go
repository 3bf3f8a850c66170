// Package shellquote turns arbitrary strings into bash words that expand back to exactly the same bytes.
//
// A string of safe characters stays as it is; one with printable characters only is single-quoted; one with
// control characters (a newline, a tab, a carriage return, …) is written as an ANSI-C $'…' word whose escapes
// keep the script free of raw control characters. The last point matters for job schedulers that read
// directives from script lines: a quoted value can never start a new line of the script.
package shellquote

import (
	"errors"
	"strings"
)

// ErrNUL is returned for a string that holds a NUL byte, which no shell word, argument or environment value
// can carry.
var ErrNUL = errors.New("string holds a NUL byte")

// Quote returns s as one bash word. The word expands to s exactly, byte for byte, in any locale.
func Quote(s string) (string, error) {
	if s == "" {
		return "''", nil
	}
	safe, printable := true, true
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == 0:
			return "", ErrNUL
		case c < 0x20 || c == 0x7f:
			printable = false
			safe = false
		case !isSafe(c):
			safe = false
		}
	}
	if safe {
		return s, nil
	}
	if printable {
		return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'", nil
	}
	var b strings.Builder
	b.Grow(len(s) + 8)
	b.WriteString("$'")
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '\\' || c == '\'':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c == 0x7f || c >= 0x80:
			// Always two hex digits, so a following hex digit cannot join the escape. Bytes from 0x80 up
			// are escaped too: raw they could end a multibyte character that swallows the next quote.
			const hex = "0123456789abcdef"
			b.WriteString(`\x`)
			b.WriteByte(hex[c>>4])
			b.WriteByte(hex[c&0xf])
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('\'')
	return b.String(), nil
}

// isSafe reports whether c needs no quoting anywhere in a word, including at its start.
func isSafe(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("_-+./,:@%", c) >= 0
}
