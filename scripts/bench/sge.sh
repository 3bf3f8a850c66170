#!/usr/bin/env bash
# scheduler/sge: parsing `qstat -xml` listings of 1k, 10k and 100k jobs, against encoding/xml into structs
# (how Go qstat wrappers usually read it) on the same generated input, in one run. Target: < 100 ms for 10k.
set -euo pipefail
cd "$(dirname "$0")/../.."
go test -run '^$' -bench '^BenchmarkParseQstat$' -benchtime 10x -count 1 ./scheduler/sge/ |
	awk '
	/^BenchmarkParseQstat\// {
		name = $1; sub(/^BenchmarkParseQstat\//, "", name); sub(/-[0-9]+$/, "", name)
		ns[name] = $3
		printf "%-30s %10.2f ms  %s MB/s\n", name, $3 / 1e6, $5
	}
	END {
		split("1000 10000 100000", sizes, " ")
		for (i = 1; i <= 3; i++) if ((n = "jobs=" sizes[i]) in ns && ("encoding-xml/" n) in ns)
			printf "qstat -xml, %s: hpcship %.2f ms, encoding/xml %.2f ms, %.1fx faster\n", n, ns[n] / 1e6, ns["encoding-xml/" n] / 1e6, ns["encoding-xml/" n] / ns[n]
	}'
