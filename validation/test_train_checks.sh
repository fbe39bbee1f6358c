#!/usr/bin/env bash
# What llama-train checks before it trains (issue 11, cases 5, 10 and 13):
# every path it will write (--save-dir, --export-hf, --log, --dump-batches)
# and the sample's --tokenizer are refused before the first step, on rank 0,
# with every rank exiting; a failed export at the end leaves the final
# checkpoint; resuming into another rope_theta or norm_eps is refused unless
# --override-checkpoint-config, and an --init-hf into another rope_theta is
# noted; llama-ckpt's bad usage exits 2; the learning-rate schedule's step
# lines, and its start-up line against them; a resume's optimizer-change note;
# --num-epochs resumed under another global batch draws the epoch once.
source "$(dirname "$0")/lib.sh"
scratch
T=$BIN/llama-train
make_byte_shards "$TMP/data"
D=(-c tiny -d "$TMP/data" -l 32 -b 4 --seed 1 --steps 2)

# early_error NAME PATTERN CMD...: CMD exits non-zero (no crash, no hang) with
# a line matching PATTERN, and no training step ran before it.
early_error() {
  local name=$1 pattern=$2; shift 2
  local out rc
  out=$(timeout 60 "$@" 2>&1); rc=$?
  if [ $rc -eq 0 ] || [ $rc -gt 123 ]; then fail "$name" "exit status $rc: $(tail -2 <<<"$out")"
  elif ! grep -Eq -- "$pattern" <<<"$out"; then fail "$name" "no line matches /$pattern/: $(tail -2 <<<"$out")"
  elif grep -q '^step ' <<<"$out"; then fail "$name" "training steps ran before the error"
  else pass "$name"; fi
}

# ---- case 5: output paths, before any training ----
touch "$TMP/afile"
mkdir -p "$TMP/unrelated" && echo "notes" >"$TMP/unrelated/notes.txt"
early_error "--save-dir under a file" "--save-dir $TMP/afile/ck cannot be a folder: '$TMP/afile' is a file" \
  "$T" "${D[@]}" -i 1 -o "$TMP/afile/ck"
early_error "--load auto with a --save-dir under a file" "--save-dir $TMP/afile/ck cannot be a folder" \
  "$T" "${D[@]}" --load auto -o "$TMP/afile/ck"
early_error "--export-hf under a file" "--export-hf $TMP/afile/hf cannot be a folder: '$TMP/afile' is a file" \
  "$T" "${D[@]}" --export-hf "$TMP/afile/hf"
early_error "--export-hf into an unrelated non-empty folder" \
  "--export-hf: $TMP/unrelated is neither empty nor a Hugging Face folder \(it holds 'notes.txt'" \
  "$T" "${D[@]}" --export-hf "$TMP/unrelated"
early_error "--log in a missing folder" "--log $TMP/none/m.jsonl: the folder '$TMP/none' does not exist" \
  "$T" "${D[@]}" --log "$TMP/none/m.jsonl"
early_error "--log naming a folder" "--log $TMP/unrelated is a folder" "$T" "${D[@]}" --log "$TMP/unrelated"
early_error "--dump-batches in a missing folder" "--dump-batches $TMP/none/d.bin: the folder '$TMP/none' does not exist" \
  "$T" "${D[@]}" --dump-batches "$TMP/none/d.bin"
if [ "$(id -u)" != 0 ]; then   # root writes through any mode bits
  mkdir -p "$TMP/readonly" && chmod 555 "$TMP/readonly"
  early_error "--export-hf in a read-only folder" "--export-hf $TMP/readonly/hf: cannot write in '$TMP/readonly'" \
    "$T" "${D[@]}" --export-hf "$TMP/readonly/hf"
fi
# An earlier export is replaced.
"$T" "${D[@]}" --export-hf "$TMP/hf" >/dev/null 2>&1
if "$T" "${D[@]}" --seed 2 --export-hf "$TMP/hf" >"$TMP/again.out" 2>&1 && [ -s "$TMP/hf/model.safetensors" ] &&
   grep -q "exported Hugging Face weights to $TMP/hf" "$TMP/again.out"; then
  pass "--export-hf replaces an earlier export"
