#!/usr/bin/env bash
# The checkpoint folder's rules end to end (issue 11): rolling back to an older
# checkpoint moves the newer ones aside and loses nothing (case 1); pruning
# keeps the checkpoint just written, the one loaded and a live run's .tmp;
# import-hf refuses a run's folder (case 3); one live run per --save-dir (the
# lock), a dead run's lock is taken over; a run without -o or -i stopped by a
# signal saves nothing and leaves the default folder of another run alone; a
# replacement of a checkpoint killed between its renames loses nothing; a
# --save-dir the ranks do not share is refused at the start, and a collective
# file create in a folder some rank lacks fails on every rank (no hang).
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
DATA=$TMP/data
make_byte_shards "$DATA"
HOST=$(uname -n)
# A constant learning rate: every run computes the same loss at a given step,
# whatever its --steps, so runs of different lengths can be compared.
D=(-c tiny -d "$DATA" -l 32 -b 4 --seed 1 --lr 3e-3 --warmup-steps 0 --min-lr-ratio 1 --peak-tflops 1)
step_loss() { grep -o "\"step\": $2, \"loss\": [^,]*" "$1" | awk '{print $4}'; }
first_step() { grep -o '"step": [0-9]*, "loss"' "$1" | head -1 | grep -o '[0-9]*'; }
listing() { (cd "$1" && find . | sort && cat latest); }

# ---- case 1: a run resumed from an older checkpoint ----
CK=$TMP/ck
"$T" "${D[@]}" --steps 6 -i 2 -o "$CK" --keep-checkpoints 3 --log "$TMP/ref.jsonl" >"$TMP/r1.out" 2>&1 ||
  fail "rollback: the first run" "$(tail -3 "$TMP/r1.out")"
"$T" "${D[@]}" --steps 3 -i 1 -o "$CK" --keep-checkpoints 2 --load "$CK/step_0000002" \
  --log "$TMP/back.jsonl" >"$TMP/r2.out" 2>&1
rc=$?
moved=$(grep -c "step_0000004, step_0000006 in $CK belong to an abandoned run: moved aside" "$TMP/r2.out")
abandoned=$(ls -d "$CK"/abandoned_step_0000004_* "$CK"/abandoned_step_0000006_* 2>/dev/null | wc -l)
if [ $rc -ne 0 ]; then fail "rollback to step 2" "exit $rc: $(tail -3 "$TMP/r2.out")"
elif [ "$moved" != 1 ] || [ "$abandoned" != 2 ]; then
  fail "rollback to step 2" "notice lines $moved, abandoned folders $abandoned: $(ls "$CK")"
elif [ "$(cat "$CK/latest")" != step_0000003 ] || [ ! -d "$CK/step_0000003" ] || [ ! -d "$CK/step_0000002" ] ||
     [ -e "$CK/step_0000004" ] || [ -e "$CK/step_0000006" ]; then
  fail "rollback to step 2" "latest '$(cat "$CK/latest")', folders: $(ls "$CK" | tr '\n' ' ')"
elif [ "$(step_loss "$TMP/back.jsonl" 3)" != "$(step_loss "$TMP/ref.jsonl" 3)" ]; then
  fail "rollback to step 2" "step 3 loss $(step_loss "$TMP/back.jsonl" 3), first run $(step_loss "$TMP/ref.jsonl" 3)"
elif ! why=$("$BIN/llama-ckpt" info "$CK"/abandoned_step_0000006_* 2>&1 >/dev/null); then
  fail "rollback to step 2" "the abandoned step 6 does not verify: $why"
else
  pass "rollback to step 2, keep 2: step 3 saved and kept, latest names it, steps 4 and 6 moved aside (kept, verifiable), one notice"
fi

# ---- case 3: import-hf into a run's folder ----
before=$(listing "$CK")
expect_error "import-hf into a non-empty folder is refused" "import-hf: '$CK' is not an empty folder" \
  "$BIN/llama-ckpt" import-hf "$ROOT/validation/golden/llama-tiny" "$CK"
