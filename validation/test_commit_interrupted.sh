#!/usr/bin/env bash
# Folders whose files are replaced one by one (io/fs/folder_commit.h): an
# encode killed while moving its new shards into the dataset folder, or an
# export killed while moving its files into the Hugging Face folder, leaves
# two versions mixed.  An LD_PRELOAD shim kills the program (SIGKILL, as the
# OOM killer or a time limit would) at the second file it moves in; then
# every reader refuses the folder (llama-train, llama-tokenize verify,
# --init-hf, llama-ckpt compare) naming the way out, and running the writer
# again repairs it.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
TOK=$BIN/llama-tokenize
C=$BIN/llama-ckpt
CORPUS=$ROOT/inputs/redpajama-mini

# KILL_AT_MOVE=SUBSTRING: the second rename out of a path holding SUBSTRING
# (into one that does not) kills the process before it happens.
cat >"$TMP/killmove.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
typedef int (*rename_fn)(const char *, const char *);
int rename(const char *a, const char *b) {
  static rename_fn real;
  static int seen;
  if (!real) real = (rename_fn)dlsym(RTLD_NEXT, "rename");
  const char *at = getenv("KILL_AT_MOVE");
  if (at && *at && strstr(a, at) && !strstr(b, at) && ++seen == 2) kill(getpid(), SIGKILL);
  return real(a, b);
}
C
if ! ${CC:-cc} -shared -fPIC -O1 -o "$TMP/killmove.so" "$TMP/killmove.c" -ldl 2>"$TMP/cc.err"; then
  skip "interrupted commits" "cannot build the LD_PRELOAD shim: $(head -1 "$TMP/cc.err")"
  finish
fi
# (bash's own "Killed" line goes to killed.err too)
killed_at_move() { { env LD_PRELOAD="$TMP/killmove.so" KILL_AT_MOVE="$1" "${@:2}" >"$TMP/killed.out" 2>&1; } 2>"$TMP/killed.err"; }

# ---- an encode over an earlier one, killed after its first shard moved in ----
D=$TMP/data
"$TOK" encode --tokenizer bytes --input "$CORPUS" --output "$D" --seed 1 >"$TMP/e1.out" 2>&1 ||
  fail "the first encode" "$(tail -2 "$TMP/e1.out")"
killed_at_move .encode.tmp/ "$TOK" encode --tokenizer bytes --input "$CORPUS" --output "$D" --seed 2 --overwrite
rc=$?
if [ $rc -ne 0 ] && [ -e "$D/.commit-unfinished" ]; then pass "an encode killed at its second shard's move leaves the folder marked"
else fail "encode killed midway" "exit $rc, folder: $(ls -A "$D" | tr '\n' ' ')"; fi
expect_error "llama-train refuses a dataset folder an encode left midway" \
  "dataset folder '$D' holds .commit-unfinished: an encode into it was stopped .* run llama-tokenize encode into it again with --overwrite" \
  "$T" -c tiny -d "$D" -l 32 --steps 1
expect_error "llama-tokenize verify refuses it too" "dataset folder '$D' holds .commit-unfinished" "$TOK" verify "$D"
"$TOK" encode --tokenizer bytes --input "$CORPUS" --output "$D" --seed 2 --overwrite >"$TMP/e3.out" 2>&1
if [ ! -e "$D/.commit-unfinished" ] && "$TOK" verify "$D" >/dev/null 2>&1 &&
   "$T" -c tiny -d "$D" -l 32 --steps 1 >"$TMP/t3.out" 2>&1; then
  pass "encoding again with --overwrite repairs the folder"
else fail "encoding again repairs" "$(tail -2 "$TMP/e3.out") / $(tail -2 "$TMP/t3.out")"; fi

# ---- an export over an earlier one, killed after its first file moved in ----
X=$TMP/hf
"$T" -c tiny --bench -l 16 --steps 1 --export-hf "$X" >"$TMP/x1.out" 2>&1 || fail "the first export" "$(tail -2 "$TMP/x1.out")"
killed_at_move .export-staging/ "$T" -c tiny --bench -l 16 --steps 2 --export-hf "$X"
rc=$?
if [ $rc -ne 0 ] && [ -e "$X/.commit-unfinished" ]; then pass "an export killed at its second file's move leaves the folder marked"
else fail "export killed midway" "exit $rc, folder: $(ls -A "$X" | tr '\n' ' ')"; fi
expect_error "--init-hf refuses a folder an export left midway" \
  "$X holds .commit-unfinished: an export into it was stopped .* export into it again" \
  "$T" --init-hf "$X" --bench -l 16 --steps 1
expect_error "llama-ckpt compare refuses it too" "$X holds .commit-unfinished" "$C" compare "$X" "$X"
"$T" -c tiny --bench -l 16 --steps 2 --export-hf "$X" >"$TMP/x3.out" 2>&1
if [ ! -e "$X/.commit-unfinished" ] && [ ! -e "$X/.export-staging" ] &&
   "$T" --init-hf "$X" --bench -l 16 --steps 1 >"$TMP/i3.out" 2>&1; then
  pass "exporting again repairs the folder"
else fail "exporting again repairs" "$(tail -2 "$TMP/x3.out") / $(tail -2 "$TMP/i3.out")"; fi
finish
