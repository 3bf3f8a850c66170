#!/usr/bin/env bash
# Installs, configures and starts a single-host Son of Grid Engine 8.1.9 cell (Debian 12 packages) for the
# scheduler/sge integration tests. Run as root on a machine without systemd; safe to run again.
#
#   scripts/gridengine-setup.sh [slots]     (default 8 slots in all.q)
#
# The cell it leaves behind:
#   SGE_ROOT=/var/lib/gridengine SGE_CELL=default, qmaster and execd on this host;
#   all.q with the parallel environments mpi (startmpi.sh -unique, $fill_up), mpislots ($round_robin) and
#   smpslots ($pe_slots), the last two without a start procedure, as Azure CycleCloud defines them;
#   the complex "exclusive"; a 1 s scheduling interval and unbuffered accounting, so qacct sees a job at once;
#   the unprivileged submit user sgetest (jobs owned by root run without TMPDIR).
# The PIDs of the daemons this run started go to $SGE_STATE, for scripts/gridengine-teardown.sh.
set -euo pipefail

slots=${1:-8}
export DEBIAN_FRONTEND=noninteractive SGE_ROOT=/var/lib/gridengine SGE_CELL=default
common=$SGE_ROOT/$SGE_CELL/common
spool=/var/spool/gridengine
SGE_STATE=${SGE_STATE:-/run/hpcship-gridengine.pids}
submit_user=sgetest

say() { printf 'gridengine: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
# poll runs a command every 0.25 s until it succeeds, for at most $1 seconds.
poll() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt "$deadline" ] || return 1
		sleep 0.25
	done
}
# daemon NAME PID: whether PID is a running NAME. The daemons leave their PID files behind when they stop, and
# the PID may since belong to another process.
daemon() { [ -n "${2:-}" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ]; }
# q runs qconf quietly (it reports every change on stderr) and shows its output only when it fails.
q() {
	local out
	out=$(qconf "$@" 2>&1) || {
		printf '%s\n' "$out" >&2
		return 1
	}
}

[ "$(id -u)" -eq 0 ] || die "must run as root"
start=$(date +%s.%N)

# Name resolution. Grid Engine resolves its host name to an address and back and refuses clients when the two
# names differ. In containers the host name usually maps to 127.0.0.1, whose first name is "localhost".
host=$(hostname)
[ -n "$host" ] || die "the machine has no host name"
if ! getent ahostsv4 "$host" >/dev/null; then
	say "$host does not resolve; adding it to /etc/hosts"
	printf '127.0.1.1\t%s\n' "$host" >>/etc/hosts
fi
addr=$(getent ahostsv4 "$host" | awk '{print $1; exit}')
if ! getent hosts "$addr" >/dev/null; then
	say "$addr has no name; adding $host to /etc/hosts"
	printf '%s\t%s\n' "$addr" "$host" >>/etc/hosts
fi

