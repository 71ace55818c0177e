#!/usr/bin/env bash
# Start a one-node Slurm cluster with job accounting on this machine, for trying
# rnngrad's Slurm path (workflow/profiles/slurm) on a workstation and for CI.
#
#   sudo scripts/slurm/start-local-slurm.sh     # install if missing, start, wait until ready
#   sudo scripts/slurm/stop-local-slurm.sh      # stop what this script started
#
# Debian 12 / Ubuntu 22.04+ packages (Slurm 22.05): munge, slurmctld, slurmd,
# slurm-client, slurmdbd, mariadb-server. Needs root; no systemd needed: every
# daemon is started by hand and its PID written to $STATE/pids, which the stop
# script reads. Idempotent: if the cluster already answers, it does nothing.
#
# What it sets up, and why:
#   - the node is this machine, with the CPUs and memory `slurmd -C` reports
#     (more memory than that and slurmd drains the node), GPUs if /dev/nvidiaN exist;
#   - one partition, "local", the default;
#   - accounting through slurmdbd + a private MariaDB (port $RNNGRAD_SLURM_DB_PORT,
#     data in $STATE/mysql), so `sacct` works: the executor plugin polls sacct, and
#     the test reads the state of every job from it;
#   - proctrack/linuxproc and task/none: the cgroup plugins fail in containers;
#   - no state from an earlier start: jobs, job IDs and accounting begin empty.
# Config files live in $STATE/etc; /etc/slurm/slurm.conf and slurmdbd.conf are
# symlinks to them (clients such as sinfo and sbatch read /etc/slurm). The script
# refuses to touch an /etc/slurm/slurm.conf that it did not write.
set -euo pipefail

STATE=${RNNGRAD_SLURM_STATE:-/var/tmp/rnngrad-slurm}
DB_PORT=${RNNGRAD_SLURM_DB_PORT:-3307}
TIMEOUT=${RNNGRAD_SLURM_TIMEOUT:-60}   # seconds to wait for each daemon
PARTITION=local
CLUSTER=rnngrad
PACKAGES=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server)

log() { printf '[start-local-slurm] %s\n' "$*" >&2; }
die() { log "ERROR: $*"; exit 1; }