[ "$before" = "$(listing "$CK")" ] && pass "import-hf refused: the run's folder is unchanged" ||
  fail "import-hf refused" "the folder changed: $(diff <(echo "$before") <(listing "$CK") | head -5)"
mkdir "$TMP/empty"
if "$BIN/llama-ckpt" import-hf "$ROOT/validation/golden/llama-tiny" "$TMP/empty" >"$TMP/imp.out" 2>&1 &&
   "$BIN/llama-ckpt" import-hf "$ROOT/validation/golden/llama-tiny" "$TMP/new/hf" >>"$TMP/imp.out" 2>&1 &&
   "$BIN/llama-ckpt" info "$TMP/new/hf/step_0000000" >>"$TMP/imp.out" 2>&1 && [ ! -e "$TMP/new/hf/lock" ]; then
  pass "import-hf into an empty and into a new folder: a verifiable step-0 checkpoint, no lock left"
else fail "import-hf into an empty or new folder" "$(tail -3 "$TMP/imp.out")"; fi
# The folder is made before the model is read (minutes for a large one), not after: a
# folder that cannot be made is the error even where the model would fail later.
mkdir -p "$TMP/badhf" && cp "$ROOT/validation/golden/llama-tiny/config.json" "$TMP/badhf/"
head -c 1000 "$ROOT/validation/golden/llama-tiny/model.safetensors" >"$TMP/badhf/model.safetensors"
touch "$TMP/afile"
expect_error "import-hf into a path under a file: refused before the model is read" \
  "cannot create folder '$TMP/afile/ck': '$TMP/afile' is a file, not a folder" "$BIN/llama-ckpt" import-hf "$TMP/badhf" "$TMP/afile/ck"

# --load auto continues from what the resumed run saved last, not the abandoned step 6.
"$T" "${D[@]}" --steps 5 -i 1 -o "$CK" -f auto --log "$TMP/fwd.jsonl" >"$TMP/r3.out" 2>&1
first=$(first_step "$TMP/fwd.jsonl")
if [ "$first" = 4 ] && [ "$(step_loss "$TMP/fwd.jsonl" 4)" = "$(step_loss "$TMP/ref.jsonl" 4)" ] &&
   [ "$(step_loss "$TMP/fwd.jsonl" 5)" = "$(step_loss "$TMP/ref.jsonl" 5)" ]; then
  pass "--load auto after the rollback resumes step 3: steps 4-5 equal the first run's to the last bit"
else fail "--load auto after the rollback" "first step '$first': $(grep -h "loaded checkpoint" "$TMP/r3.out")"; fi

# ---- pruning with --keep-checkpoints 1 ----
P=$TMP/prune
"$T" "${D[@]}" --steps 3 -i 1 -o "$P" >"$TMP/p1.out" 2>&1 || fail "pruning: first run" "$(tail -3 "$TMP/p1.out")"
bash -c 'exit 0' & dead=$!; wait $dead
mkdir "$P/step_0000009.tmp" "$P/step_0000008.tmp" "$P/step_0000007.tmp"
printf 'host %s\npid %s\n' "$HOST" $$ >"$P/step_0000009.tmp/owner"          # this script: alive
printf 'host %s\npid %s\n' "$HOST" $dead >"$P/step_0000008.tmp/owner"       # gone
printf 'host %s\npid %s\n' other-host.example 1 >"$P/step_0000007.tmp/owner" # cannot be checked,
# but the run that prunes holds the folder's lock: no other run writes there
"$T" "${D[@]}" --steps 5 -i 1 -o "$P" --keep-checkpoints 1 -f "$P/step_0000002" >"$TMP/p2.out" 2>&1
rc=$?
have=$(cd "$P" && ls -d step_* | tr '\n' ' ')
if [ $rc -eq 0 ] && [ "$have" = "step_0000002 step_0000005 step_0000009.tmp " ] &&
   [ "$(cat "$P/latest")" = step_0000005 ]; then
  pass "keep 1: the checkpoint just written and the one loaded stay, a live process's .tmp stays, a dead one's and another host's go"
