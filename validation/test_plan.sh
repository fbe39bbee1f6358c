#!/usr/bin/env bash
# llama-plan: its memory column is llama-train --describe's prediction (both
# run, several layouts); its ranking follows its own predicted tokens/s, which
# agree with the step time, FLOPs per token (from --describe) and the peak;
# a machine with slow links moves the best layout off tensor parallelism and a
# small memory onto ZeRO-3; impossible requests end with a clear message; the
# output is the same every run; jobs/calibrate.sh writes a profile it reads;
# --describe's communication per rank is what ring collectives send, its
# pipeline bubble Megatron's; machine profiles' refusals, spellings and
# defaults; links of a full node, --max-micro-batch, host memory per node,
# one layer a stage.
# About fifteen seconds.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ROOT"
# A profile with fixed numbers (the shipped cpu-local.machine is measured).
profile() {   # FILE MEMORY_GIB INTRA_GBS
  cat >"$1" <<EOT
name = test machine
device = cpu
precision = fp32
devices_per_node = 8
device_memory_gib = $2
usable_memory = 0.9
peak_tflops = 1
matmul_tflops = 0.5
matmul_small_tflops = 0.25
matmul_small_dim = 256
attention_fwd_tflops = 0.2
attention_bwd_tflops = 0.2
elementwise_gbs = 10
optimizer_gbs = 10
host_link_gbs = 10
op_overhead_us = 1
intra_node_gbs = $3
intra_node_p2p_gbs = $3
intra_node_latency_us = 1
inter_node_gbs = 1
inter_node_latency_us = 10
EOT
}
profile "$TMP/m.machine" 64 10
PLAN=("$BIN/llama-plan" --machine "$TMP/m.machine")

# 1. memory per rank = --describe's largest stage total, for layouts of several kinds
ok=1
while IFS='|' read -r model seq world opts; do
  [ -z "$model" ] && continue
  # shellcheck disable=SC2086
  desc=$("$BIN/llama-train" -c "$model" -l "$seq" --world-size "$world" $opts --describe 2>&1) || {
    ok=0; fail "plan memory = describe" "--describe $model $opts: $desc"; continue; }
  want=$(grep -o "memory per rank, stage [0-9]*:.*total [0-9.]* [KMGT]*i*B" <<<"$desc" | sed 's/.*total //' |
         awk '{m = $2 == "KiB" ? 1 : $2 == "MiB" ? 2 : $2 == "GiB" ? 3 : $2 == "TiB" ? 4 : 0;
               v = $1 * 1024 ^ m; if (v > best) { best = v; s = $0 } } END { print s }')
  read -r dp B M <<<"$(sed -n 's/^layout: .*dp \([0-9]*\) ×.*micro-batch \([0-9]*\), grad-accum \([0-9]*\),.*/\1 \2 \3/p' <<<"$desc")"
  # shellcheck disable=SC2086
  got=$("${PLAN[@]}" -c "$model" -l "$seq" --devices "$world" --global-batch-tokens $((dp * B * M * seq)) \
        --exact --all $opts | awk 'NR == 3' | grep -o "[0-9.]* [KMGT]*i*B" | head -1)
  if [ -z "$want" ] || [ "$got" != "$want" ]; then
    ok=0; fail "plan memory = describe" "$model $opts: llama-plan '$got', --describe '$want'"; fi
done <<'EOL'
small|256|4|--tp 2 -b 4 --grad-accum 2 --zero 1
small|256|8|--tp 2 --pp 2 -b 2 --grad-accum 4 --zero 3 --recompute selective
small|256|8|--tp 2 --sp --pp 2 --vpp 3 -b 1 --grad-accum 4 -g
small|256|4|--pp 2 -b 3 --grad-accum 2 --zero 2
tiny|64|2|-b 8 --zero 0
small|256|8|--cp 2 --tp 2 --sp -b 2 --grad-accum 2 --zero 1
7b|2048|16|--tp 4 --pp 2 -b 1 --grad-accum 16 --zero 1 -g
EOL
[ $ok = 1 ] && pass "llama-plan's memory per rank equals llama-train --describe's for 7 layouts (tiny, small, 7b; tp, sp, cp, pp, vpp, ZeRO 0-3, recompute)"

