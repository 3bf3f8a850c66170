package slurm

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	require.NoError(t, err)
	return b
}

// testdata/squeue.txt and sacct.txt are real output of the test cluster (Slurm 22.05.8).
func TestParseSqueue(t *testing.T) {
	entries, err := parseSqueue(readTestdata(t, "squeue.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, entries)
	byName := map[string]queueEntry{}
	for _, e := range entries {
		byName[e.Name] = e
	}
	assert.Equal(t, "RUNNING", byName["sleeper"].State)
	assert.Equal(t, "vm", byName["sleeper"].Nodes)
	held := byName["held|pipe"]
	assert.Equal(t, "PENDING", held.State, "a | in the name, which comes last")
	assert.Equal(t, "JobHeldUser", held.Reason)
	assert.Equal(t, scheduler.StateHeld, mapState(held.State, held.Reason))
	assert.Equal(t, "slurmtest", held.User)
	assert.Equal(t, "$(whoami);x`y`|z&w>v", byName["$(whoami);x`y`|z&w>v"].Name)
	arr := byName["array"]
	assert.NotEmpty(t, arr.Task)
	assert.True(t, strings.HasPrefix(arr.ID, arr.Task) || strings.Contains(arr.ID, "_"+arr.Task))
}

func TestParseSqueueLines(t *testing.T) {
	entries, err := parseSqueue([]byte("7_2|7|2|RUNNING|None|hpc|n[1-2]|16|u|two\nline name\n8|8|N/A|PENDING|Priority|hpc||1|u|x\n"))
	require.NoError(t, err)
	assert.Equal(t, []queueEntry{
		{ID: "7_2", ArrayJob: 7, Task: "2", State: "RUNNING", Reason: "None", Partition: "hpc", Nodes: "n[1-2]", CPUs: 16, User: "u", Name: "two\nline name"},
		{ID: "8", ArrayJob: 8, State: "PENDING", Reason: "Priority", Partition: "hpc", CPUs: 1, User: "u", Name: "x"},
	}, entries)
	entries, err = parseSqueue([]byte("\n8|8|N/A|PENDING|Priority|hpc||1|u|x\n\n"))
	require.NoError(t, err)
	assert.Equal(t, []queueEntry{{ID: "8", ArrayJob: 8, State: "PENDING", Reason: "Priority", Partition: "hpc", CPUs: 1, User: "u", Name: "x"}},
		entries, "blank lines are skipped")
	for _, bad := range []string{"continuation first", "7|x|N/A|R|r|p|n|1|u|n", "7|7|N/A|R|r|p|n|-1|u|n", "|7|N/A|R|r|p|n|1|u|n"} {
		_, err := parseSqueue([]byte(bad))
		var pe *SqueueParseError
		require.ErrorAs(t, err, &pe, bad)
	}
}

func TestMapState(t *testing.T) {
	for _, tc := range []struct {
		state, reason string
		want          scheduler.JobState
	}{
		{"PENDING", "Priority", scheduler.StatePending},
		{"PENDING", "JobHeldUser", scheduler.StateHeld},
		{"PENDING", "JobHeldAdmin", scheduler.StateHeld},
		{"PENDING", "Dependency", scheduler.StateHeld},
		{"PENDING", "DependencyNeverSatisfied", scheduler.StateError},
		{"REQUEUE_HOLD", "", scheduler.StateHeld},
		{"SPECIAL_EXIT", "", scheduler.StateError},
		{"RUNNING", "None", scheduler.StateRunning},
		{"COMPLETING", "", scheduler.StateRunning},
		{"CONFIGURING", "", scheduler.StateRunning},
		{"SUSPENDED", "", scheduler.StateSuspended},
		{"COMPLETED", "", scheduler.StateDone},
		{"CANCELLED", "", scheduler.StateCancelled},
		{"CANCELLED by 1004", "", scheduler.StateCancelled},
		{"FAILED", "", scheduler.StateFailed},
		{"TIMEOUT", "", scheduler.StateFailed},
		{"OUT_OF_MEMORY", "", scheduler.StateFailed},
		{"NODE_FAIL", "", scheduler.StateFailed},
		{"PREEMPTED", "", scheduler.StateFailed},
		{"NEW_STATE", "", scheduler.StateUnknown},
	} {
		assert.Equal(t, tc.want, mapState(tc.state, tc.reason), "%s %s", tc.state, tc.reason)
	}
}

func TestParseSacct(t *testing.T) {
	rows, err := parseSacct(readTestdata(t, "sacct.txt"))
	require.NoError(t, err)
	require.NotEmpty(t, rows)
	r, err := parseAcctRow("39.batch|39.batch|COMPLETED|0:0|1-00:00:17|2026-12-01T08:20:33|Unknown|vm||1|316804K|1.50G")
	require.NoError(t, err)
	assert.Equal(t, acctRow{JobID: "39.batch", Job: "39", Step: "batch", Raw: "39.batch", State: "COMPLETED",
		Elapsed: 24*time.Hour + 17*time.Second, Start: time.Date(2026, 12, 1, 8, 20, 33, 0, time.Local),
		NodeList: "vm", CPUs: 1, MaxRSS: 316804 << 10, MaxVMSize: 3 << 29}, r)
	for _, bad := range []string{
		"1|1|COMPLETED|3|00:00:01|||vm|hpc|1||",
		"1|1|COMPLETED|3:x|00:00:01|||vm|hpc|1||",
		"1|1|COMPLETED|0:0|00:99:01|||vm|hpc|1||",
		"1|1|COMPLETED|0:0|00:00:01|yesterday||vm|hpc|1||",
		"1|1|COMPLETED|0:0|00:00:01|||vm|hpc|1|-1K|",
		"1|1|COMPLETED|0:0|00:00:01|||vm|hpc|1|1e9|",
		"x|1|COMPLETED|0:0|00:00:01|||vm|hpc|1||",
		"1_y|1|COMPLETED|0:0|00:00:01|||vm|hpc|1||",
		"1|1|COMPLETED|0:0",
	} {
		_, err := parseSacct([]byte(bad))
		var pe *SacctParseError
		require.ErrorAs(t, err, &pe, bad)
	}
}

func TestSummarize(t *testing.T) {
	parse := func(s string) []acctRow {
		rows, err := parseSacct([]byte(s))
		require.NoError(t, err)
		return rows
	}
	ref := func(id string) jobRef {
		r, err := parseJobID(scheduler.JobID(id))
		require.NoError(t, err)
		return r
	}

	res, ended, err := summarize(ref("4"), parse(`4|4|FAILED|3:0|00:00:01|2026-12-01T10:00:00|2026-12-01T10:00:01|vm|hpc|2||
4.batch|4.batch|FAILED|3:0|00:00:01|2026-12-01T10:00:00|2026-12-01T10:00:01|vm||2|2M|8M
4.0|4.0|FAILED|3:0|00:00:01|2026-12-01T10:00:00|2026-12-01T10:00:01|vm||2|5M|6M
`))
	require.NoError(t, err)
	assert.True(t, ended)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 3, res.ExitCode)
	assert.Equal(t, int64(5<<20), res.MaxRSS)
	assert.Equal(t, int64(8<<20), res.MaxVMem)
	assert.Equal(t, "vm", res.Host)
	assert.Equal(t, "hpc", res.Queue)
	assert.Equal(t, 2, res.Slots)

	res, ended, err = summarize(ref("3"), parse(`3|3|CANCELLED by 1004|0:0|00:00:04|2026-12-01T10:00:00|2026-12-01T10:00:04|vm|hpc|1||
3.batch|3.batch|CANCELLED|0:15|00:00:04|2026-12-01T10:00:00|2026-12-01T10:00:04|vm||1||
`))
	require.NoError(t, err)
	assert.True(t, ended)
	assert.Equal(t, scheduler.StateCancelled, res.State)
	assert.Equal(t, 143, res.ExitCode, "the jobscript died of SIGTERM")

	res, _, err = summarize(ref("5"), parse("5|5|TIMEOUT|0:0|00:01:22|2026-12-01T10:00:00|2026-12-01T10:01:22|vm|hpc|1||\n"))
	require.NoError(t, err)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, "TIMEOUT", res.Failure)

	// The allocation row lags behind the batch step of a running job.
	_, ended, err = summarize(ref("6"), parse(`6|6|PENDING|0:0|00:00:01|2026-12-01T10:00:00|Unknown|vm|hpc|1||
6.batch|6.batch|RUNNING|0:0|00:00:01|2026-12-01T10:00:00|Unknown|vm||1||
`))
	require.NoError(t, err)
	assert.False(t, ended)

	array := `7_[3-4]|7|PENDING|0:0|00:00:00|Unknown|Unknown|None assigned|hpc|1||
7_1|8|COMPLETED|0:0|00:00:01|2026-12-01T10:00:00|2026-12-01T10:00:01|vm|hpc|1||
7_1.batch|8.batch|COMPLETED|0:0|00:00:01|2026-12-01T10:00:00|2026-12-01T10:00:01|vm||1||
7_2|9|FAILED|1:0|00:00:01|2026-12-01T10:00:02|2026-12-01T10:00:04|vm|hpc|1||
7_2.batch|9.batch|FAILED|1:0|00:00:01|2026-12-01T10:00:02|2026-12-01T10:00:04|vm||1||
`
	res, ended, err = summarize(ref("7"), parse(array))
	require.NoError(t, err)
	assert.False(t, ended, "tasks 3 and 4 have not started")
	require.Len(t, res.Tasks, 2)
	assert.Equal(t, scheduler.JobID("7.1"), res.Tasks[0].ID)
	assert.Equal(t, scheduler.StateFailed, res.State)
	assert.Equal(t, 1, res.ExitCode)
	assert.Equal(t, 4*time.Second, res.Wallclock)

	res, ended, err = summarize(ref("7_2"), parse(array))
	require.NoError(t, err)
	assert.True(t, ended)
	assert.Equal(t, scheduler.JobID("7_2"), res.ID)
	assert.Equal(t, 2, res.Task)
	assert.Empty(t, res.Tasks)

	// An array cancelled before any task started: no start, so no wallclock.
	res, ended, err = summarize(ref("8"), parse(`8_1|8|CANCELLED by 0|0:0|00:00:00|Unknown|2026-12-01T10:00:01|None assigned|hpc|1||
8_2|9|CANCELLED by 0|0:0|00:00:00|Unknown|2026-12-01T10:00:01|None assigned|hpc|1||
`))
	require.NoError(t, err)
	assert.True(t, ended)
	assert.Equal(t, scheduler.StateCancelled, res.State)
	assert.Zero(t, res.Wallclock)
	assert.True(t, res.Start.IsZero())

	_, _, err = summarize(ref("9"), nil)
	require.ErrorIs(t, err, scheduler.ErrJobNotFound)
}

