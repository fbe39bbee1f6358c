#!/usr/bin/env bash
# Pretraining with mpirun and a hostfile, like the Colossal-AI examples: one
# rank per GPU, ranks filled node by node so a tensor-parallel group (the
# fastest-varying grid dimension) sits on one node.
#
#   HOSTFILE=hosts NODES=4 GPUS_PER_NODE=8 jobs/mpirun/pretrain.sh inputs/llama-65b.deck
#   HOSTFILE=hosts jobs/mpirun/pretrain.sh -c 65b --tp 8 --pp 4 -b 8 -l 2048 -g -x bf16 --device cuda ...
#
# hosts holds "node-name slots=8" lines.  Extra arguments go to llama-train.
# Relative paths (HOSTFILE, the deck, -o, --log) are taken from the folder the
# script is called from; BUILD defaults to the repository's build/.
#
# Stopping: kill -TERM (or Ctrl-C) of this script makes every rank finish its
# step, save a checkpoint and exit 0 (resume with --load auto).  The script
# sends mpirun SIGUSR1, which Open MPI forwards to the ranks; SIGTERM or SIGINT
# to mpirun itself would give them only odls_base_sigkill_timeout (1 s by
# default; raised to KILL_GRACE, default 600 s, here) and stop relaying their
# output meanwhile; so mpirun runs in a session of its own (setsid), where a
# terminal's Ctrl-C (SIGINT to the whole foreground process group) does not
# reach it.  A second TERM/INT stops mpirun outright; a hang-up counts as TERM.
# A stop that comes while mpirun is still starting the ranks (it forwards a
# signal only to ranks it has started) is sent again every 2 s until mpirun
# exits; a rank takes repeated SIGUSR1s as one.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BUILD=${BUILD:-$ROOT/build}
HOSTFILE=${HOSTFILE:?set HOSTFILE to a file of "host slots=N" lines}
GPUS_PER_NODE=${GPUS_PER_NODE:-$(awk -F'slots=' 'NF > 1 {print $2 + 0; exit}' "$HOSTFILE")}
NODES=${NODES:-$(grep -c 'slots=' "$HOSTFILE")}
NP=$((NODES * GPUS_PER_NODE))
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpi=(mpirun --hostfile "$HOSTFILE" -np "$NP" --map-by "ppr:$GPUS_PER_NODE:node" --bind-to none
     -x OMP_NUM_THREADS -x PATH -x LD_LIBRARY_PATH)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
[ -n "${MPIRUN_EXTRA:-}" ] && mpi+=($MPIRUN_EXTRA)
mpi+=(--mca odls_base_sigkill_timeout "${KILL_GRACE:-600}")
stops=0 pid="" resender=""
stop() {   # the signal first, then the note: after a hang-up the terminal is gone
  stops=$((stops + 1))
  [ -n "$pid" ] || return 0   # before the launch: not launched at all (below)
  if [ $stops -eq 1 ]; then
    kill -USR1 "$pid" 2>/dev/null || true
    (while sleep 2 && kill -USR1 "$pid" 2>/dev/null; do :; done) &
    resender=$!
    echo "pretrain.sh: stopping: the ranks finish their step, save and exit (again to abort)" >&2 || true
  else kill -TERM "$pid" 2>/dev/null || true; fi
}
trap stop TERM INT HUP
own_session=()
command -v setsid >/dev/null && own_session=(setsid)   # a background job: setsid does not fork
if [ $stops -gt 0 ]; then echo "pretrain.sh: stopped before launching" >&2; exit 143; fi
"${own_session[@]}" "${mpi[@]}" "$BUILD/llama-train" "$@" &
pid=$!
[ $stops -gt 0 ] && { stops=0; stop; }   # a stop between the check and pid=$!
echo "llama-train on $NODES nodes × $GPUS_PER_NODE ranks ($NP) from $HOSTFILE"
while kill -0 "$pid" 2>/dev/null; do wait "$pid" || true; done   # a trapped signal ends a wait early
rc=0; wait "$pid" || rc=$?   # mpirun's exit status (bash keeps it)
[ -z "$resender" ] || kill "$resender" 2>/dev/null || true
exit $rc
