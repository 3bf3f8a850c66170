#!/usr/bin/env bash
# Benchmarks that run hpcship and the named peer tool on the same input in one run and print the ratio.
# Usage: scripts/bench.sh [section ...]   (default: every scripts/bench/*.sh, in name order)
# Each section is a script of its own; it installs the peer it compares against (as root) and prints its results.
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

sections=("$@")
if [ ${#sections[@]} -eq 0 ]; then
	shopt -s nullglob
	for f in scripts/bench/*.sh; do
		sections+=("$(basename "$f" .sh)")
	done
fi
for s in "${sections[@]}"; do
	log "bench: $s"
	bash "scripts/bench/$s.sh"
done
