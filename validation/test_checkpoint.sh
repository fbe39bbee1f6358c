#!/usr/bin/env bash
# Checkpoints: bit-exact resume after SIGKILL, resharding to other layouts,
# crash safety of saves, preemption by SIGTERM (also during an evaluation),
# format-2 and format-3 checkpoints (the loader position as 65 values, or
# without its sources' names) of a --data-mix run resuming bit-exact, and a
# source added between save and resume (positions matched by name).
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
DATA=$TMP/data
make_byte_shards "$DATA"
# 16 sequences per step in every layout below.
COMMON=(-c tiny -d "$DATA" -l 32 --lr 3e-3 --warmup-steps 2 --seed 5 --peak-tflops 1)

# ---- bit-exact resume after SIGKILL after the step-10 save: dp2 × tp2 ZeRO-1, and
# dp4 ZeRO-3 with the optimizer offloaded (host memory on CPU ranks anyway) ----
sigkill_resume() {   # NAME RANKS ARGS...
  local name=$1 np=$2; shift 2
  local run=(-np "$np" "$T" "${COMMON[@]}" "$@" --steps 20)
  "${MPIRUN[@]}" "${run[@]}" --log "$TMP/$name-full.jsonl" >"$TMP/$name-full.out" 2>&1
  "${MPIRUN[@]}" "${run[@]}" -i 5 -o "$TMP/$name-ck" --log "$TMP/$name-part.jsonl" >"$TMP/$name-part.out" 2>&1 &
  local pid=$!
  if ! wait_for "saved checkpoint .*step_0000010" "$TMP/$name-part.out" 120; then
    kill -9 $pid 2>/dev/null; fail "$name: resume after SIGKILL" "no checkpoint at step 10: $(tail -3 "$TMP/$name-part.out")"
    return
  fi
  kill -9 $(pgrep -f "^$T .*$TMP/$name-ck") 2>/dev/null; wait $pid 2>/dev/null
  local n_before saved first
  n_before=$(losses "$TMP/$name-part.jsonl" | wc -l)
  # The kill may land after the step-15 save too: resume from what was saved last.
  saved=$(ls -d "$TMP/$name-ck"/step_* 2>/dev/null | grep -E '/step_[0-9]+$' | sed 's/.*step_0*//' | sort -n | tail -1)
  "${MPIRUN[@]}" "${run[@]}" -i 5 -o "$TMP/$name-ck" -f auto --log "$TMP/$name-resumed.jsonl" >"$TMP/$name-resumed.out" 2>&1
  first=$(grep -o '"step": [0-9]*' "$TMP/$name-resumed.jsonl" | head -1 | cut -d' ' -f2)
  if [ -n "$saved" ] && [ "$saved" -lt 20 ] && [ "$first" = $((saved + 1)) ] &&
     diff <(losses "$TMP/$name-full.jsonl" | tail -n $((20 - saved))) <(losses "$TMP/$name-resumed.jsonl") >/dev/null; then
    pass "$name: resume after SIGKILL: steps $first-20 identical to the last bit (killed after $n_before steps)"
  else
    fail "$name: resume after SIGKILL" "newest save step '$saved', first resumed step '$first'; losses: $(paste <(losses "$TMP/$name-full.jsonl" | tail -n 10) <(losses "$TMP/$name-resumed.jsonl") | head -3)"
  fi
}
sigkill_resume dp2tp2-zero1 4 -b 4 --grad-accum 2 --tp 2 --zero 1
sigkill_resume dp4-zero3-offload 4 -b 2 --grad-accum 2 --zero 3 --offload optimizer

# ---- resharding: saved by dp2×tp2×pp2 with ZeRO-1 at step 5 ----
"${MPIRUN[@]}" -np 8 "$T" "${COMMON[@]}" -b 4 --grad-accum 2 --tp 2 --pp 2 --zero 1 --steps 10 \
  -i 5 -o "$TMP/rs" --log "$TMP/rs-full.jsonl" >"$TMP/rs.out" 2>&1 || fail "resharding: the 8-rank run" "$(tail -3 "$TMP/rs.out")"
