#!/usr/bin/env bash
# A regression test: the committed Hugging Face round-trip export
# (validation/golden/hf-roundtrip, made by this program) is what training and
# exporting on 8 ranks produce here: repeat both and compare every tensor.  Its
# independent reference is test_hf_roundtrip (unit): transformers' logits with
# that export at every position of a held-out batch.
source "$(dirname "$0")/lib.sh"
source "$ROOT/validation/hf_roundtrip.inc"
scratch
if roundtrip_train_export "$TMP" "$BIN" "$TMP/export"; then
  if why=$("$BIN/llama-ckpt" compare "$TMP/export" "$ROOT/validation/golden/hf-roundtrip" --rtol 1e-5 2>&1); then
    pass "regression: 8-rank training + llama-ckpt export-hf reproduce the committed export ($why)"
  else fail "regression: hf round-trip export" "$why"; fi
else
  fail "regression: hf round-trip export" "$(tail -3 "$TMP/train.out" "$TMP/export.out" 2>/dev/null)"
fi
# An export with --tokenizer: the tokenizer file beside the weights, its
# special ids in config.json and generation_config.json (the bundled
# tokenizer's <|endoftext|> is id 8191, its first added token), a
# tokenizer_config.json naming the class; a tokenizer larger than the model's
# vocabulary is refused.  (transformers' AutoTokenizer loads such a folder and
# encodes like the tokenizer: checked by hand, DESIGN.md's "Export of a tokenizer".)
EXP=(-c small --bench --steps 1 -l 16 -b 1 --lr 1e-4)
eos=$(grep -A1 '"id": 8191' "$ROOT/inputs/tokenizer.json" | grep -c '"<|endoftext|>"')
if "$BIN/llama-train" "${EXP[@]}" --export-hf "$TMP/tok" --tokenizer "$ROOT/inputs/tokenizer.json" >"$TMP/tok.out" 2>&1 &&
   cmp -s "$TMP/tok/tokenizer.json" "$ROOT/inputs/tokenizer.json" && [ "$eos" = 1 ] &&
   grep -q '"eos_token_id": 8191' "$TMP/tok/config.json" &&
   grep -q '"eos_token_id": 8191' "$TMP/tok/generation_config.json" &&
   grep -q '"eos_token": "<|endoftext|>"' "$TMP/tok/tokenizer_config.json" &&
   grep -q '"tokenizer_class": "PreTrainedTokenizerFast"' "$TMP/tok/tokenizer_config.json"; then
  pass "export with --tokenizer: tokenizer.json, tokenizer_config.json and the eos id (8191) written"
else fail "export with --tokenizer" "$(ls "$TMP/tok" 2>&1 | tr '\n' ' ') $(tail -n 2 "$TMP/tok.out")"; fi
# Again into the same folder with the SentencePiece model: its pieces <s> </s>
# (ids 1, 2) name bos and eos, the earlier tokenizer.json goes; then without
# a tokenizer: no tokenizer file stays beside the new weights.
if "$BIN/llama-train" "${EXP[@]}" --export-hf "$TMP/tok" --tokenizer "$ROOT/inputs/tokenizer-spm.model" >"$TMP/tok.out" 2>&1 &&
   cmp -s "$TMP/tok/tokenizer.model" "$ROOT/inputs/tokenizer-spm.model" && [ ! -e "$TMP/tok/tokenizer.json" ] &&
   grep -q '"bos_token": "<s>"' "$TMP/tok/tokenizer_config.json" &&
   grep -q '"eos_token": "</s>"' "$TMP/tok/tokenizer_config.json" &&
   grep -q '"bos_token_id": 1' "$TMP/tok/config.json" && grep -q '"eos_token_id": 2' "$TMP/tok/generation_config.json"; then
  pass "export with a tokenizer.model over an earlier export: its pieces and ids, the old tokenizer.json gone"
else fail "export with a tokenizer.model" "$(ls "$TMP/tok" 2>&1 | tr '\n' ' ') $(cat "$TMP/tok/tokenizer_config.json" 2>&1 | tr '\n' ' ')"; fi
if "$BIN/llama-train" "${EXP[@]}" --export-hf "$TMP/tok" >"$TMP/tok.out" 2>&1 &&
   [ -z "$(ls "$TMP/tok" | grep tokenizer)" ] && grep -q '"eos_token_id": null' "$TMP/tok/config.json"; then
  pass "export without a tokenizer over an earlier export: no tokenizer file stays"
else fail "export without a tokenizer over an earlier export" "$(ls "$TMP/tok" 2>&1 | tr '\n' ' ')"; fi
"$BIN/llama-ckpt" import-hf "$ROOT/validation/golden/llama-tiny" "$TMP/ck97" >"$TMP/imp.out" 2>&1 ||
  fail "import-hf of llama-tiny" "$(tail -n 2 "$TMP/imp.out")"
expect_error "llama-ckpt export-hf with a tokenizer larger than the model's vocabulary is refused" \
  "inputs/tokenizer.json has 8192 ids but the model's vocabulary holds 97" \
  "$BIN/llama-ckpt" export-hf "$TMP/ck97/step_0000000" "$TMP/tok2" --tokenizer "$ROOT/inputs/tokenizer.json"