# 2. ranking and the figures behind it
"${PLAN[@]}" -c small -l 256 --devices 8 --global-batch-tokens 65536 --tsv --top 0 >"$TMP/rank.tsv" 2>&1
fpt=$("$BIN/llama-train" -c small -l 256 --describe 2>&1 | sed -n 's/^model FLOPs per token at sequence 256: \([0-9.e+]*\) .*/\1/p')
if awk -F'\t' -v fpt="$fpt" 'NR == 1 { next }
     { n++; tps = 65536 / $14; tfl = $25 * fpt / 8 / 1e12
       if ($12 != 1 || (n > 1 && $25 > prev + 1e-9 * prev)) bad = "row " n " out of order"
       if (($25 - tps) ^ 2 > (1e-4 * tps) ^ 2 || ($26 - tfl) ^ 2 > (1e-4 * tfl) ^ 2 || ($27 - $26) ^ 2 > 1e-8)
         bad = "row " n ": tokens/s " $25 " vs 65536/" $14 ", TFLOP/s " $26 " vs " tfl
       sum = 0; for (i = 15; i <= 24; i++) sum += $i
       if ((sum - $14) ^ 2 > (1e-4 * $14) ^ 2) bad = "row " n ": the parts sum to " sum ", step " $14
       prev = $25 }
     END { if (n < 20) bad = "only " n " layouts"; if (bad) { print bad; exit 1 } }' "$TMP/rank.tsv" >"$TMP/rank.why"
then pass "llama-plan ranks by predicted tokens/s = global batch / step time; TFLOP/s from --describe's FLOPs per token; the parts sum to the step"
else fail "plan ranking" "$(cat "$TMP/rank.why") $(head -2 "$TMP/rank.tsv")"; fi
# Colossal-AI's convention: 8 · all parameters per token (--describe's total, printed to 3 digits).
total=$("$BIN/llama-train" -c small -l 256 --describe 2>&1 | sed -n 's/^parameters: \([0-9.]*\) M total.*/\1e6/p')
if awk -F'\t' -v p="$total" -v fpt="$fpt" 'NR > 1 { r = $28 / $26; w = 8 * p / fpt; if ((r - w) ^ 2 > (0.005 * w) ^ 2) bad = NR ": " r " vs " w }
     END { if (bad || NR < 2) { print "row " bad; exit 1 } }' "$TMP/rank.tsv" >"$TMP/8n.why"
then pass "llama-plan's 8N TFLOP/s are the model TFLOP/s × 8 · parameters / --describe's FLOPs per token"
else fail "plan 8N convention" "$(cat "$TMP/8n.why")"; fi

# 3. the machine decides: slow links push tensor parallelism out, little memory brings ZeRO-3
profile "$TMP/slow.machine" 64 0.001
best_fast=$("${PLAN[@]}" -c small -l 256 --devices 8 --global-batch-tokens 65536 --tsv --tp 2 --top 1 | awk -F'\t' 'NR == 2 { print $25 }')
best_slow=$("$BIN/llama-plan" --machine "$TMP/slow.machine" -c small -l 256 --devices 8 --global-batch-tokens 65536 --tsv --top 1 | awk -F'\t' 'NR == 2 { print $2 }')
slow_tp2=$("$BIN/llama-plan" --machine "$TMP/slow.machine" -c small -l 256 --devices 8 --global-batch-tokens 65536 --tsv --tp 2 --top 1 | awk -F'\t' 'NR == 2 { print $25 }')
if [ "$best_slow" = "1" ] && awk -v a="$best_fast" -v b="$slow_tp2" 'BEGIN { exit !(b < a / 10) }'; then
  pass "with 10,000× slower links the best layout has no tensor parallelism, and the best with tp 2 is over 10× slower ($best_fast → $slow_tp2 tokens/s)"
else fail "plan slow links" "best tp '$best_slow' (want 1), tp 2 $best_fast → $slow_tp2 tokens/s"; fi
# `nodes = 2` for 16 devices of 8 per node is what the profile says without it: a
# data-parallel group of 16 crosses the (slow) network, not the node's links.
profile "$TMP/net.machine" 64 10
sed -i 's/^inter_node_gbs = .*/inter_node_gbs = 0.00001/' "$TMP/net.machine"
cp "$TMP/net.machine" "$TMP/net2.machine" && echo "nodes = 2" >>"$TMP/net2.machine"
dp16() { "$BIN/llama-plan" --machine "$1" -c small -l 256 --devices 16 --global-batch-tokens 65536 --tsv --top 1 \
           --tp 1 --pp 1 --cp 1 --zero 0 --recompute none -b 1 | awk -F'\t' 'NR == 2 { print $25 }'; }
plain=$(dp16 "$TMP/net.machine") two=$(dp16 "$TMP/net2.machine") fast=$(dp16 "$TMP/m.machine")
if [ -n "$plain" ] && [ "$plain" = "$two" ] && awk -v a="$plain" -v b="$fast" 'BEGIN { exit !(a < b / 10) }'; then
  pass "nodes = 2 (16 devices, 8 per node): dp 16 crosses the network as without the key"
