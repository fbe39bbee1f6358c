#!/usr/bin/env bash
# The validation suite behind `make test`: every C unit test in $BUILD/tests and
# every validation/test_*.sh and validation/gpu/test_*.sh script (the GPU tests
# report themselves skipped where no GPU is visible).  `run.sh NAME` runs the
# tests whose path contains NAME (`run.sh gpu`: the GPU tests).  Each prints PASS/FAIL/SKIP lines; a
# program that exits non-zero without a FAIL line counts as one failure.
# Ends with the line "N passed, N failed".
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
run_one() {
  local name=$1; shift
  local t0=$(date +%s) out rc
  out=$(timeout "${TEST_TIMEOUT:-900}" "$@" 2>&1); rc=$?
  local p f s
  p=$(grep -c '^PASS ' <<<"$out"); f=$(grep -c '^FAIL ' <<<"$out"); s=$(grep -c '^SKIP ' <<<"$out")
  grep -E '^(PASS|FAIL|SKIP) ' <<<"$out" | sed "s|^|  [$name] |"
  if [ $rc -ne 0 ] && [ "$f" -eq 0 ]; then
    echo "  [$name] FAIL $name: exited with status $rc; its output ends:"
    tail -n 15 <<<"$out" | sed 's/^/      /'
    f=1
  elif [ "$f" -gt 0 ]; then
    grep -vE '^(PASS|FAIL|SKIP) ' <<<"$out" | tail -n 15 | sed 's/^/      /'
  fi
  passed=$((passed + p)); failed=$((failed + f)); skipped=$((skipped + s))
  echo "  [$name] $(($(date +%s) - t0)) s"
}

only=${1:-}
for t in "$BUILD"/tests/test_*; do
  [ -x "$t" ] || continue
  [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
  run_one "$(basename "$t")" "$t"
done
for t in validation/test_*.sh validation/gpu/test_*.sh; do
  [ -f "$t" ] || continue
  [ -n "$only" ] && [[ "$t" != *"$only"* ]] && continue
  run_one "$(basename "$t" .sh)" bash "$t"
done
echo "suite took $(($(date +%s) - start)) s; $skipped skipped"
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ]