func TestParseJobID(t *testing.T) {
	for in, want := range map[string]jobRef{
		"7":   {id: "7", number: "7"},
		"7.2": {id: "7.2", number: "7", task: 2, hasTask: true},
		"7_0": {id: "7_0", number: "7", task: 0, hasTask: true},
	} {
		got, err := parseJobID(scheduler.JobID(in))
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"", "x", "07", "7.", "7_x", "7_+1", "7.-1", "-7", "7_[1-2]"} {
		_, err := parseJobID(scheduler.JobID(bad))
		require.Error(t, err, bad)
	}
}

func TestParseSubmitID(t *testing.T) {
	for in, want := range map[string]scheduler.JobID{"17\n": "17", "37;ci\n": "37", "wrapper says hi\n42\n": "42"} {
		got, err := parseSubmitID([]byte(in))
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	for _, bad := range []string{"", "x;ci", "0\n"} {
		_, err := parseSubmitID([]byte(bad))
		require.Error(t, err, bad)
	}
}

func TestIsTransient(t *testing.T) {
	assert.True(t, isTransient("squeue: error: Unable to contact slurm controller (connect failure)"))
	assert.True(t, isTransient("sacct: error: Problem talking to the database: Connection refused"))
	assert.True(t, isTransient("slurm_load_jobs error: Socket timed out on send/recv operation"))
	assert.False(t, isTransient("slurm_load_jobs error: Invalid job id specified"))
	assert.False(t, isTransient("sbatch: error: invalid partition specified: nosuch"))
}

func FuzzParseSqueue(f *testing.F) {
	f.Add(readTestdata(f, "squeue.txt"))
	f.Add([]byte("7_2|7|2|RUNNING|None|hpc|n[1-2]|16|u|two\nline"))
	f.Fuzz(func(t *testing.T, out []byte) {
		entries, err := parseSqueue(out)
		if err != nil {
			var pe *SqueueParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		for _, e := range entries {
			if e.ID == "" || e.ArrayJob < 1 || e.CPUs < 0 {
				t.Fatalf("bad entry %+v", e)
			}
		}
	})
}

func FuzzParseSacct(f *testing.F) {
	f.Add(readTestdata(f, "sacct.txt"))
	f.Add([]byte("39.batch|39.batch|COMPLETED|0:0|1-00:00:17|2026-12-01T08:20:33|Unknown|vm||1|316804K|1.50G"))
	f.Fuzz(func(t *testing.T, out []byte) {
		rows, err := parseSacct(out)
		if err != nil {
			var pe *SacctParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error of type %T", err)
			}
			return
		}
		for _, r := range rows {
			if r.ExitStatus < 0 || r.ExitStatus > 255 || r.Signal < 0 || r.Signal > 255 || r.MaxRSS < 0 ||
				r.MaxVMSize < 0 || r.Elapsed < 0 || r.CPUs < 0 {
				t.Fatalf("bad row %+v", r)
			}
		}
		for _, id := range []string{"1", "1_1", "1.1"} {
			ref, _ := parseJobID(scheduler.JobID(id))
			_, _, _ = summarize(ref, rows)
		}
	})
}

// TestParseSacctFields pins each sacct field's format at its limits.
func TestParseSacctFields(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"00:00:59":     59 * time.Second,
		"00:59:00":     59 * time.Minute,
		"59:59":        59*time.Minute + 59*time.Second,
		"00:00:01.500": 1500 * time.Millisecond,
		"0-00:00:00":   0,
		"2-01:00:00":   49 * time.Hour,
		"100:00:00":    100 * time.Hour,
	} {
		got, err := parseElapsed(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"00:00:60", "00:60:00", "1:2:3:4", "5", "", "-1-00:00:00", "x-00:00:00",
		"00:00:1e1", "00:00:+1", "00:00:-0", "00:-1:00", "00:x:00", "00:00:x", "00:00:", "00:00:NaN", "00:00:nan",
		"00:00:Inf"} {
		_, err := parseElapsed(bad)
		assert.Error(t, err, bad)
	}

	for in, want := range map[string]int64{
		"": 0, "0": 0, "1023": 1023, "1K": 1 << 10, "1.5M": 3 << 19, "2G": 2 << 30, "3T": 3 << 40, "4096P": 1 << 62,
	} {
		got, err := parseSize(in)
		require.NoError(t, err, in)
		assert.Equal(t, want, got, in)
	}
	for _, bad := range []string{"4097P", "-1K", "NaN", "Inf", "0x10", "1e3K", "+1", "5E", "K"} {
		_, err := parseSize(bad)
		assert.Error(t, err, bad)
	}

	r, err := parseAcctRow("7_[3-4]|7|PENDING|0:0|00:00:00|Unknown|None|None assigned|hpc|1||")
	require.NoError(t, err)
	assert.Empty(t, r.NodeList, "a pending job has no nodes")
	assert.True(t, r.Start.IsZero())
	assert.True(t, r.End.IsZero())
	r, err = parseAcctRow("8|8|COMPLETED|0:0|00:00:00|||n1|hpc|||")
	require.NoError(t, err)
	assert.Equal(t, 0, r.CPUs, "an empty AllocCPUS is none")
	for _, bad := range []string{"8|8|COMPLETED|0:0|00:00:00|||n1|hpc|-1||", "8|8|COMPLETED|0:0|00:00:00|||n1|hpc|x||"} {
		_, err := parseAcctRow(bad)
		assert.Error(t, err, bad)
	}
}
