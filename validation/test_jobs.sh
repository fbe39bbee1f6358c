#!/usr/bin/env bash
# The launch and study scripts: mpirun with a hostfile of 2 slots on
# localhost runs the tiny job, and kill -TERM of that launcher saves and exits
# 0; the benchmark driver appends one CSV row per run; the scaling study writes
# its CSV and both plots; the metrics plot.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ROOT"
echo "localhost slots=2" >"$TMP/hosts"
if HOSTFILE=$TMP/hosts BUILD=$BUILD bash jobs/mpirun/pretrain.sh -c tiny --bench -l 32 -b 2 --steps 5 \
     --peak-tflops 1 --log "$TMP/host.jsonl" >"$TMP/host.out" 2>&1 \
   && [ "$(losses "$TMP/host.jsonl" | wc -l)" = 5 ] && grep -q "2 ranks (dp 2" "$TMP/host.out"; then
  pass "mpirun with a hostfile (localhost slots=2) runs the tiny job on 2 ranks"
else fail "mpirun hostfile" "$(tail -3 "$TMP/host.out")"; fi

# launch NAME: jobs/mpirun/pretrain.sh training the tiny model until it is stopped,
# saving only then, into $TMP/NAME, its log $TMP/NAME.jsonl; in the background
# (its pid in $pid), its output where the caller redirects the call's.
launch() {
  HOSTFILE=$TMP/hosts BUILD=$BUILD bash jobs/mpirun/pretrain.sh -c tiny --bench -l 32 -b 2 --steps 100000 \
    -o "$TMP/$1" -i 100000 --log "$TMP/$1.jsonl" &
  pid=$!
}
# wait_gone PID: until the process has ended, 120 s at most (the old launcher
# waited out mpirun's 600 s grace).
wait_gone() {
  local deadline=$(($(date +%s) + 120))
  while kill -0 "$1" 2>/dev/null && [ "$(date +%s)" -lt "$deadline" ]; do sleep 0.2; done
}
# saved_at_stop NAME RC: the launcher exited 0 and the step the run says it
# stopped at (in $stopped) was saved in $TMP/NAME.
saved_at_stop() {
  stopped=$(grep -o "stopped at step [0-9]*" "$TMP/$1.out" | grep -o "[0-9]*$")
  [ "$2" -eq 0 ] && [ -n "$stopped" ] && [ -f "$TMP/$1/step_$(printf %07d "$stopped")/checkpoint.h5" ]
}

# kill -TERM of the launcher (what a user or scheduler does to mpirun's
# parent) saves and exits 0: the script relays SIGUSR1 to the ranks through
# mpirun instead of letting mpirun kill them 1 s into the save (issue 11, case 17).
launch stop >"$TMP/stop.out" 2>&1
if wait_for '"step": 5,' "$TMP/stop.jsonl" 60; then
  kill -TERM $pid
  wait $pid; rc=$?
  if saved_at_stop stop $rc; then
    pass "kill -TERM of jobs/mpirun/pretrain.sh: the ranks saved step $stopped and exited 0"
  else fail "pretrain.sh TERM" "exit $rc, stopped at '$stopped': $(tail -3 "$TMP/stop.out")"; fi
else
  kill -9 $pid 2>/dev/null; fail "pretrain.sh TERM" "the run did not reach step 5: $(tail -3 "$TMP/stop.out")"
fi

# Ctrl-C: the terminal sends SIGINT to the whole foreground process group, the
# script and mpirun alike; mpirun began its abort and the ranks never saved.
# With job control on (set -m) the launcher gets a process group of its own and
# SIGINT as a terminal's foreground job has it (a plain background job of a
# script ignores it, and bash cannot trap a signal ignored at its start); the
# group gets the SIGINT.
set -m
launch ctrlc >"$TMP/ctrlc.out" 2>&1
set +m
if wait_for '"step": 5,' "$TMP/ctrlc.jsonl" 60; then
  kill -INT -- -"$pid"
  wait_gone "$pid"
  kill -0 "$pid" 2>/dev/null && { kill -9 -- -"$pid"; pkill -9 -f "$TMP/ctrlc" 2>/dev/null; }
  wait $pid; rc=$?
  if saved_at_stop ctrlc $rc; then
    pass "Ctrl-C (SIGINT to the launcher's process group): the ranks saved step $stopped and exited 0"
  else fail "pretrain.sh Ctrl-C" "exit $rc, stopped at '$stopped': $(tail -3 "$TMP/ctrlc.out")"; fi