want=$(losses "$TMP/rs-full.jsonl" | tail -n 5)
reshard() {   # NAME RANKS ARGS...
  local name=$1 np=$2; shift 2
  rm -f "$TMP/$name.jsonl"
  if ! "${MPIRUN[@]}" -np "$np" "$T" "${COMMON[@]}" --steps 10 -f "$TMP/rs/step_0000005" "$@" \
      --log "$TMP/$name.jsonl" >"$TMP/$name.out" 2>&1; then
    fail "resharding to $name" "$(tail -3 "$TMP/$name.out")"; return
  fi
  local why
  why=$(paste <(echo "$want") <(losses "$TMP/$name.jsonl") | awk '{d=$1-$2; if (d<0) d=-d; if (NF != 2 || d > 1e-5*$1) {print "step " NR+5 ": " $1 " vs " $2; exit 1}}') \
    && [ "$(losses "$TMP/$name.jsonl" | wc -l)" = 5 ] && pass "resharding dp2×tp2×pp2 ZeRO-1 → $name: next 5 losses within 1e-5" \
    || fail "resharding to $name" "${why:-wrong number of steps}"
}
reshard "one-rank" 1 -b 8 --grad-accum 2
reshard "tp4" 4 -b 8 --grad-accum 2 --tp 4
reshard "dp4-zero2" 4 -b 2 --grad-accum 2 --zero 2
reshard "pp2" 2 -b 8 --grad-accum 2 --pp 2
reshard "dp2pp2-zero3" 4 -b 4 --grad-accum 2 --pp 2 --zero 3
# Interleaved chunks (stage 0 holds layers 0 and 2): loaded, and saved at step 8
# for one rank to finish.
reshard "pp2-vpp2" 2 -b 8 --grad-accum 2 --pp 2 --vpp 2 -i 8 -o "$TMP/vpp"
"${MPIRUN[@]}" -np 1 "$T" "${COMMON[@]}" -b 8 --grad-accum 2 --steps 10 -f "$TMP/vpp/step_0000008" \
  --log "$TMP/vpp-one.jsonl" >"$TMP/vpp-one.out" 2>&1 || fail "pp2 vpp2 → one rank" "$(tail -3 "$TMP/vpp-one.out")"
why=$(paste <(echo "$want" | tail -n 2) <(losses "$TMP/vpp-one.jsonl") |
      awk '{d=$1-$2; if (d<0) d=-d; if (NF != 2 || d > 1e-5*$1) {print "step " NR+8 ": " $1 " vs " $2; exit 1}} END {if (NR != 2) {print NR " steps"; exit 1}}') &&
  pass "a pp2 vpp2 checkpoint (step 8) → one rank: steps 9-10 within 1e-5 of the 8-rank run" ||
  fail "pp2 vpp2 checkpoint → one rank" "$why"

# ---- ZeRO-3 checkpoints are layout-free: dp4 ZeRO-3 (step 5) → one rank (step 8) → dp2×tp2 ZeRO-1 ----
"${MPIRUN[@]}" -np 4 "$T" "${COMMON[@]}" -b 2 --grad-accum 2 --zero 3 --steps 10 -i 5 -o "$TMP/z3" \
  --log "$TMP/z3-full.jsonl" >"$TMP/z3.out" 2>&1 || fail "ZeRO-3 resharding: the dp4 run" "$(tail -3 "$TMP/z3.out")"
"${MPIRUN[@]}" -np 1 "$T" "${COMMON[@]}" -b 8 --grad-accum 2 --steps 10 -f "$TMP/z3/step_0000005" -i 8 -o "$TMP/z3-one" \
  --log "$TMP/z3-one.jsonl" >"$TMP/z3-one.out" 2>&1 || fail "ZeRO-3 → one rank" "$(tail -3 "$TMP/z3-one.out")"
