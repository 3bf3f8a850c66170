#!/usr/bin/env bash
# Stops the Slurm cluster's daemons that scripts/slurm-setup.sh started (listed in $SLURM_STATE), newest
# first, and nothing else. Jobs still in the cluster are cancelled first, so that no slurmstepd outlives
# slurmd. Packages, configuration, state and the accounting database stay, so the next setup only starts the
# daemons.
set -uo pipefail
SLURM_STATE=${SLURM_STATE:-/run/hpcship-slurm.pids}
[ -s "$SLURM_STATE" ] || exit 0

# running NAME PID: whether PID is still a non-zombie NAME; after a reboot a PID may belong to anything.
running() {
	[ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ] && ! grep -q '^State:[[:space:]]*Z' "/proc/$2/status" 2>/dev/null
}

if grep -q '^slurmctld ' "$SLURM_STATE" && scontrol ping >/dev/null 2>&1; then
	jobs=$(squeue -h -o %i 2>/dev/null | sort -u)
	if [ -n "$jobs" ]; then
		# shellcheck disable=SC2086
		scancel $jobs 2>/dev/null
		deadline=$((SECONDS + 30))
		while [ -n "$(squeue -h -t R,CG,CF,S -o %i 2>/dev/null)" ] && [ $SECONDS -lt $deadline ]; do
			sleep 0.2
		done
	fi
fi

status=0
mapfile -t entries < <(tac "$SLURM_STATE")
rm -f "$SLURM_STATE"
for e in "${entries[@]}"; do
	read -r name pid <<<"$e"
	running "$name" "$pid" || continue
	kill -TERM "$pid" 2>/dev/null
	deadline=$((SECONDS + 15))
	while running "$name" "$pid" && [ $SECONDS -lt $deadline ]; do
		sleep 0.1
	done
	if running "$name" "$pid"; then
		printf 'slurm: %s (%s) still runs 15 s after SIGTERM; sending SIGKILL\n' "$name" "$pid" >&2
		kill -KILL "$pid" 2>/dev/null
		sleep 1
		if running "$name" "$pid"; then
			printf 'slurm: %s (%s) still runs\n' "$name" "$pid" >&2
			status=1
		fi
	fi
done
printf 'slurm: stopped in %ds\n' "$SECONDS" >&2
exit $status
