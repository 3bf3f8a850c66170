#!/usr/bin/env bash
# squashfs: our writer (internal/squashfs, fed entry by entry by the sqfsbench program) against
# `mksquashfs DIR IMG -noappend -comp gzip`, both using every core, through the harness (lib/harness.sh), on two
# inputs: the generated ≈1 GB tree (20,000 small text files, 400 MB of repetitive logs, a 50 MB duplicate, 300 MB
# of random data) and the real tree (the Go toolchain and /usr/lib/<multiarch>, see bench_real_tree). On each:
#   level6    ours at level 6 (our default) against mksquashfs at level 6;
#   default   ours at our default (6) against mksquashfs' default (level 9, what Apptainer runs);
#   iso-size  ours at level 6 against the mksquashfs level whose image size is nearest to ours (found by packing
#             once per level, untimed, downwards from 5; when that is level 6 or 9, the runs above are reused);
#   mem256    (real tree only) ours at level 6 against mksquashfs at level 6 with `-mem 256M` (its RSS otherwise
#             follows the machine's RAM: a quarter of it by default).
# Every pair of images must list the same entries (`unsquashfs -lln`: type, mode, owner, size or device, time,
# path, link target; whole lines, but for the size of directories) and, once per input, extract to identical trees (`diff -r --no-dereference`).
# Env: BENCH_DIR (default: a temporary directory; needs ≈6 GB), BENCH_RUNS (see the harness).
set -euo pipefail
cd "$(dirname "$0")/../.."
# shellcheck source=scripts/bench/lib/harness.sh
source scripts/bench/lib/harness.sh

install_packages squashfs-tools

work=${BENCH_DIR:-$(mktemp -d)}
[ -n "${BENCH_DIR:-}" ] || bench_on_exit "rm -rf '$work'"
mkdir -p "$work"
go build -o "$work/sqfsbench" ./internal/squashfs/cmd/sqfsbench
if [ ! -d "$work/synthetic" ]; then
	log "squashfs bench: generating the tree in $work/synthetic"
	"$work/sqfsbench" gen "$work/synthetic.tmp"
	mv "$work/synthetic.tmp" "$work/synthetic"
fi
bench_real_tree "$work/real"
mksquashfs -version | head -n 1

ours_cmd() { BENCH_OURS=("$work/sqfsbench" pack -level "$1" "$tree" "$2"); }
peer_cmd() {
	local level=$1 img=$2
	shift 2
	BENCH_PEER=(mksquashfs "$tree" "$img" -noappend -comp gzip -Xcompression-level "$level" -quiet -no-progress "$@")
}

# listing IMG: `unsquashfs -lln` with single spaces, sorted; a directory's size (the encoded length of its
# entries in the directory table, which depends on how the writer groups them) is left out.
listing() { unsquashfs -lln "$1" | tr -s ' ' | awk '/^d/ {$3 = "-"} {print}' | sort; }

# same_listing A B: fails unless both images list the same entries with the same attributes.
same_listing() {
	if ! diff <(listing "$1") <(listing "$2") >"$work/listing.diff"; then
		echo "squashfs bench: $1 and $2 list different entries:" >&2
		head -n 20 "$work/listing.diff" >&2
		exit 1
	fi
	echo "  listings agree: $(unsquashfs -lln "$1" | wc -l) entries (type, mode, owner, size, time, path, link target)"
}

# same_contents A B: fails unless both images extract to identical trees.
same_contents() {
	rm -rf "$work/x1" "$work/x2"
	unsquashfs -q -n -d "$work/x1" "$1" >/dev/null
	unsquashfs -q -n -d "$work/x2" "$2" >/dev/null
	if ! diff -r --no-dereference "$work/x1" "$work/x2" >"$work/contents.diff"; then
		echo "squashfs bench: $1 and $2 extract differently:" >&2
		head -n 20 "$work/contents.diff" >&2
		exit 1
	fi
	echo "  contents agree: both images extract to identical trees ($(bench_size "$work/x1") bytes)"
	rm -rf "$work/x1" "$work/x2"
}

for input in real synthetic; do
	tree=$work/$input
	bench_warm "$tree"
	printf 'squashfs/%s: %d entries, %d bytes\n' "$input" "$(find "$tree" | wc -l)" "$(bench_size "$tree")"
	ours=$work/ours-$input.sqfs

	ours_cmd 6 "$ours"
	peer_cmd 6 "$work/mk6-$input.sqfs"
	bench_compare section=squashfs input="$input" ours=hpcship-l6 peer=mksquashfs-l6 \
		ours_out="$ours" peer_out="$work/mk6-$input.sqfs" comparison=level6
	declare -A line=([6]=${BENCH[line]})
	same_listing "$ours" "$work/mk6-$input.sqfs"
	same_contents "$ours" "$work/mk6-$input.sqfs"

	ours_cmd 6 "$ours"
	peer_cmd 9 "$work/mk9-$input.sqfs"
	bench_compare section=squashfs input="$input" ours=hpcship-l6 peer=mksquashfs-l9 \
		ours_out="$ours" peer_out="$work/mk9-$input.sqfs" comparison=default
	line[9]=${BENCH[line]}
	same_listing "$ours" "$work/mk9-$input.sqfs"

	# The mksquashfs level whose image is nearest in size to ours: sizes fall as the level rises.
	our_size=$(bench_size "$ours")
	declare -A size=([6]=$(bench_size "$work/mk6-$input.sqfs") [9]=$(bench_size "$work/mk9-$input.sqfs"))
	for level in 5 4 3 2 1; do
		[ "${size[$((level + 1))]}" -lt "$our_size" ] || break
		mksquashfs "$tree" "$work/probe.sqfs" -noappend -comp gzip -Xcompression-level "$level" -quiet -no-progress >/dev/null
		size[$level]=$(bench_size "$work/probe.sqfs")
	done
	iso=
	for level in "${!size[@]}"; do
		d=$((size[$level] - our_size)) && d=${d#-}
		if [ -z "$iso" ] || [ "$d" -lt "$best" ]; then iso=$level best=$d; fi
	done
	for level in $(printf '%s\n' "${!size[@]}" | sort -n); do
		printf '  mksquashfs level %d: %d bytes (ours at level 6: %d, %+.2f %%)\n' "$level" "${size[$level]}" "$our_size" \
			"$(awk -v o="$our_size" -v m="${size[$level]}" 'BEGIN {print (o - m) * 100 / m}')"
	done
	unset size
	if [ -n "${line[$iso]:-}" ]; then
		echo "squashfs/$input: the nearest size is mksquashfs level $iso's, compared above"
		l=${line[$iso]/ comparison=level6/ comparison=iso-size}
		echo "${l/ comparison=default/ comparison=iso-size}"
	else
		ours_cmd 6 "$ours"
		peer_cmd "$iso" "$work/iso-$input.sqfs"
		bench_compare section=squashfs input="$input" ours=hpcship-l6 peer="mksquashfs-l$iso" \
			ours_out="$ours" peer_out="$work/iso-$input.sqfs" comparison=iso-size
		same_listing "$ours" "$work/iso-$input.sqfs"
	fi
	unset line
	[ "$input" = real ] || continue

	ours_cmd 6 "$ours"
	peer_cmd 6 "$work/mem-$input.sqfs" -mem 256M
	bench_compare section=squashfs input="$input" ours=hpcship-l6 peer=mksquashfs-l6-mem256M \
		ours_out="$ours" peer_out="$work/mem-$input.sqfs" comparison=mem256
	same_listing "$ours" "$work/mem-$input.sqfs"
done
rm -f "$work"/*.sqfs
