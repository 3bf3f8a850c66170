// Package budget runs a test in a child process and holds it to a memory and time budget, so that a parser
// fed hostile input proves its bounds as a property: a run that exhausts memory kills the child, not the
// test binary, and the parent reports it as a failure with the measured peak.
package budget

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// childEnv names the environment variable that tells a re-executed test binary which test it runs as the
// child.
const childEnv = "HPCSHIP_BUDGET_CHILD"

// Budget is what a test may use.
type Budget struct {
	// Memory is the peak resident memory in bytes. Under the race detector, which needs several times the
	// memory of a plain build, the test gets RaceFactor times as much.
	Memory int64
	// Time is the wall-clock time of the whole child process.
	Time time.Duration
}

// RaceFactor multiplies the memory budget of a test built with -race.
const RaceFactor = 8

// Child reports whether the caller is the child process and should run the test body. In the parent it
// re-executes the test binary for exactly this top-level test, waits for it and returns false, having
// failed t if the child failed, ran out of time, or peaked above the memory budget; it logs the measured
// peak and time ("budget: peak RSS …") either way. A child that grows past twice its budget is killed at
// once, so that a runaway allocation cannot take the machine down with it. A test may call t.Parallel first:
// each child's peak is its own.
func Child(t *testing.T, b Budget) bool {
	t.Helper()
	if os.Getenv(childEnv) == t.Name() {
		return true
	}
	if strings.Contains(t.Name(), "/") {
		t.Fatal("budget.Child needs a top-level test")
	}
	m, err := run(t.Context(), t.Name(), b)
	t.Logf("budget: %s", m)
	if err != nil {
		t.Fatal(err)
	}
	return false
}

// Measured is what a child used.
type Measured struct {
	Peak, Budget int64
	Elapsed      time.Duration
}

func (m Measured) String() string {
	return fmt.Sprintf("peak RSS %.1f MiB of %.0f MiB, %v (race detector: %v)",
		float64(m.Peak)/(1<<20), float64(m.Budget)/(1<<20), m.Elapsed.Round(time.Millisecond), raceEnabled)
}

// run runs the top-level test name in a child process held to b.
func run(ctx context.Context, name string, b Budget) (Measured, error) {
	m := Measured{Budget: b.Memory}
	if raceEnabled {
		m.Budget *= RaceFactor
	}
	ctx, cancel := context.WithTimeout(ctx, b.Time)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^"+regexp.QuoteMeta(name)+"$", "-test.count=1", "-test.v")
	cmd.Env = append(os.Environ(), childEnv+"="+name)
	var out strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &out
	start := time.Now()
	if err := cmd.Start(); err != nil {
		return m, fmt.Errorf("starting the child: %w", err)
	}
	killed := make(chan int64, 1)
	stop := make(chan struct{})
	go watch(cmd.Process, 2*m.Budget, killed, stop)
	err := cmd.Wait()
	close(stop)
	m.Elapsed = time.Since(start)
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		m.Peak = ru.Maxrss << 10 // kilobytes on Linux
	}
	select {
	case rss := <-killed:
		return m, fmt.Errorf("the child grew to %d MiB, past twice its budget of %d MiB, and was killed; its output:\n%s", rss>>20, m.Budget>>20, tail(out.String()))
	default:
	}
	switch {
	case errors.Is(ctx.Err(), context.DeadlineExceeded):
		return m, fmt.Errorf("the child ran out of its %v; its output:\n%s", b.Time, tail(out.String()))
	case err != nil:
		return m, fmt.Errorf("the child failed: %w; its output:\n%s", err, tail(out.String()))
	case !strings.Contains(out.String(), "--- PASS: "+name):
		return m, fmt.Errorf("the child did not run %s; its output:\n%s", name, tail(out.String()))
	case m.Peak > m.Budget:
		return m, fmt.Errorf("the child peaked at %d MiB, above its budget of %d MiB", m.Peak>>20, m.Budget>>20)
	}
	return m, nil
}

// watch kills p once its resident memory passes limit, and reports the size it saw.
func watch(p *os.Process, limit int64, killed chan<- int64, stop <-chan struct{}) {
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			return
		case <-tick.C:
		}
		if rss := residentBytes(p.Pid); rss > limit {
			_ = p.Kill()
			killed <- rss
			return
		}
	}
}

// residentBytes reads VmRSS from /proc/<pid>/status; 0 when it cannot.
func residentBytes(pid int) int64 {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10
		}
	}
	return 0
}

// tail returns the last 4 KiB of a child's output.
func tail(s string) string {
	if len(s) > 4<<10 {
		return fmt.Sprintf("…%s", s[len(s)-4<<10:])
	}
	return s
}
