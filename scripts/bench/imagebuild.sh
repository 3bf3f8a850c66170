#!/usr/bin/env bash
# imagebuild: a ≈1 GB real tree (the Go toolchain and the system's shared libraries, bench_real_tree) into a layer,
# with imagebuild (COPY tree /opt/intel, cache emptied before every run) against `tar -cf - -C tree . | gzip -6` and
# `| pigz -6`; the same tree as a .tgz into a layer (ADD intel.tgz /opt/) against `gzip -dc | gzip -6` and
# `pigz -dc | pigz -6` (what turning an archive into a layer costs those tools); the tree doubled to ≈2 GB (peak RSS
# must stay flat); and a cached rebuild of a whole Dockerfile against its first build. Checks that every run of a
# Dockerfile gives the same image digest. Our default gzip level is 1; the comparisons at level 6 are like for like.
# Env: BENCH_RUNS (default 3), BENCH_DIR (default: a temporary directory; needs ≈5 GB), BENCH_PARTS (default
# "tree rebuild tgz 2g": which comparisons to run).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh
install_packages pigz gzip tar

work=${BENCH_DIR:-$(mktemp -d)}
[ -n "${BENCH_DIR:-}" ] || bench_on_exit "rm -rf '$work'"
mkdir -p "$work/ctx"
go build -o "$work/ibbench" ./imagebuild/internal/cmd/ibbench
bench_real_tree "$work/real"
# Copies with inodes of their own: other processes that hard-link the system's files would change the ctime of
# shared inodes under tar, which then fails with "file changed as we read it".
if [ ! -d "$work/ctx/tree" ]; then
	cp -a "$work/real" "$work/ctx/tree.tmp" && mv "$work/ctx/tree.tmp" "$work/ctx/tree"
fi
if [ ! -f "$work/ctx/intel.tgz" ]; then
	tar -cf - -C "$work/ctx/tree" . | pigz -6 >"$work/ctx/intel.tgz.tmp" && mv "$work/ctx/intel.tgz.tmp" "$work/ctx/intel.tgz"
fi
if [ ! -d "$work/ctx2/tree" ]; then # two copies with their own inodes, so nothing is stored as a hardlink
	mkdir -p "$work/ctx2/tree.tmp"
	cp -a "$work/ctx/tree" "$work/ctx2/tree.tmp/a"
	cp -a "$work/ctx/tree" "$work/ctx2/tree.tmp/b"
	mv "$work/ctx2/tree.tmp" "$work/ctx2/tree"
fi
printf 'FROM scratch\nCOPY tree /opt/intel\n' >"$work/ctx/Dockerfile.tree"
printf 'FROM scratch\nCOPY tree /opt/intel\n' >"$work/ctx2/Dockerfile.tree"
printf 'FROM scratch\nADD intel.tgz /opt/\n' >"$work/ctx/Dockerfile.tgz"
cat >"$work/ctx/Dockerfile" <<'DOCKERFILE'
FROM scratch
WORKDIR /app
ADD intel.tgz /opt/
ENV LD_LIBRARY_PATH /opt/intel/compilers_and_libraries_2016.3.223/linux/mpi/intel64/lib/
ENTRYPOINT ["/opt/intel/bin/run"]
DOCKERFILE
printf 'tgz %s: %d bytes; 2x tree: %d bytes\n' "$work/ctx/intel.tgz" "$(bench_size "$work/ctx/intel.tgz")" "$(bench_size "$work/ctx2/tree")"
bench_warm "$work/ctx" "$work/ctx2"
rm -f "$work/digest" "$work/digests."* # digests of an earlier, interrupted run

# keep_digest: appends the digest of our previous run to the list of its kind ($dkey).
keep_digest() {
	[ ! -f "$work/digest" ] || cat "$work/digest" >>"$work/digests.$dkey"
	rm -f "$work/digest"
}

# fresh_cache: every timed build of ours starts from an empty cache.
fresh_cache() {
	[ "$1" != ours ] || { keep_digest && rm -rf "$work/cache"; }
	rm -f "$work/peer.gz"
}

# check_digests KIND: every run of ours of that kind gave the same image.
check_digests() {
	local n
	n=$(sort -u "$work/digests.$1" | wc -l)
	printf '  %s: %d runs, %d distinct digest(s): %s\n' "$1" "$(wc -l <"$work/digests.$1")" "$n" "$(sort -u "$work/digests.$1" | tr '\n' ' ')"
	if [ "$n" != 1 ]; then
		echo "imagebuild bench: builds of $1 gave different digests" >&2
		exit 1
	fi
}

