#!/usr/bin/env bash
# scheduler/sge: find one job's state in a `qstat -xml` listing, through SGE.Status (which parses the whole listing)
# against encoding/xml into structs (how Go qstat wrappers usually read it) plus a search, each as a whole process
# (the qstatbench program) through the harness (lib/harness.sh). Every process does K lookups, each reading the
# file again, so that parsing outweighs process start-up (1k jobs: K=100, 10k: K=10, 100k: K=1); the per-lookup
# figure is the process's wall time / K, start-up included. Inputs:
#   synthetic  generated listings of 1k, 10k and 100k jobs (a quarter running, a tenth array tasks);
#   real       10k jobs made by repeating the jobs of a listing captured from SoGE 8.1.9 (testdata/qstat.xml:
#              running, array, held, error and pending jobs) with new numbers. Grid Engine itself is not run.
# Target: < 100 ms per lookup at 10k jobs.
# Env: BENCH_RUNS (see the harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

work=$(mktemp -d)
bench_on_exit "rm -rf '$work'"
go build -o "$work/qstatbench" ./scheduler/sge/internal/qstatbench

compare() {
	local input=$1 jobs=$2 repeat=$3 file=$4
	BENCH_OURS=("$work/qstatbench" ours -repeat "$repeat" "$file")
	BENCH_PEER=("$work/qstatbench" peer -repeat "$repeat" "$file")
	bench_compare section=sge input="$input" ours=sge.Status peer=encoding-xml jobs="$jobs" repeat="$repeat" \
		listing_bytes="$(bench_size "$file")"
	printf '  per lookup (median wall / %d): sge.Status %.2f ms, encoding/xml %.2f ms\n' "$repeat" \
		"$(awk -v t="${BENCH[wall_ours_med]}" -v k="$repeat" 'BEGIN {print t * 1000 / k}')" \
		"$(awk -v t="${BENCH[wall_peer_med]}" -v k="$repeat" 'BEGIN {print t * 1000 / k}')"
}

for spec in 1000:100 10000:10 100000:1; do
	jobs=${spec%:*}
	"$work/qstatbench" gen "$jobs" "$work/synthetic-$jobs.xml"
	compare "synthetic-$jobs" "$jobs" "${spec#*:}" "$work/synthetic-$jobs.xml"
done
"$work/qstatbench" gen -from scheduler/sge/testdata/qstat.xml 10000 "$work/real.xml"
compare real-10000 "$(grep -c '<job_list' "$work/real.xml")" 10 "$work/real.xml"
