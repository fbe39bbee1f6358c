#!/usr/bin/env bash
# Checkpoint bandwidth: the small preset on dp2 × tp2 (4 ranks) saves and
# loads a checkpoint (fp32 master weights + two Adam moments = 12 bytes per
# parameter), beside the disk's own sequential rate (dd, same size, flushed).
#   DIR=/scratch/x jobs/bench-checkpoint.sh        (default: a folder under /tmp)
set -euo pipefail
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
DIR=${DIR:-$(mktemp -d "${TMPDIR:-/tmp}/llama-ckbench.XXXXXX")}
PRESET=${PRESET:-small}
mpi=(mpirun --oversubscribe -np 4 -x OMP_NUM_THREADS=1)
[ "$(id -u)" -eq 0 ] && mpi+=(--allow-run-as-root)
common=(-c "$PRESET" --bench -l 64 -b 1 --tp 2 --peak-tflops 1 -o "$DIR/ck")
"${mpi[@]}" "$BUILD/llama-train" "${common[@]}" --steps 1 -i 1 | grep "saved checkpoint"
"${mpi[@]}" "$BUILD/llama-train" "${common[@]}" --steps 2 -f auto | grep "loaded checkpoint"
bytes=$(stat -c %s "$DIR"/ck/step_0000001/checkpoint.h5)
mb=$((bytes / 1048576 + 1))
sync
write=$(dd if=/dev/zero of="$DIR/dd.bin" bs=1M count=$mb conv=fsync 2>&1 | tail -1)
echo 3 >/proc/sys/vm/drop_caches 2>/dev/null || true
read=$(dd if="$DIR/dd.bin" of=/dev/null bs=1M 2>&1 | tail -1)
echo "checkpoint file: $bytes bytes"
echo "dd write (fsync): $write"
echo "dd read:          $read"
rm -rf "$DIR"
