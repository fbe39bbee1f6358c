# Helpers for the shell tests: each case prints "PASS name" / "FAIL name: why"
# / "SKIP name: why"; validation/run.sh counts the lines.
BUILD=${BUILD:-build}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BIN=$ROOT/$BUILD
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_rmaps_base_oversubscribe=1
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
MPIRUN=(mpirun --oversubscribe -x OMP_NUM_THREADS --mca btl self,vader)
fails=0

pass() { echo "PASS $1"; }
fail() { echo "FAIL $1: $2"; fails=$((fails + 1)); }
skip() { echo "SKIP $1: $2"; }

# A fresh scratch folder removed on exit.
scratch() {
  TMP=$(mktemp -d "${TMPDIR:-/tmp}/llama-test.XXXXXX")
  [ -n "${KEEP:-}" ] && echo "keeping $TMP" || trap 'rm -rf "$TMP"' EXIT
}

# expect_error NAME PATTERN CMD...: CMD must exit non-zero within 60 s (killed 10 s after
# the SIGTERM that ends it then) and print
# a line matching PATTERN (extended regex) on stderr.
expect_error() { expect_exit "" "$@"; }
# expect_usage_error NAME PATTERN CMD...: as expect_error, with the exit status
# of a bad command line, 2.
expect_usage_error() { expect_exit 2 "$@"; }
# expect_exit STATUS NAME PATTERN CMD...: STATUS "" is any failure.
expect_exit() {
  local status=$1 name=$2 pattern=$3; shift 3
  local out rc
  out=$(timeout -k 10 60 "$@" 2>&1 >/dev/null); rc=$?
  if [ $rc -eq 0 ]; then fail "$name" "exited 0, expected an error"
  elif [ $rc -eq 124 ] || [ $rc -eq 137 ]; then fail "$name" "timed out (hang)"
  elif [ $rc -gt 128 ]; then fail "$name" "crashed with signal $((rc - 128)): $out"
  elif [ -n "$status" ] && [ $rc -ne "$status" ]; then fail "$name" "exit status $rc, expected $status: $out"
  elif ! grep -Eq -- "$pattern" <<<"$out"; then fail "$name" "message '$out' does not match /$pattern/"
  else pass "$name"; fi
}

finish() { exit $((fails > 0)); }

# make_byte_shards DIR: byte-level shards (vocab 256) of a real text in
# inputs/, with a validation split, written by llama-tokenize on 2 ranks.
make_byte_shards() {
  "${MPIRUN[@]}" -np 2 "$BIN/llama-tokenize" encode --tokenizer bytes \
    --input "$ROOT/inputs/redpajama-mini/wikipedia_sample.jsonl" --output "$1" \
    --val-fraction 0.05 >"$1.log" 2>&1 || { echo "making byte shards failed:"; cat "$1.log"; exit 1; }
}

# wait_for PATTERN FILE [SECONDS]: waits until FILE has a line matching
# PATTERN (polling, bounded); false on time-out.
wait_for() {
  local deadline=$(($(date +%s) + ${3:-120}))
  until grep -Eq -- "$1" "$2" 2>/dev/null; do
    [ "$(date +%s)" -ge "$deadline" ] && return 1
    sleep 0.05
  done
}

# buffer_peaks_within FILE RANKS PCT: FILE (a run's output) holds RANKS lines
# "rank r: buffers' peak X, predicted Y (±d%)" and every |d| ≤ PCT; prints the
# worst |d| (empty when none).
buffer_peaks_within() {
  local worst
  worst=$(grep -o "predicted [^(]*([-+][0-9.]*%)" "$1" | grep -o "[-+][0-9.]*%" | tr -d '%+-' | sort -g | tail -1)
  echo "$worst"
  [ "$(grep -c "buffers' peak .*, predicted " "$1")" = "$2" ] && awk -v w="$worst" -v p="$3" 'BEGIN { exit !(w != "" && w <= p) }'
}

# losses FILE: the logged per-step losses, one per line, as printed (%.9g).
losses() { grep -o '"loss": [^,]*' "$1" | cut -d' ' -f2; }