# Install. The packages ask three debconf questions; answering them first makes the postinst build the cell
# (init_cluster) for this host. policy-rc.d keeps the postinst from starting daemons (the qmaster must not
# start before host_aliases exists, and exim4 comes in with bsd-mailx).
if ! dpkg-query -W -f='${Status}\n' gridengine-master gridengine-exec gridengine-client 2>/dev/null |
	grep -c 'install ok installed' | grep -qx 3; then
	for p in common client master exec; do
		echo "gridengine-$p shared/gridengineconfig boolean true"
		echo "gridengine-$p shared/gridenginemaster string $host"
		echo "gridengine-$p shared/gridenginecell string $SGE_CELL"
	done | debconf-set-selections
	if ! apt-cache policy gridengine-master | grep -q 'Candidate: [0-9]'; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq
	fi
	added_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
	fi
	log=$(mktemp)
	if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends \
		gridengine-master gridengine-exec gridengine-client >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		die "apt-get install failed"
	fi
	rm -f "$log"
	[ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
[ -f "$common/bootstrap" ] || die "$common/bootstrap is missing: the package did not build the cell"
installed=$(date +%s.%N)

# Alias the reverse name of this host's address to the host name (the first name on a line is the canonical
# one, sge_host_aliases(5)), and point the clients at this host.
rev=$(/usr/lib/gridengine/gethostbyaddr "$addr" 2>/dev/null | awk '/^Hostname:/{print $2; exit}')
if [ -n "$rev" ] && [ "$rev" != "$host" ]; then
	printf '%s %s\n' "$host" "$rev" >"$common/host_aliases"
else
	rm -f "$common/host_aliases"
fi

qmaster_pid() { cat "$spool/qmaster/qmaster.pid" 2>/dev/null || true; }
execd_pid() { cat "$spool"/execd/*/execd.pid 2>/dev/null | head -n 1 || true; }
qmaster_up() { daemon sge_qmaster "$(qmaster_pid)"; }
execd_up() { daemon sge_execd "$(execd_pid)"; }
# started records a daemon this run started at once, so that teardown stops it even if a later step fails.
started() { echo "$1" >>"$SGE_STATE"; }

if ! qmaster_up || ! qconf -sh >/dev/null 2>&1; then
	if qmaster_up; then
		# Started before host_aliases existed (a postinst without policy-rc.d): it cannot serve clients.
		old=$(qmaster_pid)
		kill "$old" 2>/dev/null || true # it may have exited meanwhile
		poll 30 bash -c "! kill -0 $old" || kill -9 "$old" || true
	fi
	echo "$host" >"$common/act_qmaster"
	# A qmaster that just stopped holds its port for a while, and the new one then exits: start it again
	# until it answers, but never a second one next to a qmaster that is still coming up.
	for _ in 1 2 3 4 5 6; do
		qmaster_up || /usr/sbin/sge_qmaster
		poll 10 qconf -sh && break
	done
	qconf -sh >/dev/null || die "sge_qmaster does not answer; see $spool/qmaster/messages"
	started "$(qmaster_pid)"
fi
qmaster_up=$(date +%s.%N)

# The cell's objects; each step replaces what a previous run left.
w=$(mktemp -d)
trap 'rm -rf "$w"' EXIT
q -as "$host"
if ! qconf -sc | grep -q '^exclusive '; then
	{
		qconf -sc | grep -v '^#'
		echo 'exclusive excl BOOL EXCL YES YES 0 1000'
	} >"$w/complexes"
	q -Mc "$w/complexes"
fi
cat >"$w/exechost" <<EOF
hostname              $host
load_scaling          NONE
complex_values        exclusive=true
user_lists            NONE
xuser_lists           NONE
projects              NONE
xprojects             NONE
usage_scaling         NONE
report_variables      NONE
EOF
q -Ae "$w/exechost" 2>/dev/null || q -Me "$w/exechost"
# Debian ships startmpi.sh under /usr/share/gridengine/mpi, not $SGE_ROOT/mpi.
pe() { # name allocation_rule control_slaves job_is_first_task start stop
	cat >"$w/$1" <<EOF
pe_name            $1
slots              9999
user_lists         NONE
xuser_lists        NONE
start_proc_args    $5
stop_proc_args     $6
allocation_rule    $2
control_slaves     $3
job_is_first_task  $4
urgency_slots      min
accounting_summary FALSE
qsort_args         NONE
EOF
	q -Ap "$w/$1" 2>/dev/null || q -Mp "$w/$1"
}
pe mpi '$fill_up' TRUE FALSE '/usr/share/gridengine/mpi/startmpi.sh -unique $pe_hostfile' \
	/usr/share/gridengine/mpi/stopmpi.sh
pe mpislots '$round_robin' TRUE FALSE /bin/true /bin/true
pe smpslots '$pe_slots' FALSE TRUE /bin/true /bin/true
# qconf -Aq wants every attribute. load_thresholds NONE keeps a busy 2-core machine from alarming the queue.
{
	printf '%-20s %s\n' qname all.q hostlist "$host" seq_no 0 load_thresholds NONE suspend_thresholds NONE \
		nsuspend 1 suspend_interval 00:05:00 priority 0 min_cpu_interval 00:05:00 processors UNDEFINED \
		qtype 'BATCH INTERACTIVE' ckpt_list NONE pe_list 'mpi mpislots smpslots' rerun FALSE slots "$slots" \
		tmpdir /tmp shell /bin/bash prolog NONE epilog NONE shell_start_mode posix_compliant \
		starter_method NONE suspend_method NONE resume_method NONE terminate_method NONE notify 00:00:60 \
		owner_list NONE user_lists NONE xuser_lists NONE subordinate_list NONE complex_values NONE \
		projects NONE xprojects NONE calendar NONE initial_state default
	for l in rt cpu fsize data stack core rss vmem; do
		printf '%-20s INFINITY\n' "s_$l" "h_$l"
	done
} >"$w/all.q"
q -Aq "$w/all.q" 2>/dev/null || q -Mq "$w/all.q"
# qconf -Mconf takes the config's name as the file name. qconf -sconf folds long values onto continuation
# lines ending in "\"; join them before rewriting. min_uid/min_gid 0 lets a test run a root job on purpose;
# accounting_flush_time=00:00:00 makes a finished job visible to qacct at once. A line whose name holds a "="
# is debris of an earlier, badly folded edit.
qconf -sconf global | awk '
	/^#/ { next }
	{ line = line $0 }
	/\\$/ { sub(/[ \\]+$/, " ", line); next }
	{ print line; line = "" }' | awk '
	$1 ~ /=/ { next }
	$1 == "min_uid" || $1 == "min_gid" { print $1, 0; next }
	$1 == "reporting_params" { print $1, "accounting=true reporting=false flush_time=00:00:15 joblog=false",
		"sharelog=00:00:00 accounting_flush_time=00:00:00"; next }
	{ print }' >"$w/global"
(cd "$w" && q -Mconf global)
qconf -ssconf | sed -e 's/^schedule_interval .*/schedule_interval 0:0:1/' \
	-e 's/^flush_submit_sec .*/flush_submit_sec 1/' -e 's/^flush_finish_sec .*/flush_finish_sec 1/' >"$w/sched"
q -Msconf "$w/sched"
configured=$(date +%s.%N)

if ! execd_up; then
	/usr/sbin/sge_execd
	poll 10 execd_up || die "sge_execd did not start; see $spool/execd/*/messages"
	started "$(execd_pid)"
fi
queue_ready() {
	local line
	line=$(qstat -f -q "all.q@$host" 2>/dev/null | grep "^all.q@") || return 1
	# A sixth column holds the queue instance's state letters (a: alarm, u: unknown, E: error, d: disabled).
	[ -z "$(awk '{print $6}' <<<"$line")" ]
}
poll 60 queue_ready || {
	qstat -f >&2 || true
	die "all.q@$host did not come up"
}

id "$submit_user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$submit_user"
# Keep only the daemons of this and earlier runs that still run.
if [ -s "$SGE_STATE" ]; then
	live=$(while read -r p; do
		if daemon sge_qmaster "$p" || daemon sge_execd "$p"; then echo "$p"; fi
	done <"$SGE_STATE" | sort -u)
	if [ -n "$live" ]; then echo "$live" >"$SGE_STATE"; else rm -f "$SGE_STATE"; fi
fi
done=$(date +%s.%N)
say "$(awk -v a="$start" -v b="$installed" -v q="$qmaster_up" -v c="$configured" -v d="$done" \
	'BEGIN{printf "install=%.1fs qmaster=%.1fs configure=%.1fs execd=%.1fs total=%.1fs", b-a, q-b, c-q, d-c, d-a}') (host $host, $slots slots)"
