#!/usr/bin/env bash
# `make test-full`: every layout of at most 8 ranks trains the same model as one
# rank: tp ∈ {1, 2} (tp2 with and without --sp) × cp ∈ {1, 2} × pp ∈ {1, 2, 4}
# (with --vpp 1 and 2) × dp (ZeRO 0, 1, 2 where DP × CP > 1) × --recompute none,
# selective, full (348 runs).  An 8-layer model with GQA and a vocabulary of 250
# (padded under TP), grad-accum 4, 10 steps at lr 3e-4 (at 1e-3 Adam turns the
# reduction-order noise of the larger layouts into 1.3e-5 of the weights, over
# the bound); per-step losses and gradient norms within 1e-5 relative, each
# final weight tensor within 1e-5 (‖a − b‖ / ‖b‖).  About 13 minutes on 2 cores.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/../layout_lib.sh"
scratch
GLOBAL=32
ACCUM=4
layout_model "$TMP/l8.model" 8
COMMON=(-c "$TMP/l8.model" --bench -l 32 --steps 10 --lr 3e-4 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref$ACCUM" 1 1 1 0 "$ACCUM" || { fail "one-rank reference" "$(tail -n 3 "$TMP/ref$ACCUM.out")"; finish; }

for tp in 1 2; do
  for cp in 1 2; do
    for pp in 1 2 4; do
      for dp in 1 2 4 8; do
        np=$((tp * cp * pp * dp))
        [ "$np" -gt 8 ] || [ "$np" -eq 1 ] && continue
        sps="none"; [ "$tp" -gt 1 ] && sps="none sp"
        vpps="1"; [ "$pp" -gt 1 ] && vpps="1 2"
        zeros="0"; [ $((dp * cp)) -gt 1 ] && zeros="0 1 2"
        for sp in $sps; do
          for vpp in $vpps; do
            for z in $zeros; do
              for r in none selective full; do
                args=(--vpp "$vpp" --recompute "$r" --cp "$cp")
                [ "$sp" = sp ] && args+=(--sp)
                check_layout "tp$tp$([ "$sp" = sp ] && echo -sp)-cp$cp-pp$pp-vpp$vpp-dp$dp-zero$z-$r" \
                  "$np" "$tp" "$pp" "$z" "$ACCUM" "${args[@]}"
              done
            done
          done
        done
      done
    done
  done
done
finish