else fail "--export-hf replaces an earlier export" "$(tail -2 "$TMP/again.out")"; fi
# An export killed before its files moved in leaves DIR/.export-staging (in a
# folder new to it): the next export takes its place.
mkdir -p "$TMP/crashed/.export-staging" && echo partial >"$TMP/crashed/.export-staging/model.safetensors.tmp"
if "$T" "${D[@]}" --export-hf "$TMP/crashed" >"$TMP/crashed.out" 2>&1 && [ -s "$TMP/crashed/model.safetensors" ] &&
   [ ! -e "$TMP/crashed/.export-staging" ]; then
  pass "--export-hf over a killed export's staging folder"
else fail "--export-hf over a killed export's staging folder" "$(grep error "$TMP/crashed.out"; ls -A "$TMP/crashed")"; fi
# The export's folder holds the export alone: checkpoints or a log inside it
# would fail the export after training (an export inside -o is fine).
early_error "--export-hf holding the --save-dir" "--export-hf $TMP/xs and --save-dir share a folder" \
  "$T" "${D[@]}" -i 1 -o "$TMP/xs/ck" --export-hf "$TMP/xs"
early_error "--export-hf holding the --log" "--export-hf $TMP/xl/ and --log share a folder" \
  "$T" "${D[@]}" --log "$TMP/xl/./log.jsonl" --export-hf "$TMP/xl/"
if "$T" "${D[@]}" -o "$TMP/xo" --export-hf "$TMP/xo/hf" >"$TMP/xo.out" 2>&1 && [ -s "$TMP/xo/hf/model.safetensors" ] &&
   [ -d "$TMP/xo/step_0000002" ]; then pass "--export-hf inside the --save-dir: both written"
else fail "--export-hf inside the --save-dir" "$(tail -2 "$TMP/xo.out")"; fi
# A Hugging Face folder this program did not write (a released model's: its
# own config.json, sharded weights, an index, its tokenizer) is not replaced.
mkdir -p "$TMP/released" && cp "$ROOT/validation/golden/llama-tiny/config.json" "$ROOT/inputs/tokenizer.json" "$TMP/released/"
echo '{}' >"$TMP/released/model.safetensors.index.json"
early_error "--export-hf into a released model's folder (an index)" \
  "--export-hf: $TMP/released is a Hugging Face folder this program did not export \(it holds 'model.safetensors.index.json'\)" \
  "$T" "${D[@]}" --export-hf "$TMP/released"
mkdir -p "$TMP/released2" && cp "$TMP/released/config.json" "$TMP/released/tokenizer.json" "$TMP/released2/"
early_error "--export-hf into a released model's folder (only names an export writes)" \
  "$TMP/released2 is a Hugging Face folder this program did not export \(its config.json has no \"exported_by\": \"llama-hpc\"\)" \
  "$T" "${D[@]}" --export-hf "$TMP/released2"
cp "$TMP/released/model.safetensors.index.json" "$TMP/hf/"
early_error "--export-hf over an earlier export with a foreign file" \
  "this program did not export \(it holds 'model.safetensors.index.json'\)" "$T" "${D[@]}" --export-hf "$TMP/hf"
[ -s "$TMP/released/tokenizer.json" ] && [ -s "$TMP/released2/tokenizer.json" ] && [ -s "$TMP/hf/model.safetensors" ] &&
  pass "the refused exports removed nothing" || fail "refused export" "a file was removed"
# On 2 ranks: one message, both ranks exit, no hang.
out=$(timeout 60 "${MPIRUN[@]}" -np 2 "$T" "${D[@]}" --export-hf "$TMP/afile/hf" 2>&1 >/dev/null); rc=$?
n=$(grep -c "cannot be a folder" <<<"$out")
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$n" -eq 1 ]; then pass "a bad output path on 2 ranks: one message, the job ends"
else fail "a bad output path on 2 ranks" "exit $rc, message printed $n times: $out"; fi

# ---- case 13 (and 5): the sample's tokenizer ----
early_error "--sample-tokens without --tokenizer" "--sample-tokens 4 needs --tokenizer FILE" \
  "$T" "${D[@]}" --sample-tokens 4
