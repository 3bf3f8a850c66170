package envvar

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestIsName(t *testing.T) {
	for name, want := range map[string]bool{"A": true, "_a1": true, "I_MPI_FABRICS": true, "": false, "1A": false, "A-B": false, "A B": false, "é": false, "A=": false} {
		assert.Equal(t, want, IsName(name), name)
	}
}

// TestIsNameCharacterBounds: the characters on each side of every range a name may use.
func TestIsNameCharacterBounds(t *testing.T) {
	for _, tt := range []struct {
		c           byte
		first, rest bool
	}{
		{'_', true, true},
		{'A', true, true}, {'Z', true, true}, {'@', false, false}, {'[', false, false},
		{'a', true, true}, {'z', true, true}, {'`', false, false}, {'{', false, false},
		{'0', false, true}, {'9', false, true}, {'/', false, false}, {':', false, false},
		{0x7f, false, false}, {0x80, false, false}, {0xff, false, false}, {0, false, false},
	} {
		assert.Equal(t, tt.first, IsName(string(tt.c)), "%q alone", tt.c)
		assert.Equal(t, tt.first, IsName(string(tt.c)+"A"), "%q first", tt.c)
		assert.Equal(t, tt.rest, IsName("A"+string(tt.c)), "%q after a letter", tt.c)
		assert.Equal(t, tt.rest, IsName("A"+string(tt.c)+"A"), "%q inside", tt.c)
		assert.Equal(t, tt.rest, IsName("_"+string(tt.c)), "%q after '_'", tt.c)
	}
}

func TestClip(t *testing.T) {
	at := strings.Repeat("x", 64)
	assert.Equal(t, `""`, Clip(""))
	assert.Equal(t, `"`+at+`"`, Clip(at), "64 bytes are quoted whole")
	assert.Equal(t, `"`+at+`"… (65 bytes)`, Clip(at+"y"), "65 bytes are cut to 64")
	assert.Equal(t, `"\x00"`, Clip("\x00"))
}

func TestSplit(t *testing.T) {
	tests := []struct {
		name, in            string
		wantName, wantValue string
		wantErr             string
	}{
		{name: "plain", in: "A=b", wantName: "A", wantValue: "b"},
		{name: "empty value", in: "A=", wantName: "A"},
		{name: "equals in value", in: "A=b=c", wantName: "A", wantValue: "b=c"},
		{name: "no equals", in: "A", wantErr: "no '='"},
		{name: "bad name", in: "1A=x", wantErr: `"1A" is not a variable name`},
		{name: "NUL", in: "TOKEN=s3cr3t\x00", wantErr: "the value of TOKEN holds a NUL byte"},
		{name: "NUL first", in: "TOKEN=\x00s3cr3t", wantErr: "NUL"},
		{name: "NUL in the name", in: "A\x00=s3cr3t", wantErr: `"A\x00" is not a variable name`},
		{name: "empty name", in: "=s3cr3t", wantErr: `"" is not a variable name`},
		{name: "empty", in: "", wantErr: `no '=' in ""`},
		{name: "long name", in: strings.Repeat("-", 1<<20) + "=x", wantErr: "(1048576 bytes)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			name, value, err := Split(tt.in)
			if tt.wantErr != "" {
				require.ErrorContains(t, err, tt.wantErr)
				assert.NotContains(t, err.Error(), "s3cr3t")
				assert.Less(t, len(err.Error()), 200)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.wantName, name)
			assert.Equal(t, tt.wantValue, value)
		})
	}
}
