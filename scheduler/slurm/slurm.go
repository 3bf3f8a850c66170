package slurm

import (
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/hpcship/hpcship/internal/backoff"
	"github.com/hpcship/hpcship/scheduler"
)

// ErrUnavailable is wrapped by errors of Slurm commands that failed for a reason that passes: the
// controller or slurmdbd did not answer, refused the connection or timed out. Wait retries these (see
// WithOutageTolerance); an unknown job is never one of them.
var ErrUnavailable = errors.New("slurm unavailable")

// Slurm drives a Slurm cluster through its client commands sbatch, squeue, sacct, scancel and scontrol. It is
// safe for concurrent use and keeps no state between calls: everything it reports comes from Slurm.
type Slurm struct {
	o options
}

var _ scheduler.Scheduler = (*Slurm)(nil)

// New returns a Slurm that runs commands locally with the environment it was started in (less SBATCH_*),
// polls every 1 s backing off to 30 s, waits up to 60 s for accounting records, rides out 10 minutes of
// controller outage in Wait, gives each command 2 minutes and logs nothing. WithRunner, WithConfig,
// WithPollInterval, WithAccountingTimeout, WithOutageTolerance, WithCommandTimeout and WithLogger change
// these. New runs no command.
func New(opts ...Option) (*Slurm, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring slurm: %w", err)
		}
	}
	return &Slurm{o: o}, nil
}

// Submit renders j with Jobscript and submits it with `sbatch --parsable`, the script on standard input. It
// returns the job id; for an array job, the id of the whole array.
//
// Once sbatch has started it may have handed the job to slurmctld, so it runs to its end under the command
// timeout even if ctx ends meanwhile, rather than being killed with the id it would print. If ctx has ended
// when sbatch exits, Submit returns the id it printed together with a *scheduler.SubmittedError wrapping
// ctx's error, or, if sbatch failed, an error wrapping both sbatch's failure and ctx's error. If ctx has
// ended before sbatch starts, nothing is submitted.
func (s *Slurm) Submit(ctx context.Context, j scheduler.Job) (scheduler.JobID, error) {
	script, err := s.Jobscript(j)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("submitting job: %w", err)
	}
	out, err := s.run(context.WithoutCancel(ctx), "sbatch", []string{"--parsable"}, script)
	var id scheduler.JobID
	if err == nil {
		id, err = parseSubmitID(out)
	}
	ended := ctx.Err()
	switch {
	case err != nil && ended != nil:
		return "", fmt.Errorf("submitting job (%w while sbatch ran): %w", ended, err)
	case err != nil:
		return "", fmt.Errorf("submitting job: %w", err)
	case ended != nil:
		s.o.logger.DebugContext(ctx, "submitted after the context ended", "job", id)
		return id, &scheduler.SubmittedError{ID: id, Err: ended}
	}
	s.o.logger.DebugContext(ctx, "submitted", "job", id)
	return id, nil
}

// parseSubmitID reads `sbatch --parsable` output: "17", or "17;cluster" on a multi-cluster setup. Wrappers
// around sbatch may print other lines first, so the last non-empty line counts.
func parseSubmitID(out []byte) (scheduler.JobID, error) {
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("sbatch printed no job id")
	}
	last := lines[len(lines)-1]
	num, _, _ := strings.Cut(last, ";")
	if !isJobNumber(num) {
		return "", fmt.Errorf("sbatch printed %q, not a job id", last)
	}
	return scheduler.JobID(num), nil
}

// jobRef is a parsed JobID: a job number and, for one task of an array job, its task id.
type jobRef struct {
	id      scheduler.JobID
	number  string
	task    int
	hasTask bool
}

// slurmID is the id in Slurm's terms: "7" or "7_2".
func (r jobRef) slurmID() string {
	if r.hasTask {
		return r.number + "_" + strconv.Itoa(r.task)
	}
	return r.number
}

// parseJobID accepts "7", and "7.2" (the scheduler package's form) or "7_2" (Slurm's) for task 2 of array
// job 7.
func parseJobID(id scheduler.JobID) (jobRef, error) {
	s := string(id)
	sep := strings.IndexAny(s, "._")
	r := jobRef{id: id, number: s}
	if sep >= 0 {
		r.number, r.hasTask = s[:sep], true
		t, err := strconv.Atoi(s[sep+1:])
		if err != nil || t < 0 || s[sep+1] == '+' {
			return r, fmt.Errorf("%q is not a Slurm job id", id)
		}
		r.task = t
	}
	if !isJobNumber(r.number) {
		return r, fmt.Errorf("%q is not a Slurm job id", id)
	}
	return r, nil
}

