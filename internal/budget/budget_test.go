package budget

import (
	"bytes"
	"io/fs"
	"os"
	"os/exec"
	"regexp"
	"runtime/debug"
	"runtime/pprof"
	"strings"
	"syscall"
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

// TestChildFails is the child of TestBudgetReports; alone it skips.
func TestChildFails(t *testing.T) {
	if os.Getenv(childEnv) != t.Name() {
		t.Skip("the child of TestBudgetReports")
	}
	t.Log("the child says why")
	t.FailNow()
}

// TestChildTouches120MiB is the child of TestBudgetReports; alone it skips.
func TestChildTouches120MiB(t *testing.T) {
	if os.Getenv(childEnv) != t.Name() {
		t.Skip("the child of TestBudgetReports")
	}
	touch(120)
}

// TestBudgetReports: each way a child can fail is reported as such, with what it measured.
func TestBudgetReports(t *testing.T) {
	m, err := run(t.Context(), "TestChildWithinBudget", Budget{Memory: 256 << 20, Time: 2 * time.Minute})
	require.NoError(t, err)
	assert.Greater(t, m.Peak, int64(16<<20), "the child's peak is measured")
	assert.Positive(t, m.Elapsed)
	wantBudget := int64(256 << 20)
	if raceEnabled {
		wantBudget *= RaceFactor
	}
	assert.Equal(t, wantBudget, m.Budget)

	_, err = run(t.Context(), "TestChildFails", Budget{Memory: 1 << 30, Time: 2 * time.Minute})
	require.ErrorContains(t, err, "the child failed: exit status 1")
	assert.ErrorContains(t, err, "the child says why", "the child's output is in the error")

	// Above the budget but below twice it: the child runs to its end and fails on its peak.
	mem := int64(80 << 20)
	if raceEnabled {
		mem /= RaceFactor
	}
	m, err = run(t.Context(), "TestChildTouches120MiB", Budget{Memory: mem, Time: 2 * time.Minute})
	require.Error(t, err)
	if !raceEnabled { // the race detector's own memory can take the child past twice its budget
		assert.ErrorContains(t, err, "the child peaked at")
		assert.ErrorContains(t, err, "above its budget of 80 MiB")
		assert.Greater(t, m.Peak, int64(120<<20))
	}

	mem = 64 << 20
	if raceEnabled {
		mem /= RaceFactor
	}
	_, err = run(t.Context(), "TestChildTouches512MiB", Budget{Memory: mem, Time: 2 * time.Minute})
	require.ErrorContains(t, err, "past twice its budget of 64 MiB, and was killed")

	assert.Eventually(t, func() bool { return !watching() }, 10*time.Second, 10*time.Millisecond,
		"a run leaves no memory watcher behind")
}

// watching reports whether a memory watcher is running.
func watching() bool {
	var b bytes.Buffer
	pprof.Lookup("goroutine").WriteTo(&b, 2) // A bytes.Buffer does not fail.
	return strings.Contains(b.String(), "internal/budget.watch(")
}

// TestChildCannotStart: a test binary that cannot be executed is reported, not taken for a passing child.
func TestChildCannotStart(t *testing.T) {
	self := os.Args[0]
	t.Cleanup(func() { os.Args[0] = self })
	os.Args[0] = t.TempDir() + "/gone.test"
	_, err := run(t.Context(), "TestChildWithinBudget", Budget{Memory: 256 << 20, Time: time.Minute})
	require.ErrorIs(t, err, fs.ErrNotExist)
	assert.ErrorContains(t, err, "starting the child")
}

// TestWatchLimit holds a sleeping process, whose resident memory does not change, to limits at its size
// and on both sides: watch leaves it alone at and above the limit, and kills it, reporting its size, one
// byte below.
func TestWatchLimit(t *testing.T) {
	cmd := exec.CommandContext(t.Context(), "sleep", "600")
	require.NoError(t, cmd.Start())
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { _ = cmd.Process.Kill() })

	// Wait for the loader to finish: the size is settled when two reads agree.
	var rss int64
	for prev := int64(-1); rss == 0 || rss != prev; time.Sleep(50 * time.Millisecond) {
		prev, rss = rss, residentBytes(cmd.Process.Pid)
	}

	for _, limit := range []int64{rss + 1, rss} {
		killed := make(chan int64, 1)
		stop := make(chan struct{})
		done := make(chan struct{})
		go func() {
			defer close(done)
			watch(cmd.Process, limit, killed, stop)
		}()
		time.Sleep(200 * time.Millisecond) // ten ticks of the watcher
		close(stop)
		<-done
		require.Empty(t, killed, "a process of %d bytes is within a limit of %d", rss, limit)
	}

	killed := make(chan int64, 1)
	stop := make(chan struct{})
	defer close(stop)
	go watch(cmd.Process, rss-1, killed, stop)
	select {
	case got := <-killed:
		assert.Equal(t, rss, got, "the size that passed the limit is reported")
	case <-time.After(time.Minute):
		t.Fatal("a process above the limit was not reported")
	}
	var err error
	select {
	case err = <-exited:
	case <-time.After(time.Minute):
		t.Fatal("a process above the limit was not killed")
	}
	var exit *exec.ExitError
	require.ErrorAs(t, err, &exit)
	status, ok := exit.Sys().(syscall.WaitStatus)
	require.True(t, ok)
	assert.Equal(t, syscall.SIGKILL, status.Signal())
}

