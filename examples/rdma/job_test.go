package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/scheduler"
)

// TestStepJob checks the last three steps against each way a job can end: submitted, waited for and its
// results printed, or stopped at the step that failed with what the batch system said.
func TestStepJob(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "mpi", "imb", "testdata", "azure-a9-pingpong.txt"))
	require.NoError(t, err)
	done := scheduler.Result{State: scheduler.StateDone, Host: "node1"}
	tests := []struct {
		name       string
		args       []string
		batch      schedulertest.Recorded
		interrupt  bool
		output     []byte // the job's output file; nil writes none
		wantErr    string
		wantIs     error
		wantStdout []string
		noStdout   []string
	}{
		{name: "results", batch: schedulertest.Recorded{Ended: done}, output: sample,
			wantStdout: []string{"[7/9] Submit it\n      $ qsub -pe mpi 32 ", "      job 42\n", "[8/9] Wait for it\n      $ qstat -j 42; qacct -j 42\n",
				"      job 42 done, exit status 0, on node1 after 0s\n", "[9/9] Read the IMB PingPong results (mpi/imb)\n      $ less ",
				"PingPong, 2 processes\n"}},
		{name: "results on slurm", args: []string{"-scheduler", "slurm"}, batch: schedulertest.Recorded{Ended: done}, output: sample,
			wantStdout: []string{"$ sbatch ", "$ squeue -j 42; sacct -j 42\n", "slurm-42.out\n", "PingPong, 2 processes\n"}},
		{name: "failed job", batch: schedulertest.Recorded{Ended: scheduler.Result{State: scheduler.StateFailed, ExitCode: 3}}, output: []byte("mpirun: not found\n"),
			wantErr: "job 42 failed with exit status 3; see ", wantStdout: []string{"[9/9]"}},
		{name: "submit refused", batch: schedulertest.Recorded{SubmitErr: errors.New("qsub: Unable to run job: denied")},
			wantErr: "qsub: Unable to run job: denied", wantStdout: []string{"[7/9] Submit it"}, noStdout: []string{"[8/9]", "job 42"}},
		{name: "wait fails", batch: schedulertest.Recorded{WaitErr: errors.New("qstat: cannot reach qmaster")},
			wantErr: "waiting for job 42: qstat: cannot reach qmaster", noStdout: []string{"[9/9]"}},
		{name: "interrupted on sge", interrupt: true, wantIs: context.Canceled,
			wantErr: "stopped waiting for job 42, which keeps going (qdel 42 cancels it): context canceled", noStdout: []string{"[9/9]"}},
		{name: "interrupted on slurm", args: []string{"-scheduler", "slurm"}, interrupt: true, wantIs: context.Canceled,
			wantErr: "stopped waiting for job 42, which keeps going (scancel 42 cancels it): context canceled"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			workdir := t.TempDir()
			cfg, err := parseFlags(append(append([]string{"-workdir", workdir}, required...), tt.args...), func(string) string { return "" }, io.Discard)
			require.NoError(t, err)
			p, err := newPlan(cfg)
			require.NoError(t, err)
			ctx, cancel := context.WithCancel(t.Context())
			defer cancel()
			b := tt.batch
			if tt.interrupt {
				b.Interrupt = cancel
			}
			p.batch = &b
			if tt.output != nil {
				require.NoError(t, os.WriteFile(p.outputPath("42"), tt.output, 0o644))
			}
			var stdout bytes.Buffer
			err = stepJob(ctx, p, &stepper{w: &stdout, n: 6, all: 9}, &stdout)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Len(t, b.Submitted, 1)
				assert.Equal(t, p.job, b.Submitted[0])
			} else {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
			}
			if tt.wantIs != nil {
				assert.ErrorIs(t, err, tt.wantIs)
			}
			for _, want := range tt.wantStdout {
				assert.Contains(t, stdout.String(), want)
			}
			for _, not := range tt.noStdout {
				assert.NotContains(t, stdout.String(), not)
			}
		})
	}
}
