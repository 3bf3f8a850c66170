package backoff

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestSleep(t *testing.T) {
	require.NoError(t, Sleep(t.Context(), time.Millisecond))
	require.NoError(t, Sleep(t.Context(), 0))

	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.Canceled, "an ended context ends the wait")
	require.ErrorIs(t, Sleep(ctx, 0), context.Canceled)

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.DeadlineExceeded)
}

func TestExponential(t *testing.T) {
	tests := []struct {
		name           string
		base, limit    time.Duration
		attempt        int
		atLeast, below time.Duration
	}{
		{name: "first", base: time.Second, limit: time.Minute, attempt: 1, atLeast: time.Second, below: 1200 * time.Millisecond},
		{name: "doubles", base: time.Second, limit: time.Minute, attempt: 3, atLeast: 4 * time.Second, below: 4800 * time.Millisecond},
		{name: "capped", base: time.Second, limit: 30 * time.Second, attempt: 64, atLeast: 30 * time.Second, below: 36 * time.Second},
		{name: "base above the limit", base: time.Hour, limit: time.Second, attempt: 1, atLeast: time.Second, below: 1200 * time.Millisecond},
		{name: "attempt zero is the first", base: time.Second, limit: time.Minute, attempt: 0, atLeast: time.Second, below: 1200 * time.Millisecond},
		{name: "no base", base: 0, limit: time.Minute, attempt: 5, atLeast: 0, below: 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				got := Exponential(tt.base, tt.limit, tt.attempt)
				assert.GreaterOrEqual(t, got, tt.atLeast)
				assert.Less(t, got, tt.below)
			}
		})
	}
}