early_error "a missing --tokenizer file" "--tokenizer: cannot open tokenizer file '$TMP/none.json'" \
  "$T" "${D[@]}" --sample-tokens 4 --tokenizer "$TMP/none.json"
echo '{"model": {"type": "BPE"' >"$TMP/broken.json"
early_error "a malformed --tokenizer file" "--tokenizer: .*broken.json" \
  "$T" "${D[@]}" --sample-tokens 4 --tokenizer "$TMP/broken.json"
early_error "a --tokenizer larger than the model's vocabulary" \
  "--tokenizer $ROOT/inputs/tokenizer.json has 8192 tokens, more than the vocabulary of the model tiny \(256\)" \
  "$T" "${D[@]}" --sample-tokens 4 --tokenizer "$ROOT/inputs/tokenizer.json"
# Shards of the bundled BPE tokenizer, a model with its vocabulary, the byte tokenizer for the sample.
mkdir -p "$TMP/bpe-src"
head -n 3 "$ROOT/inputs/redpajama-mini/wikipedia_sample.jsonl" >"$TMP/bpe-src/w.jsonl"
"$BIN/llama-tokenize" encode --tokenizer "$ROOT/inputs/tokenizer.json" --input "$TMP/bpe-src/w.jsonl" \
  --output "$TMP/bpe" --val-fraction 0 >/dev/null 2>&1
printf 'dim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 128\nvocab_size = 8192\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n' >"$TMP/v8k.model"
early_error "a --tokenizer other than the dataset's" \
  "--tokenizer bytes is not the tokenizer the dataset $TMP/bpe was encoded with \(sha256 277089d91c0b…, the shards say" \
  "$T" -c "$TMP/v8k.model" -d "$TMP/bpe" -l 32 --steps 2 --sample-tokens 4 --tokenizer bytes
if "$T" -c "$TMP/v8k.model" -d "$TMP/bpe" -l 32 --steps 2 --sample-tokens 4 --tokenizer "$ROOT/inputs/tokenizer.json" \
     >"$TMP/sample.out" 2>&1 && grep -q "sample (greedy, 4 new tokens)" "$TMP/sample.out"; then
  pass "the dataset's own --tokenizer prints the sample"
else fail "the dataset's own --tokenizer" "$(tail -2 "$TMP/sample.out")"; fi

