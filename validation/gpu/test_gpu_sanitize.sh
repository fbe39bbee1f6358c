#!/usr/bin/env bash
# compute-sanitizer on the CUDA backend: memcheck on 2 training steps of the
# tiny preset (SIMT attention) and of the small one (tensor-core attention),
# racecheck and synccheck on the attention kernels of both paths (the op
# test's small shapes).  SKIPs where no GPU is visible or the tool is missing.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/gpu_lib.sh"
if [ "$(gpu_count)" -eq 0 ]; then
  skip "compute-sanitizer memcheck, racecheck, synccheck" "no GPU visible"; finish
fi
scratch
SAN=$(command -v compute-sanitizer || ls /usr/local/cuda/bin/compute-sanitizer 2>/dev/null)
if [ -z "$SAN" ]; then
  skip "compute-sanitizer memcheck, racecheck, synccheck" "compute-sanitizer is not installed"
else
  for c in "tiny -c tiny -b 2 -l 64" "small -c small -b 1 -l 128"; do
    set -- $c
    name=$1; shift
    if timeout 900 "$SAN" --tool memcheck --error-exitcode 99 --leak-check no "$BIN/llama-train" "$@" \
         --bench --steps 2 --device cuda -x bf16 --peak-tflops 1 >"$TMP/san-$name.out" 2>&1; then
      pass "compute-sanitizer memcheck: 2 steps of $name in bf16, no error"
    else
      fail "compute-sanitizer memcheck ($name)" "$(grep -m3 -E 'Invalid|ERROR|error' "$TMP/san-$name.out")"
    fi
  done
  for tool in racecheck synccheck; do
    if LLAMA_GPU_TEST_SMALL=1 LLAMA_GPU_TEST_ONLY=attention timeout 900 "$SAN" --tool "$tool" \
         --error-exitcode 99 "$BIN/tests/test_gpu_ops" >"$TMP/san-$tool.out" 2>&1; then
      pass "compute-sanitizer $tool: the attention kernels (both paths), no hazard"
    else
      fail "compute-sanitizer $tool" "$(grep -m3 -E 'hazard|ERROR|error|FAIL' "$TMP/san-$tool.out")"
    fi
  done
fi
finish
