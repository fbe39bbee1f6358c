#!/usr/bin/env bash
# Tests jobs/gpu-validate.sh's bench and profile modes without a GPU: a copy
# of the script runs in a scratch tree whose nvidia-smi, ncu, make, prefix,
# llama-train, test_gpu_ops and torch_eager_gpu.py are stubs that print what
# the real ones print (b16 runs out of memory, torch.compile fails or is slow
# on request), and the output is checked: the tables, the deadline logic, the
# libraries ncu and llama-train see, the summary of a synthetic ncu CSV.
#     bash jobs/gpu/test-gpu-validate.sh [-v]   (~2 min: one case waits out a deadline;
#                                                QUICK=1: 15 s without it; KEEP=1 keeps the scratch tree)
set -uo pipefail
HERE=$(cd "$(dirname "$0")/../.." && pwd)
VERBOSE=${1:-}
T=$(mktemp -d)
trap '[ -n "${KEEP:-}" ] || rm -rf "$T"' EXIT
pass=0 fail=0
check() {   # check NAME COMMAND...: COMMAND's status
  if "${@:2}"; then pass=$((pass + 1)); else fail=$((fail + 1)); echo "FAIL: $1"; fi
}
has() { grep -qF -- "$2" "$1"; }
hasnt() { ! grep -qF -- "$2" "$1"; }
hasre() { grep -qE -- "$2" "$1"; }

# ---- the scratch tree ----
R=$T/repo
mkdir -p "$R/jobs/gpu" "$R/jobs/bench" "$R/.gpu/debs" "$R/build/tests" "$R/validation/gpu" "$T/bin"
cp "$HERE/jobs/gpu-validate.sh" "$R/jobs/"
cp "$HERE/jobs/bench/profile_summary.py" "$R/jobs/bench/"
printf 'programs:\n\t@echo built\n' >"$R/Makefile"
echo 'if (!strcmp(argv[i], "--bench-attention")) bench = 1;' >"$R/validation/gpu/test_gpu_ops.c"
cat >"$R/jobs/gpu/setup-prefix.sh" <<'EOF'
echo "export DEPS=/tmp/fake-deps"
echo "export PATH=/tmp/fake-deps/bin:\$PATH"
echo "export LD_LIBRARY_PATH=/tmp/fake-deps/lib\${LD_LIBRARY_PATH:+:\$LD_LIBRARY_PATH}"
EOF
cat >"$T/bin/nvidia-smi" <<'EOF'
#!/usr/bin/env bash
case "$*" in
  -L) echo "GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-0)" ;;
  *query-gpu=name*) echo "NVIDIA H100 80GB HBM3" ;;
  *compute_cap*) echo "9.0" ;;
  *driver_version*) echo "580.95.05" ;;
esac
EOF
# llama-train: the lines the real one prints; -b 16 runs out of memory.
cat >"$R/build/llama-train" <<'EOF'
#!/usr/bin/env bash
b=8 g="" log="" attn=cudnn prof=0
while [ $# -gt 0 ]; do
  case "$1" in
    -b) b=$2; shift ;; -g) g=1 ;; --log) log=$2; shift ;; --attention) attn=$2; shift ;;
    --profile-step) prof=$2; shift ;;
  esac
  shift
done
echo "LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}"
if [ "$attn" = own ]; then echo "attention: the own flash-attention kernels (tensor cores for bf16 at head dims 64 and 128)"
else echo "attention: cuDNN 9.10.2 flash attention for bf16 (fp32 and shapes cuDNN refuses: the own kernels; --attention own: the own kernels throughout)"; fi
if [ "$b" = 16 ]; then
  echo "error: CUDA out of memory on device 0 (NVIDIA H100 80GB HBM3): allocating 2.0 GiB (2147483648 bytes) with 1.1 GiB free of 79.1 GiB" >&2
  exit 1