# ---- case 5: an export that fails at the end leaves the final checkpoint ----
MNT=$TMP/mnt
mkdir -p "$MNT"
if mount -t tmpfs -o size=256k tmpfs "$MNT" 2>"$TMP/mount.err"; then
  trap 'umount "$MNT" 2>/dev/null; rm -rf "$TMP"' EXIT
  "${MPIRUN[@]}" -np 2 "$T" "${D[@]}" -i 2 -o "$TMP/ck-end" --export-hf "$MNT/hf" >"$TMP/full.out" 2>&1; rc=$?
  if [ $rc -ne 0 ] && grep -q -- "--export-hf $MNT/hf failed: .*No space left on device" "$TMP/full.out" &&
     [ -z "$(ls -A "$MNT/hf")" ] && "$BIN/llama-ckpt" info "$TMP/ck-end/step_0000002" >/dev/null 2>&1 &&
     "$BIN/llama-ckpt" export-hf "$TMP/ck-end/step_0000002" "$TMP/hf-later" >/dev/null 2>&1; then
    pass "a full disk at the final export (2 ranks): one error, nothing half-written, the final checkpoint exports later"
  else fail "a full disk at the final export" "exit $rc: $(grep error "$TMP/full.out"; ls -A "$MNT/hf")"; fi
  # Without periodic saves (-i 0) the weights are saved when the export fails.
  "${MPIRUN[@]}" -np 2 "$T" "${D[@]}" -i 0 -o "$TMP/ck-rescue" --export-hf "$MNT/hf" >"$TMP/rescue.out" 2>&1; rc=$?
  if [ $rc -ne 0 ] && grep -q -- "the trained weights are in $TMP/ck-rescue/step_0000002" "$TMP/rescue.out" &&
     "$BIN/llama-ckpt" info "$TMP/ck-rescue/step_0000002" >/dev/null 2>&1; then
    pass "a full disk at the final export with -i 0: the weights are saved and named"
  else fail "export failure with -i 0" "exit $rc: $(grep error "$TMP/rescue.out")"; fi
  # Without any checkpoint folder: not ./checkpoints (another run's, maybe) but its own.
  mkdir -p "$TMP/rc"
  (cd "$TMP/rc" && exec "${MPIRUN[@]}" -np 2 "$T" "${D[@]}" --export-hf "$MNT/hf") >"$TMP/rc.out" 2>&1; rc=$?
  if [ $rc -ne 0 ] && grep -q -- "the trained weights are in checkpoints-rescue/step_0000002" "$TMP/rc.out" &&
     "$BIN/llama-ckpt" info "$TMP/rc/checkpoints-rescue/step_0000002" >/dev/null 2>&1 && [ ! -e "$TMP/rc/checkpoints" ]; then
    pass "a full disk at the final export without -o: the weights saved in ./checkpoints-rescue, not ./checkpoints"
  else fail "export failure without -o" "exit $rc: $(grep error "$TMP/rc.out"; ls "$TMP/rc")"; fi
  # A new export that fails after its weights (the disk fills at the tokenizer,
  # which is larger than this model's weights) leaves an earlier export in the
  # folder as it was.
  printf 'dim = 8\nn_layers = 1\nn_heads = 2\nn_kv_heads = 1\nffn_dim = 16\nvocab_size = 8192\nmax_seq_len = 64\nrope_theta = 10000\nnorm_eps = 1e-5\n' >"$TMP/thin.model"
  "$T" -c "$TMP/thin.model" -d "$TMP/bpe" -l 32 -b 4 --steps 2 -i 1 -o "$TMP/ck-v8k" >/dev/null 2>&1
  X=(--tokenizer "$ROOT/inputs/tokenizer.json" --dtype bf16)
  umount "$MNT" && mount -t tmpfs -o size=8m tmpfs "$MNT" &&
    "$BIN/llama-ckpt" export-hf "$TMP/ck-v8k/step_0000001" "$MNT/prev" "${X[@]}" >/dev/null 2>&1
  before=$(cd "$MNT/prev" && sha256sum * | sha256sum)
  weights=$(stat -c %s "$MNT/prev/model.safetensors")
  mount -o remount,size=$(( $(df -k --output=used "$MNT" | tail -1) + weights / 1024 + 16 ))k "$MNT"
  out=$("$BIN/llama-ckpt" export-hf "$TMP/ck-v8k/step_0000002" "$MNT/prev" "${X[@]}" 2>&1); rc=$?
  if [ $rc -eq 1 ] && grep -q "No space left on device" <<<"$out" &&
     [ "$(cd "$MNT/prev" && sha256sum * | sha256sum)" = "$before" ] &&
     [ ! -e "$MNT/prev/.export-staging" ]; then
    pass "an export failing after its weights leaves the earlier export as it was"
  else fail "an export failing after its weights" "exit $rc: $out; $(ls -A "$MNT/prev")"; fi
  umount "$MNT"
else
  skip "a full disk at the final export" "cannot mount a tmpfs here ($(cat "$TMP/mount.err")); needs root"
fi

# ---- case 10: resuming into another rope_theta or norm_eps ----
"$T" "${D[@]}" -i 2 -o "$TMP/ck" >/dev/null 2>&1
model() {   # NAME ROPE_THETA NORM_EPS MAX_SEQ_LEN: the tiny preset's shape
  printf 'dim = 64\nn_layers = 4\nn_heads = 8\nn_kv_heads = 4\nffn_dim = 192\nvocab_size = 256\nmax_seq_len = %s\nrope_theta = %s\nnorm_eps = %s\n' \
    "$4" "$2" "$3" >"$TMP/$1.model"
}
model rope 500000 1e-5 256; model eps 10000 1e-6 256; model seq 10000 1e-5 128
R=(-d "$TMP/data" -l 32 -b 4 --seed 1 --steps 3 --load "$TMP/ck/step_0000002")
early_error "resuming into another rope_theta" \
  "was trained with rope_theta 10000 but the model $TMP/rope.model has rope_theta 500000: .*--override-checkpoint-config" \
  "$T" -c "$TMP/rope.model" "${R[@]}"
