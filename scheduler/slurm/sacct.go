package slurm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// sacctFields are the columns Result reads with `sacct -P -n -o`. Not `sacct --json`: Slurm 22.05 and 23.02
// report every job that exited as SUCCESS with return code 0 there.
const sacctFields = "JobID,JobIDRaw,State,ExitCode,Elapsed,Start,End,NodeList,Partition,AllocCPUS,MaxRSS,MaxVMSize"

const sacctColumns = 12

// acctRow is one row of sacct output: a job allocation ("7", "7_2", "7_[3-5]") or a step of one ("7.batch",
// "7_2.0", "7.extern").
type acctRow struct {
	JobID string
	// Job is the allocation's id, JobID without the step; Step is the step ("batch", "0"), empty for the
	// allocation row.
	Job, Step string
	// Task is the array task id, empty outside an array; Pending is set for a row that stands for array tasks
	// that have not started ("7_[3-5]").
	Task    int
	Pending bool
	Raw     string
	State   string
	// ExitStatus and Signal are the two halves of ExitCode "N:M".
	ExitStatus, Signal int
	Elapsed            time.Duration
	Start, End         time.Time
	NodeList           string
	Partition          string
	CPUs               int
	MaxRSS, MaxVMSize  int64
}

// SacctParseError rejects sacct output.
type SacctParseError struct {
	Line   int
	Reason string
}

func (e *SacctParseError) Error() string {
	return fmt.Sprintf("parsing sacct output: line %d: %s", e.Line, e.Reason)
}

// parseSacct reads `sacct -P -n -o` output with sacctFields.
func parseSacct(out []byte) ([]acctRow, error) {
	rows := make([]acctRow, 0, bytes.Count(out, []byte{'\n'})+1)
	for n := 1; len(out) > 0; n++ {
		var line []byte
		if i := bytes.IndexByte(out, '\n'); i >= 0 {
			line, out = out[:i], out[i+1:]
		} else {
			line, out = out, nil
		}
		if len(line) == 0 {
			continue
		}
		r, err := parseAcctRow(string(line))
		if err != nil {
			return nil, &SacctParseError{Line: n, Reason: err.Error()}
		}
		rows = append(rows, r)
	}
	return rows, nil
}

func parseAcctRow(line string) (acctRow, error) {
	f := strings.Split(line, "|")
	if len(f) != sacctColumns {
		return acctRow{}, fmt.Errorf("want %d fields, got %d", sacctColumns, len(f))
	}
	r := acctRow{JobID: f[0], Raw: f[1], State: f[2], NodeList: f[7], Partition: f[8]}
	var err error
	r.Job, r.Step, _ = strings.Cut(f[0], ".")
	if _, task, isTask := strings.Cut(r.Job, "_"); isTask {
		if strings.HasPrefix(task, "[") {
			r.Pending = true
		} else if r.Task, err = strconv.Atoi(task); err != nil || r.Task < 0 {
			return r, fmt.Errorf("job id %q has a bad array task", f[0])
		}
	}
	if num, _, _ := strings.Cut(r.Job, "_"); !isJobNumber(num) {
		return r, fmt.Errorf("job id %q is not a Slurm job id", f[0])
	}
	if r.ExitStatus, r.Signal, err = parseExitCode(f[3]); err != nil {
		return r, err
	}
	if r.Elapsed, err = parseElapsed(f[4]); err != nil {
		return r, err
	}
	if r.Start, err = parseSlurmTime(f[5]); err != nil {
		return r, err
	}
	if r.End, err = parseSlurmTime(f[6]); err != nil {
		return r, err
	}
	if r.NodeList == "None assigned" {
		r.NodeList = ""
	}
	if f[9] != "" {
		if r.CPUs, err = strconv.Atoi(f[9]); err != nil || r.CPUs < 0 {
			return r, fmt.Errorf("AllocCPUS %q is not a number", f[9])
		}
	}
	if r.MaxRSS, err = parseSize(f[10]); err != nil {
		return r, fmt.Errorf("MaxRSS: %w", err)
	}
	if r.MaxVMSize, err = parseSize(f[11]); err != nil {
		return r, fmt.Errorf("MaxVMSize: %w", err)
	}
	return r, nil
}

// parseExitCode splits sacct's "N:M": N is the exit status, M the signal that ended the process. A step that
// slurmdbd has not completed yet has none: 0, 0.
func parseExitCode(s string) (status, signal int, err error) {
	if s == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(s, ":")
	if ok {
		status, err = strconv.Atoi(a)
		if err == nil {
			signal, err = strconv.Atoi(b)
		}
	}
	if !ok || err != nil || status < 0 || status > 255 || signal < 0 || signal > 255 {
		return 0, 0, fmt.Errorf("ExitCode %q is not N:M", s)
	}
	return status, signal, nil
}

// parseElapsed reads "[days-]hours:minutes:seconds", "minutes:seconds" or "minutes:seconds.millis".
func parseElapsed(s string) (time.Duration, error) {
	bad := fmt.Errorf("elapsed time %q is not [D-]HH:MM:SS", s)
	var days int64
	if d, rest, ok := strings.Cut(s, "-"); ok {
		n, err := strconv.ParseInt(d, 10, 32)
		if err != nil || n < 0 {
			return 0, bad
		}
		days, s = n, rest
	}
	parts := strings.Split(s, ":")
	if len(parts) < 2 || len(parts) > 3 {
		return 0, bad
	}
	var secs float64
	for i, p := range parts {
		if i == len(parts)-1 {
			v, err := strconv.ParseFloat(p, 64)
			if err != nil || v < 0 || v >= 60 || strings.Trim(p, "0123456789.") != "" {
				return 0, bad
			}
			secs = secs*60 + v
			continue
		}
		v, err := strconv.ParseUint(p, 10, 16)
		if err != nil || i > 0 && v >= 60 {
			return 0, bad
		}
		secs = secs*60 + float64(v)
	}
	return time.Duration(days)*24*time.Hour + time.Duration(secs*float64(time.Second)), nil
}

// parseSlurmTime reads sacct's local "2026-12-01T08:20:33"; "Unknown" and "None" are the zero time.
func parseSlurmTime(s string) (time.Time, error) {
	if s == "" || s == "Unknown" || s == "None" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation("2006-01-02T15:04:05", s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("time %q is not YYYY-MM-DDTHH:MM:SS", s)
	}
	return t, nil
}

// parseSize reads sacct's memory sizes, "316804K" or "1.50G" (powers of 1024), in bytes; empty is zero.
func parseSize(s string) (int64, error) {
	if s == "" {
		return 0, nil
	}
	mult := float64(1)
	switch s[len(s)-1] {
	case 'K':
		mult = 1 << 10
	case 'M':
		mult = 1 << 20
	case 'G':
		mult = 1 << 30
	case 'T':
		mult = 1 << 40
	case 'P':
		mult = 1 << 50
	}
	if mult > 1 {
		s = s[:len(s)-1]
	}
	v, err := strconv.ParseFloat(s, 64)
	if err != nil || v < 0 || v*mult > 1<<62 || strings.ContainsAny(s, "eEnN+-xX") {
		return 0, fmt.Errorf("%q is not a size", s)
	}
	return int64(v * mult), nil
}
