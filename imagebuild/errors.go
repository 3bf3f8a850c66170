package imagebuild

import (
	"errors"
	"fmt"
)

var (
	// ErrRunUnavailable is the error of a RUN step in a build without a Runner.
	ErrRunUnavailable = errors.New("RUN not available: no runner configured (see WithRunner)")
	// ErrUnsupportedInstruction is an instruction, flag or form that imagebuild does not
	// implement (multi-stage builds, ONBUILD, remote ADD, here-documents, ...) or does
	// not know.
	ErrUnsupportedInstruction = errors.New("unsupported instruction")
	// ErrSyntax is a Dockerfile that does not parse, or an instruction with malformed
	// arguments.
	ErrSyntax = errors.New("dockerfile syntax error")
	// ErrUnsafePath is a source outside the build context, or an archive entry or
	// destination that would land outside its destination directory.
	ErrUnsafePath = errors.New("unsafe path")
)

// StepError is the failure of one step, with where it came from. errors.Is matches
// the cause: ErrRunUnavailable, ErrUnsupportedInstruction, ErrSyntax, ErrUnsafePath,
// fs.ErrNotExist for a missing source, and so on.
type StepError struct {
	// Index is the step's position in the build, from 0; -1 for a Dockerfile error
	// that precedes the steps (FROM, syntax).
	Index int
	// Line is the step's first line in the Dockerfile, or 0 for steps given in code.
	Line int
	// Instruction is the instruction as written in the Dockerfile, or the step's
	// String for steps given in code.
	Instruction string
	Err         error
}

func (e *StepError) Error() string {
	where := fmt.Sprintf("step %d", e.Index+1)
	if e.Line > 0 {
		where = fmt.Sprintf("line %d", e.Line)
	}
	if e.Instruction == "" {
		return where + ": " + e.Err.Error()
	}
	return fmt.Sprintf("%s: %s: %v", where, e.Instruction, e.Err)
}

func (e *StepError) Unwrap() error { return e.Err }

// ArchiveEntryError is an entry of an ADD archive that imagebuild refuses; errors.Is
// matches ErrUnsafePath for names that climb out of the destination.
type ArchiveEntryError struct {
	Archive string // the archive's path in the build context
	Entry   string // the entry's name as stored
	Err     error
}

func (e *ArchiveEntryError) Error() string {
	return fmt.Sprintf("archive %s: entry %q: %v", e.Archive, e.Entry, e.Err)
}

func (e *ArchiveEntryError) Unwrap() error { return e.Err }