fi
sleep "${FAKE_TRAIN_SLEEP:-0}"
tps=$((b == 8 ? 50000 : 45000)); [ "$attn" = own ] && tps=30000; [ -n "$g" ] && tps=38000
echo "step 10/10 | loss 10.2 | lr 3e-4 | grad norm 1.0 | $tps tok/s | 300 TFLOP/s/dev | MFU 30.3% | 0.33 s | peak mem 60.1 GiB"
echo "bench: 1b, 1 ranks (dp 1 tp 1 pp 1), micro-batch $b × 1, seq 2048: 24.41 samples/s, $tps tokens/s"
[ -n "$log" ] && echo "{\"bench\": true, \"samples_per_s\": 24.4, \"tokens_per_s\": $tps, \"tflops\": 365.5, \"mfu\": 0.3696, \"peak_tflops\": 989, \"peak_mem_gib\": 61.25, \"steps\": 7}" >>"$log"
exit 0
EOF
cat >"$R/build/tests/test_gpu_ops" <<'EOF'
#!/usr/bin/env bash
[ "$1" = --bench-attention ] || exit 2
echo "test_gpu_ops: attention micro-benchmark"
echo "attention-bench fwd  cudnn b8 h32/4 d64 T2048: 0.512 ms, 215 TFLOP/s"
echo "attention-bench bwd  own   b8 h32/4 d64 T2048: 2.100 ms, 131 TFLOP/s"
EOF
# the transformers baseline: eager, compile (FAKE_COMPILE=fail|sleep), --profile
cat >"$R/jobs/bench/torch_eager_gpu.py" <<'EOF'
import json, os, sys, time
args = sys.argv[1:]
compile_ = "--compile" in args
if compile_:
    how = os.environ.get("FAKE_COMPILE", "ok")
    if how == "fail":
        print("torch._dynamo.exc.BackendCompilerFailed: backend='inductor' raised: fake", file=sys.stderr)
        sys.exit(1)
    if how == "sleep":
        time.sleep(1000)
time.sleep(float(os.environ.get("FAKE_EAGER_SLEEP", "0")) if not compile_ else 0)
tps = 60000.0 if compile_ else 40000.0
mode = "torch.compile" if compile_ else "eager"
print(f"LD_LIBRARY_PATH={os.environ.get('LD_LIBRARY_PATH', '')}")
print(f"torch 2.11.0 {mode} (sdpa, bf16 autocast, fused AdamW) on NVIDIA H100 80GB HBM3, 1b b8 l2048: {tps:.0f} tokens/s, 292.0 model TFLOP/s, peak 55.0 GiB")
print(json.dumps({"torch_tokens_per_s": tps, "torch_tflops": tps * 7.3e9 / 1e12, "torch_peak_gib": 55.0,
                  "torch_compile": compile_, "first_step_s": 1.0}))
if "--profile" in args:
    path = args[args.index("--profile") + 1]
    kernels = [{"name": "nvjet_hsh_256x128_64x4_2x1_v_bz_coopB_TNT", "count": 154, "total_us": 250000.0},
               {"name": "void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits<64> >(Flash_bwd_params)", "count": 22, "total_us": 60000.0},
               {"name": "void at::native::vectorized_elementwise_kernel<4, at::native::BinaryFunctor<float, float, float, at::native::binary_internal::MulFunctor<float> >, std::array<char*, 3ul> >(int, ...)", "count": 400, "total_us": 40000.0},
               {"name": "Memset (Device)", "count": 3, "total_us": 10.0}]
    with open(path, "w") as f:
        json.dump({"source": "torch", "step_ms": 410.0, "profiled_step_ms": 430.0, "kernels": kernels}, f)
    print(f"profile: 579 kernel launches, 4 distinct -> {path}")
