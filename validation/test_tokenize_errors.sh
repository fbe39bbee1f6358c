#!/usr/bin/env bash
# Bad input to llama-tokenize: every case ends with one clear message naming
# the file (and line), a non-zero exit, no crash, no hang, no rank left
# behind, and no shard written (also an --output the ranks do not share); with --skip-bad bad records are skipped and
# counted instead.  Fixtures are made here, in the scratch folder.
source "$(dirname "$0")/lib.sh"
scratch
cd "$ROOT"
TOK=$BIN/llama-tokenize
MPI2=("${MPIRUN[@]}" -np 2)
good='{"text": "a good document", "meta": {"source": "t"}}'

# fixture NAME LINE...: a corpus file of 30 good lines, then the given lines.
fixture() {
  local f=$TMP/$1; shift
  for i in $(seq 30); do echo "$good"; done >"$f"
  printf '%s\n' "$@" >>"$f"
  echo "$f"
}

ENC=("$TOK" encode --tokenizer bytes --progress 0 --val-fraction 0)
no_shards() {  # no_shards NAME DIR: a failed run left nothing behind (no staging folder either)
  if compgen -G "$2/*.h5*" >/dev/null || [ -e "$2/.encode.tmp" ]; then fail "$1" "left: $(ls -A "$2")"
  else pass "$1"; fi
}

notjson=$(fixture notjson.jsonl 'this is not json')
expect_error bad_json "notjson.jsonl:31: not valid JSON" "${ENC[@]}" --input "$notjson" --output "$TMP/o1"
# A gzip-compressed file says so (it read as invalid UTF-8 on line 1, and --skip-bad was suggested).
gzip -c "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" >"$TMP/c4.jsonl.gz"
expect_error gzip_corpus "corpus file '$TMP/c4.jsonl.gz' is gzip-compressed: give plain JSON Lines or zstd" \
  "${ENC[@]}" --input "$TMP/c4.jsonl.gz" --output "$TMP/ogz"
# In a folder, a compressed file is passed over (the folder's filter), and a note says so.
mkdir -p "$TMP/gzdir" && head -3 "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" >"$TMP/gzdir/a.jsonl"
cp "$TMP/c4.jsonl.gz" "$TMP/gzdir/b.jsonl.gz"
if out=$("${ENC[@]}" --input "$TMP/gzdir" --output "$TMP/ogzdir" 2>&1) &&
   grep -q "note: passed over 1 compressed file in the input folders (first: $TMP/gzdir/b.jsonl.gz)" <<<"$out"; then
  pass "gzip_in_folder: passed over with a note"
else fail "gzip_in_folder" "$(head -n 2 <<<"$out")"; fi
# An integer past int64 (or any number) in a field nobody reads is valid JSON: the record is kept.
printf '{"text": "ok", "meta": {"id": 18446744073709551615}}\n{"text": "ok2", "meta": {"s": 1e300}}\n' >"$TMP/bigint.jsonl"
if out=$("${ENC[@]}" --input "$TMP/bigint.jsonl" --output "$TMP/obig" 2>&1) &&
   grep -q "2 documents (2 train, 0 val), 5 tokens" <<<"$out"; then pass "big_integer_in_meta: both records encoded"
else fail "big_integer_in_meta" "$(tail -n 2 <<<"$out")"; fi
# A special token whose text is a vocabulary string would take that string's place:
# "café" encoded é as the special token, which decodes to a lone byte 0xE9.
expect_usage_error special_is_a_byte_symbol "--special 'é' is the byte-level vocabulary's symbol for byte 0xE9" \
  "$TOK" train --vocab-size 300 --special 'é' --input "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" --output "$TMP/sp.json"
expect_error special_is_a_learned_token 'special token "Ġthe" is also the string of a learned token' \
  "$TOK" train --vocab-size 400 --special 'Ġthe' --input "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" --output "$TMP/sp.json"
[ -e "$TMP/sp.json" ] && fail special_refused_writes_nothing "$TMP/sp.json exists" || pass special_refused_writes_nothing
# train over an existing tokenizer file (shards encoded with it need it): refused
# without --overwrite, replaced with it.
C4=$ROOT/inputs/redpajama-mini/c4_sample.jsonl
"$TOK" train --vocab-size 300 --input "$C4" --output "$TMP/mine.json" >/dev/null 2>&1
before=$(sha256sum <"$TMP/mine.json")
expect_error train_over_existing_tokenizer "--output $TMP/mine.json exists .*--overwrite to replace it" \
  "$TOK" train --vocab-size 400 --input "$C4" --output "$TMP/mine.json"
