package slurm

import (
	"errors"
	"flag"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestJobscriptGolden(t *testing.T) {
	s, err := New()
	require.NoError(t, err)
	everything := scheduler.Job{
		Name:          `all "fields" it's #1 \o/`,
		Script:        "echo \"$SLURM_ARRAY_TASK_ID\"\nexit 3",
		ParallelEnv:   "mpi",
		Slots:         4,
		Machinefile:   scheduler.Machinefile{Format: scheduler.MachinefileHostSlots},
		Queue:         "hpc",
		Walltime:      26*time.Hour + 90*time.Minute + 500*time.Millisecond,
		MemoryPerSlot: 3 << 30,
		Exclusive:     true,
		Resources:     map[string]string{"nodes": "2", "ntasks-per-node": "2", "constraint": "hbv3&ib"},
		WorkDir:       "/shared/run 1",
		Stdout:        "/shared/logs/%x.%A_%a.out",
		Stderr:        "/shared/logs/%x.%A_%a.err",
		Env:           []string{"QUOTED=it's a \"test\"\n#SBATCH -p evil", "EMPTY=", "QUOTED=later wins"},
		Shell:         "/usr/bin/bash",
		Array:         &scheduler.ArrayRange{First: 1, Last: 10, Step: 2, MaxRunning: 3},
		HoldJobs:      []scheduler.JobID{"12", "13"},
		Hold:          true,
		Account:       "acct",
		Native:        []string{"--qos=high", "--comment", "a b#c"},
	}
	plain := scheduler.Job{Name: "plain", Command: []string{"hostname"}, ExportSubmitEnv: true, JoinOutput: true,
		Stdout: "out.txt"}
	slots := scheduler.Job{Name: "slots", Command: []string{"hostname"}, ParallelEnv: "smp", Slots: 2,
		Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileSlots, Name: "hosts"}}
	for name, j := range map[string]scheduler.Job{"all_fields.sbatch": everything, "plain.sbatch": plain, "slots.sbatch": slots} {
		t.Run(name, func(t *testing.T) {
			got, err := s.Jobscript(j)
			require.NoError(t, err)
			schedulertest.Golden(t, name, got, *update)
		})
	}
}

