#!/usr/bin/env bash
# The device collectives on 2 and 4 ranks (issue 19, item 6: on one rank
# all-reduce, reduce-scatter and all-gather are copies and point-to-point is
# skipped): test_gpu_ops' collectives case, values checked exactly on every
# rank, through the emulator (host memory, MPI), and where a GPU is visible
# through the host-staged path (--device-comm mpi: the ranks share the GPU)
# and, with 2 or more GPUs, NCCL.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/gpu_lib.sh"

# collectives NAME BINARY RANKS [ENV...]: every rank passes both precisions.
collectives() {
  local name=$1 bin=$2 np=$3 out; shift 3
  out=$(env LLAMA_GPU_TEST_ONLY=collectives "$@" timeout 300 "${MPIRUN[@]}" -np "$np" "$bin" 2>&1)
  local passes; passes=$(grep -c "^PASS .*collectives.* on $np ranks" <<<"$out")
  if [ "$passes" -eq $((2 * np)) ] && ! grep -q '^FAIL' <<<"$out"; then pass "$name"
  else fail "$name" "$passes of $((2 * np)) rank-precision passes: $(grep -m2 -E '^FAIL|rror' <<<"$out")"; fi
}

if [ -x "$BIN/tests/test_gpu_emu" ]; then
  for np in 2 4; do collectives "emulated device collectives on $np ranks" "$BIN/tests/test_gpu_emu" $np; done
else skip "emulated device collectives" "no emulator build (it needs nvcc)"; fi

GPUS=$(gpu_count)
if [ "$GPUS" -ge 1 ] && [ -x "$BIN/tests/test_gpu_ops" ]; then
  collectives "host-staged collectives on 2 ranks sharing a GPU" "$BIN/tests/test_gpu_ops" 2 \
    LLAMA_GPU_TEST_DEVICE_COMM=mpi
  if [ "$GPUS" -ge 2 ]; then collectives "NCCL collectives on 2 GPUs" "$BIN/tests/test_gpu_ops" 2
  else skip "NCCL collectives on 2 GPUs" "1 GPU visible"; fi
else
  skip "collectives on a GPU" "no GPU visible"
fi
finish
