#!/usr/bin/env bash
# The committed Hugging Face round-trip export (validation/golden/hf-roundtrip,
# whose logits in transformers test_hf_roundtrip checks) is what training and
# exporting on 8 ranks produce here: repeat both and compare every tensor.
source "$(dirname "$0")/lib.sh"
source "$ROOT/validation/hf_roundtrip.inc"
scratch
if roundtrip_train_export "$TMP" "$BIN" "$TMP/export"; then
  if why=$("$BIN/llama-ckpt" compare "$TMP/export" "$ROOT/validation/golden/hf-roundtrip" --rtol 1e-5 2>&1); then
    pass "8-rank training + llama-ckpt export-hf reproduce the golden export ($why)"
  else fail "hf round-trip export" "$why"; fi
else
  fail "hf round-trip export" "$(tail -3 "$TMP/train.out" "$TMP/export.out" 2>/dev/null)"
fi
finish
