package imb

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/envvar"
)

// Column is one column of an IMB result table, identified by its header text.
type Column int

// The columns IMB prints (IMB_output.c, IMB_print_header). Which appear depends on
// the benchmark's output format; Benchmark.Columns lists them in table order.
const (
	ColumnGroup        Column = iota + 1 // Group (-multi 1)
	ColumnBytes                          // #bytes
	ColumnRepetitions                    // #repetitions
	ColumnTime                           // t[usec]
	ColumnTimeMin                        // t_min[usec]
	ColumnTimeMax                        // t_max[usec]
	ColumnTimeAvg                        // t_avg[usec]
	ColumnMBytesPerSec                   // Mbytes/sec
	ColumnMsgPerSec                      // Msg/sec (Uniband, Biband, IMB-P2P)
	ColumnTimeOverlap                    // t_ovrl[usec] (non-blocking benchmarks)
	ColumnTimePure                       // t_pure[usec]
	ColumnTimeCPU                        // t_CPU[usec]
	ColumnOverlap                        // overlap[%]
	ColumnDefects                        // defects (IMB built with CHECK)
)

// columnNames is the header text of each column. Never modified.
var columnNames = map[Column]string{
	ColumnGroup:        "Group",
	ColumnBytes:        "#bytes",
	ColumnRepetitions:  "#repetitions",
	ColumnTime:         "t[usec]",
	ColumnTimeMin:      "t_min[usec]",
	ColumnTimeMax:      "t_max[usec]",
	ColumnTimeAvg:      "t_avg[usec]",
	ColumnMBytesPerSec: "Mbytes/sec",
	ColumnMsgPerSec:    "Msg/sec",
	ColumnTimeOverlap:  "t_ovrl[usec]",
	ColumnTimePure:     "t_pure[usec]",
	ColumnTimeCPU:      "t_CPU[usec]",
	ColumnOverlap:      "overlap[%]",
	ColumnDefects:      "defects",
}

// String returns the column's header text, e.g. "t[usec]".
func (c Column) String() string {
	if n, ok := columnNames[c]; ok {
		return n
	}
	return "Column(" + strconv.Itoa(int(c)) + ")"
}

func columnByName(name string) (Column, bool) {
	for c, n := range columnNames {
		if n == name {
			return c, true
		}
	}
	return 0, false
}

// Failure is what IMB prints instead of numbers for a message size it could not
// measure.
type Failure string

// The failures IMB reports (IMB_display_times).
const (
	OutOfMemory Failure = "out-of-mem."
	IntOverflow Failure = "int-overflow."
	TimeOut     Failure = "time-out."
)

// Row is one line of a result table. Only the fields for the table's Columns are
// set; times are in microseconds (t[usec] is half the round trip for PingPong).
// MBytesPerSec is in 10^6 bytes per second for IMB 2018 and later but 2^20 in the
// IMB 4.x shipped with Intel MPI 5.x.
type Row struct {
	Group        int
	Bytes        int64
	Repetitions  int64
	Time         float64
	TimeMin      float64
	TimeMax      float64
	TimeAvg      float64
	MBytesPerSec float64
	MsgPerSec    float64
	TimeOverlap  float64
	TimePure     float64
	TimeCPU      float64
	Overlap      float64
	Defects      float64

	// Failure is set when IMB could not measure this message size; then only Group
	// and Bytes are set, and FailureDetail holds the rest of IMB's message, cut to 200
	// bytes.
	Failure       Failure
	FailureDetail string

	// Line is the row's line number in the input, counting from 1.
	Line int
}

// Cell returns r's value in column c as text, as a table of results shows it: Group, #bytes and
// #repetitions as integers, every other column with two decimals, as IMB prints them ("1082.94"). It
// returns "" for a Column that is none of the constants above. Of a Failure row only Group and Bytes
// hold values.
func (r Row) Cell(c Column) string {
	switch c {
	case ColumnGroup:
		return strconv.Itoa(r.Group)
	case ColumnBytes:
		return strconv.FormatInt(r.Bytes, 10)
	case ColumnRepetitions:
		return strconv.FormatInt(r.Repetitions, 10)
	}
	if _, ok := columnNames[c]; !ok {
		return ""
	}
	return strconv.FormatFloat(*floatField(&r, c), 'f', 2, 64)
}

