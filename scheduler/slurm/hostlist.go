package slurm

import (
	"fmt"
	"strconv"
	"strings"
)

// Bounds on what ExpandHostlist and ParseTasksPerNode produce, so that a hostlist from the environment or a
// command cannot make a program allocate without limit: "n[0-99999999]" is 18 bytes.
const (
	// MaxHostlistHosts is the most hosts an expression may expand to. Slurm itself refuses more than 65,536
	// in one bracket range.
	MaxHostlistHosts = 1 << 16
	// MaxHostlistBytes is the most bytes the expanded host names may take together.
	MaxHostlistBytes = 16 << 20
	// maxHostName is the longest host name, as DNS and Slurm's node names allow.
	maxHostName = 255
	// maxRangeDigits keeps every range bound within an int64.
	maxRangeDigits = 18
)

// HostlistError rejects a hostlist expression or a tasks-per-node list. Offset is the byte offset of the
// problem in Input, which is cut to 256 bytes.
type HostlistError struct {
	Input  string
	Offset int
	Reason string
}

func (e *HostlistError) Error() string {
	return fmt.Sprintf("slurm hostlist %q: at byte %d: %s", e.Input, e.Offset, e.Reason)
}

func hostlistError(input string, off int, format string, args ...any) error {
	if len(input) > 256 {
		input = input[:256] + "…"
	}
	return &HostlistError{Input: input, Offset: off, Reason: fmt.Sprintf(format, args...)}
}

// hostRange is one "lo" or "lo-hi" of a bracket: the numbers printed zero-padded to width digits.
type hostRange struct {
	lo, hi int64
	width  int
}

// hostPattern is one host expression: literal parts around bracket lists, parts[0] bracket[0] parts[1] … .
type hostPattern struct {
	parts    []string
	brackets [][]hostRange
}

// ExpandHostlist expands a Slurm hostlist expression such as SLURM_JOB_NODELIST, following the rules of
// Slurm's hostlist.c (what `scontrol show hostnames` prints):
//
//   - expressions are separated by commas or blanks outside brackets: "node[01-04,07],gpu[1-2] login";
//   - a bracket holds a comma-separated list of numbers "7" and ranges "1-4", with lo <= hi;
//   - a number is zero-padded to the digits of its range's first number: "n[08-10]" is n08 n09 n10,
//     "n[8-10]" is n8 n9 n10;
//   - a name may hold several brackets, which expand like nested loops, the first outermost:
//     "r[1-2]n[1-2]" is r1n1 r1n2 r2n1 r2n2; no text may follow the last one ("n[1-2]-ib" is invalid);
//   - brackets do not nest, and an expression without brackets is one host name;
//   - hosts keep their order, duplicates included.
//
// Where Slurm guesses, ExpandHostlist refuses: an unbalanced bracket ("n[1-2" is the host "n]" to Slurm), a
// range without an end ("n[1-]"), blanks or signs inside brackets. Slurm limits each range to 65,536 hosts
// but not their product ("a[1-300]b[1-300]" is 90,000 hosts); ExpandHostlist limits the whole expression.
//
// The expansion is bounded: at most MaxHostlistHosts hosts of at most 255 bytes, MaxHostlistBytes in all. A
// malformed or too large expression gives a *HostlistError; nothing is expanded before the whole expression
// has been checked.
func ExpandHostlist(expr string) ([]string, error) {
	var patterns []hostPattern
	total, size := int64(0), int64(0)
	for start := 0; start < len(expr); {
		if isHostlistSep(expr[start]) {
			start++
			continue
		}
		end, err := scanHostExpr(expr, start)
		if err != nil {
			return nil, err
		}
		p, err := parseHostPattern(expr, start, end)
		if err != nil {
			return nil, err
		}
		n, length := p.count()
		if n > MaxHostlistHosts || total+n > MaxHostlistHosts {
			return nil, hostlistError(expr, start, "expands to more than %d hosts", MaxHostlistHosts)
		}
		if length > maxHostName {
			return nil, hostlistError(expr, start, "a host name is longer than %d bytes", maxHostName)
		}
		total += n
		// length bounds every name of the pattern, so this bounds the pattern's bytes.
		size += n * length
		if size > MaxHostlistBytes {
			return nil, hostlistError(expr, start, "expands to more than %d bytes", MaxHostlistBytes)
		}
		patterns = append(patterns, p)
		start = end
	}
	hosts := make([]string, 0, total)
	for _, p := range patterns {
		hosts = p.expand(hosts)
	}
	return hosts, nil
}

func isHostlistSep(c byte) bool {
	return c == ',' || c == ' ' || c == '\t' || c == '\n'
}

