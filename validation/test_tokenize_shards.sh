#!/usr/bin/env bash
# llama-tokenize encode: the shards are identical in every dataset and
# attribute whatever the rank count (1, 2, 3, 4); a SentencePiece-style
# tokenizer.json gives the tokenizers library's ids on 1 and 3 ranks; the byte tokenizer's shard
# holds exactly the documents' UTF-8 bytes (read back with h5dump); a .zst
# corpus gives the same shards as the plain one; train reproduces the bundled
# tokenizer on 1 and 2 ranks.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ROOT"
TOK=$BIN/llama-tokenize

# What the shards of a folder hold, minus their paths: datasets' hashes and
# types, every attribute.
describe() {
  local f
  (cd "$1" && "$TOK" inspect *.h5 && for f in *.h5; do h5dump -A "$f"; done)
}

encode_ranks() {  # encode_ranks N DIR ARGS...
  local n=$1 dir=$2; shift 2
  "${MPIRUN[@]}" -np "$n" "$TOK" encode --output "$dir" --progress 0 "$@" >"$dir.log" 2>&1
}

# ---- 1, 2, 3, 4 ranks -------------------------------------------------------------
ok=1
for n in 1 2 3 4; do
  if ! encode_ranks $n "$TMP/r$n" --tokenizer inputs/tokenizer.json \
       --input inputs/redpajama-mini --val-fraction 0.05 --seed 3; then
    fail "encode_ranks_$n" "$(tail -n 3 "$TMP/r$n.log")"; ok=0
  fi
done
if [ $ok = 1 ]; then
  want=$(cd "$TMP/r1" && ls *.h5 | sort)
  [ "$(echo "$want" | wc -l)" -ge 5 ] || fail shards_per_source_split "only: $want"
  [ "$(describe "$TMP/r1" | grep -c '^tokens_sha256: [0-9a-f]\{64\}$')" = "$(echo "$want" | wc -l)" ] \
    || fail shards_inspect "llama-tokenize inspect does not describe every shard"
  for n in 2 3 4; do
    got=$(cd "$TMP/r$n" && ls *.h5 | sort)
    same=1
    [ "$got" = "$want" ] || { fail "shards_identical_${n}_ranks" "files $got vs $want"; same=0; }
    if [ $same = 1 ] && ! diff <(describe "$TMP/r1") <(describe "$TMP/r$n") >"$TMP/diff"; then
      fail "shards_identical_${n}_ranks" "$(head -n 4 "$TMP/diff")"; same=0
    fi
    [ $same = 1 ] && pass "shards_identical_${n}_ranks"
  done
  docs=$(cd "$TMP/r1" && "$TOK" inspect *.h5 | awk '/^n_documents/ {s += $2} END {print s}')
  [ "$docs" = 1056 ] && pass shards_hold_every_document || fail shards_hold_every_document "$docs documents, want 1056"
  grep -q 'uint16\|H5T_STD_U16LE' <(h5dump -H "$TMP/r1/c4.train.h5") && pass shards_uint16_tokens \
    || fail shards_uint16_tokens "vocabulary 8192 should give uint16 tokens"
fi

# ---- the byte tokenizer: tokens are the documents' bytes --------------------------
mkdir -p "$TMP/bytes"
printf '%s\n' '{"text": "ab\n", "meta": {"source": "s"}}' '{"text": "caf\u00e9 \"q\"", "meta": {"source": "s"}}' \
  '{"text": "x"}' > "$TMP/bytes/tiny.jsonl"
tokens() { h5dump -d "$2" -y -w 0 "$1" | sed -n '/DATA {/,/}/p' | tr -cs '0-9' ' ' | xargs; }
for n in 1 2; do
  if encode_ranks $n "$TMP/b$n" --tokenizer bytes --input "$TMP/bytes" --val-fraction 0; then
    got="$(tokens "$TMP/b$n/s.train.h5" tokens) | $(tokens "$TMP/b$n/s.train.h5" doc_offsets) | $(tokens "$TMP/b$n/tiny.train.h5" tokens)"
    want="$(printf 'ab\ncafé "q"' | od -An -tu1 | xargs) | 0 3 12 | 120"
    [ "$got" = "$want" ] && pass "bytes_shard_is_the_text_${n}_ranks" \
      || fail "bytes_shard_is_the_text_${n}_ranks" "got '$got', want '$want'"
  else
    fail "bytes_shard_is_the_text_${n}_ranks" "$(tail -n 3 "$TMP/b$n.log")"
  fi
