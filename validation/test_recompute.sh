#!/usr/bin/env bash
# --recompute none|selective|full (-g is full): selective recomputes the
# norms' outputs and SwiGLU's output in the backward pass with the forward
# pass's own ops on the same kept inputs, so it must train bit for bit the
# model that keeping everything trains: the same logged losses and gradient
# norms (as printed, %.9g) and the same exported weights (llama-ckpt compare
# --rtol 0), on one rank and on tp2 × pp2 with 4 micro-batches (several in
# flight per stage).  Full recomputation reruns whole layers (their all-
# reduces too) and must agree to 1e-5.  The tiny preset on seeded synthetic
# tokens (--bench), 6 steps.  -g is full (and wins over none).  Bad values
# are refused by the option parser.
source "$(dirname "$0")/lib.sh"
scratch
COMMON=(-c tiny --bench -l 32 -b 4 --grad-accum 4 --steps 6 --lr 1e-3 --warmup-steps 2 --seed 7
        --peak-tflops 1)

# run NAME RANKS MODE [options...]: logs to $TMP/NAME.jsonl, exports to $TMP/NAME.hf
run() {
  local name=$1 np=$2 mode=$3; shift 3
  timeout 300 "${MPIRUN[@]}" -np "$np" "$BIN/llama-train" "${COMMON[@]}" --recompute "$mode" "$@" \
    --log "$TMP/$name.jsonl" --export-hf "$TMP/$name.hf" >"$TMP/$name.out" 2>&1
}

# fields FILE: "loss grad_norm" of every logged step, as printed.
fields() {
  grep '"loss": ' "$1" | sed -E 's/.*"loss": ([^,}]*).*"grad_norm": ([^,}]*).*/\1 \2/'
}

# close A B: every number of A within 1e-5 relative of B's (6 lines of 2).
close() {
  paste -d' ' <(fields "$1") <(fields "$2") | awk '
    { n++; for (i = 1; i <= 2; i++) { a = $i; b = $(i + 2); d = a - b; if (d < 0) d = -d
        if (a !~ /^-?[0-9]/ || d > 1e-5 * (b < 0 ? -b : b)) {
          print "step " n ": " $0; bad = 1; exit } } }
    END { if (!bad && n != 6) { print n " steps logged"; bad = 1 } exit bad }'
}

# compare NAME REF RTOL: losses (bit for bit when RTOL is 0) and exported weights.
compare() {
  local name=$1 ref=$2 rtol=$3 why
  [ "$(fields "$TMP/$ref.jsonl" | wc -l)" = 6 ] || {
    fail "$name" "$ref logged not 6 steps"; return; }
  if [ "$rtol" = 0 ]; then
    why=$(diff <(fields "$TMP/$name.jsonl") <(fields "$TMP/$ref.jsonl")) ||
      { fail "$name" "losses: $why"; return; }
  else
    why=$(close "$TMP/$name.jsonl" "$TMP/$ref.jsonl") || { fail "$name" "losses: $why"; return; }
  fi
  why=$("$BIN/llama-ckpt" compare "$TMP/$name.hf" "$TMP/$ref.hf" --rtol "$rtol" 2>&1) ||
    { fail "$name" "weights: $why"; return; }
  local how=" to $rtol"
  [ "$rtol" = 0 ] && how=" bit for bit"
  pass "$name: 6 losses, gradient norms and final weights equal $ref's$how"
}

for layout in "1rank 1" "tp2pp2 4 --tp 2 --pp 2"; do
  set -- $layout
  name=$1 np=$2; shift 2
  for mode in none selective full; do
    run "$name-$mode" "$np" "$mode" "$@" ||
      fail "$name-$mode" "run failed: $(tail -n 3 "$TMP/$name-$mode.out")"
  done
  grep -q "recompute selective" "$TMP/$name-selective.out" ||
    fail "$name-selective" "the start-up report does not say 'recompute selective'"
  compare "$name-selective" "$name-none" 0
  compare "$name-full" "$name-none" 1e-5
done
# -g is --recompute full, and wins over --recompute none (the default).
run 1rank-g 1 none -g || fail 1rank-g "run failed: $(tail -n 3 "$TMP/1rank-g.out")"
compare 1rank-g 1rank-full 0

expect_error "--recompute partial is refused" \
  "--recompute: expected none, selective or full, got 'partial'" \
  "$BIN/llama-train" -c tiny --bench --steps 1 --recompute partial
expect_error "-g with --recompute selective is refused" \
  "--grad-checkpoint \(-g\) is --recompute full and contradicts --recompute selective" \
  "$BIN/llama-train" -c tiny --bench --steps 1 -g --recompute selective
finish
