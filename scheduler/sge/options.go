package sge

import (
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/hpcship/hpcship/internal/envvar"
	"github.com/hpcship/hpcship/scheduler"
)

// Option configures an SGE.
type Option func(*options) error

type options struct {
	runner            scheduler.Runner
	env               []string
	settings          string
	cycleCloud        bool
	pollMin, pollMax  time.Duration
	accountingTimeout time.Duration
	outage            time.Duration
	commandTimeout    time.Duration
	logger            *slog.Logger
}

// WithRunner runs the Grid Engine commands through r, for example as another user or on a submit host over
// SSH. The default is scheduler.LocalRunner.
func WithRunner(r scheduler.Runner) Option {
	return func(o *options) error {
		if r == nil {
			return fmt.Errorf("runner is nil")
		}
		o.runner = r
		return nil
	}
}

// WithCell sets SGE_ROOT and SGE_CELL for every command. The default is the runner's environment.
func WithCell(root, cell string) Option {
	return func(o *options) error {
		if root == "" || cell == "" {
			return fmt.Errorf("cell needs a root and a name, got %s and %s", envvar.Clip(root), envvar.Clip(cell))
		}
		o.env = append(o.env, "SGE_ROOT="+root, "SGE_CELL="+cell)
		return nil
	}
}

// WithPorts sets SGE_QMASTER_PORT and SGE_EXECD_PORT for every command (Azure CycleCloud uses 537 and 538).
// The default is the runner's environment, then Grid Engine's own lookup (6444 and 6445).
func WithPorts(qmaster, execd int) Option {
	return func(o *options) error {
		if qmaster < 1 || qmaster > 65535 || execd < 1 || execd > 65535 {
			return fmt.Errorf("ports must be in 1-65535, got %d and %d", qmaster, execd)
		}
		o.env = append(o.env, "SGE_QMASTER_PORT="+strconv.Itoa(qmaster), "SGE_EXECD_PORT="+strconv.Itoa(execd))
		return nil
	}
}

// WithSettingsFile sources the cell's settings.sh (CycleCloud: /etc/cluster-setup.sh) with /bin/sh before
// every command, which sets SGE_ROOT, SGE_CELL, the ports and PATH. The default is to source nothing.
func WithSettingsFile(path string) Option {
	return func(o *options) error {
		if path == "" {
			return fmt.Errorf("settings file path is empty")
		}
		o.settings = path
		return nil
	}
}

// WithCycleCloud makes every job name exactly one plain queue (no wildcard, list or host), because Azure
// CycleCloud's autoscaler ignores jobs that request none, several or a pattern, and they never get nodes.
// The default is off.
func WithCycleCloud() Option {
	return func(o *options) error {
		o.cycleCloud = true
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
// left qstat; Grid Engine writes it up to its accounting_flush_time (15 s by default) later. The default
// is 45 s.
func WithAccountingTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("accounting timeout is negative: %v", d)
		}
		o.accountingTimeout = d
		return nil
	}
}

// WithOutageTolerance sets how long Wait keeps trying while qstat and qacct fail for a transient reason (the
// qmaster does not answer, a command times out, the runner cannot reach the submit host): it retries with the
// poll back-off and gives up with the last error once the failures have lasted d without a success in
// between. An unknown job is never retried this way. Zero makes the first failure final. The default is 10
// minutes, longer than a qmaster takes to fail over to a shadow master or restart.
func WithOutageTolerance(d time.Duration) Option {
	return func(o *options) error {
		if d < 0 {
			return fmt.Errorf("outage tolerance is negative: %v", d)
		}
		o.outage = d
		return nil
	}
}

// WithCommandTimeout bounds each Grid Engine command; one that takes longer is ended and counts as a
// transient failure (ErrUnavailable). The default is 2 minutes.
func WithCommandTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("command timeout must be positive, got %v", d)
		}
		o.commandTimeout = d
		return nil
	}
}

// WithLogger logs every command run (program and arguments, never the jobscript) and every failure Wait
// retries at debug level. The
// default discards.
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
		accountingTimeout: 45 * time.Second,
		outage:            10 * time.Minute,
		commandTimeout:    2 * time.Minute,
		logger:            slog.New(slog.DiscardHandler),
	}
}