done

# ---- uint32 tokens past 65536; --text-key; a LLaMA-3-style tokenizer's BOS ---------
sed 's/^  "added_tokens": \[/  "added_tokens": [{"id": 70000, "content": "<|big|>", "special": true},/' \
  validation/reference/gpt2-style.json >"$TMP/big-vocab.json"
mkdir -p "$TMP/wide"
printf '%s\n' '{"body": "one <|big|> two", "meta": {"source": "w"}}' >"$TMP/wide/w.jsonl"
if encode_ranks 2 "$TMP/w" --tokenizer "$TMP/big-vocab.json" --input "$TMP/wide" --text-key body \
     --val-fraction 0; then
  ids=$(tokens "$TMP/w/w.train.h5" tokens)
  if h5dump -H "$TMP/w/w.train.h5" | grep -q H5T_STD_U32LE && [[ " $ids " == *" 70000 "* ]]; then
    pass wide_vocab_uint32_tokens
  else
    fail wide_vocab_uint32_tokens "tokens '$ids' or type not uint32"
  fi
else
  fail wide_vocab_uint32_tokens "$(tail -n 3 "$TMP/w.log")"
fi
if encode_ranks 2 "$TMP/l3" --tokenizer validation/reference/llama3-style.json \
     --input inputs/redpajama-mini/c4_sample.jsonl --val-fraction 0; then
  info=$("$TOK" inspect "$TMP/l3/c4.train.h5")
  first=$(h5dump -d tokens -s 0 -c 1 -y -w 0 "$TMP/l3/c4.train.h5" | sed -n '/DATA {/,/}/p' | tr -cs '0-9' ' ' | xargs)
  bos=$(sed -n 's/^bos_id: //p' <<<"$info")
  [ "$bos" -ge 0 ] && [ "$first" = "$bos" ] && pass llama3_style_bos \
    || fail llama3_style_bos "bos_id '$bos', first token '$first'"
else
  fail llama3_style_bos "$(tail -n 3 "$TMP/l3.log")"
fi

# ---- a SentencePiece-style (LLaMA-2) tokenizer.json on 1 and 3 ranks ----------------
# The shard's ids against the tokenizers library's (golden written by
# validation/reference/make_spm_tokenizer_golden.py), and 1 rank against 3.
ok=1
for n in 1 3; do
  if ! encode_ranks $n "$TMP/spm$n" --tokenizer validation/reference/spm-legacy.json \
       --input inputs/redpajama-mini/c4_sample.jsonl --val-fraction 0; then
    fail "sentencepiece_style_shards_${n}_ranks" "$(tail -n 3 "$TMP/spm$n.log")"; ok=0
  fi
done
if [ $ok = 1 ]; then
  for n in 1 3; do
    got=$("$TOK" inspect "$TMP/spm$n/c4.train.h5" | grep -E '^(n_documents|n_tokens|tokens_sha256):')
    want=$(cat validation/reference/golden/spm-legacy-c4-shard.txt)
    [ "$got" = "$want" ] && pass "sentencepiece_style_shard_matches_tokenizers_${n}_ranks" \
      || fail "sentencepiece_style_shard_matches_tokenizers_${n}_ranks" "got '$got', want '$want'"
  done
  info=$("$TOK" inspect "$TMP/spm1/c4.train.h5")
  if grep -q '^bos_id: 1$' <<<"$info" && grep -q '^eos_id: 2$' <<<"$info" \
     && diff <(describe "$TMP/spm1") <(describe "$TMP/spm3") >"$TMP/diff"; then
    pass sentencepiece_style_shards_identical_3_ranks
  else
    fail sentencepiece_style_shards_identical_3_ranks "bos/eos not 1/2 or: $(head -n 4 "$TMP/diff")"
  fi
fi

