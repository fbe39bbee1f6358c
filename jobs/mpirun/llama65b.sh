#!/usr/bin/env bash
# LLaMA-65B pretraining on 4 nodes × 8 GPUs (32 ranks): tensor parallel 8
# inside each node, pipeline parallel 4 across nodes, bf16, activation
# recomputation — the Colossal-AI example layout.  Data: tokenize your
# RedPajama copy first (README, "Pretraining RedPajama on a cluster").
#   HOSTFILE=hosts DATA=/scratch/redpajama/shards jobs/mpirun/llama65b.sh
set -euo pipefail
here=$(dirname "$0")
NODES=${NODES:-4} GPUS_PER_NODE=${GPUS_PER_NODE:-8} exec bash "$here/pretrain.sh" \
  -c 65b --tp 8 --pp 4 -b 8 --grad-accum 32 -l 2048 -g -x bf16 --device cuda \
  -d "${DATA:?set DATA to the shard folder}" --lr 1.5e-4 --warmup-steps 2000 --min-lr-ratio 0.1 \
  -w 0.1 --grad-clip 1.0 --steps "${STEPS:-100000}" -i 500 -o "${SAVE_DIR:-checkpoints/llama65b}" \
  --load auto --eval-interval 1000 --log "${LOG:-runs/llama65b.jsonl}" "$@"
