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
#     ops       test_gpu_ops (both attention implementations), the collectives on 2
#               ranks (test_gpu_collectives), then the attention micro-benchmark
#               (test_gpu_ops --bench-attention)                          (~1 min)
#     train     test_gpu_train alone: 20-step runs against the CPU, every layout
#               (one GPU: --device-comm mpi)                           (~2-4 min)
#     sanitize  compute-sanitizer: memcheck on short runs, racecheck and synccheck
#               on the attention kernels                                   (~1-3 min)
#     bench     llama-train --bench, the 1b preset at sequence 2048, in this order:
#               micro-batch 8 (cuDNN attention when built in), transformers eager
#               at 8 (the baseline), 8 with --attention own, 8 with -g, 16 (out of
#               memory is reported, not a failure), the attention micro-benchmark
#               (test_gpu_ops --bench-attention), torch.compile at 8 (its own 150 s
#               limit; a failure is reported, not counted); then one table: tokens/s,
#               model TFLOP/s, MFU, peak GiB, ratio to eager b8   (~4-6 min; each
#               run ~30-60 s, compile ~2 min: the runs that would pass the mode's
#               end are skipped, compile first)
#     profile   one training step (the second) of llama-train 1b b8 under Nsight
#               Compute (gpu__time_duration.sum of each kernel) and one of
#               transformers eager b8 under torch.profiler (CUDA activity), summed by
#               jobs/bench/profile_summary.py: kernel time of the step, the top 15
#               kernels of each, the time per category (attention, matmul, norms,
#               rope, swiglu, cross-entropy, optimizer, ...) side by side (~2-4 min)
#               Files: profile-ncu.csv, profile-torch.json (+ .trace.json, Perfetto),
#               profile-summary.txt/.json, profile-ours.csv/-torch.csv (every kernel)
#     all       bench sanitize test (the default)
#
# With this workplace's device tool (one call of at most 10 minutes; the build
# takes ~10-60 s), the modes run in the order given; each may run until
# DEADLINE s (default 560) less what the modes after it need (test, sanitize
# 150 s, bench 200 s, profile 210 s), and a mode, or a run inside bench and
# profile, that would not end by then is skipped with a message, so the logs
# and tables of the ones that ran always come back:
#   run(command="bash jobs/gpu-validate.sh bench profile", carry=[".gpu"], timeout_s=600)
#   run(command="bash jobs/gpu-validate.sh bench sanitize test", carry=[".gpu"], timeout_s=600)
# bench and profile also keep to budgets of BENCH_BUDGET (360) and PROFILE_BUDGET
# (290) seconds.  (With "bench profile", bench has until ~350 s: torch.compile
# may be skipped; "bench" alone gives it its whole budget.)  Logs go to
# runs/gpu-validate, or with OUT set (the device tool) to /tmp/gpu-validate-logs,
# packed into $OUT/gpu-validate-logs.tgz after each mode (the tool brings back
# at most 8 files).  BENCH_BATCH, BENCH_BATCH_G,
# BENCH_BATCH_BIG (8, 8, 16) and PROFILE_BATCH (8) change the micro-batches,
# BENCH_RUNS (e.g. "b8 torch-eager b8-g") runs only the named bench runs,
# COMPILE_LIMIT (150) torch.compile's time limit.  jobs/gpu/test-gpu-validate.sh tests bench and
# profile here, without a GPU, against stubs.
set -uo pipefail
cd "$(dirname "$0")/.."
MODES=("$@")
[ ${#MODES[@]} -eq 0 ] || [ "${MODES[*]}" = all ] && MODES=(bench sanitize test)
START=$(date +%s)
DEADLINE=${DEADLINE:-560}
# The device tool brings back at most 8 files of $OUT: with OUT set, the logs are
# written elsewhere and packed into $OUT/gpu-validate-logs.tgz after each mode.
LOG=${OUT:+/tmp/gpu-validate-logs}
LOG=${GPU_VALIDATE_LOG:-${LOG:-runs/gpu-validate}}   # GPU_VALIDATE_LOG: the stub tests'
pack_logs() {
  [ -n "${OUT:-}" ] && tar czf "$OUT/gpu-validate-logs.tgz" -C "$LOG" . 2>/dev/null
  return 0
}
ORIG_LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}
say() { echo "== gpu-validate [$(($(date +%s) - START)) s] $*"; }

# need_for MODE: about how long MODE takes, in seconds (what the deadline
# logic reserves for it); fails for an unknown mode.
need_for() {
  case "$1" in
    test|sanitize) echo 150 ;;
    ops) echo 60 ;;
    train) echo 120 ;;
    bench) echo 200 ;;
    profile) echo 210 ;;
    *) return 1 ;;
  esac
}
for mode in "${MODES[@]}"; do
  need_for "$mode" >/dev/null || { echo "usage: $0 [test|ops|train|sanitize|bench|profile|all]..." >&2; exit 2; }
