# shellcheck shell=bash
# Benchmark harness shared by every scripts/bench/*.sh section. Sourced, not run; source it from the repository
# root (the sections `cd` there first). It sources scripts/lib.sh and installs GNU time (Debian `time`).
#
# A comparison runs our command and the peer's command as whole processes, timed the same way, BENCH_RUNS times
# each (default 3), alternating which side goes first (run 1: ours then peer, run 2: peer then ours, …). Before
# every run it prints the 1-minute load average; after it, wall time, user+sys CPU, peak RSS and the size of the
# output. Then it prints min and median per side, the ratios of the medians, and one summary line:
#
#   BENCH section=squashfs input=synthetic ours=hpcship-l6 peer=mksquashfs-l6 runs=3 load_min=1.02 load_max=2.31
#         wall_ours_min=… wall_ours_med=… wall_peer_min=… wall_peer_med=… wall_ratio=…
#         cpu_ours_min=… cpu_ours_med=… cpu_peer_min=… cpu_peer_med=… cpu_ratio=…
#         rss_ours_min=… rss_ours_med=… rss_peer_min=… rss_peer_med=… rss_ratio=…
#         size_ours=… size_peer=… size_ratio=… [extra key=value fields]
#
# (one line; times in seconds, RSS in MB, sizes in bytes). Every ratio is peer median / our median, so above 1
# means ours is faster, lighter or smaller. `grep '^BENCH '` collects the results of a run.
#
# Usage in a section:
#
#   source scripts/bench/lib/harness.sh
#   BENCH_OURS=("$work/sqfsbench" pack -level 6 "$tree" "$work/our.sqfs")
#   BENCH_PEER=(mksquashfs "$tree" "$work/mk.sqfs" -noappend -comp gzip -quiet -no-progress)
#   bench_compare section=squashfs input=synthetic ours=hpcship-l6 peer=mksquashfs-l9 \
#       ours_out="$work/our.sqfs" peer_out="$work/mk.sqfs" level=6
#   echo "${BENCH[wall_ratio]}"   # every summary field, for derived figures; ${BENCH[line]} is the summary line
#
# bench_compare's keys: section, input, ours, peer (names; required); ours_out, peer_out (a file or directory
# whose size is printed and summarised); prepare=FUNC (called untimed before every run with "ours" or "peer",
# e.g. to start a fresh registry); any other key=value is copied to the summary line. The commands' stdout and
# stderr go to a log that is printed if a command fails (which fails the section).
#
# Measuring: wall time is bash's $EPOCHREALTIME around `/usr/bin/time` (microseconds; it includes time(1)'s own
# fork and exec, about a millisecond, on both sides); CPU (user+sys, 10 ms resolution) and peak RSS come from
# `/usr/bin/time -f '%U %S %M'`. CPU counts the process and all the children it waited for (a `sh -c` pipeline
# counts whole); peak RSS is that of the largest single process among them, not their sum.
#
# Helpers: bench_on_exit CMD (clean-up at exit; do not set your own EXIT trap), bench_load (prints the load
# average), bench_warm PATH... (reads files into the page cache), bench_real_tree DIR (the real input: the Go
# toolchain and the system's shared libraries; sets BENCH_REAL_DIRS), bench_size PATH (bytes of a file or directory).
# Environment: BENCH_RUNS (default 3).

# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../../lib.sh"
install_packages time

export LC_ALL=C
BENCH_RUNS=${BENCH_RUNS:-3}
if ! [[ $BENCH_RUNS =~ ^[1-9][0-9]*$ ]]; then
	echo "BENCH_RUNS must be a positive integer, got '$BENCH_RUNS'" >&2
	exit 2
fi
BENCH_OURS=()
BENCH_PEER=()
BENCH_REAL_DIRS=()
declare -gA BENCH=()
BENCH_TMP=$(mktemp -d)
_bench_on_exit=()
_bench_exit() {
	local c
	for c in "${_bench_on_exit[@]}"; do eval "$c" || true; done
	rm -rf "$BENCH_TMP"
}
trap _bench_exit EXIT

# bench_on_exit CMD: runs the shell command CMD when the section exits (in the order given). Sections use it
# instead of `trap … EXIT`, which would replace the harness's own clean-up.
bench_on_exit() { _bench_on_exit+=("$1"); }

