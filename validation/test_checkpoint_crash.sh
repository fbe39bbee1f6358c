#!/usr/bin/env bash
# Crash safety: one rank killed with SIGKILL at a random moment around a save,
# CRASH_KILLS times (12 in make test; validation/full/test_checkpoint_crash_long.sh:
# 48).  After every kill each complete-looking checkpoint folder must verify;
# each restart must start right after the checkpoint --load auto names and log
# every step exactly as the uninterrupted run did.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
cat >"$TMP/crash.model" <<'M'
dim = 256
n_layers = 4
n_heads = 4
n_kv_heads = 2
ffn_dim = 512
vocab_size = 256
max_seq_len = 64
rope_theta = 10000
norm_eps = 1e-5
M
KILLS=${CRASH_KILLS:-12}
RUN=(-np 2 "$T" -c "$TMP/crash.model" --bench -l 16 -b 2 --zero 1 --steps $((10 * KILLS)) --seed 3 --peak-tflops 1)
"${MPIRUN[@]}" "${RUN[@]}" --log "$TMP/ref.jsonl" >"$TMP/ref.out" 2>&1 || { fail "reference run" "$(tail -3 "$TMP/ref.out")"; finish; }
mapfile -t ref < <(losses "$TMP/ref.jsonl")

RANDOM=12345   # the kill moments are random but the same every run
bad=0
# The step --load auto resumes from: latest's target, else the newest complete
# folder, else 0.
resume_step() {
  local s
  s=$(sed -n 's/^step_0*\([0-9][0-9]*\)$/\1/p' "$TMP/ck/latest" 2>/dev/null)
  [ -z "$s" ] && s=$(ls -d "$TMP"/ck/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sed 's/.*step_0*//' | sort -n | tail -1)
  echo "${s:-0}"
}
for i in $(seq 1 "$KILLS"); do
  out=$TMP/run$i.out
  expect=$(($(resume_step) + 1))
  "${MPIRUN[@]}" "${RUN[@]}" -i 1 -o "$TMP/ck" -f auto --keep-checkpoints 3 --log "$TMP/run$i.jsonl" >"$out" 2>&1 &
  pid=$!
  if ! wait_for "saving checkpoint" "$out" 120; then fail "crash $i" "no save started: $(tail -3 "$out")"; kill -9 $pid; bad=1; break; fi
  sleep "0.$(printf %03d $((RANDOM % 400)))"   # a random moment inside or just after the save
  victims=($(pgrep -f "^$T .*$TMP/ck"))
  kill -9 "${victims[$((RANDOM % ${#victims[@]}))]}" 2>/dev/null
  wait $pid 2>/dev/null
  # Every folder that looks complete must be complete.
  for d in "$TMP"/ck/step_*; do
    case $(basename "$d") in *.*) continue ;; esac   # .tmp / .deleting: never loaded
    if ! why=$("$BIN/llama-ckpt" info "$d" 2>&1 >/dev/null); then fail "crash $i" "$d looks complete but does not verify: $why"; bad=1; fi
  done
  # The run resumed from the checkpoint --load auto names, and every step it
  # logged equals the uninterrupted run's to the last bit.
  mapfile -t got < <(grep -o '"step": [0-9]*, "loss": [^,]*' "$TMP/run$i.jsonl" 2>/dev/null |
                     awk '{gsub(",", "", $2); print $2, $4}')
  if [ ${#got[@]} -eq 0 ]; then fail "crash $i" "the run logged no step before the kill"; bad=1; continue; fi
  first=${got[0]%% *}
  if [ "$first" != "$expect" ]; then
    fail "crash $i" "started at step $first, but the newest checkpoint says step $expect"; bad=1
  fi
  for g in "${got[@]}"; do
    step=${g%% *} loss=${g#* }
    if [ "$loss" != "${ref[$((step - 1))]}" ]; then
      fail "crash $i" "step $step has loss $loss, the uninterrupted run ${ref[$((step - 1))]}"; bad=1; break
    fi
  done
done
[ $bad -eq 0 ] && pass "$KILLS SIGKILLs around saves: every complete folder verifies, every restart resumed from the newest checkpoint and every step is exact (reached $(cat "$TMP/ck/latest"))"
finish
