package shellquote_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/shellquote"
)

// TestQuoteByteClasses pins the word form at both edges of every byte class: the safe ranges
// (digits, letters, the safe punctuation), the control bytes below 0x20 and at 0x7f, and the bytes from
// 0x80 up, alone and after a control byte (which switches to the $'…' form).
func TestQuoteByteClasses(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{name: "below digits", in: "/", want: "/"}, // safe punctuation
		{name: "first digit", in: "0", want: "0"},
		{name: "last digit", in: "9", want: "9"},
		{name: "above digits", in: ";", want: "';'"},
		{name: "below upper", in: "@", want: "@"}, // safe punctuation
		{name: "first upper", in: "A", want: "A"},
		{name: "last upper", in: "Z", want: "Z"},
		{name: "above upper", in: "[", want: "'['"},
		{name: "below lower", in: "`", want: "'`'"},
		{name: "first lower", in: "a", want: "a"},
		{name: "last lower", in: "z", want: "z"},
		{name: "above lower", in: "{", want: "'{'"},
		{name: "first safe punctuation", in: "_", want: "_"},
		{name: "last safe punctuation", in: "%", want: "%"},
		{name: "unsafe punctuation", in: "=", want: "'='"},
		{name: "last control", in: "\x1f", want: `$'\x1f'`},
		{name: "first printable", in: " ", want: "' '"},
		{name: "last printable", in: "~", want: "'~'"},
		{name: "delete", in: "\x7f", want: `$'\x7f'`},
		{name: "first high byte", in: "\x80", want: "'\x80'"},
		{name: "first control", in: "\x01", want: `$'\x01'`},
		{name: "control then printable edge", in: "\n~", want: `$'\x0a~'`},
		{name: "control then space", in: "\n ", want: `$'\x0a '`},
		{name: "control then first high byte", in: "\n\x80", want: `$'\x0a\x80'`},
		{name: "control then last high byte", in: "\n\xff", want: `$'\x0a\xff'`},
		{name: "control then high nibble", in: "\n\xa5", want: `$'\x0a\xa5'`},
		{name: "control then quote", in: "\n'", want: `$'\x0a\''`},
		{name: "control then backslash", in: "\n\\", want: `$'\x0a\\'`},
		{name: "control then safe", in: "\nA", want: `$'\x0aA'`},
		{name: "quote alone", in: "'", want: `''\'''`},
		{name: "safe then control", in: "a\t", want: `$'a\x09'`},
		{name: "long control string", in: "\x1b[0m\x1b[1m", want: `$'\x1b[0m\x1b[1m'`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shellquote.Quote(tt.in)
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// TestQuoteNULAnywhere rejects a NUL at the start, in the middle and at the end, in every word form.
func TestQuoteNULAnywhere(t *testing.T) {
	for _, in := range []string{"\x00", "\x00a", "a\x00", "a b\x00", "\n\x00", "\x00\n"} {
		got, err := shellquote.Quote(in)
		require.ErrorIs(t, err, shellquote.ErrNUL, "%q", in)
		assert.Empty(t, got, "%q", in)
	}
}
