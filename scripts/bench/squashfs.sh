#!/usr/bin/env bash
# squashfs: our writer (internal/squashfs, fed entry by entry by sqfsbench) against
# `mksquashfs DIR IMG -noappend -comp gzip` on the same generated ≈1 GB tree (20,000 small text
# files, compressible logs, a duplicate, random files), at our default level (6) and at level 9
# (mksquashfs' default, what Apptainer runs). Both use every core. Prints wall and CPU times, their
# ratios (mksquashfs / ours), the size ratio (ours / mksquashfs) and peak RSS of each. On a shared
# machine the wall times depend on the load (printed); the CPU times much less.
# Env: BENCH_DIR (default: a temporary directory; needs ≈3 GB).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

install_packages squashfs-tools time

work=${BENCH_DIR:-$(mktemp -d)}
[ -n "${BENCH_DIR:-}" ] || trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
go build -o "$work/sqfsbench" ./internal/squashfs/cmd/sqfsbench
if [ ! -d "$work/tree" ]; then
	log "squashfs bench: generating the tree in $work/tree"
	"$work/sqfsbench" gen "$work/tree"
fi
tree_bytes=$(du -sb "$work/tree" | cut -f1)
tree_files=$(find "$work/tree" -type f | wc -l)
cat "$work/tree/large/"* "$work/tree/small/"*/* >/dev/null # warm the page cache for both tools

calc() { awk "BEGIN {print $1}"; }

# measure NAME CMD...: runs CMD under /usr/bin/time; sets wall (s), rss (KiB), cpu (user+sys s).
measure() {
	local out="$work/time.$1"
	shift
	/usr/bin/time -v -o "$out" "$@" >/dev/null
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {n = split($2, t, ":"); s = 0; for (i = 1; i <= n; i++) s = s * 60 + t[i]; print s}' "$out")
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$out")
	cpu=$(awk -F': ' '/User time/ {u = $2} /System time/ {s = $2} END {print u + s}' "$out")
}

printf 'squashfs bench: %d files, %.0f MB, %d cores, load average %s\n' "$tree_files" "$(calc "$tree_bytes / 1000000")" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
printf '%-7s %-12s %9s %9s %12s %10s\n' level tool wall_s cpu_s image_MB rss_MB
for level in 6 9; do
	measure "mk$level" mksquashfs "$work/tree" "$work/mk$level.sqfs" -noappend -comp gzip -Xcompression-level "$level" -quiet -no-progress
	mk_wall=$wall mk_rss=$rss mk_cpu=$cpu
	mk_size=$(stat -c %s "$work/mk$level.sqfs")
	measure "our$level" "$work/sqfsbench" pack -level "$level" "$work/tree" "$work/our$level.sqfs"
	our_wall=$wall our_rss=$rss our_cpu=$cpu
	our_size=$(stat -c %s "$work/our$level.sqfs")
	# Both images must list the same entries.
	if ! cmp -s <(unsquashfs -lln "$work/mk$level.sqfs" | awk '{print $1, $2, $NF}' | sort) \
		<(unsquashfs -lln "$work/our$level.sqfs" | awk '{print $1, $2, $NF}' | sort); then
		echo "squashfs bench: images of level $level list different entries" >&2
		exit 1
	fi
	printf '%-7s %-12s %9.1f %9.1f %12.1f %10.1f\n' "$level" mksquashfs "$mk_wall" "$mk_cpu" "$(calc "$mk_size / 1000000")" "$(calc "$mk_rss / 1024")"
	printf '%-7s %-12s %9.1f %9.1f %12.1f %10.1f\n' "$level" hpcship "$our_wall" "$our_cpu" "$(calc "$our_size / 1000000")" "$(calc "$our_rss / 1024")"
	printf '%-7s %-12s wall x%.2f, cpu x%.2f (mksquashfs / ours: higher is faster), size x%.4f (ours / mksquashfs)\n' "$level" ratio \
		"$(calc "$mk_wall / $our_wall")" "$(calc "$mk_cpu / $our_cpu")" "$(calc "$our_size / $mk_size")"
	eval "mk${level}_wall=$mk_wall mk${level}_size=$mk_size our${level}_wall=$our_wall our${level}_size=$our_size"
done
# What an Apptainer user gets (mksquashfs -comp gzip, level 9) against our default (level 6).
printf 'default vs default: hpcship level 6 is x%.2f as fast as mksquashfs -comp gzip (level 9), image x%.4f the size\n' \
	"$(calc "$mk9_wall / $our6_wall")" "$(calc "$our6_size / $mk9_size")"
