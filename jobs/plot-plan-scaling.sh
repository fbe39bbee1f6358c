#!/usr/bin/env bash
# The planner's predicted scaling: llama-plan's best layout for each model at
# 8, 16, …, 1,024 devices of a machine profile, a fixed global batch; writes
# OUT/plan-scaling.csv and OUT/plan-scaling.png (tokens/s of the job and model
# TFLOP/s per device against devices, one line per model).  Predictions from
# the profile's rates (the GPU profiles' achieved fractions are assumed).
#   jobs/plot-plan-scaling.sh [OUT]   (MODELS="7b 65b", MACHINE=..., SEQ=2048, TOKENS=4194304)
# OUT defaults to runs/plan-scaling in the repository; a relative OUT given is
# taken from the caller's folder.
set -euo pipefail
out=${1:-}
[ -n "$out" ] && [ "${out#/}" = "$out" ] && out=$PWD/$out   # a relative OUT: from the caller's folder
cd "$(dirname "$0")/.."
out=${out:-runs/plan-scaling}
BUILD=${BUILD:-build}
MODELS=${MODELS:-7b 65b} MACHINE=${MACHINE:-inputs/machines/a100-80gb.machine}
SEQ=${SEQ:-2048} TOKENS=${TOKENS:-4194304}
command -v gnuplot >/dev/null || { echo "plot-plan-scaling: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
[ -x "$BUILD/llama-plan" ] || { echo "plot-plan-scaling: $BUILD/llama-plan not found; run make first" >&2; exit 1; }
mkdir -p "$out"
csv=$out/plan-scaling.csv
echo "model,devices,layout,tokens_per_s,tflops_per_device,mfu,tflops_8n" >"$csv"
for m in $MODELS; do
  for d in 8 16 32 64 128 256 512 1024; do
    # The best layout's row of --tsv: columns 2-11 and 29 the layout, 25-28 the rates.
    "$BUILD/llama-plan" -c "$m" --devices "$d" --machine "$MACHINE" -l "$SEQ" \
      --global-batch-tokens "$TOKENS" --tsv --top 1 2>/dev/null |
      awk -F'\t' -v m="$m" -v d="$d" 'NR == 2 { printf "%s,%d,tp %s cp %s pp %s dp %s vpp %s zero %s%s %s sp %s b %s ga %s,%s,%s,%s,%s\n",
        m, d, $2, $3, $4, $5, $6, $7, $29 == 1 ? " offload" : "", $8, $9, $10, $11, $25, $26, $27, $28 }' >>"$csv" || true
  done
done
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
plots_t=() plots_f=()
for m in $MODELS; do
  awk -F, -v m="$m" 'NR > 1 && $1 == m { print $2, $4, $5 }' "$csv" >"$tmp/$m.dat"
  [ -s "$tmp/$m.dat" ] || continue
  plots_t+=("'$tmp/$m.dat' using 1:2 with linespoints lw 2 pt 7 title '$m'")
  plots_f+=("'$tmp/$m.dat' using 1:3 with linespoints lw 2 pt 7 title '$m'")
done
join() { local IFS=,; echo "$*"; }
gnuplot <<GP
set terminal pngcairo size 1200,500 font ",11"
set output "$out/plan-scaling.png"
set multiplot layout 1,2 title "llama-plan's best layout per device count: $(basename "$MACHINE" .machine), sequence $SEQ, $TOKENS tokens per step (predicted)"
set grid
set key left top
set logscale x 2
set xlabel "devices"
set logscale y
set ylabel "tokens/s (whole job)"
plot $(join "${plots_t[@]}")
unset logscale y
set ylabel "model TFLOP/s per device"
set yrange [0:*]
set key right top
plot $(join "${plots_f[@]}")
unset multiplot
GP
echo "wrote $csv and $out/plan-scaling.png"