early_error "resuming into another norm_eps" "was trained with norm_eps 1e-05 but the model $TMP/eps.model has norm_eps 1e-06" \
  "$T" -c "$TMP/eps.model" "${R[@]}"
if "$T" -c "$TMP/rope.model" "${R[@]}" --override-checkpoint-config >"$TMP/override.out" 2>&1 &&
   grep -q "override-checkpoint-config: rope_theta 10000 of .* replaced by the model's 500000" "$TMP/override.out" &&
   grep -q "^step 3/3" "$TMP/override.out"; then
  pass "--override-checkpoint-config resumes with the model's rope_theta, and says so"
else fail "--override-checkpoint-config" "$(tail -2 "$TMP/override.out")"; fi
# --init-hf into a model of another rope_theta: trained with the model's, and said.
I=(--init-hf "$TMP/xo/hf" -d "$TMP/data" -l 16 -b 1 --steps 1)
other=$("$T" -c "$TMP/rope.model" "${I[@]}" 2>&1); same=$("$T" -c tiny "${I[@]}" 2>&1)
if grep -q "note: $TMP/xo/hf's config.json has RoPE theta 10000, scaling none, norm eps 1e-05; the model $TMP/rope.model trains its weights with theta 500000, scaling none, norm eps 1e-05" <<<"$other" &&
   grep -q "^step 1/1" <<<"$other" && grep -q "^step 1/1" <<<"$same" && ! grep -q "config.json has RoPE theta" <<<"$same"; then
  pass "--init-hf into another rope_theta: a note naming both; into the same: none"
else fail "--init-hf into another rope_theta" "$(grep -E 'note|error' <<<"$other$same")"; fi
if "$T" -c "$TMP/seq.model" "${R[@]}" >"$TMP/seq.out" 2>&1 &&
   grep -q "saved by a model with max_seq_len 256, this run's has 128" "$TMP/seq.out"; then
  pass "another max_seq_len resumes with a notice"
else fail "another max_seq_len resumes with a notice" "$(tail -2 "$TMP/seq.out")"; fi

# ---- llama-ckpt usage ----
C=$BIN/llama-ckpt
ckpt_usage() {   # NAME PATTERN ARGS...: exit 2, the reason and the usage on stderr, nothing on stdout
  local name=$1 pattern=$2; shift 2
  "$C" "$@" >"$TMP/u.out" 2>"$TMP/u.err"; local rc=$?
  if [ $rc -eq 2 ] && grep -Eq -- "$pattern" "$TMP/u.err" && grep -q "^usage:" "$TMP/u.err" && [ ! -s "$TMP/u.out" ]; then
    pass "$name"
  else fail "$name" "exit $rc, stderr: $(head -1 "$TMP/u.err")"; fi
}
ckpt_usage "llama-ckpt without a command" "error: no command given"
ckpt_usage "llama-ckpt with an unknown command" "error: unknown command 'frob'" frob a b
ckpt_usage "llama-ckpt info without its path" "error: info takes 1 path, got 0" info
ckpt_usage "llama-ckpt export-hf with one path" "error: export-hf takes 2 paths, got 1" export-hf "$TMP/ck/step_0000002"
ckpt_usage "llama-ckpt with an option its command lacks" "error: info does not take the option '--tp'" info "$TMP/ck/step_0000002" --tp 2
if "$C" --help 2>/dev/null | grep -q "^usage:"; then pass "llama-ckpt --help: usage on stdout, exit 0"
else fail "llama-ckpt --help" "no usage on stdout or a non-zero exit"; fi