else fail "nodes = 2" "dp 16 at $two tokens/s with nodes = 2, $plain without, $fast on fast links"; fi
full=$("${PLAN[@]}" -c 7b -l 2048 --devices 8 --global-batch-tokens 16384 --tsv --all --tp 1 --cp 1 --pp 1 | awk -F'\t' '$12 == 1')
need=$("${PLAN[@]}" -c 7b -l 2048 --devices 8 --global-batch-tokens 16384 --tsv --all --tp 1 --cp 1 --pp 1 --zero 3 --recompute full -b 1 | awk -F'\t' 'NR == 2 { printf "%.3f", $13 / 0.9 / 1073741824 + 0.001 }')
profile "$TMP/small.machine" "$need" 10
only=$("$BIN/llama-plan" --machine "$TMP/small.machine" -c 7b -l 2048 --devices 8 --global-batch-tokens 16384 --tsv --top 0 --tp 1 --cp 1 --pp 1 | tail -n +2 | cut -f2-11 | sort -u)
if [ -n "$full" ] && [ "$only" = "$(printf '1\t1\t1\t8\t1\t3\tfull\t0\t1\t1')" ]; then
  pass "dp 8 of 7B: with memory for ZeRO-3, full recompute and micro-batch 1 only ($need GiB), that is the one layout planned (of $(wc -l <<<"$full") on 64 GiB)"
else fail "plan small memory" "$need GiB: layouts '$only'"; fi

# 4. impossible requests
profile "$TMP/tiny.machine" 0.001 10
expect_error "no layout fits: a clear message" "no layout of model 65b fits 32 devices of test machine: the smallest \(.*\) needs .* per rank" \
  "$BIN/llama-plan" --machine "$TMP/tiny.machine" -c 65b -l 2048 --devices 32 --global-batch-tokens 4194304
expect_error "--exact --tp that does not divide the devices: named" "no layout of 8 devices: --tp 3 does not divide the 8 devices left for it" \
  "$BIN/llama-plan" -c 7b --devices 8 --machine inputs/machines/h200.machine -l 2048 --global-batch-tokens 4194304 --exact --tp 3
expect_usage_error "--zero 4: the stages are 0 to 3" "--zero: expected an integer in \[0, 3\], got '4'" \
  "$BIN/llama-plan" -c 7b --devices 8 --machine inputs/machines/h200.machine -l 2048 --global-batch-tokens 4194304 --zero 4
P7=("$BIN/llama-plan" -c 7b --devices 8 --machine inputs/machines/h200.machine -l 2048 --global-batch-tokens 4194304)
expect_usage_error "--cp -2: refused, not read as 'any'" "--cp: expected an integer >= 1, got '-2'" "${P7[@]}" --cp -2
expect_usage_error "--grad-accum 0: refused" "--grad-accum: expected an integer >= 1, got '0'" "${P7[@]}" --grad-accum 0
expect_usage_error "-g with --recompute selective: refused as llama-train does" \
  "--grad-checkpoint \(-g\) is --recompute full and contradicts --recompute selective" "${P7[@]}" -g --recompute selective
expect_error "a device count no layout divides: a clear message" "no layout of model tiny on 7 devices can be planned with these options" \
  "${PLAN[@]}" -c tiny -l 128 --devices 7 --global-batch-tokens 1024
expect_usage_error "--devices beyond what the search counts in int" "--devices N: the number of ranks, 1 to 1048576 \(got 2147483647\)" \
  "${PLAN[@]}" -c tiny -l 128 --devices 2147483647 --global-batch-tokens 1024
# A table that could not be written (a full disk): an error, not exit 0.
expect_error "llama-plan > /dev/full: the failed write is an error" "llama-plan: error: writing the output failed" \
  bash -c '"$0" "$@" >/dev/full' "$BIN/llama-plan" --machine inputs/machines/cpu-local.machine -c tiny -l 128 --devices 2 --global-batch-tokens 1024
expect_error "llama-train --describe > /dev/full: the failed write is an error" "llama-train: error: writing the output failed" \
  bash -c '"$0" "$@" >/dev/full' "$BIN/llama-train" -c tiny --describe
expect_error "a global batch of more sequences than a step takes (int)" \
  "--global-batch-tokens 9223372036854775552 is 36028797018963967 sequences of 256 tokens, more than the 2147483647 a step can take" \
  "${PLAN[@]}" -c tiny -l 256 --devices 4 --global-batch-tokens 9223372036854775552
