#!/usr/bin/env bash
# The planner against measured runs on CPU ranks: each layout below runs
# `llama-train --bench` (one OpenMP thread per rank, as the profile's device
# is) and is predicted by `llama-plan --exact` with the same options on a
# machine profile (default inputs/machines/cpu-local.machine from
# jobs/calibrate.sh).  Prints, per layout, the measured and predicted step
# time and the buffers' peak memory (the end-of-run report of the busiest
# rank) against the prediction, and the largest errors.  Not part of
# `make test` (a few minutes); exits 1 when a layout fails to run.
#   BUILD=build bash validation/plan/validate_cpu.sh [STEPS]
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
MACHINE=${MACHINE:-inputs/machines/cpu-local.machine}
STEPS=${1:-6}   # the first 2 are warm-up
mpi=(mpirun --oversubscribe --bind-to none -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
# ranks | model | seq | options (llama-train's and llama-plan's)
layouts=(
  "2|small|256|-b 4"
  "2|small|256|-b 4 --zero 1"
  "2|small|256|-b 2 --grad-accum 2 --zero 3"
  "2|small|256|-b 4 -g"
  "2|small|256|-b 4 --tp 2"
  "2|small|256|-b 4 --tp 2 --sp"
  "2|small|256|-b 2 --grad-accum 4 --pp 2"
  "4|small|256|-b 2 --tp 2"
  "4|small|256|-b 2 --grad-accum 2 --pp 2 --zero 2"
  "4|small|256|-b 2 --grad-accum 4 --tp 2 --pp 2"
  "8|small|256|-b 1 --grad-accum 4 --tp 2 --pp 2 --zero 1"
  "2|tiny|128|-b 8"
  "4|tiny|128|-b 4 --grad-accum 4 --tp 2 --pp 2 --vpp 2"
)
printf "%-52s %10s %10s %7s %11s %11s %7s\n" "ranks model seq options" "measured s" "predict s" "error" "buffers" "predicted" "error"
worst_t=0 worst_m=0 failed=0
for l in "${layouts[@]}"; do
  IFS='|' read -r np model seq opts <<<"$l"
  # shellcheck disable=SC2086
  out=$(OMP_NUM_THREADS=1 "${mpi[@]}" -np "$np" "$BUILD/llama-train" --bench -c "$model" -l "$seq" \
        --steps "$STEPS" $opts 2>&1) || { echo "FAILED: $l"; echo "$out" | tail -3; failed=1; continue; }
  tps=$(sed -n 's/^bench: .*, \([0-9.]*\) tokens\/s.*/\1/p' <<<"$out")
  read -r dp B M <<<"$(sed -n 's/^bench: .*(dp \([0-9]*\) tp.*micro-batch \([0-9]*\) × \([0-9]*\),.*/\1 \2 \3/p' <<<"$out")"
  buf=$(grep -o "buffers' peak [0-9.]* [KMG]iB" <<<"$out" | awk '{v=$3; u=$4; m=(u=="KiB")?1/1024:(u=="GiB")?1024:1; v*=m; if (v>x) x=v} END {print x}')
  tokens=$((dp * B * M * seq))
  # shellcheck disable=SC2086
  pred=$("$BUILD/llama-plan" -c "$model" -l "$seq" --devices "$np" --machine "$MACHINE" \
         --global-batch-tokens "$tokens" --exact --tsv $opts | awk -F'\t' 'NR == 2 {print $14, $13}')
  read -r pstep pmem <<<"$pred"
  awk -v l="$np $model $seq $opts" -v tps="$tps" -v tok="$tokens" -v p="$pstep" -v buf="$buf" -v pm="$pmem" 'BEGIN {
    m = tok / tps; e = 100 * (p - m) / m; pmb = pm / 1048576; em = 100 * (pmb - buf) / buf;
    printf "%-52s %10.4f %10.4f %+6.1f%% %7.2f MiB %7.2f MiB %+6.1f%%\n", l, m, p, e, buf, pmb, em }'
done | tee /tmp/validate_cpu.$$
awk '{ t = $(NF-5); m = $NF; gsub(/[%+-]/, "", t); gsub(/[%+-]/, "", m);
       if (t + 0 > wt) wt = t + 0; if (m + 0 > wm) wm = m + 0 }
     END { printf "largest step-time error %.1f%%, largest memory error %.1f%% (load average %s)\n", wt, wm, load }' \
    load="$(cut -d' ' -f1-3 /proc/loadavg)" <(grep -v "^FAILED\|^ " /tmp/validate_cpu.$$ | tail -n +2)
grep -q "^FAILED" /tmp/validate_cpu.$$ && failed=1
rm -f /tmp/validate_cpu.$$
exit "$failed"
