#!/usr/bin/env bash
# Bad input to llama-train gets one clear line naming the problem and a
# non-zero exit, on every rank, within the time bound — never a crash or hang.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
DATA=$TMP/data
make_byte_shards "$DATA"
D=(-d "$DATA" -l 32 --steps 1)

expect_usage_error "unknown option" "unknown option '--frobnicate'" "$T" --frobnicate 3
expect_usage_error "malformed number" "--lr: expected a number, got '1e-3x'" "$T" "${D[@]}" --lr 1e-3x
expect_usage_error "malformed integer" "--batch-size: expected an integer >= 1, got 'four'" "$T" "${D[@]}" -b four
expect_usage_error "option without its value" "option '--steps' needs a value" "$T" --steps
expect_usage_error "--peak-tflops -1: refused, not taken for the default" "--peak-tflops: expected a number >= 0, got '-1'" \
  "$T" "${D[@]}" --peak-tflops -1
expect_usage_error "unknown preset" "unknown preset 'llama9'" "$T" -c llama9 "${D[@]}"
# One shard under two names (a link) or a copy: every epoch would read it twice.
mkdir -p "$TMP/twice" "$TMP/copies"
cp "$DATA"/*.h5 "$TMP/twice/" && ln -s wikipedia_sample.train.h5 "$TMP/twice/again.train.h5"
cp "$DATA"/*.h5 "$TMP/copies/" && cp "$DATA/wikipedia_sample.train.h5" "$TMP/copies/copy.train.h5"
expect_error "a shard linked under a second name" "again.train.h5 and .*wikipedia_sample.train.h5 are one file under two names: every epoch would read its tokens twice" \
  "$T" -d "$TMP/twice" -l 32 --steps 1
expect_error "a copy of a shard" "copy.train.h5 and .*wikipedia_sample.train.h5 are copies of one shard" \
  "$T" -d "$TMP/copies" -l 32 --steps 1
# The learning-rate schedule and AdamW's settings.
expect_error "--adam-beta2 1" "--adam-beta1 and --adam-beta2 must be in \[0, 1\)" "$T" "${D[@]}" --adam-beta2 1
expect_usage_error "--adam-eps 0" "--adam-eps must be positive" "$T" "${D[@]}" --adam-eps 0
# AdamW computes in float: 0.99999999 rounds to 1 there (NaN from step 2), 1e-50 to 0.
expect_error "--adam-beta2 that is 1 in float" "below 1 in float \(at most 0.99999994\)" "$T" "${D[@]}" --adam-beta2 0.99999999
expect_error "--adam-beta1 that is 1 in float" "below 1 in float \(at most 0.99999994\)" "$T" "${D[@]}" --adam-beta1 0.99999999
expect_error "--adam-eps that is 0 in float" "--adam-eps must be positive, and in float" "$T" "${D[@]}" --adam-eps 1e-50
expect_error "--lr-decay-style unknown" "--lr-decay-style: expected cosine, linear, constant or wsd, got .step." \
  "$T" "${D[@]}" --lr-decay-style step
expect_error "wsd without its decay steps" "--lr-decay-style wsd needs --lr-wsd-decay-steps N" \
  "$T" "${D[@]}" --lr-decay-style wsd
expect_error "--lr-wsd-decay-steps without wsd" "--lr-wsd-decay-steps belongs to --lr-decay-style wsd" \
  "$T" "${D[@]}" --lr-wsd-decay-steps 2
expect_error "a decay ending inside the warm-up" "--lr-decay-steps 3 ends the decay before the warm-up's 5 steps do" \
  "$T" "${D[@]}" --warmup-steps 5 --lr-decay-steps 3
# Without --steps, the run's length comes from the data: checked once it is read.
expect_error "a WSD decay longer than the epoch's steps" "--lr-wsd-decay-steps 100000 is longer than the [0-9]+ steps between the warm-up's end \(0\) and the decay's \([0-9]+\) \(this run has [0-9]+ steps: --num-epochs 1 of the data\)" \
  "$T" -d "$DATA" -l 32 --lr-decay-style wsd --lr-wsd-decay-steps 100000

cat >"$TMP/missing.model" <<'M'
dim = 64
n_layers = 2
n_heads = 4
n_kv_heads = 2
ffn_dim = 128
vocab_size = 256
max_seq_len = 64
rope_theta = 10000
M
expect_usage_error "model file without a key" "lacks the key 'norm_eps'" "$T" -c "$TMP/missing.model" "${D[@]}"
sed 's/^ffn_dim = 128/ffn_dim = 0/' "$TMP/missing.model" >"$TMP/zero.model"; echo "norm_eps = 1e-5" >>"$TMP/zero.model"
expect_usage_error "model file with a non-positive key" "'ffn_dim' must be a positive integer, got '0'" "$T" -c "$TMP/zero.model" "${D[@]}"
sed 's/^n_heads = 4/n_heads = 5/' "$TMP/zero.model" | sed 's/^ffn_dim = 0/ffn_dim = 128/' >"$TMP/heads.model"
expect_usage_error "heads not dividing dim" "n_heads 5 does not divide dim 64" "$T" -c "$TMP/heads.model" "${D[@]}"
# Sizes whose counts would wrap int64 (--describe printed negative parameters).
sed 's/^dim = 64/dim = 2147483520/; s/^ffn_dim = 0/ffn_dim = 128/' "$TMP/zero.model" >"$TMP/huge.model"
expect_error "a model too large to count" "2.77e\+19 parameters, more than the 1.13e\+15 this program can count" \
  "$T" -c "$TMP/huge.model" -l 64 --describe
sed 's/^n_kv_heads = 2/n_kv_heads = 3/' "$TMP/zero.model" | sed 's/^ffn_dim = 0/ffn_dim = 128/' >"$TMP/kv.model"
expect_usage_error "KV heads not dividing heads" "n_kv_heads 3 does not divide n_heads 4" "$T" -c "$TMP/kv.model" "${D[@]}"
expect_usage_error "missing model file" "cannot open '$TMP/none.model'" "$T" -c "$TMP/none.model" "${D[@]}"

expect_error "missing dataset" "dataset '$TMP/nothing' does not exist" "$T" -d "$TMP/nothing" -l 32
expect_usage_error "no dataset at all" "no training data: give --dataset" "$T" -l 32
"$T" --bench -c tiny -l 16 --steps 1 -i 1 -o "$TMP/ck" >/dev/null 2>&1
expect_error "HDF5 file without /tokens" "has no /tokens dataset" "$T" -d "$TMP/ck/step_0000001/checkpoint.h5" -l 32
head -c 3000 "$DATA/wikipedia_sample.train.h5" >"$TMP/truncated.h5"
expect_error "truncated shard" "not a readable HDF5 file|damaged|failed" "$T" -d "$TMP/truncated.h5" -l 32
sed 's/^vocab_size = 256/vocab_size = 200/' "$TMP/zero.model" | sed 's/^ffn_dim = 0/ffn_dim = 128/' >"$TMP/v200.model"
expect_error "token ids beyond the model's vocabulary" "shard vocabulary 256 is larger than the model's 200" \
  "$T" -c "$TMP/v200.model" "${D[@]}"
mkdir -p "$TMP/short"
echo '{"text": "A document of a few dozen bytes.", "meta": {"source": "short"}}' >"$TMP/short/short.jsonl"
"$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/short/short.jsonl" --output "$TMP/short" --val-fraction 0 >/dev/null 2>&1
expect_error "max-length beyond the data" "holds fewer than max-length \+ 1 = 65 tokens" "$T" -c tiny -d "$TMP/short" -l 64 --steps 1
expect_usage_error "max-length beyond the model" "--max-length 4096 exceeds the model's max_seq_len 256" "$T" "${D[@]}" -l 4096
# A CPU without AVX-512 BF16, as oneDNN sees it when told to stop at AVX-512 (other BLAS: none).
expect_error "bf16 on a CPU without a bf16 matmul" "bf16 on the CPU needs a bf16 matmul" \
  env ONEDNN_MAX_CPU_ISA=AVX512_CORE "$T" "${D[@]}" -x bf16
expect_usage_error "micro-batch beyond int tokens" "-b 1100000 × --max-length 2048 = 2252800000 tokens per micro-batch, more than the 2147483647" \
  "$T" -c 7b --describe -b 1100000 -l 2048
expect_usage_error "negative --max-length" "--max-length: expected an integer >= 0, got '-3'" "$T" "${D[@]}" -l -3
expect_usage_error "negative --keep-checkpoints" "--keep-checkpoints: expected an integer >= 0, got '-1'" \
  "$T" "${D[@]}" -i 1 -o "$TMP/keep" --keep-checkpoints -1
expect_usage_error "negative --world-size" "--world-size: expected an integer >= 0, got '-8'" "$T" -c tiny --describe --world-size -8
# A bound broken in a run deck: its file and line first.
printf 'batch-size = 0\n' >"$TMP/b0.deck"
expect_usage_error "a bound broken in a run deck: named by file and line" "b0.deck:1: --batch-size: expected an integer >= 1, got '0'" \
  "$T" "$TMP/b0.deck" "${D[@]}"
expect_usage_error "--world-size without --describe" "--world-size 8 belongs to --describe" "$T" "${D[@]}" --world-size 8
expect_usage_error "--data-mix naming a source twice" "--data-mix 'c4=1,c4=5' names the source 'c4' twice" \
  "$T" "${D[@]}" --data-mix c4=1,c4=5

# Hugging Face weights that do not fit.
GOLD=$ROOT/validation/golden/llama-tiny
mkdir -p "$TMP/hf"; cp "$GOLD/config.json" "$TMP/hf/"
head -c 100000 "$GOLD/model.safetensors" >"$TMP/hf/model.safetensors"
expect_error "truncated safetensors" "model.safetensors: tensor '.*' data \\[[0-9]+, [0-9]+\\) runs past the end of the data section \\([0-9]+ bytes\\): the file is truncated" "$T" --init-hf "$TMP/hf" --bench -l 8 --steps 1
sed 's/"intermediate_size": 80/"intermediate_size": 96/' "$GOLD/config.json" >"$TMP/hf/config.json"
cp "$GOLD/model.safetensors" "$TMP/hf/"
expect_error "safetensors of the wrong shape" "has shape \[80, 48\], expected \[96, 48\]" "$T" --init-hf "$TMP/hf" --bench -l 8 --steps 1
"$T" --bench -c tiny -l 8 --steps 1 --export-hf "$TMP/tinyhf" >/dev/null 2>&1
cp "$GOLD/config.json" "$TMP/tinyhf/config.json"
expect_error "safetensors for another model" "model.safetensors: tensor 'model.embed_tokens.weight' has shape \\[256, 64\\], expected \\[97, 48\\]" "$T" --init-hf "$TMP/tinyhf" --bench -l 8 --steps 1
"$T" --bench -c tiny -l 8 --steps 1 --export-hf "$TMP/bf16hf" --export-dtype bf16 >/dev/null 2>&1
if "$T" --init-hf "$TMP/bf16hf" --bench -l 8 --steps 1 >/dev/null 2>&1; then pass "bf16 safetensors read"
else fail "bf16 safetensors read" "a bf16 export did not load"; fi

# Layouts that cannot work: one message, every rank exits non-zero, no hang.
M=("${MPIRUN[@]}")
expect_usage_error "7 ranks for dp2×tp2×pp2" "7 ranks cannot form a grid with tp 2 × cp 1 × pp 2" "${M[@]}" -np 7 "$T" "${D[@]}" --tp 2 --pp 2
expect_usage_error "TP not dividing heads" "--tp 3 does not divide attention heads \(8\)" "${M[@]}" -np 3 "$T" "${D[@]}" --tp 3
expect_usage_error "TP not dividing KV heads" "--tp 8 does not divide KV heads \(4\)" "${M[@]}" -np 8 "$T" "${D[@]}" --tp 8
sed 's/^ffn_dim = 0/ffn_dim = 130/' "$TMP/zero.model" | sed 's/^n_kv_heads = 2/n_kv_heads = 4/' >"$TMP/ffn.model"
expect_usage_error "TP not dividing the FFN width" "--tp 4 does not divide the FFN width \(130\)" "${M[@]}" -np 4 "$T" -c "$TMP/ffn.model" "${D[@]}" --tp 4
expect_usage_error "PP beyond the layer count" "--pp 8 is larger than the 4 layers" "${M[@]}" -np 8 "$T" "${D[@]}" --pp 8
if out=$("$T" -c tiny --world-size 4 --pp 4 --grad-accum 4 --describe 2>&1) && grep -q "^memory per rank, stage 3:" <<<"$out"; then
  pass "--pp equal to the layer count (one layer a stage) is accepted"
else fail "--pp equal to the layer count" "$(tail -n 2 <<<"$out")"; fi
expect_usage_error "ZeRO-2 with DP 1" "--zero 2 shards over data-parallel ranks .*, but the data-parallel size is 1" "${M[@]}" -np 2 "$T" "${D[@]}" --tp 2 --zero 2
expect_usage_error "ZeRO-3 with DP 1" "--zero 3 shards over data-parallel ranks .*, but the data-parallel size is 1" "${M[@]}" -np 2 "$T" "${D[@]}" --pp 2 --zero 3
expect_usage_error "ZeRO stage 4" "--zero: expected an integer in \[0, 3\], got '4'" "${M[@]}" -np 2 "$T" "${D[@]}" --zero 4
expect_usage_error "--tp 0" "--tp: expected an integer >= 1, got '0'" "$T" "${D[@]}" --tp 0
expect_usage_error "--sp without TP" "--sp splits the sequence over the tensor-parallel group, but --tp is 1" "${M[@]}" -np 2 "$T" "${D[@]}" --sp
expect_usage_error "--sp with TP not dividing the sequence" "--sp with --tp 4 needs a sequence length divisible by 4 \(got 30\)" "${M[@]}" -np 4 "$T" "${D[@]}" -l 30 --tp 4 --sp
expect_usage_error "--vpp without a pipeline" "--vpp 2 interleaves model chunks over pipeline stages, but --pp is 1" "${M[@]}" -np 2 "$T" "${D[@]}" --vpp 2
expect_usage_error "--vpp chunks not dividing the layers" "--pp 2 × --vpp 4 = 8 model chunks do not divide the 4 layers" "${M[@]}" -np 2 "$T" "${D[@]}" --pp 2 --vpp 4 --grad-accum 2
expect_usage_error "--vpp with micro-batches not a multiple of pp" "--grad-accum 3 is not a multiple of it" "${M[@]}" -np 2 "$T" "${D[@]}" --pp 2 --vpp 2 --grad-accum 3
expect_usage_error "--cp not dividing the sequence" "--cp 2 cuts each sequence in 2·cp = 4 equal chunks .* the sequence length 30 is not a multiple of 4" "${M[@]}" -np 2 "$T" "${D[@]}" -l 30 --cp 2
expect_usage_error "--cp of zero" "--cp: expected an integer >= 1, got '0'" "$T" "${D[@]}" --cp 0
expect_usage_error "ranks not a multiple of tp·cp·pp" "3 ranks cannot form a grid with tp 1 × cp 2 × pp 1" "${M[@]}" -np 3 "$T" "${D[@]}" --cp 2
# GPUs take --cp (the CUDA backend's block attention), over NCCL or host-staged MPI.
for dc in nccl mpi; do
  if out=$(timeout 60 "$T" -c tiny --describe --device cuda --device-comm $dc --cp 2 --world-size 2 2>&1) &&
     grep -q "ring attention passes keys and values round 2 ranks" <<<"$out"; then pass "--cp 2 on GPUs (--device-comm $dc) is accepted"
  else fail "--cp 2 on GPUs (--device-comm $dc) is accepted" "$(tail -2 <<<"$out")"; fi
done
# The CUDA backend is a library of its own (libllama-cuda.so), loaded when a run asks
# for it: no program links a CUDA library, and --device cuda loads it (every symbol it
# needs from the program resolved) and goes on (here: says there is no GPU); a copy of
# the program without the library next to it says what is missing.
if [ -e "$BIN/libllama-cuda.so" ]; then
  linked=$(ldd "$T" "$BIN/llama-ckpt" "$BIN/llama-tokenize" "$BIN/llama-plan" | grep -cE 'libcudart|libcublas|libnccl|libcudnn')
  out=$(timeout 60 "$T" -c tiny --bench -l 16 --steps 1 --peak-tflops 1 --device cuda 2>&1); rc=$?
  if [ "$linked" = 0 ] && ! grep -q "cannot load the CUDA backend" <<<"$out" &&
     { [ $rc -eq 0 ] || grep -q "no CUDA GPU is visible" <<<"$out"; }; then
    pass "the CUDA backend's library: linked by no program, loaded by --device cuda"
  else fail "CUDA backend library" "$linked programs link CUDA libraries; exit $rc: $(tail -2 <<<"$out")"; fi
  mkdir -p "$TMP/alone" && cp "$T" "$TMP/alone/"
  expect_error "--device cuda without libllama-cuda.so next to the program: what is missing" \
    "cannot load the CUDA backend \(libllama-cuda.so, built next to the programs by make when nvcc is found\): libllama-cuda.so: cannot open" \
    "$TMP/alone/llama-train" -c tiny --bench -l 16 --steps 1 --device cuda
fi
expect_usage_error "--cp with token-by-token sampling" "--sample-tokens generates token by token on one sequence, which --cp 2 splits" "${M[@]}" -np 2 "$T" "${D[@]}" --cp 2 --sample-tokens 4 --tokenizer bytes
expect_usage_error "--pp-layers not one count per chunk" "--pp-layers '1,3' must give 4 chunks summing to the model's 4 layers" "${M[@]}" -np 2 "$T" "${D[@]}" --pp 2 --vpp 2 --grad-accum 2 --pp-layers 1,3
expect_usage_error "--offload of something else" "--offload: expected none or optimizer, got 'gradients'" "$T" "${D[@]}" --offload gradients
# Counts whose sum wraps a 32-bit int (2·(2^31 − 1) + 5 = 3 layers) must not pass.
expect_usage_error "--pp-layers counts that overflow" "--pp-layers '2147483647,2147483647,5': expected 3 layer counts from 1 to 4" \
  "$T" -c tiny --describe --world-size 3 --pp 3 --pp-layers 2147483647,2147483647,5
expect_usage_error "--pp-layers with an empty item" "--pp-layers '2,,2': expected 2 layer counts from 1 to 4" \
  "$T" -c tiny --describe --world-size 2 --pp 2 --pp-layers 2,,2
expect_usage_error "--data-mix with a trailing comma" "--data-mix 'c4=1,' has an empty item" \
  "$T" -c tiny --bench --steps 1 -l 16 --data-mix c4=1,
# Weights each finite whose sum is not: every source's share would be 0 (all from the first).
mkdir -p "$TMP/two" && cp "$DATA"/*.h5 "$TMP/short"/*.h5 "$TMP/two/"
expect_error "--data-mix weights whose sum overflows" "--data-mix: the weights' sum overflows" \
  "$T" -d "$TMP/two" -l 4 --steps 1 --data-mix wikipedia_sample=1e308,short=1e308
# The message comes once, from rank 0.
n=$("${M[@]}" -np 4 "$T" "${D[@]}" --tp 3 2>&1 >/dev/null | grep -c "cannot form a grid")
[ "$n" -eq 1 ] && pass "a layout error is printed once" || fail "a layout error is printed once" "printed $n times"
n=$("${M[@]}" -np 3 "$T" -d "$TMP/truncated.h5" -l 32 --steps 1 2>&1 >/dev/null | grep -c "not a readable HDF5 file")
[ "$n" -eq 1 ] && pass "a damaged shard's error is printed once (3 ranks)" ||
  fail "a damaged shard's error is printed once" "printed $n times"
# A model whose buffers cannot fit the node's memory (65b: about 1 TiB on the
# CPU) is refused before it is allocated, not killed by the kernel midway.
expect_error "a model larger than the node's memory (1 rank)" \
  "the 1 rank on this node needs [0-9.]+ [GT]iB for the model's buffers .*, more than the [0-9.]+ [MGT]iB available \((MemAvailable|the limit of the memory cgroup)" \
  "$T" -c 65b --bench -l 16 -b 1 --steps 1
expect_error "a model larger than the node's memory (2 ranks, tp 2)" \
  "the 2 ranks on this node need [0-9.]+ [GT]iB for the model's buffers" \
  "${MPIRUN[@]}" -np 2 "$T" -c 65b --bench -l 16 -b 1 --steps 1 --tp 2
# Outputs the run appends to (--log, --dump-batches) that are its inputs, or
# one file: refused before anything is written (appending destroyed them).
printf 'steps = 1\n' >"$TMP/run.deck"
cp "$ROOT/inputs/tokenizer.json" "$TMP/tok.json"
expect_error "--log into the run deck" "--log $TMP/run.deck is the run deck" "$T" "$TMP/run.deck" "${D[@]}" --log "$TMP/run.deck"
expect_error "--dump-batches into --tokenizer" "--dump-batches $TMP/tok.json is --tokenizer" \
  "$T" "${D[@]}" --dump-batches "$TMP/tok.json" --tokenizer "$TMP/tok.json"
expect_error "--log into a shard of --dataset" "--log $DATA/wikipedia_sample.val.h5 is --dataset or a file in it" \
  "$T" "${D[@]}" --log "$DATA/wikipedia_sample.val.h5"
expect_error "--log and --dump-batches one file" "--log and --dump-batches are one file" \
  "$T" "${D[@]}" --log "$TMP/same.jsonl" --dump-batches "$TMP/same.jsonl"
expect_error "--log and --dump-batches one new file, spelt two ways" "--log and --dump-batches are one file" \
  "$T" "${D[@]}" --log "$TMP/same2.bin" --dump-batches "$TMP/./same2.bin"
expect_error "--log one of --dump-batches' per-rank files" "--log $TMP/dd.dp1 is a file --dump-batches $TMP/dd writes under data parallelism" \
  "$T" -c tiny --bench -l 16 --steps 1 --log "$TMP/dd.dp1" --dump-batches "$TMP/dd"
expect_error "--log a new .h5 in the --dataset folder" "would be a .h5 file in the --dataset folder" \
  "$T" "${D[@]}" --log "$DATA/new.h5"
expect_error "--log a new .h5 beside the --dataset shard" "would be a .h5 file in the --dataset folder" \
  "$T" -d "$DATA/wikipedia_sample.train.h5" -l 32 --steps 1 --log "$DATA/new.h5"
[ ! -e "$DATA/new.h5" ] && [ ! -e "$TMP/same2.bin" ] && pass "the refused new outputs were not made" ||
  fail "refused new outputs" "$(ls "$DATA" "$TMP" | grep -e new.h5 -e same2)"
cmp -s "$TMP/tok.json" "$ROOT/inputs/tokenizer.json" && [ "$(cat "$TMP/run.deck")" = "steps = 1" ] &&
  pass "the refused outputs' files are untouched" || fail "refused outputs" "an input file changed"
# --log and --dump-batches fall on no name the checkpoint folder's rules write, move or
# delete (the lock went at the end, latest was replaced by each save); a log beside them
# in a --save-dir the run makes is fine.
expect_error "--log on the save folder's lock" "--log $TMP/sv/lock is 'lock' in --save-dir $TMP/sv" \
  "$T" "${D[@]}" -o "$TMP/sv" --log "$TMP/sv/lock"
expect_error "--log on latest, spelt otherwise" "--log $TMP/sv/./latest is 'latest' in --save-dir $TMP/sv/" \
  "$T" "${D[@]}" -o "$TMP/sv/" --log "$TMP/sv/./latest"
expect_error "--dump-batches inside a step folder" "--dump-batches $TMP/sv/step_0000001/d is 'step_0000001' in --save-dir" \
  "$T" "${D[@]}" -o "$TMP/sv" --dump-batches "$TMP/sv/step_0000001/d"
if "$T" "${D[@]}" -o "$TMP/sv2" --log "$TMP/sv2/step_losses.jsonl" >"$TMP/sv2.out" 2>&1 &&
   [ "$(wc -l <"$TMP/sv2/step_losses.jsonl")" = 1 ] && [ -d "$TMP/sv2/step_0000001" ]; then
  pass "--log in the --save-dir the run makes, beside its checkpoints"
else fail "--log in a new --save-dir" "$(tail -2 "$TMP/sv2.out")"; fi
ln -s "$TMP/sv2" "$TMP/sv2link"
expect_error "--log on latest through a link to the --save-dir" "--log $TMP/sv2link/latest is 'latest' in --save-dir $TMP/sv2" \
  "$T" "${D[@]}" -o "$TMP/sv2" --log "$TMP/sv2link/latest"
expect_error "--log into the --load checkpoint's file" "--log $TMP/sv2/step_0000001/checkpoint.h5 is --load or a file in it" \
  "$T" "${D[@]}" --steps 2 --load "$TMP/sv2/step_0000001" --log "$TMP/sv2/step_0000001/checkpoint.h5"
expect_error "--save-dir that is a checkpoint" "--save-dir $TMP/sv2/step_0000001 is a checkpoint \(it holds checkpoint.h5\)" \
  "$T" "${D[@]}" --steps 2 -o "$TMP/sv2/step_0000001" --load auto
expect_error "--save-dir that is a checkpoint, spelt through a folder yet to be made" "is a checkpoint \(it holds checkpoint.h5\)" \
  "$T" "${D[@]}" --steps 2 -o "$TMP/nothere/../sv2/step_0000001" --load auto
"$BIN/llama-ckpt" info "$TMP/sv2/step_0000001" >/dev/null 2>&1 && [ "$(ls "$TMP/sv2/step_0000001" | tr '\n' ' ')" = "checkpoint.h5 owner " ] &&
  pass "the refused runs left the checkpoint as it was" || fail "refused runs and the checkpoint" "$(ls "$TMP/sv2/step_0000001")"
# FIFOs: opening one blocks until its other end opens (a start-up deaf to SIGTERM).
mkfifo "$TMP/fifo"
expect_error "a FIFO as the run deck" "'$TMP/fifo' is a FIFO, not a file of key = value lines" "$T" "$TMP/fifo" "${D[@]}"
expect_usage_error "a FIFO as the model file" "'$TMP/fifo' is a FIFO" "$T" -c "$TMP/fifo" "${D[@]}"
expect_error "a FIFO as --tokenizer" "tokenizer file '$TMP/fifo' is a FIFO" \
  "$T" "${D[@]}" --tokenizer "$TMP/fifo" --sample-tokens 2
expect_error "a FIFO no process reads as --log" "cannot open '$TMP/fifo' for writing: a FIFO that no process reads" \
  "$T" "${D[@]}" --log "$TMP/fifo"
# A FIFO where a checkpoint, a Hugging Face file or a shard is read (llama-train, llama-ckpt,
# llama-tokenize inspect): refused, where opening it waited for ever.
"$T" -c tiny --bench -l 16 --steps 1 -o "$TMP/fck" --export-hf "$TMP/fifo-src-hf" >"$TMP/fck.out" 2>&1 ||
  fail "FIFO inputs: the run that makes them" "$(tail -2 "$TMP/fck.out")"
mkdir -p "$TMP/ff/step_0000001" && mkfifo "$TMP/ff/step_0000001/checkpoint.h5"
cp -r "$TMP/fifo-src-hf" "$TMP/fhf" && rm "$TMP/fhf/config.json" && mkfifo "$TMP/fhf/config.json"
cp -r "$TMP/fifo-src-hf" "$TMP/fst" && rm "$TMP/fst/model.safetensors" && mkfifo "$TMP/fst/model.safetensors"
CK=$BIN/llama-ckpt
expect_error "--load of a FIFO checkpoint file" "'$TMP/ff/step_0000001/checkpoint.h5' is a FIFO, not a checkpoint file" \
  "$T" -c tiny --bench -l 16 --steps 2 --load "$TMP/ff/step_0000001" --hang-timeout 600
expect_error "--init-hf with a FIFO config.json" "'$TMP/fhf/config.json' is a FIFO, not a config.json file" \
  "$T" --bench -l 16 --steps 1 --init-hf "$TMP/fhf" --hang-timeout 600
expect_error "llama-ckpt info of a FIFO checkpoint file" "is a FIFO, not a checkpoint file" "$CK" info "$TMP/ff/step_0000001"
expect_error "llama-ckpt compare with a FIFO checkpoint file" "is a FIFO, not a checkpoint file" \
  "$CK" compare "$TMP/ff/step_0000001" "$TMP/fck/step_0000001"
# Under mpirun every rank opens both models: a bad one ends them all with one message.
n=$("${MPIRUN[@]}" -np 2 "$CK" compare "$TMP/fck/step_0000001" "$TMP/nosuch" 2>&1 >/dev/null |
    grep -c "$TMP/nosuch is neither a checkpoint nor a Hugging Face folder")
[ "$n" -eq 1 ] && pass "llama-ckpt compare on 2 ranks: a bad model's error is printed once" ||
  fail "llama-ckpt compare on 2 ranks: a bad model's error is printed once" "printed $n times"
expect_error "llama-ckpt import-hf of a FIFO safetensors" "'$TMP/fst/model.safetensors' is a FIFO, not a safetensors file" \
  "$CK" import-hf "$TMP/fst" "$TMP/imp"
# One dataset, one tokenizer and one document separator: a validation split of another
# tokenizer, or shards encoded with another --eos, are refused (both once trained and
# scored without a word).
head -60 "$ROOT/inputs/redpajama-mini/wikipedia_sample.jsonl" >"$TMP/w60.jsonl"
TOKJ=(encode --tokenizer "$ROOT/inputs/tokenizer.json" --input "$TMP/w60.jsonl" --progress 0)
"$BIN/llama-tokenize" "${TOKJ[@]}" --output "$TMP/d8k" --val-fraction 0.05 >/dev/null 2>&1 &&
  "$BIN/llama-tokenize" "${TOKJ[@]}" --output "$TMP/deos" --eos a --val-fraction 0 >/dev/null 2>&1 ||
  fail "datasets of two tokenizers" "llama-tokenize failed"
mkdir -p "$TMP/mixval" "$TMP/mixeos"
cp "$TMP/d8k/w60.train.h5" "$TMP/mixval/" && cp "$DATA/wikipedia_sample.val.h5" "$TMP/mixval/"
cp "$TMP/d8k/w60.train.h5" "$TMP/mixeos/a.train.h5" && cp "$TMP/deos/w60.train.h5" "$TMP/mixeos/b.train.h5"
expect_error "a validation split of another tokenizer" "the validation split of --dataset $TMP/mixval: .*wikipedia_sample.val.h5 was made with another tokenizer" \
  "$T" -c small -d "$TMP/mixval" -l 32 -b 1 --steps 1
expect_error "shards of two document separators (--eos)" "b.train.h5 separates documents with other ids \(end 97, beginning -1\) than .*a.train.h5 \(8191, -1\)" \
  "$T" -c small -d "$TMP/mixeos" -l 32 -b 1 --steps 1
# A checkpoint trained on one separator resumed on data encoded with another --eos.
"$T" -c small -d "$TMP/d8k" -l 32 -b 1 --steps 1 -o "$TMP/ck8k" >"$TMP/ck8k.out" 2>&1 ||
  fail "resume onto another separator: the first run" "$(tail -2 "$TMP/ck8k.out")"
expect_error "resume onto data of another separator (--eos)" "the checkpoint's data separated documents with other ids \(end 8191, beginning -1\) than this dataset's \(97, -1\)" \
  "$T" -c small -d "$TMP/deos" -l 32 -b 1 --steps 2 -o "$TMP/ck8k" -f auto
# --describe or --help on some ranks only (an MPMD launch, a per-node deck): those ranks
# would leave, the others wait for them in their first collective.
expect_error "--describe on one rank of two" "--help or --describe was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$T" -c tiny --bench --steps 1 --describe : -np 1 "$T" -c tiny --bench --steps 1
expect_error "llama-ckpt --help on one rank of two" "--help was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$CK" --help : -np 1 "$CK" info "$TMP/fck/step_0000001"
# An error one rank alone finds in its command line or model file (a node's copy missing)
# ends every rank with that rank's message.
expect_usage_error "an unknown option on one rank of two" "unknown option '--bogus'" \
  "${MPIRUN[@]}" -np 1 "$T" -c tiny --bench -l 16 --steps 1 : -np 1 "$T" -c tiny --bench -l 16 --steps 1 --bogus
expect_usage_error "a model file missing on one rank of two" "cannot open '$TMP/missing.cfg'" \
  "${MPIRUN[@]}" -np 1 "$T" -c tiny --bench -l 16 --steps 1 : -np 1 "$T" -c "$TMP/missing.cfg" --bench -l 16 --steps 1
# --init-hf read on each rank from its own view of the folder: replicas that read
# other weights (a node's stale copy) would train other models, their losses averaged.
mkdir -p "$TMP/hfa" "$TMP/hfb"
"$T" -c tiny --bench -l 16 --steps 1 --export-hf "$TMP/hfa/hf" >/dev/null 2>&1 &&
  "$T" -c tiny --bench -l 16 --steps 1 --seed 7 --export-hf "$TMP/hfb/hf" >/dev/null 2>&1 ||
  fail "two Hugging Face exports" "the runs that make them failed"
expect_error "--init-hf: two ranks that read different weights" "--init-hf hf: the ranks read different weights" \
  "${MPIRUN[@]}" -np 1 --wdir "$TMP/hfa" "$T" --init-hf hf --bench -l 16 --steps 1 : \
  -np 1 --wdir "$TMP/hfb" "$T" --init-hf hf --bench -l 16 --steps 1
# Tensor-parallel ranks both hold the norms; pipeline stages both hold a tied embedding.
expect_error "--init-hf --tp 2: two ranks that read different norms" "tensor-parallel ranks' norms differ" \
  "${MPIRUN[@]}" -np 1 --wdir "$TMP/hfa" "$T" --init-hf hf --bench -l 16 --steps 1 --tp 2 : \
  -np 1 --wdir "$TMP/hfb" "$T" --init-hf hf --bench -l 16 --steps 1 --tp 2
"$T" -c tiny --tie-embeddings --bench -l 16 --steps 1 --export-hf "$TMP/hfa/tied" >/dev/null 2>&1 &&
  "$T" -c tiny --tie-embeddings --bench -l 16 --steps 1 --seed 7 --export-hf "$TMP/hfb/tied" >/dev/null 2>&1 ||
  fail "two tied Hugging Face exports" "the runs that make them failed"
expect_error "--init-hf --pp 2, tied: two stages that read different embeddings" "the first and last stages' tied embedding differ" \
  "${MPIRUN[@]}" -np 1 --wdir "$TMP/hfa" "$T" --init-hf tied --bench -l 16 --steps 1 --pp 2 : \
  -np 1 --wdir "$TMP/hfb" "$T" --init-hf tied --bench -l 16 --steps 1 --pp 2
if out=$("${MPIRUN[@]}" -np 2 --wdir "$TMP/hfa" "$T" --init-hf tied --bench -l 16 --steps 1 --pp 2 2>&1) &&
   out=$("${MPIRUN[@]}" -np 2 --wdir "$TMP/hfa" "$T" --init-hf hf --bench -l 16 --steps 1 --tp 2 2>&1); then
  pass "--init-hf --tp 2 and --pp 2 (tied) of one folder train"
else fail "--init-hf --tp 2 / --pp 2 of one folder" "$(tail -n 2 <<<"$out")"; fi
# The same for --load: each rank checks its share of the checksums against the
# sums it read; ranks that see different checkpoints are told so, not "corrupt".
"$T" -c tiny --bench -l 16 --steps 1 -i 1 -o "$TMP/hfa/ck" >/dev/null 2>&1 &&
  "$T" -c tiny --bench -l 16 --steps 1 -i 1 --lr 0.01 -o "$TMP/hfb/ck" >/dev/null 2>&1 ||
  fail "two checkpoints" "the runs that make them failed"
expect_error "--load: two ranks that read different checkpoints" "the ranks read different checkpoints under this name" \
  "${MPIRUN[@]}" -np 1 --wdir "$TMP/hfa" "$T" --load ck/step_0000001 --bench -l 16 --steps 2 : \
  -np 1 --wdir "$TMP/hfb" "$T" --load ck/step_0000001 --bench -l 16 --steps 2
if out=$("${MPIRUN[@]}" -np 1 --wdir "$TMP/hfa" "$T" --init-hf hf --bench -l 16 --steps 1 : \
         -np 1 --wdir "$TMP/hfa" "$T" --init-hf hf --bench -l 16 --steps 1 2>&1); then
  pass "--init-hf: two ranks that read the same weights train"
else fail "--init-hf on two ranks" "$(tail -n 2 <<<"$out")"; fi
expect_usage_error "llama-tokenize: an unknown command on one rank of two (it hung)" "a different command was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$BIN/llama-tokenize" frob : -np 1 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/w60.jsonl" --output "$TMP/zz"
expect_usage_error "llama-tokenize: a bad option on one rank of two" "a bad command line was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/w60.jsonl" --output "$TMP/zz" : \
  -np 1 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/w60.jsonl" --output "$TMP/zz" --bogus
expect_error "llama-tokenize: --tokenizer missing on one rank of two" "a bad command line was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/w60.jsonl" --output "$TMP/zz" : \
  -np 1 "$BIN/llama-tokenize" encode --input "$TMP/w60.jsonl" --output "$TMP/zz"
# --help and inspect need no MPI on their own; under a launcher of several ranks they
# start it, so that a rank given another command is not left waiting for them.
expect_error "llama-tokenize: --help on one rank of two, encode on the other" "a different command was given to some ranks only" \
  "${MPIRUN[@]}" -np 1 "$BIN/llama-tokenize" --help : \
  -np 1 "$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/w60.jsonl" --output "$TMP/zz"
expect_error "llama-tokenize inspect of a FIFO" "dataset '$TMP/fifo' is a FIFO, neither a shard file nor a folder" \
  "$BIN/llama-tokenize" inspect "$TMP/fifo"
finish
