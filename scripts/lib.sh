# Shared helpers for scripts/test.sh, scripts/bench.sh and scripts/services/*.sh. Sourced, not run.

# STATICCHECK_VERSION pins the linter test.sh runs through `go run`.
STATICCHECK_VERSION=v0.8.2

log() { printf '==> %s\n' "$*" >&2; }

# install_packages installs the Debian packages that are not installed yet.
# It runs apt-get update once, and only when something is missing.
install_packages() {
	local missing=() p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
	done
	[ ${#missing[@]} -eq 0 ] && return 0
	if [ "$(id -u)" -ne 0 ]; then
		echo "missing Debian packages: ${missing[*]}; run as root or install them" >&2
		return 1
	fi
	log "installing ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

# wait_for runs a command until it succeeds, for at most $1 seconds.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		if [ $SECONDS -ge $deadline ]; then
			echo "timed out waiting for: $*" >&2
			return 1
		fi
		sleep 0.2
	done
}
