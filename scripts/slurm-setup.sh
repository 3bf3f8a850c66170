#!/usr/bin/env bash
# Installs, configures and starts a single-host Slurm 22.05 cluster with accounting (Debian 12 packages) for
# the scheduler/slurm integration tests: munged, a private MariaDB, slurmdbd, slurmctld and slurmd, next to the
# Grid Engine cell of scripts/gridengine-setup.sh (which listens on 6444 and 6445). Run as root on a machine
# without systemd; safe to run again: it starts only what is not running.
#
#   scripts/slurm-setup.sh [cpus]     (default 8 CPUs advertised, whatever the machine has)
#
# The cluster it leaves behind:
#   ClusterName=hpcship, one node named like this host (hostname -s), partition hpc (the default);
#   slurmctld on 6817, slurmd on 6818, slurmdbd on 6819, MariaDB on 127.0.0.1:6820, each moved up by 100
#   while taken (the ports of the first run are kept in $state_dir/ports);
#   no cgroups (proctrack/linuxproc, task/none), jobacct_gather/linux for MaxRSS, MinJobAge 300 s;
#   the unprivileged submit user slurmtest.
# State, logs and the database live under /var/lib/hpcship-slurm, /run/hpcship-slurm and
# /var/log/hpcship-slurm. The daemons this run started go to $SLURM_STATE ("name pid" lines), for
# scripts/slurm-teardown.sh.
set -euo pipefail

cpus=${1:-8}
export DEBIAN_FRONTEND=noninteractive
SLURM_STATE=${SLURM_STATE:-/run/hpcship-slurm.pids}
state_dir=/var/lib/hpcship-slurm
run_dir=/run/hpcship-slurm
log_dir=/var/log/hpcship-slurm
submit_user=slurmtest
cluster=hpcship
packages=(slurmctld slurmd slurm-client slurmdbd munge mariadb-server procps iproute2)

say() { printf 'slurm: %s\n' "$*" >&2; }
die() {
	say "$*"
	exit 1
}
# poll runs a command every 0.2 s until it succeeds, for at most $1 seconds.
poll() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@" >/dev/null 2>&1; do
		[ $SECONDS -lt "$deadline" ] || return 1
		sleep 0.2
	done
}
# daemon NAME PID: whether PID is a running, non-zombie NAME. PID files outlive their daemons, and where PID 1
# reaps late an exited daemon stays a zombie for seconds.
daemon() {
	[ -n "${2:-}" ] && [ "$(cat "/proc/$2/comm" 2>/dev/null)" = "$1" ] &&
		! grep -q '^State:[[:space:]]*Z' "/proc/$2/status" 2>/dev/null
}
pidof_file() { cat "$1" 2>/dev/null || true; }
# started records a daemon this run started at once, so that teardown stops it even if a later step fails.
started() { echo "$1 $2" >>"$SLURM_STATE"; }
now() { date +%s.%N; }

[ "$(id -u)" -eq 0 ] || die "must run as root"
t0=$(now)

# slurmctld and slurmd find themselves by the short host name; it must resolve.
host=$(hostname -s)
[ -n "$host" ] || die "the machine has no host name"
if ! getent ahostsv4 "$host" >/dev/null; then
	say "$host does not resolve; adding it to /etc/hosts"
	printf '127.0.1.1\t%s\n' "$host" >>/etc/hosts
fi

