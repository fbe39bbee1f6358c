#!/usr/bin/env bash
# LLaMA-65B throughput on 4 nodes × 8 GPUs: tp 8 × pp 4, recomputation, bf16,
# sequence 2048: one CSV row in runs/bench.csv.
#   HOSTFILE=hosts jobs/mpirun/bench65b.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=65b TP=8 PP=4 BATCH=${BATCH:-1} ACCUM=${ACCUM:-16} SEQ=2048 RECOMPUTE=1 DEVICE=cuda \
  PRECISION=bf16 LAUNCH=mpirun exec bash jobs/benchmark.sh "$@"