if [ "$(sha256sum <"$TMP/mine.json")" = "$before" ] &&
   "$TOK" train --vocab-size 400 --input "$C4" --output "$TMP/mine.json" --overwrite >/dev/null 2>&1 &&
   [ "$(sha256sum <"$TMP/mine.json")" != "$before" ]; then
  pass train_overwrite_replaces_only_when_asked
else fail train_overwrite_replaces_only_when_asked "the tokenizer changed without --overwrite, or not with it"; fi
# --eos naming an ordinary token: allowed (the user's choice), with a warning.
out=$("$TOK" encode --tokenizer "$ROOT/inputs/tokenizer.json" --eos the --input "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" \
      --output "$TMP/oeos" --progress 0 2>&1) && grep -q "warning: --eos the is an ordinary token (id 791)" <<<"$out" &&
  pass eos_ordinary_token_warned || fail eos_ordinary_token_warned "$out"
# An added token that is not special (normalized: text produces it too) is as
# ordinary: warned; the same token special is the usual separator: not warned.
sed 's/"special": *true/"special": false/' "$ROOT/inputs/tokenizer.json" >"$TMP/nonspecial.json"
head -n 3 "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" >"$TMP/three.jsonl"
out=$("$TOK" encode --tokenizer "$TMP/nonspecial.json" --eos '<|endoftext|>' --input "$TMP/three.jsonl" \
      --output "$TMP/oeos2" --progress 0 2>&1) &&
  special=$("$TOK" encode --tokenizer "$ROOT/inputs/tokenizer.json" --eos '<|endoftext|>' --input "$TMP/three.jsonl" \
            --output "$TMP/oeos3" --progress 0 2>&1) &&
  grep -qF "warning: --eos <|endoftext|> is an ordinary token (id 8191)" <<<"$out" && ! grep -q "warning: --eos" <<<"$special" &&
  pass eos_nonspecial_added_token_warned || fail eos_nonspecial_added_token_warned "$out $special"
: >"$TMP/empty.jsonl"
printf '\xef\xbb\xbf{"text":"hi"}\n' >"$TMP/bom.jsonl"
expect_error corpus_line_with_bom "bom.jsonl:1: the line starts with a byte order mark \(U\+FEFF, bytes EF BB BF\)" \
  "${ENC[@]}" --input "$TMP/bom.jsonl" --output "$TMP/obom"
: >"$TMP/empty.jsonl.zst"
expect_error empty_zst "empty.jsonl.zst is empty \(0 bytes\): no zstd data" \
  "${ENC[@]}" --input "$TMP/empty.jsonl.zst" --output "$TMP/oezst"
expect_error bench_of_no_documents "the corpus holds no documents \(0 records, 0 bad, 0 empty\): nothing to time" \
  "$TOK" bench --tokenizer bytes --input "$TMP/empty.jsonl"
# The rate is of every round: MB x rounds / seconds, from its own printed
# figures; with the byte tokenizer (one token per byte) it is also the token rate.
out=$("$TOK" bench --tokenizer bytes --input "$ROOT/inputs/redpajama-mini/wikipedia_sample.jsonl" 2>&1)
if awk '{ for (i = 1; i < NF; i++) { if ($(i + 1) == "MB" && $(i + 2) == "x") { mb = $i; r = $(i + 3) }
                                      if ($(i + 1) == "s:") s = $i; if ($(i + 1) == "MB/s,") v = $i
                                      if ($(i + 1) == "M" && $(i + 2) == "tokens/s") t = $i } }
         END { want = mb * r / s; exit !(mb > 3 && r > 1 && s >= 2 && (v - want)^2 < (0.02 * want)^2 &&
                                        (t - v)^2 < (0.01 * v)^2) }' <<<"$out"; then
  pass bench_rate_of_all_rounds
