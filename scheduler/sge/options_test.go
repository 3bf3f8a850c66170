package sge

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

// recorder is a Runner that records commands and answers with canned output.
type recorder struct {
	cmds []scheduler.Command
	out  scheduler.Output
	err  error
}

func (r *recorder) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	r.cmds = append(r.cmds, c)
	return r.out, r.err
}

func TestNewRejectsBadOptions(t *testing.T) {
	for name, opt := range map[string]Option{
		"nil runner":     WithRunner(nil),
		"no cell":        WithCell("", "default"),
		"port":           WithPorts(0, 6445),
		"settings":       WithSettingsFile(""),
		"poll order":     WithPollInterval(2*time.Second, time.Second),
		"poll zero":      WithPollInterval(0, time.Second),
		"accounting":     WithAccountingTimeout(-time.Second),
		"nil logger":     WithLogger(nil),
		"negative ports": WithPorts(537, -1),
	} {
		_, err := New(opt)
		assert.Error(t, err, name)
	}
}

// TestOptionLimits pins every option's limit from the accepted side, next to the rejected rows above.
func TestOptionLimits(t *testing.T) {
	for name, tc := range map[string]struct {
		opt Option
		ok  bool
	}{
		"lowest ports":              {WithPorts(1, 1), true},
		"highest ports":             {WithPorts(65535, 65535), true},
		"qmaster port above":        {WithPorts(65536, 6445), false},
		"execd port above":          {WithPorts(6444, 65536), false},
		"execd port zero":           {WithPorts(6444, 0), false},
		"cell without name":         {WithCell("/sched/sge", ""), false},
		"poll min equal to max":     {WithPollInterval(time.Second, time.Second), true},
		"poll negative":             {WithPollInterval(-time.Second, time.Second), false},
		"accounting timeout zero":   {WithAccountingTimeout(0), true},
		"outage tolerance zero":     {WithOutageTolerance(0), true},
		"outage tolerance negative": {WithOutageTolerance(-time.Nanosecond), false},
		"command timeout zero":      {WithCommandTimeout(0), false},
		"command timeout 1ns":       {WithCommandTimeout(time.Nanosecond), true},
	} {
		_, err := New(tc.opt)
		assert.Equal(t, tc.ok, err == nil, "%s: %v", name, err)
	}
}

func TestCommandsCarryTheCell(t *testing.T) {
	r := &recorder{out: scheduler.Output{Stdout: []byte("42\n")}}
	s, err := New(WithRunner(r), WithCell("/sched/sge", "default"), WithPorts(537, 538), WithSettingsFile("/etc/cluster-setup.sh"))
	require.NoError(t, err)
	id, err := s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}, Native: []string{"-w", "e"}})
	require.NoError(t, err)
	assert.Equal(t, scheduler.JobID("42"), id)
	require.Len(t, r.cmds, 1)
	c := r.cmds[0]
	assert.Equal(t, "/bin/sh", c.Name)
	assert.Equal(t, []string{"-c", `. "$0" >/dev/null && exec "$@"`, "/etc/cluster-setup.sh", "qsub", "-terse", "-w", "e"}, c.Args)
	assert.Equal(t, []string{"SGE_ROOT=/sched/sge", "SGE_CELL=default", "SGE_QMASTER_PORT=537", "SGE_EXECD_PORT=538"}, c.Env)
	script, err := s.Jobscript(scheduler.Job{Command: []string{"true"}})
	require.NoError(t, err)
	assert.Equal(t, script, c.Stdin, "the jobscript goes to qsub's standard input")
}

func TestCommandErrors(t *testing.T) {
	r := &recorder{out: scheduler.Output{ExitCode: 1, Stderr: []byte("Unable to run job: unknown resource \"nosuchres\"\nExiting.\n")}}
	s, err := New(WithRunner(r))
	require.NoError(t, err)
	_, err = s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}})
	var ce *scheduler.CommandError
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "qsub -terse", ce.Command)
	assert.Equal(t, 1, ce.ExitCode)
	assert.Equal(t, `submitting job: qsub -terse exited 1: Unable to run job: unknown resource "nosuchres" Exiting.`, err.Error())

	var logs bytes.Buffer
	s, err = New(WithRunner(r), WithLogger(slog.New(slog.NewTextHandler(&logs, &slog.HandlerOptions{Level: slog.LevelDebug}))))
	require.NoError(t, err)
	_, err = s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}, Native: []string{"-v", "TOKEN=s3cr3t,HOME", "-N", "a=b"}})
	require.ErrorAs(t, err, &ce)
	assert.Equal(t, "qsub -terse -v TOKEN=…,HOME -N a=b", ce.Command)
	assert.NotContains(t, logs.String(), "s3cr3t")
	assert.Contains(t, logs.String(), "TOKEN=…")
	assert.Equal(t, []string{"-terse", "-v", "TOKEN=s3cr3t,HOME", "-N", "a=b"}, r.cmds[len(r.cmds)-1].Args, "the command itself gets the value")

	r.out, r.err = scheduler.Output{}, errors.New("exec: \"qsub\": executable file not found in $PATH")
	_, err = s.Submit(t.Context(), scheduler.Job{Command: []string{"true"}})
	require.ErrorIs(t, err, r.err)

	_, err = s.Status(t.Context(), "x")
	require.Error(t, err)
	require.Error(t, s.Cancel(t.Context(), "1.x"))
}

// byCommand is a Runner that answers each command by its name (qsub, qstat, qacct, …).
type byCommand map[string]scheduler.Output

func (b byCommand) Run(_ context.Context, c scheduler.Command) (scheduler.Output, error) {
	return b[c.Name], nil
}

func TestResultWithoutAccountingRecord(t *testing.T) {
	unknown, err := os.ReadFile("testdata/qstatj-unknown.xml")
	require.NoError(t, err)
	for name, stderr := range map[string]string{
		"unknown job":  "error: job id 999999 not found\n",
		"no job ended": "/var/lib/gridengine/default/common/accounting: No such file or directory\n",
	} {
		t.Run(name, func(t *testing.T) {
			r := byCommand{
				"qacct": {ExitCode: 1, Stderr: []byte(stderr)},
				"qstat": {Stdout: unknown},
			}
			s, err := New(WithRunner(r), WithAccountingTimeout(0))
			require.NoError(t, err)
			_, err = s.Result(t.Context(), "999999")
			require.ErrorIs(t, err, scheduler.ErrJobNotFound)
		})
	}
}