# Install. policy-rc.d keeps the postinst scripts from starting munged and MariaDB on their own: this script
# starts its own instances and records them.
missing=()
for p in "${packages[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	if ! apt-cache policy slurmctld | grep -q 'Candidate: [0-9]'; then
		apt-get -o DPkg::Lock::Timeout=300 update -qq
	fi
	added_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		added_policy=1
	fi
	log=$(mktemp)
	if ! apt-get -o DPkg::Lock::Timeout=300 install -y --no-install-recommends "${missing[@]}" >"$log" 2>&1; then
		tail -n 40 "$log" >&2
		[ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
		die "apt-get install failed"
	fi
	rm -f "$log"
	[ -z "$added_policy" ] || rm -f /usr/sbin/policy-rc.d
fi
t_installed=$(now)

install -d -o slurm -g slurm -m 0755 "$state_dir" "$state_dir/ctld" "$state_dir/d" "$run_dir" "$log_dir"
install -d -m 0755 /etc/slurm

# Ports: those of an earlier run (so a re-run finds its own daemons), else the first free ones from the defaults.
port_free() { ! ss -ltnH "sport = :$1" | grep -q .; }
pick() {
	local p=$1
	while ! port_free "$p"; do p=$((p + 100)); done
	echo "$p"
}
if [ -f "$state_dir/ports" ]; then
	# shellcheck source=/dev/null
	. "$state_dir/ports"
else
	ctld_port=$(pick 6817)
	slurmd_port=$(pick 6818)
	dbd_port=$(pick 6819)
	db_port=$(pick 6820)
	printf 'ctld_port=%s\nslurmd_port=%s\ndbd_port=%s\ndb_port=%s\n' \
		"$ctld_port" "$slurmd_port" "$dbd_port" "$db_port" >"$state_dir/ports"
fi

mem=$(awk '/^MemTotal:/ { printf "%d", $2 / 1024 * 0.8 }' /proc/meminfo)
conf=$(mktemp)
cat >"$conf" <<EOF
# Written by scripts/slurm-setup.sh: a single-host cluster for the hpcship tests.
ClusterName=$cluster
SlurmctldHost=$host
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$state_dir/ctld
SlurmdSpoolDir=$state_dir/d
SlurmctldPidFile=$run_dir/slurmctld.pid
SlurmdPidFile=$run_dir/slurmd.pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
# No cgroups: works in VMs and containers without a delegated cgroup tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
# Accept the CPUs and memory below even where the machine has fewer.
SlurmdParameters=config_overrides
ReturnToService=2
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=5
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=$host
AccountingStoragePort=$dbd_port
JobCompType=jobcomp/none
KillWait=5
MinJobAge=300
NodeName=$host CPUs=$cpus Boards=1 SocketsPerBoard=1 CoresPerSocket=$cpus ThreadsPerCore=1 RealMemory=$mem State=UNKNOWN
PartitionName=hpc Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
if ! cmp -s "$conf" /etc/slurm/slurm.conf; then
	install -m 0644 "$conf" /etc/slurm/slurm.conf
fi
rm -f "$conf"
t_configured=$(now)

# munge: one munged per host serves every Slurm daemon and client; reuse a running one.
if [ ! -s /etc/munge/munge.key ]; then
	/usr/sbin/mungekey --create --keyfile=/etc/munge/munge.key
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
install -d -o munge -g munge -m 0755 /run/munge
if ! daemon munged "$(pidof_file /run/munge/munged.pid)"; then
	runuser -u munge -- /usr/sbin/munged
	poll 10 test -s /run/munge/munged.pid || die "munged did not start"
	started munged "$(pidof_file /run/munge/munged.pid)"
fi
poll 10 sh -c 'munge -n | unmunge' || die "munge does not answer"
t_munge=$(now)

# A private MariaDB on 127.0.0.1, so that a system MariaDB (if any) is not touched.
db_dir=$state_dir/mysql
db_sock=$run_dir/mysql/mysqld.sock
if [ ! -d "$db_dir/mysql" ]; then
	install -d -o mysql -g mysql -m 0750 "$db_dir"
	mariadb-install-db --no-defaults --user=mysql --datadir="$db_dir" \
		--auth-root-authentication-method=socket --skip-test-db >"$log_dir/mariadb-install.log" 2>&1 ||
		die "mariadb-install-db failed; see $log_dir/mariadb-install.log"
fi
install -d -o mysql -g mysql -m 0755 "$run_dir/mysql"
if ! daemon mariadbd "$(pidof_file "$run_dir/mysql/mysqld.pid")"; then
	setsid /usr/sbin/mariadbd --no-defaults --user=mysql --datadir="$db_dir" --socket="$db_sock" \
		--pid-file="$run_dir/mysql/mysqld.pid" --bind-address=127.0.0.1 --port="$db_port" --skip-log-bin \
		--innodb-buffer-pool-size=128M --innodb-lock-wait-timeout=900 \
		--log-error="$log_dir/mariadb.err" </dev/null >/dev/null 2>&1 &
	poll 60 test -s "$run_dir/mysql/mysqld.pid" || die "mariadbd did not start; see $log_dir/mariadb.err"
	started mariadbd "$(pidof_file "$run_dir/mysql/mysqld.pid")"
fi
poll 60 mariadb-admin --no-defaults --socket="$db_sock" -u root ping || die "MariaDB does not answer"
if [ ! -s "$state_dir/dbpass" ]; then
	(umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$state_dir/dbpass")
fi
dbpass=$(cat "$state_dir/dbpass")
mariadb --no-defaults --socket="$db_sock" -u root <<EOF
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$dbpass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
EOF
t_db=$(now)

dbd_conf=$(mktemp)
cat >"$dbd_conf" <<EOF
AuthType=auth/munge
DbdHost=$host
DbdPort=$dbd_port
SlurmUser=slurm
LogFile=$log_dir/slurmdbd.log
PidFile=$run_dir/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$db_port
StorageUser=slurm
StoragePass=$dbpass
StorageLoc=slurm_acct_db
EOF
install -o slurm -g slurm -m 0600 "$dbd_conf" /etc/slurm/slurmdbd.conf
rm -f "$dbd_conf"
if ! daemon slurmdbd "$(pidof_file "$run_dir/slurmdbd.pid")"; then
	/usr/sbin/slurmdbd
	poll 30 test -s "$run_dir/slurmdbd.pid" || die "slurmdbd did not start; see $log_dir/slurmdbd.log"
	started slurmdbd "$(pidof_file "$run_dir/slurmdbd.pid")"
fi
poll 60 sacctmgr -n list cluster || die "slurmdbd does not answer; see $log_dir/slurmdbd.log"
sacctmgr -n -P list cluster format=cluster | grep -qx "$cluster" || sacctmgr -i add cluster "$cluster" >/dev/null
t_dbd=$(now)

if ! daemon slurmctld "$(pidof_file "$run_dir/slurmctld.pid")"; then
	/usr/sbin/slurmctld
	poll 30 test -s "$run_dir/slurmctld.pid" || die "slurmctld did not start; see $log_dir/slurmctld.log"
	started slurmctld "$(pidof_file "$run_dir/slurmctld.pid")"
fi
poll 60 scontrol ping || die "slurmctld does not answer; see $log_dir/slurmctld.log"
t_ctld=$(now)

if ! daemon slurmd "$(pidof_file "$run_dir/slurmd.pid")"; then
	/usr/sbin/slurmd
	poll 30 test -s "$run_dir/slurmd.pid" || die "slurmd did not start; see $log_dir/slurmd.log"
	started slurmd "$(pidof_file "$run_dir/slurmd.pid")"
fi
node_state() { sinfo -h -n "$host" -o %T 2>/dev/null; }
# A drain or down state that an earlier run left in the saved state survives restarts: resume it once slurmd
# has registered.
poll 30 sh -c "sinfo -h -n '$host' -o %T | grep -qvE '^(unknown|not_responding)'" || true
if node_state | grep -qE 'drain|down|inval'; then
	scontrol update NodeName="$host" State=RESUME || true
fi
poll 60 sh -c "sinfo -h -n '$host' -o %T | grep -qE '^(idle|mixed|allocated)$'" || {
	sinfo -N -l >&2 || true
	die "node $host did not become idle; see $log_dir/slurmd.log"
}
t_node=$(now)

id "$submit_user" >/dev/null 2>&1 || useradd -m -s /bin/bash "$submit_user"
# Keep only the daemons of this and earlier runs that still run.
if [ -s "$SLURM_STATE" ]; then
	live=$(while read -r name pid; do
		if daemon "$name" "$pid"; then echo "$name $pid"; fi
	done <"$SLURM_STATE" | awk '!seen[$2]++')
	if [ -n "$live" ]; then echo "$live" >"$SLURM_STATE"; else rm -f "$SLURM_STATE"; fi
fi
say "$(awk -v a="$t0" -v b="$t_installed" -v c="$t_configured" -v m="$t_munge" -v d="$t_db" -v e="$t_dbd" \
	-v f="$t_ctld" -v g="$t_node" 'BEGIN { printf "install=%.1fs config=%.1fs munge=%.1fs mariadb=%.1fs " \
		"slurmdbd=%.1fs slurmctld=%.1fs slurmd=%.1fs total=%.1fs", b-a, c-b, m-c, d-m, e-d, f-e, g-f, g-a }')" \
	"(node $host, $cpus CPUs, partition hpc, slurmctld port $ctld_port)"
