#!/usr/bin/env bash
# scheduler/slurm: find one job's state in a squeue listing, through Slurm.Status (which parses the whole
# `squeue -o` listing it asks for) against encoding/json of `squeue --json` for the same jobs into structs (how a
# Go wrapper of squeue --json reads it) plus a search, each as a whole process (the squeuebench program) through
# the harness (lib/harness.sh). Every process does K lookups, each reading the file again, so that parsing
# outweighs process start-up (1k jobs: K=100, 10k: K=10, 100k: K=1); the per-lookup figure is the process's wall
# time / K, start-up included. Input: 1k, 10k and 100k jobs made by repeating the jobs of a `squeue --json`
# document captured from Slurm 22.05.8 (testdata/squeue.json: running, held, completed jobs and an array task)
# with new ids and names; the JSON keeps every field squeue prints (3.5 KB a job). Slurm itself is not run.
# Target: < 100 ms per lookup at 10k jobs.
# Env: BENCH_RUNS (see the harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

work=$(mktemp -d)
bench_on_exit "rm -rf '$work'"
go build -o "$work/squeuebench" ./scheduler/slurm/internal/squeuebench

for spec in 1000:100 10000:10 100000:1; do
	jobs=${spec%:*} repeat=${spec#*:}
	"$work/squeuebench" gen -from scheduler/slurm/testdata/squeue.json "$jobs" "$work/$jobs.txt" "$work/$jobs.json"
	BENCH_OURS=("$work/squeuebench" ours -repeat "$repeat" "$work/$jobs.txt")
	BENCH_PEER=("$work/squeuebench" peer -repeat "$repeat" "$work/$jobs.json")
	bench_compare section=slurm input="real-$jobs" ours=slurm.Status peer=encoding-json jobs="$jobs" repeat="$repeat" \
		listing_bytes="$(bench_size "$work/$jobs.txt")" json_bytes="$(bench_size "$work/$jobs.json")"
	printf '  per lookup (median wall / %d): slurm.Status %.2f ms, encoding/json %.2f ms\n' "$repeat" \
		"$(awk -v t="${BENCH[wall_ours_med]}" -v k="$repeat" 'BEGIN {print t * 1000 / k}')" \
		"$(awk -v t="${BENCH[wall_peer_med]}" -v k="$repeat" 'BEGIN {print t * 1000 / k}')"
done
