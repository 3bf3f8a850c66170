#!/usr/bin/env bash
# acr: push one generated image (5 layers x 100 MB, half random, half text; gzip'd once, stored as an OCI layout)
# to a local docker-registry (distribution 2.8) with hpcship's acr.Push and with `skopeo copy oci:… docker://…`,
# each round on a fresh registry so nothing is already there, and print the throughput ratio. Then push the
# unchanged image again to the same registry with both and print how long that takes.
# skopeo 1.9 uploads the layers of one image one after another, acr.Push 4 at once (go-containerregistry's
# default), so acr.Push with one job at a time is measured too, as the like-for-like figure.
# Environment: ROUNDS (default 2), LAYERS (5), LAYER_MB (100).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

install_packages docker-registry skopeo bc

rounds=${ROUNDS:-2}
work=$(mktemp -d)
cleanup() {
	local f
	for f in "$work"/registry.*/pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null || true
	done
	rm -rf "$work"
}
trap cleanup EXIT

free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}

# start_registry prints the host:port of a new, empty docker-registry without authentication. It runs in a
# command substitution, so the registry's PID goes to a file for cleanup.
start_registry() {
	local port dir
	port=$(free_port)
	dir=$(mktemp -d "$work/registry.XXXX")
	cat >"$dir/config.yml" <<-YAML
		version: 0.1
		log: {level: error, accesslog: {disabled: true}}
		storage: {filesystem: {rootdirectory: $dir/data}, redirect: {disable: true}}
		http: {addr: 127.0.0.1:$port, secret: bench}
	YAML
	/usr/bin/docker-registry serve "$dir/config.yml" >"$dir/log" 2>&1 &
	echo $! >"$dir/pid"
	wait_for 10 bash -c "exec 3<>/dev/tcp/127.0.0.1/$port"
	echo "127.0.0.1:$port"
}

now() { date +%s.%N; }

log "acr bench: building and generating ${LAYERS:-5} x ${LAYER_MB:-100} MB layers"
go build -o "$work/benchpush" ./acr/internal/benchpush
"$work/benchpush" -layout "$work/oci" -layers "${LAYERS:-5}" -layer-size $((${LAYER_MB:-100} << 20)) generate

best_ours=
best_one=
best_skopeo=
bytes=0
for ((r = 1; r <= rounds; r++)); do
	reg=$(start_registry)
	t0=$(now)
	skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/oci" "docker://$reg/bench/skopeo:latest"
	t_skopeo=$(echo "$(now) - $t0" | bc)
	reg=$(start_registry)
	read -r t_one _ < <("$work/benchpush" -layout "$work/oci" -jobs 1 push "$reg/bench/hpcship:latest")
	reg=$(start_registry)
	read -r t_ours bytes < <("$work/benchpush" -layout "$work/oci" push "$reg/bench/hpcship:latest")
	printf 'round %d: hpcship %.2f s, hpcship 1 job %.2f s, skopeo %.2f s\n' "$r" "$t_ours" "$t_one" "$t_skopeo"
	if [ -z "$best_one" ] || (($(echo "$t_one < $best_one" | bc))); then best_one=$t_one; fi
	if [ -z "$best_skopeo" ] || (($(echo "$t_skopeo < $best_skopeo" | bc))); then best_skopeo=$t_skopeo; fi
	if [ -z "$best_ours" ] || (($(echo "$t_ours < $best_ours" | bc))); then best_ours=$t_ours; fi
done

# Unchanged image, same registry and reference as the last hpcship push.
read -r t_repush _ < <("$work/benchpush" -layout "$work/oci" push "$reg/bench/hpcship:latest")
t0=$(now)
skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/oci" "docker://$reg/bench/hpcship:latest"
t_skopeo_repush=$(echo "$(now) - $t0" | bc)

mb=$(echo "scale=1; $bytes / 1048576" | bc)
printf 'acr push of %s MB compressed (best of %d, fresh registry each):\n' "$mb" "$rounds"
printf '  hpcship        %6.2f s  %7.1f MB/s\n' "$best_ours" "$(echo "$mb / $best_ours" | bc -l)"
printf '  hpcship, 1 job %6.2f s  %7.1f MB/s\n' "$best_one" "$(echo "$mb / $best_one" | bc -l)"
printf '  skopeo         %6.2f s  %7.1f MB/s\n' "$best_skopeo" "$(echo "$mb / $best_skopeo" | bc -l)"
printf '  throughput ratio hpcship/skopeo: %.2fx (target >= 1.3x); with 1 job: %.2fx\n' \
	"$(echo "$best_skopeo / $best_ours" | bc -l)" "$(echo "$best_skopeo / $best_one" | bc -l)"
printf 'acr re-push of the unchanged image: hpcship %.3f s (target <= 1 s), skopeo %.3f s\n' "$t_repush" "$t_skopeo_repush"