else
  kill -9 -- -"$pid" 2>/dev/null; fail "pretrain.sh Ctrl-C" "the run did not reach step 5: $(tail -3 "$TMP/ctrlc.out")"
fi

# A hang-up (the terminal closed): HUP to the launcher, whose stderr is gone
# (here /dev/full: writing the note fails, which ended the script under set -e
# before it told mpirun, and mpirun, in its own session, trained on alone).
launch hup >"$TMP/hup.out" 2>/dev/full
if wait_for '"step": 5,' "$TMP/hup.jsonl" 60; then
  kill -HUP $pid
  wait_gone "$pid"
  sleep 1; left=$(pgrep -f -- "-o $TMP/hup" | wc -l)
  [ "$left" -gt 0 ] && pkill -9 -f -- "-o $TMP/hup"
  wait $pid; rc=$?
  if [ $rc -eq 0 ] && [ "$left" = 0 ] && ls "$TMP/hup"/step_*/checkpoint.h5 >/dev/null 2>&1; then
    pass "a hang-up of jobs/mpirun/pretrain.sh (its stderr gone): the ranks saved and exited, none left running"
  else fail "pretrain.sh HUP" "exit $rc, $left processes left: $(ls "$TMP/hup" 2>&1 | tr '\n' ' ')"; fi
else
  kill -9 $pid 2>/dev/null; pkill -9 -f -- "-o $TMP/hup"; fail "pretrain.sh HUP" "the run did not reach step 5"
fi

# A stop while mpirun is still starting the ranks (TERM as soon as the launcher
# says it launched; mpirun forwards a signal only to ranks it has started): the
# launcher sends it again until the ranks take it.  Called from $TMP with
# relative paths, which are taken from there.  (A SIGUSR1 that reaches a rank
# or mpirun before it has set its handler ends it: the launch fails, exit
# non-zero, with nothing trained; that outcome passes too, without the paths.
# mpirun then ends the other ranks with SIGTERM, and one waiting in a collective
# for the dead rank is killed only after KILL_GRACE: 5 s here, not 600.)
(cd "$TMP" && HOSTFILE=hosts BUILD=$BIN KILL_GRACE=5 exec bash "$ROOT/jobs/mpirun/pretrain.sh" -c tiny --bench -l 32 -b 2 \
   --steps 100000 -o early -i 100000 --log early.jsonl >"$TMP/early.out" 2>&1) &
pid=$!
if wait_for "^llama-train on " "$TMP/early.out" 60; then
  kill -TERM $pid
  wait_gone "$pid"
  kill -0 "$pid" 2>/dev/null && running=1 || running=0
  left=$(pgrep -f -- "-o early" | wc -l)
  [ "$left" -gt 0 ] && pkill -9 -f -- "-o early"
  [ "$running" = 1 ] && kill -9 "$pid"
  wait $pid; rc=$?
  if [ "$running" = 0 ] && [ "$left" = 0 ] && [ $rc -eq 0 ] && grep -q "stopped at step [0-9]* by a signal" "$TMP/early.out" \
     && [ -s "$TMP/early.jsonl" ] && [ -d "$TMP/early" ] && [ ! -e "$ROOT/early" ]; then
    pass "TERM of jobs/mpirun/pretrain.sh while mpirun starts the ranks: they stop (exit 0), none left; relative -o and --log taken from the caller's folder"
  elif [ "$running" = 0 ] && [ "$left" = 0 ] && [ $rc -ne 0 ] && ! grep -q '^step ' "$TMP/early.out"; then
    pass "TERM of jobs/mpirun/pretrain.sh while mpirun starts the ranks: the launch ended (exit $rc, a rank or mpirun ended by the signal before its handler), nothing trained, none left"
  else fail "pretrain.sh TERM at launch" "exit $rc, launcher running: $running, $left processes left: $(tail -3 "$TMP/early.out")"; fi
