#!/usr/bin/env bash
# make fuzz: runs each harness in $BUILD/fuzz for FUZZ_SECONDS from its seeds
# (seeds.sh) and its corpus of earlier finds, and ends with one line per
# harness: executions, exec/s, and "ok" or the crash file.  Exit status 1 when
# any harness found a crash, a sanitizer report, a leak or a time-out.  The
# parsers' own messages are silenced (-close_fd_mask); libFuzzer's and the
# sanitizers' reports still reach the log.  Rerun a crash with
# $BUILD/fuzz/fuzz_<harness> <file> to see its messages.
set -uo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
SECONDS_EACH=${FUZZ_SECONDS:-180}
F=$BUILD/fuzz
bash validation/fuzz/seeds.sh || exit 1

# The longest input each harness is given (bytes): its seeds fit.
max_len() {
  case $1 in
    tokenizer | shard) echo 16384 ;;
    jsonl | safetensors) echo 4096 ;;
    *) echo 2048 ;;
  esac
}

# HDF5 (the shard harness) answers some corrupt files by asking malloc for
# petabytes and handles the NULL it gets in production; let it get NULL here
# too instead of stopping at the request.  Our own code would still fail (xmalloc
# exits, which libFuzzer reports); memory actually used is still capped.
limit_opts() {
  case $1 in
    shard) echo "-malloc_limit_mb=1048576" ;;
    *) echo "-malloc_limit_mb=1024" ;;
  esac
}
# AddressSanitizer serves such requests slowly and with gigabytes of resident
# memory (seconds and 2.6 GB for one 1 PB request, where glibc's malloc says no
# at once): above 4 GiB it returns NULL straight away, as malloc would.
asan_opts() {
  case $1 in
    shard) echo "detect_leaks=1:allocator_may_return_null=1:max_allocation_size_mb=4096" ;;
    *) echo "detect_leaks=1" ;;
  esac
}

summary=() bad=0
for h in "$@"; do
  mkdir -p "$F/corpus/$h" "$F/artifacts"
  log=$F/$h.log
  echo "fuzz_$h: ${SECONDS_EACH} s (log $log)"
  ASAN_OPTIONS=${ASAN_OPTIONS:-$(asan_opts "$h")} \
  LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$PWD/validation/fuzz/lsan.supp:print_suppressions=0} \
  "$F/fuzz_$h" -max_total_time="$SECONDS_EACH" \
    -max_len="$(max_len "$h")" -timeout=20 -rss_limit_mb=2048 $(limit_opts "$h") \
    -print_final_stats=1 -close_fd_mask=3 -artifact_prefix="$F/artifacts/$h-" \
    "$F/corpus/$h" "$F/seeds/$h" >"$log" 2>&1
  rc=$?
  done_line=$(grep -E '^#[0-9]+[[:space:]]+DONE' "$log" | tail -n 1)
  execs=$(sed -nE 's/^#([0-9]+)[[:space:]]+DONE.*/\1/p' <<<"$done_line")
  rate=$(sed -nE 's/.*exec\/s: ([0-9]+).*/\1/p' <<<"$done_line")
  [ -n "$execs" ] || execs=$(sed -nE 's/^stat::number_of_executed_units: *([0-9]+)/\1/p' "$log")
  if [ $rc -eq 0 ]; then
    summary+=("fuzz_$h: ${execs:-?} executions in ${SECONDS_EACH} s (${rate:-?} exec/s): ok")
  else
    bad=1
    art=$(grep -oE "$F/artifacts/$h-[a-z-]+[0-9a-f]+" "$log" | tail -n 1)
    summary+=("fuzz_$h: FAILED (status $rc) after ${execs:-?} executions; input ${art:-?}; see $log")
    grep -E 'ERROR|SUMMARY|runtime error' "$log" | head -n 3 | sed 's/^/    /'
  fi
done
printf '%s\n' "${summary[@]}"
exit $bad
