#!/usr/bin/env bash
# SentencePiece tokenizer.model files in llama-tokenize: encode with the
# bundled inputs/tokenizer-spm.model writes the same shards on 1 and 3 ranks,
# holding the `sentencepiece` package's ids ([BOS] ids EOS per document; the
# reference validation/reference/golden/bundled-spm-shards.txt, written by
# make_sentencepiece_golden.py); `train --kind sentencepiece` writes the very
# model the package trains with the same settings, on 1 and 2 ranks; bad
# model files, kinds and options are refused with a clear message, a
# non-zero exit and no shard written.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ROOT"
TOK=$BIN/llama-tokenize
MODEL=inputs/tokenizer-spm.model
GOLDEN=validation/reference/golden/bundled-spm-shards.txt

describe() {
  local f
  (cd "$1" && "$TOK" inspect *.h5 && for f in *.h5; do h5dump -A "$f"; done)
}

# ---- encode: 1 and 3 ranks, against the package's ids ---------------------------------
# (the c4 slice: SentencePiece's BPE encodes about 1 MB/s)
ok=1
for n in 1 3; do
  if ! "${MPIRUN[@]}" -np $n "$TOK" encode --tokenizer "$MODEL" --input inputs/redpajama-mini/c4_sample.jsonl \
       --output "$TMP/r$n" --val-fraction 0 --progress 0 >"$TMP/r$n.log" 2>&1; then
    fail "encode_spm_${n}_ranks" "$(tail -n 3 "$TMP/r$n.log")"; ok=0
  fi
done
if [ $ok = 1 ]; then
  if diff <(describe "$TMP/r1") <(describe "$TMP/r3") >"$TMP/diff"; then pass spm_shards_identical_1_3_ranks
  else fail spm_shards_identical_1_3_ranks "$(head -n 4 "$TMP/diff")"; fi
  info=$("$TOK" inspect "$TMP/r1/c4.train.h5" 2>&1)
  got="c4.train.h5 $(sed -n 's/^n_documents: //p' <<<"$info") $(sed -n 's/^n_tokens: //p' <<<"$info") $(sed -n 's/^tokens_sha256: //p' <<<"$info")"
  want=$(grep '^c4.train.h5 ' "$GOLDEN")
  [ -n "$want" ] && [ "$got" = "$want" ] && [ "$(ls "$TMP/r1")" = c4.train.h5 ] \
    && pass spm_shard_holds_sentencepiece_ids \
    || fail spm_shard_holds_sentencepiece_ids "'$got' ($(ls "$TMP/r1" | xargs)), reference '$want'"
  info=$("$TOK" inspect "$TMP/r1/c4.train.h5")
  want="vocab_size: 8192 bos_id: 1 eos_id: 2 tokenizer_sha256: $(sha256sum "$MODEL" | cut -d' ' -f1)"
  got=$(grep -E '^(vocab_size|bos_id|eos_id|tokenizer_sha256): ' <<<"$info" | xargs)
  [ "$got" = "$want" ] && pass spm_shard_provenance || fail spm_shard_provenance "'$got', want '$want'"
  h5dump -H "$TMP/r1/c4.train.h5" | grep -q H5T_STD_U16LE && pass spm_shard_uint16_tokens \
    || fail spm_shard_uint16_tokens "vocabulary 8192 should give uint16 tokens"
fi

# ---- train: the package's model, whatever the rank count ------------------------------
# (1000 pieces at least: the corpus has 356 characters besides the 259 special and byte pieces)
REF=validation/reference/spm-llama-bpe-c4.model   # the package, same settings and corpus
for n in 1 2; do
  if "${MPIRUN[@]}" -np $n "$TOK" train --kind sentencepiece --vocab-size 1000 \
       --input inputs/redpajama-mini/c4_sample.jsonl --output "$TMP/spm$n" --progress 0 \
       >"$TMP/t$n.log" 2>&1; then
    if [ $n = 1 ] && ! grep -q "wrote $TMP/spm1.model" "$TMP/t1.log"; then
      fail train_spm_says_what_it_wrote "$(tail -n 2 "$TMP/t1.log")"
    elif [ $n = 1 ]; then pass train_spm_says_what_it_wrote; fi
    cmp -s "$TMP/spm$n.model" "$REF" && pass "train_spm_equals_sentencepiece_package_${n}_ranks" \
      || fail "train_spm_equals_sentencepiece_package_${n}_ranks" "$(cmp "$TMP/spm$n.model" "$REF" 2>&1)"
  else
    fail "train_spm_equals_sentencepiece_package_${n}_ranks" "$(tail -n 3 "$TMP/t$n.log")"
  fi
done
# --output with .model already: written as given
"$TOK" train --kind sentencepiece --vocab-size 1000 --input inputs/redpajama-mini/c4_sample.jsonl \
  --output "$TMP/named.model" --progress 0 >"$TMP/named.log" 2>&1
cmp -s "$TMP/named.model" "$REF" && [ ! -e "$TMP/named.model.model" ] && pass train_spm_output_named_model \
  || fail train_spm_output_named_model "$(ls "$TMP" | grep named; tail -n 2 "$TMP/named.log")"

# ---- bad model files, kinds, options ------------------------------------------------------
no_shards() {  # no_shards NAME DIR: a failed run left nothing behind
  if compgen -G "$2/*.h5*" >/dev/null; then fail "$1" "shards left: $(ls "$2")"; else pass "$1"; fi
}
ENC=("${MPIRUN[@]}" -np 2 "$TOK" encode --input inputs/redpajama-mini/c4_sample.jsonl --progress 0)
head -c 20000 "$MODEL" >"$TMP/cut.model"
expect_error spm_truncated_model "cut.model: not a usable SentencePiece model" \
  "${ENC[@]}" --tokenizer "$TMP/cut.model" --output "$TMP/o1"
no_shards spm_truncated_model_no_shard "$TMP/o1"
gzip -c -n inputs/redpajama-mini/c4_sample.jsonl | head -c 5000 >"$TMP/random.model"
expect_error spm_random_bytes_model "random.model: not a usable SentencePiece model" \
  "${ENC[@]}" --tokenizer "$TMP/random.model" --output "$TMP/o2"
no_shards spm_random_bytes_model_no_shard "$TMP/o2"
expect_error train_unsupported_kind "--kind: expected bpe or sentencepiece, got 'wordpiece'" \
  "$TOK" train --kind wordpiece --vocab-size 1000 --input inputs/redpajama-mini --output "$TMP/x"
expect_usage_error train_spm_special_refused "--special belongs to --kind bpe" \
  "$TOK" train --kind sentencepiece --special '<pad>' --vocab-size 1000 \
  --input inputs/redpajama-mini --output "$TMP/x"
expect_usage_error train_spm_vocab_too_small "--vocab-size 200 is too small for --kind sentencepiece" \
  "$TOK" train --kind sentencepiece --vocab-size 200 --input inputs/redpajama-mini --output "$TMP/x"
expect_error train_spm_unwritable "--output $TMP/no/such/dir/x.model: cannot write in its folder $TMP/no/such/dir" \
  "$TOK" train --kind sentencepiece --vocab-size 1000 --input inputs/redpajama-mini/c4_sample.jsonl \
  --output "$TMP/no/such/dir/x"
expect_usage_error encode_kind_refused "encode does not take the option '--kind'" \
  "$TOK" encode --kind sentencepiece --tokenizer "$MODEL" --input inputs/redpajama-mini --output "$TMP/o3"
finish
