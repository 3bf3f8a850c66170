// Package dockerfile splits a Dockerfile into instructions and expands variables in
// words the way Docker does. It wraps BuildKit's Dockerfile parser and shell lexer so
// that no BuildKit type reaches imagebuild's API; imagebuild gives the instructions
// their meaning.
package dockerfile

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// Instruction is one instruction of a Dockerfile, continuation lines joined.
type Instruction struct {
	// Command is the instruction's keyword in lower case ("from", "run", ...); an
	// unknown keyword is kept as written, lower-cased, with no Args.
	Command string
	// Flags are the instruction's flags as written, e.g. "--chown=1:1".
	Flags []string
	// Args are the instruction's arguments. ENV and LABEL give key, value and
	// separator triples (the separator is "=" or, for the legacy "ENV k v" form, "").
	// HEALTHCHECK gives its type ("CMD" or "NONE") followed by the command; ONBUILD gives the instruction it
	// wraps, as written.
	Args []string
	// JSON reports that the arguments were written as a JSON array (exec form).
	JSON bool
	// Heredoc reports that the instruction carries here-documents.
	Heredoc bool
	// Line and EndLine are the 1-based first and last lines of the instruction.
	Line, EndLine int
	// Original is the instruction's text with continuation lines joined.
	Original string
}

// Warning is something the parser accepted but flags.
type Warning struct {
	Line    int
	Message string
}

// File is a parsed Dockerfile.
type File struct {
	Instructions []Instruction
	Warnings     []Warning
	escape       rune
}

// SyntaxError is a Dockerfile that cannot be split into instructions.
type SyntaxError struct {
	Line int
	Msg  string
}

func (e *SyntaxError) Error() string {
	if e.Line > 0 {
		return fmt.Sprintf("line %d: %s", e.Line, e.Msg)
	}
	return e.Msg
}

// Parse reads a Dockerfile. It fails with a *SyntaxError, or with r's error, wrapped, when reading fails.
func Parse(r io.Reader) (*File, error) {
	src := &sourceReader{r: r}
	res, err := parser.Parse(src)
	if src.err != nil {
		return nil, fmt.Errorf("reading Dockerfile: %w", src.err)
	}
	if err != nil {
		return nil, &SyntaxError{Line: errorLine(err), Msg: rootMessage(err)}
	}
	f := &File{escape: res.EscapeToken}
	for _, w := range res.Warnings {
		line := 0
		if w.Location != nil {
			line = w.Location.Start.Line
		}
		f.Warnings = append(f.Warnings, Warning{Line: line, Message: w.Short})
	}
	for _, n := range res.AST.Children {
		in := Instruction{
			Command:  strings.ToLower(n.Value),
			Flags:    n.Flags,
			JSON:     n.Attributes["json"],
			Heredoc:  len(n.Heredocs) > 0,
			Line:     n.StartLine,
			EndLine:  n.EndLine,
			Original: n.Original,
		}
		for a := n.Next; a != nil; a = a.Next {
			if len(a.Children) > 0 { // ONBUILD's argument is the instruction it wraps
				in.Args = append(in.Args, a.Children[0].Original)
				continue
			}
			in.Args = append(in.Args, a.Value)
		}
		f.Instructions = append(f.Instructions, in)
	}
	return f, nil
}

// sourceReader remembers the error of the reader it wraps, so that a failed read is not taken for bad syntax.
type sourceReader struct {
	r   io.Reader
	err error
}

func (s *sourceReader) Read(p []byte) (int, error) {
	n, err := s.r.Read(p)
	if err != nil && err != io.EOF {
		s.err = err
	}
	return n, err
}

// errorLine is the first line a parser error points at. parser.Parse gives every error of its own a
// location: one range per line of the instruction at fault, or line 0 for a file with no instructions.
func errorLine(err error) int {
	var le *parser.LocationError
	if errors.As(err, &le) {
		for _, r := range slices.Concat(le.Locations...) {
			return r.Start.Line
		}
	}
	return 0
}

// rootMessage is err's message without the stack decorations BuildKit's errors carry.
func rootMessage(err error) string {
	for {
		u := errors.Unwrap(err)
		if u == nil {
			return err.Error()
		}
		err = u
	}
}

// Expand expands variables in word as Docker does for ADD, COPY, ENV, EXPOSE, FROM,
// LABEL, STOPSIGNAL, USER, VOLUME and WORKDIR: $VAR, ${VAR}, ${VAR:-default},
// ${VAR:+alt} and the other forms BuildKit knows, quotes removed, escapes applied.
// env holds KEY=VALUE entries; a later entry wins.
func (f *File) Expand(word string, env []string) (string, error) {
	return Expand(f.escape, word, env)
}

// Expand is File.Expand for a given escape character.
func Expand(escape rune, word string, env []string) (string, error) {
	out, _, err := shell.NewLex(escape).ProcessWord(word, shell.EnvsFromSlice(env))
	if err != nil {
		return "", errors.New(rootMessage(err))
	}
	return out, nil
}
