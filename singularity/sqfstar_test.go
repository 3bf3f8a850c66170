package singularity_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/hpcship/hpcship/singularity"
)

// TestSqfstarExitsEarly checks that a sqfstar that stops before reading its
// whole input (here, one that refuses its arguments) makes Build return its
// error instead of waiting forever to hand it the rest of the tar stream.
func TestSqfstarExitsEarly(t *testing.T) {
	fake := filepath.Join(t.TempDir(), "sqfstar")
	require.NoError(t, os.WriteFile(fake, []byte("#!/bin/sh\necho 'sqfstar: bad option' >&2\nexit 1\n"), 0o755))
	// More than the pipes between Build and sqfstar hold.
	big := strings.Repeat("x", 4<<20)
	img := image(t, v1Config(), layer(t, file("big", big, 0o644)))
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	out := filepath.Join(t.TempDir(), "x.sif")
	err := singularity.Build(ctx, img, out, singularity.WithMksquashfs(fake))
	require.NotErrorIs(t, err, context.DeadlineExceeded, "Build waited for a sqfstar that had exited")
	require.ErrorContains(t, err, "sqfstar: exit status 1: sqfstar: bad option")
	_, err = os.Stat(out)
	require.ErrorIs(t, err, os.ErrNotExist)
}