# ---- Ctrl-C (SIGINT) of a run: like SIGTERM, it saves and exits 0 ----
"$T" -c tiny --bench -l 32 -b 2 --steps 1000000 -o "$TMP/ctrlc" --log "$TMP/ctrlc.jsonl" >"$TMP/ctrlc.out" 2>&1 &
pid=$!
if wait_for '"step": 3,' "$TMP/ctrlc.jsonl" 60; then
  kill -INT $pid
  wait $pid; rc=$?
  stopped=$(grep -o "stopped at step [0-9]*" "$TMP/ctrlc.out" | grep -o "[0-9]*$")
  if [ $rc -eq 0 ] && grep -q "received SIGINT (Ctrl-C): saving a checkpoint" "$TMP/ctrlc.out" &&
     [ -n "$stopped" ] && [ -f "$TMP/ctrlc/step_$(printf %07d "$stopped")/checkpoint.h5" ] && [ ! -e "$TMP/ctrlc/lock" ]; then
    pass "SIGINT (Ctrl-C): the step finished, step $stopped saved, the lock released, exit 0"
  else fail "SIGINT" "exit $rc: $(tail -3 "$TMP/ctrlc.out")"; fi
else kill -9 $pid 2>/dev/null; fail "SIGINT" "the run did not reach step 3"; fi

# ---- a signal during the closing evaluation: saved, marked preempted, the rest left to the requeue ----
LLAMA_TEST_SIGNAL_AT_CLOSE=0 "$T" "${D[@]}" --steps 3 --eval-interval 2 --eval-steps 0 -o "$TMP/ce" \
  --export-hf "$TMP/cehf" >"$TMP/ce.out" 2>&1; rc=$?
"$T" "${D[@]}" --steps 3 --eval-interval 2 --eval-steps 0 -o "$TMP/ce" --load auto --export-hf "$TMP/cehf" \
  --log "$TMP/ce2.jsonl" >"$TMP/ce2.out" 2>&1; rc2=$?
if [ $rc -eq 0 ] && grep -q "stopped at step 3 by a signal" "$TMP/ce.out" && ! grep -q "exported" "$TMP/ce.out" &&
   [ $rc2 -eq 0 ] && grep -q '"step": 3, "eval_loss"' "$TMP/ce2.jsonl" && [ -f "$TMP/cehf/model.safetensors" ] &&
   [ ! -e "$TMP/ce/preempted" ]; then
  pass "SIGTERM during the closing evaluation: step 3 saved and marked preempted, no export; the requeue evaluates and exports"
else fail "SIGTERM during the closing evaluation" "exit $rc/$rc2: $(tail -n 2 "$TMP/ce.out") / $(tail -n 1 "$TMP/ce2.out")"; fi

# ---- the learning-rate schedule's styles, step by step ----
# lr_schedule_check STYLE WANT OPTIONS...: the steps' learning rates (the step
# lines' "lr" column) are WANT, worked out by hand from the definitions: warm-up
# (s + 1)/warmup·lr; linear: lr − (lr − min)·(s − warmup)/(end − warmup);
# wsd: lr until end − wsd, then linear to min at end; min after end.
lr_schedule_check() {
  local style=$1 want=$2; shift 2
  local out got
  out=$("$T" --bench -c tiny -l 16 -b 1 --steps 7 --lr 1e-3 --min-lr-ratio 0.5 --warmup-steps 2 \
        --lr-decay-style "$style" "$@" 2>&1)
  got=$(sed -n 's/^step [0-9]*\/7 | loss [^|]*| lr \([^ ]*\) .*/\1/p' <<<"$out" | tr '\n' ' ')
  if [ "$got" = "$want" ]; then pass "--lr-decay-style $style${*:+ $*}: the learning rates of the 7 steps"
  else fail "--lr-decay-style $style $*" "learning rates '$got', expected '$want'"; fi
  # The start-up line agrees with the step lines: the last step's learning
  # rate, and (when the run ends at the minimum, 5e-4) the step that first
  # reaches it for good.
  local line uses reached first
  line=$(grep '^learning rate: ' <<<"$out")
  uses=$(sed -n "s/.*this run's last, uses \([^ ]*\)$/\1/p" <<<"$line")
  if awk -v u="$uses" -v l="${want% }" 'BEGIN { n = split(l, a, " "); exit !(u != "" && (u - a[n])^2 <= (1e-4 * a[n])^2) }'
  then pass "--lr-decay-style $style${*:+ $*}: the start-up line's last-step rate is step 7's"
  else fail "--lr-decay-style $style $*: last-step rate" "start-up line '$line', step lines '$want'"; fi
  if [ "${want##* 5.000e-04 }" = "" ]; then
    first=$(awk '{ f = NF; while (f > 1 && $(f - 1) == "5.000e-04") f--; print f }' <<<"$want")
    reached=$(sed -n 's/.*reached at step \([0-9]*\).*/\1/p' <<<"$line")
    [ "$reached" = "$first" ] && pass "--lr-decay-style $style${*:+ $*}: the minimum reached at step $first, as the start-up line says" ||
      fail "--lr-decay-style $style $*: decay end" "start-up line '$line', the step lines reach 5e-4 at step $first"
  fi
}
lr_schedule_check linear "5.000e-04 1.000e-03 1.000e-03 8.750e-04 7.500e-04 6.250e-04 5.000e-04 " \
  --lr-decay-steps 6