else fail "pruning with keep 1" "exit $rc, folders: $have, latest $(cat "$P/latest")"; fi

# ---- one run per --save-dir ----
L=$TMP/lock
"${MPIRUN[@]}" -np 2 "$T" -c tiny --bench -l 16 -b 2 --steps 1000000 -i 5 -o "$L" --peak-tflops 1 \
  >"$TMP/a.out" 2>&1 &
apid=$!
if wait_for "saved checkpoint" "$TMP/a.out" 120; then
  owner=$(awk '$1 == "pid" {print $2}' "$L/lock")
  expect_error "lock: a second run with --load auto is refused, naming the first's host and pid" \
    "is in use by another run: pid $owner on host $HOST" "$T" -c tiny --bench -l 16 --steps 3 -i 1 -o "$L" -f auto
  expect_error "lock: a second run that only saves is refused" "is in use by another run: pid $owner" \
    "$T" -c tiny --bench -l 16 --steps 2 -i 1 -o "$L"
  [ -z "$(ls -d "$L"/step_0000001* "$L"/step_0000002* "$L"/step_0000003* 2>/dev/null)" ] &&
    pass "lock: the refused runs wrote nothing" || fail "lock" "a refused run saved: $(ls "$L")"
  make_byte_shards "$TMP/evdata"
  if "$T" -c tiny -d "$TMP/evdata" -l 16 -b 2 --eval-only -f auto -o "$L" --eval-steps 1 >"$TMP/ev.out" 2>&1 &&
     grep -q "^eval loss" "$TMP/ev.out"; then
    pass "lock: --eval-only --load auto reads the live run's newest checkpoint without its lock"
  else fail "--eval-only --load auto on a live run's folder" "$(tail -n 2 "$TMP/ev.out")"; fi
  kill -TERM $(pgrep -f "^$T .*-o $L") 2>/dev/null
  wait $apid; rc=$?
  [ $rc -eq 0 ] && [ ! -e "$L/lock" ] && pass "lock: released when its run ends" ||
    fail "lock release" "exit $rc; lock: $(cat "$L/lock" 2>&1)"
else
  kill -9 $apid 2>/dev/null; fail "lock" "the first run did not save: $(tail -3 "$TMP/a.out")"
fi
L2=$TMP/lock2
mkdir "$L2"
bash -c 'exit 0' & dead=$!; wait $dead
printf 'host %s\npid %s\nsince 2026-01-01T00:00:00\n' "$HOST" $dead >"$L2/lock"
if "$T" -c tiny --bench -l 16 --steps 1 -i 1 -o "$L2" -f auto >"$TMP/c.out" 2>&1 &&
   grep -q "took over the lock of '$L2' left by pid $dead on host $HOST (since 2026-01-01T00:00:00), which is no longer running" "$TMP/c.out" &&
   [ -d "$L2/step_0000001" ] && [ ! -e "$L2/lock" ]; then
  pass "lock: a dead run's lock is taken over with a notice"
else fail "lock takeover" "$(grep -i "lock\|error" "$TMP/c.out" | head -3)"; fi
printf 'host %s\npid %s\n' other-host.example 4242 >"$L/lock"
expect_error "lock: another host's run is refused (it cannot be checked)" \
  "in use by another run: pid 4242 on host other-host.example .*cannot check" "$T" -c tiny --bench -l 16 --steps 1 -i 1 -o "$L"

# ---- a run that asked for no checkpoints, stopped by SIGTERM (a plain `timeout`) ----
# in a folder whose ./checkpoints (the default -o) holds another run's, preempted
W=$TMP/cwd
mkdir -p "$W"
(cd "$W" && "$T" -c tiny --bench -l 16 --steps 4 -i 2 >"$TMP/w1.out" 2>&1) ||
  fail "default folder: the other run" "$(tail -3 "$TMP/w1.out")"
