package sge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/hpcship/hpcship/internal/backoff"
	"github.com/hpcship/hpcship/internal/envvar"
	"github.com/hpcship/hpcship/scheduler"
)

// ErrUnavailable is wrapped by errors of Grid Engine commands that failed for a reason that passes: the
// qmaster did not answer or refused the connection, the runner could not run the command, or the command
// timed out. Wait retries these (see WithOutageTolerance); an unknown job is never one of them.
var ErrUnavailable = errors.New("grid engine unavailable")

// SGE drives a Grid Engine cell (Son of Grid Engine, Open Grid Scheduler, Altair/Univa Grid Engine) through
// its client commands qsub, qstat, qacct and qdel. It is safe for concurrent use.
type SGE struct {
	o options

	mu sync.Mutex
	// cancelled holds the jobs Cancel deleted, at most maxCancelled of them, oldest first in cancelOrder.
	cancelled   map[int64]bool
	cancelOrder []int64
	// listing is the last `qstat -xml -u '*'`, shared by concurrent callers.
	listing *listing
}

// maxCancelled bounds how many cancelled jobs an SGE remembers to report as cancelled.
const maxCancelled = 4096

// listing is one `qstat -xml -u '*'` of the whole cell: when it started, and its jobs or error, which are
// set before done is closed and never change after.
type listing struct {
	started time.Time
	jobs    []qstatJob
	err     error
	done    chan struct{}
}

var _ scheduler.Scheduler = (*SGE)(nil)

// New returns an SGE that runs commands locally with the environment it was started in, polls every 1 s
// backing off to 30 s, waits up to 45 s for accounting records, rides out 10 minutes of qmaster outage in
// Wait, gives each command 2 minutes and logs nothing. WithRunner, WithCell, WithPorts, WithSettingsFile,
// WithPollInterval, WithAccountingTimeout, WithOutageTolerance, WithCommandTimeout and WithLogger change these;
// WithCycleCloud adds Azure CycleCloud's queue rule. New runs no command.
func New(opts ...Option) (*SGE, error) {
	o := defaultOptions()
	for _, opt := range opts {
		if err := opt(&o); err != nil {
			return nil, fmt.Errorf("configuring sge: %w", err)
		}
	}
	return &SGE{o: o, cancelled: map[int64]bool{}}, nil
}

// Submit renders j with Jobscript and submits it with `qsub -terse`, the script on standard input and
// j.Native on the command line. It returns the job id; for an array job, the id of the whole array.
//
// Once qsub has started it may have handed the job to the qmaster, so it runs to its end under the command
// timeout even if ctx ends meanwhile, rather than being killed with the id it would print. If ctx has ended
// when qsub exits, Submit returns the id it printed together with a *scheduler.SubmittedError wrapping
// ctx's error, or, if qsub failed, an error wrapping both qsub's failure and ctx's error. If ctx has ended
// before qsub starts, nothing is submitted.
func (s *SGE) Submit(ctx context.Context, j scheduler.Job) (scheduler.JobID, error) {
	script, err := s.Jobscript(j)
	if err != nil {
		return "", err
	}
	if err := ctx.Err(); err != nil {
		return "", fmt.Errorf("submitting job: %w", err)
	}
	args := append([]string{"-terse"}, j.Native...)
	out, err := s.run(context.WithoutCancel(ctx), "qsub", args, script)
	var id scheduler.JobID
	if err == nil {
		id, err = parseSubmitID(out)
	}
	ended := ctx.Err()
	switch {
	case err != nil && ended != nil:
		return "", fmt.Errorf("submitting job (%w while qsub ran): %w", ended, err)
	case err != nil:
		return "", fmt.Errorf("submitting job: %w", err)
	case ended != nil:
		s.o.logger.Debug("submitted after the context ended", "job", id)
		return id, &scheduler.SubmittedError{ID: id, Err: ended}
	}
	s.o.logger.Debug("submitted", "job", id)
	return id, nil
}