else fail bench_rate_of_all_rounds "'$out': MB/s is not MB x rounds / s, or not the byte tokenizer's token rate"; fi
# verify of a path without shards (missing, or a folder of none): why, and exit 1.
mkdir -p "$TMP/noshards"
expect_error verify_missing_path "dataset '$TMP/nothere' does not exist" "$TOK" verify "$TMP/nothere"
expect_error verify_folder_without_shards "verify: 1 path not readable as token shards" "$TOK" verify "$TMP/noshards"
# An added token whose text the vocabulary holds under another id: Hugging Face
# keeps the vocabulary's; the file is refused rather than followed one way.
sed '0,/"id": 8191,/s//"id": 100,/' "$ROOT/inputs/tokenizer.json" >"$TMP/tk100.json"
expect_error added_token_id_disagrees 'added token 0 "<\|endoftext\|>" has id 100, but the vocabulary gives that text id 8191' \
  "${ENC[@]}" --tokenizer "$TMP/tk100.json" --input "$ROOT/inputs/redpajama-mini/c4_sample.jsonl" --output "$TMP/o100"
no_shards bad_json_no_shard "$TMP/o1"
# On 2 ranks the bad line is in rank 1's half: still its file and line, every rank ends.
expect_error bad_json_2_ranks "notjson.jsonl:31: not valid JSON" "${MPI2[@]}" "$TOK" encode \
  --tokenizer bytes --input "$notjson" --output "$TMP/o2" --progress 0
no_shards bad_json_2_ranks_no_shard "$TMP/o2"

f=$(fixture notext.jsonl '{"content": "x"}')
expect_error missing_text_field 'notext.jsonl:31: no "text" field .*--text-key' "${ENC[@]}" --input "$f" --output "$TMP/o3"
f=$(fixture number.jsonl '{"text": 12}')
expect_error text_not_string 'number.jsonl:31: the "text" field is a number' "${ENC[@]}" --input "$f" --output "$TMP/o3"
f=$(fixture utf8.jsonl "$(printf '{"text": "bad \xc3\x28 byte"}')")
expect_error invalid_utf8 'utf8.jsonl:31: invalid UTF-8' "${ENC[@]}" --input "$f" --output "$TMP/o3"
no_shards bad_records_no_shard "$TMP/o3"

# --skip-bad: skipped and counted; the good documents are written.
f=$(fixture mixed.jsonl 'not json' '{"content": 1}' "$(printf '{"text": "\xff"}')" '{"text": "last"}')
out=$("${ENC[@]}" --input "$f" --output "$TMP/o4" --skip-bad 2>&1)
if [[ $out == *"31 documents"*"skipped 3 bad records"* ]] && [ -f "$TMP/o4/t.train.h5" ]; then
  pass skip_bad_counts
else
  fail skip_bad_counts "$out"
fi

# An empty document is skipped and counted (Megatron's choice), not an error.
f=$(fixture empty.jsonl '{"text": ""}')
out=$("${ENC[@]}" --input "$f" --output "$TMP/o5" 2>&1)
[[ $out == *"30 documents"*"1 empty documents"* ]] && pass empty_document_skipped \
  || fail empty_document_skipped "$out"

# A 50 MB single line: a clear error under a lower limit; read whole under the default.
big=$TMP/big.jsonl
{ printf '{"text": "'; head -c 50000000 /dev/zero | tr '\0' 'a'; printf '"}\n'; echo "$good"; } >"$big"
expect_error line_50mb_over_limit 'big.jsonl:1: the line is longer than --max-record-bytes' \
  "${ENC[@]}" --input "$big" --output "$TMP/o6" --max-record-bytes 1000000
out=$("${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$big" --output "$TMP/o7" --progress 0 \
      --val-fraction 0 2>&1)
if [[ $out == *"2 documents"*"50000015 tokens"* ]] && [ -f "$TMP/o7/big.train.h5" ]; then
  pass line_50mb_read_whole
else
  fail line_50mb_read_whole "$out"
fi
rm -f "$big"

# Truncated and bogus .zst files.
if command -v zstd >/dev/null; then
  zstd -q inputs/redpajama-mini/c4_sample.jsonl -o "$TMP/c4.jsonl.zst"
  head -c 20000 "$TMP/c4.jsonl.zst" >"$TMP/cut.jsonl.zst"
  expect_error truncated_zst 'cut.jsonl.zst: truncated zstd file' \
    "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$TMP/cut.jsonl.zst" --output "$TMP/o8" --progress 0
  no_shards truncated_zst_no_shard "$TMP/o8"
else
  skip truncated_zst "no zstd program"
