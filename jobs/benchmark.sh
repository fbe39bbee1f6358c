#!/usr/bin/env bash
# The benchmark driver (Colossal-AI's benchmark.py, for llama-train): runs
# llama-train --bench (seeded synthetic tokens, no I/O) for a preset and a
# layout, leaves the warm-up steps out, prints samples/s, tokens/s, model
# TFLOP/s per device, MFU and peak memory, and appends one CSV row.
#
#   PRESET=small RANKS=2 TP=1 BATCH=8 SEQ=256 jobs/benchmark.sh
#   PRESET=7b RANKS=8 TP=8 SEQ=2048 DEVICE=cuda jobs/benchmark.sh --zero 1
#
# Settings (environment): PRESET, RANKS (default tp·pp), TP, PP, ZERO, BATCH
# (micro-batch), ACCUM (micro-batches per step), SEQ, RECOMPUTE=1, DEVICE
# (cpu|cuda), PRECISION (fp32|bf16), STEPS (10), WARMUP (2), CSV
# (runs/bench.csv in the repository; a relative CSV given is taken from the
# folder the script is called from), LAUNCH (srun inside a Slurm job, else
# mpirun; HOSTFILE for mpirun across nodes).  Extra arguments go to
# llama-train, which runs in the repository root (relative paths in them are
# taken from there).
set -euo pipefail
[ -n "${CSV:-}" ] && [ "${CSV#/}" = "$CSV" ] && CSV=$PWD/$CSV
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
PRESET=${PRESET:-small} TP=${TP:-1} PP=${PP:-1} ZERO=${ZERO:-0}
RANKS=${RANKS:-${SLURM_NTASKS:-$((TP * PP))}}
BATCH=${BATCH:-8} ACCUM=${ACCUM:-1} SEQ=${SEQ:-256} STEPS=${STEPS:-10} WARMUP=${WARMUP:-2}
DEVICE=${DEVICE:-cpu}
PRECISION=${PRECISION:-$([ "$DEVICE" = cuda ] && echo bf16 || echo fp32)}
CSV=${CSV:-runs/bench.csv}
LAUNCH=${LAUNCH:-$([ -n "${SLURM_JOB_ID:-}" ] && echo srun || echo mpirun)}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}

log=$(mktemp "${TMPDIR:-/tmp}/llama-bench.XXXXXX")
trap 'rm -f "$log"' EXIT
args=(--bench -c "$PRESET" --tp "$TP" --pp "$PP" --zero "$ZERO" -b "$BATCH" --grad-accum "$ACCUM"
      -l "$SEQ" --steps "$STEPS" --bench-warmup "$WARMUP" --device "$DEVICE" -x "$PRECISION"
      --log "$log")
[ "${RECOMPUTE:-0}" = 1 ] && args+=(-g)
if [ "$LAUNCH" = srun ]; then
  launch=(srun --mpi=pmix -n "$RANKS")
else
  launch=(mpirun -np "$RANKS" -x OMP_NUM_THREADS)
  [ -n "${HOSTFILE:-}" ] && launch+=(--hostfile "$HOSTFILE") || launch+=(--oversubscribe)
  [ "$(id -u)" -eq 0 ] && launch+=(--allow-run-as-root)
fi
"${launch[@]}" "$BUILD/llama-train" "${args[@]}" "$@" | grep -E "^(bench|model|memory|training)"

field() { grep '"bench": true' "$log" | grep -o "\"$1\": [^,}]*" | cut -d' ' -f2; }
samples=$(field samples_per_s); tokens=$(field tokens_per_s); tflops=$(field tflops)
mfu=$(field mfu); mem=$(field peak_mem_gib); peak=$(field peak_tflops)
[ -n "$tokens" ] || { echo "benchmark: llama-train wrote no bench line" >&2; exit 1; }
dp=$((RANKS / (TP * PP)))
printf "%s on %d ranks (dp %d tp %d pp %d, ZeRO-%s), micro-batch %s × %s, seq %s%s, %s %s:\n" \
  "$PRESET" "$RANKS" "$dp" "$TP" "$PP" "$ZERO" "$BATCH" "$ACCUM" "$SEQ" \
  "$([ "${RECOMPUTE:-0}" = 1 ] && echo ', recompute')" "$DEVICE" "$PRECISION"
printf "  %s samples/s  %s tokens/s  %s TFLOP/s per device  MFU %s%% (peak %s)  peak memory %s GiB\n" \
  "$samples" "$tokens" "$tflops" "$(awk -v m="$mfu" 'BEGIN {printf "%.1f", 100 * m}')" "$peak" "$mem"
mkdir -p "$(dirname "$CSV")"
[ -s "$CSV" ] || echo "date,preset,ranks,dp,tp,pp,zero,micro_batch,grad_accum,seq,recompute,device,precision,samples_per_s,tokens_per_s,tflops_per_device,mfu,peak_tflops,peak_mem_gib" >"$CSV"
echo "$(date -u +%FT%TZ),$PRESET,$RANKS,$dp,$TP,$PP,$ZERO,$BATCH,$ACCUM,$SEQ,${RECOMPUTE:-0},$DEVICE,$PRECISION,$samples,$tokens,$tflops,$mfu,$peak,$mem" >>"$CSV"
echo "appended to $CSV"