else
  kill -9 $pid 2>/dev/null; fail "pretrain.sh TERM at launch" "no launch line: $(tail -3 "$TMP/early.out")"
fi
rm -rf "$ROOT/early" "$ROOT/early.jsonl"

export BUILD PRESET=tiny BATCH=4 SEQ=32 STEPS=4 WARMUP=1
# OUT relative to the caller's folder ($TMP)
if (cd "$TMP" && OUT=scaling SWEEP="1:1:1 2:1:1 2:2:1 2:1:2" bash "$ROOT/jobs/scaling.sh" --peak-tflops 1) \
     >"$TMP/scaling.out" 2>&1; then
  rows=$(($(wc -l <"$TMP/scaling/scaling.csv") - 1))
  png() { [ -s "$1" ] && [ "$(head -c 4 "$1" | tail -c 3)" = PNG ]; }
  [ "$rows" = 4 ] && pass "scaling study: one CSV row per run ($rows)" || fail "scaling CSV" "$rows rows for 4 runs"
  png "$TMP/scaling/throughput.png" && png "$TMP/scaling/efficiency.png" && pass "scaling study: throughput and efficiency plots" \
    || fail "scaling plots" "missing or not PNG"
else fail "scaling study" "$(tail -5 "$TMP/scaling.out")"; fi

CSV=$TMP/bench.csv RANKS=2 bash jobs/benchmark.sh --peak-tflops 1 >/dev/null 2>&1
CSV=$TMP/bench.csv RANKS=1 RECOMPUTE=1 bash jobs/benchmark.sh --peak-tflops 1 >"$TMP/bench.out" 2>&1
if [ "$(wc -l <"$TMP/bench.csv")" = 3 ] && grep -q "samples/s .* tokens/s .* TFLOP/s per device  MFU" "$TMP/bench.out" \
   && tail -1 "$TMP/bench.csv" | grep -q ",tiny,1,1,1,1,0,4,1,32,1,cpu,fp32,"; then
  pass "benchmark driver: figures printed, one CSV row per run"
else fail "benchmark driver" "$(cat "$TMP/bench.csv" "$TMP/bench.out" | tail -4)"; fi
(cd "$TMP" && CSV=rel.csv RANKS=1 bash "$ROOT/jobs/benchmark.sh" >"$TMP/rel.out" 2>&1)
[ -s "$TMP/rel.csv" ] && [ ! -e "$ROOT/rel.csv" ] && pass "benchmark driver: a relative CSV is taken from the caller's folder" ||
  { rm -f "$ROOT/rel.csv"; fail "benchmark driver relative CSV" "$(tail -2 "$TMP/rel.out")"; }

"$BIN/llama-train" -c tiny --bench -l 16 --steps 6 --peak-tflops 1 --log "$TMP/m.jsonl" >/dev/null 2>&1
echo '{"step": 6, "eval_loss": 5.5}' >>"$TMP/m.jsonl"
grep -v eval_loss "$TMP/m.jsonl" >"$TMP/noeval.jsonl"
bash jobs/plot-metrics.sh "$TMP/m.jsonl" "$TMP/m.png" >/dev/null 2>&1 && [ -s "$TMP/m.png" ] \
  && pass "metrics plot (loss, held-out loss, throughput)" || fail "metrics plot" "no PNG"
bash jobs/plot-metrics.sh "$TMP/noeval.jsonl" "$TMP/noeval.png" >/dev/null 2>&1 && [ -s "$TMP/noeval.png" ] \
  && pass "metrics plot of a run without evaluations" || fail "metrics plot without evaluations" "no PNG"
finish
