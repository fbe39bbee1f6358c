#!/usr/bin/env bash
# The parts of src/ and io/ and their one-way dependencies, as DESIGN.md's
# table ("Parts and their dependencies") states them: every `#include "..."`
# of a part names its own headers or those of a part it may include; `mpi.h`
# reaches no part marked "no" (each of their files compiles without MPI's
# include path); only parts marked "calls" call MPI functions; cuda/ never
# refers to validation/; the programs' mains live in src/app only.
source "$(dirname "$0")/lib.sh"
TREE=$ROOT
cd "$TREE" || exit 1

declare -A ALLOWED MPI_RULE PART_OF
parts=()
# Rows: | `part` | holds | `a` `b` ... | MPI |
while IFS='|' read -r _ part _ allowed mpi _; do
  part=$(tr -d '` ' <<<"$part")
  parts+=("$part")
  ALLOWED[$part]=" $(grep -o '`[^`]*`\|every part' <<<"$allowed" | tr -d '`' | tr '\n' ' ')"
  MPI_RULE[$part]=$(awk '{print $1}' <<<"$mpi")
done < <(grep -E '^\| `(src|io)/[a-z_0-9]+`|^\| `cuda`' DESIGN.md)
[ ${#parts[@]} -ge 10 ] || { fail "DESIGN.md's parts table" "found ${#parts[@]} rows"; finish; }

# One way: a part may include only parts of earlier rows (no cycles).
seen=" " upward=""
for p in "${parts[@]}"; do
  for a in ${ALLOWED[$p]}; do
    [ "$a" = every ] || [ "$a" = part ] || [[ "$seen" == *" $a "* ]] || upward+="$p -> $a; "
  done
  seen+="$p "
done
if [ -z "$upward" ]; then pass "DESIGN.md's table allows only downward dependencies"
else fail "DESIGN.md's table allows a dependency on a later row" "$upward"; fi

# Every folder is a part of the table, every part a folder.
for d in src/*/ io/*/; do
  d=${d%/}
  [ -n "${MPI_RULE[$d]:-}" ] || fail "folder $d" "is not a part of DESIGN.md's table"
done
for p in "${parts[@]}"; do [ -d "$p" ] || fail "part $p" "of DESIGN.md's table has no folder"; done
[ -z "$(find src io -maxdepth 1 -type f)" ] || fail "loose files" "$(find src io -maxdepth 1 -type f | head -3) belong in a part"

# Header name as included ("model/model.h") -> its part.
for p in "${parts[@]}"; do
  [ "$p" = cuda ] && continue
  for h in "$p"/*.h; do [ -e "$h" ] && PART_OF["${p#*/}/$(basename "$h")"]=$p; done
done

may_include() {   # part, part of the header
  [ "$1" = "$2" ] && return 0
  [[ "${ALLOWED[$1]}" == *" every part"* || "${ALLOWED[$1]}" == *" $2 "* ]]
}

edges=0 bad=0
for p in "${parts[@]}"; do
  for f in "$p"/*; do
    [ -f "$f" ] || continue
    while read -r inc; do
      [ -n "$inc" ] || continue
      edges=$((edges + 1))
      if [ "$p" = cuda ] && [ -e "cuda/$inc" ]; then continue; fi
      to=${PART_OF[$inc]:-}
      if [ -z "$to" ]; then
        fail "$f includes \"$inc\"" "no part holds that header (write includes as \"part/name.h\")"
        bad=$((bad + 1))
      elif ! may_include "$p" "$to"; then
        fail "$f includes \"$inc\"" "$p may not depend on $to (DESIGN.md's table)"
        bad=$((bad + 1))
      fi
    done < <(sed -nE 's/^[[:space:]]*#[[:space:]]*include[[:space:]]+"([^"]+)".*/\1/p' "$f")
  done
done
[ $bad -eq 0 ] && pass "$edges includes of ${#parts[@]} parts follow DESIGN.md's table"

# MPI: called only where the table says "calls"; mpi.h included only there.
calls=$(for p in "${parts[@]}"; do
  [ "${MPI_RULE[$p]}" = calls ] && continue
  grep -nE '^[[:space:]]*#[[:space:]]*include[[:space:]]*<mpi\.h>' "$p"/* 2>/dev/null
  for f in "$p"/*; do
    sed 's|//.*||' "$f" | grep -nE '\bMPI_[A-Z][A-Za-z_]*[[:space:]]*\(' | sed "s|^|$f:|"
  done
done)
if [ -z "$calls" ]; then pass "MPI is called and mpi.h included only in the parts marked \"calls\""
else fail "MPI outside its parts" "$(head -n 5 <<<"$calls")"; fi

# Parts marked "no": every file compiles without MPI's (or HDF5's) include path.
CC_PLAIN=${CC_PLAIN:-gcc}
BLAS_INC=$(ls -d /usr/include/*/openblas-openmp 2>/dev/null | head -n 1)
plain_bad=""
n_plain=0
for p in "${parts[@]}"; do
  [ "${MPI_RULE[$p]}" = no ] || continue
  for f in "$p"/*.c "$p"/*.h "$p"/*.cc; do
    [ -e "$f" ] || continue
    n_plain=$((n_plain + 1))
    lang=(-std=c11 -x c); cc=$CC_PLAIN
    [[ "$f" == *.cc ]] && lang=(-std=c++17 -x c++) cc=${CXX_PLAIN:-g++}
    if ! out=$($cc "${lang[@]}" -D_GNU_SOURCE -fopenmp -fsyntax-only -Isrc -Iio \
               ${BLAS_INC:+-I$BLAS_INC} "$f" 2>&1); then
      plain_bad+="$f: $(grep -m1 -E 'error' <<<"$out")"$'\n'
    fi
  done
done
if [ -z "$plain_bad" ]; then pass "$n_plain files of the parts marked \"no\" compile without MPI"
else fail "parts marked \"no\" reach MPI (or do not compile alone)" "$(head -n 5 <<<"$plain_bad")"; fi

# C11 in src/ and io/; the one C++ file there is the SentencePiece library's C face.
cxx=$(find src io -type f \( -name '*.cc' -o -name '*.cpp' -o -name '*.cxx' \) | grep -vx 'io/tokenizer/sentencepiece_model.cc')
if [ -z "$cxx" ]; then pass "src/ and io/ are C, but for the SentencePiece library's C face"
else fail "C++ in src/ or io/" "$cxx (only io/tokenizer/sentencepiece_model.cc may be: DESIGN.md)"; fi

refs=$(grep -rn 'validation' cuda/ 2>/dev/null)
if [ -z "$refs" ]; then pass "cuda/ refers to nothing in validation/"
else fail "cuda/ refers to validation/" "$(head -n 3 <<<"$refs")"; fi

mains=$(grep -lE '^int main\(' $(find src io cuda -type f) 2>/dev/null | grep -v '^src/app/')
if [ -z "$mains" ]; then pass "the programs' mains live in src/app only"
else fail "a main outside src/app" "$mains"; fi
finish
