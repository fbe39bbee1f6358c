#!/usr/bin/env bash
# Saves that do not reach the disk (issue 11, case 4): a folder named step_N
# must always be complete, whatever the MPI-IO layer reported.
#  - a 4 MiB tmpfs holds one checkpoint of the tiny model (2.8 MB) but not two,
#    so the save of step 4 runs out of space, on 1, 2 and 4 ranks (tp2 × dp2,
#    ZeRO-1; there MPI-IO prints "No space left on device" yet reports the
#    write as done); given room again, --load auto continues exactly as a run
#    that never stopped;
#  - writes that MPI-IO reports as done but that never reach the file, with
#    space to spare (an LD_PRELOAD shim drops the writes past 1 MiB of the
#    step-4 file): only re-reading the file catches these;
#  - a file-size limit (RLIMIT_FSIZE, EFBIG): HDF5 fails to close the file;
#  - a save that succeeds fsyncs checkpoint.h5 before its folder is renamed
#    (an LD_PRELOAD shim logs the fsyncs and renames).
# Each time the run must exit non-zero saying the save failed, leave neither
# step_0000004 nor its .tmp nor a lock, and keep step_0000002 verifiable with
# 'latest' on it.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
DATA=$TMP/data
make_byte_shards "$DATA"
D=(-c tiny -d "$DATA" -l 32 -b 4 --seed 1 --peak-tflops 1 --steps 6)

# check NAME DIR RC OUTPUT: the outcome of a run whose step-4 save failed.
check() {
  local name=$1 ck=$2 rc=$3 out=$4 why=""
  if [ "$rc" -eq 0 ]; then why="exited 0"
  elif [ "$rc" -gt 128 ]; then why="crashed with signal $((rc - 128))"
  elif ! grep -q "error.*: saving the checkpoint of step 4 failed" "$out"; then
    why="no clear message: $(grep -v '^step' "$out" | tail -3)"
  elif [ -e "$ck/step_0000004" ] || [ -e "$ck/step_0000004.tmp" ] || [ -e "$ck/lock" ]; then
    why="a step-4 folder or the lock is left: $(ls "$ck")"
  elif [ "$(cat "$ck/latest")" != step_0000002 ]; then why="latest names '$(cat "$ck/latest")'"
  elif ! why=$("$BIN/llama-ckpt" info "$ck/step_0000002" 2>&1 >/dev/null); then
    why="step_0000002 does not verify: $why"
  else why=""; fi
  local mpiio=""
  grep -q "No space left on device" "$out" && mpiio="; MPI-IO printed ENOSPC"
  [ -z "$why" ] && pass "$name: exit $rc, step 4 neither renamed nor left, step 2 and latest intact$mpiio" ||
    fail "$name" "$why"
}

# ---- writes reported as done that never reached the file ----
cat >"$TMP/lose.c" <<'C'
// Writes at or past LOSE_WRITES's offset to a file whose path contains its
// pattern ("pattern:offset") report success and store nothing.
#define _GNU_SOURCE
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>
#include <unistd.h>
static int lost(int fd, off_t off) {
  const char *spec = getenv("LOSE_WRITES");
  char pat[256], link[64], path[4096];
  long long limit;
  if (!spec || sscanf(spec, "%255[^:]:%lld", pat, &limit) != 2) return 0;
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return 0;
  path[n] = 0;
  return strstr(path, pat) && off >= limit;
}
static size_t total(const struct iovec *v, int n) { size_t s = 0; for (int i = 0; i < n; i++) s += v[i].iov_len; return s; }
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*pwritev_fn)(int, const struct iovec *, int, off_t);
#define REAL(name, type) static type real; if (!real) real = (type)dlsym(RTLD_NEXT, name)
ssize_t pwrite(int fd, const void *b, size_t n, off_t off) {
  REAL("pwrite", pwrite_fn);
  return lost(fd, off) ? (ssize_t)n : real(fd, b, n, off);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t off) {
  REAL("pwrite64", pwrite_fn);
  return lost(fd, off) ? (ssize_t)n : real(fd, b, n, off);
}
ssize_t pwritev(int fd, const struct iovec *v, int c, off_t off) {
  REAL("pwritev", pwritev_fn);
  return lost(fd, off) ? (ssize_t)total(v, c) : real(fd, v, c, off);
}
ssize_t pwritev64(int fd, const struct iovec *v, int c, off_t off) {
  REAL("pwritev64", pwritev_fn);
  return lost(fd, off) ? (ssize_t)total(v, c) : real(fd, v, c, off);
}
C
if ! ${CC:-cc} -shared -fPIC -O1 -o "$TMP/lose.so" "$TMP/lose.c" -ldl 2>"$TMP/cc.err"; then
  skip "writes lost silently" "cannot build the LD_PRELOAD shim: $(head -1 "$TMP/cc.err")"
