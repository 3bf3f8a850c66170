#!/usr/bin/env bash
# rootfs: merge an image's gzip'd layers (read from an OCI layout, as after a pull) and read every surviving file,
# with rootfs.Flatten + WalkContents and with go-containerregistry's mutate.Extract, each as a whole process (the
# rootfsbench program), through the harness (lib/harness.sh). Flatten reads each layer twice (metadata, then
# contents), so it decompresses twice what Extract decompresses once. Inputs:
#   synthetic  three layers of 20,000 small files; the upper two replace a tenth of the files and white out a tenth;
#   real       the real tree (see bench_real_tree): a layer of the Go toolchain, one of the shared libraries, and a
#              third that replaces every tenth regular file of them and whites out the next.
# Both merged trees must agree: path, type, mode, owner, size, link target and SHA-256 of every file.
# Env: BENCH_RUNS (see the harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

work=$(mktemp -d)
bench_on_exit "rm -rf '$work'"
go build -o "$work/rootfsbench" ./internal/rootfs/cmd/rootfsbench
"$work/rootfsbench" -layout "$work/synthetic" gen
bench_real_tree "$work/real"
"$work/rootfsbench" -layout "$work/real-oci" -root "$work/real" gen "${BENCH_REAL_DIRS[@]}"
rm -rf "$work/real"
mv "$work/real-oci" "$work/real"

for input in synthetic real; do
	layout=$work/$input
	bench_warm "$layout"
	printf 'rootfs/%s: %d layers, %d bytes compressed\n' "$input" "$(($(find "$layout/blobs" -type f | wc -l) - 2))" "$(bench_size "$layout/blobs")"
	BENCH_OURS=("$work/rootfsbench" -layout "$layout" flatten)
	BENCH_PEER=("$work/rootfsbench" -layout "$layout" extract)
	bench_compare section=rootfs input="$input" ours=rootfs-Flatten+WalkContents peer=ggcr-mutate.Extract
	"$work/rootfsbench" -layout "$layout" -list "$work/ours.list" flatten
	"$work/rootfsbench" -layout "$layout" -list "$work/peer.list" extract
	if ! diff "$work/ours.list" "$work/peer.list" >"$work/list.diff"; then
		echo "rootfs bench: the merged trees differ:" >&2
		head -n 20 "$work/list.diff" >&2
		exit 1
	fi
	echo "  merged trees agree: $(wc -l <"$work/ours.list") entries (path, type, mode, owner, size, link target, SHA-256)"
done
