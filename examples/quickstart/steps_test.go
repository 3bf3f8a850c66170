package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/internal/schedulertest"
	"github.com/hpcship/hpcship/internal/testenv"
	"github.com/hpcship/hpcship/scheduler"
)

// TestSubmitAndWaitEnds checks what the job stage reports for each way submitting and waiting end: the
// job's end, the batch system's error, or, when interrupted or out of time, how to find the job.
func TestSubmitAndWaitEnds(t *testing.T) {
	job := scheduler.Job{Stdout: "/work/rdma.out"}
	tests := []struct {
		name      string
		scheduler string
		batch     schedulertest.Recorded
		want      string
		wantErr   string
		wantIs    error
		wantID    scheduler.JobID
	}{
		{name: "done", scheduler: "sge", batch: schedulertest.Recorded{Ended: scheduler.Result{State: scheduler.StateDone}},
			want: "job 42 done, exit status 0, output in /work/rdma.out", wantID: "42"},
		{name: "submit refused", scheduler: "sge", batch: schedulertest.Recorded{SubmitErr: errors.New("qsub: denied")}, wantErr: "qsub: denied"},
		{name: "wait fails", scheduler: "sge", batch: schedulertest.Recorded{WaitErr: errors.New("qstat: no qmaster")},
			wantErr: "waiting for job 42: qstat: no qmaster", wantID: "42"},
		{name: "interrupted on sge", scheduler: "sge", batch: schedulertest.Recorded{WaitErr: context.Canceled}, wantIs: context.Canceled,
			wantErr: "stopped waiting for job 42, which stays queued (qdel 42 removes it)", wantID: "42"},
		{name: "out of time on slurm", scheduler: "slurm", batch: schedulertest.Recorded{WaitErr: context.DeadlineExceeded}, wantIs: context.DeadlineExceeded,
			wantErr: "stopped waiting for job 42, which stays queued (scancel 42 removes it)", wantID: "42"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			wf := &workflow{cfg: config{scheduler: tt.scheduler}, con: newConsole(&out)}
			got, err := wf.submitAndWait(t.Context(), &tt.batch, job)
			assert.Equal(t, tt.wantID, wf.sum.jobID)
			if tt.wantErr != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tt.wantErr)
				assert.Nil(t, wf.sum.result)
				if tt.wantIs != nil {
					assert.ErrorIs(t, err, tt.wantIs)
				}
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tt.want, got)
			require.NotNil(t, wf.sum.result)
			assert.Equal(t, scheduler.StateDone, wf.sum.result.State)
			assert.Contains(t, out.String(), "submitted job 42")
		})
	}
}

// TestFileDigest checks the digest that tells whether the SIF came back from the registry unchanged.
func TestFileDigest(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	require.NoError(t, os.WriteFile(a, []byte("SIF bytes"), 0o644))
	require.NoError(t, os.WriteFile(b, []byte("SIF byteS"), 0o644))
	var got [sha256.Size]byte
	var err error
	left := testenv.FilesLeftOpen(t, dir, func() { got, err = fileDigest(a) })
	require.NoError(t, err)
	assert.Equal(t, sha256.Sum256([]byte("SIF bytes")), got)
	assert.Empty(t, left, "files left open")
	other, err := fileDigest(b)
	require.NoError(t, err)
	assert.NotEqual(t, got, other)
	_, err = fileDigest(filepath.Join(dir, "missing"))
	assert.ErrorIs(t, err, os.ErrNotExist)
	_, err = fileDigest(dir)
	assert.ErrorIs(t, err, syscall.EISDIR, "a directory where the SIF should be")
}

// TestWriteStandInFaults checks that the stand-in for /opt/intel stops at the first thing that fails: a
// cancelled context, or a directory it cannot create.
func TestWriteStandInFaults(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := writeStandIn(ctx, t.TempDir())
	assert.ErrorIs(t, err, context.Canceled)

	file := filepath.Join(t.TempDir(), "file")
	require.NoError(t, os.WriteFile(file, nil, 0o644))
	_, err = writeStandIn(t.Context(), file)
	assert.ErrorIs(t, err, syscall.ENOTDIR, "the work directory is a file")

	// A file left where the tree goes is replaced.
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "intel"), nil, 0o644))
	root, err := writeStandIn(t.Context(), dir)
	require.NoError(t, err)
	assert.Equal(t, filepath.Join(dir, "intel"), root)
	lib := filepath.Join(root, "compilers_and_libraries_2016.3.223", "linux", "mpi", "intel64", "lib")
	target, err := os.Readlink(filepath.Join(lib, "libmpi.so.12"))
	require.NoError(t, err)
	assert.Equal(t, "libmpi.so.12.0", target, "each soname links to its library")
	var total int64
	for _, f := range standIn() {
		fi, err := os.Lstat(filepath.Join(root, filepath.FromSlash(f.path)))
		require.NoError(t, err)
		size := f.size
		if size == 0 {
			size = int64(len(f.text))
		}
		assert.Equal(t, size, fi.Size(), "%s is whole", f.path)
		assert.Equal(t, f.mode, fi.Mode(), f.path)
		total += fi.Size()
	}
	assert.InDelta(t, 3<<20, total, 4096, "3 MiB in all, as the stand-in's doc says")
}

// TestRoundDuration checks the precision of the printed stage times on each side of its steps.
func TestRoundDuration(t *testing.T) {
	for d, want := range map[time.Duration]time.Duration{
		1600 * time.Microsecond:              2 * time.Millisecond,
		999499 * time.Microsecond:            999 * time.Millisecond,
		time.Second + 4*time.Millisecond:     time.Second,
		time.Second + 6*time.Millisecond:     1010 * time.Millisecond,
		9994 * time.Millisecond:              9990 * time.Millisecond,
		10*time.Second + 49*time.Millisecond: 10 * time.Second,
		10*time.Second + 51*time.Millisecond: 10100 * time.Millisecond,
		2*time.Minute + 345*time.Millisecond: 2*time.Minute + 300*time.Millisecond,
	} {
		assert.Equal(t, want, roundDuration(d), "%s", d)
	}
	assert.Equal(t, "999.9 kB", byteSize(999_949))
	assert.Equal(t, "1.0 MB", byteSize(1_000_000))
	assert.Equal(t, "0.0 kB", byteSize(0))
}
