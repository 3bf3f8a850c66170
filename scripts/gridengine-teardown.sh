#!/usr/bin/env bash
# Stops the Grid Engine daemons that scripts/gridengine-setup.sh started (their PIDs are in $SGE_STATE), and
# nothing else. The packages and the cell's configuration stay, so the next setup only starts the daemons.
set -uo pipefail
export SGE_ROOT=/var/lib/gridengine SGE_CELL=default
SGE_STATE=${SGE_STATE:-/run/hpcship-gridengine.pids}
[ -s "$SGE_STATE" ] || exit 0
# Only PIDs that are still Grid Engine daemons: after a reboot a PID may belong to anything.
pids=()
stop_execd="" stop_qmaster=""
while read -r p; do
	case $(cat "/proc/$p/comm" 2>/dev/null) in
	sge_qmaster) pids+=("$p") stop_qmaster=1 ;;
	sge_execd) pids+=("$p") stop_execd=1 ;;
	esac
done <"$SGE_STATE"
rm -f "$SGE_STATE"
[ ${#pids[@]} -gt 0 ] || exit 0

running() {
	local p
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null && return 0
	done
	return 1
}
# The orderly way first: the execd without killing jobs, then the qmaster, which needs about 10 s to stop.
[ -z "$stop_execd" ] || qconf -ke all >/dev/null 2>&1
[ -z "$stop_qmaster" ] || qconf -km >/dev/null 2>&1
deadline=$((SECONDS + 30))
while running && [ $SECONDS -lt $deadline ]; do
	sleep 0.25
done
for sig in TERM KILL; do
	running || break
	for p in "${pids[@]}"; do
		kill -0 "$p" 2>/dev/null && kill -s "$sig" "$p" 2>/dev/null
	done
	sleep 2
done
if running; then
	echo "gridengine: daemons still running: ${pids[*]}" >&2
	exit 1
fi
printf 'gridengine: stopped in %ds\n' "$SECONDS" >&2