echo "step 4" >"$W/checkpoints/preempted"   # as a job script requeued on it would see it
before=$(listing "$W/checkpoints"; cat "$W/checkpoints/preempted")
(cd "$W" && exec "$T" -c tiny --bench -l 16 --steps 100000000 >"$TMP/w2.out" 2>&1) & wpid=$!
if wait_for "^step 2/" "$TMP/w2.out" 120; then
  kill -TERM $(pgrep -f "^$T -c tiny --bench -l 16 --steps 100000000$") 2>/dev/null
  wait $wpid; rc=$?
  after=$(listing "$W/checkpoints"; cat "$W/checkpoints/preempted")
  if [ $rc -eq 143 ] && grep -q "stopped at step [0-9]* by a signal; nothing saved" "$TMP/w2.out" &&
     [ "$before" = "$after" ] && [ "$(ls "$W")" = checkpoints ]; then
    pass "SIGTERM to a run without -o or -i: exit 143, nothing saved, ./checkpoints of another run untouched"
  else fail "SIGTERM without -o" "exit $rc; $(tail -2 "$TMP/w2.out"); folder changed: $(diff <(echo "$before") <(echo "$after") | head -4)"; fi
else
  kill -9 $wpid 2>/dev/null; fail "SIGTERM without -o" "the run did not start: $(tail -3 "$TMP/w2.out")"
fi

# ---- a signal during start-up stops the run before its first step ----
# (LLAMA_TEST_SIGNAL_AT_START=1: rank 1 sends itself SIGTERM as start-up begins)
S=$TMP/startsig
sig_run() { LLAMA_TEST_SIGNAL_AT_START=1 "${MPIRUN[@]}" -x LLAMA_TEST_SIGNAL_AT_START -np 2 "$T" "${D[@]}" "$@"; }
"$T" "${D[@]}" --steps 2 -o "$S" >"$TMP/s0.out" 2>&1 || fail "start-up signal: the first run" "$(tail -3 "$TMP/s0.out")"
sig_run --steps 4 -o "$S" -f auto --log "$TMP/s1.jsonl" >"$TMP/s1.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "stopped at step 2 by a signal; resume with --load auto" "$TMP/s1.out" &&
   grep -q "received SIGTERM: exiting" "$TMP/s1.out" && ! grep -q "sav" "$TMP/s1.out" && [ ! -s "$TMP/s1.jsonl" ] &&
   [ "$(cat "$S/preempted" 2>/dev/null)" ] && [ "$(ls "$S" | tr '\n' ' ')" = "latest preempted step_0000002 " ]; then
  pass "start-up signal after --load auto: no step, no second save of the loaded checkpoint, preempted, exit 0"
else fail "start-up signal, --load auto" "exit $rc, folder: $(ls "$S" | tr '\n' ' '); $(grep -i "signal\|saved\|rror" "$TMP/s1.out" | head -3)"; fi
sig_run --steps 4 --load "$S/step_0000002" -o "$TMP/startsig2" >"$TMP/s2.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(cat "$TMP/startsig2/latest" 2>/dev/null)" = step_0000002 ] && [ -e "$TMP/startsig2/preempted" ]; then
  pass "start-up signal after --load of another folder: the loaded step saved into -o (a requeue resumes there)"
else fail "start-up signal, --load elsewhere" "exit $rc: $(ls "$TMP/startsig2" 2>&1 | tr '\n' ' '); $(tail -2 "$TMP/s2.out")"; fi
sig_run --steps 4 -o "$TMP/startsig3" >"$TMP/s3.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && grep -q "stopped at step 0 by a signal" "$TMP/s3.out" &&
   [ "$(ls "$TMP/startsig3" | tr '\n' ' ')" = "preempted " ]; then
  pass "start-up signal in a fresh run: nothing to save, preempted, exit 0"