"${MPIRUN[@]}" -np 4 "$T" "${COMMON[@]}" -b 4 --grad-accum 2 --tp 2 --zero 1 --steps 10 -f "$TMP/z3-one/step_0000008" \
  --log "$TMP/z3-tp2.jsonl" >"$TMP/z3-tp2.out" 2>&1 || fail "ZeRO-3 → one rank → dp2×tp2 ZeRO-1" "$(tail -3 "$TMP/z3-tp2.out")"
why=$(paste <(losses "$TMP/z3-full.jsonl" | tail -n 5) <(losses "$TMP/z3-one.jsonl" | head -n 3; losses "$TMP/z3-tp2.jsonl") |
      awk '{d=$1-$2; if (d<0) d=-d; if (NF != 2 || d > 1e-5*$1) {print "step " NR+5 ": " $1 " vs " $2; exit 1}} END {if (NR != 5) {print NR " steps"; exit 1}}') &&
  pass "ZeRO-3 dp4 checkpoint → one rank → its checkpoint → dp2×tp2 ZeRO-1: steps 6-10 within 1e-5 of the dp4 run" ||
  fail "ZeRO-3 resharding chain" "$why"

# ---- tied embeddings: saved once (by the first stage) on dp2×tp2×pp2 ZeRO-1, loaded by both ends ----
TIED=(--init-hf "$ROOT/validation/golden/llama-tiny-tied" --bench -l 32 --lr 3e-3 --warmup-steps 2 --seed 5 --peak-tflops 1 --steps 10)
"${MPIRUN[@]}" -np 8 "$T" "${TIED[@]}" -b 4 --grad-accum 2 --tp 2 --pp 2 --zero 1 -i 5 -o "$TMP/tied" \
  --log "$TMP/tied-full.jsonl" >"$TMP/tied.out" 2>&1 || fail "tied resharding: the 8-rank run" "$(tail -3 "$TMP/tied.out")"
for l in "one-rank 1 -b 8" "pp4-zero0 4 -b 8 --pp 4" "dp2pp2-zero2 4 -b 4 --pp 2 --zero 2"; do
  set -- $l
  name=$1 np=$2; shift 2
  if "${MPIRUN[@]}" -np "$np" "$T" "${TIED[@]}" --grad-accum 2 -f "$TMP/tied/step_0000005" "$@" \
       --log "$TMP/tied-$name.jsonl" >"$TMP/tied-$name.out" 2>&1 &&
     why=$(paste <(losses "$TMP/tied-full.jsonl" | tail -n 5) <(losses "$TMP/tied-$name.jsonl") |
           awk '{d=$1-$2; if (d<0) d=-d; if (NF != 2 || d > 1e-5*$1) {print "step " NR+5 ": " $1 " vs " $2; exit 1}} END {if (NR != 5) {print NR " steps"; exit 1}}'); then
    pass "tied embeddings: dp2×tp2×pp2 ZeRO-1 checkpoint → $name: next 5 losses within 1e-5"
  else fail "tied embeddings: checkpoint → $name" "${why:-$(tail -3 "$TMP/tied-$name.out")}"; fi
done
if h5ls -r "$TMP/tied/step_0000005/checkpoint.h5" 2>/dev/null | grep -q lm_head; then
  fail "tied embeddings: stored once" "the checkpoint holds an lm_head"
else pass "tied embeddings: the checkpoint stores the tensor once (no lm_head)"; fi

