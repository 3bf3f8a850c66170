package sge

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

// TestJobscriptValidation: what Grid Engine cannot take is a *scheduler.JobError for the field, before
// anything is rendered; what it can renders.
func TestJobscriptValidation(t *testing.T) {
	plain, err := New()
	require.NoError(t, err)
	cc, err := New(WithCycleCloud())
	require.NoError(t, err)
	ok := func(mod func(*scheduler.Job)) scheduler.Job {
		j := scheduler.Job{Command: []string{"true"}, Queue: "hpc.q"}
		mod(&j)
		return j
	}
	tests := []struct {
		name  string
		s     *SGE
		job   scheduler.Job
		field string
	}{
		{"no payload", plain, scheduler.Job{}, "Script"},
		{"both payloads", plain, ok(func(j *scheduler.Job) { j.Script = "true" }), "Command"},
		{"leading digit", plain, ok(func(j *scheduler.Job) { j.Name = "1bad" }), "Name"},
		{"slash", plain, ok(func(j *scheduler.Job) { j.Name = "a/b" }), "Name"},
		{"colon", plain, ok(func(j *scheduler.Job) { j.Name = "a:b" }), "Name"},
		{"at", plain, ok(func(j *scheduler.Job) { j.Name = "a@b" }), "Name"},
		{"star", plain, ok(func(j *scheduler.Job) { j.Name = "x*y" }), "Name"},
		{"question mark", plain, ok(func(j *scheduler.Job) { j.Name = "x?y" }), "Name"},
		{"backslash", plain, ok(func(j *scheduler.Job) { j.Name = `x\y` }), "Name"},
		{"space", plain, ok(func(j *scheduler.Job) { j.Name = "a b" }), "Name"},
		{"tab", plain, ok(func(j *scheduler.Job) { j.Name = "a\tb" }), "Name"},
		{"non-ASCII", plain, ok(func(j *scheduler.Job) { j.Name = "é" }), "Name"},
		{"hash", plain, ok(func(j *scheduler.Job) { j.Name = "a#b" }), "Name"},
		{"quote", plain, ok(func(j *scheduler.Job) { j.Name = `a"b` }), "Name"},
		{"keyword", plain, ok(func(j *scheduler.Job) { j.Name = "Template" }), "Name"},
		{"too long", plain, ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 513) }), "Name"},
		{"slots without PE", plain, ok(func(j *scheduler.Job) { j.Slots = 2 }), "ParallelEnv"},
		{"PE without slots", plain, ok(func(j *scheduler.Job) { j.ParallelEnv = "mpi" }), "Slots"},
		{"machinefile without PE", plain, ok(func(j *scheduler.Job) { j.Command = []string{"cat", scheduler.MachinefileArg} }), "Command"},
		{"machinefile path", plain, ok(func(j *scheduler.Job) {
			j.ParallelEnv, j.Slots, j.Machinefile.Name = "mpi", 2, "../x"
		}), "Machinefile.Name"},
		{"env name", plain, ok(func(j *scheduler.Job) { j.Env = []string{"A-B=x"} }), "Env[0]"},
		{"bash's variable", plain, ok(func(j *scheduler.Job) { j.Env = []string{"A=1", "SHELLOPTS=errexit"} }), "Env[1]"},
		{"PIPESTATUS", plain, ok(func(j *scheduler.Job) { j.Env = []string{"PIPESTATUS=0"} }), "Env[0]"},
		{"jobscript's variable", plain, ok(func(j *scheduler.Job) { j.Env = []string{"hpcship_tmpdir=/"} }), "Env[0]"},
		{"machinefile variable", plain, ok(func(j *scheduler.Job) { j.Env = []string{"HPCSHIP_MACHINEFILE=x"} }), "Env[0]"},
		{"env NUL", plain, ok(func(j *scheduler.Job) { j.Env = []string{"A=x\x00"} }), "Env[0]"},
		{"first bad resource by name", plain, ok(func(j *scheduler.Job) {
			j.Resources = map[string]string{"z": "a b", "m": "c,d", "a": "ok"}
		}), "Resources[m]"},
		{"arg NUL", plain, ok(func(j *scheduler.Job) { j.Command = []string{"echo", "\x00"} }), "Command[1]"},
		{"directive in script", plain, scheduler.Job{Script: "true\n#$ -q evil.q\n"}, "Script"},
		{"relative workdir", plain, ok(func(j *scheduler.Job) { j.WorkDir = "run" }), "WorkDir"},
		{"blank in workdir", plain, ok(func(j *scheduler.Job) { j.WorkDir = "/a b" }), "WorkDir"},
		{"host in stdout", plain, ok(func(j *scheduler.Job) { j.Stdout = "node1:/x" }), "Stdout"},
		{"resource list", plain, ok(func(j *scheduler.Job) { j.Resources = map[string]string{"a": "1,b=2"} }), "Resources[a]"},
		{"array from 0", plain, ok(func(j *scheduler.Job) { j.Array = &scheduler.ArrayRange{First: 0, Last: 3, Step: 1} }), "Array.First"},
		{"hold list", plain, ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1,2"} }), "HoldJobs[0]"},
		{"queue with blank", plain, ok(func(j *scheduler.Job) { j.Queue = "a b" }), "Queue"},
		{"cyclecloud no queue", cc, ok(func(j *scheduler.Job) { j.Queue = "" }), "Queue"},
		{"cyclecloud wildcard", cc, ok(func(j *scheduler.Job) { j.Queue = "hpc*" }), "Queue"},
		{"cyclecloud list", cc, ok(func(j *scheduler.Job) { j.Queue = "hpc.q,htc.q" }), "Queue"},
		{"cyclecloud host", cc, ok(func(j *scheduler.Job) { j.Queue = "hpc.q@node1" }), "Queue"},
		{"cyclecloud native -q", cc, ok(func(j *scheduler.Job) { j.Native = []string{"-q", "htc.q"} }), "Native"},

		// Every limit at it and on both sides: an empty field is accepted.
		{"name of 512 bytes", plain, ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 512) }), ""},
		{"name of 513 bytes", plain, ok(func(j *scheduler.Job) { j.Name = strings.Repeat("a", 513) }), "Name"},
		{"name of the printable ends", plain, ok(func(j *scheduler.Job) { j.Name = "!a~" }), ""},
		{"name with DEL", plain, ok(func(j *scheduler.Job) { j.Name = "a\x7f" }), "Name"},
		{"name with a control byte", plain, ok(func(j *scheduler.Job) { j.Name = "a\x1fb" }), "Name"},
		{"name with a quote", plain, ok(func(j *scheduler.Job) { j.Name = "it's" }), "Name"},
		{"name starting with 0", plain, ok(func(j *scheduler.Job) { j.Name = "0a" }), "Name"},
		{"name starting with 9", plain, ok(func(j *scheduler.Job) { j.Name = "9a" }), "Name"},
		{"digit after the first byte", plain, ok(func(j *scheduler.Job) { j.Name = "a09" }), ""},
		{"reserved word in lower case", plain, ok(func(j *scheduler.Job) { j.Name = "none" }), "Name"},
		{"reserved word ALL", plain, ok(func(j *scheduler.Job) { j.Name = "ALL" }), "Name"},
		{"reserved word as a prefix", plain, ok(func(j *scheduler.Job) { j.Name = "NONEX" }), ""},
		{"PE", plain, ok(func(j *scheduler.Job) { j.ParallelEnv, j.Slots = "mpi_2", 1 }), ""},
		{"PE with a slash", plain, ok(func(j *scheduler.Job) { j.ParallelEnv, j.Slots = "mpi/2", 1 }), "ParallelEnv"},
		{"PE with a comma", plain, ok(func(j *scheduler.Job) { j.ParallelEnv, j.Slots = "a,b", 1 }), "ParallelEnv"},
		{"queue list without CycleCloud", plain, ok(func(j *scheduler.Job) { j.Queue = "hpc.q,htc.q@node1" }), ""},
		{"no queue without CycleCloud", plain, ok(func(j *scheduler.Job) { j.Queue = "" }), ""},
		{"cyclecloud -soft", cc, ok(func(j *scheduler.Job) { j.Native = []string{"-soft", "-q", "x"} }), "Native"},
		{"cyclecloud -masterq", cc, ok(func(j *scheduler.Job) { j.Native = []string{"-masterq", "x"} }), "Native"},
		{"cyclecloud other native", cc, ok(func(j *scheduler.Job) { j.Native = []string{"-l", "h_rt=60"} }), ""},
		{"resource name with =", plain, ok(func(j *scheduler.Job) { j.Resources = map[string]string{"a=b": "1"} }), "Resources"},
		{"resource value with =", plain, ok(func(j *scheduler.Job) { j.Resources = map[string]string{"a": "b=1"} }), ""},
		{"empty resource value", plain, ok(func(j *scheduler.Job) { j.Resources = map[string]string{"a": ""} }), "Resources[a]"},
		{"stdout with a variable", plain, ok(func(j *scheduler.Job) { j.Stdout = "/logs/$JOB_ID.out" }), ""},
		{"stderr list", plain, ok(func(j *scheduler.Job) { j.Stderr = "/a,/b" }), "Stderr"},
		{"shell with a host", plain, ok(func(j *scheduler.Job) { j.Shell = "/bin/sh:x" }), "Shell"},
		{"project", plain, ok(func(j *scheduler.Job) { j.Project = "proj-1" }), ""},
		{"project with @", plain, ok(func(j *scheduler.Job) { j.Project = "p@x" }), "Project"},
		{"account with a slash", plain, ok(func(j *scheduler.Job) { j.Account = "a/b" }), ""},
		{"account list", plain, ok(func(j *scheduler.Job) { j.Account = "a,b" }), "Account"},
		{"second hold list", plain, ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"1", "2,3"} }), "HoldJobs[1]"},
		{"hold by name", plain, ok(func(j *scheduler.Job) { j.HoldJobs = []scheduler.JobID{"prep"} }), ""},
		{"directive on the first line", plain, scheduler.Job{Script: "#$ -q evil.q\ntrue"}, "Script"},
		{"#$ inside a line", plain, scheduler.Job{Script: "echo '#$ -q x'\n #$ indented"}, ""},
		{"one-task array", plain, ok(func(j *scheduler.Job) { j.Array = &scheduler.ArrayRange{First: 1, Last: 1, Step: 1} }), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.s.Jobscript(tt.job)
			if tt.field == "" {
				require.NoError(t, err)
				return
			}
			require.ErrorIs(t, err, scheduler.ErrInvalidJob)
			var je *scheduler.JobError
			require.ErrorAs(t, err, &je)
			assert.Equal(t, tt.field, je.Field)
		})
	}

	_, err = cc.Jobscript(ok(func(*scheduler.Job) {}))
	require.NoError(t, err, "CycleCloud accepts one plain queue")
}

