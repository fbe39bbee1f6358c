#!/usr/bin/env bash
# LLaMA-7B throughput on one node of 8 GPUs (tensor parallel 8, ZeRO-1 when
# more nodes are given), bf16, sequence 2048: one CSV row in runs/bench.csv.
#   HOSTFILE=hosts jobs/mpirun/bench7b.sh
set -euo pipefail
cd "$(dirname "$0")/../.."
PRESET=7b TP=${TP:-8} PP=${PP:-1} BATCH=${BATCH:-4} SEQ=2048 DEVICE=cuda PRECISION=bf16 \
  LAUNCH=mpirun exec bash jobs/benchmark.sh "$@"
