#!/usr/bin/env bash
# Training on the GPU against the CPU backend, same seed and real text (byte
# shards of the bundled corpus, where the CPU runs' losses fall by far more
# than the tolerances: a frozen or uniform model cannot pass): 20 steps whose
# per-step losses must follow the CPU run's within 1% in bf16 (1e-4 in fp32)
# and gradient norms within 8% (1e-4), and the weights after the last step
# within 10% in bf16 (1e-3 in fp32; llama-ckpt compare, worst tensor): the tiny
# preset (head dim 8) and the small one (head dim 64), with activation
# recomputation; small with cuDNN's attention (the default where built in) and
# with the own kernels (--attention own), -g too.  Then the parallel layouts
# of the small preset against the same one-rank CPU run: on ONE GPU shared by
# 2 or 4 ranks with the host-staged device communication (--device-comm mpi):
# tp2, pp2, dp2 with ZeRO-1, ZeRO-2 and the overlapped all-reduce, tp2 × pp2,
# cp2 (ring attention: the block kernels); with 2 or more GPUs the same over
# NCCL, one GPU per rank (tp2 × pp2 with 4 or more).  GPU_TEST_STEPS shortens every run (compute-sanitizer:
# test_gpu_sanitize.sh).  Prints one SKIP where no GPU is visible.
source "$(dirname "$0")/../lib.sh"
source "$(dirname "$0")/gpu_lib.sh"
GPUS=$(gpu_count)
if [ "$GPUS" -eq 0 ]; then
  skip "gpu training (20 steps against the CPU, tp2/pp2/dp2)" "no GPU visible"
  finish
fi
scratch
make_byte_shards "$TMP/data"
STEPS=${GPU_TEST_STEPS:-20}
COMMON=(--steps "$STEPS" --lr 1e-3 --warmup-steps 2 --seed 3 --peak-tflops 1 -d "$TMP/data")
TINY=(-c tiny -b 8 -l 128)
SMALL=(-c small -b 4 -l 256)
BF16_TOL=1e-2 BF16_NORM_TOL=8e-2 BF16_WEIGHT_TOL=1e-1

# run NAME RANKS ARGS...: logs to $TMP/NAME.jsonl
run() {
  local name=$1 np=$2; shift 2
  timeout 900 "${MPIRUN[@]}" -np "$np" "$BIN/llama-train" "${COMMON[@]}" --log "$TMP/$name.jsonl" \
    "$@" >"$TMP/$name.out" 2>&1
}

# check NAME REF TOL NORM_TOL LABEL RANKS ARGS...: runs NAME, compares its
# losses and gradient norms with REF's
check() {
  local name=$1 ref=$2 tol=$3 norm_tol=$4 label=$5 np=$6 why; shift 6
  if ! run "$name" "$np" "$@"; then
    fail "$label" "run failed: $(grep -m2 -E 'error|Error' "$TMP/$name.out" || tail -3 "$TMP/$name.out")"
    return 1
  fi
  if why=$(run_close "$TMP/$name.jsonl" "$TMP/$ref.jsonl" "$tol" "$norm_tol"); then pass "$label: $why"
  else fail "$label" "$why"; return 1; fi
}

# weights NAME REF TOL LABEL: the weights both saved after the last step (-i STEPS -o $TMP/ck-NAME)
weights() { weights_close "$STEPS" "$@"; }
save() { echo -i "$STEPS" -o "$TMP/ck-$1"; }

for r in "cpu-tiny ${TINY[*]}" "cpu-small ${SMALL[*]}"; do
  set -- $r
  name=$1; shift
  run "$name" 1 --device cpu "$@" $(save "$name") || { fail "CPU reference $name" "$(tail -3 "$TMP/$name.out")"; finish; }
  drop=$(loss_drop "$TMP/$name.jsonl")
  if [ "$STEPS" -lt 20 ]; then
    skip "the CPU reference $name learns on text" "$STEPS steps (GPU_TEST_STEPS) are too few to tell"
  elif awk -v d="$drop" 'BEGIN {exit !(d > 0.5)}'; then
    pass "the CPU reference $name learns on text: loss falls by $drop nats in $STEPS steps"
  else fail "the CPU reference $name learns on text" "loss fell by $drop nats only: the comparisons prove little"; fi