// Status reports the job's state: from `squeue -t all` while slurmctld knows the job (MinJobAge, 300 s by
// default, after it ends), then from its accounting record (`sacct`). A job without either gives an error
// wrapping scheduler.ErrJobNotFound; a failure to reach Slurm one wrapping ErrUnavailable.
func (s *Slurm) Status(ctx context.Context, id scheduler.JobID) (scheduler.JobStatus, error) {
	ref, err := parseJobID(id)
	if err != nil {
		return scheduler.JobStatus{}, err
	}
	return s.status(ctx, ref)
}

func (s *Slurm) status(ctx context.Context, ref jobRef) (scheduler.JobStatus, error) {
	entries, err := s.queue(ctx, ref)
	if err != nil {
		return scheduler.JobStatus{}, err
	}
	if len(entries) > 0 {
		return queueStatus(ref, entries), nil
	}
	res, _, err := s.accounting(ctx, ref)
	if err != nil {
		return scheduler.JobStatus{}, err
	}
	return scheduler.JobStatus{ID: ref.id, State: res.State, Queue: res.Queue, Slots: res.Slots,
		Native: res.native}, nil
}

// queue lists the job (each array task on a line of its own) with squeue; a job slurmctld does not know
// gives no entries.
func (s *Slurm) queue(ctx context.Context, ref jobRef) ([]queueEntry, error) {
	out, err := s.run(ctx, "squeue", []string{"-h", "-r", "-t", "all", "-j", ref.slurmID(), "-o", squeueFormat}, nil)
	var ce *scheduler.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid job id specified") {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", ref.id, err)
	}
	entries, err := parseSqueue(out)
	if err != nil {
		return nil, fmt.Errorf("job %s: %w", ref.id, err)
	}
	kept := entries[:0]
	for _, e := range entries {
		if e.ArrayJob == 0 || strconv.FormatInt(e.ArrayJob, 10) != ref.number && e.ID != ref.number {
			continue
		}
		if ref.hasTask && e.Task != strconv.Itoa(ref.task) {
			continue
		}
		kept = append(kept, e)
	}
	return kept, nil
}

// queueStatus sums up squeue's entries of one job; an array job's State is the most pressing of its tasks'.
func queueStatus(ref jobRef, entries []queueEntry) scheduler.JobStatus {
	st := scheduler.JobStatus{ID: ref.id}
	for i, e := range entries {
		state := mapState(e.State, e.Reason)
		if i == 0 || statePriority(state) > statePriority(st.State) {
			st.State, st.Native = state, e.State
			if e.Reason != "None" {
				st.Message = e.Reason
			} else {
				st.Message = ""
			}
		}
		if i == 0 {
			st.Name, st.Owner, st.Queue, st.Slots = e.Name, e.User, e.Partition, e.CPUs
		}
		if e.Task != "" && !ref.hasTask {
			st.Tasks = append(st.Tasks, scheduler.TaskStatus{IDs: e.Task, State: state, Native: e.State, Queue: e.Partition})
		}
	}
	return st
}

// Result returns the job's accounting record from sacct, retrying while slurmdbd lags behind slurmctld (it
// may list a job that has ended as still running, or not at all, for a few seconds), up to the accounting
// timeout. For a job that squeue lists as not ended it returns an error wrapping scheduler.ErrNotEnded; for
// one that neither knows, one wrapping scheduler.ErrJobNotFound.
//
// ExitCode is the jobscript's exit status, or 128+n for a jobscript ended by signal n (a cancelled job's
// jobscript gets SIGTERM: 143). MaxVMem and MaxRSS are the largest of the job's steps, which Slurm samples
// every JobAcctGatherFrequency (30 s by default): a shorter job may show none.
func (s *Slurm) Result(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	ref, err := parseJobID(id)
	if err != nil {
		return scheduler.Result{}, err
	}
	return s.result(ctx, ref)
}

