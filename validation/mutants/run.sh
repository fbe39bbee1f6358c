#!/usr/bin/env bash
# Mutation testing, `make test-mutants` (not part of `make test`): every
# deliberate breakage listed in validation/mutants/mutants.txt must make one of
# the tests it names fail.  The tree (tracked and untracked, not ignored files;
# no build outputs) is copied to a scratch folder and built there once: the CPU
# programs and unit tests with CUDA=0 in build/, the emulator of the CUDA
# kernels (no nvcc run; validation/emu) in build-emu/, linked into build/ where
# the tests look.  Then, one mutant at a time: apply it (an exact replacement of
# a snippet that must occur exactly once, else the mutant is "stale"), rebuild
# what its tests use (a failed build: "invalid"), run its tests in order until
# one fails ("killed" by it) or none does ("survived"), restore the file.
# Before the mutants, every test named runs on the unmutated copy and must pass,
# so that a kill means something.  Ends with a table; exit 0 only when every
# mutant was killed.
#
#   MUTANTS=a,b         only these mutants (names from the list)
#   MUTANT_LIST=file    another list (the harness's own check)
#   MUTANT_DIR=dir      scratch folder (default /tmp/llama-mutants; kept between
#                       runs, brought up to date with the tree by content)
#   MUTANT_BUDGET=s     total seconds (default 3300); mutants not started by
#                       then are reported "not run" and fail the run
#   MUTANT_TEST_TIMEOUT=s   per test run (default 400; a test that hangs on a
#                       mutant is killed then, and that counts as a kill)
#   MUTANT_BASELINE=0   skip the run of the tests on the unmutated copy
#   run.sh --check      only check that every mutant still applies (no build)
set -uo pipefail
shopt -u patsub_replacement 2>/dev/null || true   # bash 5.2: '&' in a replacement stays '&'

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
LIST=${MUTANT_LIST:-$ROOT/validation/mutants/mutants.txt}
WORK=${MUTANT_DIR:-/tmp/llama-mutants}
TREE=$WORK/tree
LOGS=$WORK/logs
BUDGET=${MUTANT_BUDGET:-3300}
TEST_TIMEOUT=${MUTANT_TEST_TIMEOUT:-400}
JOBS=${MUTANT_JOBS:-2}
EMU_TARGETS=(tests/test_gpu_emu tests/test_mma_emu emu/llama-train)
# The programs every script may run: the Makefile's PROGRAMS, one per src/app/*_main.c.
PROGRAM_TARGETS=()
for f in "$ROOT"/src/app/*_main.c; do f=${f##*/}; PROGRAM_TARGETS+=("cpu:llama-${f%_main.c}"); done
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMP_NUM_THREADS=1 BUILD=build
START=$(date +%s)

die() { echo "test-mutants: $*" >&2; exit 2; }
elapsed() { echo $(($(date +%s) - START)); }

# ---- the list ----
# A mutant: "=== name", then "file:", "what:" and one or more "test:" lines,
# then "--- from" and "--- to", each followed by whole lines of code.

M_NAME=() M_FILE=() M_WHAT=() M_TESTS=() M_FROM=() M_TO=()

