#!/usr/bin/env bash
# The host-staged device communication (src/comm/comm_staged.c) on 2 and 3 ranks:
# the unit test validation/unit/test_comm_staged.c (which run.sh also runs on
# one rank) under mpirun; every rank checks its results against values it
# computes itself.
source "$(dirname "$0")/lib.sh"
T=$BIN/tests/test_comm_staged
if [ ! -x "$T" ]; then fail "staged comm test" "$T is not built (make programs)"; finish; fi
for np in 2 3; do
  out=$(timeout 120 "${MPIRUN[@]}" -np "$np" "$T" 2>&1); rc=$?
  sed -n "s/^\(PASS\|FAIL\) /\1 $np ranks: /p" <<<"$out"
  if [ $rc -ne 0 ]; then fail "staged comm on $np ranks" "exit $rc: $(tail -3 <<<"$out")"; fi
done
finish
