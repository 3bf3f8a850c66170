#!/usr/bin/env bash
# workflow: the whole path from a build context to a SIF, stage by stage, hpcship against the peer pipeline, on
# the same inputs in the same run. Each stage of each side is a process (or a shell script) of its own, timed
# through the harness (lib/harness.sh); the total is the sum of the stages' medians.
#   build  hpcship: imagebuild of the Dockerfile into an OCI layout that is also its build cache (wfbench build;
#          the cache is emptied before every run; gzip level 1, imagebuild's default) | peer: `tar -cf - -C tree .
#          | gzip -6` into a layer, its diffID taken on the way (tee | sha256sum), then sha256sum of the blob and
#          the config, manifest and index written as an OCI layout (what `docker build` leaves for a push).
#   push   hpcship: acr.Push of the layout (acr/internal/benchpush, 4 blobs at once) | peer: `skopeo copy
#          oci:… docker://…`. Each side pushes to a docker-registry of its own on 127.0.0.1, emptied and
#          restarted before every run.
#   sif    hpcship: singularity.Pull from the registry into a SIF (wfbench sif; fresh blob cache) | peer: what an
#          unprivileged `apptainer pull docker://…` does, from Debian parts: `skopeo copy docker://… oci:…`,
#          `umoci unpack --rootless`, `mksquashfs -comp gzip -all-root` (its default level, 9, as Apptainer
#          runs it) and the SIF wrap of sylabs/sif (sifbench wrap).
# Inputs:
#   small  like the quickstart's image: the workflow's Dockerfile without RUN (WORKDIR, COPY of a 3 MB
#          /opt/intel made of the system's shared libraries, ENV, ENTRYPOINT);
#   1g     the ≈1 GB image of the sif section (sifbench gen: 20,000 small files, a toolchain, logs and random
#          data, 4 layers with whiteouts), flattened once (umoci unpack, untimed) into a tree that is built as
#          one layer (COPY rootfs /).
# After the runs, both SIFs of an input must hold the same paths (ours adds /.singularity.d and its links).
# Env: BENCH_INPUTS (default "small 1g"), BENCH_DIR (default: a temporary directory; needs ≈6 GB), BENCH_RUNS.
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh
install_packages docker-registry skopeo umoci squashfs-tools curl gzip tar

work=${BENCH_DIR:-$(mktemp -d)}
mkdir -p "$work"
cleanup() {
	[ -n "${BENCH_DIR:-}" ] || rm -rf "$work"
}
bench_on_exit cleanup

# SIDE's registry, emptied and restarted (lib/harness.sh).
fresh_registry() { bench_fresh_registry "$1" "$work/registry-$1"; }

go build -o "$work/wfbench" ./scripts/bench/wfbench
go build -o "$work/benchpush" ./acr/internal/benchpush
go build -o "$work/sifbench" ./singularity/internal/cmd/sifbench

# The peer's build: a layer with tar | gzip -6, then an OCI layout around it with sha256sum and printf.
cat >"$work/peer-build.sh" <<'PEER'
#!/usr/bin/env bash
# peer-build.sh TREE LAYOUT CONFIG-JSON-FRAGMENT
set -euo pipefail
tree=$1 out=$2 cfg=$3
mkdir -p "$out/blobs/sha256"
tar -cf - -C "$tree" . | tee >(sha256sum | cut -d' ' -f1 >"$out/diffid") | gzip -6 >"$out/layer.tmp"
wait # for the sha256sum of the process substitution
layer=$(sha256sum "$out/layer.tmp" | cut -d' ' -f1)
size=$(stat -c %s "$out/layer.tmp")
mv "$out/layer.tmp" "$out/blobs/sha256/$layer"
while [ ! -s "$out/diffid" ]; do sleep 0.01; done
printf '{"architecture":"amd64","os":"linux","config":%s,"rootfs":{"type":"layers","diff_ids":["sha256:%s"]}}' \
	"$cfg" "$(cat "$out/diffid")" >"$out/config.json"
config=$(sha256sum "$out/config.json" | cut -d' ' -f1)
csize=$(stat -c %s "$out/config.json")
mv "$out/config.json" "$out/blobs/sha256/$config"
printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s","size":%d}]}' \
	"$config" "$csize" "$layer" "$size" >"$out/manifest.json"
manifest=$(sha256sum "$out/manifest.json" | cut -d' ' -f1)
msize=$(stat -c %s "$out/manifest.json")
mv "$out/manifest.json" "$out/blobs/sha256/$manifest"
printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%d,"annotations":{"org.opencontainers.image.ref.name":"latest"}}]}' \
	"$manifest" "$msize" >"$out/index.json"
