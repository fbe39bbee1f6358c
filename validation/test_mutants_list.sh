#!/usr/bin/env bash
# The mutation-testing list (validation/mutants/mutants.txt, make test-mutants)
# still applies to the code: every mutant's original lines occur exactly once
# in its file, so a change that moves them fails here, not months later.
source "$(dirname "$0")/lib.sh"
if why=$(bash "$ROOT/validation/mutants/run.sh" --check 2>&1); then
  pass "every mutant of make test-mutants still applies ($(tail -n 1 <<<"$why"))"
else
  fail "mutants that no longer apply" "$(grep -v '^ *$' <<<"$why" | tail -n 5)"
fi
finish