else fail "start-up signal, fresh run" "exit $rc: $(ls "$TMP/startsig3" 2>&1 | tr '\n' ' '); $(tail -2 "$TMP/s3.out")"; fi
sig_run --steps 4 >"$TMP/s4.out" 2>&1; rc=$?
[ $rc -eq 143 ] && grep -q "stopped at step 0 by a signal, before training; nothing saved" "$TMP/s4.out" &&
  pass "start-up signal without -o: exit 143, nothing saved" ||
  fail "start-up signal without -o" "exit $rc: $(tail -2 "$TMP/s4.out")"

# ---- -o without -i: a save at the end (Megatron's --save); a 400-character path ----
LONG=$TMP/$(printf 'd%.0s' $(seq 60))/$(printf 'e%.0s' $(seq 60))/$(printf 'f%.0s' $(seq 60))
LONG=$LONG/$(printf 'g%.0s' $(seq 60))/$(printf 'h%.0s' $(seq 60))/$(printf 'i%.0s' $(seq 60))/ck
if "$T" -c tiny --bench -l 16 --steps 3 -o "$LONG" >"$TMP/long.out" 2>&1 &&
   [ -d "$LONG/step_0000003" ] && [ "$(cat "$LONG/latest")" = step_0000003 ]; then
  pass "-o without -i saves the final step; a ${#LONG}-character --save-dir works (Open MPI's lockedfile overflowed at ~215)"
else fail "-o without -i, long path" "$(grep -E "error|overflow|saved" "$TMP/long.out" | head -3)"; fi

# ---- a folder named 'latest' in --save-dir: refused at the start, not at the first save ----
mkdir -p "$TMP/lat/latest"
expect_error "a folder named latest in --save-dir: refused at the start" \
  "'$TMP/lat/latest' is a folder, not a file: this run writes that name" \
  "$T" -c tiny --bench -l 16 --steps 100 -i 50 -o "$TMP/lat"
[ -z "$(ls "$TMP/lat" | grep -v '^latest$')" ] && pass "a folder named latest: nothing written beside it" ||
  fail "a folder named latest" "written: $(ls "$TMP/lat")"

# ---- a file named step_N; --load of a save folder, of a .tmp; --steps already reached ----
mkdir -p "$TMP/sf" && echo x >"$TMP/sf/step_0000004"
expect_error "a file named step_0000004 in --save-dir: refused at the start" \
  "'$TMP/sf/step_0000004' is a file, not a checkpoint folder" "$T" -c tiny --bench -l 16 --steps 6 -i 2 -o "$TMP/sf"
"$T" -c tiny --bench -l 16 --steps 2 -o "$TMP/ld" >/dev/null 2>&1
expect_error "--load of a --save-dir: says how to load its checkpoints" \
  "--load $TMP/ld holds no checkpoint.h5: a --save-dir\? give --load auto --save-dir it" \
  "$T" -c tiny --bench -l 16 --steps 4 --load "$TMP/ld"
cp -r "$TMP/ld/step_0000002" "$TMP/ld/step_0000003.tmp"
expect_error "--load of an unfinished save (.tmp): refused" "--load $TMP/ld/step_0000003.tmp is an unfinished save" \
  "$T" -c tiny --bench -l 16 --steps 4 --load "$TMP/ld/step_0000003.tmp"
expect_error "--load of an unfinished save given with a trailing /: refused" \
  "--load $TMP/ld/step_0000003.tmp/ is an unfinished save" \
  "$T" -c tiny --bench -l 16 --steps 4 --load "$TMP/ld/step_0000003.tmp/"
out=$("$BIN/llama-ckpt" info "$TMP/ld/step_0000003.tmp" 2>&1)
grep -q "note: .*step_0000003.tmp is the folder of a save that did not finish" <<<"$out" &&
  pass "llama-ckpt info of an unfinished save (.tmp) says so" || fail "info of a .tmp folder" "$(tail -n 3 <<<"$out")"
