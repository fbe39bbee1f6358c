#!/usr/bin/env bash
# Context parallelism at a long sequence: 4096 tokens on cp2 and cp4 train the
# same model as one rank (10 steps: per-step losses and gradient norms within
# 1e-5 relative, final weights ‖a − b‖ / ‖b‖ ≤ 1e-5), each rank's buffers stay
# within 10% of the prediction, and the activations per rank (the buffers'
# measured peak less the weights, gradients and Adam, which every CP rank holds
# whole) fall about linearly with cp: at most 0.6 of one rank's on cp2, 0.35 on
# cp4 (the ring's key/value buffers and the logits' share are the excess over
# 1/cp); the layout is named with its cp.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/layout_lib.sh"
scratch
GLOBAL=1
layout_model "$TMP/m.model" 2
sed -i 's/^max_seq_len = 64/max_seq_len = 4096/' "$TMP/m.model"
COMMON=(-c "$TMP/m.model" --bench -l 4096 --steps 10 --lr 1e-3 --warmup-steps 2 --seed 7 --peak-tflops 1)
run ref1 1 1 1 0 1 || { fail "one-rank reference" "$(tail -n 3 "$TMP/ref1.out")"; finish; }
check_layout "seq4096-cp2" 2 1 1 0 1 --cp 2
check_layout "seq4096-cp4" 4 1 1 0 1 --cp 4

# bytes NAME PATTERN: rank 0's first "PATTERN X unit" of NAME's output, in bytes.
bytes() {
  grep -o "$2 [0-9.]* [KMG]*i*B" "$TMP/$1.out" | head -n 1 | awk '{ v = $(NF - 1); u = $NF
    printf "%.0f\n", v * (u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1) }'
}
# activations NAME: rank 0's measured buffers' peak less its predicted non-activation bytes.
activations() {
  local peak total act
  peak=$(bytes "$1" "rank 0: buffers' peak") total=$(bytes "$1" "| total") act=$(bytes "$1" "| activations")
  [ -n "$peak" ] && [ -n "$total" ] && [ -n "$act" ] && echo $((peak - (total - act)))
}
a1=$(activations ref1)
for cp in 2 4; do
  name=seq4096-cp$cp bound=$([ "$cp" = 2 ] && echo 0.6 || echo 0.35)
  if worst=$(buffer_peaks_within "$TMP/$name.out" "$cp" 10); then
    pass "$name: every rank's buffers within 10% of the prediction (worst $worst%)"
  else fail "$name memory prediction" "worst difference '$worst'%"; fi
  a=$(activations "$name")
  if [ -n "$a1" ] && [ -n "$a" ] && awk -v a="$a" -v b="$a1" -v m="$bound" 'BEGIN { exit !(a <= m * b) }'; then
    pass "$name: activations per rank $(awk -v a="$a" -v b="$a1" 'BEGIN { printf "%.3f", a / b }') of one rank's (at most $bound)"
  else fail "$name activations" "rank 0 holds $a bytes of activations, one rank $a1 (bound $bound×)"; fi
done
# The layout is named with its cp: the start-up line and llama-ckpt info of its checkpoint
# ("dp 1 × tp 1 × pp 1 with ZeRO-1" was a layout no run can have).
grep -q "training .* 2 ranks (dp 1, tp 1, cp 2, pp 1)" "$TMP/seq4096-cp2.out" &&
  pass "the start-up line names cp 2" || fail "the start-up line names cp" "$(grep '^training' "$TMP/seq4096-cp2.out")"
"${MPIRUN[@]}" -np 4 "$BIN/llama-train" -c tiny --bench -l 32 -b 2 --cp 2 --pp 2 --vpp 2 --grad-accum 2 \
  --steps 1 -o "$TMP/cpck" >"$TMP/cpck.out" 2>&1
if "$BIN/llama-ckpt" info "$TMP/cpck/step_0000001" 2>&1 | head -1 |
   grep -q "saved by dp 1 × tp 1 × cp 2 × pp 2 (2 chunks each) with ZeRO-0"; then
  pass "llama-ckpt info names a checkpoint's cp and vpp"
else fail "llama-ckpt info names cp and vpp" "$("$BIN/llama-ckpt" info "$TMP/cpck/step_0000001" 2>&1 | head -1)"; fi
finish
