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
finish
