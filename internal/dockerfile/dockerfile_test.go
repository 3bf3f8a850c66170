package dockerfile

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParse(t *testing.T) {
	f, err := Parse(strings.NewReader("# escape=`\nFROM a\n\nRUN echo `\n  one `\n  two\nCOPY --chown=1:1 [\"a b\", \"/c\"]\nENV K V W\nHEALTHCHECK CMD true\nFOO bar\n"))
	require.NoError(t, err)
	require.Len(t, f.Instructions, 6)
	run := f.Instructions[1]
	assert.Equal(t, "run", run.Command)
	assert.Equal(t, [2]int{4, 6}, [2]int{run.Line, run.EndLine})
	assert.Equal(t, []string{"echo   one   two"}, run.Args)
	cp := f.Instructions[2]
	assert.True(t, cp.JSON)
	assert.Equal(t, []string{"--chown=1:1"}, cp.Flags)
	assert.Equal(t, []string{"a b", "/c"}, cp.Args)
	assert.Equal(t, []string{"K", "V W", ""}, f.Instructions[3].Args, "legacy ENV: the rest of the line is the value")
	assert.Equal(t, []string{"CMD", "true"}, f.Instructions[4].Args)
	assert.Equal(t, "foo", f.Instructions[5].Command)

	v, err := f.Expand("${A:-x}`$B", []string{"A=1"})
	require.NoError(t, err)
	assert.Equal(t, "1$B", v, "the escape directive applies to expansion")
}

func TestParseErrorLine(t *testing.T) {
	_, err := Parse(strings.NewReader("FROM a\nCMD [\"a\", 1]\n"))
	var se *SyntaxError
	require.True(t, errors.As(err, &se), "%v", err)
	assert.Equal(t, 2, se.Line)
}