EOF
# ncu: known options only; runs the application, then writes a details-page CSV.
cat >"$T/bin/ncu" <<'EOF'
#!/usr/bin/env bash
[ "${1:-}" = --version ] && { echo "NVIDIA (R) Nsight Compute Command Line Profiler"; echo "Version 2025.3.1.0 (build 0) (public-release)"; exit 0; }
echo "ncu's LD_LIBRARY_PATH=${LD_LIBRARY_PATH:-}" >"$FAKE_NCU_ENV"
log=""
while [ $# -gt 0 ]; do
  case "$1" in
    --print-units|--print-kernel-base)
      if [ -n "${FAKE_NCU_STRICT:-}" ]; then echo "==ERROR== unrecognised option '$1'. Use --help for further details." >&2; exit 1; fi
      shift 2 ;;
    --profile-from-start|--target-processes|--metrics|--clock-control|--cache-control) shift 2 ;;
    --log-file) log=$2; shift 2 ;;
    --csv) shift ;;
    -*) echo "==ERROR== unrecognised option '$1'" >&2; exit 1 ;;
    *) break ;;
  esac
done
if [ -n "${FAKE_NCU_PERM:-}" ]; then
  echo "==ERROR== ERR_NVGPUCTRPERM - The user does not have permission to access NVIDIA GPU Performance Counters on the target device 0." >"$log"
  exit 1
fi
"$@"; rc=$?
if [ -n "${FAKE_NCU_NOFOLLOW:-}" ] && [ "$1" = bash ]; then   # a wrapper it did not follow
  echo "==PROF== Connected to process 4241 (/usr/bin/bash)" >"$log"
  exit $rc
fi
python3 - "$log" "${FAKE_NCU_STDOUT:-}" <<'PY'
import sys
rows = ['==PROF== Connected to process 4242 (/repo/build/llama-train)',
        '"ID","Process ID","Process Name","Host Name","Kernel Name","Context","Stream","Block Size","Grid Size","Device","CC","Section Name","Metric Name","Metric Unit","Metric Value"']
kernels = [("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x256x64_warpgroupsize2x1x1_execute_segment_k_off_kernel__5x_cublas", 1400000),
           ("cudnn_generated_fort_native_sdpa_sm90_flash_fprop_wgmma_f16_knob_7_64x128x128_4x1x1_kernel0_0", 900000),
           ("cudnn_generated_fort_native_sdpa_sm90_flash_bprop_wgmma_f16_knob_3_64x128x128_4x2x1_kernel0_0", 2400000),
           ("void rmsnorm_forward_kernel<__nv_bfloat16>(T1 *, float *, const T1 *, const float *, int, float)", 25000),
           ("void rope_kernel<__nv_bfloat16>(T1 *, int, int, int, int, float)", 18000),
           ("void swiglu_forward_kernel<__nv_bfloat16, 8>(T1 *, const T1 *, unsigned long)", 40000),
           ("void add_kernel<__nv_bfloat16, 8>(T1 *, const T1 *, const T1 *, unsigned long)", 30000),
           ("void convert_kernel<__nv_bfloat16, float>(T1 *, const T2 *, unsigned long)", 20000)]
i = 0
for layer in range(22):
    for name, ns in kernels:
        rows.append(f'"{i}","4242","llama-train","127.0.0.1","{name}","1","7","(256, 1, 1)","(4096, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","{ns:,}"')
        i += 1
rows.append(f'"{i}","4242","llama-train","127.0.0.1","void adamw_kernel<8>(float *, float *, float *, const float *, unsigned long, AdamwStep)","1","7","(256, 1, 1)","(8192, 1, 1)","0","9.0","Command line profiler metrics","gpu__time_duration.sum","nsecond","9,500,000"')
rows.append("==PROF== Disconnected from process 4242")
text = "\n".join(rows) + "\n"
if sys.argv[2]:
    sys.stdout.write(text)
else:
    open(sys.argv[1], "w").write(text)
PY
exit $rc
EOF
chmod +x "$T/bin/"* "$R/build/llama-train" "$R/build/tests/test_gpu_ops"

# run NAME ENV... -- MODES...: the copied script with the stubs first on the PATH.
run() {
  local name=$1; shift
  local envs=()
  while [ "$1" != -- ]; do envs+=("$1"); shift; done
  shift
  mkdir -p "$T/$name"
  (cd "$R" && env PATH="$T/bin:$PATH" LD_LIBRARY_PATH=/orig/lib OUT="$T/$name/out" GPU_VALIDATE_LOG="$T/$name/out" \
     FAKE_NCU_ENV="$T/$name/ncu-env" "${envs[@]}" bash jobs/gpu-validate.sh "$@") >"$T/$name/log" 2>&1
  echo $? >"$T/$name/rc"
  [ -n "$VERBOSE" ] && { echo "---- $name: $*"; cat "$T/$name/log"; }
}

