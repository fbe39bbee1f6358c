#!/usr/bin/env bash
# --profile's per-op table (src/backend/ops_profile.c, src/train/profile.c),
# checked against counts known from the model's shape: a model file of 2
# layers (dim 64, 8 heads, 4 KV heads, FFN 192, vocabulary 250, untied), -b 2
# -l 64, grad-accum 3, so 384 tokens per step.  Its matmuls hold
# 2 · (64·128 + 64·64 + 64·384 + 192·64) + 250·64 = 114304 weights, so a step's
# matmul FLOPs are 6 · 114304 · 384 (2 forward, 4 backward per weight and
# token); each layer's Q/K/V matmul runs forward once per micro-batch, twice
# under --recompute full; over tp2 the exposed communication is counted; the
# table's op rows never sum to more than the step.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/layout_lib.sh"
scratch
layout_model "$TMP/m.model" 2
COMMON=(-c "$TMP/m.model" --bench -b 2 -l 64 --grad-accum 3 --steps 5 --bench-warmup 2 --profile)

# field FILE PROFILE IN OUT KEY: KEY of the --log line of that profile row.
field() {
  awk -v p="\"profile\": \"$2\", \"in\": $3, \"out\": $4," -v k="\"$5\": " 'index($0, p) {
    s = substr($0, index($0, k) + length(k)); sub(/[,}].*/, "", s); print s }' "$1"
}
# matmul_gflop FILE: Σ over the matmul rows of calls·GFLOP per call, per step.
matmul_flops() {
  awk '/"profile": "matmul/ { split($0, a, /"seconds_per_step": |, "gflops": |}/); s += a[2] * a[3] * 1e9 }
       END { printf "%.0f\n", s }' "$1"
}

if "$BIN/llama-train" "${COMMON[@]}" --log "$TMP/one.jsonl" >"$TMP/one.out" 2>&1; then
  want=$((6 * 114304 * 384)) got=$(matmul_flops "$TMP/one.jsonl")
  if awk -v a="$got" -v b="$want" 'BEGIN { exit !((a - b) ^ 2 <= (1e-5 * b) ^ 2) }'; then
    pass "profile: the matmuls' FLOPs per step are 6 · weights · tokens ($got)"
  else fail "profile matmul FLOPs" "$got per step, want $want"; fi
  calls=$(field "$TMP/one.jsonl" "matmul forward" 64 128 calls_per_step)
  [ "$calls" = 6 ] && pass "profile: the Q/K/V matmul runs forward 6 times a step (2 layers × 3 micro-batches)" ||
    fail "profile Q/K/V calls" "$calls per step, want 6"
  if awk '/"profile"/ && !/"profile": "rest/ { split($0, a, /"seconds_per_step": |, "gflops"/); s += a[2] }
          /"profile": "rest/ { split($0, a, /"seconds_per_step": |, "gflops"/); r = a[2] }
          END { exit !(s > 0 && r >= 0) }' "$TMP/one.jsonl"; then
    pass "profile: the timed rows fit in the step (the rest of the host's time is not negative)"
  else fail "profile sums" "$(grep '"profile": "rest' "$TMP/one.jsonl")"; fi
  grep -q "^  matmul backward  *64 -> 128 " "$TMP/one.out" && pass "profile: the table is printed" ||
    fail "profile table" "$(grep -A3 '^profile' "$TMP/one.out")"
else fail "profile run" "$(tail -n 3 "$TMP/one.out")"; fi

if "$BIN/llama-train" "${COMMON[@]}" --recompute full --log "$TMP/full.jsonl" >"$TMP/full.out" 2>&1; then
  calls=$(field "$TMP/full.jsonl" "matmul forward" 64 128 calls_per_step)
  [ "$calls" = 12 ] && pass "profile: under --recompute full the Q/K/V matmul runs forward 12 times a step" ||
    fail "profile recompute calls" "$calls per step, want 12"
else fail "profile recompute run" "$(tail -n 3 "$TMP/full.out")"; fi

if "${MPIRUN[@]}" -np 2 "$BIN/llama-train" "${COMMON[@]}" --tp 2 --log "$TMP/tp2.jsonl" >"$TMP/tp2.out" 2>&1; then
  comm=$(field "$TMP/tp2.jsonl" "communication (exposed)" 0 0 seconds_per_step)
  calls=$(field "$TMP/tp2.jsonl" "matmul forward" 64 64 calls_per_step)
  if awk -v c="$comm" 'BEGIN { exit !(c > 0) }' && [ "$calls" = 6 ]; then
    pass "profile on tp2: communication counted ($comm s per step), the Q/K/V matmul at its TP width (64 -> 64)"
  else fail "profile tp2" "communication '$comm', Q/K/V 64 -> 64 calls '$calls'"; fi
else fail "profile tp2 run" "$(tail -n 3 "$TMP/tp2.out")"; fi
finish