truncate -s 5000 "$TMP/ld/step_0000003.tmp/checkpoint.h5"   # killed while writing it
expect_error "llama-ckpt info of a killed save's .tmp: what the folder is" \
  "cannot open checkpoint file '$TMP/ld/step_0000003.tmp/checkpoint.h5': .*; it is the folder of a save that did not finish" \
  "$BIN/llama-ckpt" info "$TMP/ld/step_0000003.tmp/"
rm -rf "$TMP/ld/step_0000003.tmp"
# A step_N folder that is no checkpoint (an export saved under that name, a copy
# stopped early) is passed over by --load auto, and kept aside, not replaced, by
# the save of its step.
mkdir -p "$TMP/ld/step_0000004" && echo "mine" >"$TMP/ld/step_0000004/notes.txt"
if out=$("$T" -c tiny --bench -l 16 --steps 4 -i 2 -o "$TMP/ld" --load auto 2>&1) &&
   grep -q "loaded checkpoint $TMP/ld/step_0000002" <<<"$out" &&
   [ "$(cat "$TMP"/ld/abandoned_step_0000004_*/notes.txt 2>/dev/null)" = mine ] &&
   [ -f "$TMP/ld/step_0000004/checkpoint.h5" ]; then
  pass "a step_N folder without a checkpoint: passed over by --load auto, kept aside by the save"
else fail "a step_N folder without a checkpoint" "$(ls "$TMP/ld" | tr '\n' ' '); $(grep -i "error\|loaded" <<<"$out")"; fi
if out=$("$T" -c tiny --bench -l 16 --steps 1 --load "$TMP/ld/step_0000002" 2>&1) &&
   grep -q "note: the run is at step 2, already at or past its 1 steps: nothing to train" <<<"$out" &&
   ! grep -q "^step " <<<"$out"; then
  pass "--steps at or below the loaded step: a note, nothing trained"
else fail "--steps below the loaded step" "$(tail -2 <<<"$out")"; fi
if out=$("$T" -c tiny --bench -l 16 --steps 3 --load "$TMP/ld/step_0000002" 2>&1) &&
   grep -q "note: this run continues a checkpoint but saves none" <<<"$out" &&
   ! "$T" -c tiny --bench -l 16 --steps 3 --load "$TMP/ld/step_0000002" -o "$TMP/ld2" 2>&1 | grep -q "saves none"; then
  pass "--load without -o or -i: a note that the run saves nothing (none with -o)"
else fail "--load without -o" "$(tail -3 <<<"$out")"; fi

# llama-ckpt given a --save-dir or a checkpoint.h5 file says what to give instead.
expect_error "llama-ckpt info of a --save-dir" "$TMP/ld is a checkpoint folder \(--save-dir\), not a checkpoint: give one of its step_N folders \(the newest complete: $TMP/ld/step_" \
  "$BIN/llama-ckpt" info "$TMP/ld"
expect_error "llama-ckpt info of a checkpoint.h5" "$TMP/ld/step_0000002/checkpoint.h5 is a file: give the checkpoint folder that holds it" \
  "$BIN/llama-ckpt" info "$TMP/ld/step_0000002/checkpoint.h5"

# ---- latest left behind by a save stopped between its rename and latest's update ----
LB=$TMP/behind
"$T" -c tiny --bench -l 16 --steps 6 -i 3 -o "$LB" >"$TMP/lb1.out" 2>&1 || fail "latest behind: the first run" "$(tail -2 "$TMP/lb1.out")"
echo step_0000003 >"$LB/latest"
if "$T" -c tiny --bench -l 16 --steps 7 -o "$LB" -f auto >"$TMP/lb2.out" 2>&1 &&
   grep -q "note: $LB/latest names step_0000003, but step_0000006 is a newer complete checkpoint" "$TMP/lb2.out" &&
   grep -q "loaded checkpoint $LB/step_0000006 at step 6" "$TMP/lb2.out" && [ -z "$(ls -d "$LB"/abandoned_* 2>/dev/null)" ] &&
   [ "$(cat "$LB/latest")" = step_0000007 ]; then
  pass "--load auto with latest behind a newer complete checkpoint: the newer one, a note, nothing abandoned"