# ---- .zst input --------------------------------------------------------------------
if command -v zstd >/dev/null; then
  mkdir -p "$TMP/zst"
  for f in inputs/redpajama-mini/*.jsonl; do zstd -q "$f" -o "$TMP/zst/$(basename "$f").zst"; done
  if encode_ranks 2 "$TMP/z" --tokenizer inputs/tokenizer.json --input "$TMP/zst" --val-fraction 0.05 --seed 3; then
    (cd "$TMP/r1" && "$TOK" inspect *.h5) >"$TMP/plain.txt"
    (cd "$TMP/z" && "$TOK" inspect *.h5) >"$TMP/zst.txt"
    cmp -s "$TMP/plain.txt" "$TMP/zst.txt" && pass zst_corpus_same_shards || fail zst_corpus_same_shards "shards differ from the plain corpus's"
  else
    fail zst_corpus_same_shards "$(tail -n 3 "$TMP/z.log")"
  fi
else
  skip zst_corpus_same_shards "no zstd program"
fi

# ---- progress and summary ------------------------------------------------------------
"${MPIRUN[@]}" -np 2 "$TOK" encode --tokenizer inputs/tokenizer.json --input inputs/redpajama-mini \
  --output "$TMP/p" --progress 0.000001 >"$TMP/p.log" 2>&1
if tr '\r' '\n' <"$TMP/p.log" | grep -q '^\[rank 0 of 2\] [0-9]* documents, [0-9]*% of its .*MB/s per rank, ETA' \
   && grep -q '1056 documents (.*), [0-9]* tokens, .* MB/s, 2 ranks); skipped 0 bad records, 0 empty' "$TMP/p.log"; then
  pass progress_and_summary
else
  fail progress_and_summary "$(head -c 400 "$TMP/p.log")"
fi

# ---- train: the bundled tokenizer, reproduced on 1 and 2 ranks -------------------------
# A regression test: inputs/tokenizer.json was made by this program.  Its
# independent references: test_tokenizer's word_counts_match_hf_pretokenizer
# (word counts against the tokenizers library's) and
# bpe_train_matches_naive_trainer (merges against a naive trainer), and
# test_tokenizer_parity (encoding with it against the tokenizers library's).
for n in 1 2; do
  if "${MPIRUN[@]}" -np $n "$TOK" train --vocab-size 8192 --input inputs/redpajama-mini/*.jsonl \
       --output "$TMP/tok$n.json" --progress 0 >"$TMP/t$n.log" 2>&1 \
     && cmp -s "$TMP/tok$n.json" inputs/tokenizer.json; then
    pass "regression_train_reproduces_bundled_tokenizer_${n}_ranks"
  else
    fail "regression_train_reproduces_bundled_tokenizer_${n}_ranks" "$(tail -n 2 "$TMP/t$n.log"; cmp "$TMP/tok$n.json" inputs/tokenizer.json)"
  fi
done
# ---- source names past 127 bytes or holding NUL stay distinct -----------------------
# (shards and the loader keep 127 bytes: such names used to be cut there and merge)
P=$(printf 'x%.0s' $(seq 130))
{ printf '{"text": "one", "meta": {"source": "%sA"}}\n' "$P"
  printf '{"text": "two", "meta": {"source": "%sB"}}\n' "$P"
  printf '{"text": "three", "meta": {"source": "a\\u0000b"}}\n'
  printf '{"text": "four", "meta": {"source": "a"}}\n'; } >"$TMP/names.jsonl"
if encode_ranks 2 "$TMP/names" --tokenizer bytes --input "$TMP/names.jsonl" --val-fraction 0; then
  sources=$("$TOK" inspect "$TMP/names" | sed -n 's/^source: //p' | sort)
  long=$(grep -cE "^x{110}~[0-9a-f]{16}$" <<<"$sources")
  nul=$(grep -cE "^a~[0-9a-f]{16}$" <<<"$sources")
  one=$(grep -m1 "^x" <<<"$sources")
  if [ "$(wc -l <<<"$sources")" = 4 ] && [ "$long" = 2 ] && [ "$nul" = 1 ] && grep -qx a <<<"$sources" &&
     "$BIN/llama-train" -c tiny -d "$TMP/names" -l 2 -b 1 --steps 1 --data-mix "$one=1,a=1" >"$TMP/names.out" 2>&1; then
    pass "source names past 127 bytes or holding NUL: shortened with a hash, four sources stay four"
  else fail "long source names" "$(tr '\n' ' ' <<<"$sources"); $(tail -2 "$TMP/names.out" 2>/dev/null)"; fi
else fail "long source names" "$(tail -n 3 "$TMP/names.log")"; fi
finish
