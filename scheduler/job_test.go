package scheduler_test

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/scheduler"
)

func TestJobValidate(t *testing.T) {
	cmd := []string{"mpirun", "-machinefile", scheduler.MachinefileArg, "a.out"}
	tests := []struct {
		name  string
		job   scheduler.Job
		field string
	}{
		{"ok", scheduler.Job{Command: cmd, ParallelEnv: "mpi", Slots: 4}, ""},
		{"ok script", scheduler.Job{Script: "echo hi"}, ""},
		{"no payload", scheduler.Job{}, "Script"},
		{"empty program", scheduler.Job{Command: []string{""}}, "Command"},
		{"NUL in script", scheduler.Job{Script: "a\x00"}, "Script"},
		{"empty source", scheduler.Job{Script: "x", Source: []string{""}}, "Source[0]"},
		{"negative slots", scheduler.Job{Script: "x", Slots: -1}, "Slots"},
		{"machinefile without PE", scheduler.Job{Command: cmd}, "Command"},
		{"bad format", scheduler.Job{Command: cmd, ParallelEnv: "mpi", Slots: 2, Machinefile: scheduler.Machinefile{Format: 7}}, "Machinefile.Format"},
		{"dot name", scheduler.Job{Command: cmd, ParallelEnv: "mpi", Slots: 2, Machinefile: scheduler.Machinefile{Name: ".."}}, "Machinefile.Name"},
		{"negative walltime", scheduler.Job{Script: "x", Walltime: -1}, "Walltime"},
		{"negative memory", scheduler.Job{Script: "x", MemoryPerSlot: -1}, "MemoryPerSlot"},
		{"relative shell", scheduler.Job{Script: "x", Shell: "bash"}, "Shell"},
		{"env digit", scheduler.Job{Script: "x", Env: []string{"A=1", "1A="}}, "Env[1]"},
		{"env without =", scheduler.Job{Script: "x", Env: []string{"A"}}, "Env[0]"},
		{"env NUL", scheduler.Job{Script: "x", Env: []string{"A=\x00"}}, "Env[0]"},
		{"first bad env entry", scheduler.Job{Script: "x", Env: []string{"A=1", "B C=2", "1D=3", "E"}}, "Env[1]"},
		{"ranks within slots", scheduler.Job{Command: []string{"mpirun", "-np", "4", "a.out"}, ParallelEnv: "mpi", Slots: 4}, ""},
		{"ranks above slots", scheduler.Job{Command: []string{"/opt/impi/bin64/mpirun", "-machinefile", scheduler.MachinefileArg, "-np", "64", "a.out"}, ParallelEnv: "mpi", Slots: 32}, "Command"},
		{"mpiexec -n above slots", scheduler.Job{Command: []string{"mpiexec.hydra", "-n", "3", "a.out", "-np", "1"}, ParallelEnv: "mpi", Slots: 2}, "Command"},
		{"-np of another program", scheduler.Job{Command: []string{"bench", "-np", "64"}, ParallelEnv: "mpi", Slots: 2}, ""},
		{"open mpi format", scheduler.Job{Command: cmd, ParallelEnv: "mpi", Slots: 4, Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileOpenMPI}}, ""},
		{"array step", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 1, Last: 2}}, "Array.Step"},
		{"array order", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 3, Last: 2, Step: 1}}, "Array.Last"},
		{"array cap", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 1, Last: 2, Step: 1, MaxRunning: -1}}, "Array.MaxRunning"},
		{"empty hold", scheduler.Job{Script: "x", HoldJobs: []scheduler.JobID{""}}, "HoldJobs[0]"},

		// Every limit, at it and on both sides.
		{"NUL as the script's first byte", scheduler.Job{Script: "\x00echo"}, "Script"},
		{"NUL as a source's first byte", scheduler.Job{Script: "x", Source: []string{"\x00/etc/profile"}}, "Source[0]"},
		{"NUL as an argument's first byte", scheduler.Job{Command: []string{"echo", "\x00"}}, "Command[1]"},
		{"command without PE", scheduler.Job{Command: []string{"hostname", "-f"}}, ""},
		{"machinefile word inside an argument", scheduler.Job{Command: []string{"echo", "at " + scheduler.MachinefileArg}}, ""},
		{"script and command", scheduler.Job{Script: "x", Command: []string{"true"}}, "Command"},
		{"NUL in an argument", scheduler.Job{Command: []string{"echo", "a", "b\x00"}}, "Command[2]"},
		{"NUL in a source", scheduler.Job{Script: "x", Source: []string{"/a", "/b\x00"}}, "Source[1]"},
		{"zero slots without PE", scheduler.Job{Script: "x", Slots: 0}, ""},
		{"one slot without PE", scheduler.Job{Script: "x", Slots: 1}, "ParallelEnv"},
		{"PE without slots", scheduler.Job{Script: "x", ParallelEnv: "mpi"}, "Slots"},
		{"PE with one slot", scheduler.Job{Script: "x", ParallelEnv: "mpi", Slots: 1}, ""},
		{"machinefile with PE and one slot", scheduler.Job{Command: cmd, ParallelEnv: "mpi", Slots: 1}, ""},
		{"format below the first", scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileHosts - 1}}, "Machinefile.Format"},
		{"first format", scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileHosts}}, ""},
		{"format above the last", scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileOpenMPI + 1}}, "Machinefile.Format"},
		{"name of every allowed byte", scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Name: "azAZ09._-"}}, ""},
		{"zero walltime", scheduler.Job{Script: "x", Walltime: 0}, ""},
		{"zero memory", scheduler.Job{Script: "x", MemoryPerSlot: 0}, ""},
		{"absolute shell", scheduler.Job{Script: "x", Shell: "/bin/bash"}, ""},
		{"relative work dir", scheduler.Job{Script: "x", WorkDir: "run1"}, "WorkDir"},
		{"absolute work dir", scheduler.Job{Script: "x", WorkDir: "/run1"}, ""},
		{"ranks one above slots", scheduler.Job{Command: []string{"mpirun", "-np", "5", "a.out"}, ParallelEnv: "mpi", Slots: 4}, "Command"},
		{"ranks one below slots", scheduler.Job{Command: []string{"mpirun", "-np", "3", "a.out"}, ParallelEnv: "mpi", Slots: 4}, ""},
		{"launcher without a slot count", scheduler.Job{Command: []string{"mpirun", "-np", "4", "a.out"}}, ""},
		{"-np without a value", scheduler.Job{Command: []string{"mpirun", "a.out", "-np"}, ParallelEnv: "mpi", Slots: 4}, ""},
		{"-np not a number", scheduler.Job{Command: []string{"mpirun", "-np", "all", "a.out"}, ParallelEnv: "mpi", Slots: 4}, ""},
		{"one-task array", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 1, Last: 1, Step: 1}}, ""},
		{"array from zero", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 0, Last: 2, Step: 1}}, "Array.First"},
		{"array last one before first", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 5, Last: 4, Step: 1}}, "Array.Last"},
		{"array step zero", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 1, Last: 4, Step: 0}}, "Array.Step"},
		{"array no cap", scheduler.Job{Script: "x", Array: &scheduler.ArrayRange{First: 1, Last: 4, Step: 3, MaxRunning: 0}}, ""},
		{"second hold empty", scheduler.Job{Script: "x", HoldJobs: []scheduler.JobID{"12", ""}}, "HoldJobs[1]"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.job.Validate()
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
}