// parseSubmitID reads `qsub -terse` output: "17", or "17.1-3:1" for an array job. Wrappers around qsub may
// print other lines first, so the last non-empty line counts.
func parseSubmitID(out []byte) (scheduler.JobID, error) {
	lines := strings.Fields(string(out))
	if len(lines) == 0 {
		return "", fmt.Errorf("qsub printed no job id")
	}
	last := lines[len(lines)-1]
	num, _, _ := strings.Cut(last, ".")
	if n, err := strconv.ParseInt(num, 10, 64); err != nil || n < 1 {
		return "", fmt.Errorf("qsub printed %s, not a job id", envvar.Clip(last))
	}
	return scheduler.JobID(num), nil
}

// jobRef is a parsed JobID: a job number and, for one task of an array job, its task id.
type jobRef struct {
	id     scheduler.JobID
	number int64
	task   int
}

func parseJobID(id scheduler.JobID) (jobRef, error) {
	num, task, hasTask := strings.Cut(string(id), ".")
	r := jobRef{id: id}
	var err error
	if r.number, err = strconv.ParseInt(num, 10, 64); err != nil || r.number < 1 {
		return r, fmt.Errorf("%s is not a Grid Engine job id", envvar.Clip(string(id)))
	}
	if hasTask {
		if r.task, err = strconv.Atoi(task); err != nil || r.task < 1 {
			return r, fmt.Errorf("%s is not a Grid Engine job id", envvar.Clip(string(id)))
		}
	}
	return r, nil
}

// Status reports the job's state: from `qstat -xml` while Grid Engine lists it (with the error reason from
// `qstat -j ID -xml` for a job in an error state); once `qstat -j ID -xml` no longer knows it, from its
// accounting record (`qacct -j ID`). A job without either gives an error wrapping scheduler.ErrJobNotFound;
// right after a job ends that can mean its record is not written yet (see WithAccountingTimeout).
//
// The listing of the cell is shared: concurrent calls wait for one `qstat -xml -u '*'` that started after
// they were called, and the polls of every Wait share one listing per shortest poll interval.
func (s *SGE) Status(ctx context.Context, id scheduler.JobID) (scheduler.JobStatus, error) {
	st, _, err := s.status(ctx, id, time.Now())
	return st, err
}

// status reports the job's state from a listing that started at notBefore or later.
func (s *SGE) status(ctx context.Context, id scheduler.JobID, notBefore time.Time) (scheduler.JobStatus, *scheduler.Result, error) {
	ref, err := parseJobID(id)
	if err != nil {
		return scheduler.JobStatus{}, nil, err
	}
	jobs, err := s.list(ctx, notBefore)
	if err != nil {
		return scheduler.JobStatus{}, nil, fmt.Errorf("job %s: %w", id, err)
	}
	if st, ok := listedStatus(ref, jobs); ok {
		if st.State == scheduler.StateError {
			if d, err := s.detail(ctx, ref); err == nil && len(d.Jobs) > 0 {
				st.Message = strings.Join(d.Jobs[0].Messages, "\n")
			}
		}
		return st, nil, nil
	}
	d, err := s.detail(ctx, ref)
	if err != nil {
		return scheduler.JobStatus{}, nil, err
	}
	if !slices.Contains(d.Unknown, strconv.FormatInt(ref.number, 10)) {
		// Known to qstat -j but not listed: between states, such as a job leaving its host.
		return scheduler.JobStatus{ID: id, State: scheduler.StateUnknown}, nil, nil
	}
	res, err := s.accounting(ctx, ref)
	if err != nil {
		return scheduler.JobStatus{}, nil, err
	}
	st := scheduler.JobStatus{ID: id, State: res.State, Queue: res.Queue, Slots: res.Slots}
	if res.Host != "" {
		st.Queue = res.Queue + "@" + res.Host
	}
	return st, &res, nil
}