done
[ -n "${OUT:-}" ] && [ -z "${GPU_VALIDATE_LOG:-}" ] && rm -rf "$LOG"   # a warm machine keeps the last call's
mkdir -p "$LOG"

# ---- the card ----
if ! command -v nvidia-smi >/dev/null || ! nvidia-smi -L >/dev/null 2>&1; then
  say "no GPU visible (nvidia-smi); nothing to validate"; exit 1
fi
GPU_NAME=$(nvidia-smi --query-gpu=name --format=csv,noheader | head -1)
GPU_COUNT=$(nvidia-smi -L | grep -c '^GPU')
ARCH=$(nvidia-smi --query-gpu=compute_cap --format=csv,noheader 2>/dev/null | head -1 | tr -d '. ')
say "$GPU_COUNT × $GPU_NAME (compute capability $ARCH), driver $(nvidia-smi --query-gpu=driver_version --format=csv,noheader | head -1)"

# Dense bf16 tensor-core peak (TFLOP/s) by name, first match wins; the same
# table as metrics_gpu_peak_tflops in src/train/metrics.c.
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
MODE_END=$DEADLINE   # seconds after START by which the current mode must end
MODE_WHY="DEADLINE=$DEADLINE s"

# time_for WHAT SECONDS: whether WHAT, taking about SECONDS, ends before
# MODE_END (DEADLINE less what the modes after this one need, or the mode's budget).
time_for() {
  if [ $(($(date +%s) - START + $2)) -le "$MODE_END" ]; then return 0; fi
  say "skipping $1: it would not end before $MODE_END s ($MODE_WHY)"; return 1
}

# cap SECONDS [RESERVE]: SECONDS, or less when MODE_END (less RESERVE seconds
# kept for what follows) comes sooner: a command's time limit.
cap() {
  local want=$1 left=$((MODE_END - ($(date +%s) - START) - ${2:-0}))
  [ "$left" -lt "$want" ] && want=$left
  [ "$want" -lt 10 ] && want=10
  echo "$want"
}

# outcome RC LOG: ok, timed out, out of memory or failed (exit RC).
outcome() {
  if [ "$1" -eq 0 ]; then echo ok
  elif grep -qiE 'out of memory|OUT_OF_MEMORY|OutOfMemoryError|ALLOC_FAILED' "$2" 2>/dev/null; then echo "out of memory"
  elif [ "$1" -eq 124 ] || [ "$1" -eq 137 ]; then echo "timed out"
  else echo "failed (exit $1)"
  fi
}

# gpu_suite TEST: one GPU test script (validation/run.sh), its log in $LOG.
gpu_suite() {
  export OMP_NUM_THREADS=${OMP_NUM_THREADS:-8} TEST_TIMEOUT=900
  say "validation/run.sh $1"
  bash validation/run.sh "$1" 2>&1 | tee "$LOG/$1.log"
  grep -q ' 0 failed$' "$LOG/$1.log" || status=1
}

# Every op against the CPU (both attention implementations), then the
# attention micro-benchmark.
run_ops() {
  gpu_suite test_gpu_ops
  gpu_suite test_gpu_collectives
  say "attention micro-benchmark (build/tests/test_gpu_ops --bench-attention)"
  timeout -k 10 "$(cap 120)" build/tests/test_gpu_ops --bench-attention 2>&1 | tee "$LOG/attention-bench.log"
}

run_train() { gpu_suite test_gpu_train; }

run_test() {
  gpu_suite test_gpu_ops
  gpu_suite test_gpu_train
  # The CPU suite's quick, central parts, while the call has time left (CI runs
  # all of it; test_parallel is left to CI: ~6 minutes of CPU work).
  for t in test_gpu_emu test_gradcheck test_reference; do
    if ! time_for "$t" 120; then continue; fi
    say "validation/run.sh $t"
    bash validation/run.sh "$t" 2>&1 | tee "$LOG/$t.log" | tail -4
    grep -q ' 0 failed$' "$LOG/$t.log" || status=1
  done
}

