// Package backoff holds the waits of hpcship's retry loops: a sleep that ends with its
// context, and an exponential backoff with jitter that is capped, so that a retry never
// outlasts the caller's context nor waits without bound.
package backoff

import (
	"context"
	"math"
	"math/rand/v2"
	"time"
)

// Sleep waits for d or until ctx ends, whichever comes first, and returns ctx's error
// if it ended. A context that has already ended returns its error at once, whatever d,
// and so does a d of zero or less (nil if ctx is live).
func Sleep(ctx context.Context, d time.Duration) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	// time.After fires at once for d <= 0; since Go 1.23 its timer is collected once unreferenced, so an
	// early return leaves nothing behind.
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}

// Exponential returns the wait after try number attempt (counted from 1) has failed:
// base doubled for every earlier try, capped at limit, plus up to a fifth of that as
// jitter, so that clients that failed together do not retry together. A base or a limit
// of zero or less gives no wait. Any limit works, up to the largest Duration ("no limit"):
// neither the doubling nor the jitter overflows.
func Exponential(base, limit time.Duration, attempt int) time.Duration {
	wait := min(base, limit)
	if wait <= 0 {
		return 0
	}
	// Double while that stays within the limit (which it cannot overflow), then cap.
	for i := 1; i < attempt; i++ {
		if wait > limit/2 {
			wait = limit
			break
		}
		wait *= 2
	}
	jitter := time.Duration(rand.Int64N(int64(wait)/5 + 1))
	return wait + min(jitter, math.MaxInt64-wait)
}