else
  "${MPIRUN[@]}" -np 4 -x LD_PRELOAD="$TMP/lose.so" -x LOSE_WRITES=step_0000004.tmp/checkpoint.h5:1048576 \
    "$T" "${D[@]}" --tp 2 --zero 1 -i 2 --keep-checkpoints 1 -o "$TMP/lost" >"$TMP/lost.out" 2>&1
  check "writes lost silently past 1 MiB on 4 ranks" "$TMP/lost" $? "$TMP/lost.out"
  grep -q "does not read back complete" "$TMP/lost.out" && pass "writes lost silently: caught by the re-read after close" ||
    fail "writes lost silently" "not caught by the re-read: $(grep error "$TMP/lost.out")"
fi

# ---- the file reaches the disk before its folder is renamed ----
# An LD_PRELOAD shim logs (to $SYNC_LOG) every fsync/fdatasync of a file
# named checkpoint.h5 and every rename, in the order they happen: a power loss
# after the rename must not leave latest on a file whose data is in no disk.
cat >"$TMP/synclog.c" <<'C'
#define _GNU_SOURCE
#include <dlfcn.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
static void note(const char *what, const char *a, const char *b) {
  const char *log = getenv("SYNC_LOG");
  char line[8400];
  int n = snprintf(line, sizeof line, "%s %s %s\n", what, a, b);
  int fd = log ? open(log, O_WRONLY | O_APPEND | O_CREAT, 0644) : -1;
  if (fd >= 0) { if (write(fd, line, (size_t)n) < 0) {} close(fd); }
}
static void note_fd(const char *what, int fd) {
  char link[64], path[4096];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = readlink(link, path, sizeof path - 1);
  if (n < 0) return;
  path[n] = 0;
  if (strstr(path, "/checkpoint.h5")) note(what, path, "-");
}
typedef int (*sync_fn)(int);
typedef int (*rename_fn)(const char *, const char *);
#define REAL(name, type) static type real; if (!real) real = (type)dlsym(RTLD_NEXT, name)
int fsync(int fd) { REAL("fsync", sync_fn); note_fd("fsync", fd); return real(fd); }
int fdatasync(int fd) { REAL("fdatasync", sync_fn); note_fd("fsync", fd); return real(fd); }
int rename(const char *a, const char *b) { REAL("rename", rename_fn); note("rename", a, b); return real(a, b); }
C
if ! ${CC:-cc} -shared -fPIC -O1 -o "$TMP/synclog.so" "$TMP/synclog.c" -ldl 2>"$TMP/cc.err"; then
  skip "checkpoint.h5 synced before the rename" "cannot build the LD_PRELOAD shim: $(head -1 "$TMP/cc.err")"
