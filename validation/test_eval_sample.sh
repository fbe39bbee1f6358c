#!/usr/bin/env bash
# --eval-only and sampling (issue 14):
# - eval-only of a checkpoint logs exactly the eval loss the training run
#   logged at that step (same batches: --eval-steps of dp·B sequences), on
#   one rank and on pp2, and to 1e-5 on tp2 and dp2; it trains, saves and
#   exports nothing, and says which training options it ignores;
# - --eval-steps 0 scores every window of the validation split once: its
#   token count is the shard's (tokens − 1) rounded down to whole windows,
#   its loss that of --eval-steps N with micro-batch 1 (no padding), and the
#   same with padded last batches on dp2 and tp2 × pp2;
# - eval-only of the transformers golden (validation/golden/hf-roundtrip, its
#   3 held-out sequences written as shards by test_eval_golden) gives
#   transformers' loss on tp2 × pp2 with micro-batch 2 (padded), as the unit
#   test test_eval_golden does on one rank;
# - a sampled continuation (temperature, top-k, top-p, --sample-seed) is the
#   same bytes on one rank, tp2, pp2 and tp2 × pp2, differs from the greedy one
#   and from another seed's;
# - what --eval-only and the sampler refuse.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
DATA=$TMP/data
make_byte_shards "$DATA"
L=32
COMMON=(-c tiny -d "$DATA" -l $L --seed 7 --peak-tflops 1)

# eval_field FILE KEY: KEY of the last eval record of a metrics log.
eval_field() { grep '"eval_loss"' "$1" | tail -n 1 | grep -o "\"$2\": [^,}]*" | cut -d' ' -f2; }
# close A B: |a − b| <= 1e-5 |b| (both numbers).
close() { awk -v a="$1" -v b="$2" 'BEGIN { d = a - b; if (d < 0) d = -d; m = b < 0 ? -b : b
  exit !(a != "" && b != "" && d <= 1e-5 * m) }'; }

# evaluate NAME RANKS ARGS...: --eval-only into $TMP/NAME.jsonl; false on failure.
evaluate() {
  local name=$1 np=$2; shift 2
  timeout 120 "${MPIRUN[@]}" -np "$np" "$T" "${COMMON[@]}" --eval-only --log "$TMP/$name.jsonl" "$@" \
    >"$TMP/$name.out" 2>&1 || { fail "$name" "exit $?: $(tail -n 3 "$TMP/$name.out")"; return 1; }
}

# ---- eval-only of a checkpoint: the loss the training run logged ----
train() {
  local name=$1 np=$2; shift 2
  timeout 120 "${MPIRUN[@]}" -np "$np" "$T" "${COMMON[@]}" --steps 4 --lr 1e-3 --warmup-steps 1 \
    --eval-interval 2 --eval-steps 3 --save-interval 4 -o "$TMP/$name" --log "$TMP/$name.jsonl" "$@" \
    >"$TMP/$name.out" 2>&1 || fail "training $name" "$(tail -n 3 "$TMP/$name.out")"
}
train ck1 1 -b 4
train ckpp 2 -b 4 --pp 2
# ZeRO-3 evaluates with weights gathered unit by unit, as it trains.
train ckz3 2 -b 2 --zero 3
z3=$(grep '"step": 4, "eval_loss"' "$TMP/ckz3.jsonl" | grep -o '"eval_loss": [^,}]*' | cut -d' ' -f2)
ref=$(grep '"step": 4, "eval_loss"' "$TMP/ck1.jsonl" | grep -o '"eval_loss": [^,}]*' | cut -d' ' -f2)
if close "$z3" "$ref"; then pass "dp2 ZeRO-3's eval loss at step 4 equals one rank's within 1e-5 ($z3)"
else fail "ZeRO-3 evaluation" "eval loss '$z3', one rank's '$ref'"; fi
want=$(grep '"step": 4, "eval_loss"' "$TMP/ck1.jsonl" | grep -o '"eval_loss": [^,}]*' | cut -d' ' -f2)
wantpp=$(grep '"step": 4, "eval_loss"' "$TMP/ckpp.jsonl" | grep -o '"eval_loss": [^,}]*' | cut -d' ' -f2)
if evaluate e1 1 -b 4 --eval-steps 3 -f "$TMP/ck1/step_0000004" --lr 0 --steps 99 --save-interval 1 \
    -o "$TMP/ck1"; then
  got=$(eval_field "$TMP/e1.jsonl" eval_loss)
  if [ -n "$want" ] && [ "$got" = "$want" ] && [ "$(eval_field "$TMP/e1.jsonl" step)" = 4 ] &&
     [ "$(eval_field "$TMP/e1.jsonl" eval_tokens)" = $((3 * 4 * L)) ] &&
     grep -q "^eval loss [0-9.]* perplexity [0-9.]* over $((3 * 4 * L)) tokens" "$TMP/e1.out"; then
    pass "eval-only of step 4's checkpoint on one rank logs the training run's eval loss ($got)"
  else fail "eval-only on one rank" "eval loss '$got', the training run logged '$want': $(grep '^eval' "$TMP/e1.out")"; fi
  if grep -q "ignored" "$TMP/e1.out" && grep -q -- "--steps, --lr, --save-interval" "$TMP/e1.out" &&
     [ "$(ls "$TMP/ck1" | grep -c '^step_')" = 1 ] && ! grep -q '"loss"' "$TMP/e1.jsonl"; then
    pass "eval-only names the training options it ignores, trains and saves nothing"
  else fail "eval-only ignoring training options" "$(grep -i note "$TMP/e1.out"; ls "$TMP/ck1")"; fi
