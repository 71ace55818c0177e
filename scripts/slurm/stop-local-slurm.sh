#!/usr/bin/env bash
# Stop the daemons that scripts/slurm/start-local-slurm.sh started, by the PIDs it
# wrote to $STATE/pids, in reverse order of start: TERM, then KILL after a grace
# period. Safe to call twice, and when nothing runs. Exit status 0 unless a daemon
# survives KILL.
set -uo pipefail

STATE=${RNNGRAD_SLURM_STATE:-/var/tmp/rnngrad-slurm}
GRACE=${RNNGRAD_SLURM_STOP_GRACE:-10}   # seconds before KILL

log() { printf '[stop-local-slurm] %s\n' "$*" >&2; }

pids_file=$STATE/pids
if [[ ! -s $pids_file ]]; then
  log "nothing to stop ($pids_file is empty or missing)"
  exit 0
fi

# alive PID NAME: the process exists, is not a zombie waiting to be reaped, and is
# the daemon we started (not a reused PID).
alive() {
  local stat comm state
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  comm=${stat#*(}; comm=${comm%)*}     # /proc/PID/stat: pid (comm) state ...
  state=${stat##*) }; state=${state%% *}
  [[ $state != Z && $comm == "$2"* ]]
}

mapfile -t entries < <(tac "$pids_file")
status=0
for entry in "${entries[@]}"; do
  read -r name pid <<<"$entry"
  [[ -n ${pid:-} ]] || continue
  if ! alive "$pid" "$name"; then
    log "$name (PID $pid) is not running"
    continue
  fi
  kill -TERM "$pid" 2>/dev/null
  for ((i = 0; i < GRACE * 5; i++)); do
    alive "$pid" "$name" || break
    sleep 0.2
  done
  if alive "$pid" "$name"; then
    log "$name (PID $pid) ignored TERM for ${GRACE}s; sending KILL"
    kill -KILL "$pid" 2>/dev/null
    sleep 0.5
  fi
  if alive "$pid" "$name"; then
    log "$name (PID $pid) is still running"
    status=1
  else
    log "stopped $name (PID $pid)"
  fi
done
((status == 0)) && : >"$pids_file"
exit "$status"