# wait_for SECONDS DESCRIPTION COMMAND...: retry COMMAND every 0.2 s.
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${limit}s waiting for $what; last logs:"
      tail -n 20 "$STATE"/log/*.log >&2 2>/dev/null || true
      return 1
    fi
    sleep 0.2
  done
}

# record NAME PIDFILE: append the daemon's PID to $STATE/pids (read by the stop script).
record() {
  local pid
  pid=$(cat "$2")
  echo "$1 $pid" >>"$STATE/pids"
  log "$1 running, PID $pid"
}

# The node is up (idle, or running jobs of an earlier start) and sacct answers.
cluster_ready() {
  sinfo -h -N -o '%t' 2>/dev/null | grep -Eqx 'idle|mix|alloc' && sacct -n -X -S now-1minute >/dev/null 2>&1
}

[[ $(id -u) == 0 ]] || die "run as root (the daemons run as root and apt-get may be needed)"

if [[ -s $STATE/pids ]] && cluster_ready; then
  log "already running (PIDs in $STATE/pids); nothing to do"
  exit 0
fi

# --- install ---------------------------------------------------------------
export PATH=$PATH:/usr/sbin:/sbin
missing=()
for cmd in munged slurmctld slurmd sinfo slurmdbd mariadbd; do
  command -v "$cmd" >/dev/null || missing+=("$cmd")
done
if ((${#missing[@]})); then
  log "installing ${PACKAGES[*]} (missing: ${missing[*]})"
  export DEBIAN_FRONTEND=noninteractive
  # Keep the packages' init scripts from starting daemons: this script starts them.
  added_policy=
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d
    added_policy=1
  fi
  apt_log=${TMPDIR:-/tmp}/rnngrad-slurm-apt.log
  if ! { apt-get update -qq && apt-get install -y -qq --no-install-recommends "${PACKAGES[@]}"; } >"$apt_log" 2>&1; then
    [[ -n $added_policy ]] && rm -f /usr/sbin/policy-rc.d
    tail -n 30 "$apt_log" >&2
    die "apt-get install failed (log: $apt_log)"
  fi
  [[ -n $added_policy ]] && rm -f /usr/sbin/policy-rc.d
fi

# Leftovers of an earlier start that no longer answers: stop them first.
if [[ -s $STATE/pids ]]; then
  log "a previous start does not answer; stopping it"
  "$(dirname "${BASH_SOURCE[0]}")/stop-local-slurm.sh"
fi

# --- config ----------------------------------------------------------------
for f in slurm.conf slurmdbd.conf gres.conf; do
  target=/etc/slurm/$f
  if [[ -e $target && ! -L $target ]] || { [[ -L $target ]] && [[ $(readlink "$target") != "$STATE/etc/$f" ]]; }; then
    die "$target exists and was not written by this script: this machine already has a Slurm setup; use it instead"
  fi
done

# A fresh cluster on every start: slurmctld restores its saved jobs, and a job that was
# running when the daemons were last killed (a session that ended mid-run) then holds
# the node's CPUs, as far as the controller knows, until it notices the job is gone
# (seen: 30 minutes, every new job pending). Job IDs start again at 1, so the
# accounting database goes too: sacct would otherwise mix old jobs into new IDs.
rm -rf "$STATE"/{ctld,spool,run,mysql}
mkdir -p "$STATE"/{etc,log,run,ctld,spool}
chmod 755 "$STATE"
: >"$STATE/pids"

host=$(hostname -s)
# slurmd -C prints the node line as the hardware is: CPUs, sockets, cores, RealMemory.
node_hw=$(slurmd -C | head -n 1 | sed -e 's/^NodeName=[^ ]* //')
gpus=$(find /dev -maxdepth 1 -regex '/dev/nvidia[0-9]+' 2>/dev/null | wc -l)
gres=""
if ((gpus > 0)); then
  gres="Gres=gpu:$gpus"
  echo "Name=gpu File=/dev/nvidia[0-$((gpus - 1))]" >"$STATE/etc/gres.conf"
else
  : >"$STATE/etc/gres.conf"
fi

db_pass=$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')

cat >"$STATE/etc/slurm.conf" <<CONF
# Written by rnngrad scripts/slurm/start-local-slurm.sh: a one-node test cluster.
ClusterName=$CLUSTER
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/spool
SlurmctldPidFile=$STATE/run/slurmctld.pid
SlurmdPidFile=$STATE/run/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
# cgroup plugins do not work in containers
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
# reject at submission a job that no node can run, instead of leaving it pending forever
EnforcePartLimits=ALL
MpiDefault=none
MailProg=/bin/true
AccountingStorageType=accounting_storage/slurmdbd
AccountingStorageHost=localhost
JobAcctGatherType=jobacct_gather/linux
# store --comment (the plugin puts the rule name there) so sacct can show it
AccountingStoreFlags=job_comment
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$host NodeAddr=127.0.0.1 $node_hw $gres State=UNKNOWN
PartitionName=$PARTITION Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF

cat >"$STATE/etc/slurmdbd.conf" <<CONF
# Written by rnngrad scripts/slurm/start-local-slurm.sh
AuthType=auth/munge
DbdHost=localhost
SlurmUser=root
LogFile=$STATE/log/slurmdbd.log
PidFile=$STATE/run/slurmdbd.pid
StorageType=accounting_storage/mysql
StorageHost=127.0.0.1
StoragePort=$DB_PORT
StorageUser=slurm
StoragePass=$db_pass
StorageLoc=slurm_acct_db
CONF
chmod 600 "$STATE/etc/slurmdbd.conf"

mkdir -p /etc/slurm
for f in slurm.conf slurmdbd.conf gres.conf; do
  ln -sfn "$STATE/etc/$f" "/etc/slurm/$f"
done

# --- munge -----------------------------------------------------------------
if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
  log "munge already running (not started here, will not be stopped)"
else
  [[ -s /etc/munge/munge.key ]] || runuser -u munge -- mungekey --create
  mkdir -p /run/munge && chown munge:munge /run/munge
  runuser -u munge -- munged --force
  wait_for "$TIMEOUT" munged bash -c 'munge -n | unmunge'
  record munged /run/munge/munged.pid
fi

# --- MariaDB (private instance) ----------------------------------------------
sock=$STATE/run/mysqld.sock
# always a new database: the state above was wiped
mkdir -p "$STATE/mysql"
chown mysql:mysql "$STATE/mysql"
mariadb-install-db --no-defaults --user=mysql --datadir="$STATE/mysql" \
  --auth-root-authentication-method=socket --skip-test-db >"$STATE/log/mariadb-install.log" 2>&1 ||
  { tail -n 20 "$STATE/log/mariadb-install.log" >&2; die "mariadb-install-db failed"; }
chown mysql:mysql "$STATE/run"
setsid mariadbd --no-defaults --user=mysql --datadir="$STATE/mysql" --socket="$sock" \
  --port="$DB_PORT" --bind-address=127.0.0.1 --pid-file="$STATE/run/mysqld.pid" \
  --log-error="$STATE/log/mariadb.log" --innodb-buffer-pool-size=64M </dev/null >/dev/null 2>&1 &
wait_for "$TIMEOUT" MariaDB mariadb-admin --no-defaults --socket="$sock" -uroot ping
wait_for 10 "MariaDB pid file" test -s "$STATE/run/mysqld.pid"
record mariadbd "$STATE/run/mysqld.pid"
mariadb --no-defaults --socket="$sock" -uroot <<SQL
CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
ALTER USER 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_pass';
GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';
SQL

# --- slurmdbd, slurmctld, slurmd ----------------------------------------------
slurmdbd
wait_for "$TIMEOUT" slurmdbd sacctmgr -n list cluster
record slurmdbd "$STATE/run/slurmdbd.pid"
# The cluster must exist in the database before slurmctld registers with it.
sacctmgr -i -Q add cluster "$CLUSTER" >/dev/null 2>&1 || true

slurmctld
wait_for "$TIMEOUT" slurmctld scontrol ping
record slurmctld "$STATE/run/slurmctld.pid"

slurmd
wait_for "$TIMEOUT" slurmd test -s "$STATE/run/slurmd.pid"
record slurmd "$STATE/run/slurmd.pid"

if ! wait_for "$TIMEOUT" "node $host idle and sacct answering" cluster_ready; then
  sinfo -N -l >&2 || true
  die "the cluster did not become ready; logs in $STATE/log"
fi
log "ready: partition '$PARTITION', account 'root', node $host ($node_hw${gres:+ $gres})"
sinfo -N -o '%N %P %T %c %m %G' >&2
