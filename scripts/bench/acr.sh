#!/usr/bin/env bash
# acr: push an image stored as an OCI layout to a local docker-registry (distribution 2.8) with acr.Push (the
# benchpush program, a whole process) and with `skopeo copy oci:… docker://…`, through the harness
# (lib/harness.sh), each run on a fresh, empty registry (one per side, reset untimed before every run). Inputs:
#   synthetic  5 layers x 100 MB, each half random bytes and half repetitive text, gzip'd once (LAYERS, LAYER_MB);
#   real       the real tree (see bench_real_tree): one layer of the Go toolchain, one of the shared libraries.
# Comparisons: acr.Push with its default 4 blobs at once, and with one at a time (skopeo 1.9 uploads the blobs of
# one image one after another, so that is the like-for-like figure), against skopeo; then both push the unchanged
# image again to the registry that already holds it. That re-push is fast for acr.Push because go-containerregistry
# makes one request, a manifest HEAD by tag, and stops when the registry's digest equals the local one; it does not
# check that the registry still holds the config and layer blobs (skopeo HEADs every blob, then puts the manifest).
# After the fresh pushes, both registries must serve the layout's manifest digest and every blob with its digest.
# Env: LAYERS (default 5), LAYER_MB (100), BENCH_RUNS (see the harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

install_packages docker-registry skopeo curl

work=$(mktemp -d)
cleanup() {
	rm -rf "$work"
}
bench_on_exit cleanup

# SIDE's registry, emptied and restarted (lib/harness.sh).
fresh() { bench_fresh_registry "$1" "$work/registry-$1"; }

# check_pushed SIDE LAYOUT: SIDE's registry serves LAYOUT's manifest under bench/img:latest, and every blob it
# names, with the right digests.
check_pushed() {
	local side=$1 layout=$2 url="http://127.0.0.1:${reg_port[$1]}/v2/bench/img" want got d
	want=$(grep -o 'sha256:[0-9a-f]\{64\}' "$layout/index.json" | head -n 1)
	got=$(curl -sf -H 'Accept: application/vnd.oci.image.manifest.v1+json' "$url/manifests/latest" | sha256sum | cut -d' ' -f1)
	if [ "sha256:$got" != "$want" ]; then
		echo "acr bench: $side's registry serves manifest sha256:$got, want $want" >&2
		exit 1
	fi
	while read -r d; do
		got=$(curl -sf "$url/blobs/$d" | sha256sum | cut -d' ' -f1)
		if [ "sha256:$got" != "$d" ]; then
			echo "acr bench: $side's registry serves blob $d as sha256:$got" >&2
			exit 1
		fi
	done < <(grep -o 'sha256:[0-9a-f]\{64\}' "$layout/blobs/sha256/${want#sha256:}")
	echo "  $side: the registry serves manifest $want and its blobs, digests checked"
}

go build -o "$work/benchpush" ./acr/internal/benchpush
log "acr bench: generating ${LAYERS:-5} x ${LAYER_MB:-100} MB layers"
"$work/benchpush" -layout "$work/synthetic-oci" -layers "${LAYERS:-5}" -layer-size $((${LAYER_MB:-100} << 20)) generate
bench_real_tree "$work/real"
log "acr bench: generating the real tree's image"
"$work/benchpush" -layout "$work/real-oci" -root "$work/real" generate "${BENCH_REAL_DIRS[@]}"
rm -rf "$work/real"
skopeo_version=$(skopeo --version | awk '{print $3}')
reg_port[ours]=$(bench_free_port)
reg_port[peer]=$(bench_free_port)
fresh ours
fresh peer

for input in synthetic real; do
	layout=$work/$input-oci
	bench_warm "$layout"
	bytes=$(bench_size "$layout/blobs")
	printf 'acr/%s: %d blobs, %d bytes\n' "$input" "$(find "$layout/blobs" -type f | wc -l)" "$bytes"
	for jobs in 4 1; do
		BENCH_OURS=("$work/benchpush" -layout "$layout" -jobs "$jobs" push "127.0.0.1:${reg_port[ours]}/bench/img:latest")
		BENCH_PEER=(skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout" "docker://127.0.0.1:${reg_port[peer]}/bench/img:latest")
		bench_compare section=acr input="$input" ours="hpcship-j$jobs" peer=skopeo prepare=fresh \
			ours_out="$work/registry-ours/data" peer_out="$work/registry-peer/data" bytes="$bytes" comparison=push peer_version="$skopeo_version"
		printf '  throughput (median): hpcship %.1f MB/s, skopeo %.1f MB/s\n' \
			"$(awk -v b="$bytes" -v t="${BENCH[wall_ours_med]}" 'BEGIN {print b / 1e6 / t}')" \
			"$(awk -v b="$bytes" -v t="${BENCH[wall_peer_med]}" 'BEGIN {print b / 1e6 / t}')"
		check_pushed ours "$layout"
		check_pushed peer "$layout"
	done
	# The unchanged image again, to the registries that hold it since the last push above.
	BENCH_OURS=("$work/benchpush" -layout "$layout" push "127.0.0.1:${reg_port[ours]}/bench/img:latest")
	BENCH_PEER=(skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$layout" "docker://127.0.0.1:${reg_port[peer]}/bench/img:latest")
	bench_compare section=acr input="$input" ours=hpcship-repush peer=skopeo-repush \
		ours_out="$work/registry-ours/data" peer_out="$work/registry-peer/data" bytes="$bytes" comparison=repush peer_version="$skopeo_version" \
		ours_check=manifest-HEAD-by-tag
	rm -rf "$layout"
done