# ---- bench ----
declare -A RES   # run name -> ok, skipped, timed out, out of memory, failed (exit N)

# bench_wanted NAME: whether BENCH_RUNS (space-separated run names: b8 b8-g
# b8-own b16 torch-eager torch-compile attention; default all) names it.
bench_wanted() {
  [ -z "${BENCH_RUNS:-}" ] && return 0
  case " $BENCH_RUNS " in *" $1 "*) return 0 ;; esac
  say "bench: $1 left out (BENCH_RUNS=$BENCH_RUNS)"
  return 1
}

# bench NAME ARGS...: llama-train --bench, 1b at sequence 2048 (about 30-60 s
# with the start-up); the summary line.  OOM_OK=1: out of memory is reported,
# not a failure.
bench() {
  local name=$1; shift
  rm -f "$LOG/$name.jsonl" "$LOG/$name.out"
  if ! bench_wanted "$name"; then RES[$name]=skipped; return; fi
  if ! time_for "llama-train $name" 50; then RES[$name]=skipped; return; fi
  say "llama-train --bench -c 1b -l 2048 $*"
  OMP_NUM_THREADS=$(nproc) timeout -k 10 "$(cap 240)" build/llama-train -c 1b -l 2048 --bench \
    --steps 10 --bench-warmup 3 --device cuda -x bf16 --peak-tflops "$PEAK" --log "$LOG/$name.jsonl" \
    "$@" >"$LOG/$name.out" 2>&1 </dev/null
  local rc=$?
  grep -m1 -o 'attention: [^(]*' "$LOG/$name.out"
  grep -E '^step|MFU against|bench:' "$LOG/$name.out" | tail -4
  RES[$name]=$(outcome "$rc" "$LOG/$name.out")
  case "${RES[$name]}" in
    ok) ;;
    "out of memory")
      say "llama-train $name: out of memory: $(grep -m1 -iE 'out of memory' "$LOG/$name.out" | cut -c1-160)"
      [ "${OOM_OK:-0}" = 1 ] || status=1 ;;
    *) tail -5 "$LOG/$name.out"; status=1 ;;
  esac
}

field() { grep -o "\"$2\": [^,}]*" "$LOG/$1.jsonl" 2>/dev/null | tail -1 | cut -d' ' -f2; }
tfield() { grep -o "\"$2\": [^,}]*" "$LOG/$1.out" 2>/dev/null | tail -1 | cut -d' ' -f2; }

# torch_run NAME NEED LIMIT FAIL_OK ARGS...: jobs/bench/torch_eager_gpu.py with
# the 1b shape at sequence 2048, 8 steps (3 warm-up), under LIMIT seconds.
torch_run() {
  local name=$1 need=$2 limit=$3 fail_ok=$4; shift 4
  rm -f "$LOG/$name.out"
  if ! bench_wanted "$name"; then RES[$name]=skipped; return; fi
  if ! time_for "$name" "$need"; then RES[$name]=skipped; return; fi
  limit=$(cap "$limit")
  say "$name: transformers LlamaForCausalLM, 1b, sequence 2048, bf16 autocast, SDPA $* (limit $limit s)"
  env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 timeout -k 10 "$limit" \
    python3 jobs/bench/torch_eager_gpu.py --preset 1b -l 2048 --steps 8 --warmup 3 "$@" \
    >"$LOG/$name.out" 2>&1 </dev/null
  local rc=$?
  grep -E '^torch' "$LOG/$name.out"
  RES[$name]=$(outcome "$rc" "$LOG/$name.out")
  [ "${RES[$name]}" = "timed out" ] && RES[$name]="timed out (limit $limit s)"
  if [ "${RES[$name]}" != ok ]; then
    local last
    last=$(grep -v '^\s*$' "$LOG/$name.out" | tail -1 | cut -c1-160)
    say "$name: ${RES[$name]}${last:+: $last}"
    [ "$fail_ok" = 1 ] || status=1
  fi
}