func TestMeasuredString(t *testing.T) {
	got := Measured{Peak: 3 << 19, Budget: 64 << 20, Elapsed: 1500 * time.Microsecond}.String()
	assert.Contains(t, got, "peak RSS 1.5 MiB of 64 MiB, 2ms (race detector: ")
}

func TestResidentBytes(t *testing.T) {
	assert.Greater(t, residentBytes(os.Getpid()), int64(1<<20))
	assert.Zero(t, residentBytes(-1), "no such process")

	// The watcher reads the size 50 times a second: each read closes its file. The garbage collector,
	// which would close a leaked one, is held off.
	defer debug.SetGCPercent(debug.SetGCPercent(-1))
	before := openFiles(t)
	for range 200 {
		residentBytes(os.Getpid())
	}
	assert.Less(t, openFiles(t), before+100, "files left open")
}

func openFiles(t *testing.T) int {
	fds, err := os.ReadDir("/proc/self/fd")
	require.NoError(t, err)
	return len(fds)
}

func TestTail(t *testing.T) {
	at := strings.Repeat("a", 4<<10)
	assert.Equal(t, at, tail(at), "4 KiB are kept whole")
	assert.Equal(t, "…"+at, tail("b"+at), "beyond 4 KiB the last 4 KiB are kept")
	assert.Equal(t, "", tail(""))
}

// parentEnv tells a re-executed test binary to run the parents of TestChildFailsTheParent.
const parentEnv = "HPCSHIP_BUDGET_TEST_PARENT"

// TestParentOfFailingChild is run by TestChildFailsTheParent; alone it skips.
func TestParentOfFailingChild(t *testing.T) {
	if os.Getenv(parentEnv) == "" {
		t.Skip("run by TestChildFailsTheParent")
	}
	if !Child(t, Budget{Memory: 1 << 30, Time: time.Minute}) {
		return
	}
	t.Fatal("the child fails")
}

// TestParentInASubtest is run by TestChildFailsTheParent; alone it skips.
func TestParentInASubtest(t *testing.T) {
	if os.Getenv(parentEnv) == "" {
		t.Skip("run by TestChildFailsTheParent")
	}
	t.Run("sub", func(t *testing.T) {
		if Child(t, Budget{Memory: 1 << 30, Time: time.Minute}) {
			return
		}
	})
}

// TestChildFailsTheParent runs a test whose child fails, and one that calls Child from a subtest, each in a
// process of its own: both must fail, saying why.
func TestChildFailsTheParent(t *testing.T) {
	for name, wants := range map[string][]string{
		// The parent logs what the child used before it fails.
		"TestParentOfFailingChild": {"budget: peak RSS", "the child failed"},
		"TestParentInASubtest":     {"budget.Child needs a top-level test"},
	} {
		t.Run(name, func(t *testing.T) {
			cmd := exec.CommandContext(t.Context(), os.Args[0], "-test.run=^"+name+"$", "-test.count=1", "-test.v")
			cmd.Env = append(os.Environ(), parentEnv+"=1")
			out, err := cmd.CombinedOutput()
			require.Error(t, err, "the parent passed:\n%s", out)
			for _, want := range wants {
				// Reported at the caller's line, not inside this package.
				assert.Regexp(t, regexp.MustCompile(`budget_test\.go:\d+: `+regexp.QuoteMeta(want)), string(out))
			}
			assert.NotContains(t, string(out), "budget.go:")
			assert.Contains(t, string(out), "--- FAIL: "+name)
		})
	}
}