// TestMachinefileName pins the bytes a machinefile name may hold, with the bytes on either side of each
// allowed range.
func TestMachinefileName(t *testing.T) {
	for _, name := range []string{"a", "z", "A", "Z", "0", "9", "u_machines", "hosts.txt", "my-hosts", "...", ".x"} {
		j := scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Name: name}}
		assert.NoError(t, j.Validate(), "%q", name)
	}
	for _, name := range []string{".", "..", "`", "{", "@", "[", "/", ":", "a b", "a/b", "é", "a\x00", "+"} {
		j := scheduler.Job{Script: "x", Machinefile: scheduler.Machinefile{Name: name}}
		var je *scheduler.JobError
		if assert.ErrorAs(t, j.Validate(), &je, "%q", name) {
			assert.Equal(t, "Machinefile.Name", je.Field)
		}
	}
}

func TestJobValidateKeepsSecretsOutOfErrors(t *testing.T) {
	j := scheduler.Job{Script: "x", Env: []string{"TOKEN=s3cr3t\x00"}}
	err := j.Validate()
	require.Error(t, err)
	assert.NotContains(t, err.Error(), "s3cr3t")
}

func TestJobStateString(t *testing.T) {
	for state, want := range map[scheduler.JobState]string{
		scheduler.StateUnknown: "unknown", scheduler.StatePending: "pending", scheduler.StateHeld: "held",
		scheduler.StateRunning: "running", scheduler.StateSuspended: "suspended", scheduler.StateError: "error",
		scheduler.StateDone: "done", scheduler.StateFailed: "failed", scheduler.StateCancelled: "cancelled",
	} {
		assert.Equal(t, want, state.String())
		ended := state == scheduler.StateDone || state == scheduler.StateFailed || state == scheduler.StateCancelled
		assert.Equal(t, ended, state.Ended(), "%s", state)
	}
	assert.Equal(t, "cancelled", scheduler.StateCancelled.String())
	assert.Equal(t, "JobState(42)", scheduler.JobState(42).String())
	assert.True(t, scheduler.StateFailed.Ended())
	assert.False(t, scheduler.StateError.Ended())
	assert.Equal(t, "host:slots", scheduler.MachinefileHostSlots.String())
	assert.Equal(t, "host slots=N", scheduler.MachinefileOpenMPI.String())
}
