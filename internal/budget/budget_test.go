package budget

import (
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sink keeps allocations alive.
var sink [][]byte

func touch(mib int) {
	for range mib {
		b := make([]byte, 1<<20)
		for i := range b {
			b[i] = 1
		}
		sink = append(sink, b)
	}
}

// TestChildWithinBudget touches 16 MiB in the child: within a 256 MiB budget.
func TestChildWithinBudget(t *testing.T) {
	if !Child(t, Budget{Memory: 256 << 20, Time: 2 * time.Minute}) {
		return
	}
	touch(16)
}

// TestChildTouches512MiB is the child of TestBudgetCatchesAnOverrun; alone it skips.
func TestChildTouches512MiB(t *testing.T) {
	if os.Getenv(childEnv) != t.Name() {
		t.Skip("the child of TestBudgetCatchesAnOverrun")
	}
	touch(512)
}

// TestChildSleeps is the child of TestBudgetCatchesAnOverrun; alone it skips.
func TestChildSleeps(t *testing.T) {
	if os.Getenv(childEnv) != t.Name() {
		t.Skip("the child of TestBudgetCatchesAnOverrun")
	}
	time.Sleep(time.Minute)
}

func TestBudgetCatchesAnOverrun(t *testing.T) {
	mem := int64(64 << 20)
	if raceEnabled {
		mem /= RaceFactor
	}
	m, err := run(t.Context(), "TestChildTouches512MiB", Budget{Memory: mem, Time: 2 * time.Minute})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "MiB")
	t.Log(m, err)

	_, err = run(t.Context(), "TestChildSleeps", Budget{Memory: 1 << 30, Time: 2 * time.Second})
	require.ErrorContains(t, err, "ran out of its 2s")

	_, err = run(t.Context(), "TestNoSuchTest", Budget{Memory: 1 << 30, Time: time.Minute})
	require.ErrorContains(t, err, "did not run")
}