fi
if evaluate epp 2 -b 4 --eval-steps 3 --pp 2 -f "$TMP/ckpp/step_0000004"; then
  got=$(eval_field "$TMP/epp.jsonl" eval_loss)
  if [ -n "$wantpp" ] && [ "$got" = "$wantpp" ]; then
    pass "eval-only on pp2 logs the pp2 training run's eval loss ($got)"
  else fail "eval-only on pp2" "eval loss '$got', the pp2 training run logged '$wantpp'"; fi
fi
for layout in "tp2 2 -b 4 --tp 2" "dp2 2 -b 2" "pp2-vpp2 2 -b 4 --pp 2 --vpp 2"; do
  set -- $layout
  name=$1 np=$2; shift 2
  evaluate "e-$name" "$np" "$@" --eval-steps 3 -f "$TMP/ck1/step_0000004" || continue
  got=$(eval_field "$TMP/e-$name.jsonl" eval_loss)
  if close "$got" "$want"; then pass "eval-only on $name: the one-rank training run's eval loss to 1e-5 ($got)"
  else fail "eval-only on $name" "eval loss '$got', the training run logged '$want'"; fi
done

# ---- --eval-steps 0: the whole validation split ----
n_val=$(grep -o 'val.h5: [0-9]* documents, [0-9]* tokens' "$DATA.log" | awk '{print $4}')
windows=$(( (n_val - 1) / L ))
if evaluate whole1 1 -b 4 --eval-steps 0 -f "$TMP/ck1/step_0000004" &&
   evaluate steps1 1 -b 1 --eval-steps "$windows" -f "$TMP/ck1/step_0000004"; then
  whole=$(eval_field "$TMP/whole1.jsonl" eval_loss)
  tokens=$(eval_field "$TMP/whole1.jsonl" eval_tokens)
  if [ "$tokens" = $((windows * L)) ] && close "$whole" "$(eval_field "$TMP/steps1.jsonl" eval_loss)"; then
    pass "--eval-steps 0 scores the $windows windows of the $n_val validation tokens ($tokens tokens), loss $whole"
  else fail "--eval-steps 0" "$tokens tokens (want $((windows * L))), loss $whole vs $(eval_field "$TMP/steps1.jsonl" eval_loss) by micro-batches of 1"; fi
  for layout in "dp2 2 -b 3" "tp2pp2 4 -b 3 --tp 2 --pp 2"; do
    set -- $layout
    name=$1 np=$2; shift 2
    evaluate "whole-$name" "$np" "$@" --eval-steps 0 -f "$TMP/ck1/step_0000004" || continue
    got=$(eval_field "$TMP/whole-$name.jsonl" eval_loss)
    if close "$got" "$whole" && [ "$(eval_field "$TMP/whole-$name.jsonl" eval_tokens)" = "$tokens" ]; then
      pass "--eval-steps 0 on $name (last batch padded): the same $tokens tokens and loss"
    else fail "--eval-steps 0 on $name" "loss $got over $(eval_field "$TMP/whole-$name.jsonl" eval_tokens) tokens, one rank $whole over $tokens"; fi
  done