// list returns the cell's jobs from a `qstat -xml -u '*'` that started at notBefore or later: the last one
// (waiting for it if it still runs) if it started in time, or a new one. A listing that failed because its
// caller's ctx ended is not handed to the others; they run their own.
func (s *SGE) list(ctx context.Context, notBefore time.Time) ([]qstatJob, error) {
	for {
		s.mu.Lock()
		l := s.listing
		if l != nil && !l.started.Before(notBefore) {
			s.mu.Unlock()
			select {
			case <-l.done:
			case <-ctx.Done():
				return nil, ctx.Err()
			}
			if l.err == nil || !isContextError(l.err) || ctx.Err() != nil {
				return l.jobs, l.err
			}
			s.mu.Lock()
			if s.listing == l {
				s.listing = nil
			}
			s.mu.Unlock()
			continue
		}
		l = &listing{started: time.Now(), done: make(chan struct{})}
		s.listing = l
		s.mu.Unlock()
		l.jobs, l.err = s.qstat(ctx)
		close(l.done)
		return l.jobs, l.err
	}
}

func isContextError(err error) bool {
	return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)
}

// qstat runs and parses `qstat -xml -u '*'`.
func (s *SGE) qstat(ctx context.Context) ([]qstatJob, error) {
	out, err := s.run(ctx, "qstat", []string{"-xml", "-u", "*"}, nil)
	if err != nil {
		return nil, err
	}
	jobs, err := parseQstat(out)
	if err != nil {
		return nil, fmt.Errorf("parsing qstat -xml output: %w", err)
	}
	return jobs, nil
}

func (s *SGE) detail(ctx context.Context, ref jobRef) (qstatJobDetail, error) {
	out, err := s.run(ctx, "qstat", []string{"-j", strconv.FormatInt(ref.number, 10), "-xml"}, nil)
	if err != nil {
		return qstatJobDetail{}, fmt.Errorf("job %s: %w", ref.id, err)
	}
	d, err := parseQstatJob(out)
	if err != nil {
		return qstatJobDetail{}, fmt.Errorf("job %s: %w", ref.id, err)
	}
	return d, nil
}

// listedStatus finds the job in qstat's listing. An array job is listed once per running task and once per
// range of pending tasks; its State is the most pressing of theirs.
func listedStatus(ref jobRef, jobs []qstatJob) (scheduler.JobStatus, bool) {
	st := scheduler.JobStatus{ID: ref.id}
	found := false
	for _, j := range jobs {
		if j.Number != ref.number || ref.task != 0 && !taskIn(ref.task, j.Tasks) {
			continue
		}
		state := mapState(j.State)
		if !found || statePriority(state) > statePriority(st.State) {
			st.State, st.Native = state, j.State
		}
		if !found {
			st.Name, st.Owner, st.Queue, st.Slots = j.Name, j.Owner, j.Queue, j.Slots
		}
		found = true
		if j.Tasks != "" {
			st.Tasks = append(st.Tasks, scheduler.TaskStatus{IDs: j.Tasks, State: state, Native: j.State, Queue: j.Queue})
		}
	}
	return st, found
}

// taskIn reports whether task is tasks: a task id or a range "first-last:step" as qstat prints pending tasks.
func taskIn(task int, tasks string) bool {
	for _, part := range strings.Split(tasks, ",") {
		rng, stepText, hasStep := strings.Cut(part, ":")
		firstText, lastText, isRange := strings.Cut(rng, "-")
		first, err := strconv.Atoi(firstText)
		if err != nil {
			continue
		}
		last, step := first, 1
		if isRange {
			if last, err = strconv.Atoi(lastText); err != nil {
				continue
			}
		}
		if hasStep {
			if step, err = strconv.Atoi(stepText); err != nil || step < 1 {
				continue
			}
		}
		if task >= first && task <= last && (task-first)%step == 0 {
			return true
		}
	}
	return false
}

// mapState maps Grid Engine's state letters (sge_status(5)) to a JobState: E(rror) first, then d(eletion),
// h(old), the suspensions s, S and T, r(unning) and t(ransferring), and q(ueued) or w(aiting).
func mapState(letters string) scheduler.JobState {
	switch {
	case strings.Contains(letters, "E"):
		return scheduler.StateError
	case strings.Contains(letters, "d"):
		// Being deleted: still running until it is gone.
		return scheduler.StateRunning
	case strings.Contains(letters, "h"):
		if strings.ContainsAny(letters, "rt") {
			return scheduler.StateRunning
		}
		return scheduler.StateHeld
	case strings.ContainsAny(letters, "sST"):
		return scheduler.StateSuspended
	case strings.ContainsAny(letters, "rt"):
		return scheduler.StateRunning
	case strings.ContainsAny(letters, "qw"):
		return scheduler.StatePending
	}
	return scheduler.StateUnknown
}