# 1. bench and profile with time to spare; torch.compile fails.
run full FAKE_COMPILE=fail -- bench profile
L=$T/full/log
check "full: status 0 (b16's OOM and a failed torch.compile are reported, not failures)" \
  test "$(cat "$T/full/rc")" = 0
check "full: attention line" has "$L" "attention: cuDNN 9.10.2 flash attention"
check "full: b16 out of memory said" hasre "$L" "llama-train b16: out of memory: error: CUDA out of memory"
check "full: compile failure one line" hasre "$L" "torch-compile: failed \(exit 1\): torch._dynamo.exc.BackendCompilerFailed"
check "full: attention-bench lines" has "$L" "attention-bench fwd  cudnn"
check "full: table header" hasre "$L" "^run +tokens/s +model TFLOP/s +MFU +peak GiB +vs eager"
check "full: b8 row" hasre "$L" "^llama-train b8 +50000 +365.5 +37.0% +61.2 +1.25$"
check "full: own row" hasre "$L" "^llama-train b8 --attention own +30000 .* 0.75$"
check "full: -g row" hasre "$L" "^llama-train b8 -g +38000 .* 0.95$"
check "full: b16 row" hasre "$L" "^llama-train b16 +out of memory$"
check "full: eager row" hasre "$L" "^transformers eager b8 +40000 +292.0 +29.5% +55.0 +1.00$"
check "full: compile row" hasre "$L" "^torch.compile b8 +failed \(exit 1\)$"
check "full: ncu version" hasre "$L" "ncu: /.*/bin/ncu, Version 2025.3.1.0"
check "full: ncu ran with the machine's libraries" has "$T/full/ncu-env" "ncu's LD_LIBRARY_PATH=/orig/lib"
check "full: llama-train under ncu got the prefix" \
  has "$T/full/out/profile-ncu-wrapped.out" "LD_LIBRARY_PATH=/tmp/fake-deps/lib:/orig/lib"
check "full: python without the prefix" has "$T/full/out/torch-eager.out" "LD_LIBRARY_PATH=/orig/lib"
check "full: ncu rows counted" hasre "$L" "ncu \(wrapped\): ok, 177 kernel rows"
check "full: no second ncu run" hasnt "$L" "ncu (direct)"
check "full: ours summary" hasre "$L" "ours \(llama-train, Nsight Compute\): 177 kernel launches, 9 distinct kernels, [0-9.]+ ms of kernel time in the step; unprofiled step 327.68 ms"
check "full: torch summary" hasre "$L" "torch \(transformers eager, torch.profiler\): 579 kernel launches"
check "full: category table" hasre "$L" "^attention +72.60 +.*% +60.00 "
check "full: summary files" test -s "$T/full/out/profile-summary.json" -a -s "$T/full/out/profile-ours.csv"
check "full: logs packed for the device tool" test -s "$T/full/out/gpu-validate-logs.tgz"
check "full: the category table ends the output" \
  hasre <(grep -v '^== gpu-validate' "$L" | tail -1) "^total \(kernels\)"

# 2. profile only, ncu missing: the torch side alone, status 1.
mkdir -p "$T/bin2" && cp "$T/bin/nvidia-smi" "$T/bin2/"
(cd "$R" && env PATH="$T/bin2:$PATH" CUDA_HOME=/nonexistent OUT="$T/noncu/out" GPU_VALIDATE_LOG="$T/noncu/out" bash jobs/gpu-validate.sh profile) \
  >"$T/noncu.log" 2>&1; rc=$?
check "noncu: status 1" test $rc = 1
check "noncu: said" has "$T/noncu.log" "no Nsight Compute (ncu) found"
check "noncu: torch table" hasre "$T/noncu.log" "^category +torch ms +torch %"
[ -n "$VERBOSE" ] && cat "$T/noncu.log"

