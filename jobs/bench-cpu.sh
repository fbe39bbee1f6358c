#!/usr/bin/env bash
# `make bench`: the CPU figures — llama-train --bench on the small preset
# (tokens/s, MFU against the measured sgemm rate), PyTorch eager
# (transformers' LlamaForCausalLM, same shape and threads) when torch is
# installed, and data- and tensor-parallel runs on the same cores.
# Every comparison runs back to back, twice, alternating.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
B=${BATCH:-8} L=${SEQ:-256} STEPS=${STEPS:-8}
cores=$(getconf _NPROCESSORS_ONLN)
mpi=(mpirun --oversubscribe --bind-to none)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
ours() {   # RANKS THREADS ARGS...: tokens/s of llama-train --bench
  local np=$1 th=$2; shift 2
  OMP_NUM_THREADS=$th "${mpi[@]}" -np "$np" -x OMP_NUM_THREADS "$BUILD/llama-train" --bench -c small \
    -l "$L" --steps "$STEPS" "$@" | grep '^bench:' | sed 's/^bench: //'
}
torch_eager() {
  python3 -c "import torch, transformers" 2>/dev/null || { echo "(torch not installed)"; return; }
  OMP_NUM_THREADS=$cores python3 jobs/bench/torch_eager_cpu.py --preset small -b "$B" -l "$L" \
    --steps "$STEPS" | tail -1
}
echo "== $cores cores; $(lscpu | grep 'Model name' | sed 's/  */ /g')"
for round in 1 2; do
  echo "-- round $round"
  echo "llama-train 1 rank × $cores threads: $(ours 1 "$cores" -b "$B")"
  echo "PyTorch eager, $cores threads:       $(torch_eager)"
  echo "dp1 ($cores threads):  $(ours 1 "$cores" -b $((2 * B)))"
  echo "dp2 (2 × $((cores / 2)) threads): $(ours 2 $((cores / 2)) -b "$B")"
  echo "tp1 ($cores threads):  $(ours 1 "$cores" -b "$B")"
  echo "tp2 (2 × $((cores / 2)) threads): $(ours 2 $((cores / 2)) -b "$B" --tp 2)"
done
