#!/usr/bin/env bash
# Checks, on this (Debian) machine, that the carried .debs are enough: in a
# private mount namespace every file the system's copies of the packages a
# base Ubuntu lacks installed (MPI and its transports, HDF5, OpenBLAS,
# jansson, every -dev package's headers and links) is hidden (bound to
# /dev/null, folders to an empty one), the debs
# are unpacked into a fresh prefix by setup-prefix.sh, and the tree is built
# from the prefix alone (BUILD=build-prefix) and run on 2 MPI ranks (mpirun
# reads stdin: every command of the inner script gets /dev/null): the
# situation of the GPU machine, which has compilers and CUDA but no MPI/HDF5.
#     bash jobs/gpu/check-prefix.sh        (as root; needs unshare)
set -euo pipefail
cd "$(dirname "$0")/../.."
[ -d .gpu/debs ] || { echo "check-prefix: run jobs/gpu/fetch-debs.sh first" >&2; exit 1; }
PREFIX=${PREFIX:-/tmp/llama-check-prefix}
rm -rf "$PREFIX"
exec unshare -m --propagation private bash -s "$PREFIX" <<'INNER'
set -euo pipefail
PREFIX=$1
empty=$(mktemp -d)
hidden=0
for deb in .gpu/debs/*.deb; do
  pkg=$(dpkg-deb -f "$deb" Package)
  # The system's own libraries (PCRE2, zstd, OpenSSL, Kerberos, ...) stay: a
  # base Ubuntu has them too, and mount, tar and the compilers need them.
  grep -Eq '^(openmpi|libopenmpi|libhdf5|libdnnl|ocl-icd|libopenblas|libjansson|libpmix|libevent|libhwloc|libfabric|libucx|libpsm|libibverbs|ibverbs|librdmacm|libmunge|libaec|libsz|libgfortran|libnl-|libnuma)|-dev$' <<<"$pkg" || continue
  dpkg -L "$pkg" >/dev/null 2>&1 || continue
  while read -r f; do
    if [ -L "$f" ]; then continue
    elif [ -f "$f" ]; then mount --bind /dev/null "$f" && hidden=$((hidden + 1))
    fi
  done < <(dpkg -L "$pkg")
done
for d in /etc/openmpi /usr/lib/x86_64-linux-gnu/openmpi /usr/lib/x86_64-linux-gnu/pmix2 \
         /usr/include/hdf5 /usr/lib/x86_64-linux-gnu/hdf5 /usr/share/openmpi; do
  [ -d "$d" ] && mount --bind "$empty" "$d"
done
echo "check-prefix: $hidden system files of the carried packages hidden"
if mpicc --version >/dev/null 2>&1 && [ "$(command -v mpicc)" != "$PREFIX/bin/mpicc" ]; then
  echo "check-prefix: the system's mpicc still works: the hiding failed" >&2; exit 1
fi
eval "$(bash jobs/gpu/setup-prefix.sh .gpu/debs "$PREFIX")"
echo "check-prefix: prefix $PREFIX ($(du -sh "$PREFIX" | cut -f1)), mpicc $(command -v mpicc)"
mpicc --showme:incdirs
make -j"$(nproc)" BUILD=build-prefix DEPS="$DEPS" programs >build-prefix.log 2>&1 ||
  { tail -20 build-prefix.log; exit 1; }
echo "check-prefix: built build-prefix/ with DEPS=$DEPS"
ldd build-prefix/llama-train | grep -E "mpi|hdf5|dnnl|openblas|jansson|pcre|zstd|crypto" | sed 's/^/  /'
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
mpirun --oversubscribe -np 2 build-prefix/llama-train -c tiny --bench --steps 3 -b 2 -l 32 --tp 2 \
  --peak-tflops 1 </dev/null 2>&1 | tail -3
mpirun --oversubscribe -np 2 build-prefix/llama-tokenize encode --tokenizer bytes \
  --input inputs/redpajama-mini/wikipedia_sample.jsonl --output /tmp/check-prefix-shards \
  --val-fraction 0.05 </dev/null 2>&1 | tail -3
rm -rf /tmp/check-prefix-shards
# A unit test started without mpirun: Open MPI's singleton start-up.
build-prefix/tests/test_gpu_emu </dev/null 2>&1 | grep -c '^PASS' | sed 's/^/  singleton test_gpu_emu: PASS lines: /'
echo "check-prefix: OK: mpirun -np 2 and singletons run from the prefix alone"
INNER