fi

# ---- --init-hf: transformers' loss on its held-out sequences ----
mkdir -p "$TMP/golden"
golden=$ROOT/validation/golden/hf-roundtrip
hf_loss=$(grep -o '"loss": [^,}]*' "$golden/golden.json" | cut -d' ' -f2)
if "$BIN/tests/test_eval_golden" --write-shards "$TMP/golden" >"$TMP/golden.log" 2>&1; then
  for layout in "tp2pp2 4 -b 2 --tp 2 --pp 2"; do
    set -- $layout
    name=$1 np=$2; shift 2
    timeout 120 "${MPIRUN[@]}" -np "$np" "$T" --init-hf "$golden" -d "$TMP/golden" -l 48 --eval-only \
      --eval-steps 0 --log "$TMP/hf-$name.jsonl" "$@" >"$TMP/hf-$name.out" 2>&1 ||
      { fail "eval-only of the golden on $name" "$(tail -n 3 "$TMP/hf-$name.out")"; continue; }
    got=$(eval_field "$TMP/hf-$name.jsonl" eval_loss)
    if close "$got" "$hf_loss" && [ "$(eval_field "$TMP/hf-$name.jsonl" eval_tokens)" = 144 ]; then
      pass "eval-only of the transformers golden on $name: transformers' loss $hf_loss to 1e-5 ($got)"
    else fail "eval-only of the golden on $name" "loss $got over $(eval_field "$TMP/hf-$name.jsonl" eval_tokens) tokens, transformers $hf_loss over 144"; fi
  done
else fail "writing the golden's shards" "$(tail -n 3 "$TMP/golden.log")"; fi