# 2b. ncu that does not follow the wrapper: once more without it.
run nofollow FAKE_NCU_NOFOLLOW=1 -- profile
check "nofollow: wrapped run had no rows" hasre "$T/nofollow/log" "ncu \(wrapped\): ok, 0 kernel rows"
check "nofollow: direct run" hasre "$T/nofollow/log" "ncu \(direct\): ok, 177 kernel rows"
check "nofollow: ncu had the prefix" has "$T/nofollow/ncu-env" "ncu's LD_LIBRARY_PATH=/tmp/fake-deps/lib:/orig/lib"
check "nofollow: summary" hasre "$T/nofollow/log" "ours \(llama-train, Nsight Compute\): 177 kernel launches"
check "nofollow: status 0" test "$(cat "$T/nofollow/rc")" = 0

# 2b'. ncu printing its CSV on the standard output: taken from there.
run stdout FAKE_NCU_STDOUT=1 -- profile
check "stdout: said" has "$T/stdout/log" "ncu wrote its CSV to the standard output"
check "stdout: rows" hasre "$T/stdout/log" "ncu \(wrapped\): ok, 177 kernel rows"
check "stdout: summary" hasre "$T/stdout/log" "ours \(llama-train, Nsight Compute\): 177 kernel launches"

# 2b''. ncu without --print-units/--print-kernel-base: once more without them.
run strict FAKE_NCU_STRICT=1 -- profile
check "strict: said" has "$T/strict/log" "ncu refused an option: once more without --print-units base --print-kernel-base demangled"
check "strict: rows" hasre "$T/strict/log" "ncu \(wrapped\): ok, 177 kernel rows"
check "strict: no direct run" hasnt "$T/strict/log" "ncu (direct)"
check "strict: status 0" test "$(cat "$T/strict/rc")" = 0

# 2c. no permission for the counters: said, no second run, the torch side alone, status 1.
run perm FAKE_NCU_PERM=1 -- profile
check "perm: error shown" hasre "$T/perm/log" "^==ERROR== ERR_NVGPUCTRPERM"
check "perm: no retry" hasnt "$T/perm/log" "ncu (direct)"
check "perm: torch table" hasre "$T/perm/log" "^category +torch ms +torch %"
check "perm: status 1" test "$(cat "$T/perm/rc")" = 1

# 3. a deadline that leaves bench no room before profile: bench skipped, profile runs.
run tight DEADLINE=330 -- bench profile
check "tight: bench skipped" hasre "$T/tight/log" "skipping bench: it would not end before 120 s \(DEADLINE=330 s less 210 s for the modes after this one\)"
check "tight: profile ran" has "$T/tight/log" "total (kernels)"
check "tight: no step time without bench" hasnt "$T/tight/log" "unprofiled step 327.68"

# 4. bench alone, slow: torch.compile skipped once the eager run has used the mode's budget
# (QUICK=1 leaves this case out: it waits 90 s).
if [ -z "${QUICK:-}" ]; then
  run slow BENCH_BUDGET=205 FAKE_EAGER_SLEEP=90 -- bench
  check "slow: compile skipped" hasre "$T/slow/log" "skipping torch-compile: it would not end before 20[0-9] s \(the bench mode's budget of 205 s\)"
  check "slow: compile row" hasre "$T/slow/log" "^torch.compile b8 +skipped$"
  check "slow: others ran" hasre "$T/slow/log" "^llama-train b8 -g +38000"
fi

# 5. a compile that hangs is stopped at its limit (never under 10 s).
run hang COMPILE_LIMIT=5 FAKE_COMPILE=sleep -- bench
check "hang: compile timed out" hasre "$T/hang/log" "^torch.compile b8 +timed out \(limit 10 s\)$"
check "hang: status 0" test "$(cat "$T/hang/rc")" = 0

echo "test-gpu-validate: $pass passed, $fail failed"
[ $fail -eq 0 ]