fi
echo "plain text" >"$TMP/fake.jsonl.zst"
expect_error not_zstd 'fake.jsonl.zst: corrupt zstd data' "${ENC[@]}" --input "$TMP/fake.jsonl.zst" --output "$TMP/o8"

# Unreadable inputs, on every rank.
expect_error missing_input "cannot read input '$TMP/nothere.jsonl'" \
  "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$TMP/nothere.jsonl" --output "$TMP/o9"
mkdir -p "$TMP/emptydir"
expect_error folder_without_corpus "emptydir' holds no .jsonl" "${ENC[@]}" --input "$TMP/emptydir" --output "$TMP/o9"
# A folder stands for the corpus files of its whole tree, depth first in name
# order, hidden ones and other files passed over: the same shard as its files
# given one by one.
mkdir -p "$TMP/tree/a" "$TMP/tree/b/c" "$TMP/tree/.git"
head -3 inputs/redpajama-mini/c4_sample.jsonl >"$TMP/tree/a/x.jsonl"
sed -n 4,5p inputs/redpajama-mini/c4_sample.jsonl >"$TMP/tree/b/c/y.json"
cp "$TMP/tree/a/x.jsonl" "$TMP/tree/.git/z.jsonl"
echo "not a corpus" >"$TMP/tree/README.md"
shard_digest() { "$TOK" inspect "$1" | grep -E "^(n_documents|tokens_sha256|doc_offsets_sha256):"; }
if "${ENC[@]}" --input "$TMP/tree" --output "$TMP/tree_out" >/dev/null 2>&1 &&
   "${ENC[@]}" --input "$TMP/tree/a/x.jsonl" "$TMP/tree/b/c/y.json" --output "$TMP/files_out" >/dev/null 2>&1 &&
   [ "$(shard_digest "$TMP/tree_out/c4.train.h5")" = "$(shard_digest "$TMP/files_out/c4.train.h5")" ] &&
   shard_digest "$TMP/tree_out/c4.train.h5" | grep -q "^n_documents: 5$"; then
  pass folder_tree_is_its_corpus_files
else fail folder_tree_is_its_corpus_files "$(shard_digest "$TMP/tree_out/c4.train.h5" 2>&1 | head -3)"; fi
mkdir -p "$TMP/meta" && cp "$TMP/tree/a/x.jsonl" "$TMP/meta/" && printf '{\n  "name": "c4"\n}\n' >"$TMP/meta/dataset_info.json"
expect_error folder_with_json_metadata "dataset_info.json:1: not valid JSON .*: the file looks like one JSON document over many lines" \
  "${ENC[@]}" --input "$TMP/meta" --output "$TMP/o9"
mkdir -p "$TMP/fan/d" && cp "$TMP/tree/a/x.jsonl" "$TMP/fan/d/" && ln -s d "$TMP/fan/x" && ln -s d "$TMP/fan/y"
expect_error folder_reached_twice_through_links "input folder '$TMP/fan/x' is '$TMP/fan/d' again \(through a link\)" \
  "${ENC[@]}" --input "$TMP/fan" --output "$TMP/o9"
ln -s .. "$TMP/tree/b/c/up"
expect_error folder_link_loop "input folder '$TMP/tree/b/c/up' is a link to a folder above it" \
  "${ENC[@]}" --input "$TMP/tree" --output "$TMP/o9"

# Tokenizer files of another kind, or broken.
echo '{"model": {"type": "WordPiece", "vocab": {"[UNK]": 0}, "unk_token": "[UNK]"}}' >"$TMP/wordpiece.json"
expect_error wordpiece_tokenizer 'wordpiece.json: model type "WordPiece" is not supported' \
  "${MPI2[@]}" "$TOK" encode --tokenizer "$TMP/wordpiece.json" --input inputs/redpajama-mini --output "$TMP/o10"
echo '{"model": ' >"$TMP/broken.json"
expect_error broken_tokenizer 'broken.json: not valid JSON' \
  "${ENC[@]}" --input inputs/redpajama-mini --output "$TMP/o10" --tokenizer "$TMP/broken.json"
expect_error unknown_eos "eos <\|nope\|>: no such token" "$TOK" encode --tokenizer inputs/tokenizer.json \
  --eos '<|nope|>' --input inputs/redpajama-mini --output "$TMP/o10"
no_shards bad_tokenizer_no_shard "$TMP/o10"

