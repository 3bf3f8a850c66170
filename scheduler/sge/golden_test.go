package sge_test

import (
	"flag"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/scheduler"
	"github.com/hpcship/hpcship/scheduler/sge"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

func TestJobscriptGolden(t *testing.T) {
	s, err := sge.New()
	require.NoError(t, err)
	everything := scheduler.Job{
		Name:          "all_fields",
		Script:        "echo \"$SGE_TASK_ID\"\nexit 3",
		ParallelEnv:   "mpislots",
		Slots:         4,
		Machinefile:   scheduler.Machinefile{Format: scheduler.MachinefileHostSlots},
		Queue:         "hpc.q",
		Walltime:      90*time.Minute + 500*time.Millisecond,
		MemoryPerSlot: 3 << 30,
		Exclusive:     true,
		Resources:     map[string]string{"slot_type": "execute", "arch": "lx-amd64"},
		WorkDir:       "/shared/run1",
		Stdout:        "/shared/logs/$JOB_NAME.$JOB_ID.$TASK_ID.out",
		Stderr:        "/shared/logs/$JOB_NAME.$JOB_ID.$TASK_ID.err",
		Env:           []string{"QUOTED=it's a \"test\"\n#$ -q evil", "EMPTY=", "QUOTED=later wins"},
		Shell:         "/usr/bin/bash",
		Array:         &scheduler.ArrayRange{First: 1, Last: 10, Step: 2, MaxRunning: 3},
		HoldJobs:      []scheduler.JobID{"12", "prep"},
		Hold:          true,
		Project:       "proj",
		Account:       "acct",
	}
	slots := scheduler.Job{Name: "slots", Command: []string{"hostname"}, ParallelEnv: "smpslots", Slots: 2,
		Machinefile: scheduler.Machinefile{Format: scheduler.MachinefileSlots}}
	// A job without a parallel environment writes no machinefile; a one-task array without a cap gets no -tc.
	plain := scheduler.Job{Name: "plain", Command: []string{"hostname"}, JoinOutput: true,
		Array: &scheduler.ArrayRange{First: 1, Last: 1, Step: 1}}
	for name, j := range map[string]scheduler.Job{"rdma.job": rdmaJob(), "all_fields.job": everything, "slots.job": slots,
		"plain.job": plain} {
		t.Run(name, func(t *testing.T) {
			got, err := s.Jobscript(j)
			require.NoError(t, err)
			schedulertest.Golden(t, name, got, *update)
		})
	}
}
