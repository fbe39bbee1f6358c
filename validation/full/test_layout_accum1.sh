#!/usr/bin/env bash
# `make test-full`: the layouts test_parallel.sh leaves out at grad-accum 1
# (one micro-batch per step: no gradient accumulation, a pipeline of one
# micro-batch) train the same model as one rank: dp4, tp4, dp2×tp2, dp2×pp2
# and tp2×pp2, each with ZeRO 0 to 3 where DP > 1; the same model, data and
# bounds as test_parallel.sh (validation/layout_lib.sh).
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../layout_lib.sh"
scratch
DATA=$TMP/data
make_byte_shards "$DATA"
GLOBAL=16
COMMON=(-c tiny -d "$DATA" -l 32 --steps 10 --lr 1e-3 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref1" 1 1 1 0 1 || { fail "one-rank reference" "$(tail -n 3 "$TMP/ref1.out")"; finish; }
for l in "dp4 4 1 1" "tp4 4 4 1" "dp2tp2 4 2 1" "dp2pp2 4 1 2" "tp2pp2 4 2 2"; do
  set -- $l
  dp=$(($2 / ($3 * $4)))
  zeros="0"; [ "$dp" -gt 1 ] && zeros="0 1 2 3"
  for z in $zeros; do check_layout "$1-zero$z-accum1" "$2" "$3" "$4" "$z" 1; done
done
finish