# A tokenizer id far beyond its vocabulary (issue 11, case 15: encode took all memory).
sed 's/"<|endoftext|>": *[0-9]*/"<|endoftext|>": 1000000000/; 0,/"id": 8191,/s//"id": 1000000000,/' inputs/tokenizer.json >"$TMP/hugeid.json"
if grep -q '1000000000' "$TMP/hugeid.json"; then
  expect_error tokenizer_id_far_beyond_vocab 'hugeid.json: token id 1000000000 is out of range: the vocab and added_tokens hold [0-9]+ tokens' \
    "${ENC[@]}" --tokenizer "$TMP/hugeid.json" --input "$f" --output "$TMP/o11"
else
  fail tokenizer_id_far_beyond_vocab "inputs/tokenizer.json has no <|endoftext|> entry to change"
fi

# The same input twice (issue 11, case 13): by one name, by another, through its folder.
c4=inputs/redpajama-mini/c4_sample.jsonl
expect_error same_input_twice "input '$c4' is the same file as input '$c4'" \
  "${ENC[@]}" --input "$c4" "$c4" --output "$TMP/o12"
ln -s "$ROOT/$c4" "$TMP/link.jsonl"
expect_error same_input_by_link "input '$TMP/link.jsonl' is the same file as input '\./$c4'" \
  "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "./$c4" "$TMP/link.jsonl" --output "$TMP/o12"
expect_error same_input_in_folder "input 'inputs/redpajama-mini/c4_sample.jsonl' is the same file as input '$c4'" \
  "${ENC[@]}" --input "$c4" inputs/redpajama-mini --output "$TMP/o12"
no_shards same_input_no_shard "$TMP/o12"

# An output folder with another corpus's shards (case 13): refused, or cleared with --overwrite.
echo '{"text": "an old document", "meta": {"source": "old"}}' >"$TMP/old.jsonl"
echo '{"text": "a new document", "meta": {"source": "new"}}' >"$TMP/new.jsonl"
"${ENC[@]}" --input "$TMP/old.jsonl" --output "$TMP/o13" >/dev/null 2>&1
expect_error output_holds_shards "output folder '$TMP/o13' already holds 1 shard file \(old.train.h5\).*--overwrite" \
  "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$TMP/new.jsonl" --output "$TMP/o13"
if "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o13" --overwrite >/dev/null 2>&1 \
   && [ "$(cd "$TMP/o13" && echo *)" = "new.train.h5" ]; then
  pass output_overwrite_replaces_shards
else
  fail output_overwrite_replaces_shards "folder holds: $(ls "$TMP/o13")"
fi
# --overwrite deletes only what the tokenizer wrote: another *.h5 there is refused
# before anything is deleted; a failed write's *.train.h5.tmp goes with the shards.
echo "the user's own file" >"$TMP/o13/results.h5"
: >"$TMP/o13/new.train.h5.tmp"
expect_error overwrite_keeps_other_h5 "--overwrite: output folder '$TMP/o13' holds 'results.h5', which is not a token shard" \
  "${ENC[@]}" --input "$TMP/old.jsonl" --output "$TMP/o13" --overwrite
if [ "$(cd "$TMP/o13" && echo *)" = "new.train.h5 new.train.h5.tmp results.h5" ]; then
  pass overwrite_refusal_deletes_nothing
else
  fail overwrite_refusal_deletes_nothing "folder holds: $(ls "$TMP/o13")"
fi
rm "$TMP/o13/results.h5"
if "${ENC[@]}" --input "$TMP/old.jsonl" --output "$TMP/o13" --overwrite >/dev/null 2>&1 \
   && [ "$(cd "$TMP/o13" && echo *)" = "old.train.h5" ]; then
  pass overwrite_deletes_shard_tmp
else
  fail overwrite_deletes_shard_tmp "folder holds: $(ls "$TMP/o13")"
fi
# --overwrite replaces the old shards only once the new ones are written: a
# corpus that fails (a bad record) leaves the old dataset as it was.
cp "$TMP/o13/old.train.h5" "$TMP/old.copy"
expect_error overwrite_failed_encode "notjson.jsonl:31: not valid JSON" \
  "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$TMP/new.jsonl" "$notjson" --output "$TMP/o13" --overwrite
if [ "$(cd "$TMP/o13" && echo *)" = "old.train.h5" ] && cmp -s "$TMP/o13/old.train.h5" "$TMP/old.copy"; then
  pass overwrite_failed_encode_keeps_old_shards