# A model too large to plan: the allocation fails in several of the search's
# threads at once; one message, exit 1 (two exits at once crashed).
printf 'dim = 64\nn_layers = 100000000\nn_heads = 8\nn_kv_heads = 4\nffn_dim = 192\nvocab_size = 256\nmax_seq_len = 256\nrope_theta = 10000\nnorm_eps = 1e-5\n' >"$TMP/deep.model"
deep_ok=1
for i in 1 2 3; do
  out=$(OMP_NUM_THREADS=2 timeout 60 "$BIN/llama-plan" -c "$TMP/deep.model" --devices 8 --machine inputs/machines/a100-80gb.machine \
        --global-batch-tokens 4096 -l 64 --top 1 2>&1); rc=$?
  [ $rc -eq 1 ] && [ "$(grep -c 'out of memory allocating' <<<"$out")" = 1 ] || { deep_ok=0; break; }
done
if [ $deep_ok = 1 ]; then pass "a model too large to plan: one out-of-memory message, exit 1 (three runs, two threads)"
else fail "a model too large to plan" "exit $rc: $out"; fi
expect_error "a global batch of no whole sequences" "not a whole number of sequences of --max-length 128" \
  "${PLAN[@]}" -c tiny -l 128 --devices 2 --global-batch-tokens 1000
sed 's/^matmul_tflops/matmul_tflop/' "$TMP/m.machine" >"$TMP/typo.machine"
expect_error "a machine profile's unknown key names file and line" "typo.machine:8: unknown key 'matmul_tflop'" \
  "$BIN/llama-plan" --machine "$TMP/typo.machine" -c tiny -l 128 --devices 2 --global-batch-tokens 1024