// Benchmark is one result table: one benchmark at one process count.
type Benchmark struct {
	// Name is the benchmark, e.g. "PingPong", without the "Multi-" prefix.
	Name string
	// Multi is true for "# Benchmarking Multi-<name>" (-multi 0 or 1).
	Multi bool
	// Processes is the number of processes taking part (per group with -multi).
	Processes int
	// Groups is the number of simultaneous groups with -multi, 1 otherwise.
	Groups int
	// Waiting is the number of further processes idling in MPI_Barrier.
	Waiting int
	// Mode is "AGGREGATE" or "NON-AGGREGATE" where IMB prints one (IMB-EXT, IMB-IO).
	Mode string
	// Columns lists the table's columns in order.
	Columns []Column
	// Rows are the table's rows in order.
	Rows []Row
	// Line is the line number of the "# Benchmarking" line.
	Line int
}

// Has reports whether the table has column c.
func (b Benchmark) Has(c Column) bool {
	for _, x := range b.Columns {
		if x == c {
			return true
		}
	}
	return false
}

// ErrMalformed is wrapped by every *ParseError.
var ErrMalformed = errors.New("malformed IMB output")

// ParseError reports a line that does not fit IMB's output format.
type ParseError struct {
	Line   int    // line number, counting from 1
	Text   string // the line, cut to 200 bytes
	Reason string
}

func (e *ParseError) Error() string {
	return fmt.Sprintf("IMB output line %d: %s: %q", e.Line, e.Reason, e.Text)
}

// Unwrap returns ErrMalformed.
func (e *ParseError) Unwrap() error { return ErrMalformed }

// maxLine bounds one input line; IMB's longest lines are failure rows of about 200
// bytes.
const maxLine = 1 << 20

// maxRows bounds the rows of one table. IMB prints one row per message size (at most
// 31 by default, a few hundred with -msglen) and group: 65,536 leaves room for any
// real run while keeping a table within a few tens of MiB.
const maxRows = 1 << 16

// maxText bounds the free text kept from a line (FailureDetail, Mode).
const maxText = 200

// cut returns at most maxText bytes of s as a string of its own, which does not keep the line it came from
// alive.
func cut(s string) string {
	return strings.Clone(s[:min(len(s), maxText)])
}

// Scanner reads IMB results from a stream one benchmark at a time, holding only the
// current table in memory. Lines outside result tables (the preamble, MPI debug
// output, the launcher's own messages) are skipped. A line longer than 1 MiB or a
// table of more than 65,536 rows is an error, so memory stays bounded whatever the
// stream holds.
type Scanner struct {
	lines *bufio.Scanner
	line  int
	cur   *Benchmark
	rows  bool // inside cur's rows
	next  *Benchmark
	err   error
}

// NewScanner returns a Scanner reading r.
func NewScanner(r io.Reader) *Scanner {
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 0, 4096), maxLine)
	return &Scanner{lines: s}
}

// Scan advances to the next benchmark, which Benchmark then returns. It returns
// false at the end of the input or on the first error, which Err then returns.
func (s *Scanner) Scan() bool {
	s.next = nil
	if s.err != nil {
		return false
	}
	for s.next == nil {
		if !s.lines.Scan() {
			if err := s.lines.Err(); err != nil {
				s.err = fmt.Errorf("reading IMB output after line %d: %w", s.line, err)
				return false
			}
			s.finish()
			return s.next != nil && s.err == nil
		}
		s.line++
		if err := s.step(s.lines.Text()); err != nil {
			s.err = err
			return false
		}
	}
	return true
}

// Benchmark returns the benchmark the last successful Scan read.
func (s *Scanner) Benchmark() Benchmark {
	if s.next == nil {
		return Benchmark{}
	}
	return *s.next
}

// Err returns the first error met, or nil at a clean end of input.
func (s *Scanner) Err() error { return s.err }

func (s *Scanner) fail(text, reason string) error {
	if len(text) > 200 {
		text = text[:200]
	}
	return &ParseError{Line: s.line, Text: text, Reason: reason}
}

// finish handles the end of input.
func (s *Scanner) finish() {
	if s.cur == nil {
		return
	}
	if !s.rows {
		s.err = &ParseError{Line: s.line, Reason: "input ends before the column header of benchmark " + s.cur.Name}
		return
	}
	s.emit()
}

func (s *Scanner) emit() {
	s.next, s.cur, s.rows = s.cur, nil, false
}