# Drops the lines at the end of a snippet that are blank or comments of the
# list ("#" alone or "# " and text: what separates mutants); every snippet ends
# with one newline.
trim_snippet() {
  local s=$1 last
  while [ -n "$s" ]; do
    last=${s%$'\n'}; last=${last##*$'\n'}
    [[ -z $last || $last == "#" || $last == "# "* ]] || break
    s=${s%$'\n'}; s=${s%"$last"}
  done
  printf '%s' "$s"
}

parse_list() {
  local line section="" i=-1 n=0
  [ -f "$LIST" ] || die "no list $LIST"
  while IFS= read -r line || [ -n "$line" ]; do
    n=$((n + 1))
    case $line in
      "=== "*) i=$((i + 1)); section=head
        M_NAME[i]=${line#=== }; M_FILE[i]=""; M_WHAT[i]=""; M_TESTS[i]=""; M_FROM[i]=""; M_TO[i]=""
        continue ;;
      "--- from") [ $i -ge 0 ] || die "$LIST:$n: '--- from' outside a mutant"; section=from; continue ;;
      "--- to") [ "$section" = from ] || die "$LIST:$n: '--- to' without '--- from' before it"; section=to; continue ;;
    esac
    case $section in
      "") [[ $line =~ ^(#.*)?$ ]] || die "$LIST:$n: expected a comment or '=== name'" ;;
      head) case $line in
          "file: "*) M_FILE[i]=${line#file: } ;;
          "what: "*) M_WHAT[i]=${line#what: } ;;
          "test: "*) M_TESTS[i]+=${line#test: }$'\n' ;;
          "#"* | "") ;;
          *) die "$LIST:$n: expected file:, what:, test: or '--- from'" ;;
        esac ;;
      from) M_FROM[i]+=$line$'\n' ;;
      to) M_TO[i]+=$line$'\n' ;;
    esac
  done <"$LIST"
  local k
  for k in "${!M_NAME[@]}"; do
    M_FROM[k]=$(trim_snippet "${M_FROM[k]}"); M_TO[k]=$(trim_snippet "${M_TO[k]}")
    [ -n "${M_FILE[k]}" ] && [ -n "${M_TESTS[k]}" ] && [ -n "${M_FROM[k]}" ] ||
      die "mutant ${M_NAME[k]}: needs file:, test: and a '--- from' snippet"
    [ "${M_FROM[k]}" != "${M_TO[k]}" ] || die "mutant ${M_NAME[k]}: the replacement is the original"
  done
}

