#!/usr/bin/env bash
# make test-full: the crash test of make test (validation/test_checkpoint_crash.sh)
# with 48 kills instead of 12.
CRASH_KILLS=48 exec bash "$(dirname "$0")/../test_checkpoint_crash.sh"
