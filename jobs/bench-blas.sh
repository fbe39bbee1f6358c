#!/usr/bin/env bash
# Compares the BLAS libraries Debian ships on the sgemm shapes of one
# training step (jobs/bench/blas_compare.c): OpenBLAS,
# BLIS and oneDNN, each with OMP_NUM_THREADS threads (default: the cores),
# three times, alternating.  Needs libopenblas-openmp-dev, libblis-dev and
# libdnnl-dev; a library that is not installed is skipped.
#   PRESET=small B=4 L=256 bash jobs/bench-blas.sh
set -euo pipefail
cd "$(dirname "$0")/.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
arch=$(gcc -print-multiarch)
# small: dim 384, 6 heads (2 KV) of 64, FFN 1024, vocabulary 8192; tiny: 64, 4 (2) of 16, 192, 256.
case ${PRESET:-small} in
  small) D=384 Q=640 F=1024 V=8192 ;;
  tiny) D=64 Q=128 F=192 V=256 ;;
  *) echo "bench-blas.sh: PRESET small or tiny" >&2; exit 1 ;;
esac
N=$(( ${B:-4} * ${L:-256} ))
src=jobs/bench/blas_compare.c
cc=(gcc -O2 -fopenmp)
"${cc[@]}" -I"/usr/include/$arch/openblas-openmp" "$src" -o "$tmp/openblas" \
  -L"/usr/lib/$arch/openblas-openmp" -Wl,-rpath,"/usr/lib/$arch/openblas-openmp" -lopenblas 2>/dev/null || true
"${cc[@]}" -I"/usr/include/$arch/blis-openmp" "$src" -o "$tmp/blis" \
  -L"/usr/lib/$arch/blis-openmp" -Wl,-rpath,"/usr/lib/$arch/blis-openmp" -lblis 2>/dev/null || true
"${cc[@]}" -DUSE_DNNL "$src" -o "$tmp/onednn" -ldnnl 2>/dev/null || true
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-$(getconf _NPROCESSORS_ONLN)}
export BLIS_NUM_THREADS=$OMP_NUM_THREADS
echo "== ${PRESET:-small}: N $N, $OMP_NUM_THREADS threads; $(lscpu | sed -n 's/^Model name: *//p')"
for round in 1 2 3; do
  for lib in openblas blis onednn; do
    [ -x "$tmp/$lib" ] || { echo "-- $lib: not installed"; continue; }
    echo "-- $lib (round $round)"
    "$tmp/$lib" "$N" "$D" "$Q" "$F" "$V" 10
  done
done
