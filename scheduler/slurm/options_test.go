package slurm

import (
	"log/slog"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/hpcship/hpcship/scheduler"
)

// TestOptions pins every option's limits from both sides, and that an accepted option takes effect.
func TestOptions(t *testing.T) {
	logger := slog.New(slog.DiscardHandler)
	runner := scheduler.LocalRunner{}
	for name, tc := range map[string]struct {
		opt Option
		ok  bool
		// got reads what the option set; want is what it must be.
		got  func(o options) any
		want any
	}{
		"runner":                      {opt: WithRunner(runner), ok: true, got: func(o options) any { return o.runner }, want: runner},
		"nil runner":                  {opt: WithRunner(nil)},
		"config":                      {opt: WithConfig("/etc/slurm/other.conf"), ok: true, got: func(o options) any { return o.env }, want: []string{"SLURM_CONF=/etc/slurm/other.conf"}},
		"no config":                   {opt: WithConfig("")},
		"poll min equal to max":       {opt: WithPollInterval(time.Second, time.Second), ok: true, got: func(o options) any { return [2]time.Duration{o.pollMin, o.pollMax} }, want: [2]time.Duration{time.Second, time.Second}},
		"poll min 1ns":                {opt: WithPollInterval(time.Nanosecond, time.Minute), ok: true, got: func(o options) any { return [2]time.Duration{o.pollMin, o.pollMax} }, want: [2]time.Duration{time.Nanosecond, time.Minute}},
		"poll min zero":               {opt: WithPollInterval(0, time.Second)},
		"poll max before min":         {opt: WithPollInterval(time.Second, time.Second-1)},
		"accounting timeout zero":     {opt: WithAccountingTimeout(0), ok: true, got: func(o options) any { return o.accountingTimeout }, want: time.Duration(0)},
		"accounting timeout":          {opt: WithAccountingTimeout(time.Minute), ok: true, got: func(o options) any { return o.accountingTimeout }, want: time.Minute},
		"accounting timeout negative": {opt: WithAccountingTimeout(-1)},
		"outage tolerance zero":       {opt: WithOutageTolerance(0), ok: true, got: func(o options) any { return o.outage }, want: time.Duration(0)},
		"outage tolerance":            {opt: WithOutageTolerance(time.Hour), ok: true, got: func(o options) any { return o.outage }, want: time.Hour},
		"outage tolerance negative":   {opt: WithOutageTolerance(-1)},
		"command timeout 1ns":         {opt: WithCommandTimeout(1), ok: true, got: func(o options) any { return o.commandTimeout }, want: time.Duration(1)},
		"command timeout zero":        {opt: WithCommandTimeout(0)},
		"command timeout negative":    {opt: WithCommandTimeout(-time.Second)},
		"logger":                      {opt: WithLogger(logger), ok: true, got: func(o options) any { return o.logger }, want: logger},
		"nil logger":                  {opt: WithLogger(nil)},
	} {
		s, err := New(tc.opt)
		if !tc.ok {
			assert.Error(t, err, name)
			continue
		}
		if assert.NoError(t, err, name) {
			assert.Equal(t, tc.want, tc.got(s.o), name)
		}
	}
}

func TestDefaults(t *testing.T) {
	s, err := New()
	assert.NoError(t, err)
	assert.Equal(t, scheduler.LocalRunner{}, s.o.runner)
	assert.Empty(t, s.o.env)
	assert.Equal(t, [2]time.Duration{time.Second, 30 * time.Second}, [2]time.Duration{s.o.pollMin, s.o.pollMax})
	assert.Equal(t, time.Minute, s.o.accountingTimeout)
	assert.Equal(t, 10*time.Minute, s.o.outage)
	assert.Equal(t, 2*time.Minute, s.o.commandTimeout)
	assert.NotNil(t, s.o.logger)
}