# ---- preemption: SIGTERM to every rank saves and exits 0 within one step ----
L4=(-np 4 "$T" "${COMMON[@]}" -b 4 --grad-accum 2 --tp 2 --zero 1 --steps 20)   # sigkill_resume's first run
"${MPIRUN[@]}" "${L4[@]}" -o "$TMP/pre" --log "$TMP/pre.jsonl" >"$TMP/pre.out" 2>&1 &
pid=$!
if wait_for '"step": 7,' "$TMP/pre.jsonl" 120; then
  kill -TERM $(pgrep -f "^$T .*$TMP/pre") 2>/dev/null
  at_signal=$(losses "$TMP/pre.jsonl" | wc -l)   # steps finished when the signal went out, or more
  wait $pid; rc=$?
  stopped=$(grep -o "stopped at step [0-9]*" "$TMP/pre.out" | grep -o "[0-9]*$")
  if [ $rc -eq 0 ] && [ -n "$stopped" ] && [ "$stopped" -le $((at_signal + 1)) ] && [ -d "$TMP/pre/step_$(printf %07d "$stopped")" ]; then
    "${MPIRUN[@]}" "${L4[@]}" -o "$TMP/pre" -f auto --log "$TMP/pre2.jsonl" >"$TMP/pre2.out" 2>&1
    if diff <(losses "$TMP/dp2tp2-zero1-full.jsonl" | tail -n $((20 - stopped))) <(losses "$TMP/pre2.jsonl") >/dev/null; then
      pass "SIGTERM: finished the step under way, saved at step $stopped, exited 0, resumed bit-exact"
    else fail "SIGTERM resume" "losses after step $stopped differ"; fi
  else
    fail "SIGTERM" "exit $rc, stopped at '${stopped}' (signal after step $at_signal): $(tail -3 "$TMP/pre.out")"
  fi
else
  kill -9 $pid 2>/dev/null; fail "SIGTERM" "the run did not reach step 7"
fi

# ---- SIGTERM during a long evaluation: it stops, the run saves, exits 0 (case 16) ----
"${MPIRUN[@]}" -np 2 "$T" "${COMMON[@]}" -b 4 --steps 100 --eval-interval 3 --eval-steps 100000000 \
  -o "$TMP/ev" >"$TMP/ev.out" 2>&1 &
pid=$!
if wait_for "^step 3/" "$TMP/ev.out" 60; then
  kill -TERM $(pgrep -f "^$T .*$TMP/ev") 2>/dev/null
  # bounded: an evaluation that ignores the signal would run for hours
  wait_for "stopped at step|rror" "$TMP/ev.out" 60 || kill -9 $(pgrep -f "^$T .*$TMP/ev") 2>/dev/null
  wait $pid; rc=$?
  if [ $rc -eq 0 ] && grep -q "evaluation at step 3 stopped after [0-9]* of 100000000 batches by a signal" "$TMP/ev.out" &&
     grep -q "stopped at step 3 by a signal" "$TMP/ev.out" && [ -d "$TMP/ev/step_0000003" ]; then
    pass "SIGTERM during an evaluation: it stopped, step 3 saved, exit 0"
  else fail "SIGTERM in evaluation" "exit $rc: $(tail -3 "$TMP/ev.out")"; fi
else
  kill -9 $pid 2>/dev/null; fail "SIGTERM in evaluation" "the run did not reach step 3"
fi
# ---- format 2: a --data-mix run's checkpoint as the previous version stored it ----
# (the position as 65 values; test_checkpoint_bad --as-format2 rewrites a save so)
MIX=$TMP/mixdata
"${MPIRUN[@]}" -np 2 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$ROOT/inputs/redpajama-mini" \
  --output "$MIX" --val-fraction 0.05 >"$MIX.log" 2>&1 || fail "format 2: tokenizing three sources" "$(tail -3 "$MIX.log")"
M=(-np 2 "$T" -c tiny -d "$MIX" -l 32 -b 2 --lr 3e-3 --warmup-steps 2 --seed 5 --peak-tflops 1
   --data-mix c4=0.3,github=0.2,wikipedia_sample=0.5)
"${MPIRUN[@]}" "${M[@]}" --steps 6 --log "$TMP/mix-full.jsonl" >"$TMP/mix-full.out" 2>&1
"${MPIRUN[@]}" "${M[@]}" --steps 3 -i 3 -o "$TMP/mix" >"$TMP/mix-part.out" 2>&1
"$BIN/tests/test_checkpoint_bad" --as-format2 "$TMP/mix/step_0000003" >"$TMP/mix-v2.out" 2>&1
"$BIN/llama-ckpt" info "$TMP/mix/step_0000003" >>"$TMP/mix-v2.out" 2>&1
"${MPIRUN[@]}" "${M[@]}" --steps 6 -f "$TMP/mix/step_0000003" --log "$TMP/mix-resumed.jsonl" >"$TMP/mix-resumed.out" 2>&1
if ! grep -q "(format 2)" "$TMP/mix-v2.out"; then
  fail "format-2 resume" "the checkpoint was not rewritten as format 2: $(tail -3 "$TMP/mix-v2.out")"
