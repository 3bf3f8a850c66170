package slurm

import (
	"bytes"
	"math/rand/v2"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/budget"
	"github.com/hpcship/hpcship/scheduler"
)

// hostile builds random inputs from an entry point's own tokens, junk bytes and separators.
func hostile(r *rand.Rand, tokens []string, size int) string {
	junk := []string{" ", "\t", "\n", ",", "[", "]", "-", "(x", ")", "\x00", "\xff", "|", ":"}
	var b strings.Builder
	for b.Len() < size {
		if r.IntN(4) == 0 {
			b.WriteString(junk[r.IntN(len(junk))])
		} else {
			b.WriteString(tokens[r.IntN(len(tokens))])
		}
	}
	return b.String()
}

// TestHostileAllocationsWithinBudget: ExpandHostlist, ParseTasksPerNode and Machinefile in every format on
// random and amplifying input, within 256 MiB and 3 minutes (8 times the memory under -race).
func TestHostileAllocationsWithinBudget(t *testing.T) {
	if !budget.Child(t, budget.Budget{Memory: 256 << 20, Time: 3 * time.Minute}) {
		return
	}
	check := func(nodes, tasks string) {
		a, err := ParseAllocation(nodes, tasks)
		if err != nil {
			var he *HostlistError
			require.ErrorAs(t, err, &he)
			require.Less(t, len(err.Error()), 600)
			return
		}
		for f := scheduler.MachinefileHosts; f <= scheduler.MachinefileOpenMPI; f++ {
			mf, err := a.Machinefile(f)
			if err != nil {
				require.ErrorIs(t, err, ErrAllocationTooLarge)
				continue
			}
			require.LessOrEqual(t, len(mf), 16<<20)
		}
	}
	long := strings.Repeat("h", 250)
	for _, in := range [][2]string{
		{"n[0-65535]", "16(x65536)"},
		{long + "[00000-65535]", "16(x65536)"},
		{long + "[1-2]", "524288(x2)"},
		{"a[1-255]b[1-255]", "1"},
		{strings.Repeat("n[1-9],", 1<<14), "1(x65536)"},
		{"n[" + strings.Repeat("1,", 1<<20) + "1]", "1"},
		{"n[0-99999999999999999]", "1"},
		{strings.Repeat("[", 1<<20), strings.Repeat("1(x1),", 1<<18)},
	} {
		check(in[0], in[1])
	}
	tokens := []string{"node", "gpu", long, "0", "1", "01", "65535", "99999999", "1048576", "[1-65535]", "[0-9]",
		"[01-99]", "(x65536)", "(x2)", "16"}
	r := rand.New(rand.NewPCG(5, 6))
	for range 60 {
		check(hostile(r, tokens, r.IntN(16<<10)), hostile(r, tokens, r.IntN(1<<10)))
	}
}

// TestHostileStatusWithinBudget: parseSqueue and parseSacct on random listings of up to 2 MiB and on an 8 MiB
// one, within 256 MiB and 3 minutes. A listing is in memory when it is parsed, so the budget holds the
// inputs too.
func TestHostileStatusWithinBudget(t *testing.T) {
	if !budget.Child(t, budget.Budget{Memory: 256 << 20, Time: 3 * time.Minute}) {
		return
	}
	squeue := strings.Fields(string(readTestdata(t, "squeue.txt")))
	sacct := strings.Fields(string(readTestdata(t, "sacct.txt")))
	r := rand.New(rand.NewPCG(7, 8))
	for range 30 {
		in := []byte(hostile(r, squeue, r.IntN(2<<20)))
		if _, err := parseSqueue(in); err != nil {
			var pe *SqueueParseError
			require.ErrorAs(t, err, &pe)
		}
		in = []byte(hostile(r, sacct, r.IntN(2<<20)))
		if rows, err := parseSacct(in); err == nil {
			_, _, _ = summarize(jobRef{id: "1", number: "1"}, rows)
		}
	}
	_, err := parseSqueue(bytes.Repeat([]byte("|"), 8<<20))
	require.Error(t, err)
}
