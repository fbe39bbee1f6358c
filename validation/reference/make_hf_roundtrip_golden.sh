#!/usr/bin/env bash
# Writes validation/golden/hf-roundtrip-init (a random model made by
# transformers) and validation/golden/hf-roundtrip: that model trained 10 steps
# on dp2 × tp2 × pp2 with ZeRO-1 (8 ranks, --bench data, --init-hf),
# checkpointed, exported by llama-ckpt export-hf from that checkpoint, and the
# logits transformers computes with the export on a held-out batch.
# validation/test_hf_roundtrip.sh repeats the training and export and compares;
# test_hf_roundtrip (unit) imports the export and compares the logits.  Needs
# PyTorch + transformers (run once, after make).
#
# `make_hf_roundtrip_golden.sh tied` writes validation/golden/hf-roundtrip-tied
# instead: the tied model of validation/golden/llama-tiny-tied trained the same
# way (the embedding held by the first and last stage), exported, and the
# logits of transformers, which must load it as a tied model.
set -euo pipefail
cd "$(dirname "$0")/../.."
init=validation/golden/hf-roundtrip-init out=validation/golden/hf-roundtrip
source validation/hf_roundtrip.inc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ "${1:-}" = tied ]; then
  out=validation/golden/hf-roundtrip-tied
  rm -rf "$out"
  roundtrip_train_export "$tmp" build "$out" validation/golden/llama-tiny-tied
  python3 validation/reference/hf_roundtrip_reference.py logits "$out"
  exit 0
fi
rm -rf "$init" "$out"
python3 validation/reference/hf_roundtrip_reference.py init "$init"
roundtrip_train_export "$tmp" build "$out"
python3 validation/reference/hf_roundtrip_reference.py logits "$out"
