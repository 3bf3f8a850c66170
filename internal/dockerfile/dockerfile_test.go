package dockerfile

import (
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"

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

func TestParseDetails(t *testing.T) {
	f, err := Parse(strings.NewReader("FROM a\nONBUILD RUN make\nRUN <<EOT\necho hi\nEOT\nLABEL a=b c=\"d e\"\nRUN ls\n  \n"))
	require.NoError(t, err)
	require.Len(t, f.Instructions, 5)
	onbuild := f.Instructions[1]
	assert.Equal(t, "onbuild", onbuild.Command)
	assert.Equal(t, []string{"RUN make"}, onbuild.Args, "ONBUILD keeps its instruction as written")
	assert.Equal(t, "ONBUILD RUN make", onbuild.Original)
	assert.False(t, onbuild.Heredoc)
	heredoc := f.Instructions[2]
	assert.True(t, heredoc.Heredoc)
	assert.Equal(t, [2]int{3, 5}, [2]int{heredoc.Line, heredoc.EndLine})
	assert.Equal(t, []string{"a", "b", "=", "c", "\"d e\"", "="}, f.Instructions[3].Args)
	assert.False(t, f.Instructions[3].JSON)
	assert.Empty(t, f.Instructions[4].Flags)
	assert.Empty(t, f.Warnings)
}

func TestParseWarnings(t *testing.T) {
	f, err := Parse(strings.NewReader("FROM a\nRUN echo \\\n\n  done\n"))
	require.NoError(t, err)
	require.NotEmpty(t, f.Warnings)
	assert.Equal(t, 4, f.Warnings[0].Line, "the warning names the line after the empty continuation line")
	assert.Contains(t, f.Warnings[0].Message, "Empty continuation line")
}

func TestSyntaxErrorMessage(t *testing.T) {
	assert.Equal(t, "line 3: bad", (&SyntaxError{Line: 3, Msg: "bad"}).Error())
	assert.Equal(t, "bad", (&SyntaxError{Msg: "bad"}).Error(), "no line when none is known")

	_, err := Parse(strings.NewReader(""))
	var se *SyntaxError
	require.ErrorAs(t, err, &se)
	assert.Zero(t, se.Line)
	assert.Equal(t, "file with no instructions", err.Error())
}

func TestExpandError(t *testing.T) {
	// The message is the lexer's own, without BuildKit's "failed to process <word>" around it: the caller
	// names the word and where it is.
	for word, want := range map[string]string{
		"${A:?is unset}": "A: is unset",
		"${":             "syntax error: missing '}'",
		"${A!}":          "unsupported modifier (!) in substitution",
		"'open":          "unexpected end of statement while looking for matching single-quote",
	} {
		_, err := Expand('\\', word, nil)
		require.Error(t, err, word)
		assert.Equal(t, want, err.Error(), word)
	}
	v, err := Expand('\\', "${A:?is unset}\\$A", []string{"A=1", "A=2"})
	require.NoError(t, err)
	assert.Equal(t, "2$A", v, "a later entry wins; the escape applies")
}

// TestParseReadError: a reader that fails is not a syntax error; its error comes back.
func TestParseReadError(t *testing.T) {
	boom := errors.New("connection reset")
	_, err := Parse(io.MultiReader(strings.NewReader("FROM a\nRUN x\n"), iotest.ErrReader(boom)))
	require.ErrorIs(t, err, boom)
	var se *SyntaxError
	assert.False(t, errors.As(err, &se), "%v", err)
	assert.ErrorContains(t, err, "reading Dockerfile")
}

// TestParseErrorFirstLine: an error in an instruction that spans lines names its first line, whatever line
// of it is at fault.
func TestParseErrorFirstLine(t *testing.T) {
	tests := []struct {
		name string
		text string
		want int
	}{
		{name: "one line", text: "FROM a\nENV a=b c\n", want: 2},
		{name: "continued", text: "FROM a\nENV a=b \\\n  c=d \\\n  e\n", want: 2},
		{name: "continued after a comment", text: "# c\nFROM a\n\nENV a=b \\\n  e\nRUN x\n", want: 4},
		{name: "empty file", text: "", want: 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse(strings.NewReader(tt.text))
			var se *SyntaxError
			require.ErrorAs(t, err, &se)
			assert.Equal(t, tt.want, se.Line, "%v", err)
		})
	}
}
