#!/usr/bin/env bash
# The central test: every parallel layout trains the same model as one rank.
# The tiny preset (GQA: 8 heads, 4 KV heads) on byte-level shards of real
# text, 10 steps; each per-step loss must equal the one-rank run's to 1e-5
# relative, and each final weight tensor too (‖a − b‖ / ‖b‖ ≤ 1e-5: Adam
# turns the reduction-order noise of gradients near zero into elementwise
# weight differences of ~2e-4 of max|w| even between one-rank runs with 1
# and 2 threads, so no elementwise bound that tight can hold), for
# grad-accum 1 and 4, over the whole grid of at most 8 ranks: dp2 dp4 tp2 tp4
# pp2 pp4 dp2×tp2 dp2×pp2 tp2×pp2 dp2×tp2×pp2, each with --zero 0/1/2/3 where
# DP > 1 (at grad-accum 1 on dp2, tp2, pp2, pp4 and dp2×tp2×pp2 only: make
# test-full runs the rest), ZeRO 0 and 1 with the
# gradient reduction after the backward pass instead of overlapped with it;
# then offload, recomputation, sequence parallelism, the interleaved pipeline
# and context parallelism on a selection of them.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/layout_lib.sh"
scratch
DATA=$TMP/data
make_byte_shards "$DATA"
GLOBAL=16   # sequences per optimizer step, whatever the layout
BASE=(-c tiny -d "$DATA" -l 32 --steps 10 --lr 1e-3 --warmup-steps 2 --seed 7 --peak-tflops 1)
COMMON=("${BASE[@]}")

for accum in 1 4; do
  run "ref$accum" 1 1 1 0 "$accum" || { fail "one-rank reference" "$(tail -n 3 "$TMP/ref$accum.out")"; finish; }
done

# Grad-accum 4 over the whole grid; 1 (one micro-batch: no accumulation, a
# pipeline of one) on dp2, tp2, pp2, pp4 and dp2×tp2×pp2, the rest of the
# grid at 1 in make test-full (validation/full/test_layout_accum1.sh).
layouts=("dp2 2 1 1" "dp4 4 1 1" "tp2 2 2 1" "tp4 4 4 1" "pp2 2 1 2" "pp4 4 1 4"
         "dp2tp2 4 2 1" "dp2pp2 4 1 2" "tp2pp2 4 2 2" "dp2tp2pp2 8 2 2")
accum1=("dp2 2 1 1" "tp2 2 2 1" "pp2 2 1 2" "pp4 4 1 4" "dp2tp2pp2 8 2 2")
for accum in 1 4; do
  grid=("${layouts[@]}")
  [ "$accum" = 1 ] && grid=("${accum1[@]}")
  for l in "${grid[@]}"; do
    set -- $l
    dp=$(($2 / ($3 * $4)))
    zeros="0"; [ "$dp" -gt 1 ] && zeros="0 1 2 3"
    for z in $zeros; do check_layout "$1-zero$z-accum$accum" "$2" "$3" "$4" "$z" "$accum"; done
  done
done
# ZeRO 0 all-reduces each layer's gradients during the backward pass by
# default (the runs above); the reduction after the backward pass too.
COMMON+=(--overlap-grad-reduce 0)
check_layout "dp2tp2pp2-zero0-accum4-after-backward" 8 2 2 0 4
check_layout "dp2-zero0-accum1-after-backward" 2 1 1 0 1
check_layout "dp2tp2-zero1-accum4-after-backward" 4 2 1 1 4
# --offload optimizer: on CPU ranks the optimizer state is host memory
# already, so the option is accepted and changes nothing (the GPU suite runs it).
COMMON+=(--overlap-grad-reduce 1 --offload optimizer)
check_layout "dp2tp2pp2-zero3-accum4-offload" 8 2 2 3 4
# ZeRO-3 gathers each layer's weights again for its recomputed forward pass.
COMMON+=(--recompute full)
check_layout "dp2tp2-zero3-accum1-recompute-full" 4 2 1 3 1
COMMON+=(--recompute selective)
check_layout "dp2pp2-zero2-accum4-recompute-selective" 4 1 2 2 4

# Sequence parallelism (--sp): norms, residual adds and the embedding's output
# on each TP rank's share of the rows, with the pipeline, ZeRO and recomputation.
COMMON=("${BASE[@]}" --sp)
check_layout "tp2-sp-accum4" 2 2 1 0 4
check_layout "tp4-sp-accum1" 4 4 1 0 1
check_layout "dp2tp2-sp-zero2-accum4" 4 2 1 2 4
check_layout "dp2tp2-sp-zero3-accum1" 4 2 1 3 1
check_layout "tp2pp2-sp-accum4" 4 2 2 0 4
check_layout "dp2tp2pp2-sp-zero1-accum4" 8 2 2 1 4
COMMON+=(--recompute full)
check_layout "tp2pp2-sp-accum4-recompute-full" 4 2 2 0 4
COMMON+=(--recompute selective)
check_layout "dp2tp2-sp-zero2-accum1-recompute-selective" 4 2 1 2 1

