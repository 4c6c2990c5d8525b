#!/usr/bin/env bash
# A single-node Slurm on this machine, for the `slurm` tests and for trying `--executor slurm`.
#
#   scripts/slurm-local.sh start    # munged + slurmctld + slurmd; waits until the node is idle
#   scripts/slurm-local.sh status   # exit 0 when the node answers, 1 otherwise
#   scripts/slurm-local.sh stop     # kills the three daemons and removes the state folder
#   scripts/slurm-local.sh env      # prints the export line a client needs
#
# All state (munge key and socket, slurm.conf, spool, pid and log files) lives in
# ${IMPBENCH_SLURM_DIR:-/tmp/impbench-slurm}; nothing under /etc is touched. `start` and `stop`
# are idempotent. Clients find the cluster through SLURM_CONF: `start` prints
# `export SLURM_CONF=...` on its last line (eval "$(scripts/slurm-local.sh start | tail -1)").
# Needs root (the daemons run as root) and Debian's slurm-wlm and munge; `start` installs them
# through scripts/system-deps.sh when they are missing.
set -euo pipefail
export PATH=$PATH:/usr/sbin:/sbin  # the daemons

DIR=${IMPBENCH_SLURM_DIR:-/tmp/impbench-slurm}
PORT=${IMPBENCH_SLURM_PORT:-6817}          # slurmctld; slurmd listens on PORT+1
TIMEOUT=${IMPBENCH_SLURM_TIMEOUT:-60}      # seconds `start` waits for the node
CONF=$DIR/slurm.conf
SOCKET=$DIR/munge/munge.socket.2
HERE=$(cd "$(dirname "$0")" && pwd)

say() { echo "slurm-local: $*" >&2; }
die() { say "$*"; exit 1; }

pid_alive() {  # pid_alive FILE: the pid in FILE names a running process
  [ -s "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null
}

node_state() {  # the node's state as sinfo reports it (empty when slurmctld does not answer)
  SLURM_CONF=$CONF timeout 10 sinfo -h -N -n localhost -o '%T' 2>/dev/null | head -1 || true
}

write_conf() {
  local hw cpus sockets cores threads mem
  hw=$(slurmd -C | head -1)
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$hw")
  sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$hw")
  cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$hw")
  threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$hw")
  mem=$(( mem * 95 / 100 ))  # leave slurmd's own check some room
  cat >"$CONF" <<EOF
# Written by scripts/slurm-local.sh: a single-node Slurm for impbench's tests.
ClusterName=impbench
SlurmctldHost=localhost
SlurmctldPort=$PORT
SlurmdPort=$((PORT + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$SOCKET
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool/%n
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
# Memory: jobacct_gather samples every task each second and kills a job past its --mem.
JobAcctGatherType=jobacct_gather/linux
JobAcctGatherFrequency=task=1
JobAcctGatherParams=OverMemoryKill
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=2,bf_interval=2
# Finished jobs stay visible to squeue/scontrol for an hour (there is no accounting database).
MinJobAge=3600
KillWait=5
InactiveLimit=0
Waittime=0
DefMemPerCPU=$(( mem / cpus ))
NodeName=localhost NodeHostname=localhost NodeAddr=127.0.0.1 CPUs=$cpus SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
}

start_munge() {
  pid_alive "$DIR/munge/munged.pid" && return 0
  mkdir -p "$DIR/munge"
  chmod 0700 "$DIR/munge"
  if [ ! -s "$DIR/munge/munge.key" ]; then
    (umask 077; dd if=/dev/urandom of="$DIR/munge/munge.key" bs=1 count=1024 status=none)
  fi
  chmod 0400 "$DIR/munge/munge.key"
  munged --force --key-file="$DIR/munge/munge.key" --socket="$SOCKET" \
    --pid-file="$DIR/munge/munged.pid" --log-file="$DIR/munge/munged.log" \
    --seed-file="$DIR/munge/munged.seed" ||
    die "munged did not start; see $DIR/munge/munged.log"
}

start() {
  [ "$(id -u)" = 0 ] || die "start needs root (the daemons run as root)"
  if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null || ! command -v munged >/dev/null ||
     ! command -v sbatch >/dev/null; then
    say "installing slurm-wlm and munge (scripts/system-deps.sh)"
    bash "$HERE/system-deps.sh"
    command -v slurmctld >/dev/null && command -v munged >/dev/null ||
      die "slurm-wlm / munge are not installed: apt-get install -y slurm-wlm munge"
  fi
  local state
  state=$(node_state)
  if [ -n "$state" ] && pid_alive "$DIR/slurmctld.pid" && pid_alive "$DIR/slurmd.pid"; then
    say "already running (node $state)"
  else
    mkdir -p "$DIR/state" "$DIR/spool"
    chmod 0755 "$DIR"
    write_conf
    start_munge
    pid_alive "$DIR/slurmctld.pid" || slurmctld -f "$CONF" -c ||
      die "slurmctld did not start; see $DIR/slurmctld.log"
    pid_alive "$DIR/slurmd.pid" || slurmd -f "$CONF" -N localhost ||
      die "slurmd did not start; see $DIR/slurmd.log"
  fi
  local waited=0
  while :; do
    state=$(node_state)
    case "$state" in
      idle|mixed|allocated) break ;;
    esac
    if [ "$waited" -ge "$TIMEOUT" ]; then
      die "the node is not idle after ${TIMEOUT} s (state: ${state:-slurmctld does not answer}); logs: $DIR/slurmctld.log, $DIR/slurmd.log"
    fi
    sleep 1
    waited=$((waited + 1))
  done
  say "up: node localhost $state, partition debug; state in $DIR"
  echo "export SLURM_CONF=$CONF"
}

stop_daemon() {  # stop_daemon PIDFILE NAME: TERM, then KILL after 10 s
  local file=$1 name=$2 pid i
  pid_alive "$file" || return 0
  pid=$(cat "$file")
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 20); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.5
  done
  say "$name ($pid) did not stop on TERM; killing it"
  kill -9 "$pid" 2>/dev/null || true
}

stop() {
  if [ -f "$CONF" ]; then  # no job of ours outlives the cluster
    SLURM_CONF=$CONF timeout 10 scancel --full --quiet --user="$(id -un)" 2>/dev/null || true
  fi
  stop_daemon "$DIR/slurmd.pid" slurmd
  stop_daemon "$DIR/slurmctld.pid" slurmctld
  stop_daemon "$DIR/munge/munged.pid" munged
  rm -rf "$DIR"
  say "stopped"
}

status() {
  local state
  state=$(node_state)
  if [ -n "$state" ]; then
    echo "slurm-local: running, node localhost $state; SLURM_CONF=$CONF"
  else
    echo "slurm-local: not running (state folder $DIR)"
    return 1
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  env) echo "export SLURM_CONF=$CONF" ;;
  *) echo "usage: $0 start|stop|status|env" >&2; exit 2 ;;
esac
