#!/usr/bin/env bash
# Writes validation/golden/hf-roundtrip: the tiny preset trained 10 steps on
# dp2 × tp2 × pp2 with ZeRO-1 (8 ranks, --bench data), checkpointed, exported by
# llama-ckpt export-hf from that checkpoint, and the loss transformers computes
# on a held-out batch with it.  validation/test_hf_roundtrip.sh repeats the
# training and export and compares.  Needs PyTorch + transformers (run once).
set -euo pipefail
cd "$(dirname "$0")/../.."
out=validation/golden/hf-roundtrip
source validation/hf_roundtrip.inc
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
roundtrip_train_export "$tmp" build "$out"
python3 validation/reference/hf_roundtrip_loss.py "$out"
