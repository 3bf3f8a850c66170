#!/usr/bin/env bash
# rootfs: merge three layers of 20,000 small files (with replacements and whiteouts) and read every surviving
# file, with rootfs.Flatten + WalkContents and with ggcr's mutate.Extract, in one go test run; prints the medians
# of five runs and the ratio.
set -euo pipefail
cd "$(dirname "$0")/../.."
out=$(go test -run '^$' -bench '^BenchmarkFlatten$' -benchmem -count 5 ./internal/rootfs/)
echo "$out" | grep '^Benchmark'
echo "$out" | awk '
	/^BenchmarkFlatten\/rootfs/ { r[++nr] = $3 }
	/^BenchmarkFlatten\/ggcr-Extract/ { g[++ng] = $3 }
	function median(a, n,   i, j, t) {
		for (i = 1; i <= n; i++) for (j = i + 1; j <= n; j++) if (a[j] < a[i]) { t = a[i]; a[i] = a[j]; a[j] = t }
		return a[int((n + 1) / 2)]
	}
	END {
		if (nr == 0 || ng == 0) { print "rootfs bench: no results" > "/dev/stderr"; exit 1 }
		mr = median(r, nr); mg = median(g, ng)
		printf "rootfs: Flatten+WalkContents %.0f ms, mutate.Extract %.0f ms, ratio %.2f (below 1: rootfs faster)\n", mr / 1e6, mg / 1e6, mr / mg
	}'