func TestJobscriptKeepsSecretsOutOfErrors(t *testing.T) {
	s, err := New()
	require.NoError(t, err)
	_, err = s.Jobscript(scheduler.Job{Command: []string{"true"}, Env: []string{"TOKEN=s3cr3t\x00"}})
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
}

func TestWalltimeAndMemory(t *testing.T) {
	assert.Equal(t, "0:00:01", walltime(time.Millisecond))
	assert.Equal(t, "1:30:01", walltime(90*time.Minute+500*time.Millisecond))
	assert.Equal(t, "49:00:00", walltime(49*time.Hour))
	assert.Equal(t, "4G", memory(4<<30))
	assert.Equal(t, "1536M", memory(1536<<20))
	assert.Equal(t, "3K", memory(3072))
	assert.Equal(t, "1000", memory(1000))
}

// TestJobscriptRunsWithoutGridEngine runs rendered jobscripts with bash as Grid Engine would start them,
// without TMPDIR (as for a root-owned job) and with a $PE_HOSTFILE of three queue instances on two hosts.
func TestJobscriptRunsWithoutGridEngine(t *testing.T) {
	bash := testenv.Require(t, "bash")[0]
	dir := t.TempDir()
	hostfile := filepath.Join(dir, "pe_hostfile")
	const hosts = "node1 4 hpc.q@node1 UNDEFINED\nnode2 08 hpc.q@node2 UNDEFINED\n\nnode1 2 htc.q@node1 0,1:0,2\n"
	require.NoError(t, os.WriteFile(hostfile, []byte(hosts), 0o644))
	hf, err := ParsePEHostfile(strings.NewReader(hosts))
	require.NoError(t, err)
	s, err := New()
	require.NoError(t, err)
	render := func(f scheduler.MachinefileFormat) string {
		mf, err := hf.Machinefile(f)
		require.NoError(t, err)
		return string(mf)
	}

	run := func(t *testing.T, j scheduler.Job) (string, int) {
		script, err := s.Jobscript(j)
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), bash)
		cmd.Stdin = strings.NewReader(string(script))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PE_HOSTFILE=" + hostfile}
		cmd.Dir = dir
		var out strings.Builder
		cmd.Stdout, cmd.Stderr = &out, &out
		err = cmd.Run()
		code := 0
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			code = exit.ExitCode()
		} else {
			require.NoError(t, err)
		}
		return out.String(), code
	}

	for _, f := range []scheduler.MachinefileFormat{scheduler.MachinefileHosts, scheduler.MachinefileHostSlots, scheduler.MachinefileSlots, scheduler.MachinefileOpenMPI} {
		t.Run(f.String(), func(t *testing.T) {
			out, code := run(t, scheduler.Job{
				ParallelEnv: "mpi", Slots: 8, Machinefile: scheduler.Machinefile{Format: f},
				Command: []string{"bash", "-c", `cat "$1"; echo "tmp=$TMPDIR env=$HPCSHIP_MACHINEFILE"`, "x", scheduler.MachinefileArg},
			})
			require.Equal(t, 0, code, out)
			machinefile, rest, ok := strings.Cut(out, "tmp=")
			require.True(t, ok, out)
			assert.Equal(t, render(f), machinefile)
			tmp, env, _ := strings.Cut(strings.TrimSpace(rest), " env=")
			assert.Equal(t, tmp+"/"+scheduler.DefaultMachinefileName, env)
			assert.True(t, strings.HasPrefix(tmp, "/tmp/hpcship."), tmp)
			assert.NoDirExists(t, tmp, "the jobscript removes the TMPDIR it made")
		})
	}

	for _, code := range []int{0, 3, 98, 99, 100, 101} {
		t.Run(fmt.Sprintf("exit %d", code), func(t *testing.T) {
			out, got := run(t, scheduler.Job{Script: fmt.Sprintf("exit %d", code)})
			want := code
			if code == 99 || code == 100 {
				want = RemappedExitCode
				assert.Contains(t, out, fmt.Sprintf("the payload exited %d", code))
			}
			assert.Equal(t, want, got)
		})
	}

	// A sourced file that turns on errexit must not let 99 or 100 through.
	seterr := filepath.Join(dir, "errexit.sh")
	require.NoError(t, os.WriteFile(seterr, []byte("set -e\n"), 0o644))
	for _, j := range []scheduler.Job{
		{Source: []string{seterr}, Command: []string{"sh", "-c", "exit 100"}},
		{Source: []string{seterr}, Script: "exit 99"},
	} {
		t.Run("errexit "+strings.Join(j.Command, " ")+j.Script, func(t *testing.T) {
			out, got := run(t, j)
			assert.Equal(t, RemappedExitCode, got, out)
		})
	}

	t.Run("TMPDIR in Env", func(t *testing.T) {
		other := t.TempDir()
		out, code := run(t, scheduler.Job{
			ParallelEnv: "mpi", Slots: 8, Env: []string{"TMPDIR=" + other},
			Command: []string{"cat", scheduler.MachinefileArg},
		})
		require.Equal(t, 0, code, out)
		assert.Equal(t, render(scheduler.MachinefileHosts), out)
	})

	t.Run("hostfile without final newline", func(t *testing.T) {
		script, err := s.Jobscript(scheduler.Job{ParallelEnv: "mpi", Slots: 2, Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileHostSlots},
			Command: []string{"cat", scheduler.MachinefileArg}})
		require.NoError(t, err)
		unterminated := filepath.Join(t.TempDir(), "pe_hostfile")
		require.NoError(t, os.WriteFile(unterminated, []byte("node1 1 all.q@node1 UNDEFINED\nnode2 1 all.q@node2 UNDEFINED"), 0o644))
		cmd := exec.CommandContext(t.Context(), bash)
		cmd.Stdin = strings.NewReader(string(script))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PE_HOSTFILE=" + unterminated}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "node1:1\nnode2:1\n", string(out))
	})

	// A queue with shell_start_mode unix_behavior runs the jobscript as an executable: the #! line picks the
	// shell, not -S.
	t.Run("unix_behavior", func(t *testing.T) {
		shell := filepath.Join(t.TempDir(), "bash")
		require.NoError(t, os.Symlink(bash, shell))
		script, err := s.Jobscript(scheduler.Job{Shell: shell, ParallelEnv: "mpi", Slots: 2,
			Script: `echo "shell=$BASH"; cat "$HPCSHIP_MACHINEFILE"`})
		require.NoError(t, err)
		path := filepath.Join(t.TempDir(), "job.sh")
		require.NoError(t, os.WriteFile(path, script, 0o755))
		cmd := exec.CommandContext(t.Context(), path)
		cmd.Env = []string{"PATH=" + os.Getenv("PATH"), "PE_HOSTFILE=" + hostfile}
		out, err := cmd.CombinedOutput()
		require.NoError(t, err, "%s", out)
		assert.Equal(t, "shell="+shell+"\n"+render(scheduler.MachinefileHosts), string(out))
	})

	t.Run("no PE_HOSTFILE", func(t *testing.T) {
		script, err := s.Jobscript(scheduler.Job{ParallelEnv: "mpi", Slots: 2, Command: []string{"true"}})
		require.NoError(t, err)
		cmd := exec.CommandContext(t.Context(), bash)
		cmd.Stdin = strings.NewReader(string(script))
		cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
		out, err := cmd.CombinedOutput()
		var exit *exec.ExitError
		require.ErrorAs(t, err, &exit)
		assert.Equal(t, 1, exit.ExitCode())
		assert.Contains(t, string(out), "no readable $PE_HOSTFILE")
	})
}
