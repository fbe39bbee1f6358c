#!/usr/bin/env bash
# A rank killed with SIGKILL in the middle of training ends the whole job
# (within 60 s) instead of leaving the others hanging in a collective.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
"${MPIRUN[@]}" -np 4 "$T" -c tiny --bench -l 64 -b 4 --tp 2 --pp 2 --steps 100000 -o "$TMP/x" \
  --log "$TMP/log.jsonl" >"$TMP/out" 2>&1 &
pid=$!
if wait_for '"step": 3,' "$TMP/log.jsonl" 60; then
  victim=$(pgrep -f "^$T .*$TMP/x" | sed -n 3p)
  start=$(date +%s)
  kill -9 "$victim"
  for _ in $(seq 600); do kill -0 $pid 2>/dev/null || break; sleep 0.1; done
  took=$(($(date +%s) - start))
  left=$(pgrep -f "^$T .*$TMP/x" | wc -l)
  if ! kill -0 $pid 2>/dev/null && [ "$left" -eq 0 ]; then
    pass "killing one of 4 ranks ended the job in ${took} s"
  else
    fail "rank death" "after ${took} s the job still runs ($left ranks left)"
    kill -9 $pid $(pgrep -f "^$T .*$TMP/x") 2>/dev/null
  fi
else
  fail "rank death" "the run never reached step 3: $(tail -3 "$TMP/out")"; kill -9 $pid
fi
finish
