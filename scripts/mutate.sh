#!/usr/bin/env bash
# Mutation testing on demand (not part of CI): for each package, change one line at a time
# (a flipped comparison or && / ||, + and - swapped, a returned error replaced by nil, a deleted statement,
# a negated if) and report the changes the package's tests do not notice. The tree is never modified:
# each mutant is compiled through go test -overlay.
#
#   scripts/mutate.sh [-n 60] [-seed 1] [-integration] [-skip REGEXP] [-at FILE:LINE:COL,...] [-v] PKG...
#
# -n samples that many mutants per package (default: all), -seed picks the sample (default 1),
# -integration runs the tests with HPCSHIP_INTEGRATION=1, so integration tests count; start the services
# they need first (see scripts/services/). -skip leaves out tests too slow to run for every mutant (the
# score is then a lower bound); -at re-runs only the given mutants of the sample, e.g. a run's survivors.
# Run scripts/mutate.sh -h for the other flags.
set -euo pipefail
cd "$(dirname "$0")/.."
exec go run ./scripts/mutate "$@"