read_ok=1
for f in inputs/machines/*.machine; do
  "$BIN/llama-plan" --machine "$f" -c tiny -l 128 --devices 2 --global-batch-tokens 1024 >/dev/null 2>"$TMP/read.err" ||
    { read_ok=0; fail "shipped profile $f" "$(cat "$TMP/read.err")"; }
done
[ $read_ok = 1 ] && pass "every shipped machine profile reads ($(ls inputs/machines/*.machine | wc -l) files)"

# 5. --offload optimizer on a GPU profile (bf16, 80 GiB, host memory and AdamW rate given):
# its device and host memory are --describe's; 7B fits one 80 GiB device only offloaded,
# and not at all when the node's host memory cannot hold the optimizer.
gpu_profile() {   # FILE HOST_GIB
  profile "$1" 80 10
  sed -i -e 's/^device = cpu/device = cuda/' -e 's/^precision = fp32/precision = bf16/' "$1"
  printf 'host_memory_gib = %s\nhost_optimizer_gbs = 10\n' "$2" >>"$1"
}
gpu_profile "$TMP/gpu.machine" 2000
GPLAN=("$BIN/llama-plan" --machine "$TMP/gpu.machine" -c 7b -l 2048 --devices 1)
desc=$("$BIN/llama-train" -c 7b -l 2048 --world-size 1 --device cuda --offload optimizer -b 1 --grad-accum 4 --describe 2>&1)
want_dev=$(grep -o "total [0-9.]* [KMGT]*i*B" <<<"$desc" | head -1 | sed 's/total //')
want_host=$(grep -o "host (offload) [0-9.]* [KMGT]*i*B" <<<"$desc" | head -1 | sed 's/host (offload) //')
got_dev=$("${GPLAN[@]}" --global-batch-tokens 8192 --exact --offload optimizer -b 1 --grad-accum 4 --all |
          awk 'NR == 3' | grep -o "[0-9.]* [KMGT]*i*B" | head -1)
got_host=$("${GPLAN[@]}" --global-batch-tokens 8192 --exact --offload optimizer -b 1 --grad-accum 4 --all --tsv |
           awk -F'\t' 'NR == 2 { printf "%.2f GiB", $30 / 1073741824 }')
if [ -n "$want_dev" ] && [ "$got_dev" = "$want_dev" ] && [ "$got_host" = "$want_host" ]; then
  pass "offloaded 7B on one GPU: llama-plan's device ($got_dev) and host memory ($got_host) are --describe's"
else fail "plan offload memory = describe" "device '$got_dev' vs '$want_dev', host '$got_host' vs '$want_host'"; fi
best=$("${GPLAN[@]}" --global-batch-tokens 65536 --tsv --top 1 | awk -F'\t' 'NR == 2 { print $29 }')
if [ "$best" = 1 ]; then pass "7B on one 80 GiB GPU: the best planned layout offloads the optimizer"
else fail "plan offload chosen" "best layout's offload column '$best', want 1"; fi
expect_error "7B on one 80 GiB GPU without offload: nothing fits" "no layout of model 7b fits 1 devices of test machine: the smallest .* needs .* per rank" \
  "${GPLAN[@]}" --global-batch-tokens 65536 --offload none
gpu_profile "$TMP/gpu-little-host.machine" 50
expect_error "offload with too little host memory: nothing fits" "the offloaded optimizer needs 100.41 GiB of host memory per node, 45.00 GiB usable of 50.00 GiB" \
  "$BIN/llama-plan" --machine "$TMP/gpu-little-host.machine" -c 7b -l 2048 --devices 1 --global-batch-tokens 65536 --offload optimizer

# Context parallelism on a GPU profile: planned where its ring blocks take the
# tensor-core kernels (7B: bf16, head dim 128), refused with the reason at
# head dim 80 (the SIMT kernels).
cp2=$("$BIN/llama-plan" --machine "$TMP/gpu.machine" -c 7b -l 2048 --devices 8 --global-batch-tokens 131072 --tsv --top 0 --cp 2 |
      awk -F'\t' 'NR > 1 && $3 == 2' | wc -l)
printf 'dim = 640\nn_layers = 2\nn_heads = 8\nn_kv_heads = 8\nffn_dim = 1024\nvocab_size = 256\nmax_seq_len = 4096\nrope_theta = 10000\nnorm_eps = 1e-5\n' >"$TMP/hd80.model"
hd80=$("$BIN/llama-plan" --machine "$TMP/gpu.machine" -c "$TMP/hd80.model" -l 4096 --devices 2 --global-batch-tokens 8192 --cp 2 --all 2>&1)
if [ "$cp2" -gt 0 ] && grep -q "tensor-core kernels in bf16 at head dims 64 and 128 only" <<<"$hd80" &&
   ! grep -qE '^ *[0-9]+  tp ' <<<"$hd80"; then   # no ranked (planned) row
  pass "a GPU profile plans --cp where ring attention runs on tensor cores ($cp2 cp 2 layouts of 7B on 8) and refuses it at head dim 80 with the reason"
else fail "plan cp on GPUs" "$cp2 cp2 layouts of 7B; head dim 80: $(head -5 <<<"$hd80")"; fi

# 7. --describe's communication per rank per step against the byte counts of
# ring collectives (on n ranks an all-reduce sends 2(n-1)/n of its buffer, a
# reduce-scatter or all-gather (n-1)/n), for a model file of tiny's shape:
# P = 256·64 (embedding) + 4 · (2·64·64 + 2·64·32 + 3·64·192 + 2·64) + 64 +
# 256·64 (LM head) = 229952 fp32 parameters, -l 64.  Data parallel: ZeRO-0
# all-reduces the gradients (4P bytes on 2 ranks); ZeRO-3 reduce-scatters them
# each micro-batch and all-gathers the weights for each micro-batch's forward
# and backward pass (3 × 4P on 2 ranks and 2 micro-batches: 12P).  Tensor
# parallel (Megatron): per micro-batch two all-reduces of the (B·T, dim)
# activations per layer forward and two backward, one for the vocab-parallel
# embedding, one for the head's input gradient, and the cross-entropy's 3
# floats per row.  Pipeline: each micro-batch's activation forward from the
# first stage, its gradient back from the last (interleaved: each of the
# stage's chunks, but the model's first and last).  Context parallel: each
# layer's ring passes the rank's keys and values (B·T/cp rows, 2 × 4 KV heads
# × head dim 8) on cp-1 times forward and again backward, and their gradients
# cp times.  The pipeline's bubble: (pp-1)/(vpp·M + pp-1) (Megatron's interleaved 1F1B).
printf 'dim = 64\nn_layers = 4\nn_heads = 8\nn_kv_heads = 4\nffn_dim = 192\nvocab_size = 256\nmax_seq_len = 256\nrope_theta = 10000\nnorm_eps = 1e-5\n' >"$TMP/comm.model"
P=229952 ACT=$((2 * 64 * 64 * 4))   # parameters; one micro-batch's (B·T, dim) fp32 activations at -b 2
comm_ok=1
# comm_check NAME STAGE KIND WANT_BYTES --describe's options...
comm_check() {
  local name=$1 stage=$2 kind=$3 want=$4 out got; shift 4
  out=$("$BIN/llama-train" -c "$TMP/comm.model" -l 64 "$@" --describe 2>&1) || {
    comm_ok=0; fail "communication: $name" "--describe $*: $(tail -n 2 <<<"$out")"; return; }
  got=$(grep "^communication, stage $stage:" <<<"$out" | grep -o "$kind [0-9.]* [KMG]*i*B" |
        awk '{ u = $3; print $2 * (u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : 1) }')
  if [ -z "$got" ] || ! awk -v a="$got" -v b="$want" 'BEGIN { exit !((a - b) ^ 2 <= (0.01 * b) ^ 2) }'; then
    comm_ok=0; fail "communication: $name" "$kind of stage $stage '$got' bytes, want $want: $(grep '^communication' <<<"$out")"
  fi
}
comm_check "dp2, ZeRO-0" 0 data-parallel $((4 * P)) --world-size 2 -b 2
comm_check "dp2, ZeRO-3, 2 micro-batches" 0 data-parallel $((12 * P)) --world-size 2 -b 2 --grad-accum 2 --zero 3
comm_check "tp2, 2 micro-batches" 0 tensor-parallel $((2 * (18 * ACT + 3 * 128 * 4))) --world-size 2 --tp 2 -b 2 --grad-accum 2
comm_check "pp2, first stage" 0 pipeline $((4 * ACT)) --world-size 2 --pp 2 -b 2 --grad-accum 4
comm_check "pp2, last stage" 1 pipeline $((4 * ACT)) --world-size 2 --pp 2 -b 2 --grad-accum 4
comm_check "pp2 vpp2, first stage" 0 pipeline $((4 * 3 * ACT / 2)) --world-size 2 --pp 2 --vpp 2 -b 1 --grad-accum 4
comm_check "cp2" 0 context-parallel $((4 * 4 * 64 * 2 * 4 * 8 * 4)) --world-size 2 --cp 2 -b 2
comm_check "cp2: the gradients all-reduced over the CP ranks" 0 data-parallel $((4 * P)) --world-size 2 --cp 2 -b 2
[ $comm_ok = 1 ] && pass "--describe's communication per rank: ZeRO-0 and -3, tp, pp (also interleaved), cp, as ring collectives count it"
out=$("$BIN/llama-train" -c "$TMP/comm.model" -l 64 --world-size 2 --pp 2 --vpp 2 -b 1 --grad-accum 4 --describe 2>&1)
if grep -q "each stage idles 11.1% of the step .*plain 1F1B: 20.0%)" <<<"$out"; then
  pass "--describe's pipeline bubble: pp 2, vpp 2, 4 micro-batches idle 1/9 (plain 1F1B 1/5)"
else fail "pipeline bubble" "$(grep '^pipeline' <<<"$out")"; fi

# 8. machine profiles: a required key missing or a number out of its bounds is
# an error naming it; keys may be spelt with '-' for '_'; comm_overlap is 1
# when not given (the profile above gives none).
PL=(-c small -l 256 --devices 8 --global-batch-tokens 65536 --tsv --top 5)
grep -v '^op_overhead_us' "$TMP/m.machine" >"$TMP/missing.machine"
expect_error "a machine profile without a required key" "missing.machine: machine profile lacks the key 'op_overhead_us'" \
  "$BIN/llama-plan" --machine "$TMP/missing.machine" "${PL[@]}"
sed 's/^usable_memory = .*/usable_memory = 1.5/' "$TMP/m.machine" >"$TMP/bound.machine"
expect_error "a machine profile's number out of bounds" "bound.machine:6: usable_memory must be a number from 0.001 to 1, got '1.5'" \
  "$BIN/llama-plan" --machine "$TMP/bound.machine" "${PL[@]}"