done

check gpu-tiny cpu-tiny $BF16_TOL $BF16_NORM_TOL "tiny bf16 on the GPU, $STEPS steps: losses within 1% of the CPU's, gradient norms 8%" \
  1 "${TINY[@]}" --device cuda -x bf16 $(save gpu-tiny) \
  && weights gpu-tiny cpu-tiny $BF16_WEIGHT_TOL "tiny bf16 on the GPU: the weights after the last step within 10% of the CPU's"
mem=$(grep -o '"peak_mem_gib": [^,}]*' "$TMP/gpu-tiny.jsonl" | tail -1 | cut -d' ' -f2)
if awk -v m="${mem:-0}" 'BEGIN {exit !(m > 0 && m < 4)}'; then pass "peak GPU memory in the metrics ($mem GiB)"
else fail "peak GPU memory in the metrics" "peak_mem_gib '$mem'"; fi
check gpu-small cpu-small $BF16_TOL $BF16_NORM_TOL "small bf16 on the GPU (default attention), $STEPS steps: within 1%, norms 8%" \
  1 "${SMALL[@]}" --device cuda -x bf16 $(save gpu-small) \
  && weights gpu-small cpu-small $BF16_WEIGHT_TOL "small bf16 on the GPU: the weights after the last step within 10% of the CPU's"
check gpu-small-g cpu-small $BF16_TOL $BF16_NORM_TOL "small bf16 with activation recomputation (-g): within 1%, norms 8%" \
  1 "${SMALL[@]}" --device cuda -x bf16 -g
check gpu-small-own cpu-small $BF16_TOL $BF16_NORM_TOL "small bf16, --attention own (tensor-core kernels): within 1%, norms 8%" \
  1 "${SMALL[@]}" --device cuda -x bf16 --attention own
check gpu-small-own-g cpu-small $BF16_TOL $BF16_NORM_TOL "small bf16, --attention own with -g: within 1%, norms 8%" \
  1 "${SMALL[@]}" --device cuda -x bf16 --attention own -g
# The device memory the run allocated (the model's buffers, cuBLASLt's
# workspace, the own attention's fp32 dQ scratch) against --describe's; with
# cuDNN its workspace is not predicted (10%).
for c in "gpu-small-own 2" "gpu-small-own-g 2" "gpu-small 10"; do
  set -- $c
  if worst=$(buffer_peaks_within "$TMP/$1.out" 1 "$2"); then
    pass "$1: the device memory allocated within $2% of the prediction ($worst%)"
  else fail "$1: device memory against the prediction" "$(grep "buffers' peak" "$TMP/$1.out")"; fi
done
check gpu-tiny-fp32 cpu-tiny 1e-4 1e-4 "tiny fp32 on the GPU: within 1e-4, norms 1e-4" 1 "${TINY[@]}" --device cuda -x fp32 \
  $(save gpu-tiny-fp32) \
  && weights gpu-tiny-fp32 cpu-tiny 1e-3 "tiny fp32 on the GPU: the weights after the last step within 1e-3 of the CPU's"
check gpu-small-fp32 cpu-small 1e-4 1e-4 "small fp32 on the GPU: within 1e-4, norms 1e-4" 1 "${SMALL[@]}" --device cuda -x fp32

# The parallel layouts of the small preset (global batch 4, as the CPU run).
TP2=(-c small -b 4 -l 256 --tp 2)
PP2=(-c small -b 1 --grad-accum 4 -l 256 --pp 2)
DP2=(-c small -b 2 -l 256)
TP2PP2=(-c small -b 1 --grad-accum 4 -l 256 --tp 2 --pp 2)
CP2=(-c small -b 4 -l 256 --cp 2)
# layout COMM WHERE NAME LABEL RANKS ARGS...: checks gpu-COMM-NAME against one CPU rank.
layout() {
  local comm=$1 where=$2 name=$3 label=$4 np=$5; shift 5
  check "gpu-$comm-$name" cpu-small $BF16_TOL $BF16_NORM_TOL \
    "small bf16, $label, $where ($comm): within 1% of one CPU rank, norms 8%" \
    "$np" "$@" --device cuda -x bf16 --device-comm "$comm"
}

