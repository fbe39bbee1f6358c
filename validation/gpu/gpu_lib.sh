# Helpers of the GPU shell tests (sourced after validation/lib.sh).

# GPUs visible to this process (nvidia-smi; 0 without a driver).
gpu_count() {
  local n
  n=$(nvidia-smi -L 2>/dev/null | grep -c '^GPU') || n=0
  if [ -n "${CUDA_VISIBLE_DEVICES+x}" ]; then
    local v=${CUDA_VISIBLE_DEVICES//[^,0-9]/}
    if [ -z "$v" ]; then n=0; else
      local k; k=$(awk -F, '{print NF}' <<<"$v"); [ "$k" -lt "$n" ] && n=$k
    fi
  fi
  echo "$n"
}

# metric_close FIELD A B TOL: every logged FIELD ("loss", "grad_norm") of run A
# within TOL (relative) of run B's, the same number of steps; prints the worst
# step on failure.  A value that is not a finite number (null, nan: awk would
# read 0) never matches.
metric_close() {
  awk -F"\"$1\": " -v tol="$4" -v what="$1" 'FNR==1{f++} index($0, "\"" what "\": "){split($2,v,","); x[f,++n[f]]=v[1]}
    END { if (n[1] != n[2] || n[1] == 0) { print what ": steps " n[1] " vs " n[2]; exit 1 }
          worst = 0; ws = 0; num = "^-?[0-9]+(\\.[0-9]*)?([eE][-+]?[0-9]+)?$"
          for (i = 1; i <= n[1]; i++) { a = x[1,i]; b = x[2,i]
            if (a !~ num || b !~ num) { printf "%s of step %d: %s vs %s (not finite)\n", what, i, a, b; exit 1 }
            d = a - b; if (d < 0) d = -d
            r = d / (b < 0 ? -b : b); if (r > worst) { worst = r; ws = i } }
          if (worst > tol) { printf "%s of step %d: %s vs %s (%.3g > %g)\n", what, ws, x[1,ws], x[2,ws], worst, tol; exit 1 }
          printf "%d steps, worst %s %.2g at step %d", n[1], what, worst, ws }' "$2" "$3"
}

# losses_close A B TOL: metric_close for the losses.
losses_close() { metric_close loss "$@"; }

# run_close A B LOSS_TOL NORM_TOL: the losses and the gradient norms of every step.
run_close() {
  local l g
  l=$(metric_close loss "$1" "$2" "$3") || { echo "$l"; return 1; }
  g=$(metric_close grad_norm "$1" "$2" "$4") || { echo "$g"; return 1; }
  echo "$l; $g"
}

# weights_close STEP NAME REF TOL LABEL: the weights runs NAME and REF saved
# after step STEP (-i STEP -o $TMP/ck-NAME) within TOL (llama-ckpt compare,
# worst tensor ‖a−b‖/‖b‖); one PASS or FAIL line.
weights_close() {
  local dir why
  dir=step_$(printf %07d "$1")
  if why=$("$BIN/llama-ckpt" compare "$TMP/ck-$2/$dir" "$TMP/ck-$3/$dir" --rtol "$4" 2>&1)
  then pass "$5: $why"; else fail "$5" "$why"; fi
}

# loss_drop LOG: first loss minus the mean of the last three.
loss_drop() {
  losses "$1" | awk '{v[NR]=$1} END {printf "%.4f", v[1] - (v[NR] + v[NR-1] + v[NR-2]) / 3}'
}