else
  LD_PRELOAD="$TMP/synclog.so" SYNC_LOG="$TMP/sync.log" "$T" "${D[@]}" --steps 2 -i 2 -o "$TMP/synced" >"$TMP/synced.out" 2>&1; rc=$?
  ck=$TMP/synced/step_0000002
  order=$(awk -v file="$ck.tmp/checkpoint.h5" -v from="$ck.tmp" -v to="$ck" '
            $1 == "fsync" && $2 == file && !synced { synced = NR }
            $1 == "rename" && $2 == from && $3 == to { renamed = NR }
            END { print (synced ? "fsync" : "no-fsync"), (renamed ? "rename" : "no-rename"), (synced < renamed ? "before" : "after") }' "$TMP/sync.log" 2>/dev/null)
  if [ $rc -eq 0 ] && [ "$order" = "fsync rename before" ]; then
    pass "checkpoint.h5 fsynced before step_0000002.tmp is renamed to step_0000002"
  else fail "checkpoint.h5 synced before the rename" "exit $rc, $order: $(cat "$TMP/sync.log" 2>/dev/null | head -5)"; fi
fi

# ---- a file-size limit: the writes and HDF5's close fail (EFBIG) ----
"${MPIRUN[@]}" -np 4 "$T" "${D[@]}" --tp 2 --zero 1 --steps 2 -i 2 -o "$TMP/fsize" >"$TMP/fsize1.out" 2>&1
# TCP between the ranks: shared-memory segments are files the limit would refuse.
mpirun --oversubscribe -x OMP_NUM_THREADS --mca btl self,tcp -np 4 \
  bash -c 'trap "" XFSZ; ulimit -f 2048; exec "$0" "$@"' "$T" "${D[@]}" --tp 2 --zero 1 -i 2 \
  --keep-checkpoints 1 -o "$TMP/fsize" -f auto >"$TMP/fsize.out" 2>&1
check "a 2 MiB file-size limit on 4 ranks (HDF5 cannot close the file)" "$TMP/fsize" $? "$TMP/fsize.out"

# ---- a full disk ----
MNT=$TMP/mnt
mkdir -p "$MNT"
if ! mount -t tmpfs -o size=4m tmpfs "$MNT" 2>"$TMP/mount.err"; then
  skip "disk full during a save" "cannot mount a 4 MiB tmpfs here ($(cat "$TMP/mount.err")); needs root"
  finish
fi
trap 'umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT

full() {   # NAME RANKS LAYOUT...
  local name=$1 np=$2; shift 2
  rm -rf "$MNT/ck"
  "${MPIRUN[@]}" -np "$np" "$T" "${D[@]}" "$@" -i 2 --keep-checkpoints 1 -o "$MNT/ck" >"$TMP/$np.out" 2>&1
  check "disk full on $name" "$MNT/ck" $? "$TMP/$np.out"
}
full "1 rank" 1
full "2 ranks (dp2, ZeRO-1)" 2 --zero 1
full "4 ranks (tp2 × dp2, ZeRO-1)" 4 --tp 2 --zero 1

# Room again: the 4-rank run resumes from step 2 and matches an uninterrupted run.
mount -o remount,size=16m "$MNT"
"${MPIRUN[@]}" -np 4 "$T" "${D[@]}" --tp 2 --zero 1 --log "$TMP/ref.jsonl" >"$TMP/ref.out" 2>&1
"${MPIRUN[@]}" -np 4 "$T" "${D[@]}" --tp 2 --zero 1 -i 2 --keep-checkpoints 1 -o "$MNT/ck" -f auto \
  --log "$TMP/resumed.jsonl" >"$TMP/resumed.out" 2>&1
if grep -q "loaded checkpoint $MNT/ck/step_0000002 at step 2" "$TMP/resumed.out" &&
   diff <(losses "$TMP/ref.jsonl" | tail -n 4) <(losses "$TMP/resumed.jsonl") >/dev/null &&
   [ "$(cat "$MNT/ck/latest")" = step_0000006 ]; then
  pass "disk full, then room again: --load auto resumes step 2, steps 3-6 identical to an uninterrupted run"
else
  fail "resume after disk full" "$(grep -h "loaded\|error" "$TMP/resumed.out" | head -3); losses $(losses "$TMP/resumed.jsonl" | tr '\n' ' ')"
fi
# A full disk under --log: one warning, the run goes on and saves elsewhere
# (Megatron's metric writers do the same); the log's partial last line is
# ended before a later run appends, so every line stays one JSON object.
rm -rf "$MNT"/*
head -c 16m /dev/zero >"$MNT/fill" 2>/dev/null
"$T" "${D[@]}" -i 3 -o "$TMP/logfull" --log "$MNT/log.jsonl" >"$TMP/logfull.out" 2>&1; rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c "warning: writing '$MNT/log.jsonl' failed: No space left on device" "$TMP/logfull.out")" = 1 ] &&
   [ -d "$TMP/logfull/step_0000006" ]; then
  pass "a full disk under --log: one warning, the run trains to the end and saves"
else fail "a full disk under --log" "exit $rc: $(grep -E "error|warning" "$TMP/logfull.out" | head -2)"; fi
rm -f "$MNT/fill"
printf '{"step": 0, "loss": 1}\n{"step": 1, "lo' >"$MNT/log.jsonl"
"$T" "${D[@]}" --steps 2 --log "$MNT/log.jsonl" >/dev/null 2>&1
if [ "$(sed -n 2p "$MNT/log.jsonl")" = '{"step": 1, "lo' ] &&
   [ "$(sed -n '3,$p' "$MNT/log.jsonl" | grep -vc '^{"step": [0-9]*, "loss": [0-9.]*, .*}$')" = 0 ] &&
   [ "$(wc -l <"$MNT/log.jsonl")" -ge 4 ]; then
  pass "a log left with a partial line: the next run ends it, its own lines each start a line"
else fail "partial log line" "$(head -c 300 "$MNT/log.jsonl")"; fi
finish
