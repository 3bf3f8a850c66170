package scheduler

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"strconv"
	"strings"
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

// PEHostfileError rejects a line of a $PE_HOSTFILE.
type PEHostfileError struct {
	Line   int
	Reason string
}

func (e *PEHostfileError) Error() string {
	return fmt.Sprintf("parsing PE hostfile: line %d: %s", e.Line, e.Reason)
}

// maxPEHostfileLine bounds a line; real lines are a host name, a number and a queue name.
const maxPEHostfileLine = 64 << 10

// maxPEHostSlots bounds the slots of one line, far above any host's, so that a corrupt count cannot make
// Slots overflow or MachinefileSlots render without end.
const maxPEHostSlots = 1 << 20

// ParsePEHostfile reads a $PE_HOSTFILE. Blank lines are skipped; every other line needs a host and a positive
// slot count (at most 1,048,576), and may have a queue and a processor range.
func ParsePEHostfile(r io.Reader) (PEHostfile, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), maxPEHostfileLine)
	var hf PEHostfile
	for n := 1; sc.Scan(); n++ {
		f := strings.Fields(sc.Text())
		if len(f) == 0 {
			continue
		}
		if len(f) < 2 || len(f) > 4 {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("want 2 to 4 fields, got %d", len(f))}
		}
		slots, err := strconv.Atoi(f[1])
		if err != nil || slots < 1 || slots > maxPEHostSlots {
			return nil, &PEHostfileError{Line: n, Reason: fmt.Sprintf("slot count %q is not a number from 1 to %d", f[1], maxPEHostSlots)}
		}
		h := PEHost{Host: f[0], Slots: slots}
		if len(f) > 2 {
			h.Queue = f[2]
		}
		if len(f) > 3 {
			h.Processors = f[3]
		}
		hf = append(hf, h)
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading PE hostfile: %w", err)
	}
	return hf, nil
}

// Slots returns the total number of slots.
func (hf PEHostfile) Slots() int {
	n := 0
	for _, h := range hf {
		n += h.Slots
	}
	return n
}

// UniqueHosts returns each host once, in order of first appearance (MachinefileHosts).
func (hf PEHostfile) UniqueHosts() []string {
	hosts, _ := hf.merge()
	return hosts
}

// HostSlots returns "host:slots" for each host, with the slots of a host in several queues added up
// (MachinefileHostSlots).
func (hf PEHostfile) HostSlots() []string {
	hosts, slots := hf.merge()
	out := make([]string, len(hosts))
	for i, h := range hosts {
		out[i] = h + ":" + strconv.Itoa(slots[h])
	}
	return out
}

// Machinefile renders the allocation in format f, one entry per line, as the jobscripts write it.
func (hf PEHostfile) Machinefile(f MachinefileFormat) []byte {
	var lines []string
	switch f {
	case MachinefileHostSlots:
		lines = hf.HostSlots()
	case MachinefileSlots:
		for _, h := range hf {
			for range h.Slots {
				lines = append(lines, h.Host)
			}
		}
	default:
		lines = hf.UniqueHosts()
	}
	var b bytes.Buffer
	for _, l := range lines {
		b.WriteString(l)
		b.WriteByte('\n')
	}
	return b.Bytes()
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