# Interleaved 1F1B (--vpp 2): each pipeline rank holds two model chunks of one
# layer each, with ZeRO, TP and SP, and recomputation.
COMMON=("${BASE[@]}" --vpp 2)
check_layout "pp2-vpp2-accum4" 2 1 2 0 4
check_layout "dp2pp2-vpp2-zero1-accum4" 4 1 2 1 4
check_layout "dp2pp2-vpp2-zero3-accum4" 4 1 2 3 4
check_layout "dp2tp2pp2-vpp2-sp-zero2-accum4" 8 2 2 2 4 --sp
COMMON+=(--recompute full)
check_layout "pp2-vpp2-accum4-recompute-full" 2 1 2 0 4
COMMON+=(--recompute selective)
check_layout "tp2pp2-vpp2-accum4-recompute-selective" 4 2 2 0 4

# Context parallelism (--cp): each sequence split over the CP ranks, ring
# attention between them; the ranks of a (TP, PP) place (data- and
# context-parallel) sum gradients and share ZeRO's shards.
COMMON=("${BASE[@]}" --cp 2)
check_layout "cp2-accum4" 2 1 1 0 4
check_layout "cp2-zero3-accum1" 2 1 1 3 1
check_layout "dp2cp2-zero2-accum4" 4 1 1 2 4
check_layout "tp2cp2-sp-accum4-recompute-full" 4 2 1 0 4 --sp --recompute full
check_layout "cp2pp2-vpp2-zero0-accum4-recompute-selective" 4 1 2 0 4 --vpp 2 --recompute selective
COMMON=("${BASE[@]}" --cp 4)
check_layout "cp4-accum1" 4 1 1 0 1