func (s *Scanner) step(text string) error {
	trimmed := strings.TrimSpace(text)
	if s.cur != nil && s.rows {
		switch {
		case trimmed == "":
			if s.cur.Has(ColumnGroup) {
				// -multi 1 prints a blank line before every message size.
				return nil
			}
			s.emit()
			return nil
		case strings.HasPrefix(trimmed, "#"):
			s.emit()
			// The line may start the next benchmark.
			return s.outside(text, trimmed)
		}
		return s.row(text)
	}
	if s.cur != nil {
		return s.header(text, trimmed)
	}
	return s.outside(text, trimmed)
}

// benchmarkLine returns the name part of a "# Benchmarking <name>" line.
func benchmarkLine(trimmed string) (string, bool) {
	rest, ok := strings.CutPrefix(trimmed, "# Benchmarking")
	if !ok || rest != "" && rest[0] != ' ' && rest[0] != '\t' {
		return "", false
	}
	return rest, true
}

func (s *Scanner) outside(text, trimmed string) error {
	name, ok := benchmarkLine(trimmed)
	if !ok {
		return nil
	}
	name = strings.TrimSpace(name)
	b := &Benchmark{Line: s.line, Groups: 1}
	if n, ok := strings.CutPrefix(name, "Multi-"); ok {
		b.Multi, name = true, n
	}
	if name == "" || strings.ContainsAny(name, " \t") {
		return s.fail(text, "benchmark name missing or not one word")
	}
	b.Name = cut(name)
	s.cur = b
	return nil
}

func (s *Scanner) header(text, trimmed string) error {
	b := s.cur
	if f := strings.Fields(trimmed); len(f) > 0 {
		if _, ok := columnByName(f[0]); ok {
			return s.columns(text)
		}
	}
	_, next := benchmarkLine(trimmed)
	switch {
	case trimmed == "":
		return nil
	case next:
		return s.fail(text, "benchmark "+b.Name+" has no column header before the next benchmark")
	case strings.HasPrefix(trimmed, "# #processes ="):
		rest := strings.TrimSpace(strings.TrimPrefix(trimmed, "# #processes ="))
		rest, _, _ = strings.Cut(rest, ";")
		n, err := positive(strings.TrimSpace(rest))
		if err != nil {
			return s.fail(text, "#processes is not a positive number")
		}
		b.Processes = n
	case strings.HasPrefix(trimmed, "# ( "):
		return s.note(text, trimmed)
	case strings.HasPrefix(trimmed, "#"):
		if mode, ok := strings.CutPrefix(strings.TrimSpace(strings.TrimPrefix(trimmed, "#")), "MODE:"); ok {
			b.Mode = cut(strings.TrimSpace(mode))
		}
	default:
		return s.fail(text, "expected the column header of benchmark "+b.Name)
	}
	return nil
}

// note parses "# ( N additional processes waiting in MPI_Barrier)" and
// "# ( G groups of N processes each running simultaneous ) ".
func (s *Scanner) note(text, trimmed string) error {
	f := strings.Fields(strings.TrimPrefix(trimmed, "# ( "))
	switch {
	case len(f) >= 3 && (f[1] == "additional"):
		n, err := positive(f[0])
		if err != nil {
			return s.fail(text, "count of waiting processes is not a positive number")
		}
		s.cur.Waiting = n
	case len(f) >= 5 && f[1] == "groups" && f[2] == "of":
		g, err1 := positive(f[0])
		n, err2 := positive(f[3])
		if err1 != nil || err2 != nil {
			return s.fail(text, "group counts are not positive numbers")
		}
		s.cur.Groups, s.cur.Processes = g, n
	}
	return nil
}

func (s *Scanner) columns(text string) error {
	b := s.cur
	fields := strings.Fields(text)
	seen := make(map[Column]bool, len(fields))
	for _, f := range fields {
		c, ok := columnByName(f)
		if !ok {
			return s.fail(text, "unknown column "+envvar.Clip(f)+" in the header of benchmark "+b.Name)
		}
		if seen[c] {
			return s.fail(text, "column "+f+" appears twice")
		}
		seen[c] = true
		b.Columns = append(b.Columns, c)
	}
	if !seen[ColumnRepetitions] {
		return s.fail(text, "header of benchmark "+b.Name+" has no #repetitions column")
	}
	if b.Processes == 0 {
		return s.fail(text, "benchmark "+b.Name+" has no #processes line before its header")
	}
	s.rows = true
	return nil
}