# Registries for the sections that push (acr, workflow): bench_free_port prints a free TCP port on 127.0.0.1;
# bench_fresh_registry SIDE DIR stops SIDE's Debian docker-registry, if running, and starts it again, empty, with its
# storage under DIR, on the port in reg_port[SIDE] (set once with bench_free_port). Registries stop when the
# section exits.
declare -gA reg_pid=() reg_port=()
bench_free_port() {
	local p
	while :; do
		p=$((20000 + RANDOM % 40000))
		(exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
	done
}
bench_fresh_registry() {
	local side=$1 dir=$2
	if [ -n "${reg_pid[$side]:-}" ]; then
		kill "${reg_pid[$side]}"
		wait "${reg_pid[$side]}" 2>/dev/null || true
	fi
	rm -rf "$dir"
	mkdir -p "$dir/data"
	cat >"$dir/config.yml" <<-YAML
		version: 0.1
		log: {level: error, accesslog: {disabled: true}}
		storage: {filesystem: {rootdirectory: $dir/data}, redirect: {disable: true}}
		http: {addr: 127.0.0.1:${reg_port[$side]}, secret: bench}
	YAML
	/usr/bin/docker-registry serve "$dir/config.yml" >"$dir.log" 2>&1 &
	reg_pid[$side]=$!
	wait_for 10 curl -sf "http://127.0.0.1:${reg_port[$side]}/v2/"
}
_bench_stop_registries() {
	local side
	for side in "${!reg_pid[@]}"; do kill "${reg_pid[$side]}" 2>/dev/null || true; done
}
bench_on_exit _bench_stop_registries

# bench_load prints the 1-minute load average.
bench_load() { cut -d' ' -f1 /proc/loadavg; }

# bench_size prints the size in bytes of a file, or of everything under a directory (apparent sizes).
bench_size() {
	if [ -d "$1" ]; then
		du -sb --apparent-size "$1" | cut -f1
	elif [ -e "$1" ]; then
		stat -c %s "$1"
	fi
}

# bench_warm reads every file under the given paths, so neither side pays for a cold page cache.
bench_warm() { find "$@" -type f -print0 | xargs -0 -r cat >/dev/null 2>&1 || true; }

# bench_real_tree DIR copies the real input under DIR at its own paths: the Go toolchain ($(go env GOROOT), e.g.
# DIR/usr/local/go) and the system's shared libraries (DIR/usr/lib/<multiarch>): real files, present on any Debian
# machine with Go, whose relative symlinks resolve inside DIR as on the host. Hard links when DIR is on the same
# filesystem (no copy), else a copy. Sets BENCH_REAL_DIRS to the two directories; prints entries and bytes.
bench_real_tree() {
	local dir=$1 goroot libdir
	goroot=$(go env GOROOT)
	libdir=/usr/lib/$(gcc -print-multiarch 2>/dev/null || dpkg-architecture -qDEB_HOST_MULTIARCH 2>/dev/null || echo x86_64-linux-gnu)
	if [ ! -d "$dir" ]; then
		mkdir -p "$dir.tmp$(dirname "$goroot")" "$dir.tmp$(dirname "$libdir")"
		cp -al "$goroot" "$dir.tmp$goroot" 2>/dev/null || { rm -rf "$dir.tmp$goroot" && cp -a "$goroot" "$dir.tmp$goroot"; }
		cp -al "$libdir" "$dir.tmp$libdir" 2>/dev/null || { rm -rf "$dir.tmp$libdir" && cp -a "$libdir" "$dir.tmp$libdir"; }
		mv "$dir.tmp" "$dir"
	fi
	# shellcheck disable=SC2034 # used by the sections
	BENCH_REAL_DIRS=("$dir$goroot" "$dir$libdir")
	printf 'real tree %s: %s + %s, %d entries, %d bytes\n' "$dir" "$goroot" "$libdir" \
		"$(find "$dir" | wc -l)" "$(bench_size "$dir")"
}

# _bench_stats VALUES...: prints "min median" (median of an even count: mean of the middle two).
_bench_stats() {
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
		m = NR % 2 ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2
		printf "%.6g %.6g\n", v[1], m
	}'
}

_bench_ratio() { awk -v p="$1" -v o="$2" 'BEGIN {if (o > 0) printf "%.4g", p / o; else print "nan"}'; }

# _bench_run SIDE NAME OUT: runs BENCH_OURS or BENCH_PEER once and appends to _wall_SIDE, _cpu_SIDE, _rss_SIDE.
_bench_run() {
	local side=$1 name=$2 out=$3 load t0 t1 wall cpu rss size tf="$BENCH_TMP/time" log="$BENCH_TMP/log"
	local -n cmd="BENCH_${side^^}"
	[ -z "$_prepare" ] || "$_prepare" "$side"
	load=$(bench_load)
	_loads+=("$load")
	t0=$EPOCHREALTIME
	if ! /usr/bin/time -f '%U %S %M' -o "$tf" "${cmd[@]}" >"$log" 2>&1; then
		echo "bench: $name failed: ${cmd[*]}" >&2
		tail -n 30 "$log" >&2
		exit 1
	fi
	t1=$EPOCHREALTIME
	wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN {printf "%.4f", b - a}')
	read -r cpu rss < <(tail -n 1 "$tf" | awk '{printf "%.2f %.1f\n", $1 + $2, $3 / 1024}')
	size=
	[ -z "$out" ] || size=$(bench_size "$out")
	eval "_wall_$side+=($wall) _cpu_$side+=($cpu) _rss_$side+=($rss)"
	[ -z "$size" ] || eval "_size_$side=$size"
	printf '  load %-5s %-4s %-24s wall %8.3f s  cpu %7.2f s  rss %8.1f MB%s\n' "$load" "$side" "$name" "$wall" "$cpu" "$rss" \
		"${size:+  out $(awk -v s="$size" 'BEGIN {printf "%.1f MB", s / 1e6}')}"
}

