#!/usr/bin/env bash
# It learns: the tiny preset on byte-level shards of real text (Wikipedia
# pages from inputs/) goes from ~ln 256 = 5.5 nats to below 2.5 within 300
# steps, and the held-out loss follows.
source "$(dirname "$0")/lib.sh"
scratch
make_byte_shards "$TMP/data"
OMP_NUM_THREADS=2 "$BIN/llama-train" -c tiny -d "$TMP/data" -l 64 -b 16 --steps 300 --lr 3e-3 \
  --warmup-steps 20 --eval-interval 300 --eval-steps 8 --log "$TMP/log.jsonl" --peak-tflops 1 \
  >"$TMP/out" 2>&1 || { fail "tiny learns" "$(tail -3 "$TMP/out")"; finish; }
first=$(losses "$TMP/log.jsonl" | head -1)
last=$(losses "$TMP/log.jsonl" | tail -n 20 | awk '{s += $1} END {printf "%.4f", s / NR}')
eval=$(grep -o '"eval_loss": [^}]*' "$TMP/log.jsonl" | cut -d' ' -f2)
if awk -v f="$first" -v l="$last" -v e="$eval" 'BEGIN {exit !(f > 5.0 && l < 2.5 && e < 2.6)}'; then
  pass "tiny on bytes of real text: loss $first → $last (mean of the last 20 steps), held-out $eval"
else
  fail "tiny learns" "loss $first → $last, held-out $eval (want > 5.0 → < 2.5, held-out < 2.6)"
fi
finish
