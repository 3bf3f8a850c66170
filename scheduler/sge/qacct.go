package sge

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/envvar"
)

// qacctRecord is one block of `qacct -j ID`: one job, or one task of an array job.
type qacctRecord struct {
	Queue, Host, Owner, Name string
	Number                   int64
	// Task is the array task id, zero for "undefined".
	Task        int
	ParallelEnv string
	Slots       int
	// Failed is Grid Engine's failure code, FailedText its explanation ("assumedly after job").
	Failed     int
	FailedText string
	ExitStatus int
	Start, End time.Time
	Wallclock  time.Duration
	MaxVMem    int64
}

// qacctTime is how qacct prints times: ctime(3) format in the local time zone.
const qacctTime = "Mon Jan _2 15:04:05 2006"

// maxQacctRecords bounds the records of one `qacct -j`: one per task of an array job (Grid Engine's
// max_aj_tasks is 75,000 by default) and, with accounting_summary FALSE, one per slave task.
const maxQacctRecords = 1 << 18

// parseQacct reads the output of `qacct -j ID`: blocks that start with a line of "=" and hold one
// "name value" line per field. Fields this package does not use are skipped without being copied; a used
// field that does not parse, a record without a jobnumber or more than 262,144 records are an error.
func parseQacct(data []byte) ([]qacctRecord, error) {
	var recs []qacctRecord
	var cur *qacctRecord
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 4096), 1<<20)
	for n := 1; sc.Scan(); n++ {
		line := bytes.TrimRight(sc.Bytes(), " \t\r")
		if len(line) == 0 {
			continue
		}
		if len(bytes.Trim(line, "=")) == 0 {
			if cur != nil && cur.Number == 0 {
				return nil, fmt.Errorf("parsing qacct output: record %d has no jobnumber", len(recs))
			}
			if len(recs) == maxQacctRecords {
				return nil, fmt.Errorf("parsing qacct output: more than %d records", maxQacctRecords)
			}
			recs = append(recs, qacctRecord{})
			cur = &recs[len(recs)-1]
			continue
		}
		if cur == nil {
			return nil, fmt.Errorf("parsing qacct output: line %d: field before the first record", n)
		}
		key, value, _ := bytes.Cut(line, []byte(" "))
		switch string(key) {
		case "qname", "hostname", "owner", "jobname", "jobnumber", "taskid", "granted_pe", "slots", "failed",
			"exit_status", "start_time", "end_time", "ru_wallclock", "maxvmem":
		default:
			continue
		}
		if err := cur.set(string(key), string(bytes.TrimSpace(value))); err != nil {
			return nil, fmt.Errorf("parsing qacct output: line %d: %s: %w", n, key, err)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("parsing qacct output: %w", err)
	}
	if cur != nil && cur.Number == 0 {
		return nil, fmt.Errorf("parsing qacct output: record %d has no jobnumber", len(recs))
	}
	return recs, nil
}

func (r *qacctRecord) set(key, value string) error {
	var err error
	switch key {
	case "qname":
		r.Queue = value
	case "hostname":
		r.Host = value
	case "owner":
		r.Owner = value
	case "jobname":
		r.Name = value
	case "jobnumber":
		r.Number, err = strconv.ParseInt(value, 10, 64)
		if err == nil && r.Number < 1 {
			err = fmt.Errorf("not positive")
		}
	case "taskid":
		if value != "undefined" {
			r.Task, err = strconv.Atoi(value)
		}
	case "granted_pe":
		if value != "NONE" {
			r.ParallelEnv = value
		}
	case "slots":
		r.Slots, err = strconv.Atoi(value)
	case "failed":
		// "0", or "100 : assumedly after job".
		code, text, _ := strings.Cut(value, ":")
		r.Failed, err = strconv.Atoi(strings.TrimSpace(code))
		r.FailedText = strings.TrimSpace(text)
	case "exit_status":
		// "137                  (Killed)"
		code, _, _ := strings.Cut(value, " ")
		r.ExitStatus, err = strconv.Atoi(code)
	case "start_time":
		r.Start, err = qacctParseTime(value)
	case "end_time":
		r.End, err = qacctParseTime(value)
	case "ru_wallclock":
		r.Wallclock, err = qacctSeconds(value)
	case "maxvmem":
		r.MaxVMem, err = qacctBytes(value)
	}
	return err
}

// qacctParseTime parses a qacct time; "-/-" (never started) is the zero time.
func qacctParseTime(s string) (time.Time, error) {
	if s == "-/-" || s == "" {
		return time.Time{}, nil
	}
	t, err := time.ParseInLocation(qacctTime, s, time.Local)
	if err != nil {
		return time.Time{}, fmt.Errorf("%s is not a time like %q", envvar.Clip(s), qacctTime)
	}
	return t, nil
}

// qacctSeconds parses "11s", "11.250s" or a bare number of seconds.
func qacctSeconds(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(strings.TrimSuffix(s, "s"), 64)
	if err != nil || !(f >= 0 && f <= 1e9) {
		return 0, fmt.Errorf("%s is not a number of seconds", envvar.Clip(s))
	}
	return time.Duration(f * float64(time.Second)), nil
}

// qacctBytes parses a memory amount such as "5.102MB" or "0.000B"; Grid Engine's K, M, G and T are powers
// of 1024.
func qacctBytes(s string) (int64, error) {
	num := strings.TrimRight(s, "KMGTPB")
	unit := s[len(num):]
	var mult float64
	switch unit {
	case "", "B":
		mult = 1
	case "KB":
		mult = 1 << 10
	case "MB":
		mult = 1 << 20
	case "GB":
		mult = 1 << 30
	case "TB":
		mult = 1 << 40
	case "PB":
		mult = 1 << 50
	}
	f, err := strconv.ParseFloat(num, 64)
	if mult == 0 || err != nil || !(f >= 0 && f*mult <= 1<<62) {
		return 0, fmt.Errorf("%s is not an amount of memory", envvar.Clip(s))
	}
	return int64(f * mult), nil
}