func (s *Scanner) row(text string) error {
	b := s.cur
	fields := strings.Fields(text)
	r := Row{Line: s.line}
	// A failure row is [group] size keyword...; the size is printed even for tables
	// without a #bytes column.
	lead := 1
	if b.Has(ColumnGroup) {
		lead = 2
	}
	if len(fields) > lead {
		for _, f := range []Failure{OutOfMemory, IntOverflow, TimeOut} {
			if !strings.HasPrefix(fields[lead], string(f)) {
				continue
			}
			ints := make([]int64, lead)
			for i := range ints {
				v, err := strconv.ParseInt(fields[i], 10, 64)
				if err != nil || v < 0 {
					return s.fail(text, "failure row does not start with non-negative integers")
				}
				ints[i] = v
			}
			if lead == 2 {
				if ints[0] > math.MaxInt32 {
					return s.fail(text, "group number out of range")
				}
				r.Group = int(ints[0])
			}
			r.Bytes = ints[lead-1]
			r.Failure = f
			_, detail, _ := strings.Cut(text, string(f))
			r.FailureDetail = cut(strings.TrimSpace(strings.TrimPrefix(detail, ";")))
			return s.add(text, r)
		}
	}
	if len(fields) != len(b.Columns) {
		return s.fail(text, fmt.Sprintf("row has %d fields, the header of %s has %d columns", len(fields), b.Name, len(b.Columns)))
	}
	for i, c := range b.Columns {
		if err := set(&r, c, fields[i]); err != nil {
			return s.fail(text, c.String()+": "+err.Error())
		}
	}
	return s.add(text, r)
}

// add appends r to the current table, up to maxRows rows.
func (s *Scanner) add(text string, r Row) error {
	if len(s.cur.Rows) >= maxRows {
		return s.fail(text, fmt.Sprintf("more than %d rows in the table of %s", maxRows, s.cur.Name))
	}
	s.cur.Rows = append(s.cur.Rows, r)
	return nil
}

func set(r *Row, c Column, field string) error {
	switch c {
	case ColumnGroup:
		n, err := strconv.Atoi(field)
		if err != nil || n < 0 {
			return errors.New("not a non-negative integer")
		}
		r.Group = n
		return nil
	case ColumnBytes, ColumnRepetitions:
		n, err := strconv.ParseInt(field, 10, 64)
		if err != nil || n < 0 {
			return errors.New("not a non-negative integer")
		}
		if c == ColumnBytes {
			r.Bytes = n
		} else {
			r.Repetitions = n
		}
		return nil
	}
	v, err := strconv.ParseFloat(field, 64)
	if err != nil || math.IsNaN(v) || math.IsInf(v, 0) {
		return errors.New("not a finite number")
	}
	*floatField(r, c) = v
	return nil
}

// floatField is the field of r that holds column c, one of the columns of floating-point values.
func floatField(r *Row, c Column) *float64 {
	switch c {
	case ColumnTime:
		return &r.Time
	case ColumnTimeMin:
		return &r.TimeMin
	case ColumnTimeMax:
		return &r.TimeMax
	case ColumnTimeAvg:
		return &r.TimeAvg
	case ColumnMBytesPerSec:
		return &r.MBytesPerSec
	case ColumnMsgPerSec:
		return &r.MsgPerSec
	case ColumnTimeOverlap:
		return &r.TimeOverlap
	case ColumnTimePure:
		return &r.TimePure
	case ColumnTimeCPU:
		return &r.TimeCPU
	case ColumnOverlap:
		return &r.Overlap
	}
	return &r.Defects
}

func positive(s string) (int, error) {
	n, err := strconv.Atoi(s)
	if err != nil || n <= 0 {
		return 0, errors.New("not a positive integer")
	}
	return n, nil
}

// Parse reads every benchmark in r. On error it returns the benchmarks read before
// the error together with it: a *ParseError (ErrMalformed) for input that does not
// fit IMB's format, or the reader's error.
func Parse(r io.Reader) ([]Benchmark, error) {
	var out []Benchmark
	s := NewScanner(r)
	for s.Scan() {
		out = append(out, s.Benchmark())
	}
	return out, s.Err()
}