# ---- sampling: the same continuation on every layout ----
# continuation FILE TITLE: the hex bytes after the sample line starting with TITLE, up to the next log line.
continuation() {
  awk -v t="$2" 'index($0, t) == 1 { on = 1; next } /^measured peak memory|^sample \(/ { on = 0 } on' "$1" |
    od -An -tx1 | tr -d ' \n'
}
sample() {
  local name=$1 np=$2; shift 2
  timeout 120 "${MPIRUN[@]}" -np "$np" "$T" --init-hf "$ROOT/validation/golden/hf-roundtrip-init" \
    -d "$DATA" -l $L -b 1 --eval-only --eval-steps 1 --sample-tokens 24 --sample-prompt "The " \
    --tokenizer bytes --sample-temperature 0.8 --sample-top-k 50 --sample-top-p 0.95 "$@" \
    >"$TMP/$name.out" 2>&1 || { echo "exit $?: $(tail -n 2 "$TMP/$name.out")"; return 1; }
  continuation "$TMP/$name.out" "sample (temperature 0.8, top-k 50, top-p 0.95, seed ${SEED:-3}, 24 new tokens)"
}
if want=$(SEED=3 sample s1 1 --sample-seed 3) && [ ${#want} -ge 48 ]; then
  greedy=$(continuation "$TMP/s1.out" "sample (greedy, 24 new tokens)")
  if [ -n "$greedy" ] && [ "$greedy" != "$want" ]; then pass "the sampled continuation differs from the greedy one"
  else fail "sampled vs greedy" "both '$want'"; fi
  other=$(SEED=4 sample s1-seed4 1 --sample-seed 4)
  if [ -n "$other" ] && [ "$other" != "$want" ]; then pass "another --sample-seed samples another continuation"
  else fail "--sample-seed" "seeds 3 and 4 both gave '$want' ('$other')"; fi
  for layout in "tp2 2 --tp 2" "pp2 2 --pp 2" "tp2pp2 4 --tp 2 --pp 2" "pp2-vpp2 2 --pp 2 --vpp 2"; do
    set -- $layout
    name=$1 np=$2; shift 2
    if got=$(SEED=3 sample "s-$name" "$np" --sample-seed 3 "$@") && [ "$got" = "$want" ]; then
      pass "the sampled continuation on $name equals one rank's ($want)"
    else fail "sampled continuation on $name" "got '$got', one rank '$want'"; fi
  done
else fail "sampling on one rank" "no 24-token sampled continuation: '$want'"; fi

# ---- refusals ----
expect_error "--eval-only --bench" "--eval-only evaluates on the validation split of --dataset; --bench" \
  "$T" -c tiny --bench --eval-only
expect_error "--eval-only --export-hf" "--eval-only writes nothing; to export a checkpoint use llama-ckpt export-hf" \
  "$T" "${COMMON[@]}" --eval-only --export-hf "$TMP/x.hf"
expect_error "--eval-only without --dataset" "--eval-only needs --dataset PATH" "$T" -c tiny --eval-only
expect_error "--eval-only --load auto with no checkpoint" "--eval-only --load auto: $TMP/none holds no checkpoint" \
  "$T" "${COMMON[@]}" --eval-only -f auto -o "$TMP/none"
expect_error "--sample-top-p 0" "--sample-top-p 0: must be in \(0, 1\]" "$T" "${COMMON[@]}" --sample-top-p 0
expect_usage_error "--sample-temperature -1" "--sample-temperature: expected a number >= 0, got '-1'" \
  "$T" "${COMMON[@]}" --sample-temperature -1
# --sample-tokens beyond the sequence length (even INT_MAX: once an overflow
# of prompt + new that generated nothing): as many as fit, with a note.
if out=$("$BIN/llama-train" -c tiny --bench -l 16 --steps 1 --sample-tokens 2147483647 --tokenizer bytes 2>&1) &&
   grep -q "note: the samples stop at the sequence length, 16 tokens: the prompt's 1 and 15 new (of --sample-tokens 2147483647)" <<<"$out" &&
   grep -q "sample (greedy, 15 new tokens)" <<<"$out"; then
  pass "--sample-tokens 2147483647: 15 new tokens up to the sequence length, with a note"
else fail "--sample-tokens past the sequence length" "$(grep -i "sample\|error" <<<"$out" | head -3)"; fi
# An --eval-only run stopped by SIGTERM has no result: it exits 128 + 15, so a
# script's `eval && next` does not go on (its eval of 10^8 batches runs until
# the signal).
"$BIN/llama-train" -c tiny -d "$DATA" -l 16 -b 1 --eval-only --eval-steps 100000000 >"$TMP/evsig.out" 2>&1 &
pid=$!
if wait_for "^attention:" "$TMP/evsig.out" 60; then
  kill -TERM $pid; wait $pid; rc=$?
  if [ $rc -eq 143 ] && ! grep -q "^eval loss" "$TMP/evsig.out"; then
    pass "--eval-only stopped by SIGTERM: exit 143, no result printed"
  else fail "--eval-only stopped by SIGTERM" "exit $rc: $(tail -2 "$TMP/evsig.out")"; fi
else kill -9 $pid 2>/dev/null; fail "--eval-only stopped by SIGTERM" "it did not start: $(tail -2 "$TMP/evsig.out")"; fi
# --eval-steps past the validation split (it wraps): a note.
out=$(timeout -k 5 60 "$BIN/llama-train" -c tiny -d "$DATA" -l 16 -b 2 --steps 1 --eval-interval 1 --eval-steps 1000 2>&1)
if grep -q "note: --eval-steps 1000 reads 2000 sequences, the validation split holds [0-9]*: an evaluation wraps around" <<<"$out"; then
  pass "--eval-steps past the validation split: a note that it wraps"
else fail "--eval-steps past the split" "$(grep -i "note\|error" <<<"$out" | head -2)"; fi
finish