# The attention micro-benchmark of test_gpu_ops: its attention-bench lines.
attention_bench() {
  rm -f "$LOG/attention-bench.out"
  bench_wanted attention || return
  if ! grep -q -- '--bench-attention' validation/gpu/test_gpu_ops.c 2>/dev/null; then
    say "attention micro-benchmark: this tree's test_gpu_ops has no --bench-attention"; return
  fi
  if ! time_for "the attention micro-benchmark" 40; then return; fi
  say "build/tests/test_gpu_ops --bench-attention"
  OMP_NUM_THREADS=$(nproc) timeout -k 10 "$(cap 120)" build/tests/test_gpu_ops --bench-attention \
    >"$LOG/attention-bench.out" 2>&1 </dev/null
  local rc=$?
  grep '^attention-bench' "$LOG/attention-bench.out" || say "no attention-bench lines"
  [ "$rc" -eq 0 ] || { tail -5 "$LOG/attention-bench.out"; say "attention micro-benchmark: $(outcome "$rc" "$LOG/attention-bench.out")"; status=1; }
}

# table_row LABEL NAME KIND: one row of the bench table from NAME's log
# (KIND ours: the --log JSONL; torch: the script's JSON line).
table_row() {
  local label=$1 name=$2 kind=$3 tps tfl mfu mem
  if [ "${RES[$name]:-skipped}" != ok ]; then
    printf '%-30s %s\n' "$label" "${RES[$name]:-skipped}"; return
  fi
  if [ "$kind" = ours ]; then
    tps=$(field "$name" tokens_per_s); tfl=$(field "$name" tflops); mem=$(field "$name" peak_mem_gib)
    mfu=$(awk -v m="$(field "$name" mfu)" 'BEGIN{print 100 * m}')
  else
    tps=$(tfield "$name" torch_tokens_per_s); tfl=$(tfield "$name" torch_tflops)
    mem=$(tfield "$name" torch_peak_gib)
    mfu=$(awk -v t="${tfl:-0}" -v p="$PEAK" 'BEGIN{print (p > 0 ? 100 * t / p : 0)}')
  fi
  local ratio
  ratio=$(awk -v a="${tps:-0}" -v b="${EAGER_TPS:-0}" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "-" }')
  printf '%-30s %10.0f %13.1f %6.1f%% %9.1f %9s\n' "$label" "${tps:-0}" "${tfl:-0}" "${mfu:-0}" \
    "${mem:-0}" "$ratio"
}

run_bench() {
  local B=${BENCH_BATCH:-8} BG=${BENCH_BATCH_G:-8} BB=${BENCH_BATCH_BIG:-16}
  # The most telling first: each is skipped when it would pass the mode's end.
  bench "b$B" -b "$B"
  torch_run torch-eager 70 300 0 -b "$B"
  bench "b$BG-g" -b "$BG" -g
  bench "b$B-own" -b "$B" --attention own
  OOM_OK=1 bench "b$BB" -b "$BB"
  attention_bench
  torch_run torch-compile 120 "${COMPILE_LIMIT:-150}" 1 -b "$B" --compile
  EAGER_TPS=$(tfield torch-eager torch_tokens_per_s)
  [ "${RES[torch-eager]:-}" = ok ] || EAGER_TPS=0
  echo
  if [ -s "$LOG/attention-bench.out" ]; then
    echo "attention micro-benchmark (build/tests/test_gpu_ops --bench-attention):"
    grep '^attention-bench' "$LOG/attention-bench.out"
    echo
  fi
  local attn
  attn=$(grep -m1 -o 'attention: [A-Za-z]*[^(]*' "$LOG/b$B.out" 2>/dev/null | sed 's/ *$//')
  [ -n "$attn" ] && attn="; llama-train b$B $attn"
  echo "1b (TinyLlama shape), sequence 2048, bf16, on $GPU_NAME (peak $PEAK TFLOP/s dense bf16)$attn"
  printf '%-30s %10s %13s %7s %9s %9s\n' run tokens/s "model TFLOP/s" MFU "peak GiB" "vs eager"
  table_row "llama-train b$B" "b$B" ours
  table_row "llama-train b$B --attention own" "b$B-own" ours
  table_row "llama-train b$BG -g" "b$BG-g" ours
  table_row "llama-train b$BB" "b$BB" ours
  table_row "transformers eager b$B" torch-eager torch
  table_row "torch.compile b$B" torch-compile torch
}

