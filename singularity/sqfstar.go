package singularity

import (
	"context"
	"errors"
	"os"
)

func packWithSqfstar(ctx context.Context, f *os.File, off int64, plan *rootPlan, stats *buildStats, o *options) (int64, error) {
	return 0, errors.New("not yet")
}