compare() { # compare INPUT LEVEL PEER-NAME PEER-PIPELINE
	input=$1 dkey=$1-l$2
	BENCH_OURS=("$work/ibbench" -level "$2" -cache "$work/cache" -digest "$work/digest" "$work/$ctx" "$work/$ctx/Dockerfile.$dockerfile")
	BENCH_PEER=(sh -c "$4 >'$work/peer.gz'")
	bench_compare section=imagebuild input="$input" ours="hpcship-l$2" peer="$3" prepare=fresh_cache \
		ours_out="$work/cache/blobs" peer_out="$work/peer.gz" level="$2"
	keep_digest
}

parts=" ${BENCH_PARTS:-tree rebuild tgz 2g} "
gzip6=nan pigz6=nan default_pigz6=nan tgz_gzip6=nan tgz_pigz6=nan rss1=nan rss2=nan rebuild=nan
if [[ $parts == *" tree "* ]]; then
	ctx=ctx dockerfile=tree
	tree="$work/ctx/tree"
	compare tree-1G 6 tar-gzip-6 "tar -cf - -C '$tree' . | gzip -6"
	gzip6=${BENCH[wall_ratio]}
	compare tree-1G 6 tar-pigz-6 "tar -cf - -C '$tree' . | pigz -6"
	pigz6=${BENCH[wall_ratio]} rss1=${BENCH[rss_ours_med]}
	compare tree-1G 1 tar-pigz-6 "tar -cf - -C '$tree' . | pigz -6"
	default_pigz6=${BENCH[wall_ratio]}
	check_digests tree-1G-l6
	check_digests tree-1G-l1
fi

if [[ $parts == *" rebuild "* ]]; then
	# A cached rebuild of the whole Dockerfile (ours) against its first build (the "peer").
	dkey=rebuild
	rm -rf "$work/rcache"
	"$work/ibbench" -cache "$work/rcache" "$work/ctx" "$work/ctx/Dockerfile" >"$work/digests.rebuild"
	first_build() {
		if [ "$1" = peer ]; then rm -rf "$work/fcache"; else keep_digest; fi
	}
	BENCH_OURS=("$work/ibbench" -cache "$work/rcache" -digest "$work/digest" "$work/ctx" "$work/ctx/Dockerfile")
	BENCH_PEER=("$work/ibbench" -cache "$work/fcache" "$work/ctx" "$work/ctx/Dockerfile")
	bench_compare section=imagebuild input=dockerfile ours=hpcship-cached peer=hpcship-first prepare=first_build
	rebuild=${BENCH[wall_ratio]}
	keep_digest
	check_digests rebuild
fi

if [[ $parts == *" tgz "* ]]; then
	ctx=ctx dockerfile=tgz
	tgz="$work/ctx/intel.tgz"
	compare tgz-1G 6 gunzip-gzip-6 "gzip -dc '$tgz' | gzip -6"
	tgz_gzip6=${BENCH[wall_ratio]}
	compare tgz-1G 6 unpigz-pigz-6 "pigz -dc '$tgz' | pigz -6"
	tgz_pigz6=${BENCH[wall_ratio]}
	check_digests tgz-1G-l6
fi

if [[ $parts == *" 2g "* ]]; then
	ctx=ctx2 dockerfile=tree
	tree="$work/ctx2/tree"
	BENCH_RUNS_SAVED=$BENCH_RUNS BENCH_RUNS=1
	compare tree-2G 6 tar-pigz-6 "tar -cf - -C '$tree' . | pigz -6"
	BENCH_RUNS=$BENCH_RUNS_SAVED
	rss2=${BENCH[rss_ours_med]}
fi


awk -v g="$gzip6" -v p="$pigz6" -v d="$default_pigz6" -v tg="$tgz_gzip6" -v tp="$tgz_pigz6" -v r1="$rss1" -v r2="$rss2" -v rb="$rebuild" 'BEGIN {
	printf "imagebuild: tree, level 6: %.2fx as fast as tar|gzip -6 (target >= 2), %.2fx as fast as tar|pigz -6 (target >= 1)\n", g, p
	printf "imagebuild: tree, default level 1: %.2fx as fast as tar|pigz -6\n", d
	printf "imagebuild: tgz, level 6: %.2fx as fast as gzip -dc|gzip -6, %.2fx as fast as pigz -dc|pigz -6\n", tg, tp
	printf "imagebuild: peak RSS %.1f MB at 1 GB, %.1f MB at 2 GB (%+.1f%%, target within 10%%)\n", r1, r2, (r2 / r1 - 1) * 100
	printf "imagebuild: cached rebuild takes %.2f%% of the first build (target <= 5%%)\n", 100 / rb
}'