run_sanitize() {
  say "validation/run.sh test_gpu_sanitize"
  bash validation/run.sh test_gpu_sanitize 2>&1 | tee "$LOG/test_gpu_sanitize.log"
  grep -q ' 0 failed$' "$LOG/test_gpu_sanitize.log" || status=1
}

# ---- profile ----

# Nsight Compute's CLI: on the PATH, in the CUDA toolkit, or the newest installed.
find_ncu() {
  local c
  for c in "$(command -v ncu 2>/dev/null)" "${CUDA_HOME:-/usr/local/cuda}/bin/ncu" /usr/local/cuda/bin/ncu \
           $(ls -d /opt/nvidia/nsight-compute/*/ncu /usr/local/cuda*/nsight-compute*/ncu 2>/dev/null | sort -rV); do
    if [ -n "$c" ] && [ -x "$c" ]; then echo "$c"; return 0; fi
  done
  return 1
}

# ncu_step NCU CSV BATCH HOW: llama-train's second step under Nsight Compute,
# kernel durations only, the CSV to CSV; HOW wrapped: ncu runs with the
# machine's libraries and llama-train gets the prefix's through a wrapper that
# ncu follows into the exec (--target-processes all); direct: both with the
# prefix's.  NCU_EXTRA: more ncu options.  Sets rc and n (kernel rows).
ncu_step() {
  local ncu=$1 csv=$2 B=$3 how=$4 app_ld=${LD_LIBRARY_PATH:-} ncu_ld wrap=()
  if [ "$how" = wrapped ]; then
    ncu_ld=$ORIG_LD_LIBRARY_PATH
    wrap=(bash -c 'export LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"; shift; exec "$@"'
          with-prefix "$app_ld")
  else
    ncu_ld=$app_ld
  fi
  rm -f "$csv"
  say "ncu ($how): llama-train -c 1b -l 2048 -b $B, step 2 of 2, gpu__time_duration.sum of each kernel"
  LD_LIBRARY_PATH="$ncu_ld" OMP_NUM_THREADS=$(nproc) timeout -k 10 "$(cap 240 60)" \
    "$ncu" --profile-from-start off --target-processes all --metrics gpu__time_duration.sum \
    --clock-control none --cache-control none --csv "${NCU_EXTRA[@]}" --log-file "$csv" "${wrap[@]}" \
    build/llama-train -c 1b -l 2048 -b "$B" --bench --steps 2 --bench-warmup 1 --device cuda -x bf16 \
    --profile-step 2 --peak-tflops "$PEAK" >"$LOG/profile-ncu-$how.out" 2>&1 </dev/null
  rc=$?
  n=$(grep -c '^"[0-9]' "$csv" 2>/dev/null); n=${n:-0}
  if [ "$n" -eq 0 ] && grep -q '"Kernel Name"' "$LOG/profile-ncu-$how.out"; then
    say "ncu wrote its CSV to the standard output: taken from there"
    cp "$LOG/profile-ncu-$how.out" "$csv"
    n=$(grep -c '^"[0-9]' "$csv"); n=${n:-0}
  fi
  grep -m1 -o 'attention: [^(]*' "$LOG/profile-ncu-$how.out"
  grep -h -E '==ERROR==|ERR_NVGPUCTRPERM' "$LOG/profile-ncu-$how.out" "$csv" 2>/dev/null | head -5
  say "ncu ($how): $(outcome "$rc" "$LOG/profile-ncu-$how.out"), $n kernel rows in $csv"
  [ "$rc" -eq 0 ] || tail -5 "$LOG/profile-ncu-$how.out"
}