// TestJobscriptValidation: what sbatch cannot take is a *scheduler.JobError for the field, before anything
// is rendered; what it can renders.
func TestJobscriptValidation(t *testing.T) {
	s, err := New()
	require.NoError(t, err)
	ok := func(mod func(*scheduler.Job)) scheduler.Job {
		j := scheduler.Job{Command: []string{"true"}, Queue: "hpc"}
		mod(&j)
		return j
	}
	tests := []struct {
		name  string
		job   scheduler.Job
		field string
	}{
		{"no payload", scheduler.Job{}, "Script"},
		{"newline in name", ok(func(j *scheduler.Job) { j.Name = "a\nb" }), "Name"},
		{"carriage return", ok(func(j *scheduler.Job) { j.Name = "a\rb" }), "Name"},
		{"tab", ok(func(j *scheduler.Job) { j.Name = "a\tb" }), "Name"},
		{"het-job separator", ok(func(j *scheduler.Job) { j.Name = ":x" }), "Name"},
		{"too long", ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 4097) }), "Name"},
		{"blank in partition", ok(func(j *scheduler.Job) { j.Queue = "a b" }), "Queue"},
		{"newline in partition", ok(func(j *scheduler.Job) { j.Queue = "a\n#SBATCH --uid=0" }), "Queue"},
		{"newline in output", ok(func(j *scheduler.Job) { j.Stdout = "/x\ny" }), "Stdout"},
		{"newline in workdir", ok(func(j *scheduler.Job) { j.WorkDir = "/x\ny" }), "WorkDir"},
		{"relative workdir", ok(func(j *scheduler.Job) { j.WorkDir = "x" }), "WorkDir"},
		{"blank in shell", ok(func(j *scheduler.Job) { j.Shell = "/bin/bash -x" }), "Shell"},
		{"project", ok(func(j *scheduler.Job) { j.Project = "p" }), "Project"},
		{"join with stderr", ok(func(j *scheduler.Job) { j.JoinOutput, j.Stderr = true, "/x" }), "Stderr"},
		{"unknown resource", ok(func(j *scheduler.Job) { j.Resources = map[string]string{"uid": "0"} }), "Resources"},
		{"resource value", ok(func(j *scheduler.Job) { j.Resources = map[string]string{"gres": "gpu\n1"} }), "Resources[gres]"},
		{"native newline", ok(func(j *scheduler.Job) { j.Native = []string{"--qos=a\nb"} }), "Native[0]"},
		{"native word", ok(func(j *scheduler.Job) { j.Native = []string{"qos"} }), "Native[0]"},
		{"native colon", ok(func(j *scheduler.Job) { j.Native = []string{"-C", ":x"} }), "Native[1]"},
		{"hold job", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"prep"} }), "HoldJobs[0]"},
		{"hold job task", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1", "012"} }), "HoldJobs[1]"},
		{"directive in script", scheduler.Job{Script: "echo\n#SBATCH --uid=0"}, "Script"},
		{"bash's variable", ok(func(j *scheduler.Job) { j.Env = []string{"A=1", "SHELLOPTS=errexit"} }), "Env[1]"},
		{"jobscript's variable", ok(func(j *scheduler.Job) { j.Env = []string{"hpcship_status=0"} }), "Env[0]"},

		// Every limit at it and on both sides: an empty field is accepted.
		{"name of 4096 bytes", ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 4096) }), ""},
		{"name of 4097 bytes", ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 4097) }), "Name"},
		{"name with a blank, a quote and #", ok(func(j *scheduler.Job) { j.Name = `it's #1 "x" \o/ ~` }), ""},
		{"name with a colon inside", ok(func(j *scheduler.Job) { j.Name = "a:b" }), ""},
		{"name starting with a colon", ok(func(j *scheduler.Job) { j.Name = ":b" }), "Name"},
		{"name with a unit separator", ok(func(j *scheduler.Job) { j.Name = "a\x1fb" }), "Name"},
		{"name with DEL", ok(func(j *scheduler.Job) { j.Name = "a\x7f" }), "Name"},
		{"name with a byte above ASCII", ok(func(j *scheduler.Job) { j.Name = "caf\xc3\xa9" }), ""},
		{"partition with a tab", ok(func(j *scheduler.Job) { j.Queue = "a\tb" }), "Queue"},
		{"partition with a blank", ok(func(j *scheduler.Job) { j.Queue = "a b" }), "Queue"},
		{"partition list", ok(func(j *scheduler.Job) { j.Queue = "hpc,htc" }), ""},
		{"no partition", ok(func(j *scheduler.Job) { j.Queue = "" }), ""},
		{"shell with a tab", ok(func(j *scheduler.Job) { j.Shell = "/bin/bash\t-x" }), "Shell"},
		{"join without stderr", ok(func(j *scheduler.Job) { j.JoinOutput, j.Stdout = true, "/x" }), ""},
		{"stderr without join", ok(func(j *scheduler.Job) { j.Stderr = "/x" }), ""},
		{"account with a newline", ok(func(j *scheduler.Job) { j.Account = "a\nb" }), "Account"},
		{"every resource option", ok(func(j *scheduler.Job) {
			j.Resources = map[string]string{"nodes": "2", "gres": "gpu:1", "constraint": "a&b", "wckey": "k"}
		}), ""},
		{"empty resource value", ok(func(j *scheduler.Job) { j.Resources = map[string]string{"gres": ""} }), "Resources[gres]"},
		{"native option", ok(func(j *scheduler.Job) { j.Native = []string{"--qos=high", "plain", "a b"} }), ""},
		{"native second value empty", ok(func(j *scheduler.Job) { j.Native = []string{"--comment", ""} }), "Native[1]"},
		{"hold job of 18 digits", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"123456789012345678"} }), ""},
		{"hold job of 19 digits", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1234567890123456789"} }), "HoldJobs[0]"},
		{"hold job 9 and 10", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"9", "10"} }), ""},
		{"hold job with a letter", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1a"} }), "HoldJobs[0]"},
		{"hold job with a slash", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1/"} }), "HoldJobs[0]"},
		{"hold job with a colon", ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1:"} }), "HoldJobs[0]"},
		{"#SLURM line", scheduler.Job{Script: "#SLURM --x\ntrue"}, "Script"},
		{"#SBATCH inside a line", scheduler.Job{Script: "echo '#SBATCH -p x'\n #SBATCH indented"}, ""},
		{"one-task array", ok(func(j *scheduler.Job) { j.Array = &scheduler.ArrayRange{First: 1, Last: 1, Step: 1} }), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			script, err := s.Jobscript(tc.job)
			if tc.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, scheduler.ErrInvalidJob)
			var je *scheduler.JobError
			require.True(t, errors.As(err, &je), "%T", err)
			assert.Equal(t, tc.field, je.Field)
			assert.Nil(t, script)
		})
	}
}