[ -e "$TMP/tok2" ] && fail "the refused export wrote nothing" "$(ls "$TMP/tok2")" || pass "the refused export wrote nothing"
# export-hf over 3 pipeline stages of uneven size (tiny: 4 layers): the
# message for --pp 3 alone points to --pp-layers, which llama-ckpt takes; the
# export equals one rank's exactly.
"$BIN/llama-train" -c tiny --bench --steps 1 -l 16 -b 1 -i 1 -o "$TMP/ck4" >"$TMP/ck4.out" 2>&1 ||
  fail "a tiny checkpoint" "$(tail -n 2 "$TMP/ck4.out")"
expect_error "llama-ckpt export-hf --pp 3 of 4 layers: refused, pointing to --pp-layers" \
  "--pp 3 does not divide the 4 layers; .* --pp-layers" \
  "${MPIRUN[@]}" -np 3 "$BIN/llama-ckpt" export-hf "$TMP/ck4/step_0000001" "$TMP/pp3" --pp 3
if "$BIN/llama-ckpt" export-hf "$TMP/ck4/step_0000001" "$TMP/pp1" >"$TMP/pp1.out" 2>&1 &&
   "${MPIRUN[@]}" -np 3 "$BIN/llama-ckpt" export-hf "$TMP/ck4/step_0000001" "$TMP/pp3" --pp 3 --pp-layers 1,2,1 >"$TMP/pp3.out" 2>&1 &&
   why=$("$BIN/llama-ckpt" compare "$TMP/pp3" "$TMP/pp1" --rtol 0 2>&1); then
  pass "llama-ckpt export-hf --pp 3 --pp-layers 1,2,1: the export of one rank, exactly ($why)"
else fail "export-hf --pp-layers" "$(tail -n 2 "$TMP/pp3.out") $why"; fi
# compare under mpirun: every rank verifies the checkpoint's checksums with
# the others, rank 0 compares (it waited for them forever before).
why=$(timeout -k 10 120 "${MPIRUN[@]}" -np 2 "$BIN/llama-ckpt" compare "$TMP/ck4/step_0000001" "$TMP/pp1" --rtol 0 2>&1); rc=$?
if [ $rc -eq 0 ] && [ "$(grep -c '^largest relative difference ‖a−b‖/‖b‖ 0 ' <<<"$why")" = 1 ]; then
  pass "llama-ckpt compare of a checkpoint on 2 ranks: equal, said once"
else fail "llama-ckpt compare on 2 ranks" "exit $rc: $(tail -n 3 <<<"$why")"; fi
expect_error "llama-ckpt compare of a checkpoint.h5 file: the folder asked for" \
  "step_0000001/checkpoint.h5 is a file: give the folder that holds it" \
  "$BIN/llama-ckpt" compare "$TMP/ck4/step_0000001/checkpoint.h5" "$TMP/pp1"
expect_error "llama-ckpt compare --rtol -1: refused" "--rtol: expected a number >= 0, got '-1'" \
  "$BIN/llama-ckpt" compare "$TMP/pp3" "$TMP/pp1" --rtol -1
# The same tensors under other heads or another norm epsilon are another model.
cp -r "$TMP/pp1" "$TMP/heads" && cp -r "$TMP/pp1" "$TMP/eps"
sed -i 's/"head_dim": 8/"head_dim": 16/; s/"num_attention_heads": 8/"num_attention_heads": 4/; s/"num_key_value_heads": 4/"num_key_value_heads": 2/' "$TMP/heads/config.json"
sed -i 's/"rms_norm_eps": 1e-5/"rms_norm_eps": 0.5/' "$TMP/eps/config.json"
expect_error "llama-ckpt compare of two head splits: refused" \
  "has 8 attention heads \(4 key/value\) and .*/heads 4 \(2\): not the same model" \
  "$BIN/llama-ckpt" compare "$TMP/ck4/step_0000001" "$TMP/heads"
expect_error "llama-ckpt compare of two norm epsilons: refused" \
  "has norm eps 1e-05 and .*/eps 0.5: not the same model" "$BIN/llama-ckpt" compare "$TMP/pp1" "$TMP/eps"
expect_error "llama-ckpt export-hf into a Hugging Face folder it did not write" \
  "is a Hugging Face folder this program did not export" \
  "$BIN/llama-ckpt" export-hf "$TMP/ck4/step_0000001" "$ROOT/validation/golden/llama-tiny"
# Imported weights with a NaN: refused at the import, naming the tensor (it
# was blamed on the learning rate after every step had been skipped).
cp -r "$TMP/pp1" "$TMP/nan"
python3 - "$TMP/nan/model.safetensors" <<'PY'
import json, struct, sys
f = open(sys.argv[1], "r+b")
n = struct.unpack("<Q", f.read(8))[0]
head = json.loads(f.read(n))
name = next(k for k in head if k.endswith("mlp.down_proj.weight"))
assert head[name]["dtype"] == "F32"
f.seek(8 + n + head[name]["data_offsets"][0] + 4 * 7)
f.write(struct.pack("<f", float("nan")))
PY
expect_error "--init-hf of weights holding a NaN: refused at the import, naming the tensor" \
  "$TMP/nan: tensor '.*' holds a non-finite value \(nan at element 7 of this rank's block\): the weights are damaged" \
  "$BIN/llama-train" -c tiny --bench -l 16 --steps 1 --init-hf "$TMP/nan"
expect_error "llama-ckpt import-hf of weights holding a NaN: refused" "holds a non-finite value" \
  "$BIN/llama-ckpt" import-hf "$TMP/nan" "$TMP/nan-ck"
finish
