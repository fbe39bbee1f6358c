#!/usr/bin/env bash
# Plots a llama-train metrics log (--log JSON Lines): training loss per step
# and held-out loss at each evaluation (top), throughput in tokens/s (bottom).
#   jobs/plot-metrics.sh runs/quickstart/metrics.jsonl runs/quickstart/metrics.png
set -euo pipefail
log=${1:?metrics.jsonl}; out=${2:-${1%.jsonl}.png}
command -v gnuplot >/dev/null || { echo "plot-metrics: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
val() { grep -o "\"$1\": [^,}]*" | cut -d' ' -f2; }
{ grep '"loss"' "$log" || true; } | while read -r line; do   # none: said below
  echo "$(echo "$line" | val step) $(echo "$line" | val loss) $(echo "$line" | val tokens_per_s)"
done >"$tmp/train.dat"
{ grep '"eval_loss"' "$log" || true; } | while read -r line; do   # a run without evaluations
  echo "$(echo "$line" | val step) $(echo "$line" | val eval_loss)"
done >"$tmp/eval.dat"
[ -s "$tmp/train.dat" ] || { echo "plot-metrics: $log has no training steps" >&2; exit 1; }
evalplot=""
[ -s "$tmp/eval.dat" ] && evalplot=", '$tmp/eval.dat' using 1:2 with linespoints lw 2 pt 7 lc rgb '#d62728' title 'held-out'"
gnuplot <<GP
set terminal pngcairo size 900,800 font ",12"
set output "$out"
set multiplot layout 2,1 title "$(basename "$log")"
set grid
set xlabel "step"
set ylabel "loss (nats)"
plot '$tmp/train.dat' using 1:2 with lines lw 1.5 lc rgb '#1f77b4' title 'training'$evalplot
set ylabel "tokens/s"
set yrange [0:*]
plot '$tmp/train.dat' using 1:3 with lines lw 1.5 lc rgb '#2ca02c' title 'throughput'
unset multiplot
GP
echo "wrote $out"