func (s *Slurm) result(ctx context.Context, ref jobRef) (scheduler.Result, error) {
	entries, err := s.queue(ctx, ref)
	if err != nil {
		return scheduler.Result{}, err
	}
	if len(entries) > 0 && !queueStatus(ref, entries).State.Ended() {
		return scheduler.Result{}, fmt.Errorf("job %s: %w", ref.id, scheduler.ErrNotEnded)
	}
	// slurmdbd records an array's tasks one by one: wait for as many as slurmctld knows.
	tasks := 0
	for _, e := range entries {
		if e.Task != "" && !ref.hasTask {
			tasks++
		}
	}
	deadline := time.Now().Add(s.o.accountingTimeout)
	for delay := s.o.pollMin; ; delay = s.backoff(delay) {
		res, ended, err := s.accounting(ctx, ref)
		if err == nil && ended && len(res.Tasks) >= tasks {
			if len(entries) > 0 {
				// A job that ended within a second of starting may reach slurmdbd without its start
				// record, whose partition and nodes slurmctld still knows.
				res.Queue = cmp.Or(res.Queue, entries[0].Partition)
				res.Host = cmp.Or(res.Host, entries[0].Nodes)
			}
			return res.Result, nil
		}
		if err != nil && !errors.Is(err, scheduler.ErrJobNotFound) {
			return scheduler.Result{}, err
		}
		if time.Now().Add(delay).After(deadline) {
			if err != nil {
				return scheduler.Result{}, err
			}
			return scheduler.Result{}, fmt.Errorf("job %s: accounting still reports %s (%d of %d tasks) after %v: %w",
				ref.id, res.native, len(res.Tasks), tasks, s.o.accountingTimeout, scheduler.ErrNotEnded)
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return scheduler.Result{}, err
		}
	}
}

// Wait polls Status, backing off from the first to the longest poll interval, until the job has ended or
// sits in an error state (such as a dependency that can never be satisfied). It returns the accounting
// record of an ended job, and a Result with StateError and Slurm's reason in Failure for a job in an error
// state, which stays in the queue. Failures to reach Slurm (ErrUnavailable) are retried until they have
// lasted the outage tolerance; a job Slurm does not know is looked for up to the accounting timeout.
func (s *Slurm) Wait(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	ref, err := parseJobID(id)
	if err != nil {
		return scheduler.Result{}, err
	}
	var failingSince, missingSince time.Time
	for delay := s.o.pollMin; ; delay = s.backoff(delay) {
		res, done, err := s.poll(ctx, ref)
		switch {
		case errors.Is(err, ErrUnavailable):
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) >= s.o.outage {
				return scheduler.Result{}, fmt.Errorf("job %s: slurm failing for %v: %w", id,
					time.Since(failingSince).Round(time.Second), err)
			}
			s.o.logger.DebugContext(ctx, "retrying", "job", id, "error", err)
		case errors.Is(err, scheduler.ErrJobNotFound):
			failingSince = time.Time{}
			if missingSince.IsZero() {
				missingSince = time.Now()
			} else if time.Since(missingSince) > s.o.accountingTimeout {
				return scheduler.Result{}, err
			}
			delay = s.o.pollMin
		case err != nil:
			return scheduler.Result{}, err
		case done:
			return res, nil
		default:
			failingSince, missingSince = time.Time{}, time.Time{}
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return scheduler.Result{}, err
		}
	}
}

// poll looks at the job once for Wait: done with its Result once it has ended (or sits in an error state).
func (s *Slurm) poll(ctx context.Context, ref jobRef) (scheduler.Result, bool, error) {
	st, err := s.status(ctx, ref)
	switch {
	case err != nil:
		return scheduler.Result{}, false, err
	case st.State == scheduler.StateError:
		return scheduler.Result{ID: ref.id, State: scheduler.StateError, Failure: st.Message}, true, nil
	case !st.State.Ended():
		return scheduler.Result{}, false, nil
	}
	res, err := s.result(ctx, ref)
	if err != nil {
		return scheduler.Result{}, false, err
	}
	return res, true, nil
}

func (s *Slurm) backoff(d time.Duration) time.Duration {
	return min(d+d/2, s.o.pollMax)
}

// Cancel cancels the job with scancel: a pending or held job leaves the queue, a running one gets SIGTERM
// and, KillWait seconds later, SIGKILL. scancel exits 0 for a job it does not know; Cancel returns an error
// wrapping scheduler.ErrJobNotFound then. A job that has already ended is not an error.
func (s *Slurm) Cancel(ctx context.Context, id scheduler.JobID) error {
	ref, err := parseJobID(id)
	if err != nil {
		return err
	}
	// -v makes scancel report a failed cancel; it prints nothing otherwise.
	out, err := s.runOutput(ctx, "scancel", []string{"-v", ref.slurmID()}, nil)
	if err == nil && bytes.Contains(out.Stderr, []byte("Invalid job id specified")) {
		return fmt.Errorf("cancelling job %s: %w", id, scheduler.ErrJobNotFound)
	}
	if err != nil {
		return fmt.Errorf("cancelling job %s: %w", id, err)
	}
	return nil
}

// Hold puts a pending job in a user hold (`scontrol hold`); it stays pending until Release.
func (s *Slurm) Hold(ctx context.Context, id scheduler.JobID) error {
	return s.control(ctx, "hold", id)
}