func statePriority(s scheduler.JobState) int {
	return [...]int{
		scheduler.StateUnknown:   0,
		scheduler.StateDone:      1,
		scheduler.StatePending:   2,
		scheduler.StateHeld:      3,
		scheduler.StateSuspended: 4,
		scheduler.StateRunning:   5,
		scheduler.StateCancelled: 6,
		scheduler.StateFailed:    7,
		scheduler.StateError:     8,
	}[s]
}

// Result returns the job's accounting record from `qacct -j ID`, retrying until the accounting timeout
// while Grid Engine has not written it yet. For a job that qstat still lists it returns an error wrapping
// scheduler.ErrNotEnded; for one that neither knows, one wrapping scheduler.ErrJobNotFound.
func (s *SGE) Result(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	ref, err := parseJobID(id)
	if err != nil {
		return scheduler.Result{}, err
	}
	var deadline time.Time
	for delay := s.o.pollMin; ; delay = s.nextDelay(delay) {
		res, err := s.accounting(ctx, ref)
		if !errors.Is(err, scheduler.ErrJobNotFound) {
			return res, err
		}
		if deadline.IsZero() {
			d, derr := s.detail(ctx, ref)
			if derr != nil {
				return scheduler.Result{}, derr
			}
			if len(d.Jobs) > 0 {
				return scheduler.Result{}, fmt.Errorf("job %s: %w", id, scheduler.ErrNotEnded)
			}
			deadline = time.Now().Add(s.o.accountingTimeout)
		}
		if time.Now().Add(delay).After(deadline) {
			return scheduler.Result{}, err
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return scheduler.Result{}, err
		}
	}
}