func TestQuoteDirective(t *testing.T) {
	for in, want := range map[string]string{
		"plain":        "'plain'",
		"it's":         `'it\'s'`,
		`back\slash`:   `'back\\slash'`,
		`a "q" #x`:     `'a "q" #x'`,
		"$(whoami);`x": "'$(whoami);`x'",
	} {
		assert.Equal(t, want, quoteDirective(in), in)
	}
}

func TestWalltimeMemory(t *testing.T) {
	assert.Equal(t, "0:00:01", walltime(time.Millisecond))
	assert.Equal(t, "1:30:00", walltime(90*time.Minute))
	assert.Equal(t, "1-00:00:00", walltime(24*time.Hour))
	assert.Equal(t, "2-03:04:05", walltime(51*time.Hour+4*time.Minute+5*time.Second))
	assert.Equal(t, "1M", memory(1))
	assert.Equal(t, "1M", memory(1<<20))
	assert.Equal(t, "2M", memory(1<<20+1))
	assert.Equal(t, "1536M", memory(3<<29))
	assert.Equal(t, "3G", memory(3<<30))
	assert.Equal(t, "2T", memory(2<<40))
}

// TestJobscriptMachinefile runs the jobscript's machinefile block with bash outside Slurm, on allocations
// given in the environment (scontrol expands hostlists without a controller), and compares the machinefile
// with Allocation.Machinefile.
func TestJobscriptMachinefile(t *testing.T) {
	bash := testenv.Require(t, "bash", "scontrol")
	if bash == nil {
		return
	}
	s, err := New()
	require.NoError(t, err)
	formats := []scheduler.MachinefileFormat{scheduler.MachinefileHosts, scheduler.MachinefileHostSlots,
		scheduler.MachinefileSlots, scheduler.MachinefileOpenMPI}
	for _, tc := range []struct {
		name, nodes, tasks string
		wantErr            string
	}{
		{name: "one node", nodes: "vm", tasks: "2"},
		{name: "several", nodes: "node[01-03],gpu7", tasks: "2(x3),1"},
		{name: "no task count", nodes: "n[1-2]", tasks: ""},
		{name: "too few counts", nodes: "n[1-3]", tasks: "2(x2)", wantErr: "2 task counts in $SLURM_TASKS_PER_NODE for 3 hosts"},
		{name: "too many counts", nodes: "n[1-2]", tasks: "2(x3)", wantErr: "does not fit the 2 hosts"},
		{name: "bad count", nodes: "n1", tasks: "x", wantErr: "bad $SLURM_TASKS_PER_NODE"},
		{name: "zero", nodes: "n1", tasks: "0", wantErr: "does not fit"},
		{name: "huge count", nodes: "n1", tasks: "99999999", wantErr: "bad $SLURM_TASKS_PER_NODE"},
		{name: "unclosed repeat", nodes: "n[1-2]", tasks: "1(x2", wantErr: "bad $SLURM_TASKS_PER_NODE"},
		{name: "no nodes", nodes: "", tasks: "1", wantErr: "no $SLURM_JOB_NODELIST"},
		{name: "bad host name", nodes: "a:b", tasks: "1", wantErr: "host name holds a byte"},
	} {
		for _, f := range formats {
			t.Run(tc.name+"/"+f.String(), func(t *testing.T) {
				dir := t.TempDir()
				script, err := s.Jobscript(scheduler.Job{
					ParallelEnv: "mpi", Slots: 2, Machinefile: scheduler.Machinefile{Format: f},
					Command: []string{"cp", scheduler.MachinefileArg, filepath.Join(dir, "machinefile")},
				})
				require.NoError(t, err)
				cmd := exec.CommandContext(t.Context(), bash[0], "-c", string(script))
				cmd.Dir = dir
				cmd.Env = append(os.Environ(), "SLURM_JOB_NODELIST="+tc.nodes, "SLURM_TASKS_PER_NODE="+tc.tasks,
					"SLURM_JOB_ID=1", "TMPDIR="+dir)
				out, err := cmd.CombinedOutput()
				if tc.wantErr != "" {
					require.Error(t, err)
					assert.Contains(t, string(out), tc.wantErr)
					return
				}
				require.NoError(t, err, "%s", out)
				a, err := ParseAllocation(tc.nodes, tc.tasks)
				require.NoError(t, err)
				got, err := os.ReadFile(filepath.Join(dir, "machinefile"))
				require.NoError(t, err)
				want, err := a.Machinefile(f)
				require.NoError(t, err)
				assert.Equal(t, string(want), string(got))
				left, err := filepath.Glob(filepath.Join(dir, "hpcship.*"))
				require.NoError(t, err)
				assert.Empty(t, left, "the private directory is removed on exit")
			})
		}
	}
}