echo '{"imageLayoutVersion":"1.0.0"}' >"$out/oci-layout"
rm -f "$out/diffid"
PEER
# The peer's SIF: what apptainer pull does, from Debian parts.
cat >"$work/peer-sif.sh" <<PEER
#!/bin/sh
# peer-sif.sh REF OUT.sif
set -e
rm -rf "$work/pulled" "$work/bundle" "$work/peer.sqfs"
skopeo --insecure-policy copy -q --src-tls-verify=false "docker://\$1" "oci:$work/pulled:bench"
umoci unpack --rootless --image "$work/pulled:bench" "$work/bundle" >/dev/null
mksquashfs "$work/bundle/rootfs" "$work/peer.sqfs" -noappend -comp gzip -all-root -quiet -no-progress
"$work/sifbench" wrap "$work/pulled" "$work/peer.sqfs" "\$2"
chmod -R u+rwX "$work/bundle"
rm -rf "$work/pulled" "$work/bundle" "$work/peer.sqfs"
PEER
chmod +x "$work/peer-build.sh" "$work/peer-sif.sh"

# small: the workflow's Dockerfile (without RUN) and a 3 MB /opt/intel of real shared libraries.
setup_small() {
	local ctx=$work/small lib
	[ ! -d "$ctx" ] || return 0
	lib=/usr/lib/$(gcc -print-multiarch 2>/dev/null || echo x86_64-linux-gnu)
	mkdir -p "$ctx.tmp/root/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib" "$ctx.tmp/root/opt/intel/bin"
	cp -L "$lib/libc.so.6" "$lib/libm.so.6" "$lib/libz.so.1" \
		"$ctx.tmp/root/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/"
	printf '#!/bin/sh\nexec "$@"\n' >"$ctx.tmp/root/opt/intel/bin/run"
	chmod 755 "$ctx.tmp/root/opt/intel/bin/run"
	cat >"$ctx.tmp/Dockerfile" <<-'DOCKERFILE'
		FROM scratch
		WORKDIR /app
		COPY root /
		ENV LD_LIBRARY_PATH /opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/
		ENTRYPOINT ["/opt/intel/bin/run"]
	DOCKERFILE
	mkdir -p "$ctx.tmp/root/app"
	mv "$ctx.tmp" "$ctx"
}

# 1g: the sif section's generated image, flattened into a tree.
setup_1g() {
	local ctx=$work/1g
	[ ! -d "$ctx" ] || return 0
	rm -rf "$ctx.tmp" && mkdir -p "$ctx.tmp"
	log "workflow bench: generating the 1 GB image and flattening it"
	"$work/sifbench" gen "$ctx.tmp/layout" "$(go env GOROOT)"
	umoci unpack --rootless --image "$ctx.tmp/layout:bench" "$ctx.tmp/bundle" >/dev/null
	mv "$ctx.tmp/bundle/rootfs" "$ctx.tmp/root"
	chmod -R u+rwX "$ctx.tmp/bundle" && rm -rf "$ctx.tmp/bundle" "$ctx.tmp/layout"
	printf 'FROM scratch\nCOPY root /\n' >"$ctx.tmp/Dockerfile"
	mv "$ctx.tmp" "$ctx"
}

reg_port[ours]=$(bench_free_port)
reg_port[peer]=$(bench_free_port)
fresh_registry ours
fresh_registry peer
mkdir -p "$work/out"

# SIF listing: type and mode, then path (and link target) of every entry, as unsquashfs prints them.
sif_list() {
	unsquashfs -o "$("$work/sifbench" offset "$1")" -lln "$1" |
		awk 'NR > 3 {p = $6; for (i = 7; i <= NF; i++) p = p " " $i; print $1, p}' | sort
}

