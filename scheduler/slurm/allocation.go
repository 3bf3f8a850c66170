package slurm

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/hpcship/hpcship/internal/jobscript"
	"github.com/hpcship/hpcship/scheduler"
)

// maxNodeTasks bounds the tasks of one node, and all of them together, as the jobscript does
// (jobscript.MaxSlots), so that a corrupt count cannot make MachinefileSlots render without end.
const maxNodeTasks = jobscript.MaxSlots

// ErrAllocationTooLarge is wrapped by Machinefile's error for an allocation whose machinefile would exceed
// 16 MiB, which the jobscript refuses as well.
var ErrAllocationTooLarge = errors.New("allocation too large for a machinefile")

// NodeTasks is one node of a job's allocation and the number of its tasks there.
type NodeTasks struct {
	Host  string
	Tasks int
}

// Allocation is the nodes of a running job in Slurm's order, the batch host first.
type Allocation []NodeTasks

// ParseAllocation pairs the hosts of a hostlist expression (SLURM_JOB_NODELIST) with the counts of a
// tasks-per-node list (SLURM_TASKS_PER_NODE, such as "2(x3),1"). An empty tasksPerNode means one task per
// node, as for a job submitted without a task count. The lists must have the same length, and every host
// name be of letters, digits, '.', '_' and '-', as the jobscript requires.
func ParseAllocation(nodelist, tasksPerNode string) (Allocation, error) {
	hosts, err := ExpandHostlist(nodelist)
	if err != nil {
		return nil, err
	}
	if len(hosts) == 0 {
		return nil, hostlistError(nodelist, 0, "no hosts")
	}
	a := make(Allocation, len(hosts))
	for i, h := range hosts {
		if !jobscript.IsHostName(h) {
			return nil, hostlistError(nodelist, 0, "host %d is not a name of letters, digits, '.', '_' and '-'", i)
		}
		a[i] = NodeTasks{Host: h, Tasks: 1}
	}
	if tasksPerNode == "" {
		return a, nil
	}
	counts, err := ParseTasksPerNode(tasksPerNode)
	if err != nil {
		return nil, err
	}
	if len(counts) != len(hosts) {
		return nil, hostlistError(tasksPerNode, 0, "%d task counts for %d hosts", len(counts), len(hosts))
	}
	for i, n := range counts {
		a[i].Tasks = n
	}
	return a, nil
}

// AllocationFromEnv returns the allocation of the job this program runs in, from SLURM_JOB_NODELIST and
// SLURM_TASKS_PER_NODE.
func AllocationFromEnv() (Allocation, error) {
	nodes := os.Getenv("SLURM_JOB_NODELIST")
	if nodes == "" {
		return nil, fmt.Errorf("SLURM_JOB_NODELIST is not set: not inside a Slurm job")
	}
	return ParseAllocation(nodes, os.Getenv("SLURM_TASKS_PER_NODE"))
}

// ParseTasksPerNode expands Slurm's compressed per-node counts, as in SLURM_TASKS_PER_NODE and
// SLURM_JOB_CPUS_PER_NODE: comma-separated entries "N" or "N(xR)" (N on each of R nodes). It is bounded like
// ExpandHostlist: at most MaxHostlistHosts entries, each count from 1 to 1,048,576, and at most 1,048,576 in
// all.
func ParseTasksPerNode(s string) ([]int, error) {
	var counts []int
	total := 0
	for pos := 0; pos <= len(s); {
		next := len(s)
		if i := strings.IndexByte(s[pos:], ','); i >= 0 {
			next = pos + i
		}
		item := s[pos:next]
		countText, repeatText, repeated := strings.Cut(item, "(x")
		count, err := strconv.Atoi(countText)
		if err != nil || count < 1 || count > maxNodeTasks || countText[0] == '+' {
			return nil, hostlistError(s, pos, "task count %q is not a number from 1 to %d", countText, maxNodeTasks)
		}
		repeat := 1
		if repeated {
			r, ok := strings.CutSuffix(repeatText, ")")
			n, err := strconv.Atoi(r)
			if !ok || err != nil || n < 1 || r[0] == '+' {
				return nil, hostlistError(s, pos, "%q: want N(xR) with a positive R", item)
			}
			repeat = n
		}
		if repeat > MaxHostlistHosts-len(counts) {
			return nil, hostlistError(s, pos, "more than %d nodes", MaxHostlistHosts)
		}
		if total += count * repeat; total > maxNodeTasks {
			return nil, hostlistError(s, pos, "more than %d tasks in all", maxNodeTasks)
		}
		for range repeat {
			counts = append(counts, count)
		}
		pos = next + 1
	}
	return counts, nil
}

// Tasks returns the total number of tasks.
func (a Allocation) Tasks() int {
	n := 0
	for _, nt := range a {
		n += nt.Tasks
	}
	return n
}

// Machinefile renders the allocation in format f, one entry per line, as the jobscript writes it: each host
// once (MachinefileHosts), each host once with its tasks as "host:N" (MachinefileHostSlots) or
// "host slots=N" (MachinefileOpenMPI), or each host once per task (MachinefileSlots). A host listed twice
// has its tasks added up, except in MachinefileSlots. A machinefile above 16 MiB is an error wrapping
// ErrAllocationTooLarge.
func (a Allocation) Machinefile(f scheduler.MachinefileFormat) ([]byte, error) {
	var hosts []string
	tasks := make(map[string]int, len(a))
	for _, nt := range a {
		if _, ok := tasks[nt.Host]; !ok {
			hosts = append(hosts, nt.Host)
		}
		tasks[nt.Host] += nt.Tasks
	}
	var size int64
	for _, h := range hosts {
		size += jobscript.MachinefileSize(f, h, tasks[h])
	}
	if size > jobscript.MaxMachinefileBytes {
		return nil, fmt.Errorf("%w: %d bytes, more than %d", ErrAllocationTooLarge, size, jobscript.MaxMachinefileBytes)
	}
	var b bytes.Buffer
	b.Grow(int(size))
	if f == scheduler.MachinefileSlots {
		for _, nt := range a {
			for range nt.Tasks {
				b.WriteString(nt.Host + "\n")
			}
		}
		return b.Bytes(), nil
	}
	for _, h := range hosts {
		b.WriteString(h)
		switch f {
		case scheduler.MachinefileHostSlots:
			b.WriteString(":" + strconv.Itoa(tasks[h]))
		case scheduler.MachinefileOpenMPI:
			b.WriteString(" slots=" + strconv.Itoa(tasks[h]))
		}
		b.WriteByte('\n')
	}
	return b.Bytes(), nil
}