sed 's/^intra_node_gbs/intra-node-gbs/; s/^inter_node_latency_us/inter-node_latency-us/' "$TMP/m.machine" >"$TMP/dash.machine"
{ cat "$TMP/m.machine"; echo "comm_overlap = 1"; } >"$TMP/overlap1.machine"
sed '/^comm_overlap/d' "$TMP/overlap1.machine" >"$TMP/overlap0.machine"; echo "comm_overlap = 0" >>"$TMP/overlap0.machine"
base=$("${PLAN[@]}" "${PL[@]}" 2>&1)
dash=$("$BIN/llama-plan" --machine "$TMP/dash.machine" "${PL[@]}" 2>&1)
one=$("$BIN/llama-plan" --machine "$TMP/overlap1.machine" "${PL[@]}" 2>&1)
zero=$("$BIN/llama-plan" --machine "$TMP/overlap0.machine" "${PL[@]}" 2>&1)
if [ "$dash" = "$base" ] && [ "$one" = "$base" ] && [ "$zero" != "$base" ]; then
  pass "machine profiles: '-' for '_' in keys reads the same; no comm_overlap plans as comm_overlap = 1 (and not as 0)"
else fail "machine profile keys" "dashes $([ "$dash" = "$base" ] && echo same || echo differ), comm_overlap 1 $([ "$one" = "$base" ] && echo same || echo differs), 0 $([ "$zero" != "$base" ] && echo differs || echo same)"; fi

