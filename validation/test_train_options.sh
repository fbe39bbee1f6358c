#!/usr/bin/env bash
# llama-train's options beyond training itself: a run deck with the command
# line overriding it, -l 0, --bench with a dataset, --dump-batches (the rows
# each data-parallel rank consumes: DP ranks together see exactly one rank's
# batch), --describe of a 65B layout without allocating it.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
make_byte_shards "$TMP/data"
cat >"$TMP/run.deck" <<D
# a run deck
config = tiny
dataset = $TMP/data
max_length = 16        # '_' and '-' both work
steps = 5
lr = 2e-3
log = $TMP/deck.jsonl
D
if "$T" "$TMP/run.deck" --steps 2 --peak-tflops 1 >"$TMP/deck.out" 2>&1 && [ "$(losses "$TMP/deck.jsonl" | wc -l)" = 2 ] \
   && grep -q '"lr": 0.002' "$TMP/deck.jsonl"; then
  pass "run deck read, the command line overrides it"
else fail "run deck" "$(tail -3 "$TMP/deck.out")"; fi
printf 'steps = 2\nbogus = 1\n' >"$TMP/bad.deck"
expect_error "run deck with an unknown key" "bad.deck:2: unknown option 'bogus'" "$T" "$TMP/bad.deck"

D=(-c tiny -d "$TMP/data" -l 16 --steps 2 --peak-tflops 1)
"$T" "${D[@]}" -b 4 --dump-batches "$TMP/one.bin" >/dev/null 2>&1
"${MPIRUN[@]}" -np 2 "$T" "${D[@]}" -b 2 --dump-batches "$TMP/two.bin" >/dev/null 2>&1
size=$(stat -c %s "$TMP/one.bin" 2>/dev/null || echo 0)
if [ "$size" = $((2 * 4 * 17 * 4)) ] && cmp -s "$TMP/one.bin" \
     <(for s in 0 1; do for r in 0 1; do dd if="$TMP/two.bin.dp$r" bs=$((2 * 17 * 4)) skip=$s count=1 status=none; done; done); then
  pass "--dump-batches: int32 rows of max-length + 1; two DP ranks' rows are one rank's batch"
else fail "--dump-batches" "size $size, or the DP rows differ from the one-rank rows"; fi
# A partial row at the end (a killed run, a full disk) is cut before the next run appends.
cp "$TMP/one.bin" "$TMP/cut.bin" && printf 'xxxxx' >>"$TMP/cut.bin"
"$T" "${D[@]}" -b 4 --dump-batches "$TMP/cut.bin" >"$TMP/cut.out" 2>&1
if [ "$(stat -c %s "$TMP/cut.bin")" = $((2 * size)) ] && cmp -s "$TMP/cut.bin" <(cat "$TMP/one.bin" "$TMP/one.bin") &&
   grep -q "its last 5 bytes were cut" "$TMP/cut.out"; then
  pass "--dump-batches after a partial row: the 5 bytes cut, the next run's rows aligned"
else fail "--dump-batches after a partial row" "size $(stat -c %s "$TMP/cut.bin"), $(grep -i warn "$TMP/cut.out")"; fi

# -l 0 (as a run deck from a checkpoint's options holds it) is the model's max_seq_len.
if "$T" -c tiny -l 0 --describe | grep -q "model FLOPs per token at sequence 256:"; then
  pass "-l 0 is the model's max_seq_len (256 for tiny)"
else fail "-l 0" "--describe does not show sequence 256"; fi
# --bench reads no data, and says so when a dataset is given (a deck's, say).
out=$("$T" -c tiny -l 16 --steps 1 --bench -d "$TMP/no-such-data" --data-mix a=1 --peak-tflops 1 2>&1)
if grep -q "note: --bench trains on synthetic tokens; --dataset and --data-mix are not read" <<<"$out" &&
   grep -q "^bench: " <<<"$out"; then
  pass "--bench with --dataset: a notice, synthetic tokens"
else fail "--bench with --dataset" "$(tail -2 <<<"$out")"; fi

# Resident memory is compared with a tiny model's --describe (the libraries'
# mapped pages); --describe of a GPU run loads no CUDA library either.
/usr/bin/time -f "%M" "$T" -c tiny --describe >/dev/null 2>"$TMP/time0"
kb0=$(tail -1 "$TMP/time0")
out=$(/usr/bin/time -f "%M" "$T" -c 65b --tp 8 --pp 4 --world-size 64 -x bf16 --device cuda -g --zero 1 -b 1 -l 2048 --describe 2>"$TMP/time")
kb=$(tail -1 "$TMP/time")
if grep -q "parameters: 65.3 B total" <<<"$out" && grep -q "memory per rank, stage 3" <<<"$out" && [ $((kb - kb0)) -lt 65536 ]; then
  pass "--describe of 65B on 64 ranks without allocating it (${kb} KiB resident, tiny ${kb0} KiB)"
else fail "--describe" "$out (peak ${kb} KiB, tiny ${kb0} KiB)"; fi

# The pipeline bubble --describe states: (pp - 1)/(m + pp - 1) of the step.
for pm in "4 32" "2 3" "8 8"; do
  set -- $pm
  want=$(awk -v p="$1" -v m="$2" 'BEGIN { printf "%.1f%%", 100 * (p - 1) / (m + p - 1) }')
  line=$("$T" -c 7b --pp "$1" --world-size "$1" --grad-accum "$2" -b 1 -l 2048 --describe 2>&1 | grep "^pipeline:")
  if grep -q "over $2 micro-batches on $1 stages: each stage idles $want of the step" <<<"$line"; then
    pass "--describe: pp $1 with $2 micro-batches idles $want"
  else fail "--describe bubble pp $1, $2 micro-batches" "want $want: '$line'"; fi
done
"$T" -c 7b --describe 2>&1 | grep -q "^pipeline:" && fail "--describe without a pipeline" "states a bubble" ||
  pass "--describe without a pipeline states no bubble"
finish
