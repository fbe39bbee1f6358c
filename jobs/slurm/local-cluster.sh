#!/usr/bin/env bash
# A real single-node Slurm on this machine, for the tests and for trying the
# sbatch scripts: installs Debian's slurm-wlm and munge when missing, writes a
# slurm.conf for this host under a state folder, starts munged, slurmctld and
# slurmd there, and stops them again.  Nothing outside the folder is touched
# (its own munge key and socket, ports 16817/16818).
#
#   eval "$(jobs/slurm/local-cluster.sh start DIR)"   # exports SLURM_CONF
#   sbatch ...; squeue; scontrol show job ...
#   jobs/slurm/local-cluster.sh stop DIR              # no daemon left running
set -euo pipefail
cmd=${1:-}; dir=${2:-}
[ -n "$cmd" ] && [ -n "$dir" ] || { echo "usage: $0 start|stop DIR" >&2; exit 2; }

install_missing() {
  local missing=()
  for p in slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return
  [ "$(id -u)" -eq 0 ] || { echo "local-cluster: needs root to install ${missing[*]}" >&2; exit 1; }
  echo "local-cluster: installing ${missing[*]}" >&2
  DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
}

write_conf() {
  local host cpus mem
  host=$(hostname -s)
  cpus=$(getconf _NPROCESSORS_ONLN)   # not nproc: it honours OMP_NUM_THREADS
  mem=$(($(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 512))
  cat >"$dir/slurm.conf" <<CONF
ClusterName=llamahpc
SlurmctldHost=$host
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$dir/munge.sock
SlurmUser=root
SlurmdUser=root
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/slurmctld.log
SlurmdLogFile=$dir/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
JobRequeue=1
MinJobAge=3600
KillWait=30
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=YES
CONF
}

wait_until() {   # SECONDS CMD...: retries CMD until it succeeds
  local deadline=$(($(date +%s) + $1)); shift
  until "$@" >/dev/null 2>&1; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.2
  done
}

start() {
  install_missing
  mkdir -p "$dir/state" "$dir/spool"
  dir=$(cd "$dir" && pwd)
  write_conf
  [ -f "$dir/munge.key" ] || mungekey -c -k "$dir/munge.key" -b 1024 >&2
  chmod 0400 "$dir/munge.key"
  munged --force --socket "$dir/munge.sock" --key-file "$dir/munge.key" \
    --pid-file "$dir/munged.pid" --log-file "$dir/munged.log" --seed-file "$dir/munged.seed"
  export SLURM_CONF=$dir/slurm.conf
  slurmctld -f "$SLURM_CONF"
  slurmd -f "$SLURM_CONF"
  if ! wait_until 120 bash -c "sinfo -h -o %T | grep -Eq '^(idle|mixed|allocated)'"; then
    echo "local-cluster: the node did not come up (state: $(sinfo -h -o %T 2>&1)); the logs end:" >&2
    tail -n 5 "$dir/slurmctld.log" "$dir/slurmd.log" "$dir/munged.log" >&2 2>/dev/null || true
    stop; exit 1
  fi
  echo "export SLURM_CONF=$dir/slurm.conf"
}

stop_daemon() {   # PIDFILE
  [ -f "$1" ] || return 0
  local pid; pid=$(cat "$1")
  kill "$pid" 2>/dev/null || true
  wait_until 30 bash -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

stop() {
  dir=$(cd "$dir" 2>/dev/null && pwd) || return 0
  if [ -f "$dir/slurm.conf" ]; then
    SLURM_CONF=$dir/slurm.conf scancel --full --quiet -u "$(id -un)" 2>/dev/null || true
  fi
  stop_daemon "$dir/slurmd.pid"
  stop_daemon "$dir/slurmctld.pid"
  stop_daemon "$dir/munged.pid"
  # Job steps of this cluster that outlived slurmd.
  pkill -f "slurmstepd.*$dir" 2>/dev/null || true
}

case $cmd in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop DIR" >&2; exit 2 ;;
esac
