#!/usr/bin/env bash
# scheduler/slurm: parsing the status of 1k, 10k and 100k jobs from the `squeue -o` format Status reads,
# against encoding/json of `squeue --json` (Slurm 22.05) for the same jobs, in one run, best of 3. Target: < 100 ms
# for 10k. The 100k row has no peer: 100k jobs of squeue --json take seconds per parse.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^BenchmarkParseStatus$' -benchtime 10x -count 3 ./scheduler/slurm/ |
	awk '
	/^BenchmarkParseStatus\// {
		name = $1; sub(/^BenchmarkParseStatus\//, "", name); sub(/-[0-9]+$/, "", name)
		if (!(name in ns) || $3 < ns[name]) ns[name] = $3
		printf "%-30s %10.2f ms  %s MB/s\n", name, $3 / 1e6, $5
	}
	END {
		split("1000 10000 100000", sizes, " ")
		for (i = 1; i <= 3; i++) if ((n = "jobs=" sizes[i]) in ns && ("encoding-json/" n) in ns)
			printf "squeue status, %s: hpcship %.2f ms, encoding/json of squeue --json %.2f ms, %.1fx faster\n", n, ns[n] / 1e6, ns["encoding-json/" n] / 1e6, ns["encoding-json/" n] / ns[n]
		if ("jobs=100000" in ns) printf "squeue status, jobs=100000: hpcship %.2f ms\n", ns["jobs=100000"] / 1e6
	}'
