package scheduler

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Scheduler runs Jobs on a batch system. Every method runs the backend's commands and honours ctx.
type Scheduler interface {
	// Submit validates j, submits it and returns its id. Nothing is submitted when j is invalid or ctx has
	// ended before the submission command starts. Once that command has started, the scheduler may have
	// accepted the job, so it runs to its end (bounded by the backend's command timeout) even if ctx ends
	// meanwhile: Submit then returns the job's id together with a *SubmittedError wrapping ctx's error, or,
	// if the command failed, an error wrapping both its failure and ctx's error.
	Submit(ctx context.Context, j Job) (JobID, error)
	// Status reports where the job is now. A job that has ended is reported with its final state; one the
	// scheduler does not know (or does not know yet) gives an error wrapping ErrJobNotFound.
	Status(ctx context.Context, id JobID) (JobStatus, error)
	// Wait polls until the job has ended or sits in an error state, and returns its Result. It returns
	// ctx's error when ctx ends first; the job keeps running.
	Wait(ctx context.Context, id JobID) (Result, error)
	// Cancel removes a pending job or stops a running one.
	Cancel(ctx context.Context, id JobID) error
	// Result returns the accounting record of an ended job, waiting a bounded time for the scheduler to
	// write it.
	Result(ctx context.Context, id JobID) (Result, error)
}

// ErrJobNotFound is wrapped by errors for a job the scheduler does not know.
var ErrJobNotFound = errors.New("job not found")

// SubmittedError is the error of a Submit whose ctx ended while the submission command (qsub, sbatch) ran,
// which the scheduler then accepted: the job exists and will run. Submit returns ID as well; a caller that
// gave up on the submission cancels the job with it.
type SubmittedError struct {
	ID JobID
	// Err is ctx's error, such as context.Canceled.
	Err error
}

func (e *SubmittedError) Error() string {
	return fmt.Sprintf("job %s was submitted, but %v", e.ID, e.Err)
}

func (e *SubmittedError) Unwrap() error { return e.Err }

// ErrNotEnded is wrapped by Result's error for a job that is still pending or running.
var ErrNotEnded = errors.New("job has not ended")

// JobState is where a job is in its lifecycle.
type JobState int

const (
	// StateUnknown is a state the backend reported but this package does not know.
	StateUnknown JobState = iota
	// StatePending waits for resources.
	StatePending
	// StateHeld waits for a hold to be released (a user hold or a job it depends on).
	StateHeld
	// StateRunning runs (or is being started or transferred).
	StateRunning
	// StateSuspended was stopped by a user or the scheduler and can resume.
	StateSuspended
	// StateError cannot start until someone clears the error (Grid Engine's Eqw).
	StateError
	// StateDone ended with exit status 0.
	StateDone
	// StateFailed ended with a non-zero exit status or a failure of the scheduler.
	StateFailed
	// StateCancelled was removed by Cancel.
	StateCancelled
)

// String returns the state's lower-case name.
func (s JobState) String() string {
	switch s {
	case StateUnknown:
		return "unknown"
	case StatePending:
		return "pending"
	case StateHeld:
		return "held"
	case StateRunning:
		return "running"
	case StateSuspended:
		return "suspended"
	case StateError:
		return "error"
	case StateDone:
		return "done"
	case StateFailed:
		return "failed"
	case StateCancelled:
		return "cancelled"
	}
	return fmt.Sprintf("JobState(%d)", int(s))
}

// Ended reports whether the job has left the scheduler for good: done, failed or cancelled.
func (s JobState) Ended() bool {
	return s == StateDone || s == StateFailed || s == StateCancelled
}

// JobStatus is a job's state as the scheduler reports it now.
type JobStatus struct {
	ID    JobID
	State JobState
	// Native is the backend's own state, such as Grid Engine's "hqw" or "Eqw".
	Native string
	Name   string
	Owner  string
	// Queue is where the job runs ("all.q@node1"), empty while it waits.
	Queue string
	Slots int
	// Message is the scheduler's reason for an error state, if it gave one.
	Message string
	// Tasks are the tasks of an array job, in the scheduler's order; State then summarizes them.
	Tasks []TaskStatus
}

// TaskStatus is the state of one or more tasks of an array job.
type TaskStatus struct {
	// IDs is a task id ("4") or a range of pending tasks ("5-10:1").
	IDs    string
	State  JobState
	Native string
	Queue  string
}

// Result is the accounting record of an ended job.
type Result struct {
	ID    JobID
	State JobState
	// ExitCode is the jobscript's exit status; 128+n means it died of signal n.
	ExitCode int
	// FailureCode and Failure are the scheduler's own failure code and text (Grid Engine's qacct "failed"),
	// zero and empty when the scheduler ran the job to its end.
	FailureCode int
	Failure     string
	Host        string
	Queue       string
	ParallelEnv string
	Slots       int
	Start, End  time.Time
	Wallclock   time.Duration
	// MaxVMem is the peak virtual memory in bytes.
	MaxVMem int64
	// MaxRSS is the peak resident memory in bytes, where the scheduler records it (Slurm's sacct).
	MaxRSS int64
	// Task is the task id within an array job, zero otherwise.
	Task int
	// Tasks holds one Result per task of an array job; the job's State is then StateFailed if any task
	// failed, StateCancelled if any was cancelled and none failed, else StateDone.
	Tasks []Result
}