elif [ "$(losses "$TMP/mix-full.jsonl" | wc -l)" = 6 ] &&
     diff <(losses "$TMP/mix-full.jsonl" | tail -n 3) <(losses "$TMP/mix-resumed.jsonl") >/dev/null; then
  pass "format-2 checkpoint of a --data-mix run (position as 65 values): steps 4-6 resume to the last bit"
else
  fail "format-2 resume" "losses: $(paste <(losses "$TMP/mix-full.jsonl" | tail -n 3) <(losses "$TMP/mix-resumed.jsonl") | head -3); $(tail -2 "$TMP/mix-resumed.out")"
fi
# ---- format 3: the same run's position without its sources' names ----
cp -r "$TMP/mix/step_0000003" "$TMP/mix-v3"
"$BIN/tests/test_checkpoint_bad" --as-format3 "$TMP/mix-v3" >"$TMP/mix-v3.out" 2>&1
"$BIN/llama-ckpt" info "$TMP/mix-v3" >>"$TMP/mix-v3.out" 2>&1
"${MPIRUN[@]}" "${M[@]}" --steps 6 -f "$TMP/mix-v3" --log "$TMP/mix-v3.jsonl" >"$TMP/mix-v3-resumed.out" 2>&1
if grep -q "(format 3)" "$TMP/mix-v3.out" &&
   diff <(losses "$TMP/mix-full.jsonl" | tail -n 3) <(losses "$TMP/mix-v3.jsonl") >/dev/null; then
  pass "format-3 checkpoint of a --data-mix run (counts without names): steps 4-6 resume to the last bit"
else
  fail "format-3 resume" "$(grep format "$TMP/mix-v3.out" | head -2); $(tail -2 "$TMP/mix-v3-resumed.out")"
fi
# ---- a source added to the data between save and resume ----
# github sorts between c4 and wikipedia_sample: by index, wikipedia_sample's
# position would become github's.  With github at weight 0 the draws are the
# two-source run's, so the resumed losses must equal the uninterrupted ones.
mkdir -p "$TMP/mix2"
ln -s "$MIX"/c4.* "$MIX"/wikipedia_sample.* "$TMP/mix2/"
M2=(-np 2 "$T" -c tiny -l 32 -b 2 --lr 3e-3 --warmup-steps 2 --seed 5 --peak-tflops 1)
TWO=(-d "$TMP/mix2" --data-mix c4=0.3,wikipedia_sample=0.5)
"${MPIRUN[@]}" "${M2[@]}" "${TWO[@]}" --steps 6 --log "$TMP/add-full.jsonl" >"$TMP/add-full.out" 2>&1
"${MPIRUN[@]}" "${M2[@]}" "${TWO[@]}" --steps 3 -i 3 -o "$TMP/add" >"$TMP/add-part.out" 2>&1
ADDED=(-d "$MIX" --data-mix c4=0.3,github=0,wikipedia_sample=0.5 --steps 6)
"${MPIRUN[@]}" "${M2[@]}" "${ADDED[@]}" -f "$TMP/add/step_0000003" --log "$TMP/add-resumed.jsonl" >"$TMP/add-resumed.out" 2>&1
if [ "$(losses "$TMP/add-full.jsonl" | wc -l)" = 6 ] &&
   diff <(losses "$TMP/add-full.jsonl" | tail -n 3) <(losses "$TMP/add-resumed.jsonl") >/dev/null; then
  pass "a source added before another in name order: the resumed run continues each source's position to the last bit"
  grep -q "note: --data-mix leaves out (weight 0) the dataset's sources github$" "$TMP/add-resumed.out" &&
    pass "--data-mix with a source at weight 0: a note names it" ||
    fail "--data-mix leaving a source out" "no note: $(grep note "$TMP/add-resumed.out" | head -2)"
