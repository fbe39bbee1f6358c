#!/usr/bin/env bash
# Measures a machine profile for CPU ranks on this machine (one rank per core,
# one OpenMP thread each): llama-calibrate's rates of the CPU backend's ops at
# the tiny and small presets' shapes (matmul, attention, element-wise, the
# fixed cost of an op) and MPI's all-reduce and point-to-point bandwidth and
# latency.  Writes inputs/machines/cpu-local.machine (or OUT=FILE, a relative
# one taken from the caller's folder), replacing it only when the measurement
# succeeded.  RANKS=N overrides the core count.
#   BUILD=build bash jobs/calibrate.sh
set -euo pipefail
[ -n "${OUT:-}" ] && [ "${OUT#/}" = "$OUT" ] && OUT=$PWD/$OUT   # a relative OUT: from the caller's folder
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
OUT=${OUT:-inputs/machines/cpu-local.machine}
RANKS=${RANKS:-$(getconf _NPROCESSORS_ONLN)}
[ "$RANKS" -ge 2 ] || RANKS=2
[ -x "$BUILD/llama-calibrate" ] || { echo "calibrate.sh: $BUILD/llama-calibrate not found; run make first" >&2; exit 1; }
mpi=(mpirun --oversubscribe --bind-to none -np "$RANKS" -x OMP_NUM_THREADS)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
tmp=$(mktemp "$OUT.XXXXXX")
trap 'rm -f "$tmp"' EXIT
{
  echo "# CPU ranks of $(hostname): $(lscpu | sed -n 's/^Model name: *//p'), $(getconf _NPROCESSORS_ONLN) cores."
  echo "# Measured by jobs/calibrate.sh on $(date -u +%Y-%m-%d) with $RANKS ranks × 1 OpenMP thread,"
  echo "# every rank measuring at once (the slowest rank's figure kept); load average then:"
  echo "# $(cut -d' ' -f1-3 /proc/loadavg) (other work on the cores lowers every rate)."
  echo "# A device here is one rank with one thread: run llama-train with OMP_NUM_THREADS=1."
  OMP_NUM_THREADS=1 "${mpi[@]}" "$BUILD/llama-calibrate"
} > "$tmp"
mv "$tmp" "$OUT"
trap - EXIT
echo "calibrate.sh: wrote $OUT"
