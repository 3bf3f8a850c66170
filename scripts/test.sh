#!/usr/bin/env bash
# The one test command. On a fresh Debian 12 machine, as root, it:
#   1. installs the Debian packages every scripts/services/*.sh declares (apt-get update once, only if needed),
#   2. starts the services those files define, and stops them again on exit,
#   3. checks gofmt, runs go vet and staticcheck,
#   4. runs go test -race with HPCSHIP_INTEGRATION=1, so integration tests fail rather than skip.
#
# A new package or service is one new file in scripts/services/ (see scripts/services/README).
set -euo pipefail
cd "$(dirname "$0")/.."

# shellcheck source=scripts/lib.sh
source scripts/lib.sh

packages=()
services=()
for f in scripts/services/*.sh; do
	# shellcheck source=/dev/null
	source "$f"
done

install_packages "${packages[@]}"

started=()
stop_services() {
	local i
	for ((i = ${#started[@]} - 1; i >= 0; i--)); do
		log "stopping ${started[i]}"
		"stop_${started[i]}" || log "stopping ${started[i]} failed"
	done
}
trap stop_services EXIT
for s in "${services[@]}"; do
	log "starting $s"
	started+=("$s")
	"start_$s"
done

log "gofmt"
unformatted=$(gofmt -l $(git ls-files '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change:" >&2
	echo "$unformatted" >&2
	exit 1
fi
log "go vet"
go vet ./...
log "staticcheck"
go run "honnef.co/go/tools/cmd/staticcheck@${STATICCHECK_VERSION}" ./...
log "go test"
HPCSHIP_INTEGRATION=1 go test -race -count=1 -timeout 12m ./...