# 9. llama-plan's search: a group of ranks filling one node exactly talks
# inside it (2 devices a node or 4: the same plan for tp 2 of 2 devices);
# --max-micro-batch bounds the micro-batches listed; the offloaded optimizer's
# host memory per node is that of the node's devices (8 of 16 devices; each
# rank's from --describe).
sed 's/^devices_per_node = .*/devices_per_node = 2/' "$TMP/m.machine" >"$TMP/node2.machine"
sed 's/^devices_per_node = .*/devices_per_node = 4/' "$TMP/m.machine" >"$TMP/node4.machine"
PT=(-c tiny -l 64 --devices 2 --global-batch-tokens 2048 --tp 2 --tsv --top 0)
n2=$("$BIN/llama-plan" --machine "$TMP/node2.machine" "${PT[@]}" 2>&1)
n4=$("$BIN/llama-plan" --machine "$TMP/node4.machine" "${PT[@]}" 2>&1)
if [ -n "$n2" ] && [ "$n2" = "$n4" ] && [ "$(wc -l <<<"$n2")" -gt 1 ]; then
  pass "tp 2 on 2 devices: the same plan with 2 and 4 devices a node (a full node is one node)"
else fail "a group filling one node" "$(diff <(echo "$n2") <(echo "$n4") | head -4)"; fi
bs=$("${PLAN[@]}" -c tiny -l 64 --devices 1 --global-batch-tokens 1024 --tsv --top 0 --all --max-micro-batch 2 |
     awk -F'\t' 'NR > 1 { print $10 }' | sort -un | tr '\n' ' ')
[ "$bs" = "1 2 " ] && pass "--max-micro-batch 2: micro-batches 1 and 2 only" ||
  fail "--max-micro-batch" "micro-batches listed: '$bs', want '1 2 '"
pp4=$("${PLAN[@]}" -c tiny -l 64 --devices 4 --global-batch-tokens 1024 --exact --pp 4 --tsv 2>&1 | awk -F'\t' 'NR == 2 { print $4, $12 }')
[ "$pp4" = "4 1" ] && pass "--pp 4 of a 4-layer model (one layer a stage) is planned" ||
  fail "--pp equal to the layer count" "'$pp4', want pp 4 fitting"
gpu_profile "$TMP/gpu16.machine" 4000
desc=$("$BIN/llama-train" -c 7b -l 2048 --world-size 16 --device cuda --offload optimizer --zero 1 -b 1 --describe 2>&1)
per_rank=$(grep -o "optimizer, stage 0: [0-9.]* [KMGT]*i*B per rank" <<<"$desc" | awk '{ u = $5
  print $4 * (u == "KiB" ? 1024 : u == "MiB" ? 1048576 : u == "GiB" ? 1073741824 : u == "TiB" ? 1099511627776 : 1) }')
node=$("$BIN/llama-plan" --machine "$TMP/gpu16.machine" -c 7b -l 2048 --devices 16 --global-batch-tokens 32768 --exact \
       --tp 1 --cp 1 --pp 1 --zero 1 --offload optimizer -b 1 --grad-accum 1 --all --tsv | awk -F'\t' 'NR == 2 { print $30 }')
if [ -n "$per_rank" ] && [ -n "$node" ] && awk -v a="$node" -v b="$per_rank" 'BEGIN { exit !((a - 8 * b) ^ 2 <= (0.01 * 8 * b) ^ 2) }'; then
  pass "offload on 16 devices of 8 a node: host memory per node = 8 × --describe's per rank"
else fail "offload host memory per node" "per node '$node', per rank '$per_rank' (want 8×)"; fi

# 6. deterministic
a=$("${PLAN[@]}" -c 7b -l 2048 --devices 16 --global-batch-tokens 1048576 --all | md5sum)
b=$("${PLAN[@]}" -c 7b -l 2048 --devices 16 --global-batch-tokens 1048576 --all | md5sum)
c=$(OMP_NUM_THREADS=2 "${PLAN[@]}" -c 7b -l 2048 --devices 16 --global-batch-tokens 1048576 --all | md5sum)
[ "$a" = "$b" ] && [ "$a" = "$c" ] && pass "llama-plan's output is the same on every run and thread count" ||
  fail "plan deterministic" "outputs differ"