// scanHostExpr returns the end of the host expression that starts at start: the first separator outside
// brackets, or the end of expr.
func scanHostExpr(expr string, start int) (int, error) {
	open := -1
	for i := start; i < len(expr); i++ {
		c := expr[i]
		switch {
		case c == '[':
			if open >= 0 {
				return 0, hostlistError(expr, i, "brackets do not nest")
			}
			open = i
		case c == ']':
			if open < 0 {
				return 0, hostlistError(expr, i, "']' without '['")
			}
			open = -1
		case open < 0 && isHostlistSep(c):
			return i, nil
		case c == 0:
			return 0, hostlistError(expr, i, "NUL byte")
		}
	}
	if open >= 0 {
		return 0, hostlistError(expr, open, "'[' without ']'")
	}
	return len(expr), nil
}

// parseHostPattern parses expr[start:end], whose brackets are balanced and not nested.
func parseHostPattern(expr string, start, end int) (hostPattern, error) {
	var p hostPattern
	lit := start
	for i := start; i < end; i++ {
		if expr[i] != '[' {
			continue
		}
		p.parts = append(p.parts, expr[lit:i])
		close := i + strings.IndexByte(expr[i:end], ']')
		ranges, err := parseRanges(expr, i+1, close)
		if err != nil {
			return p, err
		}
		p.brackets = append(p.brackets, ranges)
		i = close
		lit = close + 1
	}
	if len(p.brackets) > 0 && lit < end {
		return p, hostlistError(expr, lit, "text after the last bracket")
	}
	p.parts = append(p.parts, expr[lit:end])
	return p, nil
}

// parseRanges parses the list between brackets, expr[start:end].
func parseRanges(expr string, start, end int) ([]hostRange, error) {
	if start == end {
		return nil, hostlistError(expr, start, "empty brackets")
	}
	var ranges []hostRange
	for pos := start; pos <= end; {
		next := end
		if i := strings.IndexByte(expr[pos:end], ','); i >= 0 {
			next = pos + i
		}
		item := expr[pos:next]
		loText, hiText, isRange := strings.Cut(item, "-")
		lo, err := parseRangeNumber(expr, pos, loText)
		if err != nil {
			return nil, err
		}
		hi := lo
		if isRange {
			if hi, err = parseRangeNumber(expr, pos+len(loText)+1, hiText); err != nil {
				return nil, err
			}
			if hi < lo {
				return nil, hostlistError(expr, pos, "range %s runs backwards", item)
			}
		}
		if hi-lo >= MaxHostlistHosts {
			return nil, hostlistError(expr, pos, "range %s has more than %d hosts", item, MaxHostlistHosts)
		}
		ranges = append(ranges, hostRange{lo: lo, hi: hi, width: len(loText)})
		pos = next + 1
	}
	return ranges, nil
}

func parseRangeNumber(expr string, off int, s string) (int64, error) {
	if s == "" {
		return 0, hostlistError(expr, off, "a range needs a number")
	}
	if len(s) > maxRangeDigits {
		return 0, hostlistError(expr, off, "number %.20s… has more than %d digits", s, maxRangeDigits)
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, hostlistError(expr, off+i, "%q in a range: only digits, ',' and '-' are allowed", s[i])
		}
	}
	n, _ := strconv.ParseInt(s, 10, 64) // at most 18 digits
	return n, nil
}

// count returns how many hosts the pattern expands to, capped above MaxHostlistHosts, and the length of its
// longest name.
func (p hostPattern) count() (n, longest int64) {
	n = 1
	for _, part := range p.parts {
		longest += int64(len(part))
	}
	for _, b := range p.brackets {
		var hosts, width int64
		for _, r := range b {
			hosts += r.hi - r.lo + 1
			width = max(width, int64(r.width), int64(len(strconv.FormatInt(r.hi, 10))))
		}
		n *= hosts
		if n > MaxHostlistHosts {
			n = MaxHostlistHosts + 1
		}
		longest += width
	}
	return n, longest
}

// expand appends the pattern's host names to hosts, the first bracket varying slowest.
func (p hostPattern) expand(hosts []string) []string {
	var walk func(prefix string, k int)
	walk = func(prefix string, k int) {
		if k == len(p.brackets) {
			hosts = append(hosts, prefix)
			return
		}
		for _, r := range p.brackets[k] {
			for v := r.lo; v <= r.hi; v++ {
				num := strconv.FormatInt(v, 10)
				if pad := r.width - len(num); pad > 0 {
					num = strings.Repeat("0", pad) + num
				}
				walk(prefix+num+p.parts[k+1], k+1)
			}
		}
	}
	walk(p.parts[0], 0)
	return hosts
}