else
  fail overwrite_failed_encode_keeps_old_shards "folder holds: $(ls -A "$TMP/o13")"
fi
if "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o13" --overwrite >"$TMP/o13.out" 2>&1 &&
   [ "$(ls -A "$TMP/o13")" = "new.train.h5" ] &&
   grep -q "the new shards replaced the 1 shard file $TMP/o13 held" "$TMP/o13.out"; then
  pass overwrite_after_failed_run_replaces
else
  fail overwrite_after_failed_run_replaces "folder holds: $(ls -A "$TMP/o13"); $(tail -2 "$TMP/o13.out")"
fi
# The staging folder is the encode's own: a file or a link by its name is refused and left
# as it is (a link's target is not emptied), an --output inside one is refused, and a live
# encode's lock on the folder refuses a second one.
mkdir -p "$TMP/o15" "$TMP/victim" && : >"$TMP/o15/.encode.tmp"
expect_error staging_name_taken "'$TMP/o15/.encode.tmp' is not the staging folder llama-tokenize makes" \
  "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o15"
rm "$TMP/o15/.encode.tmp" && echo precious >"$TMP/victim/keep.h5" && echo x >"$TMP/victim/b.h5"
ln -s "$TMP/victim" "$TMP/o15/.encode.tmp"
expect_error staging_is_a_link "'$TMP/o15/.encode.tmp' is not the staging folder llama-tokenize makes" \
  "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o15"
[ "$(ls "$TMP/victim" | tr '\n' ' ')" = "b.h5 keep.h5 " ] && pass staging_link_target_untouched ||
  fail staging_link_target_untouched "left: $(ls "$TMP/victim")"
expect_error output_inside_staging "--output $TMP/o16/.encode.tmp lies in a folder named .encode.tmp" \
  "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o16/.encode.tmp"
mkdir -p "$TMP/o17"
sleep 300 & live=$!
printf 'host %s\npid %s\nsince 2026-01-01T00:00:00\n' "$(uname -n)" $live >"$TMP/o17/.encode.lock"
expect_error output_locked "--output '$TMP/o17' is in use by another run: pid $live" \
  "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o17"
kill $live; wait $live 2>/dev/null
[ "$(ls -A "$TMP/o17")" = ".encode.lock" ] && pass output_locked_writes_nothing ||
  fail output_locked_writes_nothing "left: $(ls -A "$TMP/o17")"
if "${ENC[@]}" --input "$TMP/new.jsonl" --output "$TMP/o13" --overwrite >"$TMP/o13.out" 2>&1 &&
   [ "$(ls -A "$TMP/o13")" = "new.train.h5" ]; then
  pass overwrite_same_source_again
else
  fail overwrite_same_source_again "folder holds: $(ls -A "$TMP/o13"); $(tail -2 "$TMP/o13.out")"
fi

# A corpus without documents (an empty file; only empty texts) is an error, not exit 0.
: >"$TMP/nothing.jsonl"
expect_error empty_corpus "the corpus \($TMP/nothing.jsonl\) holds no documents" \
  "${MPI2[@]}" "$TOK" encode --tokenizer bytes --input "$TMP/nothing.jsonl" --output "$TMP/o14"
printf '{"text": ""}\n\n{"text": ""}\n' >"$TMP/blank.jsonl"
expect_error corpus_of_empty_documents "holds no documents" "${ENC[@]}" --input "$TMP/blank.jsonl" --output "$TMP/o14"
no_shards empty_corpus_no_shard "$TMP/o14"

# A full disk (case 14: the message, then a segfault in MPI_Finalize; on 2
# ranks HDF5's close of the shard hung until the space is reserved first): a
# 1 MiB tmpfs, 1 and 2 ranks.
full=$TMP/full
mkdir -p "$full"
if [ "$(id -u)" -eq 0 ] && mount -t tmpfs -o size=1m tmpfs "$full" 2>/dev/null; then
  wiki=inputs/redpajama-mini/wikipedia_sample.jsonl
  expect_error disk_full "writing shard '$full/a/.encode.tmp/wikipedia_sample.train.h5' failed \(disk full" \
    "${ENC[@]}" --input "$wiki" --output "$full/a"
  no_shards disk_full_no_shard "$full/a"
  expect_error disk_full_2_ranks "writing shard '$full/b/.encode.tmp/wikipedia_sample.train.h5' failed \(disk full" \
    "${MPI2[@]}" "${ENC[@]}" --input "$wiki" --output "$full/b"
  no_shards disk_full_2_ranks_no_shard "$full/b"
  umount "$full"
