#!/usr/bin/env bash
# `make run`: the main job on the bundled corpus, end to end on 2 MPI ranks —
# tokenize (inputs/redpajama-mini → HDF5 shards), train the small preset
# (inputs/quickstart.deck), evaluate on the held-out split, print a greedy
# sample.  Metrics go to runs/quickstart/metrics.jsonl.
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
RANKS=${RANKS:-2}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
mpirun=(mpirun --oversubscribe -np "$RANKS" -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && mpirun+=(--allow-run-as-root)

rm -rf runs/quickstart
mkdir -p runs/quickstart
echo "== tokenizing the bundled corpus on $RANKS ranks"
"${mpirun[@]}" "$BUILD/llama-tokenize" encode --tokenizer inputs/tokenizer.json \
  --input inputs/redpajama-mini --output runs/quickstart/data --val-fraction 0.02
echo "== training the small preset on $RANKS ranks (inputs/quickstart.deck)"
"${mpirun[@]}" "$BUILD/llama-train" inputs/quickstart.deck "$@"
echo "== metrics: runs/quickstart/metrics.jsonl; checkpoints: runs/quickstart/checkpoints"