// Release releases a held job (`scontrol release`), whether submitted with Job.Hold or held with Hold.
func (s *Slurm) Release(ctx context.Context, id scheduler.JobID) error {
	return s.control(ctx, "release", id)
}

func (s *Slurm) control(ctx context.Context, verb string, id scheduler.JobID) error {
	ref, err := parseJobID(id)
	if err != nil {
		return err
	}
	_, err = s.run(ctx, "scontrol", []string{verb, ref.slurmID()}, nil)
	var ce *scheduler.CommandError
	if errors.As(err, &ce) && strings.Contains(ce.Stderr, "Invalid job id specified") {
		return fmt.Errorf("%s job %s: %w: %w", verb, id, scheduler.ErrJobNotFound, err)
	}
	if err != nil {
		return fmt.Errorf("%s job %s: %w", verb, id, err)
	}
	return nil
}

// acctResult is a Result with the native state it was read from.
type acctResult struct {
	scheduler.Result
	native string
}

// accounting reads the job's rows with sacct and sums them up: ended is false while any allocation (an
// array's task) has not ended in accounting. No rows gives an error wrapping scheduler.ErrJobNotFound.
func (s *Slurm) accounting(ctx context.Context, ref jobRef) (acctResult, bool, error) {
	out, err := s.run(ctx, "sacct", []string{"-P", "-n", "-j", ref.slurmID(), "-o", sacctFields}, nil)
	if err != nil {
		return acctResult{}, false, fmt.Errorf("job %s: %w", ref.id, err)
	}
	rows, err := parseSacct(out)
	if err != nil {
		return acctResult{}, false, fmt.Errorf("job %s: %w", ref.id, err)
	}
	return summarize(ref, rows)
}

// summarize turns sacct rows into a Result: one per allocation, with the exit status and memory of its
// steps; an array job's Result holds one per task.
func summarize(ref jobRef, rows []acctRow) (acctResult, bool, error) {
	type alloc struct {
		row, batch *acctRow
		steps      []*acctRow
	}
	allocs := map[string]*alloc{}
	var order []string
	pending := false
	for i := range rows {
		r := &rows[i]
		num, _, _ := strings.Cut(r.Job, "_")
		switch {
		case num != ref.number && r.Raw != ref.number:
			continue
		case ref.hasTask && r.Job != ref.slurmID():
			// Another task, or the pending ones: this task's own row comes when it has started.
			continue
		}
		if r.Pending {
			pending = true
			continue
		}
		a := allocs[r.Job]
		if a == nil {
			a = &alloc{}
			allocs[r.Job] = a
			order = append(order, r.Job)
		}
		switch r.Step {
		case "":
			a.row = r
		case "batch":
			a.batch = r
			a.steps = append(a.steps, r)
		default:
			a.steps = append(a.steps, r)
		}
	}
	var results []acctResult
	ended := !pending
	for _, job := range order {
		a := allocs[job]
		if a.row == nil {
			continue
		}
		res := allocResult(ref, a.row, a.batch, a.steps)
		if !res.State.Ended() {
			ended = false
		}
		results = append(results, res)
	}
	if len(results) == 0 {
		if pending {
			return acctResult{Result: scheduler.Result{ID: ref.id, State: scheduler.StatePending}, native: "PENDING"}, false, nil
		}
		return acctResult{}, false, fmt.Errorf("job %s: sacct has no record of it: %w", ref.id, scheduler.ErrJobNotFound)
	}
	isArray := !ref.hasTask && slices.ContainsFunc(results, func(r acctResult) bool { return r.ID != ref.id })
	if !isArray {
		return results[0], ended, nil
	}
	slices.SortFunc(results, func(a, b acctResult) int { return cmp.Compare(a.Task, b.Task) })
	sum := acctResult{Result: scheduler.Result{ID: ref.id, State: scheduler.StateDone}}
	for _, t := range results {
		sum.Tasks = append(sum.Tasks, t.Result)
		if statePriority(t.State) > statePriority(sum.State) {
			sum.State, sum.native = t.State, t.native
		}
		if sum.Start.IsZero() || !t.Start.IsZero() && t.Start.Before(sum.Start) {
			sum.Start = t.Start
		}
		if t.End.After(sum.End) {
			sum.End = t.End
		}
		sum.MaxVMem = max(sum.MaxVMem, t.MaxVMem)
		sum.MaxRSS = max(sum.MaxRSS, t.MaxRSS)
	}
	if sum.native == "" {
		sum.native = "COMPLETED"
	}
	if !sum.End.IsZero() && !sum.Start.IsZero() {
		sum.Wallclock = sum.End.Sub(sum.Start)
	}
	first := sum.Tasks[0]
	sum.Queue, sum.Slots, sum.Host = first.Queue, first.Slots, first.Host
	if sum.State != scheduler.StateDone {
		for _, t := range sum.Tasks {
			if t.State == sum.State {
				sum.ExitCode, sum.Failure = t.ExitCode, t.Failure
				break
			}
		}
	}
	return sum, ended && !pending, nil
}

