#!/usr/bin/env bash
# The validation suite behind `make test`: every C unit test in $BUILD/tests and
# every validation/test_*.sh and validation/gpu/test_*.sh script (the GPU tests
# report themselves skipped where no GPU is visible); with LLAMA_FULL=1 also the
# long suites of validation/full/ (`make test-full` runs those alone).  `run.sh NAME` runs the
# tests whose path contains NAME (`run.sh gpu`: the GPU tests).  Each prints PASS/FAIL/SKIP lines
# (also read when indented or prefixed by mpirun's "[1,0]<stdout>:"); one failure each is
# counted for a program that exits non-zero without a FAIL line, one that prints no result
# line at all, one that outlives TEST_TIMEOUT (killed 30 s after its SIGTERM), and a unit
# test of validation/unit/ that was not built.  Ends with the line "N passed, N failed".
set -u
cd "$(dirname "$0")/.."
BUILD=${BUILD:-build}
export BUILD
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
if [ "$BUILD" != "build" ]; then  # sanitizer build: MPI's own allocations are not ours
  # protect_shadow_gap=0: the CUDA driver maps memory where ASan's gap would be
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=0:abort_on_error=1:protect_shadow_gap=0}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
fi

passed=0 failed=0 skipped=0
start=$(date +%s)
# A result line, perhaps indented or behind mpirun's --tag-output prefix.
RESULT='^[[:space:]]*(\[[0-9]+,[0-9]+\]<std(out|err)>:[[:space:]]*)?((PASS|FAIL|SKIP) .*)$'
run_one() {
  local name=$1; shift
  local t0=$(date +%s) out rc
  out=$(timeout -k 30 "${TEST_TIMEOUT:-900}" "$@" 2>&1); rc=$?
  local p f s results
  results=$(sed -nE "s/$RESULT/\3/p" <<<"$out")
  p=$(grep -c '^PASS ' <<<"$results"); f=$(grep -c '^FAIL ' <<<"$results"); s=$(grep -c '^SKIP ' <<<"$results")
  [ -n "$results" ] && sed "s|^|  [$name] |" <<<"$results"
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
    echo "  [$name] FAIL $name: timed out after ${TEST_TIMEOUT:-900} s; its output ends:"
    tail -n 15 <<<"$out" | sed 's/^/      /'
    f=$((f + 1))
  elif [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "  [$name] FAIL $name: exited with status $rc; its output ends:"
    tail -n 15 <<<"$out" | sed 's/^/      /'
    f=1
  elif [ -z "$results" ]; then
    echo "  [$name] FAIL $name: exited $rc without a PASS, FAIL or SKIP line; its output ends:"
    tail -n 15 <<<"$out" | sed 's/^/      /'
    f=1
  elif [ "$f" -gt 0 ]; then
    grep -vE "$RESULT" <<<"$out" | tail -n 15 | sed 's/^/      /'
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "  [$name] $(($(date +%s) - t0)) s"
}

only=${1:-}
for src in validation/unit/test_*.c; do   # every unit test must have been built
  t=$BUILD/tests/$(basename "$src" .c)
  [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
  if [ ! -x "$t" ]; then
    echo "  [$(basename "$t")] FAIL $(basename "$t"): $t was not built (make $t)"
    failed=$((failed + 1))
  fi
done
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
  run_one "$(basename "$t")" "$t"
done
full=""
[ -n "${LLAMA_FULL:-}" ] && full="validation/full/test_*.sh"   # make test-full
for t in validation/test_*.sh validation/gpu/test_*.sh $full; do
  [ -f "$t" ] || continue
  [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
  run_one "$(basename "$t" .sh)" bash "$t"
done
echo "suite took $(($(date +%s) - start)) s; $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
