#!/usr/bin/env bash
# Ranks must agree, and token data must be what encode wrote (issue 11,
# cases 8, 9 and 16): two ranks started with different options end with the
# differing option named instead of hanging; a SIGSTOPped rank ends the job
# through the other rank's watchdog (--hang-timeout); two ranks whose dataset folders
# differ (one node's copy lacks a shard) end naming the shard; a token changed
# inside a shard (value still in range) is found by `llama-tokenize verify` on
# 1 and 2 ranks and stops training when its block is read, while the same
# shard unchanged verifies and trains; a FIFO named like a shard (case 18)
# is refused instead of hanging the run.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
TOK=$BIN/llama-tokenize
mkdir -p "$TMP/a"
make_byte_shards "$TMP/a/data"
cp -r "$TMP/a" "$TMP/b"
cp -r "$TMP/a" "$TMP/c"
RUN="-c tiny -d data -l 32 -b 4 --seed 1 --steps 2"

# ---- options ----
expect_error options_differ "the options differ between ranks: rank 1 has 'steps = 3' where rank 0 has 'steps = 2'" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/a" "$T" $RUN : -np 1 -wdir "$TMP/a" "$T" $RUN --steps 3

# ---- datasets: rank 1's copy lacks the validation shard ----
rm "$TMP/b/data/"*.val.h5
expect_error datasets_differ "the datasets differ between ranks: rank 1 has '\(no more lines\)' where rank 0 has 'shard wikipedia_sample.val.h5" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/a" "$T" $RUN : -np 1 -wdir "$TMP/b" "$T" $RUN

# ---- the same data on both: trains ----
if out=$("${MPIRUN[@]}" -np 2 -wdir "$TMP/a" "$T" $RUN 2>&1); then pass same_data_trains
else fail same_data_trains "$(tail -n 3 <<<"$out")"; fi

# ---- a token changed in place (inside /tokens, value still a byte) ----
shard=$TMP/c/data/wikipedia_sample.train.h5
offset=$(h5dump -p -H -d tokens "$shard" | awk '/OFFSET/ {print $2}')
if [ -z "$offset" ]; then fail corrupt_setup "no OFFSET for /tokens in h5dump's output"; finish; fi
printf 'zz' | dd of="$shard" bs=1 seek=$((offset + 2 * 5000)) conv=notrunc status=none   # token 5000 (block 1)
if out=$("$TOK" verify "$TMP/a/data" 2>&1); then pass verify_good
else fail verify_good "$out"; fi
for n in 1 2; do
  out=$("${MPIRUN[@]}" -np $n "$TOK" verify "$TMP/c/data" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q "^DAMAGED .*wikipedia_sample.train.h5" <<<"$out" &&
     grep -q "^ok .*wikipedia_sample.val.h5" <<<"$out" && grep -q "tokens \[4096, 8192) (block 1)" <<<"$out"; then
    pass "verify_finds_damage_${n}_ranks"
  else fail "verify_finds_damage_${n}_ranks" "exit $rc: $out"; fi
done
# A checkpoint given to verify is no damaged shard: said so, exit 1.
"$T" -c tiny --bench -l 16 -b 1 --steps 1 -i 1 -o "$TMP/vck" >/dev/null 2>&1
out=$("$TOK" verify "$TMP/vck/step_0000001/checkpoint.h5" 2>&1); rc=$?
if [ $rc -eq 1 ] && grep -q "^UNREADABLE .*checkpoint.h5" <<<"$out" && grep -q "has no /tokens dataset: not a token shard" <<<"$out" &&
   grep -q "1 path not readable as token shards" <<<"$out" && ! grep -q "damaged" <<<"$out"; then
  pass "verify of a checkpoint: not readable as a token shard, not 'damaged'"
else fail "verify of a checkpoint" "exit $rc: $out"; fi
# One epoch reads every window, so the damaged block too.
expect_error train_stops_at_damage "tokens \[4096, 8192\) \(block 1\) do not match their SHA-256" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/c" "$T" -c tiny -d data -l 32 -b 16 --seed 1 -e 1

# ---- case 16: a stopped rank ends the job through the other's watchdog ----
"${MPIRUN[@]}" -np 2 -wdir "$TMP/a" "$T" -c tiny -d data -l 32 -b 4 --seed 1 --steps 10000000 \
  --hang-timeout 3 --log "$TMP/hang.jsonl" >"$TMP/hang.out" 2>&1 &
pid=$!
if wait_for '"step": 3,' "$TMP/hang.jsonl" 60; then
  rank1=""
  for p in $(pgrep -f "^$T .*$TMP/hang.jsonl"); do
    tr '\0' '\n' </proc/$p/environ 2>/dev/null | grep -qx 'OMPI_COMM_WORLD_RANK=1' && rank1=$p
  done
  t0=$(date +%s)
  kill -STOP $rank1
  # bounded: without a watchdog the job would wait forever
  wait_for "made no progress" "$TMP/hang.out" 60 || kill -9 $(pgrep -f "^$T .*$TMP/hang.jsonl") 2>/dev/null
  wait $pid; rc=$?
  took=$(($(date +%s) - t0))
  kill -9 $rank1 2>/dev/null
  if [ $rc -ne 0 ] && grep -q "rank 0 made no progress for [0-9]* s (--hang-timeout 3) while in a training step at step" "$TMP/hang.out" &&
     [ $took -le 30 ]; then
    pass "a SIGSTOPped rank: rank 0's watchdog ended the job in $took s, naming the step"
  else fail hang_watchdog "exit $rc after $took s: $(grep -v '^step' "$TMP/hang.out" | tail -3)"; fi
else
  kill -9 $pid 2>/dev/null; fail hang_watchdog "the run did not reach step 3"
fi

# ---- case 18: a FIFO named like a shard in the dataset folder ----
mkfifo "$TMP/a/data/x.train.h5"
expect_error fifo_in_dataset "x.train.h5' in the dataset folder is not a regular file" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/a" "$T" $RUN
expect_error fifo_as_dataset "dataset '.*x.train.h5' is a FIFO, neither a shard file nor a folder" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/a" "$T" -c tiny -d data/x.train.h5 -l 32 -b 4 --steps 2
# ---- a step longer than --hang-timeout, of many short micro-batches (and a
# save of many tensors): progress within it, so the watchdog lets it be.  The
# watchdog looks once a second, so only a step longer than the timeout and a
# second more surely meets one of its looks past the timeout ----
out=$("$T" -c tiny --bench -b 2 -l 64 --grad-accum 1000 --steps 1 --hang-timeout 1 --peak-tflops 1 -i 1 \
      -o "$TMP/longstep" 2>&1); rc=$?
secs=$(grep -o '^step 1/1 .*| [0-9.]* s |' <<<"$out" | grep -o '[0-9.]* s |' | cut -d' ' -f1)
if [ $rc -eq 0 ] && [ -d "$TMP/longstep/step_0000001" ] && awk -v s="$secs" 'BEGIN { exit !(s > 2.5) }'; then
  pass "a ${secs} s step of 1000 micro-batches under --hang-timeout 1: beats within the step, no false hang"
elif [ $rc -eq 0 ]; then skip "a step longer than --hang-timeout" "the step took ${secs} s, not more than 2.5 s"
else fail "a step longer than --hang-timeout" "exit $rc: $(grep -E "progress|error" <<<"$out" | head -2)"; fi
finish