# A vocabulary TP does not divide (padded to 252 on tp4) and a hand-made
# uneven pipeline split, on synthetic tokens.
layout_model "$TMP/v250.model" 4
COMMON=(-c "$TMP/v250.model" --bench -l 32 --steps 10 --lr 1e-3 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref-v250" 1 1 1 0 4 || fail "vocab-250 reference" "$(tail -n 3 "$TMP/ref-v250.out")"
cp "$TMP/ref-v250.jsonl" "$TMP/ref4.jsonl"; rm -rf "$TMP/ref4.hf"; cp -r "$TMP/ref-v250.hf" "$TMP/ref4.hf"
check_layout "vocab250-tp4-padded" 4 4 1 0 4
COMMON+=(--sp)
check_layout "vocab250-tp4-padded-sp" 4 4 1 0 4
unset 'COMMON[${#COMMON[@]}-1]'
COMMON+=(--pp-layers 1,3)
check_layout "vocab250-pp2-layers-1-3" 2 1 2 0 4

# Eight layers: interleaved 1F1B on four stages (eight chunks), and chunks of
# uneven sizes by hand (model order: stage 0, 1, 0, 1).  At lr 1e-3 Adam makes
# the reduction-order noise of dp2 × pp4 ZeRO-2 1.3e-5 of the weights, with or
# without --vpp (the two runs agree to every digit); at 3e-4, 4e-6.
layout_model "$TMP/l8.model" 8
COMMON=(-c "$TMP/l8.model" --bench -l 32 --steps 10 --lr 3e-4 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref-l8" 1 1 1 0 4 || fail "8-layer reference" "$(tail -n 3 "$TMP/ref-l8.out")"
cp "$TMP/ref-l8.jsonl" "$TMP/ref4.jsonl"; rm -rf "$TMP/ref4.hf"; cp -r "$TMP/ref-l8.hf" "$TMP/ref4.hf"
COMMON+=(--vpp 2)
check_layout "l8-pp4-vpp2" 4 1 4 0 4
check_layout "l8-dp2pp4-vpp2-zero2" 8 1 4 2 4
check_layout "l8-pp2-vpp2-layers-1-3-2-2" 2 1 2 0 4 --pp-layers 1,3,2,2

# An odd ring: on three stages the pipeline's links are built in three rounds
# (src/parallel/grid.c), and the link from the last stage back to the first
# carries the second chunk's input.  12 sequences a step, 3 micro-batches.
layout_model "$TMP/l6.model" 6
GLOBAL=12
COMMON=(-c "$TMP/l6.model" --bench -l 32 --steps 10 --lr 3e-4 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref3" 1 1 1 0 3 || fail "6-layer reference" "$(tail -n 3 "$TMP/ref3.out")"
COMMON+=(--vpp 2)
check_layout "l6-pp3-vpp2" 3 1 3 0 3
GLOBAL=16

# Tied embeddings larger than a layer, 3 layers, under ZeRO-3: the embedding
# and the head it serves are in use at once, the larger one in the larger
# gathered-weight buffer whichever buffer the last layer left the head in.
sed -e 's/^vocab_size = 250/vocab_size = 2000/' -e 's/^n_layers = 4/n_layers = 3/' "$TMP/v250.model" >"$TMP/tied3.model"
echo "tie_embeddings = true" >>"$TMP/tied3.model"
COMMON=(-c "$TMP/tied3.model" --bench -l 32 --steps 10 --lr 1e-3 --warmup-steps 2 --seed 7 --peak-tflops 1)
run "ref-tied3" 1 1 1 0 4 || fail "tied 3-layer reference" "$(tail -n 3 "$TMP/ref-tied3.out")"
cp "$TMP/ref-tied3.jsonl" "$TMP/ref4.jsonl"; rm -rf "$TMP/ref4.hf"; cp -r "$TMP/ref-tied3.hf" "$TMP/ref4.hf"
check_layout "tied-vocab2000-3-layers-dp2-zero3" 2 1 1 3 4

# Starting from Hugging Face weights (each rank reads its own slices): the
# transformers golden model (6 heads, 2 KV heads, vocab 97) on tp2 × pp2.
COMMON=(--init-hf "$ROOT/validation/golden/llama-tiny" --bench -l 32 --steps 10 --lr 1e-3 --seed 7 --peak-tflops 1)
run "ref-hf" 1 1 1 0 4 || fail "init-hf reference" "$(tail -n 3 "$TMP/ref-hf.out")"
cp "$TMP/ref-hf.jsonl" "$TMP/ref4.jsonl"; rm -rf "$TMP/ref4.hf"; cp -r "$TMP/ref-hf.hf" "$TMP/ref4.hf"
check_layout "init-hf-tp2pp2" 4 2 2 0 4
check_layout "init-hf-dp2pp2-zero3" 4 1 2 3 4

# Tied embeddings (transformers' tied golden: 4 layers, vocab 99, padded to 100
# on tp2): the first and the last stage each hold the one tensor and sum their
# gradients (Megatron's embedding group) after the data-parallel reduction,
# under every ZeRO stage; pp4 has middle stages without it.
COMMON=(--init-hf "$ROOT/validation/golden/llama-tiny-tied" --bench -l 32 --steps 10 --lr 1e-3 --seed 7 --peak-tflops 1)
run "ref-tied" 1 1 1 0 4 || fail "tied reference" "$(tail -n 3 "$TMP/ref-tied.out")"
cp "$TMP/ref-tied.jsonl" "$TMP/ref4.jsonl"; rm -rf "$TMP/ref4.hf"; cp -r "$TMP/ref-tied.hf" "$TMP/ref4.hf"
for l in "tp2 2 2 1 0" "pp2 2 1 2 0" "pp4 4 1 4 0" "dp2-zero1 2 1 1 1" "tp2pp2 4 2 2 0" \
         "dp2pp2-zero0 4 1 2 0" "dp2pp2-zero1 4 1 2 1" "dp2pp2-zero2 4 1 2 2" \
         "dp2pp2-zero3 4 1 2 3" "dp2-zero2 2 1 1 2" "dp2-zero3 2 1 1 3"; do
  set -- $l
  check_layout "tied-$1" "$2" "$3" "$4" "$5" 4
done
check_layout "tied-pp2-vpp2" 2 1 2 0 4 --vpp 2
COMMON+=(--sp)
check_layout "tied-tp2-sp" 2 2 1 0 4
check_layout "tied-tp2pp2-sp" 4 2 2 0 4

# Greedy sampling with the vocabulary split over TP ranks (each rank's argmax,
# then the best of them): the random model transformers wrote for the HF round
# trip (large weights: varied, far-apart logits) continues a prompt with the
# same bytes on tp2, tp4 and tp2 × pp2 as on one rank.
sample() {
  local name=$1 np=$2; shift 2
  timeout 300 "${MPIRUN[@]}" -np "$np" "$BIN/llama-train" --init-hf "$ROOT/validation/golden/hf-roundtrip-init" \
    -d "$DATA" -l 32 -b 4 --steps 1 --lr 1e-9 --seed 1 --sample-tokens 24 --sample-prompt "The " \
    --tokenizer bytes "$@" >"$TMP/$name.out" 2>&1 || return 1
  grep -a -A1 '^sample (greedy, 24 new tokens)' "$TMP/$name.out" | tail -n 1 | od -An -tx1 | tr -d ' \n'
}
if want=$(sample sample-1 1) && [ ${#want} -ge 40 ]; then
  for layout in "tp2 2 --tp 2" "tp4 4 --tp 4" "tp2pp2 4 --tp 2 --pp 2" "tp2sp 2 --tp 2 --sp" "pp2vpp2 2 --pp 2 --vpp 2 --grad-accum 2"; do
    set -- $layout
    name=$1 np=$2; shift 2
    if got=$(sample "sample-$name" "$np" "$@") && [ "$got" = "$want" ]; then
      pass "greedy sample on $name equals one rank's ($want)"
    else fail "greedy sample on $name" "got '$got', one rank '$want': $(tail -n 2 "$TMP/sample-$name.out")"; fi
  done
else
  fail "greedy sample on one rank" "no 24-token sample: '$want' $(tail -n 2 "$TMP/sample-1.out")"
fi
finish
