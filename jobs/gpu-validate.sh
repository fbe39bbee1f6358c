#!/usr/bin/env bash
# Validates the CUDA backend on a GPU machine that has the CUDA toolkit but
# neither MPI nor HDF5, from a fresh copy of the tree plus the Debian packages
# jobs/gpu/fetch-debs.sh put in .gpu/ (fetch them once, on a Debian 12 machine
# with network: bash jobs/gpu/fetch-debs.sh).
#
#   bash jobs/gpu-validate.sh MODE...   each MODE in turn, after the prefix and the build:
#     test      every op against the CPU (bf16 and fp32), a model's gradients, NCCL
#               collectives, 20-step training against the CPU, tp2/pp2/dp2 with 2+
#               GPUs, then quick CPU tests while time allows          (~3-5 min)
#     sanitize  compute-sanitizer: memcheck on short runs, racecheck and synccheck
#               on the attention kernels                                   (~1-3 min)
#     bench     llama-train --bench, the 1b preset at sequence 2048 without and with
#               -g, and the transformers baseline on the same card and batch:
#               tokens/s, model TFLOP/s, MFU, the ratio                    (~3-4 min)
#     all       bench sanitize test (the default)
#
# With this workplace's device tool (one call of at most 10 minutes; the build
# takes ~10 s), the modes run in the order given and a mode that would not
# finish before DEADLINE s (default 560) is skipped with a message, so the logs
# of the ones that ran always come back:
#   run(command="bash jobs/gpu-validate.sh bench sanitize test", carry=[".gpu"], timeout_s=600)
# Logs go to $OUT (the tool brings them back) or runs/gpu-validate.
set -uo pipefail
cd "$(dirname "$0")/.."
MODES=("$@")
[ ${#MODES[@]} -eq 0 ] || [ "${MODES[*]}" = all ] && MODES=(bench sanitize test)
START=$(date +%s)
LOG=${OUT:-runs/gpu-validate}
mkdir -p "$LOG"
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
say() { echo "== gpu-validate [$(($(date +%s) - START)) s] $*"; }

# ---- the card ----
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  say "no GPU visible (nvidia-smi); nothing to validate"; exit 1
fi
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
GPU_COUNT=$(nvidia-smi -L | grep -c '^GPU')
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
say "$GPU_COUNT × $GPU_NAME (compute capability $ARCH), driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"

# Dense bf16 tensor-core peak (TFLOP/s) by name, first match wins; the same
# table as metrics_gpu_peak_tflops in src/metrics.c.
peak_for() {
  case "$1" in
    *GH200*) echo 989 ;; *"H200 NVL"*) echo 835 ;; *H200*) echo 989 ;;
    *"H100 PCIe"*) echo 756 ;; *"H100 NVL"*) echo 835 ;; *H100*) echo 989 ;;
    *"H800 PCIe"*) echo 756 ;; *H800*) echo 989 ;; *B200*) echo 2250 ;; *B100*) echo 1750 ;;
    *A100*|*A800*) echo 312 ;; *A10G*) echo 70 ;; *A10*) echo 125 ;; *A30*) echo 165 ;;
    *A40*) echo 150 ;; *L40S*) echo 362 ;; *L40*) echo 181 ;; *L4*) echo 121 ;;
    *"RTX 6000 Ada"*) echo 364 ;; *"RTX 4090"*) echo 165 ;; *"RTX 3090"*) echo 71 ;;
    *"RTX A6000"*) echo 155 ;; *) echo 0 ;;
  esac
}
PEAK=$(peak_for "$GPU_NAME")

# ---- dependencies and build ----
if [ ! -d .gpu/debs ]; then
  say "no .gpu/debs: run jobs/gpu/fetch-debs.sh on a Debian 12 machine and carry .gpu"; exit 1
fi
eval "$(bash jobs/gpu/setup-prefix.sh .gpu/debs /tmp/llama-deps)" || { say "setup-prefix failed"; exit 1; }
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
say "prefix $DEPS ready; mpicc $(command -v mpicc); NCCL ${NCCL_HOME:-from the CUDA toolkit}"
t0=$(date +%s)
# Warnings do not stop this build (its host compiler is not CI's); they are counted.
if ! make -j"$(nproc)" DEPS="$DEPS" ${NCCL_HOME:+NCCL_HOME="$NCCL_HOME"} ${ARCH:+CUDA_ARCH="$ARCH"} \
     NVCC_WERROR= programs >"$LOG/build.log" 2>&1; then
  tail -30 "$LOG/build.log"; say "build failed (log: $LOG/build.log)"; exit 1
fi
say "built in $(($(date +%s) - t0)) s for sm_$ARCH, $(grep -c 'warning' "$LOG/build.log") warning lines"

status=0

run_test() {
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} TEST_TIMEOUT=900
  for t in test_gpu_ops test_gpu_train; do
    say "validation/run.sh $t"
    bash validation/run.sh "$t" 2>&1 | tee "$LOG/$t.log"
    grep -q ' 0 failed$' "$LOG/$t.log" || status=1
  done
  # The CPU suite's quick, central parts, while the call has time left (CI runs
  # all of it; test_parallel is left to CI: ~6 minutes of CPU work).
  for t in test_gpu_emu test_gradcheck test_reference; do
    if ! time_for "$t" 120; then continue; fi
    say "validation/run.sh $t"
    bash validation/run.sh "$t" 2>&1 | tee "$LOG/$t.log" | tail -4
    grep -q ' 0 failed$' "$LOG/$t.log" || status=1
  done
}