run_profile() {
  local B=${PROFILE_BATCH:-8} ncu rc n step_ms="" tps
  local csv=$LOG/profile-ncu.csv tj=$LOG/profile-torch.json
  rm -f "$csv" "$tj" "${tj%.json}.trace.json" "$LOG"/profile-ncu-*.out "$LOG/profile-torch.out" \
        "$LOG/profile-summary.txt" "$LOG"/profile-{ours,torch}.csv "$LOG/profile-summary.json"
  if ! ncu=$(find_ncu); then
    say "no Nsight Compute (ncu) found: the PyTorch side only"; status=1
  elif time_for "ncu of llama-train" 90; then
    say "ncu: $ncu, $("$ncu" --version 2>/dev/null | tail -1)"
    # Values in nanoseconds, names with their template arguments.
    NCU_EXTRA=(--print-units base --print-kernel-base demangled)
    ncu_step "$ncu" "$csv" "$B" wrapped
    if [ "$n" -eq 0 ] && grep -qiE 'unrecogni[sz]ed|unknown option|invalid option|invalid value' \
         "$LOG/profile-ncu-wrapped.out" "$csv" 2>/dev/null &&
       time_for "ncu of llama-train without ${NCU_EXTRA[*]}" 150; then
      say "ncu refused an option: once more without ${NCU_EXTRA[*]}"
      NCU_EXTRA=()
      ncu_step "$ncu" "$csv" "$B" wrapped
    fi
    # No kernels without an error of ncu's own: once more without the wrapper.
    if [ "$n" -eq 0 ] && ! grep -qs -E '==ERROR==' "$csv" "$LOG/profile-ncu-wrapped.out" &&
       time_for "ncu of llama-train without the wrapper" 150; then
      ncu_step "$ncu" "$csv" "$B" direct
    fi
    [ "$n" -gt 0 ] && [ "$rc" -eq 0 ] || status=1
  fi
  if time_for "torch.profiler of transformers eager" 50; then
    say "torch.profiler: transformers eager b$B, one step after 2 (1 warm-up)"
    env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" PYTHONUNBUFFERED=1 timeout -k 10 "$(cap 150)" \
      python3 jobs/bench/torch_eager_gpu.py --preset 1b -b "$B" -l 2048 --steps 2 --warmup 1 \
      --profile "$tj" >"$LOG/profile-torch.out" 2>&1 </dev/null
    rc=$?
    grep -E '^(torch|profile)' "$LOG/profile-torch.out"
    if [ "$rc" -ne 0 ]; then
      say "torch.profiler: $(outcome "$rc" "$LOG/profile-torch.out")"; tail -5 "$LOG/profile-torch.out"; status=1
    fi
  fi
  # llama-train's unprofiled step time, when bench ran at this batch in this call.
  if [ "${RES[b$B]:-}" = ok ] && tps=$(field "b$B" tokens_per_s) && [ -n "$tps" ]; then
    step_ms=$(awk -v t="$tps" -v b="$B" 'BEGIN{ if (t > 0) printf "%.3f", 1000 * b * 2048 / t }')
  fi
  local args=()
  [ -s "$csv" ] && args+=(--ours "$csv")
  [ -s "$tj" ] && args+=(--torch "$tj")
  [ -n "$step_ms" ] && args+=(--ours-step-ms "$step_ms")
  if [ ! -s "$csv" ] && [ ! -s "$tj" ]; then say "profile: nothing to summarise"; status=1; return; fi
  echo
  echo "one training step of 1b, micro-batch $B, sequence 2048, bf16, on $GPU_NAME"
  env LD_LIBRARY_PATH="$ORIG_LD_LIBRARY_PATH" python3 jobs/bench/profile_summary.py "${args[@]}" \
    --top 15 --out-prefix "$LOG/profile" | tee "$LOG/profile-summary.txt"
  [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
}

# Each mode may run until DEADLINE less what the modes after it need, bench
# and profile for at most BENCH_BUDGET (360) and PROFILE_BUDGET (290) seconds.
for i in "${!MODES[@]}"; do
  mode=${MODES[$i]}
  later=0
  for m in "${MODES[@]:$((i + 1))}"; do later=$((later + $(need_for "$m"))); done
  MODE_END=$((DEADLINE - later))
  MODE_WHY="DEADLINE=$DEADLINE s"
  [ "$later" -gt 0 ] && MODE_WHY="DEADLINE=$DEADLINE s less $later s for the modes after this one"
  case "$mode" in
    bench) budget=${BENCH_BUDGET:-360} ;;
    profile) budget=${PROFILE_BUDGET:-290} ;;
    *) budget=$DEADLINE ;;
  esac
  if [ $(($(date +%s) - START + budget)) -lt "$MODE_END" ]; then
    MODE_END=$(($(date +%s) - START + budget))
    MODE_WHY="the $mode mode's budget of $budget s"
  fi
  if time_for "$mode" "$(need_for "$mode")"; then "run_$mode"; else status=1; fi
  pack_logs
done
say "done, status $status (logs in $LOG${OUT:+, packed into \$OUT/gpu-validate-logs.tgz})"
exit $status
