#!/usr/bin/env bash
# The scaling-study driver: runs jobs/benchmark.sh over a sweep of rank
# counts × layouts (RANKS:TP:PP entries), writes OUT/scaling.csv and plots
# OUT/throughput.png (tokens/s against ranks, one line per layout family) and
# OUT/efficiency.png (per-rank throughput relative to one rank).  OUT defaults
# to runs/scaling in the repository; a relative OUT given is taken from the
# caller's folder.
#
#   OUT=runs/scaling PRESET=small BATCH=8 SEQ=256 jobs/scaling.sh
#   SWEEP="8:8:1 16:8:1 32:8:4" DEVICE=cuda PRESET=7b jobs/scaling.sh   (inside a Slurm allocation)
#
# Data parallelism keeps the micro-batch per rank (weak scaling); tensor and
# pipeline parallelism split the same work (strong scaling).
set -euo pipefail
[ -n "${OUT:-}" ] && [ "${OUT#/}" = "$OUT" ] && OUT=$PWD/$OUT   # a relative OUT: from the caller's folder
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/scaling}
SWEEP=${SWEEP:-"1:1:1 2:1:1 4:1:1 2:2:1 4:4:1 2:1:2 4:1:4 4:2:2"}
mkdir -p "$OUT"
rm -f "$OUT/scaling.csv"
for entry in $SWEEP; do
  IFS=: read -r ranks tp pp <<<"$entry"
  echo "== $entry"
  RANKS=$ranks TP=$tp PP=$pp CSV="$OUT/scaling.csv" bash jobs/benchmark.sh "$@" | tail -n 2
done
bash jobs/plot-scaling.sh "$OUT/scaling.csv" "$OUT"
