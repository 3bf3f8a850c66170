package imb_test

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/budget"
	"github.com/hpcship/hpcship/mpi/imb"
)

// lineReader streams lines from next until it returns false, without holding more than one line.
type lineReader struct {
	next func() (string, bool)
	buf  []byte
}

func (r *lineReader) Read(p []byte) (int, error) {
	for len(r.buf) == 0 {
		line, ok := r.next()
		if !ok {
			return 0, io.EOF
		}
		r.buf = []byte(line)
	}
	n := copy(p, r.buf)
	r.buf = r.buf[n:]
	return n, nil
}

// drain scans everything and returns the error, holding one benchmark at a time.
func drain(r io.Reader) error {
	s := imb.NewScanner(r)
	for s.Scan() {
		_ = s.Benchmark()
	}
	return s.Err()
}

const header = "#---------------------------------------------------\n# Benchmarking PingPong\n# #processes = 2\n#---------------------------------------------------\n       #bytes #repetitions      t[usec]   Mbytes/sec\n"

// TestHostileIMBWithinBudget feeds the scanner streams an attacker (or a runaway job) could produce: a table
// that never ends, failure rows of a megabyte each, lines past the line bound, and random mixes of IMB's
// own tokens. The child must stay within 128 MiB and 8 minutes (8 times the memory under -race).
func TestHostileIMBWithinBudget(t *testing.T) {
	t.Parallel()
	if !budget.Child(t, budget.Budget{Memory: 128 << 20, Time: 8 * time.Minute}) {
		return
	}
	// A table of two million rows (about 100 MB of input, 300 MB as rows): refused at the row bound.
	n := 0
	err := drain(&lineReader{next: func() (string, bool) {
		n++
		switch {
		case n == 1:
			return header, true
		case n > 2_000_000:
			return "", false
		}
		return "            1         1000         2.26         0.42\n", true
	}})
	var pe *imb.ParseError
	require.ErrorAs(t, err, &pe)
	require.Contains(t, pe.Reason, "rows")

	// Failure rows with a detail of almost a megabyte each.
	n = 0
	detail := strings.Repeat("x", 1<<20-100)
	err = drain(&lineReader{next: func() (string, bool) {
		n++
		switch {
		case n == 1:
			return header, true
		case n > 300:
			return "", false
		}
		return "            1 out-of-mem.; " + detail + "\n", true
	}})
	require.NoError(t, err)

	// A line past the 1 MiB line bound.
	err = drain(io.MultiReader(strings.NewReader(header), io.LimitReader(zeros{}, 2<<20)))
	require.Error(t, err)

	// Random mixes of IMB's tokens, blank lines and junk.
	tokens := []string{"# Benchmarking PingPong", "# Benchmarking Multi-Allreduce", "# Benchmarking", "#bytes", "#repetitions", "t[usec]",
		"t_min[usec]", "t_max[usec]", "t_avg[usec]", "Mbytes/sec", "Group", "# #processes =", "# ( 2 groups of 4 processes each running simultaneous )",
		"# ( 3 additional processes waiting in MPI_Barrier)", "#MODE: AGGREGATE", "out-of-mem.", "time-out.", "int-overflow.",
		"0", "1", "-1", "4194304", "1e309", "NaN", "9223372036854775808", "2.26", "\t", " ", "\n", "\n", "\n", "\x00", "\xff", "#", ";"}
	r := rand.New(rand.NewPCG(8, 9))
	for range 100 {
		var b bytes.Buffer
		for b.Len() < 64<<10 {
			b.WriteString(tokens[r.IntN(len(tokens))])
			if r.IntN(3) == 0 {
				b.WriteByte(' ')
			}
		}
		if err := drain(&b); err != nil && !errors.Is(err, imb.ErrMalformed) {
			require.NoError(t, err)
		}
	}
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = '0'
	}
	return len(p), nil
}
