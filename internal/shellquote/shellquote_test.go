package shellquote_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/shellquote"
	"github.com/hpcship/hpcship/internal/testenv"
)

func TestQuote(t *testing.T) {
	tests := []struct {
		name, in, want string
		wantErr        error
	}{
		{name: "empty", in: "", want: "''"},
		{name: "safe", in: "/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1", want: "/opt/intel/impi/5.1.3.223/bin64/IMB-MPI1"},
		{name: "safe punctuation", in: "a,b:c@d%e+f", want: "a,b:c@d%e+f"},
		{name: "space", in: "a b", want: "'a b'"},
		{name: "dollar", in: "$HOME", want: "'$HOME'"},
		{name: "assignment", in: "A=b", want: "'A=b'"},
		{name: "tilde", in: "~root", want: "'~root'"},
		{name: "single quote", in: "it's", want: `'it'\''s'`},
		{name: "utf-8", in: "héllo wörld", want: "'héllo wörld'"},
		{name: "newline", in: "a\n#$ -q evil", want: `$'a\x0a#$ -q evil'`},
		{name: "control and quote", in: "\t'\\", want: `$'\x09\'\\'`},
		{name: "escaped then hex digit", in: "\x01ab", want: `$'\x01ab'`},
		{name: "high bytes with control", in: "\xff\n", want: `$'\xff\x0a'`},
		{name: "NUL", in: "a\x00b", wantErr: shellquote.ErrNUL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := shellquote.Quote(tt.in)
			if tt.wantErr != nil {
				require.ErrorIs(t, err, tt.wantErr)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
		})
	}
}

// randomStrings returns n deterministic strings of every byte but NUL, biased towards the bytes that matter
// to a shell and to Grid Engine's directive parser.
func randomStrings(n int) []string {
	r := rand.New(rand.NewPCG(5, 8))
	const special = "'\"\\$`!*?[]{}()<>|&;#~=% \t\n\r\x7f\xff\xc3\xa9#$"
	out := make([]string, n)
	for i := range out {
		b := make([]byte, r.IntN(40))
		for j := range b {
			if r.IntN(2) == 0 {
				b[j] = special[r.IntN(len(special))]
			} else {
				b[j] = byte(1 + r.IntN(255))
			}
		}
		out[i] = string(b)
	}
	return out
}

// TestQuoteRoundTripBash feeds 10,000 quoted strings to bash and compares what it prints, byte for byte.
func TestQuoteRoundTripBash(t *testing.T) {
	bash := testenv.Require(t, "bash")[0]
	in := randomStrings(10000)
	var script strings.Builder
	script.WriteString("printf '%s\\0'")
	for _, s := range in {
		q, err := shellquote.Quote(s)
		require.NoError(t, err)
		require.NotContains(t, q, "\n", "a quoted word must stay on one line")
		script.WriteString(" \\\n  " + q)
	}
	script.WriteString("\n")
	path := filepath.Join(t.TempDir(), "roundtrip.sh")
	require.NoError(t, os.WriteFile(path, []byte(script.String()), 0o600))

	require.NoError(t, exec.CommandContext(t.Context(), bash, "-n", path).Run(), "bash -n")
	for _, locale := range []string{"C", "C.UTF-8"} {
		cmd := exec.CommandContext(t.Context(), bash, path)
		cmd.Env = append(os.Environ(), "LC_ALL="+locale)
		out, err := cmd.Output()
		require.NoError(t, err)
		got := strings.Split(strings.TrimSuffix(string(out), "\x00"), "\x00")
		require.Len(t, got, len(in), locale)
		for i := range in {
			if in[i] != got[i] {
				require.Equal(t, []byte(in[i]), []byte(got[i]), "string %d, LC_ALL=%s", i, locale)
			}
		}
	}
}

func FuzzQuote(f *testing.F) {
	for _, s := range []string{"", "a b", "it's", "a\nb", "\x00", "\xff\\'"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		q, err := shellquote.Quote(s)
		if bytes.IndexByte([]byte(s), 0) >= 0 {
			require.ErrorIs(t, err, shellquote.ErrNUL)
			return
		}
		require.NoError(t, err)
		for i := 0; i < len(q); i++ {
			require.False(t, q[i] < 0x20 || q[i] == 0x7f, "control byte %#x in %q", q[i], q)
		}
		require.Equal(t, s, unquote(t, q))
	})
}

// unquote expands the three word forms Quote writes, as bash would.
func unquote(t *testing.T, q string) string {
	t.Helper()
	var b strings.Builder
	switch {
	case strings.HasPrefix(q, "$'"):
		body := q[2 : len(q)-1]
		for i := 0; i < len(body); i++ {
			if body[i] != '\\' {
				b.WriteByte(body[i])
				continue
			}
			i++
			switch body[i] {
			case '\\', '\'':
				b.WriteByte(body[i])
			case 'x':
				v, err := strconv.ParseUint(body[i+1:i+3], 16, 8)
				require.NoError(t, err)
				b.WriteByte(byte(v))
				i += 2
			default:
				t.Fatalf("unexpected escape in %q", q)
			}
		}
	case strings.HasPrefix(q, "'"):
		for _, part := range strings.Split(q, `'\''`) {
			b.WriteString(strings.TrimSuffix(strings.TrimPrefix(part, "'"), "'"))
			b.WriteString("'")
		}
		return strings.TrimSuffix(b.String(), "'")
	default:
		b.WriteString(q)
	}
	return b.String()
}
