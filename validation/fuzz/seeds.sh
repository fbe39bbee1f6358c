#!/usr/bin/env bash
# Seed corpora of the fuzz harnesses, from the tests' inputs: writes
# $BUILD/fuzz/seeds/<harness>/ afresh (the committed validation/fuzz/corpus/
# files, golden files, the bundled decks, corpus lines and shards written by
# $BUILD/llama-tokenize).  make fuzz runs it; the harnesses' own finds go to
# $BUILD/fuzz/corpus/<harness>/, which is kept between runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
BUILD=${BUILD:-build}
S=$BUILD/fuzz/seeds
rm -rf "$S"
mkdir -p "$S"/{jsonl,tokenizer,safetensors,hf_config,deck,shard}
for h in validation/fuzz/corpus/*/; do cp "$h"* "$S/$(basename "$h")/" 2>/dev/null || true; done

# jsonl: records as the unit tests write them, and real ones cut short.
n=0
seed() { printf '%b' "$2" >"$S/$1/seed$((n += 1))"; }
seed jsonl '{"text": "a good document", "meta": {"source": "t"}}\n{"text": "two"}\n'
seed jsonl '{"text": "x", "meta": {"redpajama_set_name": "RedPajamaC4"}}\n\n{"text": ""}\n'
seed jsonl 'not json\n{"content": 1}\n{"text": 12}\n{"text": "\\u00e9\\u0000\\ud83d\\ude00"}\n'
seed jsonl '{"text": "bad \xc3\x28 byte"}\r\n{"text": "crlf"}\r\n[1, 2]\n{"text": "no newline"}'
for f in inputs/redpajama-mini/*.jsonl; do
  if command -v jq >/dev/null; then
    head -n 3 "$f" | jq -c '.text |= .[0:200]' >"$S/jsonl/$(basename "$f")"
  fi
done

if command -v zstd >/dev/null; then
  for f in "$S"/jsonl/seed1 "$S"/jsonl/c4_sample.jsonl; do
    [ -f "$f" ] && zstd -q -c "$f" >"$f.zst"
  done
fi

# tokenizer: the unit tests' refusals besides the committed small tokenizers.
seed tokenizer '{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}'
seed tokenizer '{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "ab": 2}, "merges": ["a b"]}, "pre_tokenizer": {"type": "ByteLevel"}, "added_tokens": [{"id": 3, "content": "<|endoftext|>", "special": true}]}'

# safetensors, config.json, decks: the golden files and the bundled decks.
cp validation/golden/safetensors/golden.safetensors "$S/safetensors/"
for f in validation/golden/*/config.json; do cp "$f" "$S/hf_config/$(basename "$(dirname "$f")").json"; done
cp inputs/*.deck "$S/deck/"
seed deck 'dim = 64\nn_layers = 2\nn_heads = 4\nn_kv_heads = 2\nffn_dim = 128\nvocab_size = 256\nmax_seq_len = 32\nrope_theta = 10000\nnorm_eps = 1e-5\n'
seed deck '# comment\n  key = value # trailing\n\nsample-prompt = "a # b"\n'

# shards: byte-level shards of a few documents, train and val.
if [ -x "$BUILD/llama-tokenize" ] && command -v jq >/dev/null; then
  tmp=$(mktemp -d)
  head -n 20 inputs/redpajama-mini/wikipedia_sample.jsonl | jq -c '.text |= .[0:100]' >"$tmp/w.jsonl"
  OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 "$BUILD/llama-tokenize" encode \
    --tokenizer bytes --input "$tmp/w.jsonl" --output "$tmp/out" --val-fraction 0.3 --progress 0 \
    >/dev/null
  cp "$tmp"/out/*.h5 "$S/shard/"
  rm -rf "$tmp"
else
  echo "seeds: no $BUILD/llama-tokenize or jq: the shard harness starts without seeds" >&2
fi