# Indices of the mutants to run (MUTANTS=a,b or all), unknown names refused.
select_mutants() {
  local want k found
  SELECTED=()
  if [ -z "${MUTANTS:-}" ]; then SELECTED=("${!M_NAME[@]}"); return; fi
  for want in ${MUTANTS//,/ }; do
    found=""
    for k in "${!M_NAME[@]}"; do [ "${M_NAME[k]}" = "$want" ] && found=$k; done
    [ -n "$found" ] || die "MUTANTS: no mutant '$want' in $LIST"
    SELECTED+=("$found")
  done
}

check_names_unique() {
  local dup
  dup=$(printf '%s\n' "${M_NAME[@]}" | sort | uniq -d | head -1)
  [ -z "$dup" ] || die "mutant '$dup' is defined twice in $LIST"
}

# ---- applying ----

# The file PATH with a newline in front, so that every line of it, the first
# included, lies between two newlines.
read_lines() { local c; c=$(cat "$1"; printf x); printf '\n%s' "${c%x}"; }

# Occurrences of the snippet FROM as whole lines of file PATH.
count_in() {
  local content rest needle=$'\n'$2$'\n'
  content=$(read_lines "$1"; printf x); content=${content%x}
  rest=${content//"$needle"/}
  echo $(((${#content} - ${#rest}) / ${#needle}))
}

APPLIED=""   # the file a mutant is applied to now (restored on exit)

apply_mutant() {   # I: 0 applied; 1 stale (why in WHY)
  local i=$1 path=$TREE/${M_FILE[$1]} content n
  [ -f "$path" ] || { WHY="${M_FILE[i]} does not exist"; return 1; }
  n=$(count_in "$path" "${M_FROM[i]}")
  [ "$n" -eq 1 ] || { WHY="its original snippet occurs $n times in ${M_FILE[i]}, not once"; return 1; }
  cp "$path" "$WORK/original"
  APPLIED=$path
  content=$(read_lines "$path"; printf x); content=${content%x}
  content=${content/$'\n'"${M_FROM[i]}"$'\n'/$'\n'"${M_TO[i]}${M_TO[i]:+$'\n'}"}
  printf '%s' "${content#$'\n'}" >"$path"
}

# The original back, with a new time stamp, so the next build recompiles it.
restore() {
  [ -n "$APPLIED" ] || return 0
  cp "$WORK/original" "$APPLIED" && touch "$APPLIED"
  APPLIED=""
}

TEST_PID=""   # the running test's timeout, leader of the test's process group

# Interrupted: the running test's processes end (timeout put them in a group
# of their own, out of reach of the terminal's ^C), then the file is restored.
interrupted() {
  [ -z "$TEST_PID" ] || kill -TERM -- "-$TEST_PID" 2>/dev/null || kill -TERM "$TEST_PID" 2>/dev/null
  restore
  echo "test-mutants: interrupted; the scratch copy is restored" >&2
  exit 130
}
trap 'restore' EXIT
trap 'interrupted' INT TERM

# ---- the scratch tree and its builds ----

tree_files() {
  if git -C "$ROOT" rev-parse --git-dir >/dev/null 2>&1; then
    git -C "$ROOT" ls-files -z --cached --others --exclude-standard
  else
    (cd "$ROOT" && find . -type f ! -path './build*' ! -path './runs/*' ! -path './.git/*' \
      ! -path './.deps/*' ! -path './.gpu/*' -printf '%P\0')
  fi
}

# Copies the files whose content differs (a new time stamp: they rebuild) and
# removes those the tree no longer has (listed in $WORK/files by the last run).
sync_tree() {
  local f n=0 gone
  mkdir -p "$TREE" "$LOGS"
  : >"$WORK/files.new"
  while IFS= read -r -d '' f; do
    [ -f "$ROOT/$f" ] || continue   # deleted, still in the index
    printf '%s\n' "$f" >>"$WORK/files.new"
    cmp -s "$ROOT/$f" "$TREE/$f" && continue
    mkdir -p "$TREE/$(dirname "$f")" && cp "$ROOT/$f" "$TREE/$f" || die "cannot copy $f to $TREE"
    n=$((n + 1))
  done < <(tree_files)
  sort -o "$WORK/files.new" "$WORK/files.new"
  [ -f "$WORK/files" ] || : >"$WORK/files"
  gone=$(comm -23 <(sort "$WORK/files") "$WORK/files.new")
  [ -z "$gone" ] || (cd "$TREE" && xargs -d '\n' rm -f <<<"$gone")
  mv "$WORK/files.new" "$WORK/files"
  echo "test-mutants: $n files copied to $TREE, $(grep -c . <<<"$gone") removed"
}

# The emulator build exists only where the Makefile finds nvcc (it is not run).
emu_available() {
  (cd "$TREE" && make -n BUILD=build-emu build-emu/tests/test_gpu_emu >/dev/null 2>&1)
}

# make [cpu|emu] TARGET...: targets relative to the build folder.
build_targets() {
  local cpu=() emu=() t
  for t in "$@"; do
    case $t in cpu:*) cpu+=("build/${t#cpu:}") ;; emu:*) emu+=("build-emu/${t#emu:}") ;; esac
  done
  (cd "$TREE" &&
    { [ ${#cpu[@]} -eq 0 ] || make -j"$JOBS" CUDA=0 "${cpu[@]}"; } &&
    { [ ${#emu[@]} -eq 0 ] || [ -z "$EMU" ] || make -j"$JOBS" BUILD=build-emu "${emu[@]}"; })
}

build_all() {
  local t all=("${PROGRAM_TARGETS[@]}")
  for t in "$TREE"/validation/unit/test_*.c "$TREE"/validation/gpu/test_*.c; do
    t=${t##*/}; all+=("cpu:tests/${t%.c}")
  done
  for t in "${EMU_TARGETS[@]}"; do all+=("emu:$t"); done
  build_targets "${all[@]}" >"$LOGS/build.log" 2>&1 || {
    tail -n 20 "$LOGS/build.log"; die "the unmutated copy does not build (log: $LOGS/build.log)"; }
  mkdir -p "$TREE/build/tests" "$TREE/build/emu"
  [ -z "$EMU" ] || for t in "${EMU_TARGETS[@]}"; do ln -sfn "$TREE/build-emu/$t" "$TREE/build/$t"; done
}

# ---- tests ----
# A test: optional VAR=value words, then a unit test's name (build/tests/NAME)
# or a script's path (validation/...sh).

test_name() { local w n=""; for w in $1; do [[ $w == *=* ]] || n=$w; done; echo "$n"; }

# The build targets a test runs: a unit test itself and the programs its
# source names; a script the programs and the binaries it names ($BIN/tests/...,
# $BIN/emu/...).
test_targets() {
  local name t src
  name=$(test_name "$1")
  case $name in
    test_gpu_emu | test_mma_emu) echo "emu:tests/$name" ;;
    *.sh)
      echo "${PROGRAM_TARGETS[@]}"
      for t in $(grep -o '\$BIN/[a-z]*/[a-z_0-9-]*' "$TREE/$name" | sort -u); do
        t=${t#\$BIN/}
        case $t in tests/test_gpu_emu | tests/test_mma_emu | emu/*) echo "emu:$t" ;; *) echo "cpu:$t" ;; esac
      done ;;
    *)
      echo "cpu:tests/$name"
      for src in "$TREE/validation/unit/$name.c" "$TREE/validation/gpu/$name.c"; do
        [ -f "$src" ] && grep -oE 'llama-(train|ckpt|tokenize)' "$src" | sort -u | sed 's/^/cpu:/'
      done ;;
  esac
}

# Runs test SPEC with its output in LOG; RESULT: "pass", why it failed, or
# "cannot run: ..." (not a failure of the test).
run_test() {
  local spec=$1 log=$2 env=() w name cmd rc fails
  for w in $spec; do [[ $w == *=* ]] && env+=("$w") || name=$w; done
  case $name in
    *.sh) [ -f "$TREE/$name" ] || { RESULT="cannot run: no script $name"; return; }
          cmd=(bash "$name") ;;
    *) [ -x "$TREE/build/tests/$name" ] || { RESULT="cannot run: no build/tests/$name"; return; }
       cmd=("build/tests/$name") ;;
  esac
  # In the background, so that a signal reaches the trap at once (wait returns).
  (cd "$TREE" && exec timeout -k 10 "$TEST_TIMEOUT" env ${env[@]+"${env[@]}"} "${cmd[@]}") \
    >"$log" 2>&1 </dev/null &
  TEST_PID=$!
  wait "$TEST_PID"
  rc=$?
  TEST_PID=""
  # Result lines, perhaps indented or behind mpirun's "[1,0]<stdout>:" (as validation/run.sh).
  fails=$(sed -nE 's/^[[:space:]]*(\[[0-9]+,[0-9]+\]<std(out|err)>:[[:space:]]*)?(FAIL .*)$/\3/p' "$log")
  if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then RESULT="timed out after $TEST_TIMEOUT s"
  elif [ -n "$fails" ]; then RESULT=$(head -n 1 <<<"$fails" | cut -c1-160)
  elif [ $rc -ne 0 ]; then RESULT="exited with status $rc"
  elif ! grep -Eq '(^|[>:[:space:]])PASS ' "$log"; then RESULT="no PASS line (only skipped?)"
  else RESULT=pass; fi
}

log_name() { local s=${1// /_}; s=${s//\//_}; echo "${s//=/-}"; }

# Every test the selected mutants name must pass on the unmutated copy.
baseline() {
  local specs spec bad=0
  specs=$(for i in "${SELECTED[@]}"; do printf '%s' "${M_TESTS[i]}"; done | sort -u)
  echo "test-mutants: the tests on the unmutated copy ($(wc -l <<<"$specs") runs)"
  while IFS= read -r spec; do
    local t0=$(date +%s)
    run_test "$spec" "$LOGS/baseline.$(log_name "$spec").log"
    printf '  %-55s %s (%d s)\n' "$spec" "$RESULT" $(($(date +%s) - t0))
    [ "$RESULT" = pass ] || bad=1
  done <<<"$specs"
  [ $bad -eq 0 ] || die "a test fails without any mutant: fix it first (logs in $LOGS)"
}

# ---- one mutant ----

# Sets VERDICT (KILLED SURVIVED STALE INVALID) and DETAIL.
run_mutant() {
  local i=$1 name=${M_NAME[$1]} spec targets=() t
  if ! apply_mutant "$i"; then VERDICT=STALE DETAIL=$WHY; return; fi
  while IFS= read -r spec; do
    [ -n "$spec" ] && for t in $(test_targets "$spec"); do targets+=("$t"); done
  done <<<"${M_TESTS[i]}"
  if ! build_targets $(printf '%s\n' "${targets[@]}" | sort -u) >"$LOGS/$name.build.log" 2>&1; then
    VERDICT=INVALID DETAIL="does not build: $(grep -m1 -E 'error' "$LOGS/$name.build.log" | cut -c1-150)"
    restore; return
  fi
  VERDICT=SURVIVED DETAIL="${M_WHAT[i]}: no test failed ($(paste -sd, <<<"${M_TESTS[i]%$'\n'}" | sed 's/,/, /g'))"
  while IFS= read -r spec; do
    [ -n "$spec" ] || continue
    run_test "$spec" "$LOGS/$name.$(log_name "$spec").log"
    case $RESULT in
      pass) continue ;;
      "cannot run: "*) VERDICT=INVALID DETAIL="$spec: $RESULT" ;;
      *) VERDICT=KILLED DETAIL="$spec: $RESULT" ;;
    esac
    break
  done <<<"${M_TESTS[i]}"
  restore
}

# Whether test SPEC names a test that exists: a script by its path, a unit
# or GPU test by its name.
test_exists() {
  local name
  name=$(test_name "$1")
  case $name in
    test_gpu_emu | test_mma_emu) return 0 ;;
    *.sh) [ -f "$ROOT/$name" ] ;;
    *) [ -f "$ROOT/validation/unit/$name.c" ] || [ -f "$ROOT/validation/gpu/$name.c" ] ;;
  esac
}

check_only() {
  local i bad=0 n spec
  for i in "${SELECTED[@]}"; do
    if [ ! -f "$ROOT/${M_FILE[i]}" ]; then echo "STALE ${M_NAME[i]}: no file ${M_FILE[i]}"; bad=1; continue; fi
    n=$(count_in "$ROOT/${M_FILE[i]}" "${M_FROM[i]}")
    [ "$n" -eq 1 ] || { echo "STALE ${M_NAME[i]}: its snippet occurs $n times in ${M_FILE[i]}"; bad=1; }
    while IFS= read -r spec; do
      [ -z "$spec" ] || test_exists "$spec" ||
        { echo "STALE ${M_NAME[i]}: no test '$spec' (a script by its path, a unit test by its name)"; bad=1; }
    done <<<"${M_TESTS[i]}"
  done
  echo "${#SELECTED[@]} mutants checked: $([ $bad -eq 0 ] && echo "all apply" || echo "some are stale")"
  exit $bad
}

main() {
  parse_list
  check_names_unique
  select_mutants
  [ "${1:-}" = --check ] && check_only
  echo "test-mutants: ${#SELECTED[@]} mutants from ${LIST#$ROOT/}; scratch $TREE; budget $BUDGET s"
  sync_tree
  EMU=""; emu_available && EMU=1 || echo "test-mutants: no emulator build here (nvcc not found): its tests cannot run"
  build_all
  echo "test-mutants: built the unmutated copy ($(elapsed) s)"
  [ "${MUTANT_BASELINE:-1}" = 0 ] || baseline
  local i k=0 t0 verdicts=() details=() secs=() killed=0
  for i in "${SELECTED[@]}"; do
    k=$((k + 1)); t0=$(date +%s)
    if [ "$(elapsed)" -ge "$BUDGET" ]; then VERDICT="NOT-RUN" DETAIL="the budget of $BUDGET s was spent"
    else run_mutant "$i"; fi
    verdicts[i]=$VERDICT details[i]=$DETAIL secs[i]=$(($(date +%s) - t0))
    [ "$VERDICT" = KILLED ] && killed=$((killed + 1))
    printf '[%2d/%d] %-34s %-8s %4d s  %s\n' "$k" "${#SELECTED[@]}" "${M_NAME[i]}" "$VERDICT" "${secs[i]}" "$DETAIL"
  done
  echo
  printf '%-34s %-8s %6s  %s\n' mutant verdict seconds "killed by (or why not)"
  for i in "${SELECTED[@]}"; do
    printf '%-34s %-8s %6d  %s\n' "${M_NAME[i]}" "${verdicts[i]}" "${secs[i]}" "${details[i]}"
  done
  echo "test-mutants: $killed of ${#SELECTED[@]} mutants killed in $(elapsed) s (logs in $LOGS)"
  [ "$killed" -eq "${#SELECTED[@]}" ]
}

main "$@"
