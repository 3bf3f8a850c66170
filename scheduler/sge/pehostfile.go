package sge

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/hpcship/hpcship/internal/envvar"
	"github.com/hpcship/hpcship/internal/jobscript"
	"github.com/hpcship/hpcship/scheduler"
)

// PEHost is one line of Grid Engine's $PE_HOSTFILE: "host slots queue processors".
type PEHost struct {
	Host  string
	Slots int
	// Queue is the queue instance, such as "all.q@node1".
	Queue string
	// Processors is the core binding or processor range, "UNDEFINED" without -binding.
	Processors string
}

// PEHostfile is the allocation of a parallel job, one entry per host and queue, master host first.
type PEHostfile []PEHost

// ErrPEHostfileTooLarge is wrapped by the errors for a $PE_HOSTFILE, or a machinefile rendered from one,
// beyond the bounds ParsePEHostfile documents.
var ErrPEHostfileTooLarge = errors.New("PE hostfile too large")

// PEHostfileError rejects a line of a $PE_HOSTFILE (Line 0: the file as a whole).
type PEHostfileError struct {
	Line   int
	Reason string
	// Err is ErrPEHostfileTooLarge for a file, or an allocation, beyond the bounds; nil otherwise.
	Err error
}

func (e *PEHostfileError) Error() string {
	if e.Line == 0 {
		return "parsing PE hostfile: " + e.Reason
	}
	return fmt.Sprintf("parsing PE hostfile: line %d: %s", e.Line, e.Reason)
}

// Unwrap returns Err.
func (e *PEHostfileError) Unwrap() error { return e.Err }

// ParsePEHostfile reads a $PE_HOSTFILE with the bounds the jobscript's own reader applies, so that a file
// one accepts the other accepts too. Blank lines are skipped; every other line has 2 to 4 fields separated by
// blanks or tabs: a host name of 1 to 255 ASCII letters, digits, '.', '_' and '-', a slot count of 1 to
// 1,048,576 (at most 7 digits), and optionally a queue and a processor range. The file must be printable ASCII
// (tabs allowed; a carriage return is refused, as the jobscript's reader does) and at most 16 MiB, the
// fields of a line at most 64 KiB together, its lines of hosts at most 65,536 and its slots at most
// 1,048,576 in all. A file
// beyond a bound gives a *PEHostfileError wrapping ErrPEHostfileTooLarge; memory stays proportional to the
// bounds, never to what a line claims.
func ParsePEHostfile(r io.Reader) (PEHostfile, error) {
	lr := &io.LimitedReader{R: r, N: jobscript.MaxHostfileBytes + 1}
	sc := bufio.NewScanner(lr)
	// The file's bound is the line's: the reader stops beyond it, and a line cannot be longer.
	sc.Buffer(make([]byte, 0, 4096), jobscript.MaxHostfileBytes+2)
	sc.Split(splitLines)
	var hf PEHostfile
	total := 0
	for n := 1; sc.Scan(); n++ {
		line := sc.Bytes()
		if i := bytes.IndexFunc(line, func(c rune) bool { return c != '\t' && (c < ' ' || c > '~') }); i >= 0 {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("byte %#x at %d is not printable ASCII", line[i], i)}
		}
		var f [5][]byte
		nf := fields(line, &f)
		if nf == 0 {
			continue
		}
		if nf < 2 || nf > 4 {
			got := strconv.Itoa(nf)
			if nf > 4 {
				got = "more"
			}
			return nil, &PEHostfileError{Line: n, Reason: "want 2 to 4 fields, got " + got}
		}
		if size := len(f[0]) + len(f[1]) + len(f[2]) + len(f[3]); size > jobscript.MaxHostfileFields {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("fields of %d bytes, more than %d", size, jobscript.MaxHostfileFields), Err: ErrPEHostfileTooLarge}
		}
		if !jobscript.IsHostName(string(f[0])) {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("host name %s is not 1 to %d letters, digits, '.', '_' and '-'", envvar.Clip(string(f[0])), jobscript.MaxHostName)}
		}
		if len(hf) == jobscript.MaxHostLines {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("more than %d lines of hosts", jobscript.MaxHostLines), Err: ErrPEHostfileTooLarge}
		}
		slots, ok := slotCount(f[1])
		if !ok {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("slot count %s is not a number from 1 to %d", envvar.Clip(string(f[1])), jobscript.MaxSlots)}
		}
		if total += slots; total > jobscript.MaxSlots {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("more than %d slots in all", jobscript.MaxSlots), Err: ErrPEHostfileTooLarge}
		}
		h := PEHost{Host: string(f[0]), Slots: slots}
		if nf > 2 {
			h.Queue = string(f[2])
		}
		if nf > 3 {
			h.Processors = string(f[3])
		}
		hf = append(hf, h)
	}
	if lr.N == 0 {
		return nil, &PEHostfileError{Reason: fmt.Sprintf("more than %d bytes", jobscript.MaxHostfileBytes), Err: ErrPEHostfileTooLarge}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading PE hostfile: %w", err)
	}
	return hf, nil
}