# 8. jobs/calibrate.sh (llama-calibrate under mpirun, 2 ranks) writes a profile
# llama-plan reads: every measured rate positive, the linears' rate not above
# the measured sgemm peak by more than noise (on a shared 2-core machine the
# two, measured seconds apart, were seen 1.8x apart; a FLOP count off by a
# factor of 3 still fails), the file written whole.
# OUT relative to the caller's folder ($TMP).
if (cd "$TMP" && OUT=cal.machine BUILD="$BUILD" bash "$ROOT/jobs/calibrate.sh") >"$TMP/cal.out" 2>&1 &&
   "$BIN/llama-plan" -c small --devices 2 --machine "$TMP/cal.machine" -l 256 \
     --global-batch-tokens 2048 >"$TMP/cal.plan" 2>&1; then
  why=$(awk -F'[ =#]+' '
    /^(peak_tflops|matmul_tflops|matmul_small_tflops|attention_fwd_tflops|attention_bwd_tflops|elementwise_gbs|optimizer_gbs|op_overhead_us|intra_node_gbs|intra_node_p2p_gbs) / {
      v[$1] = $2; if (!($2 > 0)) bad = bad " " $1 " = " $2 }
    END {
      if (length(v) != 10) bad = bad " " length(v) " of the 10 measured keys"
      if (v["matmul_tflops"] > 2.5 * v["peak_tflops"]) bad = bad " linears " v["matmul_tflops"] " > 2.5 x peak " v["peak_tflops"]
      print bad }' "$TMP/cal.machine")
  if [ -z "$why" ] && grep -q "tokens/s" "$TMP/cal.plan" && ! ls "$TMP"/cal.machine.* >/dev/null 2>&1
  then pass "jobs/calibrate.sh measures a profile llama-plan plans with (10 rates positive, linears at or under the sgemm peak)"
  else fail "calibrate" "$why $(head -3 "$TMP/cal.plan")"; fi
else fail "calibrate" "$(tail -3 "$TMP/cal.out") $(tail -3 "$TMP/cal.plan" 2>/dev/null)"; fi

# --exact without -b or --grad-accum: llama-train's grad-accum 1, the global
# batch gives the micro-batch (1 sequence on 1 device: b 1).
CPUM=(-c tiny --machine "$ROOT/inputs/machines/cpu-local.machine" -l 256 --exact)
if out=$("${PLAN[@]}" "${CPUM[@]}" --devices 1 --global-batch-tokens 256 2>&1) &&
   grep -q "tp 1 pp 1 dp 1 zero 0 recompute none b 1 ga 1 " <<<"$out"; then
  pass "llama-plan --exact, a global batch of 1 sequence on 1 device: micro-batch 1, grad-accum 1"
else fail "llama-plan --exact with one sequence" "$(tail -n 2 <<<"$out")"; fi
expect_error "llama-plan --exact: 1 sequence over data-parallel 2 refused in good grammar" \
  "the global batch of 1 sequence does not split over data-parallel size 2" \
  "${PLAN[@]}" "${CPUM[@]}" --devices 2 --global-batch-tokens 256
# Options that leave nothing to plan say why, in llama-train's words where it is llama-train's refusal.
expect_error "llama-plan --exact --sp at tp 1: llama-train's reason" \
  "can be planned with these options: --sp splits the sequence over the tensor-parallel group, but --tp is 1" \
  "${PLAN[@]}" "${CPUM[@]}" --devices 4 --global-batch-tokens 4096 --sp
expect_error "llama-plan --exact --vpp 2 at pp 1: llama-train's reason" \
  "can be planned with these options: --vpp 2 interleaves model chunks over pipeline stages, but --pp is 1" \
  "${PLAN[@]}" "${CPUM[@]}" --devices 4 --global-batch-tokens 4096 --vpp 2
expect_error "llama-plan -b not dividing each rank's sequences: the reason" \
  "the global batch gives each of the 4 data-parallel ranks 4 sequences, not a multiple of -b 3" \
  "${PLAN[@]}" "${CPUM[@]}" --devices 4 --global-batch-tokens 4096 -b 3
# --exact without -b: the global batch gives the micro-batch, past --max-micro-batch's default 64.
if out=$("${PLAN[@]}" "${CPUM[@]}" --devices 1 --global-batch-tokens $((128 * 256)) 2>&1) &&
   grep -q "tp 1 pp 1 dp 1 zero 0 recompute none b 128 ga 1 " <<<"$out"; then
  pass "llama-plan --exact: a micro-batch of 128 the global batch gives is planned"
else fail "llama-plan --exact, micro-batch 128" "$(tail -n 2 <<<"$out")"; fi
expect_error "llama-plan --exact with --max-micro-batch given: the bound holds, and says so" \
  "micro-batch 128 is above --max-micro-batch 64" \
  "${PLAN[@]}" "${CPUM[@]}" --devices 1 --global-batch-tokens $((128 * 256)) --max-micro-batch 64
if out=$("$BIN/llama-calibrate" --help 2>&1) && grep -q "^usage: mpirun -np N llama-calibrate" <<<"$out"; then
  pass "llama-calibrate --help: the usage, exit 0"
else fail "llama-calibrate --help" "$out"; fi
expect_usage_error "llama-calibrate with an argument: bad usage" "llama-calibrate takes no arguments" \
  "$BIN/llama-calibrate" --ranks 4
finish
