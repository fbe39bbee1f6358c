#!/usr/bin/env bash
# A real single-node Slurm (jobs/slurm/local-cluster.sh): the tiny pretraining
# job submitted with sbatch (jobs/slurm/pretrain.sbatch, ranks started by
# srun --mpi=pmix) runs to its end and leaves its log and checkpoint; a job
# sent SIGUSR1 (scancel --signal=USR1, as Slurm does before a time limit)
# saves, is requeued, resumes from its checkpoint and finishes.  No daemon is
# left running.
source "$(dirname "$0")/lib.sh"
scratch
CL=$TMP/cluster
if ! env_out=$(bash "$ROOT/jobs/slurm/local-cluster.sh" start "$CL" 2>"$TMP/cluster.err"); then
  fail "local Slurm cluster" "could not start: $(tail -3 "$TMP/cluster.err")"; finish
fi
eval "$env_out"
cleanup() { bash "$ROOT/jobs/slurm/local-cluster.sh" stop "$CL"; [ -n "${KEEP:-}" ] || rm -rf "$TMP"; }
trap cleanup EXIT

deck() {   # NAME STEPS INTERVAL SAVE_DIR: a run deck of the tiny preset on synthetic tokens
  cat >"$TMP/$1.deck" <<D
config = tiny
save-dir = $4
bench = true
max-length = 32
batch-size = 2
steps = $2
save-interval = $3
log = $TMP/$1.jsonl
peak-tflops = 1
D
}
submit() {   # NAME [OPTION...]: prints the job id (no SAVE_DIR: the deck's or the options')
  local name=$1; shift
  sbatch --parsable --nodes=1 --ntasks-per-node=2 --gpus-per-task=0 --cpus-per-task=1 --time=10 \
    --output="$TMP/$name.out" --chdir="$ROOT" \
    --export=ALL,DECK="$TMP/$name.deck",BUILD="$BUILD",OMP_NUM_THREADS=1 \
    "$ROOT/jobs/slurm/pretrain.sbatch" "$@"
}
job_state() { scontrol show job "$1" | grep -oE "JobState=[A-Z_]+" | cut -d= -f2; }
job_restarts() { scontrol show job "$1" | grep -oE "Restarts=[0-9]+" | cut -d= -f2; }
wait_done() {   # JOB SECONDS: until COMPLETED (true) or another end state / time-out (false)
  local deadline=$(($(date +%s) + $2)) s
  while [ "$(date +%s)" -lt "$deadline" ]; do
    s=$(job_state "$1")
    case $s in COMPLETED) return 0 ;; FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY) return 1 ;; esac
    sleep 0.5
  done
  return 1
}

# ---- a tiny pretraining job to its end ----
deck plain 40 20 "$TMP/plain.ck"   # the deck's save-dir
jid=$(submit plain)
if wait_done "$jid" 120 && [ "$(losses "$TMP/plain.jsonl" | wc -l)" = 40 ] && [ -d "$TMP/plain.ck/step_0000040" ] \
   && grep -q "2 ranks (dp 2" "$TMP/plain.out"; then
  pass "sbatch pretrain.sbatch: 2 ranks by srun --mpi=pmix, 40 steps logged, checkpoint step_0000040 in the deck's save-dir"
else
  fail "sbatch tiny job" "state $(job_state "$jid") ($(scontrol show job "$jid" | grep -o "Reason=[^ ]*")): $(tail -5 "$TMP/plain.out" 2>&1; tail -3 "$CL/slurmctld.log")"
fi

# ---- SIGUSR1: save, requeue, resume ----
deck usr1 3000 0 "$TMP/usr1.deck-dir"   # overridden by the job's own --save-dir
jid=$(submit usr1 --save-dir "$TMP/usr1.ck")
if wait_for '"step": 50,' "$TMP/usr1.jsonl" 120; then
  scancel --signal=USR1 "$jid"
  # Slurm holds a requeued batch job for a while (BeginTime); release it in 2 s
  # (a credential issued in the same second as the old one's revocation is refused).
  for _ in $(seq 300); do
    [ "$(job_restarts "$jid")" = 1 ] && [ "$(job_state "$jid")" = PENDING ] && break
    sleep 0.2
  done
  scontrol update jobid="$jid" StartTime=now+2 2>/dev/null || true
  stopped=$(grep -o "stopped at step [0-9]*" "$TMP/usr1.out" | grep -o "[0-9]*$")
  if wait_done "$jid" 180 && [ -n "$stopped" ] && grep -q "requeueing" "$TMP/usr1.out" \
     && grep -q "loaded checkpoint $TMP/usr1.ck/step_$(printf %07d "$stopped") at step $stopped" "$TMP/usr1.out" \
     && [ ! -e "$TMP/usr1.deck-dir" ] \
     && [ "$(job_restarts "$jid")" = 1 ] && [ "$(losses "$TMP/usr1.jsonl" | wc -l)" = 3000 ]; then
    pass "scancel --signal=USR1: saved at step $stopped in the job's --save-dir, requeued, resumed from it, finished all 3000 steps"
  else
    fail "USR1 requeue" "state $(job_state "$jid"), restarts $(job_restarts "$jid"), stopped '$stopped': $(tail -5 "$TMP/usr1.out")"
  fi
else
  fail "USR1 requeue" "the job never reached step 50: $(tail -5 "$TMP/usr1.out")"
fi

bash "$ROOT/jobs/slurm/local-cluster.sh" stop "$CL"
left=$(pgrep -f "(slurmctld|slurmd|munged|slurmstepd).*$CL" | wc -l)
[ "$left" -eq 0 ] && pass "the cluster stopped: no daemon left running" || fail "cluster stop" "$left daemons left"
finish
