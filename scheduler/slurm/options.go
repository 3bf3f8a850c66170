package slurm

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/hpcship/hpcship/scheduler"
)

// Option configures a Slurm.
type Option func(*options) error

type options struct {
	runner            scheduler.Runner
	env               []string
	pollMin, pollMax  time.Duration
	accountingTimeout time.Duration
	outage            time.Duration
	commandTimeout    time.Duration
	logger            *slog.Logger
}

// WithRunner runs the Slurm commands through r, for example as another user or on a login node over SSH.
// The default is scheduler.LocalRunner.
func WithRunner(r scheduler.Runner) Option {
	return func(o *options) error {
		if r == nil {
			return fmt.Errorf("runner is nil")
		}
		o.runner = r
		return nil
	}
}

// WithConfig sets SLURM_CONF, the slurm.conf the commands read, for every command. The default is the
// runner's environment, then Slurm's own lookup (/etc/slurm/slurm.conf, or configless DNS records).
func WithConfig(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("slurm.conf path is empty")
		}
		o.env = append(o.env, "SLURM_CONF="+path)
		return nil
	}
}

// WithPollInterval sets how often Wait polls: first after min, then backing off by half each time up to
// max. The default is 1 s up to 30 s.
func WithPollInterval(min, max time.Duration) Option {
	return func(o *options) error {
		if min <= 0 || max < min {
			return fmt.Errorf("poll interval needs 0 < min <= max, got %v and %v", min, max)
		}
		o.pollMin, o.pollMax = min, max
		return nil
	}
}

// WithAccountingTimeout sets how long Result and Wait look for the accounting record of a job that has
// ended; slurmdbd writes it seconds after slurmctld ends the job (1–5 s on a quiet cluster). The default is
// 60 s.
func WithAccountingTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("accounting timeout is negative: %v", d)
		}
		o.accountingTimeout = d
		return nil
	}
}

// WithOutageTolerance sets how long Wait keeps trying while squeue and sacct fail for a transient reason (the
// controller or slurmdbd does not answer, a command times out): it retries with the poll back-off and gives
// up with the last error once the failures have lasted d without a success in between. An unknown job is
// never retried this way. Zero makes the first failure final. The default is 10 minutes, longer than a
// controller takes to fail over or restart.
func WithOutageTolerance(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("outage tolerance is negative: %v", d)
		}
		o.outage = d
		return nil
	}
}

// WithCommandTimeout bounds each Slurm command; one that takes longer is ended and counts as a transient
// failure (ErrUnavailable). squeue and sacct wait MessageTimeout (10 s by default) per try for a controller
// that does not answer. The default is 2 minutes.
func WithCommandTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("command timeout must be positive, got %v", d)
		}
		o.commandTimeout = d
		return nil
	}
}

// WithLogger logs every command run (program and arguments, never the jobscript) and every retried failure
// at debug level. The default discards.
func WithLogger(l *slog.Logger) Option {
	return func(o *options) error {
		if l == nil {
			return fmt.Errorf("logger is nil")
		}
		o.logger = l
		return nil
	}
}

func defaultOptions() options {
	return options{
		runner:            scheduler.LocalRunner{},
		pollMin:           time.Second,
		pollMax:           30 * time.Second,
		accountingTimeout: 60 * time.Second,
		outage:            10 * time.Minute,
		commandTimeout:    2 * time.Minute,
		logger:            slog.New(slog.DiscardHandler),
	}
}