// allocResult makes the Result of one allocation from its row and its steps'.
func allocResult(ref jobRef, row, batch *acctRow, steps []*acctRow) acctResult {
	id := ref.id
	if _, task, isTask := strings.Cut(row.Job, "_"); isTask && !ref.hasTask {
		id = scheduler.JobID(ref.number + "." + task)
	}
	res := acctResult{native: row.State, Result: scheduler.Result{
		ID: id, State: mapState(row.State, ""), Host: row.NodeList, Queue: row.Partition, Slots: row.CPUs,
		Start: row.Start, End: row.End, Wallclock: row.Elapsed, Task: row.Task,
	}}
	// The batch step is the jobscript; the allocation row misses the signal of a cancelled one (0:0 against
	// the batch step's 0:15).
	status, signal := row.ExitStatus, row.Signal
	if batch != nil {
		status, signal = batch.ExitStatus, batch.Signal
	}
	res.ExitCode = status
	if signal != 0 {
		res.ExitCode = 128 + signal
	}
	for _, st := range steps {
		res.MaxRSS = max(res.MaxRSS, st.MaxRSS)
		res.MaxVMem = max(res.MaxVMem, st.MaxVMSize)
	}
	switch base, _, _ := strings.Cut(row.State, " "); base {
	case "TIMEOUT", "NODE_FAIL", "BOOT_FAIL", "DEADLINE", "OUT_OF_MEMORY", "PREEMPTED":
		// Slurm, not the jobscript, ended the job.
		res.Failure = base
	}
	return res
}

// run runs one Slurm command and turns a non-zero exit into a *scheduler.CommandError; see runOutput.
func (s *Slurm) run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	out, err := s.runOutput(ctx, name, args, stdin)
	if err != nil {
		return nil, err
	}
	return out.Stdout, nil
}

// runOutput runs one Slurm command with the command timeout. A failure to reach Slurm or a timeout wraps
// ErrUnavailable; a command that exits non-zero is a *scheduler.CommandError.
func (s *Slurm) runOutput(ctx context.Context, name string, args []string, stdin []byte) (scheduler.Output, error) {
	// SBATCH_* variables would override the jobscript's #SBATCH lines (SBATCH_JOB_NAME would rename the
	// job, SBATCH_EXPORT change what it sees), so no command gets them from the runner's environment.
	c := scheduler.Command{Name: name, Args: args, Env: s.o.env, UnsetPrefixes: []string{"SBATCH_"}, Stdin: stdin}
	s.o.logger.DebugContext(ctx, "running", "command", name, "args", args)
	cctx, cancel := context.WithTimeout(ctx, s.o.commandTimeout)
	defer cancel()
	out, err := s.o.runner.Run(cctx, c)
	switch {
	case err != nil && ctx.Err() != nil:
		return scheduler.Output{}, ctx.Err()
	case err != nil && cctx.Err() != nil:
		return scheduler.Output{}, fmt.Errorf("%w: %s did not finish in %v", ErrUnavailable, name, s.o.commandTimeout)
	case err != nil && errors.Is(err, exec.ErrNotFound):
		return scheduler.Output{}, err
	case err != nil:
		// The runner could not run the command, as when an SSH connection to the login node fails.
		return scheduler.Output{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case out.ExitCode != 0:
		ce := scheduler.NewCommandError(c, out)
		if isTransient(ce.Stderr) {
			return scheduler.Output{}, fmt.Errorf("%w: %w", ErrUnavailable, ce)
		}
		return scheduler.Output{}, ce
	}
	out.Stdout = bytes.Clone(out.Stdout)
	return out, nil
}

// isTransient reports whether a Slurm command's error output says that the controller or slurmdbd could not
// be reached or did not answer in time, rather than that the request was wrong.
func isTransient(stderr string) bool {
	for _, s := range []string{
		"Unable to contact slurm controller",
		"Socket timed out",
		"Connection refused",
		"Connection timed out",
		"Connection reset",
		"Zero Bytes were transmitted or received",
		"Communication connection failure",
		"Transport endpoint is not connected",
		"Slurm backup controller in standby mode",
		"Resource temporarily unavailable",
		"Problem talking to the database",
		"Unable to establish a connection",
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}