// fields splits line at blanks and tabs, as bash's read does with the default IFS, into f, and returns how
// many fields it found; a fifth one stands for all beyond the fourth.
func fields(line []byte, f *[5][]byte) int {
	n := 0
	for i := 0; i < len(line); {
		if line[i] == ' ' || line[i] == '\t' {
			i++
			continue
		}
		j := i
		for j < len(line) && line[j] != ' ' && line[j] != '\t' {
			j++
		}
		if n == len(f) {
			return n
		}
		f[n] = line[i:j]
		n++
		i = j
	}
	return n
}

// slotCount parses a slot count: 1 to MaxSlotDigits decimal digits, from 1 to MaxSlots.
func slotCount(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > jobscript.MaxSlotDigits {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, n >= 1 && n <= jobscript.MaxSlots
}

// splitLines is bufio.ScanLines without the removal of a carriage return: bash's read keeps it.
func splitLines(data []byte, atEOF bool) (int, []byte, error) {
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		return i + 1, data[:i], nil
	}
	if atEOF && len(data) > 0 {
		return len(data), data, nil
	}
	return 0, nil, nil
}

// Slots returns the total number of slots.
func (hf PEHostfile) Slots() int {
	n := 0
	for _, h := range hf {
		n += h.Slots
	}
	return n
}

// UniqueHosts returns each host once, in order of first appearance (scheduler.MachinefileHosts).
func (hf PEHostfile) UniqueHosts() []string {
	hosts, _ := hf.merge()
	return hosts
}

// HostSlots returns "host:slots" for each host, with the slots of a host in several queues added up
// (scheduler.MachinefileHostSlots).
func (hf PEHostfile) HostSlots() []string {
	hosts, slots := hf.merge()
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h + ":" + strconv.Itoa(slots[h])
	}
	return out
}

// Machinefile renders the allocation in format f, one entry per line, byte for byte as the jobscript writes
// it. Hosts and slot counts outside ParsePEHostfile's bounds, or a machinefile above 16 MiB, give a
// *PEHostfileError; the size is checked before anything is allocated.
func (hf PEHostfile) Machinefile(f scheduler.MachinefileFormat) ([]byte, error) {
	if f < scheduler.MachinefileHosts || f > scheduler.MachinefileOpenMPI {
		return nil, fmt.Errorf("rendering machinefile: unknown format %d", int(f))
	}
	total := 0
	for i, h := range hf {
		if !jobscript.IsHostName(h.Host) || h.Slots < 1 || h.Slots > jobscript.MaxSlots {
			return nil, &PEHostfileError{Line: i + 1, Reason: "host or slot count outside the bounds of ParsePEHostfile"}
		}
		if total += h.Slots; total > jobscript.MaxSlots {
			return nil, &PEHostfileError{Line: i + 1, Reason: fmt.Sprintf("more than %d slots in all", jobscript.MaxSlots), Err: ErrPEHostfileTooLarge}
		}
	}
	hosts, slots := hf.merge()
	var size int64
	for _, h := range hosts {
		size += jobscript.MachinefileSize(f, h, slots[h])
	}
	if size > jobscript.MaxMachinefileBytes {
		return nil, &PEHostfileError{Reason: fmt.Sprintf("the machinefile would take %d bytes, more than %d", size, jobscript.MaxMachinefileBytes), Err: ErrPEHostfileTooLarge}
	}
	var b bytes.Buffer
	b.Grow(int(size))
	if f == scheduler.MachinefileSlots {
		for _, h := range hf {
			for range h.Slots {
				b.WriteString(h.Host + "\n")
			}
		}
		return b.Bytes(), nil
	}
	for _, h := range hosts {
		switch f {
		case scheduler.MachinefileHostSlots:
			b.WriteString(h + ":" + strconv.Itoa(slots[h]) + "\n")
		case scheduler.MachinefileOpenMPI:
			b.WriteString(h + " slots=" + strconv.Itoa(slots[h]) + "\n")
		default:
			b.WriteString(h + "\n")
		}
	}
	return b.Bytes(), nil
}

func (hf PEHostfile) merge() ([]string, map[string]int) {
	var hosts []string
	slots := make(map[string]int, len(hf))
	for _, h := range hf {
		if _, ok := slots[h.Host]; !ok {
			hosts = append(hosts, h.Host)
		}
		slots[h.Host] += h.Slots
	}
	return hosts, slots
}
