#!/usr/bin/env bash
# Benchmarks that run hpcship and the named peer tool as whole processes on the same inputs, through one harness
# (scripts/bench/lib/harness.sh: alternated runs, min and median, load average, output sizes; see
# scripts/bench/README). At the end it repeats every section's machine-readable `BENCH …` summary line.
# Usage: scripts/bench.sh [section ...]   (default: every scripts/bench/*.sh, in name order)
# Environment: BENCH_RUNS (runs per side and comparison, default 3); BENCH_LOG (keep the full output in this file).
# Each section is a script of its own; it installs the peer it compares against (as root) and prints its results.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
	shopt -s nullglob
	for f in scripts/bench/*.sh; do
		sections+=("$(basename "$f" .sh)")
	done
fi
out=${BENCH_LOG:-$(mktemp)}
[ -n "${BENCH_LOG:-}" ] || trap 'rm -f "$out"' EXIT
: >"$out"
printf 'bench: %s, %d cores, %s, load average %s, runs %s\n' "$(uname -r)" "$(nproc)" "$(go version | cut -d' ' -f3)" \
	"$(cut -d' ' -f1-3 /proc/loadavg)" "${BENCH_RUNS:-3}" | tee -a "$out"
for s in "${sections[@]}"; do
	log "bench: $s"
	bash "scripts/bench/$s.sh" 2>&1 | tee -a "$out"
done
echo "summary lines:"
grep '^BENCH ' "$out" || true
