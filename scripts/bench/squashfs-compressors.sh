#!/usr/bin/env bash
# squashfs-compressors: what each compressor and level of singularity's WithCompression costs, in time and size.
# Our writer (internal/squashfs, as singularity.Build drives it; fed entry by entry by sqfsbench) against
# `mksquashfs DIR IMG -noappend -comp C -Xcompression-level N` with the same compressor and level, both on every
# core, through the harness (lib/harness.sh), on the real tree (the Go toolchain and /usr/lib/<multiarch>, see
# bench_real_tree). Our zstd levels map onto the four speeds of klauspost/compress's encoder (1–2 fastest, 3–5
# default, 6–9 better, 10–22 best), so the same number does not mean the same work as in libzstd.
# Every pair of images must list the same entries (`unsquashfs -lln`, as in squashfs.sh), and each of ours must
# report its compressor in `unsquashfs -s`.
# Env: BENCH_DIR (default: a temporary directory; needs ≈3 GB), BENCH_RUNS (see the harness),
# SQUASHFS_COMPRESSORS (default "gzip:1 gzip:6 gzip:9 zstd:3 zstd:9 zstd:15").
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

install_packages squashfs-tools

work=${BENCH_DIR:-$(mktemp -d)}
[ -n "${BENCH_DIR:-}" ] || bench_on_exit "rm -rf '$work'"
mkdir -p "$work"
go build -o "$work/sqfsbench" ./internal/squashfs/cmd/sqfsbench
bench_real_tree "$work/real"
mksquashfs -version | head -n 1
tree=$work/real
bench_warm "$tree"

listing() { unsquashfs -lln "$1" | tr -s ' ' | awk '/^d/ {$3 = "-"} {print}' | sort; }

table=()
for cl in ${SQUASHFS_COMPRESSORS:-gzip:1 gzip:6 gzip:9 zstd:3 zstd:9 zstd:15}; do
	comp=${cl%%:*} level=${cl#*:}
	ours=$work/ours-$comp$level.sqfs peer=$work/mk-$comp$level.sqfs
	BENCH_OURS=("$work/sqfsbench" pack -comp "$comp" -level "$level" "$tree" "$ours")
	BENCH_PEER=(mksquashfs "$tree" "$peer" -noappend -comp "$comp" -Xcompression-level "$level" -quiet -no-progress)
	bench_compare section=squashfs-compressors input=real ours="hpcship-$comp$level" peer="mksquashfs-$comp$level" \
		ours_out="$ours" peer_out="$peer" compressor="$comp" level="$level"
	if ! diff <(listing "$ours") <(listing "$peer") >"$work/listing.diff"; then
		echo "squashfs-compressors: $ours and $peer list different entries:" >&2
		head -n 20 "$work/listing.diff" >&2
		exit 1
	fi
	if ! unsquashfs -s "$ours" | grep -q "Compression $comp"; then
		echo "squashfs-compressors: unsquashfs -s does not report $comp for $ours" >&2
		exit 1
	fi
	table+=("$(printf '| %s %s | %.1f s | %.1f s | %.1f s | %.1f s | %.1f MB | %.1f MB | %+.1f %% |' "$comp" "$level" \
		"${BENCH[cpu_ours_med]}" "${BENCH[cpu_peer_med]}" "${BENCH[wall_ours_med]}" "${BENCH[wall_peer_med]}" \
		"$(awk -v s="${BENCH[size_ours]}" 'BEGIN {print s / 1e6}')" "$(awk -v s="${BENCH[size_peer]}" 'BEGIN {print s / 1e6}')" \
		"$(awk -v o="${BENCH[size_ours]}" -v p="${BENCH[size_peer]}" 'BEGIN {print (o - p) * 100 / p}')")")
	rm -f "$ours" "$peer"
done
echo "squashfs-compressors: medians of $BENCH_RUNS runs on the real tree, load $(cut -d' ' -f1-3 /proc/loadavg) at the end"
echo "| compressor, level | CPU ours | CPU mksquashfs | wall ours | wall mksquashfs | size ours | size mksquashfs | ours vs mksquashfs size |"
echo "|---|---|---|---|---|---|---|---|"
printf '%s\n' "${table[@]}"