# All ranks on the first visible GPU: the host-staged MPI communication.
ONE_GPU=${CUDA_VISIBLE_DEVICES:-0}
ONE_GPU=${ONE_GPU%%,*}
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" tp2 "tp2" 2 "${TP2[@]}"
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" tp2-sp "tp2, sequence parallel" 2 "${TP2[@]}" --sp
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" pp2 "pp2 × 4 micro-batches" 2 "${PP2[@]}"
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" pp2-vpp3 "pp2 × 4 micro-batches, 3 chunks each" \
  2 "${PP2[@]}" --vpp 3
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-zero1 "dp2 ZeRO-1" 2 "${DP2[@]}" --zero 1
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-zero2 "dp2 ZeRO-2" 2 "${DP2[@]}" --zero 2
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-zero3 "dp2 ZeRO-3" 2 "${DP2[@]}" --zero 3
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-zero3-offload \
  "dp2 ZeRO-3, optimizer offloaded" 2 "${DP2[@]}" --zero 3 --offload optimizer
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-zero1-offload \
  "dp2 ZeRO-1, optimizer offloaded" 2 "${DP2[@]}" --zero 1 --offload optimizer
# ZeRO's device memory: each rank's high-water mark of its CUDA allocations
# within 10% of --describe's prediction (the end-of-run report).
for name in gpu-mpi-dp2-zero2 gpu-mpi-dp2-zero3 gpu-mpi-dp2-zero3-offload; do
  if worst=$(buffer_peaks_within "$TMP/$name.out" 2 10); then
    pass "$name: each rank's device memory within 10% of the prediction (worst $worst%)"
  else fail "$name: memory against the prediction" "$(grep "buffers' peak" "$TMP/$name.out" | head -2)"; fi
done
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" dp2-overlap \
  "dp2 ZeRO-0, all-reduce overlapped with backward" 2 "${DP2[@]}"
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "4 ranks on one GPU" tp2-pp2 "tp2 × pp2 × 4 micro-batches" \
  4 "${TP2PP2[@]}"
CUDA_VISIBLE_DEVICES=$ONE_GPU layout mpi "2 ranks on one GPU" cp2 "cp2, ring attention" 2 "${CP2[@]}"

if [ "$GPUS" -ge 2 ]; then
  layout nccl "2 GPUs" tp2 "tp2" 2 "${TP2[@]}"
  layout nccl "2 GPUs" tp2-sp "tp2, sequence parallel" 2 "${TP2[@]}" --sp
  layout nccl "2 GPUs" pp2 "pp2 × 4 micro-batches" 2 "${PP2[@]}"
  layout nccl "2 GPUs" pp2-vpp2 "pp2 × 4 micro-batches, 2 chunks each" 2 "${PP2[@]}" --vpp 2
  layout nccl "2 GPUs" dp2-zero1 "dp2 ZeRO-1" 2 "${DP2[@]}" --zero 1
  layout nccl "2 GPUs" dp2-zero2 "dp2 ZeRO-2" 2 "${DP2[@]}" --zero 2
  layout nccl "2 GPUs" dp2-zero3 "dp2 ZeRO-3" 2 "${DP2[@]}" --zero 3
  layout nccl "2 GPUs" dp2-zero3-offload "dp2 ZeRO-3, optimizer offloaded" 2 "${DP2[@]}" --zero 3 --offload optimizer
  layout nccl "2 GPUs" dp2-overlap "dp2 ZeRO-0, all-reduce overlapped with backward" 2 "${DP2[@]}"
  layout nccl "2 GPUs" cp2 "cp2, ring attention" 2 "${CP2[@]}"
else
  skip "tp2, pp2, dp2, cp2 over NCCL" "2 GPUs needed, $GPUS visible (the same layouts ran on one GPU over MPI)"
fi
if [ "$GPUS" -ge 4 ]; then
  layout nccl "4 GPUs" tp2-pp2 "tp2 × pp2 × 4 micro-batches" 4 "${TP2PP2[@]}"
else
  skip "tp2 × pp2 over NCCL" "4 GPUs needed, $GPUS visible (it ran on one GPU over MPI)"
fi

finish