// Wait polls Status, backing off from the first to the longest poll interval, until the job has ended or
// sits in an error state. It returns the accounting record of an ended job, and a Result with StateError
// and the scheduler's reason in Failure for a job in an error state, which stays in the queue. When the
// job leaves qstat, Wait keeps polling up to the accounting timeout for its record. Failures to reach Grid
// Engine (ErrUnavailable) are retried until they have lasted the outage tolerance.
func (s *SGE) Wait(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	var failingSince, missingSince time.Time
	for delay := s.o.pollMin; ; delay = s.nextDelay(delay) {
		// Any listing of the last shortest poll interval will do: the polls of all Waits share it.
		st, res, err := s.status(ctx, id, time.Now().Add(-s.o.pollMin))
		switch {
		case errors.Is(err, ErrUnavailable):
			if failingSince.IsZero() {
				failingSince = time.Now()
			}
			if time.Since(failingSince) >= s.o.outage {
				return scheduler.Result{}, fmt.Errorf("grid engine failing for %v: %w",
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
			// The record may not be written yet: look again soon.
			delay = s.o.pollMin
		case err != nil:
			return scheduler.Result{}, err
		case res != nil:
			return *res, nil
		case st.State == scheduler.StateError:
			return scheduler.Result{ID: id, State: scheduler.StateError, Failure: st.Message}, nil
		default:
			failingSince, missingSince = time.Time{}, time.Time{}
		}
		if err := backoff.Sleep(ctx, delay); err != nil {
			return scheduler.Result{}, err
		}
	}
}

// nextDelay is the poll interval after d: half as long again, up to the longest.
func (s *SGE) nextDelay(d time.Duration) time.Duration {
	return min(d+d/2, s.o.pollMax)
}

// Cancel deletes the job with qdel. A job this SGE cancelled (one of the last 4096) is reported as
// scheduler.StateCancelled once it has ended; Grid Engine's accounting does not record who ended a job. A
// job qdel refused to delete is not.
func (s *SGE) Cancel(ctx context.Context, id scheduler.JobID) error {
	ref, err := parseJobID(id)
	if err != nil {
		return err
	}
	if _, err := s.run(ctx, "qdel", []string{string(id)}, nil); err != nil {
		var ce *scheduler.CommandError
		if errors.As(err, &ce) && strings.Contains(ce.Stderr, "does not exist") {
			return fmt.Errorf("cancelling job %s: %w: %w", id, scheduler.ErrJobNotFound, err)
		}
		return fmt.Errorf("cancelling job %s: %w", id, err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.cancelled[ref.number] {
		s.cancelled[ref.number] = true
		s.cancelOrder = append(s.cancelOrder, ref.number)
		if len(s.cancelOrder) > maxCancelled {
			delete(s.cancelled, s.cancelOrder[0])
			s.cancelOrder = slices.Delete(s.cancelOrder, 0, 1)
		}
	}
	return nil
}

func (s *SGE) wasCancelled(n int64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cancelled[n]
}

// accounting reads the job's records with `qacct -j ID` and sums them up into a Result.
func (s *SGE) accounting(ctx context.Context, ref jobRef) (scheduler.Result, error) {
	out, err := s.run(ctx, "qacct", []string{"-j", strconv.FormatInt(ref.number, 10)}, nil)
	var ce *scheduler.CommandError
	if errors.As(err, &ce) && !errors.Is(err, ErrUnavailable) && qacctHasNoRecord(ce.Stderr) {
		if s.wasCancelled(ref.number) {
			// Deleted before it ran: Grid Engine writes no record.
			return scheduler.Result{ID: ref.id, State: scheduler.StateCancelled}, nil
		}
		return scheduler.Result{}, fmt.Errorf("job %s: %w: %w", ref.id, scheduler.ErrJobNotFound, err)
	}
	if err != nil {
		return scheduler.Result{}, fmt.Errorf("job %s: %w", ref.id, err)
	}
	recs, err := parseQacct(out)
	if err != nil {
		return scheduler.Result{}, fmt.Errorf("job %s: %w", ref.id, err)
	}
	return s.result(ref, recs)
}

// qacctHasNoRecord reports whether qacct's error says it has no record of the job: "error: job id 17 not
// found", or, in a cell where no job has ended yet, that the accounting file does not exist
// ("…/common/accounting: No such file or directory"). qacct reads that file, not the qmaster, so any other
// failure is not a record Grid Engine has yet to write.
func qacctHasNoRecord(stderr string) bool {
	_, rest, ok := strings.Cut(stderr, "job id ")
	return ok && strings.Contains(rest, " not found") || strings.Contains(stderr, "accounting: No such file or directory")
}

func (s *SGE) result(ref jobRef, recs []qacctRecord) (scheduler.Result, error) {
	// One record per task; with accounting_summary FALSE a parallel job also has one per slave task, which
	// end before the master task's, written last.
	byTask := map[int]qacctRecord{}
	for _, r := range recs {
		if r.Number == ref.number && (ref.task == 0 || r.Task == ref.task) {
			byTask[r.Task] = r
		}
	}
	if len(byTask) == 0 {
		return scheduler.Result{}, fmt.Errorf("job %s: qacct has no record of it: %w", ref.id, scheduler.ErrJobNotFound)
	}
	cancelled := s.wasCancelled(ref.number)
	tasks := slices.Sorted(maps.Keys(byTask))
	if len(tasks) == 1 && tasks[0] == ref.task {
		return recordResult(ref.id, byTask[tasks[0]], cancelled), nil
	}
	res := scheduler.Result{ID: ref.id, State: scheduler.StateDone}
	for _, t := range tasks {
		tr := recordResult(scheduler.JobID(fmt.Sprintf("%d.%d", ref.number, t)), byTask[t], cancelled)
		res.Tasks = append(res.Tasks, tr)
		if statePriority(tr.State) > statePriority(res.State) {
			res.State = tr.State
		}
		if res.Start.IsZero() || !tr.Start.IsZero() && tr.Start.Before(res.Start) {
			res.Start = tr.Start
		}
		if tr.End.After(res.End) {
			res.End = tr.End
		}
		res.MaxVMem = max(res.MaxVMem, tr.MaxVMem)
	}
	first := res.Tasks[0]
	res.Queue, res.ParallelEnv, res.Slots = first.Queue, first.ParallelEnv, first.Slots
	if res.State != scheduler.StateDone {
		for _, t := range res.Tasks {
			if t.State == res.State {
				res.ExitCode, res.FailureCode, res.Failure = t.ExitCode, t.FailureCode, t.Failure
				break
			}
		}
	}
	return res, nil
}

func recordResult(id scheduler.JobID, r qacctRecord, cancelled bool) scheduler.Result {
	res := scheduler.Result{
		ID: id, ExitCode: r.ExitStatus, FailureCode: r.Failed, Failure: r.FailedText,
		Host: r.Host, Queue: r.Queue, ParallelEnv: r.ParallelEnv, Slots: r.Slots,
		Start: r.Start, End: r.End, Wallclock: r.Wallclock, MaxVMem: r.MaxVMem, Task: r.Task,
	}
	switch {
	case r.Failed == 0 && r.ExitStatus == 0:
		res.State = scheduler.StateDone
	case cancelled:
		res.State = scheduler.StateCancelled
	default:
		res.State = scheduler.StateFailed
	}
	return res
}

// run runs one Grid Engine command with the cell's environment and the command timeout, sourcing the
// settings file first if one is set. A failure to reach Grid Engine or a timeout wraps ErrUnavailable; a
// command that exits non-zero is a *scheduler.CommandError.
func (s *SGE) run(ctx context.Context, name string, args []string, stdin []byte) ([]byte, error) {
	c := scheduler.Command{Name: name, Args: args, Env: s.o.env, Stdin: stdin}
	if s.o.settings != "" {
		c = scheduler.Command{
			Name:  "/bin/sh",
			Args:  append([]string{"-c", `. "$0" >/dev/null && exec "$@"`, s.o.settings, name}, args...),
			Env:   s.o.env,
			Stdin: stdin,
		}
	}
	shown := redactArgs(args)
	s.o.logger.DebugContext(ctx, "running", "command", name, "args", shown)
	cctx, cancel := context.WithTimeout(ctx, s.o.commandTimeout)
	defer cancel()
	out, err := s.o.runner.Run(cctx, c)
	switch {
	case err != nil && ctx.Err() != nil:
		return nil, err
	case err != nil && cctx.Err() != nil:
		return nil, fmt.Errorf("%w: %s did not finish in %v", ErrUnavailable, name, s.o.commandTimeout)
	case err != nil && errors.Is(err, exec.ErrNotFound):
		return nil, err
	case err != nil:
		// The runner could not run the command, as when an SSH connection to the submit host fails.
		return nil, fmt.Errorf("%w: %w", ErrUnavailable, err)
	case out.ExitCode != 0:
		display := c
		display.Name, display.Args = name, shown
		ce := scheduler.NewCommandError(display, out)
		if qmasterUnreachable(ce.Stderr) {
			return nil, fmt.Errorf("%w: %w", ErrUnavailable, ce)
		}
		return nil, ce
	}
	return bytes.Clone(out.Stdout), nil
}

// qmasterUnreachable reports whether a Grid Engine command's error output says that the qmaster could not be
// reached or did not answer, rather than that the request was wrong.
func qmasterUnreachable(stderr string) bool {
	for _, s := range []string{
		"unable to contact qmaster",
		"commlib error",
		"got select error",
		"Connection refused",
		"failed receiving gdi request response",
	} {
		if strings.Contains(stderr, s) {
			return true
		}
	}
	return false
}

// redactArgs returns args for logs and errors: the values of "-v NAME=value,…", which Job.Native may use to
// pass a token to the job, become "…".
func redactArgs(args []string) []string {
	var out []string
	for i, a := range args {
		if i == 0 || args[i-1] != "-v" || !strings.Contains(a, "=") {
			continue
		}
		if out == nil {
			out = slices.Clone(args)
		}
		vars := strings.Split(a, ",")
		for k, v := range vars {
			if name, _, ok := strings.Cut(v, "="); ok {
				vars[k] = name + "=…"
			}
		}
		out[i] = strings.Join(vars, ",")
	}
	if out == nil {
		return args
	}
	return out
}