lr_schedule_check wsd "5.000e-04 1.000e-03 1.000e-03 1.000e-03 1.000e-03 7.500e-04 5.000e-04 " \
  --lr-decay-steps 6 --lr-wsd-decay-steps 2
lr_schedule_check constant "5.000e-04 1.000e-03 1.000e-03 1.000e-03 1.000e-03 1.000e-03 1.000e-03 "
# A run that ends inside its warm-up (the default decay end is then the warm-up's).
lr_schedule_check cosine "1.000e-04 2.000e-04 3.000e-04 4.000e-04 5.000e-04 6.000e-04 7.000e-04 " \
  --warmup-steps 10
lr_schedule_check wsd "1.000e-04 2.000e-04 3.000e-04 4.000e-04 5.000e-04 6.000e-04 7.000e-04 " \
  --warmup-steps 10 --lr-wsd-decay-steps 3
# A WSD run exactly as long as its warm-up: the decay would come after it.
lr_schedule_check wsd "1.429e-04 2.857e-04 4.286e-04 5.714e-04 7.143e-04 8.571e-04 1.000e-03 " \
  --warmup-steps 7 --lr-wsd-decay-steps 3
# A run that ends inside its decay.
lr_schedule_check linear "5.000e-04 1.000e-03 1.000e-03 9.167e-04 8.333e-04 7.500e-04 6.667e-04 " \
  --lr-decay-steps 8
# A resume with other optimizer settings: one note naming each, old and new.
"$T" -c tiny --bench -l 16 -b 1 --steps 2 -o "$TMP/resopt" >/dev/null 2>&1
O=(--lr 1e-3 --weight-decay 0.05 --grad-clip 0.5 --adam-beta2 0.99 --lr-decay-style linear)
out=$("$T" -c tiny --bench -l 16 -b 1 --steps 3 -o "$TMP/resopt" -f auto "${O[@]}" 2>&1)
same=$("$T" -c tiny --bench -l 16 -b 1 --steps 4 -o "$TMP/resopt" -f auto "${O[@]}" 2>&1)
if grep -q "note: this run's optimizer settings differ from those of the run that saved .*step_0000002: --lr 0.001 (was 0.0003), --lr-decay-style linear (was cosine), --weight-decay 0.05 (was 0.1), --grad-clip 0.5 (was 1), --adam-beta2 0.99 (was 0.95); the schedule continues at its step 2" <<<"$out" &&
   ! grep -q "optimizer settings differ" <<<"$same"; then
  pass "a resume with another --lr, --weight-decay, --grad-clip, --adam-beta2 and decay style: a note naming each; with the same: none"
else fail "resume with other optimizer settings" "$(grep -E 'note|error' <<<"$out$same")"; fi
# The start-up line numbers steps as the step lines do (from 1).
out=$("$T" --bench -c tiny -l 16 -b 1 --steps 7 --lr 1e-3 --min-lr-ratio 0.5 --warmup-steps 2 \
      --lr-decay-style wsd --lr-decay-steps 6 --lr-wsd-decay-steps 2 2>&1)
