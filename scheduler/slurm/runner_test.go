package slurm

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestLocalRunnerKillsTheWholeCommand: when ctx ends, a command whose child holds its output (as runuser's,
// sudo's or ssh's child does) must not keep Run waiting until the child exits.
func TestLocalRunnerKillsTheWholeCommand(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	start := time.Now()
	_, err := LocalRunner{}.Run(ctx, Command{Name: "sh", Args: []string{"-c", "sleep 120 & wait"}})
	require.ErrorIs(t, err, context.DeadlineExceeded)
	assert.Less(t, time.Since(start), 60*time.Second, "Run waited for the orphaned child")
}

// TestLocalRunnerDropsSbatchVariables: SBATCH_* in this process's environment would override the
// jobscript's directives, so commands never see them; Command.Env still reaches them.
func TestLocalRunnerDropsSbatchVariables(t *testing.T) {
	t.Setenv("SBATCH_JOB_NAME", "renamed")
	out, err := LocalRunner{}.Run(t.Context(), Command{Name: "sh", Args: []string{"-c", `echo "[${SBATCH_JOB_NAME:-}] $X"`},
		Env: []string{"X=kept"}})
	require.NoError(t, err)
	assert.Equal(t, "[] kept\n", string(out.Stdout))
}