# bench NAME ARGS...: llama-train --bench, 1b at sequence 2048; the summary line.
bench() {
  local name=$1; shift
  say "llama-train --bench -c 1b -l 2048 $*"
  OMP_NUM_THREADS=$(nproc) timeout 400 build/llama-train -c 1b -l 2048 --bench --steps 10 \
    --bench-warmup 3 --device cuda -x bf16 --peak-tflops "$PEAK" --log "$LOG/$name.jsonl" "$@" \
    >"$LOG/$name.out" 2>&1 </dev/null
  local rc=$?
  grep -E '^step|MFU against|bench:' "$LOG/$name.out" | tail -4
  [ $rc -eq 0 ] || { tail -5 "$LOG/$name.out"; status=1; }
}

field() { grep -o "\"$2\": [^,}]*" "$LOG/$1.jsonl" 2>/dev/null | tail -1 | cut -d' ' -f2; }

run_bench() {
  local B=${BENCH_BATCH:-8} BG=${BENCH_BATCH_G:-8}
  bench b$B -b "$B"
  bench b$BG-g -b "$BG" -g
  say "transformers baseline (same shape, batch $B, bf16 autocast, SDPA)"
  env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 timeout 400 \
    python3 jobs/bench/torch_eager_gpu.py --preset 1b -b "$B" -l 2048 --steps 8 --warmup 3 \
    >"$LOG/torch.out" 2>&1 </dev/null || { tail -5 "$LOG/torch.out"; status=1; }
  grep -E '^torch' "$LOG/torch.out"
  local ours ours_g tflops tflops_g mfu mfu_g mem mem_g torch_tps torch_tfl
  ours=$(field b$B tokens_per_s); tflops=$(field b$B tflops); mfu=$(field b$B mfu); mem=$(field b$B peak_mem_gib)
  ours_g=$(field b$BG-g tokens_per_s); tflops_g=$(field b$BG-g tflops); mfu_g=$(field b$BG-g mfu); mem_g=$(field b$BG-g peak_mem_gib)
  torch_tps=$(grep -o '"torch_tokens_per_s": [^,}]*' "$LOG/torch.out" | cut -d' ' -f2)
  torch_tfl=$(grep -o '"torch_tflops": [^,}]*' "$LOG/torch.out" | cut -d' ' -f2)
  echo
  echo "1b (TinyLlama shape), sequence 2048, bf16, on $GPU_NAME (peak $PEAK TFLOP/s dense bf16)"
  printf '%-34s %12s %14s %8s %10s\n' run tokens/s "model TFLOP/s" MFU "peak GiB"
  printf '%-34s %12.0f %14.1f %7.1f%% %10.1f\n' "llama-train b$B" "${ours:-0}" "${tflops:-0}" \
    "$(awk -v m="${mfu:-0}" 'BEGIN{print 100*m}')" "${mem:-0}"
  printf '%-34s %12.0f %14.1f %7.1f%% %10.1f\n' "llama-train b$BG -g" "${ours_g:-0}" "${tflops_g:-0}" \
    "$(awk -v m="${mfu_g:-0}" 'BEGIN{print 100*m}')" "${mem_g:-0}"
  printf '%-34s %12.0f %14.1f %7.1f%%\n' "transformers eager b$B" "${torch_tps:-0}" "${torch_tfl:-0}" \
    "$(awk -v t="${torch_tfl:-0}" -v p="$PEAK" 'BEGIN{print (p > 0 ? 100 * t / p : 0)}')"
  awk -v a="${ours:-0}" -v b="${torch_tps:-0}" -v B="$B" \
    'BEGIN{ if (b > 0) printf "ratio llama-train / transformers at b%d: %.2f\n", B, a / b }'
}

run_sanitize() {
  say "validation/run.sh test_gpu_sanitize"
  bash validation/run.sh test_gpu_sanitize 2>&1 | tee "$LOG/test_gpu_sanitize.log"
  grep -q ' 0 failed$' "$LOG/test_gpu_sanitize.log" || status=1
}

# time_for WHAT SECONDS: whether WHAT, taking about SECONDS, ends before DEADLINE.
time_for() {
  if [ $(($(date +%s) - START + $2)) -le "${DEADLINE:-560}" ]; then return 0; fi
  say "skipping $1: it would not end before DEADLINE=${DEADLINE:-560} s"; return 1
}

for mode in "${MODES[@]}"; do
  case "$mode" in   # about how long each takes, in seconds
    test|sanitize) need=150 ;;
    bench) need=200 ;;
    *) echo "usage: $0 test|sanitize|bench|all ..." >&2; exit 2 ;;
  esac
  if time_for "$mode" "$need"; then "run_$mode"; else status=1; fi
done
say "done, status $status (logs in $LOG)"
exit $status
