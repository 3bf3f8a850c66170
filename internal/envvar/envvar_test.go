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
		{name: "NUL", in: "TOKEN=s3cr3t\x00", wantErr: "NUL"},
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