else
  skip disk_full "cannot mount a tmpfs here (needs root)"
fi

# Options.
expect_usage_error unknown_option "unknown option '--frobnicate'" "${MPI2[@]}" "$TOK" encode --frobnicate
expect_usage_error bad_val_fraction "--val-fraction: expected a number in \[0, 1\), got '2'" "${ENC[@]}" --input x --output y --val-fraction 2
expect_usage_error missing_tokenizer_option "encode needs --tokenizer" "$TOK" encode --input x --output y
# Each command refuses the options of the others (they would be silently ignored).
expect_usage_error bench_refuses_output "bench does not take the option '--output'" \
  "$TOK" bench --tokenizer bytes --input x --output y
expect_usage_error train_refuses_eos "train does not take the option '--eos'" \
  "$TOK" train --vocab-size 300 --input x --output y.json --eos '</s>'
expect_usage_error encode_refuses_vocab_size "encode does not take the option '--vocab-size'" \
  "${ENC[@]}" --input x --output y --vocab-size 300
expect_usage_error inspect_refuses_options "inspect does not take the option '--seed'" \
  "$TOK" inspect --seed 1 x.h5
expect_usage_error train_small_vocab "vocab-size 100 leaves no room" \
  "$TOK" train --vocab-size 100 --input inputs/redpajama-mini --output "$TMP/t.json"
expect_error train_output_folder_missing "--output $TMP/nodir/t.json: cannot write in its folder $TMP/nodir" \
  "$TOK" train --vocab-size 300 --input inputs/redpajama-mini --output "$TMP/nodir/t.json"
# train's --output is no corpus file (by any name): writing it would destroy the corpus.
head -50 inputs/redpajama-mini/c4_sample.jsonl >"$TMP/corpus.jsonl"
cp "$TMP/corpus.jsonl" "$TMP/corpus.before"
ln -s "$TMP/corpus.jsonl" "$TMP/alias.json"
expect_error train_output_is_input "--output $TMP/alias.json is the corpus file $TMP/corpus.jsonl: writing the tokenizer there would destroy it" \
  "${MPI2[@]}" "$TOK" train --vocab-size 300 --input "$TMP/corpus.jsonl" --output "$TMP/alias.json"
cp "$TMP/corpus.jsonl" "$TMP/corpus.model"
expect_error train_spm_output_is_input "--output $TMP/corpus.model is the corpus file $TMP/corpus.model" \
  "$TOK" train --kind sentencepiece --vocab-size 300 --input "$TMP/corpus.model" --output "$TMP/corpus"
cmp -s "$TMP/corpus.jsonl" "$TMP/corpus.before" && cmp -s "$TMP/corpus.model" "$TMP/corpus.before" &&
  pass train_output_refusal_keeps_corpus || fail train_output_refusal_keeps_corpus "a corpus file changed"
if "$TOK" --help | grep -q -- '--val-fraction' && "$TOK" --help | grep -q -- '--max-record-bytes' \
   && "$TOK" --help | grep -q -- '--overwrite'; then
  pass help_documents_options
else
  fail help_documents_options "--help lacks options"
fi
# An --output the ranks do not share (mpirun -wdir: each rank its own folder):
# refused before the corpus is read, no probe file left.
mkdir -p "$TMP/node0" "$TMP/node1"
E=(encode --tokenizer bytes --input "$ROOT/inputs/redpajama-mini" --output out)
expect_error unshared_output \
  "--output out: rank 1 \(host $(hostname)\) does not see the file rank 0 \(host $(hostname)\) wrote there \(out/.shared-probe-[0-9]*: no such file\): the shards .* the folder must be one they all share" \
  "${MPIRUN[@]}" -np 1 -wdir "$TMP/node0" "$TOK" "${E[@]}" : -np 1 -wdir "$TMP/node1" "$TOK" "${E[@]}"
[ -z "$(ls -A "$TMP/node0/out")" ] && pass unshared_output_leaves_nothing ||
  fail unshared_output_leaves_nothing "$(ls -A "$TMP/node0/out")"
finish