else fail "latest behind" "$(ls "$LB" | tr '\n' ' '); $(grep -iE "note|loaded|abandon" "$TMP/lb2.out" | head -3)"; fi

# ---- a save that replaced step_N, killed between its two renames ----
# A stop right after a rollback saves its step again: the old step_N is renamed to
# step_N.replaced, then the new step_N.tmp to step_N.  Killed in between, the folder holds
# step_0000006.replaced and an unfinished step_0000006.tmp, no step_0000006: the newest
# checkpoint must not be lost (--load auto resuming from step 3), and a reader lists it.
RP=$TMP/replaced
"$T" -c tiny --bench -l 16 --steps 6 -i 3 -o "$RP" >"$TMP/rp1.out" 2>&1 || fail "replaced: the first run" "$(tail -2 "$TMP/rp1.out")"
mv "$RP/step_0000006" "$RP/step_0000006.replaced"
cp -r "$RP/step_0000006.replaced" "$RP/step_0000006.tmp" && truncate -s 4096 "$RP/step_0000006.tmp/checkpoint.h5"
listed=$("$BIN/llama-ckpt" info "$RP" 2>&1)
if "$T" -c tiny --bench -l 16 --steps 7 -o "$RP" -f auto >"$TMP/rp2.out" 2>&1 &&
   grep -q "restored $RP/step_0000006 from step_0000006.replaced: a save that replaced it was interrupted" "$TMP/rp2.out" &&
   grep -q "loaded checkpoint $RP/step_0000006 at step 6" "$TMP/rp2.out" &&
   grep -q "the newest complete: $RP/step_0000006.replaced" <<<"$listed" &&
   [ ! -e "$RP/step_0000006.replaced" ] && [ ! -e "$RP/step_0000006.tmp" ] &&
   "$BIN/llama-ckpt" info "$RP/step_0000006" >/dev/null 2>&1; then
  pass "a replacement of step 6 killed between its renames: llama-ckpt lists step_0000006.replaced, --load auto restores step 6 (a note) and resumes from it"
else fail "a replacement killed between its renames" "$(ls "$RP" | tr '\n' ' '); $(grep -iE "restored|loaded|error" "$TMP/rp2.out" | head -3); llama-ckpt: $listed"; fi

# ---- a --save-dir the ranks do not share (each node's own disk) ----
# mpirun -wdir gives each rank its own working folder; -o is relative.
mkdir -p "$TMP/node0" "$TMP/node1"
R=(-c tiny --bench -l 16 --steps 2 -i 1 -o ck --hang-timeout 120)
expect_error "a --save-dir the ranks do not share: refused at the start, naming the rank" \
  "--save-dir ck: rank 1 \(host $(hostname)\) does not see the file rank 0 \(host $(hostname)\) wrote there \(ck/.shared-probe-[0-9]*: no such file\): checkpoints need a folder that every rank shares" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/node0" "$T" "${R[@]}" : -np 1 -wdir "$TMP/node1" "$T" "${R[@]}"
[ -z "$(ls -A "$TMP/node0/ck" 2>/dev/null)" ] && [ ! -e "$TMP/node1/ck" ] &&
  pass "a --save-dir the ranks do not share: nothing left behind (lock released)" ||
  fail "unshared --save-dir" "left: $(find "$TMP/node0" "$TMP/node1")"
mkdir -p "$TMP/split/0/x" "$TMP/split/1"
timeout 60 "${MPIRUN[@]}" -np 2 "$BIN/tests/test_checkpoint_bad" --create-split "$TMP/split" >"$TMP/split.out" 2>&1
rc=$?
grep -q "^PASS" "$TMP/split.out" && [ $rc -eq 0 ] && grep "^PASS" "$TMP/split.out" ||
  fail "a collective create in a folder rank 1 lacks" "exit $rc$([ $rc = 124 ] && echo ' (hung)'): $(grep -E "^FAIL|rror" "$TMP/split.out" | head -3)"
finish
