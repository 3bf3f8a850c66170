package slurm

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/scheduler"
)

// squeueFormat is the `squeue -o` format Status reads: "|"-separated fields, the job name last because it is
// the only one that may hold a "|". %i is the job id ("7", "7_2", "7_[3-5]"), %F the array job id, %K the
// array task id ("2", "3-5", "N/A"), %T the long state name, %r the reason, %P the partition, %N the nodes,
// %C the CPUs, %u the user and %j the name.
const squeueFormat = "%i|%F|%K|%T|%r|%P|%N|%C|%u|%j"

const squeueFields = 10

// queueEntry is one line of squeue output in squeueFormat.
type queueEntry struct {
	ID        string
	ArrayJob  int64
	Task      string
	State     string
	Reason    string
	Partition string
	Nodes     string
	CPUs      int
	User      string
	Name      string
}

// SqueueParseError rejects squeue output.
type SqueueParseError struct {
	Line   int
	Reason string
}

func (e *SqueueParseError) Error() string {
	return fmt.Sprintf("parsing squeue output: line %d: %s", e.Line, e.Reason)
}

// parseSqueue reads squeue output in squeueFormat. A line with fewer fields continues the name of the
// entry before it: sbatch accepts a job name with a newline from its command line, and squeue prints it as
// it is.
func parseSqueue(out []byte) ([]queueEntry, error) {
	entries := make([]queueEntry, 0, bytes.Count(out, []byte{'\n'})+1)
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
		e, ok, err := parseQueueLine(string(line))
		if err != nil {
			return nil, &SqueueParseError{Line: n, Reason: err.Error()}
		}
		if !ok {
			if len(entries) == 0 {
				return nil, &SqueueParseError{Line: n, Reason: fmt.Sprintf("want %d fields", squeueFields)}
			}
			entries[len(entries)-1].Name += "\n" + string(line)
			continue
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// parseQueueLine parses one squeue line; ok is false for a line with too few fields.
func parseQueueLine(line string) (e queueEntry, ok bool, err error) {
	var f [squeueFields]string
	rest := line
	for i := range squeueFields - 1 {
		var found bool
		f[i], rest, found = strings.Cut(rest, "|")
		if !found {
			return e, false, nil
		}
	}
	f[squeueFields-1] = rest
	e = queueEntry{ID: f[0], Task: f[2], State: f[3], Reason: f[4], Partition: f[5], Nodes: f[6], User: f[8], Name: f[9]}
	if e.ID == "" {
		return e, false, fmt.Errorf("empty job id")
	}
	if e.ArrayJob, err = strconv.ParseInt(f[1], 10, 64); err != nil || e.ArrayJob < 1 {
		return e, false, fmt.Errorf("array job id %q is not a job number", f[1])
	}
	if e.CPUs, err = strconv.Atoi(f[7]); err != nil || e.CPUs < 0 {
		return e, false, fmt.Errorf("CPU count %q is not a number", f[7])
	}
	if e.Task == "N/A" {
		e.Task = ""
	}
	return e, true, nil
}

// mapState maps a Slurm job state (squeue's and sacct's long names, such as "CANCELLED by 1004") and its
// pending reason to a JobState.
func mapState(state, reason string) scheduler.JobState {
	if base, _, found := strings.Cut(state, " "); found {
		state = base
	}
	switch state {
	case "PENDING", "REQUEUED", "REQUEUE_FED":
		switch reason {
		case "JobHeldUser", "JobHeldAdmin", "Dependency":
			return scheduler.StateHeld
		case "DependencyNeverSatisfied", "BadConstraints", "InvalidAccount", "InvalidQOS",
			"launch failed requeued held":
			return scheduler.StateError
		}
		return scheduler.StatePending
	case "REQUEUE_HOLD", "RESV_DEL_HOLD":
		return scheduler.StateHeld
	case "SPECIAL_EXIT":
		return scheduler.StateError
	case "RUNNING", "COMPLETING", "CONFIGURING", "SIGNALING", "STAGE_OUT", "RESIZING":
		return scheduler.StateRunning
	case "SUSPENDED", "STOPPED":
		return scheduler.StateSuspended
	case "COMPLETED":
		return scheduler.StateDone
	case "CANCELLED", "REVOKED":
		return scheduler.StateCancelled
	case "FAILED", "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "PREEMPTED":
		return scheduler.StateFailed
	}
	return scheduler.StateUnknown
}

// statePriority orders states for summing up an array job: the most pressing one wins.
func statePriority(s scheduler.JobState) int {
	switch s {
	case scheduler.StateDone:
		return 1
	case scheduler.StatePending:
		return 2
	case scheduler.StateHeld:
		return 3
	case scheduler.StateSuspended:
		return 4
	case scheduler.StateRunning:
		return 5
	case scheduler.StateCancelled:
		return 6
	case scheduler.StateFailed:
		return 7
	case scheduler.StateError:
		return 8
	}
	return 0
}
