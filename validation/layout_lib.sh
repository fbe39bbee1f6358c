# Shared by the layout tests (test_parallel.sh, full/layout_grid.inc): a
# training run of a layout and its comparison with the one-rank reference.
# The caller sets GLOBAL (sequences per optimizer step), COMMON (llama-train's
# arguments every run shares) and, for check_layout, the one-rank runs
# $TMP/refACCUM.jsonl and $TMP/refACCUM.hf.

# run NAME RANKS TP PP ZERO ACCUM [ARGS...]: trains, logs to $TMP/NAME.jsonl, exports to
# $TMP/NAME.hf; a --cp N among ARGS (or in COMMON) takes N of the ranks from data parallelism.
run() {
  local name=$1 np=$2 tp=$3 pp=$4 zero=$5 accum=$6
  shift 6
  local cp=1 prev=""
  for a in "${COMMON[@]}" "$@"; do [ "$prev" = --cp ] && cp=$a; prev=$a; done
  local dp=$((np / (tp * pp * cp)))
  local b=$((GLOBAL / (dp * accum)))
  timeout 300 "${MPIRUN[@]}" -np "$np" "$BIN/llama-train" "${COMMON[@]}" -b "$b" \
    --grad-accum "$accum" --tp "$tp" --pp "$pp" --zero "$zero" --log "$TMP/$name.jsonl" \
    --export-hf "$TMP/$name.hf" "$@" >"$TMP/$name.out" 2>&1
}

# field_match KEY A B: every logged KEY of A within 1e-5 relative of B's; a
# value that is not a finite number (null, nan: awk would read 0) never matches.
field_match() {
  awk -v key="\"$1\": " 'FNR==1{f++} index($0, key) {split(substr($0, index($0, key) + length(key)), v, /[,}]/);
      x[f,FNR]=v[1]; n[f]=FNR}
    END { if (n[1] != 10 || n[2] != 10) { print "steps " n[1] " vs " n[2]; exit 1 }
          num = "^-?[0-9]+(\\.[0-9]*)?([eE][-+]?[0-9]+)?$"
          for (i = 1; i <= 10; i++) { a = x[1,i]; b = x[2,i]
            if (a !~ num || b !~ num) { printf "step %d: %s vs %s (not finite)\n", i, a, b; exit 1 }
            d = a - b; if (d < 0) d = -d;
            if (d > 1e-5 * (b < 0 ? -b : b)) { printf "step %d: %s vs %s\n", i, a, b; exit 1 } } }' "$2" "$3"
}
losses_match() { field_match loss "$1" "$2" && field_match grad_norm "$1" "$2"; }

check_layout() {
  local name=$1 accum=$6 why
  if ! run "$@"; then fail "$name" "run failed: $(tail -n 3 "$TMP/$name.out")"; return; fi
  if ! why=$(losses_match "$TMP/$name.jsonl" "$TMP/ref$accum.jsonl"); then fail "$name" "losses: $why"; return; fi
  if ! why=$("$BIN/llama-ckpt" compare "$TMP/$name.hf" "$TMP/ref$accum.hf" --rtol 1e-5 2>&1); then
    fail "$name" "weights: $why"; return
  fi
  pass "$name: 10 losses, gradient norms and final weights equal one rank's"
}

# layout_model FILE LAYERS: the layout tests' model file, LAYERS layers of dim 64
# with grouped-query attention (8 heads, 4 KV heads) and a vocabulary of 250
# (padded to 252 under TP 4).
layout_model() {
  printf 'dim = 64\nn_layers = %d\nn_heads = 8\nn_kv_heads = 4\nffn_dim = 192\nvocab_size = 250\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n' "$2" >"$1"
}
