package backoff

import (
	"context"
	"math"
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
	for range 100 {
		// Not a race between the context and a zero timer: an ended context always wins.
		require.ErrorIs(t, Sleep(ctx, 0), context.Canceled)
		require.ErrorIs(t, Sleep(ctx, -time.Second), context.Canceled)
		require.ErrorIs(t, Sleep(ctx, 1), context.Canceled)
	}

	ctx, cancel = context.WithTimeout(t.Context(), 10*time.Millisecond)
	defer cancel()
	require.ErrorIs(t, Sleep(ctx, time.Hour), context.DeadlineExceeded)
}

// TestExponentialJitter checks that the jitter is spread over up to a fifth of the wait, not a fixed offset.
func TestExponentialJitter(t *testing.T) {
	seen := map[time.Duration]bool{}
	for range 200 {
		seen[Exponential(time.Second, time.Minute, 1)] = true
	}
	assert.Greater(t, len(seen), 100, "waits after the same failure differ")
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
		{name: "negative base", base: -time.Second, limit: time.Minute, attempt: 1, atLeast: 0, below: 1},
		{name: "no base, no limit", base: 0, limit: -time.Second, attempt: 1, atLeast: 0, below: 1},
		{name: "no limit", base: time.Second, limit: 0, attempt: 1, atLeast: 0, below: 1},
		{name: "negative limit", base: time.Second, limit: -time.Second, attempt: 3, atLeast: 0, below: 1},
		{name: "one nanosecond has no room for jitter", base: 1, limit: time.Minute, attempt: 1, atLeast: 1, below: 2},
		{name: "second attempt", base: time.Second, limit: time.Minute, attempt: 2, atLeast: 2 * time.Second, below: 2400 * time.Millisecond},
		{name: "reaches the limit exactly", base: time.Second, limit: 4 * time.Second, attempt: 3, atLeast: 4 * time.Second, below: 4800 * time.Millisecond},
		{name: "one doubling short of the limit", base: time.Second, limit: 5 * time.Second, attempt: 3, atLeast: 4 * time.Second, below: 4800 * time.Millisecond},
		{name: "one doubling past the limit", base: time.Second, limit: 3 * time.Second, attempt: 3, atLeast: 3 * time.Second, below: 3600 * time.Millisecond},
		// In nanoseconds the jitter (a fifth, rounded down) is zero, so these pin the doubling exactly.
		{name: "a doubling that lands on half an odd limit", base: 1, limit: 5, attempt: 3, atLeast: 4, below: 5},
		{name: "the doubling after it is capped", base: 1, limit: 5, attempt: 4, atLeast: 5, below: 7},
		{name: "a wait of exactly half the limit doubles to it", base: 2, limit: 4, attempt: 2, atLeast: 4, below: 5},
		{name: "no limit, first attempt", base: time.Second, limit: math.MaxInt64, attempt: 1, atLeast: time.Second, below: 1200 * time.Millisecond},
		{name: "no limit, late attempt", base: time.Second, limit: math.MaxInt64, attempt: 30, atLeast: 1 << 29 * time.Second, below: 1 << 29 * time.Second * 6 / 5},
		{name: "no limit reached by doubling", base: time.Second, limit: math.MaxInt64, attempt: 100, atLeast: math.MaxInt64, below: math.MaxInt64},
		{name: "the last attempt there can be", base: time.Second, limit: time.Minute, attempt: math.MaxInt, atLeast: time.Minute, below: 72 * time.Second},
		{name: "a base of the largest duration", base: math.MaxInt64, limit: math.MaxInt64, attempt: 1, atLeast: math.MaxInt64, below: math.MaxInt64},
		{name: "a limit past the middle of the range", base: math.MaxInt64/2 + 1, limit: math.MaxInt64/2 + 2, attempt: 2, atLeast: math.MaxInt64/2 + 2, below: math.MaxInt64/2 + 2 + (math.MaxInt64/2+2)/5 + 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for range 100 {
				got := Exponential(tt.base, tt.limit, tt.attempt)
				assert.GreaterOrEqual(t, got, tt.atLeast)
				if tt.below == math.MaxInt64 {
					assert.Equal(t, tt.below, got, "the wait saturates at the largest duration")
				} else {
					assert.Less(t, got, tt.below)
				}
			}
		})
	}
}
