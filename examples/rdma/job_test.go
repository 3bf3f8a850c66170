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

	"github.com/hpcship/hpcship/scheduler"
)

// recordedBatch is a batch system that answers from its fields: the job's end as Wait gives it, or the
// errors of Submit and Wait.
type recordedBatch struct {
	batchSystem
	submitErr error
	result    scheduler.Result
	waitErr   error
	cancel    context.CancelFunc // called by Wait, as an interrupt arriving while it polls
	submitted []scheduler.Job
}

func (b *recordedBatch) Submit(_ context.Context, j scheduler.Job) (scheduler.JobID, error) {
	if b.submitErr != nil {
		return "", b.submitErr
	}
	b.submitted = append(b.submitted, j)
	return "42", nil
}

func (b *recordedBatch) Wait(ctx context.Context, id scheduler.JobID) (scheduler.Result, error) {
	if b.cancel != nil {
		b.cancel()
		<-ctx.Done()
		return scheduler.Result{}, ctx.Err()
	}
	if b.waitErr != nil {
		return scheduler.Result{}, b.waitErr
	}
	r := b.result
	r.ID = id
	return r, nil
}

// TestStepJob checks the last three steps against each way a job can end: submitted, waited for and its
// results printed, or stopped at the step that failed with what the batch system said.
func TestStepJob(t *testing.T) {
	sample, err := os.ReadFile(filepath.Join("..", "..", "mpi", "imb", "testdata", "azure-a9-pingpong.txt"))
	require.NoError(t, err)
	done := scheduler.Result{State: scheduler.StateDone, Host: "node1"}
	tests := []struct {
		name       string
		args       []string
		batch      recordedBatch
		interrupt  bool
		output     []byte // the job's output file; nil writes none
		wantErr    string
		wantIs     error
		wantStdout []string
		noStdout   []string
	}{
		{name: "results", batch: recordedBatch{result: done}, output: sample,
			wantStdout: []string{"[7/9] Submit it\n      $ qsub -pe mpi 32 ", "      job 42\n", "[8/9] Wait for it\n      $ qstat -j 42; qacct -j 42\n",
				"      job 42 done, exit status 0, on node1 after 0s\n", "[9/9] Read the IMB PingPong results (mpi/imb)\n      $ less ",
				"PingPong, 2 processes\n"}},
		{name: "results on slurm", args: []string{"-scheduler", "slurm"}, batch: recordedBatch{result: done}, output: sample,
			wantStdout: []string{"$ sbatch ", "$ squeue -j 42; sacct -j 42\n", "slurm-42.out\n", "PingPong, 2 processes\n"}},
		{name: "failed job", batch: recordedBatch{result: scheduler.Result{State: scheduler.StateFailed, ExitCode: 3}}, output: []byte("mpirun: not found\n"),
			wantErr: "job 42 failed with exit status 3; see ", wantStdout: []string{"[9/9]"}},
		{name: "submit refused", batch: recordedBatch{submitErr: errors.New("qsub: Unable to run job: denied")},
			wantErr: "qsub: Unable to run job: denied", wantStdout: []string{"[7/9] Submit it"}, noStdout: []string{"[8/9]", "job 42"}},
		{name: "wait fails", batch: recordedBatch{waitErr: errors.New("qstat: cannot reach qmaster")},
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
				b.cancel = cancel
			}
			p.batch = &b
			if tt.output != nil {
				require.NoError(t, os.WriteFile(p.outputPath("42"), tt.output, 0o644))
			}
			var stdout bytes.Buffer
			err = stepJob(ctx, p, &stepper{w: &stdout, n: 6, all: 9}, &stdout)
			if tt.wantErr == "" {
				require.NoError(t, err)
				require.Len(t, b.submitted, 1)
				assert.Equal(t, p.job, b.submitted[0])
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