want="learning rate: warm-up 2 steps, stable at 0.001 through step 5, then linear to 0.0005, reached at step 7; step 7, this run's last, uses 0.0005"
grep -qF "$want" <<<"$out" && pass "the schedule's start-up line counts steps as the step lines do" ||
  fail "schedule start-up line" "$(grep 'learning rate' <<<"$out")"

# ---- the metrics log stays JSON when a loss is not finite ----
# lr 1e300 makes every weight infinite after the first update: the evaluations' loss is
# NaN, written null (as the step lines do), never "nan" or "inf", which JSON lacks.
"$T" -c tiny -d "$TMP/data" -l 32 -b 2 --steps 2 --lr 1e300 -s 0 --grad-clip 0 --eval-interval 1 \
  --eval-steps 1 --log "$TMP/nan.jsonl" >"$TMP/nan.out" 2>&1
if grep -q '"eval_loss": null' "$TMP/nan.jsonl" && ! grep -Eiq '(: |, )-?(nan|inf)' "$TMP/nan.jsonl"; then
  pass "a NaN evaluation loss is logged as null"
else fail "a NaN evaluation loss in the log" "$(grep eval "$TMP/nan.jsonl" | head -2)"; fi

# ---- --num-epochs resumed under another global batch: the epoch's data, once ----
# One shard of 24,000 tokens: windows of 32 + 1 tokens overlapping by one give
# E = (24000 − 1) / 32 = 749 samples (loader.h).  A run of one epoch at 16
# samples per step, resumed at step 10 (160 drawn) with 32 or 8 per step, draws
# the rest of the epoch and no more: at most E, and less than one step short.
# Resumed again (a requeue) at the same batch, it ends where its first part would.
printf '{"text": "%s"}\n' "$(head -c 24000 /dev/zero | tr '\0' 'a')" >"$TMP/epoch.jsonl"
"$BIN/llama-tokenize" encode --tokenizer bytes --input "$TMP/epoch.jsonl" --output "$TMP/epoch" --val-fraction 0 >/dev/null 2>&1
E=(-c tiny -d "$TMP/epoch" -l 32 --seed 5 -e 1)
newest() { ls -d "$1"/step_* | tail -1; }
drawn_in() { "$BIN/llama-ckpt" info "$(newest "$1")" 2>/dev/null | sed -n 's/^data position: \([0-9]*\) samples drawn.*/\1/p'; }
"$T" "${E[@]}" -b 16 -i 10 -o "$TMP/ep16" >"$TMP/ep16.out" 2>&1 || fail "one epoch at -b 16" "$(tail -2 "$TMP/ep16.out")"
for b in 32 8; do
  out=$("$T" "${E[@]}" -b $b -i 10 -f "$TMP/ep16/step_0000010" -o "$TMP/ep$b" 2>&1)
  drawn=$(drawn_in "$TMP/ep$b")
  if [ -n "$drawn" ] && [ "$drawn" -le 749 ] && [ "$drawn" -gt $((749 - b)) ] &&
     grep -q "note: 160 of the 749 samples of --num-epochs 1 are drawn at step 10: at $b samples per step" <<<"$out"; then
    pass "--num-epochs 1 resumed at -b $b (saved at -b 16): $drawn of the epoch's 749 samples drawn, and a note"
  else fail "--num-epochs 1 resumed at -b $b" "drawn '$drawn' of 749; $(grep -E 'note|error' <<<"$out")"; fi
  "$T" "${E[@]}" -b $b -f "$TMP/ep$b/step_0000020" -o "$TMP/req$b" >"$TMP/req$b.out" 2>&1
  if [ "$(basename "$(newest "$TMP/req$b")")" = "$(basename "$(newest "$TMP/ep$b")")" ] &&
     [ "$(drawn_in "$TMP/req$b")" = "$drawn" ]; then
    pass "--num-epochs 1 at -b $b requeued from step 20: ends at $(basename "$(newest "$TMP/ep$b")") as its first part would"
  else fail "--num-epochs 1 requeued at -b $b" "ends at $(newest "$TMP/req$b"), $(drawn_in "$TMP/req$b") drawn; the run it continues: $(newest "$TMP/ep$b"), $drawn"; fi
done
finish
