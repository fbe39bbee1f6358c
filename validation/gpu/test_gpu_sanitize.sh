#!/usr/bin/env bash
# compute-sanitizer on the CUDA backend: memcheck on 2 training steps of the
# tiny preset (SIMT attention) and of the small one (tensor-core attention),
# one rank each (no NCCL: a Comm of one rank never initialises it), and of
# tiny tp2 on 2 ranks sharing the GPU through the host-staged device
# communication (--device-comm mpi); racecheck and synccheck on our attention
# kernels, both paths (the op test's small shapes; cuDNN's kernels are left
# out: racecheck reports hazards inside NVIDIA's wgmma flash-attention kernels
# that are not ours to change).  A failing memcheck
# names its first errors and the first host frames (the library that made a
# failing API call).  SKIPs where no GPU is visible or the tool is missing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/gpu_lib.sh"
if [ "$(gpu_count)" -eq 0 ]; then
  skip "compute-sanitizer memcheck, racecheck, synccheck" "no GPU visible"; finish
fi
scratch

# san_errors FILE: the first error lines of a compute-sanitizer log and its
# first host frames with their libraries (else its last lines), on one line.
san_errors() {
  local why
  why=$({ grep -E 'Invalid|ERROR|[Ee]rror' "$1" | grep -v 'Saved host backtrace' | head -3
          grep -m4 -A1 'Host Frame' "$1" | grep -v '^--$'; } | sed -E 's/^=+ *//; s/ +/ /g')
  [ -n "$why" ] || why=$(tail -3 "$1")
  paste -sd'|' - <<<"$why" | sed 's/|in / in /g; s/|/ | /g'
}

# memcheck NAME LABEL RANKS ARGS...: llama-train under memcheck (RANKS > 1:
# each rank under its own compute-sanitizer, started by mpirun).
memcheck() {
  local name=$1 label=$2 np=$3; shift 3
  local launch=()
  [ "$np" -gt 1 ] && launch=("${MPIRUN[@]}" -np "$np")
  if timeout 900 "${launch[@]}" "$SAN" --tool memcheck --error-exitcode 99 --leak-check no \
       "$BIN/llama-train" "$@" --bench --steps 2 --device cuda -x bf16 --peak-tflops 1 \
       >"$TMP/san-$name.out" 2>&1; then
    pass "compute-sanitizer memcheck: $label, no error"
  else
    fail "compute-sanitizer memcheck ($name)" "$(san_errors "$TMP/san-$name.out")"
  fi
}

SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -z "$SAN" ]; then
  skip "compute-sanitizer memcheck, racecheck, synccheck" "compute-sanitizer is not installed"
else
  memcheck tiny "2 steps of tiny in bf16, one rank" 1 -c tiny -b 2 -l 64
  memcheck small "2 steps of small in bf16, one rank" 1 -c small -b 1 -l 128
  memcheck tiny-tp2-mpi "2 steps of tiny tp2 in bf16, 2 ranks on one GPU (--device-comm mpi)" 2 \
    -c tiny -b 2 -l 64 --tp 2 --device-comm mpi
  for tool in racecheck synccheck; do
    if LLAMA_GPU_TEST_SMALL=1 LLAMA_GPU_TEST_ONLY=attention LLAMA_GPU_TEST_ATTENTION=own \
         timeout 900 "$SAN" --tool "$tool" \
         --error-exitcode 99 "$BIN/tests/test_gpu_ops" >"$TMP/san-$tool.out" 2>&1; then
      pass "compute-sanitizer $tool: our attention kernels (tensor-core and SIMT), no hazard"
    else
      fail "compute-sanitizer $tool" "$(grep -m3 -E 'hazard|ERROR|error|FAIL' "$TMP/san-$tool.out")"
    fi
  done
fi
finish