# bench_compare KEY=VALUE...: see the header of this file.
bench_compare() {
	local kv k v section='' input='' ours='' peer='' ours_out='' peer_out='' _prepare='' extra=() i m
	for kv in "$@"; do
		k=${kv%%=*} v=${kv#*=}
		case $k in
		section | input | ours | peer | ours_out | peer_out) printf -v "$k" '%s' "$v" ;;
		prepare) _prepare=$v ;;
		*) extra+=("$kv") ;;
		esac
	done
	if [ -z "$section" ] || [ -z "$input" ] || [ -z "$ours" ] || [ -z "$peer" ]; then
		echo "bench_compare: section=, input=, ours= and peer= are required" >&2
		exit 2
	fi
	if [ ${#BENCH_OURS[@]} -eq 0 ] || [ ${#BENCH_PEER[@]} -eq 0 ]; then
		echo "bench_compare: set BENCH_OURS and BENCH_PEER to the two commands first" >&2
		exit 2
	fi
	local _wall_ours=() _cpu_ours=() _rss_ours=() _wall_peer=() _cpu_peer=() _rss_peer=() _loads=() _size_ours='' _size_peer=''
	printf '%s/%s: %s vs %s, %d runs, %d cores\n' "$section" "$input" "$ours" "$peer" "$BENCH_RUNS" "$(nproc)"
	printf '  ours: %s\n  peer: %s\n' "${BENCH_OURS[*]}" "${BENCH_PEER[*]}"
	for ((i = 1; i <= BENCH_RUNS; i++)); do
		if ((i % 2)); then
			_bench_run ours "$ours" "$ours_out"
			_bench_run peer "$peer" "$peer_out"
		else
			_bench_run peer "$peer" "$peer_out"
			_bench_run ours "$ours" "$ours_out"
		fi
	done
	BENCH=([section]=$section [input]=$input [ours]=$ours [peer]=$peer [runs]=$BENCH_RUNS)
	read -r "BENCH[load_min]" _ < <(_bench_stats "${_loads[@]}")
	BENCH[load_max]=$(printf '%s\n' "${_loads[@]}" | sort -g | tail -n 1)
	local line="BENCH section=$section input=$input ours=$ours peer=$peer runs=$BENCH_RUNS load_min=${BENCH[load_min]} load_max=${BENCH[load_max]}"
	for m in wall cpu rss; do
		local -n o="_${m}_ours" p="_${m}_peer"
		read -r "BENCH[${m}_ours_min]" "BENCH[${m}_ours_med]" < <(_bench_stats "${o[@]}")
		read -r "BENCH[${m}_peer_min]" "BENCH[${m}_peer_med]" < <(_bench_stats "${p[@]}")
		BENCH[${m}_ratio]=$(_bench_ratio "${BENCH[${m}_peer_med]}" "${BENCH[${m}_ours_med]}")
		line+=" ${m}_ours_min=${BENCH[${m}_ours_min]} ${m}_ours_med=${BENCH[${m}_ours_med]}"
		line+=" ${m}_peer_min=${BENCH[${m}_peer_min]} ${m}_peer_med=${BENCH[${m}_peer_med]} ${m}_ratio=${BENCH[${m}_ratio]}"
		unset -n o p
	done
	if [ -n "$_size_ours" ] && [ -n "$_size_peer" ]; then
		BENCH[size_ours]=$_size_ours BENCH[size_peer]=$_size_peer
		BENCH[size_ratio]=$(_bench_ratio "$_size_peer" "$_size_ours")
		line+=" size_ours=$_size_ours size_peer=$_size_peer size_ratio=${BENCH[size_ratio]}"
	fi
	for kv in "${extra[@]}"; do
		BENCH[${kv%%=*}]=${kv#*=}
		line+=" $kv"
	done
	printf '  %-24s wall min %8.3f med %8.3f s  cpu min %7.2f med %7.2f s  rss med %8.1f MB\n' "$ours" \
		"${BENCH[wall_ours_min]}" "${BENCH[wall_ours_med]}" "${BENCH[cpu_ours_min]}" "${BENCH[cpu_ours_med]}" "${BENCH[rss_ours_med]}"
	printf '  %-24s wall min %8.3f med %8.3f s  cpu min %7.2f med %7.2f s  rss med %8.1f MB\n' "$peer" \
		"${BENCH[wall_peer_min]}" "${BENCH[wall_peer_med]}" "${BENCH[cpu_peer_min]}" "${BENCH[cpu_peer_med]}" "${BENCH[rss_peer_med]}"
	printf '  peer/ours (medians): wall %sx, cpu %sx, rss %sx%s; load %s-%s\n' "${BENCH[wall_ratio]}" "${BENCH[cpu_ratio]}" \
		"${BENCH[rss_ratio]}" "${BENCH[size_ratio]:+, size ${BENCH[size_ratio]}x}" "${BENCH[load_min]}" "${BENCH[load_max]}"
	BENCH[line]=$line
	echo "$line"
	BENCH_OURS=() BENCH_PEER=()
}
