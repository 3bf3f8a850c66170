package main

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// console prints the run's progress: a line per stage, with progress bars while a stage that reports
// progress runs if the output is a terminal.
type console struct {
	w   io.Writer
	tty bool
}

// newConsole prints to w, with progress bars when w is a terminal.
func newConsole(w io.Writer) *console {
	c := &console{w: w}
	if f, ok := w.(*os.File); ok {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			c.tty = true
		}
	}
	return c
}

func (c *console) printf(format string, args ...any) { fmt.Fprintf(c.w, format, args...) }

// stageLine prints a finished stage: its name, what it did and how long it took.
func (c *console) stageLine(stage, detail string, d time.Duration) {
	c.printf("%-9s %s (%s)\n", stage, detail, roundDuration(d))
}

// unit says what a meter counts.
type unit int

const (
	unitBytes unit = iota
	unitFiles
)

// meter is the progress of one stage: a bar on a terminal, nothing otherwise.
type meter struct {
	mu sync.Mutex
	p  *mpb.Progress
	b  *mpb.Bar
}

// meter starts a progress bar for stage, whose total may be unknown (0) until the first update.
func (c *console) meter(stage string, u unit) *meter {
	if !c.tty {
		return &meter{}
	}
	counters := decor.CountersKibiByte("% .1f / % .1f")
	if u == unitFiles {
		counters = decor.CountersNoUnit("%d / %d files")
	}
	p := mpb.New(mpb.WithOutput(c.w), mpb.WithWidth(40), mpb.WithRefreshRate(100*time.Millisecond))
	b := p.AddBar(0,
		mpb.PrependDecorators(decor.Name(fmt.Sprintf("%-9s", stage)), counters),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace)),
		mpb.BarRemoveOnComplete(),
	)
	return &meter{p: p, b: b}
}

// set reports current out of total.
func (m *meter) set(current, total int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return
	}
	if total > 0 {
		m.b.SetTotal(total, false)
	}
	m.b.SetCurrent(current)
}

// done removes the bar, whether the stage finished or failed, before the stage's line is printed.
func (m *meter) done() {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.b == nil {
		return
	}
	m.b.SetTotal(-1, true) // complete at the current count, which removes the bar
	m.p.Wait()
	m.b = nil
}

// roundDuration shortens d for printing.
func roundDuration(d time.Duration) time.Duration {
	switch {
	case d >= 10*time.Second:
		return d.Round(100 * time.Millisecond)
	case d >= time.Second:
		return d.Round(10 * time.Millisecond)
	default:
		return d.Round(time.Millisecond)
	}
}

// byteSize prints n bytes in MB (10⁶) with one decimal, or in kB below one MB.
func byteSize(n int64) string {
	if n < 1e6 {
		return fmt.Sprintf("%.1f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%.1f MB", float64(n)/1e6)
}
