#!/usr/bin/env bash
# imagebuild RUN: the overhead of one trivial step (`RUN true`) with imagebuild's NamespaceRunner on a base of 20,000
# small files (plus busybox), against `unshare -r chroot ROOT /bin/true` on an already unpacked copy of the same
# tree. Ours is a whole build (read the base from an OCI layout, run the step in new user, mount and pid namespaces,
# compare, write the image) without the build cache, so the step runs every time. Two comparisons: "kept", where
# an earlier build left the unpacked root in the cache directory (what every build after the first on the same
# base sees), and "first", where the cache directory is emptied before every run, so the build unpacks the base.
# Checks that every run gives the same image digest.
# Env: BENCH_RUNS (default 3), BENCH_RUN_FILES (default 20000).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh
install_packages busybox-static util-linux

work=$(mktemp -d)
bench_on_exit "rm -rf '$work'"
files=${BENCH_RUN_FILES:-20000}
go build -o "$work/runbench" ./imagebuild/internal/cmd/runbench
"$work/runbench" tree "$work/tree" "$files" /bin/busybox
"$work/runbench" base "$work/tree" "$work/layout"
cp -a "$work/tree" "$work/rootfs"
printf 'base: %d entries, %d bytes\n' "$(find "$work/tree" | wc -l)" "$(bench_size "$work/tree")"
bench_warm "$work/layout" "$work/rootfs"
"$work/runbench" run -cache "$work/cache" "$work/layout" true >"$work/digests"

keep_digest() { # appends the digest of our previous run
	[ "$1" != ours ] || [ ! -f "$work/digest" ] || { cat "$work/digest" >>"$work/digests" && rm -f "$work/digest"; }
}
BENCH_PEER=(unshare -r chroot "$work/rootfs" /bin/true)

BENCH_OURS=("$work/runbench" run -cache "$work/cache" -digest "$work/digest" "$work/layout" true)
bench_compare section=imagebuild-run input="files-$files" ours=hpcship-kept peer=unshare-chroot prepare=keep_digest
kept=${BENCH[wall_ours_med]} kept_ratio=${BENCH[wall_ratio]} peer=${BENCH[wall_peer_med]}

BENCH_PEER=(unshare -r chroot "$work/rootfs" /bin/true)
first_build() { keep_digest "$1" && { [ "$1" != ours ] || rm -rf "$work/fcache"; }; }
BENCH_OURS=("$work/runbench" run -cache "$work/fcache" -digest "$work/digest" "$work/layout" true)
bench_compare section=imagebuild-run input="files-$files" ours=hpcship-first peer=unshare-chroot prepare=first_build
first=${BENCH[wall_ours_med]} first_ratio=${BENCH[wall_ratio]}
keep_digest ours

n=$(sort -u "$work/digests" | wc -l)
printf '  %d builds, %d distinct digest(s): %s\n' "$(wc -l <"$work/digests")" "$n" "$(sort -u "$work/digests" | tr '\n' ' ')"
if [ "$n" != 1 ]; then
	echo "imagebuild-run bench: builds gave different digests" >&2
	exit 1
fi
awk -v k="$kept" -v kr="$kept_ratio" -v f="$first" -v fr="$first_ratio" -v p="$peer" -v n="$files" 'BEGIN {
	printf "imagebuild-run: RUN true on %d files: %.3f s with the kept root (target <= 2 s), %.3f s unpacking it first; unshare -r chroot %.3f s\n", n, k, f, p
	printf "imagebuild-run: ratio (unshare / ours): %.4g kept, %.4g first; ours takes %.1fx and %.1fx its time\n", kr, fr, 1 / kr, 1 / fr
}'