else
  fail "source added" "losses: $(paste <(losses "$TMP/add-full.jsonl" | tail -n 3) <(losses "$TMP/add-resumed.jsonl") | head -3); $(tail -2 "$TMP/add-resumed.out")"
fi
# 3 steps × 2 ranks × 2 sequences; llama-ckpt info names each source's share
counts=$("$BIN/llama-ckpt" info "$TMP/add/step_0000003" 2>&1 |
  sed -nE 's/.*data position: 12 samples drawn of 32 tokens \(per source: c4 ([0-9]+), wikipedia_sample ([0-9]+)\)$/\1 \2/p')
if [ -n "$counts" ] && [ $(( ${counts% *} + ${counts#* } )) = 12 ]; then
  pass "llama-ckpt info: the data position with each source's count by name"
else fail "llama-ckpt info data position" "$("$BIN/llama-ckpt" info "$TMP/add/step_0000003" 2>&1 | grep -i "data" | head -2)"; fi
cp -r "$TMP/add/step_0000003" "$TMP/add-v3"
"$BIN/tests/test_checkpoint_bad" --as-format3 "$TMP/add-v3" >/dev/null 2>&1
expect_error "format 3 (counts by index) into a dataset with a source added: refused" \
  "counts samples of 2 sources by index .* this run's data has 3 sources: they cannot be matched" \
  "${MPIRUN[@]}" "${M2[@]}" "${ADDED[@]}" -f "$TMP/add-v3"
# ---- data that changed under a saved position: said, not silent ----
# another --max-length (windows of 16 tokens, not 32); one stream of more samples
# (the three-source folder for the two-source one).
"${MPIRUN[@]}" "${M2[@]}" "${TWO[@]}" -l 16 --steps 4 -f "$TMP/add/step_0000003" >"$TMP/win.out" 2>&1
if grep -q "note: the checkpoint's data position counts windows of 32 tokens, this run's are 16: .*resume with --max-length 32" "$TMP/win.out" &&
   [ "$(grep -c "holds .* samples now" "$TMP/win.out")" = 0 ]; then
  pass "resume with another --max-length: one note, naming the saved length"
else fail "resume with another --max-length" "$(grep -i "note\|error" "$TMP/win.out" | head -3)"; fi
"${MPIRUN[@]}" "${M2[@]}" -d "$TMP/mix2" --steps 2 -i 2 -o "$TMP/one" >"$TMP/one.out" 2>&1
"${MPIRUN[@]}" "${M2[@]}" -d "$MIX" --steps 3 -f auto -o "$TMP/one" >"$TMP/one2.out" 2>&1
if grep -q "note: the dataset holds [0-9]* samples now, [0-9]* when the checkpoint was saved" "$TMP/one2.out"; then
  pass "resume on a dataset of more samples (one stream): a note that the epoch's order changed"
else fail "resume on a changed dataset" "$(grep -i "note\|error" "$TMP/one2.out" | head -3)"; fi
# A one-stream checkpoint resumed with --data-mix: the sources start at their beginnings, and
# a note says that samples may come again (no per-source position to continue from).
"$T" -c tiny -d "$MIX" -l 32 -b 2 --seed 5 --steps 2 -o "$TMP/stream" >/dev/null 2>&1
out=$("$T" -c tiny -d "$MIX" -l 32 -b 2 --seed 5 --steps 3 -o "$TMP/stream" -f auto \
      --data-mix c4=0.5,wikipedia_sample=0.5 2>&1)
grep -q "note: the checkpoint drew 4 samples as one stream (no --data-mix): each source of --data-mix starts at its beginning" <<<"$out" &&
  pass "a one-stream checkpoint resumed with --data-mix: a note that the sources start over" ||
  fail "one stream to --data-mix" "$(grep -E 'note|error' <<<"$out" | head -3)"
finish