for input in ${BENCH_INPUTS:-small 1g}; do
	"setup_$input"
	ctx=$work/$input
	printf 'workflow/%s: context %d entries, %d bytes\n' "$input" "$(find "$ctx/root" | wc -l)" "$(bench_size "$ctx/root")"
	bench_warm "$ctx"
	cfg='{}'
	[ "$input" != small ] || cfg='{"Env":["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","LD_LIBRARY_PATH=/opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/"],"Entrypoint":["/opt/intel/bin/run"],"WorkingDir":"/app"}'
	declare -A total_ours=() total_peer=()
	loads=()

	reset_build() { rm -rf "$work/layout-$1"; }
	BENCH_OURS=("$work/wfbench" build "$ctx" "$ctx/Dockerfile" "$work/layout-ours")
	BENCH_PEER=("$work/peer-build.sh" "$ctx/root" "$work/layout-peer" "$cfg")
	bench_compare section=workflow input="$input" ours=hpcship-build peer=tar-gzip-6 stage=build prepare=reset_build \
		ours_out="$work/layout-ours/blobs" peer_out="$work/layout-peer/blobs"
	total_ours[med]=${BENCH[wall_ours_med]} total_peer[med]=${BENCH[wall_peer_med]}
	total_ours[min]=${BENCH[wall_ours_min]} total_peer[min]=${BENCH[wall_peer_min]}
	loads+=("${BENCH[load_min]}" "${BENCH[load_max]}")

	BENCH_OURS=("$work/benchpush" -layout "$work/layout-ours" push "127.0.0.1:${reg_port[ours]}/wf/img:latest")
	BENCH_PEER=(skopeo --insecure-policy copy -q --dest-tls-verify=false "oci:$work/layout-peer" "docker://127.0.0.1:${reg_port[peer]}/wf/img:latest")
	bench_compare section=workflow input="$input" ours=hpcship-push peer=skopeo-copy stage=push prepare=fresh_registry \
		ours_out="$work/registry-ours/data" peer_out="$work/registry-peer/data"
	total_ours[med]+=" ${BENCH[wall_ours_med]}" total_peer[med]+=" ${BENCH[wall_peer_med]}"
	total_ours[min]+=" ${BENCH[wall_ours_min]}" total_peer[min]+=" ${BENCH[wall_peer_min]}"
	loads+=("${BENCH[load_min]}" "${BENCH[load_max]}")

	reset_sif() { rm -f "$work/out/$1.sif"; }
	BENCH_OURS=("$work/wfbench" sif "127.0.0.1:${reg_port[ours]}/wf/img:latest" "$work/out/ours.sif")
	BENCH_PEER=("$work/peer-sif.sh" "127.0.0.1:${reg_port[peer]}/wf/img:latest" "$work/out/peer.sif")
	bench_compare section=workflow input="$input" ours=hpcship-pull-sif peer=skopeo-umoci-mksquashfs stage=sif prepare=reset_sif \
		ours_out="$work/out/ours.sif" peer_out="$work/out/peer.sif"
	total_ours[med]+=" ${BENCH[wall_ours_med]}" total_peer[med]+=" ${BENCH[wall_peer_med]}"
	total_ours[min]+=" ${BENCH[wall_ours_min]}" total_peer[min]+=" ${BENCH[wall_peer_min]}"
	loads+=("${BENCH[load_min]}" "${BENCH[load_max]}")

	sif_list "$work/out/ours.sif" >"$work/ours.list"
	sif_list "$work/out/peer.sif" >"$work/peer.list"
	lacking=$(comm -13 <(cut -d' ' -f2- "$work/ours.list" | sort) <(cut -d' ' -f2- "$work/peer.list" | sort) | grep -v -e '^squashfs-root$' || true)
	if [ -n "$lacking" ]; then
		echo "workflow bench: paths of the peer's SIF that ours lacks:" >&2
		echo "$lacking" | head -20 >&2
		exit 1
	fi
	printf '  every path (and link target) of the peer SIF (%d) is in ours (ours: %d entries, peer: %d)\n' \
		"$(wc -l <"$work/peer.list")" "$(wc -l <"$work/ours.list")" "$(wc -l <"$work/peer.list")"

	# shellcheck disable=SC2086 # the list is split into its numbers
	sum() { printf '%s\n' $1 | awk '{s += $1} END {printf "%.4f", s}'; }
	om=$(sum "${total_ours[med]}") pm=$(sum "${total_peer[med]}") on=$(sum "${total_ours[min]}") pn=$(sum "${total_peer[min]}")
	lmin=$(printf '%s\n' "${loads[@]}" | sort -g | head -n 1) lmax=$(printf '%s\n' "${loads[@]}" | sort -g | tail -n 1)
	ratio=$(awk -v p="$pm" -v o="$om" 'BEGIN {printf "%.4g", p / o}')
	printf '  total (sum of the stages): hpcship min %.3f med %.3f s, peer min %.3f med %.3f s: peer/ours %sx; load %s-%s\n' \
		"$on" "$om" "$pn" "$pm" "$ratio" "$lmin" "$lmax"
	echo "BENCH section=workflow input=$input ours=hpcship peer=tar-gzip+skopeo+umoci-mksquashfs runs=$BENCH_RUNS load_min=$lmin load_max=$lmax wall_ours_min=$on wall_ours_med=$om wall_peer_min=$pn wall_peer_med=$pm wall_ratio=$ratio stage=total"
	rm -rf "$work/layout-ours" "$work/layout-peer" "$work/out/"*
done
