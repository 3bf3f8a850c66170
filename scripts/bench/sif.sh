#!/usr/bin/env bash
# sif: OCI image → SIF. hpcship's singularity.Build (layers merged in memory, streamed into the squashfs
# writer at zlib level 6, written in place into the SIF) against the pipeline Apptainer runs for an unprivileged
# `apptainer build x.sif docker://…`, from Debian parts: `umoci unpack --rootless` to disk, `mksquashfs rootfs
# -noappend -comp gzip -all-root` (level 9), then the SIF wrap with sylabs/sif (sifbench wrap). Inputs, each an
# OCI layout read in place by both sides:
#   generated  4 layers, ≈1 GB uncompressed (20,000 small files, a toolchain tree, 300 MB of logs, 250 MB random,
#              overwrites, whiteouts and an opaque directory);
#   real       the real tree (bench_real_tree: the Go toolchain and /usr/lib/<multiarch>), one layer each.
# After the timed runs on the generated image, one untimed run per side samples the disk space its temporary
# files take (every 0.2 s).
# Env: BENCH_DIR (default: a temporary directory; needs ≈6 GB), BENCH_RUNS (default 3),
# SIF_INPUTS (default "generated real").
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh
install_packages umoci squashfs-tools

work=${BENCH_DIR:-$(mktemp -d)}
[ -n "${BENCH_DIR:-}" ] || bench_on_exit "rm -rf '$work'"
mkdir -p "$work"
go build -o "$work/sifbench" ./singularity/internal/cmd/sifbench

# peer_script LAYOUT: writes the peer pipeline for the image in LAYOUT to $work/peer.sh.
peer_script() {
	cat >"$work/peer.sh" <<PEER
#!/bin/sh
set -e
umoci unpack --rootless --image "$1:bench" "$work/bundle" >/dev/null
mksquashfs "$work/bundle/rootfs" "$work/peer.sqfs" -noappend -comp gzip -all-root -quiet -no-progress
"$work/sifbench" wrap "$1" "$work/peer.sqfs" "$work/peer.sif"
chmod -R u+rwX "$work/bundle"
rm -rf "$work/bundle" "$work/peer.sqfs"
PEER
	chmod +x "$work/peer.sh"
}
mkdir -p "$work/out"
# reset SIDE: removes what the side's last run left, keeping the other side's output for the check below.
reset() {
	case $1 in
	ours) rm -rf "$work/out"/* ;;
	*) rm -rf "$work/bundle" "$work/peer.sqfs" "$work/peer.sif" ;;
	esac
}
# Both SIFs hold the same tree (ours adds /.singularity.d and its mount points and links).
list() { unsquashfs -o "$("$work/sifbench" offset "$1")" -lln "$1" | awk 'NR > 3 {if ($1 ~ /^d/) $3 = "-"; print $1, $2, $3, $NF}' | sort; }

for input in ${SIF_INPUTS:-generated real}; do
	case $input in
	generated)
		layout=$work/layout
		if [ ! -f "$layout/index.json" ]; then
			log "sif bench: generating the image in $layout"
			rm -rf "$layout"
			"$work/sifbench" gen "$layout" "$(go env GOROOT)"
		fi
		;;
	real)
		layout=$work/layout-real
		bench_real_tree "$work/real"
		if [ ! -f "$layout/index.json" ]; then
			log "sif bench: writing the real tree as an image in $layout"
			rm -rf "$layout"
			"$work/sifbench" real "$layout" "$work/real" "${BENCH_REAL_DIRS[@]#"$work/real/"}"
		fi
		;;
	*)
		echo "sif bench: unknown input $input" >&2
		exit 2
		;;
	esac
	printf 'sif bench: %s image of %d bytes compressed, %s cores, load %s\n' "$input" "$(bench_size "$layout")" "$(nproc)" "$(cut -d' ' -f1-3 /proc/loadavg)"
	bench_warm "$layout"
	peer_script "$layout"
	ours_cmd=("$work/sifbench" build "$layout" "$work/out/ours.sif")
	peer_cmd=("$work/peer.sh")
	BENCH_OURS=("${ours_cmd[@]}")
	BENCH_PEER=("${peer_cmd[@]}")
	bench_compare section=sif input="$input" ours=hpcship-l6 peer=umoci+mksquashfs-l9 \
		ours_out="$work/out/ours.sif" peer_out="$work/peer.sif" prepare=reset

	list "$work/out/ours.sif" >"$work/ours.list"
	list "$work/peer.sif" >"$work/peer.list"
	missing=$(comm -13 "$work/ours.list" "$work/peer.list" | grep -v -e ' squashfs-root$' || true)
	if [ -n "$missing" ]; then
		echo "sif bench: entries of the peer's SIF that ours lacks or stores differently:" >&2
		echo "$missing" | head -20 >&2
		exit 1
	fi
	[ "$input" = generated ] || continue
	wall_ratio=${BENCH[wall_ratio]} rss_ours=${BENCH[rss_ours_med]}
	generated_cmd=("${ours_cmd[@]}")
	cp "$work/peer.sh" "$work/peer-generated.sh"
done
[ -n "${generated_cmd:-}" ] || exit 0

# peak_disk CMD...: runs CMD and prints the most bytes its temporary files took at any sample.
peak_disk() {
	local peak=0 s
	"$@" &
	local pid=$!
	while kill -0 "$pid" 2>/dev/null; do
		s=$(du -sb --apparent-size "$work/out" "$work/bundle" "$work/peer.sqfs" "$work/peer.sif" 2>/dev/null | awk '{t += $1} END {print t + 0}')
		((s > peak)) && peak=$s
		sleep 0.2
	done
	wait "$pid"
	echo "$peak"
}
# Each side starts with both sides' outputs gone: the timed runs leave the last input's SIFs behind, and peak_disk
# counts every output path.
reset ours
reset peer
disk_ours=$(peak_disk "${generated_cmd[@]}")
size_ours=$(bench_size "$work/out/ours.sif")
reset ours
reset peer
disk_peer=$(peak_disk "$work/peer-generated.sh")
size_peer=$(bench_size "$work/peer.sif")
printf 'sif bench: peak disk ours %d bytes (%.2fx its SIF), peer %d bytes (%.2fx its SIF); wall ours/peer %.3f; rss ours %s MB\n' \
	"$disk_ours" "$(awk -v a="$disk_ours" -v b="$size_ours" 'BEGIN {print a / b}')" \
	"$disk_peer" "$(awk -v a="$disk_peer" -v b="$size_peer" 'BEGIN {print a / b}')" \
	"$(awk -v r="$wall_ratio" 'BEGIN {print 1 / r}')" "$rss_ours"
echo "BENCH section=sif-disk input=generated-1GB ours=hpcship-l6 peer=umoci+mksquashfs-l9 disk_ours=$disk_ours disk_peer=$disk_peer sif_ours=$size_ours sif_peer=$size_peer"
