#!/usr/bin/env bash
# Plots a benchmark CSV (jobs/benchmark.sh rows): OUT/throughput.png, tokens/s
# against ranks per layout family (dp only, tp only, pp only, mixed), and
# OUT/efficiency.png, per-rank tokens/s relative to the one-rank run.
#   jobs/plot-scaling.sh runs/scaling/scaling.csv runs/scaling
set -euo pipefail
csv=${1:?CSV}; out=${2:?output folder}
command -v gnuplot >/dev/null || { echo "plot-scaling: gnuplot is missing (apt-get install gnuplot-nox)" >&2; exit 1; }
tmp=$(mktemp -d); trap 'rm -rf "$tmp"' EXIT
# Columns: ranks,dp,tp,pp,tokens_per_s → one data file per family, sorted by ranks.
base=$(awk -F, 'NR > 1 && $3 == 1 {print $15; exit}' "$csv")
[ -n "$base" ] || base=$(awk -F, 'NR == 2 {print $15 / $3}' "$csv")
awk -F, -v dir="$tmp" -v base="$base" 'NR > 1 {
  fam = ($5 == 1 && $6 == 1) ? "data-parallel" : ($4 == 1 && $6 == 1) ? "tensor-parallel" : \
        ($4 == 1 && $5 == 1) ? "pipeline-parallel" : "mixed";
  if ($3 == 1) { print $3, $15, 1.0 > (dir "/data-parallel.dat"); print $3, $15, 1.0 > (dir "/tensor-parallel.dat");
                 print $3, $15, 1.0 > (dir "/pipeline-parallel.dat"); next }
  print $3, $15, $15 / $3 / base > (dir "/" fam ".dat") }' "$csv"
plots_t=() plots_e=()
for fam in data-parallel tensor-parallel pipeline-parallel mixed; do
  f=$tmp/$fam.dat
  [ -s "$f" ] || continue
  sort -n -o "$f" "$f"
  plots_t+=("'$f' using 1:2 with linespoints lw 2 pt 7 title '$fam'")
  plots_e+=("'$f' using 1:3 with linespoints lw 2 pt 7 title '$fam'")
done
join() { local IFS=,; echo "$*"; }
gnuplot <<GP
set terminal pngcairo size 900,600 font ",12"
set grid
set key left top
set xlabel "ranks"
set output "$out/throughput.png"
set title "Throughput: $(awk -F, 'NR == 2 {print $2 ", micro-batch " $8 ", seq " $10 ", " $12 " " $13}' "$csv")"
set ylabel "tokens/s (whole job)"
plot $(join "${plots_t[@]}")
set output "$out/efficiency.png"
set title "Parallel efficiency: tokens/s per rank relative to one rank"
set ylabel "efficiency"
set yrange [0:1.1]
plot $(join "${plots_e[@]}"), 1 with lines dt 2 lc rgb "gray" title "ideal"
GP
echo "wrote $out/throughput.png and $out/efficiency.png"
