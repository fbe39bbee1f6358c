// The tokenizer beyond parity: decode(encode(x)) == x on seeded fuzz input
// (byte-level and SentencePiece-style), the two BPE merge algorithms agree,
// SentencePiece-style words are cut only where no merge crosses, special tokens, BOS/EOS, the byte
// tokenizer, refusal of other tokenizer kinds, options of tokenizer.json the
// goldens' tokenizers do not use (against tokenizers' ids: added tokens'
// lstrip/rstrip/single_word/normalized, Split behaviours, a template's
// trailing EOS, Strip decoding, Prepend, byte-level unk, Metaspace schemes),
// the BPE trainer's word counts against the Hugging Face pre-tokenizer's
// (validation/golden/word-counts.json) and its merges against a naive
// re-implementation.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "tokenizer/bpe.h"
#include "tokenizer/bpe_train.h"
#include "check.h"
#include "text/jsonl.h"
#include "tokenizer/tokenizer.h"
#include "core/util.h"

static const char *TOKENIZERS[] = {"inputs/tokenizer.json", "validation/reference/gpt2-style.json",
                                   "validation/reference/llama3-style.json", "bytes"};

static uint64_t rng_state = 42;
static uint32_t rnd(void) {
    rng_state = rng_state * 6364136223846793005ULL + 1442695040888963407ULL;
    return (uint32_t)(rng_state >> 33);
}

static size_t put_utf8(uint32_t cp, char *out) {
    if (cp < 0x80) return out[0] = (char)cp, 1;
    if (cp < 0x800) return out[0] = (char)(0xC0 | cp >> 6), out[1] = (char)(0x80 | (cp & 63)), 2;
    if (cp < 0x10000) {
        out[0] = (char)(0xE0 | cp >> 12), out[1] = (char)(0x80 | ((cp >> 6) & 63));
        out[2] = (char)(0x80 | (cp & 63));
        return 3;
    }
    out[0] = (char)(0xF0 | cp >> 18), out[1] = (char)(0x80 | ((cp >> 12) & 63));
    out[2] = (char)(0x80 | ((cp >> 6) & 63)), out[3] = (char)(0x80 | (cp & 63));
    return 4;
}

// A seeded fuzz input of kind 0 (random bytes), 1 (random UTF-8) or 2 (a
// fragment of the corpus text).
static size_t fuzz_input(int kind, const char *corpus, size_t corpus_len, char *out) {
    size_t n = 0, len = 1 + rnd() % 300;
    if (kind == 0) {
        for (; n < len; n++) out[n] = rnd() % 4 ? (char)(rnd() & 0xFF) : " \n\t'a"[rnd() % 5];
    } else if (kind == 1) {
        for (size_t i = 0; i < len / 3 + 1; i++) {
            uint32_t cp = rnd() % 3 == 0 ? rnd() % 0x80 : rnd() % 0x110000;
            if (cp >= 0xD800 && cp < 0xE000) cp = ' ';
            n += put_utf8(cp, out + n);
        }
    } else {
        size_t at = rnd() % corpus_len;
        n = corpus_len - at < len ? corpus_len - at : len;
        memcpy(out, corpus + at, n);
    }
    return n;
}

static char *read_corpus(size_t *len) {
    char err[512];
    JsonlReader *r = jsonl_open("inputs/redpajama-mini/wikipedia_sample.jsonl", 0, -1, NULL, err,
                                sizeof err);
    char *all = NULL;
    *len = 0;
    JsonlRecord rec;
    while (r && jsonl_next(r, &rec, err, sizeof err) == 1 && *len < 4000000) {
        all = realloc(all, *len + rec.len);
        memcpy(all + *len, rec.text, rec.len);
        *len += rec.len;
    }
    jsonl_close(r);
    return all;
}

static void test_roundtrip(const char *corpus, size_t corpus_len) {
    char err[512], buf[2048];
    for (int k = 0; k < 4; k++) {
        char name[128];
        snprintf(name, sizeof name, "tokenizer_roundtrip_%s", TOKENIZERS[k]);
        check_begin(name);
        Tokenizer *t = tokenizer_load(TOKENIZERS[k], err, sizeof err);
        CHECK(t, "%s", err);
        TokenIds ids = {0};
        for (int i = 0; t && i < 3000; i++) {
            size_t n = fuzz_input(i % 3, corpus, corpus_len, buf), m;
            ids.len = 0;
            tokenizer_encode(t, buf, n, false, &ids);
            char *back = tokenizer_decode(t, ids.ids, ids.len, &m);
            CHECK(m == n && memcmp(back, buf, n) == 0, "input %d (kind %d, %zu bytes) decodes "
                  "to %zu other bytes", i, i % 3, n, m);
            free(back);
        }
        token_ids_free(&ids);
        tokenizer_free(t);
        check_end();
    }
}

// SentencePiece-style (LLaMA-2 legacy form, byte fallback): any UTF-8 text
// without special tokens decodes back to itself.
static void test_roundtrip_sentencepiece(const char *corpus, size_t corpus_len) {
    char err[512], buf[2048];
    check_begin("tokenizer_roundtrip_sentencepiece_style");
    Tokenizer *t = tokenizer_load("validation/reference/spm-legacy.json", err, sizeof err);
    CHECK(t, "%s", err);
    TokenIds ids = {0};
    for (int i = 0; t && i < 2000; i++) {
        size_t n = fuzz_input(1 + i % 2, corpus, corpus_len, buf), m;
        ids.len = 0;
        tokenizer_encode(t, buf, n, false, &ids);
        char *back = tokenizer_decode(t, ids.ids, ids.len, &m);
        CHECK(m == n && memcmp(back, buf, n) == 0, "input %d (kind %d, %zu bytes) decodes to "
              "%zu other bytes", i, 1 + i % 2, n, m);
        free(back);
    }
    token_ids_free(&ids);
    tokenizer_free(t);
    check_end();
}

// Words of SentencePiece-style BPE are cut before a "▁" after another
// character only when no token holds one there: with the token "a▁", "a▁b"
// is [a▁, b]; without it (a, ▁, b), the same ids as the whole word's.
static void test_metaspace_cuts(void) {
    check_begin("bpe_metaspace_cuts_only_when_no_merge_crosses");
    for (int with = 0; with < 2; with++) {
        Bpe b;
        bpe_init(&b);
        b.chars = true;
        const char *toks[] = {"a", "\xE2\x96\x81", "b", "\xE2\x96\x81" "b", "a\xE2\x96\x81"};
        for (int i = 0; i < 4 + with; i++) bpe_add_token(&b, toks[i], strlen(toks[i]), i);
        bpe_add_merge(&b, 1, 2, 3, 1);  // ▁ b -> ▁b
        if (with) bpe_add_merge(&b, 0, 1, 4, 0);  // a ▁ -> a▁, ranked first
        bpe_finish(&b);
        bpe_allow_metaspace_cuts(&b);
        TokenIds ids = {0};
        bpe_encode_word(&b, "a\xE2\x96\x81" "b", 5, &ids);
        CHECK(b.cut_at_metaspace == !with, "cuts %s with%s the token a▁",
              b.cut_at_metaspace ? "allowed" : "refused", with ? "" : "out");
        if (with) CHECK(ids.len == 2 && ids.ids[0] == 4 && ids.ids[1] == 2, "a▁b: %zu ids", ids.len);
        else CHECK(ids.len == 2 && ids.ids[0] == 0 && ids.ids[1] == 3, "a▁b: %zu ids", ids.len);
        token_ids_free(&ids);
        bpe_free(&b);
    }
    check_end();
}

// The heap merge (long words) and the scan merge (short words) agree.
// A small model with overlapping merges (aaa, abc, ccc) over random words.
static void test_merge_algorithms(void) {
    check_begin("bpe_heap_and_scan_merges_agree");
    char buf[2048];
    Bpe b;
    bpe_init(&b);
    const char *toks[] = {"a", "b", "c", " ", "ab", "bc", "abc", "aa", "aaa", " a", "cc", "ccc"};
    for (int i = 0; i < 12; i++) bpe_add_token(&b, toks[i], strlen(toks[i]), i);
    int merges[][3] = {{0, 1, 4}, {1, 2, 5}, {4, 2, 6}, {0, 0, 7}, {7, 0, 8}, {3, 0, 9},
                       {2, 2, 10}, {10, 2, 11}};
    for (int i = 0; i < 8; i++) bpe_add_merge(&b, merges[i][0], merges[i][1], merges[i][2], i);
    bpe_finish(&b);
    TokenIds x = {0}, y = {0};
    for (int i = 0; i < 5000; i++) {
        size_t n = 1 + rnd() % 200;
        for (size_t j = 0; j < n; j++) buf[j] = "abc a"[rnd() % 5];
        x.len = y.len = 0;
        bpe_merge_word(&b, buf, n, true, &x);
        bpe_merge_word(&b, buf, n, false, &y);
        CHECK(x.len == y.len && memcmp(x.ids, y.ids, x.len * 4) == 0,
              "word %d (%.*s): heap and scan merges differ", i, (int)n, buf);
    }
    bpe_free(&b);
    token_ids_free(&x);
    token_ids_free(&y);
    check_end();
}

static void test_specials(void) {
    char err[512];
    check_begin("tokenizer_special_tokens_bos_eos");
    Tokenizer *g = tokenizer_load("validation/reference/gpt2-style.json", err, sizeof err);
    Tokenizer *l = tokenizer_load("validation/reference/llama3-style.json", err, sizeof err);
    Tokenizer *b = tokenizer_load("inputs/tokenizer.json", err, sizeof err);
    CHECK(g && l && b, "%s", err);
    if (g && l && b) {
        CHECK(tokenizer_eos_id(g) == tokenizer_token_id(g, "<|endoftext|>") &&
              tokenizer_eos_id(g) >= 0 && tokenizer_bos_id(g) == -1, "gpt2-style bos/eos");
        CHECK(tokenizer_eos_id(l) == tokenizer_token_id(l, "<|end_of_text|>") &&
              tokenizer_bos_id(l) == tokenizer_token_id(l, "<|begin_of_text|>"),
              "llama3-style bos/eos");
        CHECK(tokenizer_eos_id(b) == 8191 && tokenizer_vocab_size(b) == 8192, "bundled eos %lld",
              (long long)tokenizer_eos_id(b));
        TokenIds ids = {0};
        tokenizer_encode_document(l, "hi<|end_of_text|>", 17, &ids);
        CHECK(ids.len >= 4 && ids.ids[0] == (uint32_t)tokenizer_bos_id(l) &&
              ids.ids[ids.len - 2] == (uint32_t)tokenizer_eos_id(l) &&
              ids.ids[ids.len - 1] == (uint32_t)tokenizer_eos_id(l),
              "llama3 document: BOS, text, the matched <|end_of_text|>, then EOS");
        ids.len = 0;
        tokenizer_encode_document(g, "x", 1, &ids);
        CHECK(ids.len == 2 && ids.ids[1] == (uint32_t)tokenizer_eos_id(g), "gpt2 document");
        CHECK(tokenizer_set_eos(g, "x", err, sizeof err) && tokenizer_eos_id(g) == ids.ids[0],
              "--eos x");
        CHECK(!tokenizer_set_eos(g, "<|nope|>", err, sizeof err) && strstr(err, "<|nope|>"),
              "--eos of an unknown token must fail");
        token_ids_free(&ids);
    }
    tokenizer_free(g), tokenizer_free(l), tokenizer_free(b);
    check_end();
}

static void test_bytes(void) {
    char err[512];
    check_begin("tokenizer_bytes");
    Tokenizer *t = tokenizer_load("bytes", err, sizeof err);
    TokenIds ids = {0};
    tokenizer_encode_document(t, "a\xff<|endoftext|>", 15, &ids);
    CHECK(tokenizer_vocab_size(t) == 256 && tokenizer_eos_id(t) == -1 &&
          tokenizer_bos_id(t) == -1, "bytes: vocab 256, no bos/eos");
    CHECK(ids.len == 15 && ids.ids[0] == 'a' && ids.ids[1] == 0xFF && ids.ids[2] == '<',
          "bytes: one id per byte");
    token_ids_free(&ids);
    tokenizer_free(t);
    check_end();
}

// A word whose bytes have no token (and no unk_token) gives no ids, also from
// the cache; the first such word once did pointer arithmetic on the empty
// cache's NULL (found by make fuzz, UBSan).
static void test_word_without_tokens(void) {
    char path[] = "/tmp/llama-test-tok-XXXXXX", err[512] = "";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs("{\"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0, \"b\": 1, \"ab\": 2}, "
          "\"merges\": [\"a b\"]}, \"pre_tokenizer\": {\"type\": \"ByteLevel\"}, "
          "\"added_tokens\": [{\"id\": 3, \"content\": \"<|endoftext|>\", \"special\": true}]}",
          f);
    fclose(f);
    check_begin("tokenizer_word_without_tokens");
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t, "load: %s", err);
    for (int round = 0; t && round < 2; round++) {  // the second from the cache
        TokenIds ids = {0};
        tokenizer_encode_document(t, "xyz ab", 6, &ids);
        CHECK(ids.len == 2 && ids.ids[0] == 2 && ids.ids[1] == 3,
              "round %d: %zu ids (first %u), expected [2 (ab), 3 (eos)]", round, ids.len,
              ids.len ? ids.ids[0] : 0);
        token_ids_free(&ids);
    }
    tokenizer_free(t);
    remove(path);
    check_end();
}

// ---- refusing what is not a byte-level BPE tokenizer -------------------------

static void expect_refusal(const char *name, const char *json, const char *what) {
    char path[] = "/tmp/llama-test-tok-XXXXXX", err[1024] = "";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    check_begin(name);
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(!t, "loaded a tokenizer it should refuse");
    CHECK(strstr(err, path) && strstr(err, what), "message '%s' lacks the file or '%s'", err, what);
    tokenizer_free(t);
    remove(path);
    check_end();
}

// A SentencePiece-style tokenizer.json without a decoder: tokenizers joins the
// tokens' texts with spaces ('▁a b <s> ▁a', from tokenizers 0.23); the token
// texts an export names (tokenizer_token_text) are the file's, not decoded.
static void test_null_decoder_and_token_text(void) {
    const char *json = "{\"added_tokens\": [{\"id\": 3, \"content\": \"<s>\", \"special\": true}], "
                       "\"decoder\": null, \"model\": {\"type\": \"BPE\", \"unk_token\": \"<unk>\", "
                       "\"vocab\": {\"<unk>\": 0, \"\u2581a\": 1, \"b\": 2}, \"merges\": []}}";
    char path[] = "/tmp/llama-test-tok-XXXXXX", err[1024] = "";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fputs(json, f);
    fclose(f);
    check_begin("tokenizer_null_decoder_joins_with_spaces");
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t != NULL, "%s", err);
    if (t) {
        uint32_t ids[] = {1, 2, 3, 1};
        size_t n;
        char *text = tokenizer_decode(t, ids, 4, &n), *s3 = tokenizer_token_text(t, 3),
             *s1 = tokenizer_token_text(t, 1), *none = tokenizer_token_text(t, 9);
        CHECK(!strcmp(text, "\xe2\x96\x81" "a b <s> \xe2\x96\x81" "a"), "decoded '%s'", text);
        CHECK(s3 && !strcmp(s3, "<s>") && s1 && !strcmp(s1, "\xe2\x96\x81" "a") && !none,
              "token texts '%s' '%s'", s3 ? s3 : "(null)", s1 ? s1 : "(null)");
        free(text), free(s3), free(s1);
    }
    tokenizer_free(t);
    remove(path);
    check_end();
}

static void test_refusals(void) {
    expect_refusal("tokenizer_refuses_wordpiece",
                   "{\"model\": {\"type\": \"WordPiece\", \"vocab\": {\"a\": 0}}}", "WordPiece");
    expect_refusal("tokenizer_refuses_unigram",
                   "{\"model\": {\"type\": \"Unigram\", \"vocab\": [[\"a\", 0.0]]}}", "Unigram");
    expect_refusal("tokenizer_refuses_normalizer",
                   "{\"normalizer\": {\"type\": \"NFC\"}, \"pre_tokenizer\": {\"type\": "
                   "\"ByteLevel\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                   "\"merges\": []}}", "NFC");
    // SentencePiece-style parts are read (test_tokenizer_parity), but not all of them
    expect_refusal("tokenizer_refuses_metaspace",  // without its replacement character
                   "{\"pre_tokenizer\": {\"type\": \"Metaspace\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0}, \"merges\": []}}", "Metaspace");
    expect_refusal("tokenizer_refuses_metaspace_prepend_scheme",
                   "{\"pre_tokenizer\": {\"type\": \"Metaspace\", \"replacement\": \"_\", "
                   "\"prepend_scheme\": \"sometimes\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0}, \"merges\": []}}", "prepend_scheme \"sometimes\"");
    expect_refusal("tokenizer_refuses_precompiled_normalizer",
                   "{\"normalizer\": {\"type\": \"Sequence\", \"normalizers\": [{\"type\": "
                   "\"Precompiled\", \"precompiled_charsmap\": \"AA==\"}]}, \"model\": {\"type\": "
                   "\"BPE\", \"byte_fallback\": true, \"vocab\": {\"a\": 0}, \"merges\": []}}",
                   "normalizer \"Precompiled\" is not supported");
    expect_refusal("tokenizer_refuses_regex_replace_normalizer",
                   "{\"normalizer\": {\"type\": \"Replace\", \"pattern\": {\"Regex\": \" {2,}\"}, "
                   "\"content\": \"_\"}, \"model\": {\"type\": \"BPE\", \"vocab\": {\"a\": 0}, "
                   "\"merges\": []}}", "Replace normalizer with a Regex pattern");
    expect_refusal("tokenizer_refuses_sentencepiece_style_decoder",
                   "{\"decoder\": {\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, "
                   "{\"type\": \"CTC\"}]}, \"model\": {\"type\": \"BPE\", \"byte_fallback\": true, "
                   "\"vocab\": {\"a\": 0}, \"merges\": []}}", "decoder \"CTC\" is not supported");
    expect_refusal("tokenizer_refuses_bad_merge",
                   "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": [\"a b\"]}}", "merge 0");
    expect_refusal("tokenizer_refuses_not_json", "{\"model\": ", "not valid JSON");
    // One id of 10^9 made the decode table (and the shards' vocab) that large (issue 11, 15).
    expect_refusal("tokenizer_refuses_id_far_beyond_vocab",
                   "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0, \"b\": 1000000000}, \"merges\": []}}",
                   "token id 1000000000 is out of range: the vocab and added_tokens hold 2 tokens");
    expect_refusal("tokenizer_refuses_added_id_far_beyond_vocab",
                   "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0}, \"merges\": []}, \"added_tokens\": [{\"id\": "
                   "4294967296, \"content\": \"<s>\"}]}", "added token 0 has no id");
    expect_refusal("tokenizer_refuses_template_id_outside_vocab",
                   "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {\"a\": 0, \"b\": 1}, \"merges\": []}, \"post_processor\": "
                   "{\"type\": \"TemplateProcessing\", \"single\": [{\"SpecialToken\": {\"id\": "
                   "\"<s>\"}}, {\"Sequence\": {\"id\": \"A\"}}], \"special_tokens\": {\"<s>\": "
                   "{\"ids\": [7]}}}}", "\"<s>\" has an id outside the vocabulary (0 to 1)");
    expect_refusal("tokenizer_refuses_empty_vocab",
                   "{\"pre_tokenizer\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": \"BPE\", "
                   "\"vocab\": {}, \"merges\": []}}", "the vocab and added_tokens are empty");
    char err[512];
    check_begin("tokenizer_refuses_missing_file");
    CHECK(!tokenizer_load("/nonexistent/tok.json", err, sizeof err) &&
          strstr(err, "/nonexistent/tok.json"), "message: %s", err);
    check_end();
}

// ---- options of tokenizer.json that the goldens' tokenizers do not use ----
// Small tokenizers made here, each with the part under test.  The expected ids
// and texts are those of Hugging Face tokenizers 0.23 for the same JSON
// (validation/reference/check_tokenizer_options.py asserts every one of them
// there), and follow by hand from the rules quoted with each case.

#define MS "\xe2\x96\x81"   // "▁"

// A BPE tokenizer.json of these parts (JSON texts; "null" for none), loaded.
static Tokenizer *bpe_json(const char *model_extra, const char *vocab, const char *merges,
                           const char *added, const char *normalizer, const char *pre,
                           const char *post, const char *decoder) {
    char path[] = "/tmp/llama-test-tok-XXXXXX", err[1024] = "";
    int fd = mkstemp(path);
    FILE *f = fdopen(fd, "w");
    fprintf(f, "{\"added_tokens\": [%s], \"normalizer\": %s, \"pre_tokenizer\": %s, "
            "\"post_processor\": %s, \"decoder\": %s, \"model\": {\"type\": \"BPE\"%s, "
            "\"vocab\": {%s}, \"merges\": [%s]}}", added, normalizer, pre, post, decoder,
            model_extra, vocab, merges);
    fclose(f);
    Tokenizer *t = tokenizer_load(path, err, sizeof err);
    CHECK(t, "load: %s", err);
    remove(path);
    return t;
}

// Encodes text (with the post-processor's tokens when special) and compares with want.
static void expect_ids(Tokenizer *t, const char *text, bool special, const uint32_t *want,
                       size_t n, const char *what) {
    TokenIds ids = {0};
    if (t) tokenizer_encode(t, text, strlen(text), special, &ids);
    bool same = t && ids.len == n && (n == 0 || memcmp(ids.ids, want, n * sizeof *want) == 0);
    char got[256] = "";
    for (size_t i = 0, at = 0; i < ids.len && at + 12 < sizeof got; i++)
        at += (size_t)snprintf(got + at, sizeof got - at, " %u", ids.ids[i]);
    CHECK(same, "%s: \"%s\" gives ids [%s ], tokenizers %zu ids", what, text, got, n);
    token_ids_free(&ids);
}
#define EXPECT_IDS(t, text, special, what, ...)                                            \
    expect_ids((t), (text), (special), (const uint32_t[]){__VA_ARGS__},                    \
               sizeof((const uint32_t[]){__VA_ARGS__}) / sizeof(uint32_t), (what))
#define EXPECT_NO_IDS(t, text, what) expect_ids((t), (text), false, NULL, 0, (what))

// Added tokens' lstrip and rstrip take the white space on their side into the
// token; single_word matches only where no word character touches the token;
// normalized=true tokens are matched in the normalized text (here q -> x).
static void test_added_token_options(void) {
    check_begin("tokenizer_added_token_lstrip_rstrip_single_word_normalized");
    Tokenizer *t = bpe_json(
        ", \"unk_token\": \"<unk>\"",
        "\"a\": 0, \"b\": 1, \"c\": 2, \"x\": 3, \"y\": 4, \"q\": 5, \" \": 6, \"-\": 7, "
        "\"_\": 8, \"<unk>\": 9", "",
        "{\"id\": 10, \"content\": \"<L>\", \"lstrip\": true}, "
        "{\"id\": 11, \"content\": \"<R>\", \"rstrip\": true}, "
        "{\"id\": 12, \"content\": \"xy\", \"single_word\": true}, "
        "{\"id\": 13, \"content\": \"xx\", \"normalized\": true}",
        "{\"type\": \"Replace\", \"pattern\": {\"String\": \"q\"}, \"content\": \"x\"}", "null",
        "null", "null");
    EXPECT_IDS(t, "a  <L>b", false, "lstrip", 0, 10, 1);
    EXPECT_IDS(t, "a<R>  b", false, "rstrip", 0, 11, 1);
    EXPECT_IDS(t, "a <L> <R> b", false, "lstrip and rstrip, the space between kept", 0, 10, 6,
               11, 1);
    EXPECT_IDS(t, "xy axy xyb  xy", false, "single_word", 12, 6, 0, 3, 4, 6, 3, 4, 1, 6, 6, 12);
    EXPECT_IDS(t, "a xy-b", false, "single_word before a non-word character", 0, 6, 12, 7, 1);
    EXPECT_IDS(t, "aqqb", false, "normalized token of normalized text", 0, 13, 1);
    EXPECT_IDS(t, "xx", false, "normalized token of raw text", 13);
    tokenizer_free(t);
    check_end();
}

// Split's behaviours with the delimiter "-" (String and Regex patterns) and
// invert, seen through merges that cross the pieces (ranked "- -", "a -", "- b").
static void test_split_behaviors(void) {
    check_begin("tokenizer_split_pre_tokenizer_behaviors_and_invert");
    static const struct {
        const char *behavior;
        bool invert;
        uint32_t a[4], b[3];   // ids of "a--b" and of "-a-", 99 past the end
    } cases[] = {
        {"Removed", false, {0, 1, 99}, {0, 99}},            // delimiters dropped
        {"Removed", true, {2, 2, 99}, {2, 2, 99}},          // the rest dropped
        {"Isolated", false, {0, 2, 2, 1}, {2, 0, 2}},
        {"Isolated", true, {0, 2, 2, 1}, {2, 0, 2}},
        {"MergedWithPrevious", false, {4, 2, 1, 99}, {2, 4, 99}},   // a-, -, b
        {"MergedWithPrevious", true, {0, 2, 5, 99}, {2, 0, 2}},     // a, -, -b
        {"MergedWithNext", false, {0, 2, 5, 99}, {2, 0, 2}},
        {"MergedWithNext", true, {4, 2, 1, 99}, {2, 4, 99}},
        {"Contiguous", false, {0, 3, 1, 99}, {2, 0, 2}},            // a, --, b
        {"Contiguous", true, {0, 3, 1, 99}, {2, 0, 2}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++)
        for (int regex = 0; regex < 2; regex++) {
            char pre[256], what[96];
            snprintf(pre, sizeof pre, "{\"type\": \"Split\", \"pattern\": {\"%s\": \"-\"}, "
                     "\"behavior\": \"%s\", \"invert\": %s}", regex ? "Regex" : "String",
                     cases[k].behavior, cases[k].invert ? "true" : "false");
            snprintf(what, sizeof what, "%s%s (%s)", cases[k].behavior,
                     cases[k].invert ? ", inverted" : "", regex ? "Regex" : "String");
            Tokenizer *t = bpe_json("", "\"a\": 0, \"b\": 1, \"-\": 2, \"--\": 3, \"a-\": 4, "
                                    "\"-b\": 5", "\"- -\", \"a -\", \"- b\"", "", "null", pre,
                                    "null", "null");
            size_t na = 0, nb = 0;
            while (na < 4 && cases[k].a[na] != 99) na++;
            while (nb < 3 && cases[k].b[nb] != 99) nb++;
            expect_ids(t, "a--b", false, cases[k].a, na, what);
            expect_ids(t, "-a-", false, cases[k].b, nb, what);
            tokenizer_free(t);
        }
    check_end();
}

// TemplateProcessing with a token after $A ("$A </s>"), the EOS: it ends every
// encoding with special tokens, and a document once; an added token named like
// an EOS (<|endoftext|>) that is not special is not taken for it.  Decoding:
// Fuse, then Strip("x", start 1, stop 2) takes up to one x off the start and
// two off the end of the text.
static void test_template_suffix_and_strip(void) {
    check_begin("tokenizer_template_suffix_eos_and_strip_decoder");
    Tokenizer *t = bpe_json(
        "", "\"a\": 0, \"b\": 1, \"x\": 2, \"</s>\": 3, \"<|endoftext|>\": 4", "",
        "{\"id\": 3, \"content\": \"</s>\", \"special\": true}, "
        "{\"id\": 4, \"content\": \"<|endoftext|>\", \"special\": false}",
        "null", "null",
        "{\"type\": \"TemplateProcessing\", \"single\": [{\"Sequence\": {\"id\": \"A\"}}, "
        "{\"SpecialToken\": {\"id\": \"</s>\"}}], \"special_tokens\": {\"</s>\": {\"id\": "
        "\"</s>\", \"ids\": [3], \"tokens\": [\"</s>\"]}}}",
        "{\"type\": \"Sequence\", \"decoders\": [{\"type\": \"Fuse\"}, {\"type\": \"Strip\", "
        "\"content\": \"x\", \"start\": 1, \"stop\": 2}]}");
    EXPECT_IDS(t, "ab", true, "with the template's tokens", 0, 1, 3);
    EXPECT_IDS(t, "ab", false, "without them", 0, 1);
    if (t) {
        CHECK(tokenizer_eos_id(t) == 3 && tokenizer_bos_id(t) == -1,
              "eos %lld (want 3, </s>: <|endoftext|> is not special), bos %lld (want none)",
              (long long)tokenizer_eos_id(t), (long long)tokenizer_bos_id(t));
        TokenIds ids = {0};
        tokenizer_encode_document(t, "ab", 2, &ids);
        CHECK(ids.len == 3 && ids.ids[0] == 0 && ids.ids[1] == 1 && ids.ids[2] == 3,
              "a document ends with one EOS: %zu ids", ids.len);
        token_ids_free(&ids);
        static const struct { uint32_t ids[6]; size_t n; const char *text; } dec[] = {
            {{2, 2, 0, 2, 2, 2}, 6, "xax"}, {{2, 2, 2, 2}, 4, "x"}, {{2, 0, 1, 2}, 4, "ab"},
            {{0, 2, 2}, 3, "a"}, {{0, 1}, 2, "ab"}};
        for (size_t k = 0; k < sizeof dec / sizeof dec[0]; k++) {
            size_t m;
            char *text = tokenizer_decode(t, dec[k].ids, dec[k].n, &m);
            CHECK(m == strlen(dec[k].text) && memcmp(text, dec[k].text, m) == 0,
                  "decode %zu: \"%.*s\", want \"%s\"", k, (int)m, text, dec[k].text);
            free(text);
        }
    }
    tokenizer_free(t);
    check_end();
}

// A Prepend normalizer leaves an empty text empty, also one that an earlier
// Replace emptied ("x" -> "").
static void test_prepend_after_empty(void) {
    check_begin("tokenizer_prepend_normalizer_leaves_emptied_text_empty");
    Tokenizer *t = bpe_json(
        "", "\"a\": 0, \"" MS "\": 1, \"x\": 2, \"<s>\": 3", "",
        "{\"id\": 3, \"content\": \"<s>\", \"special\": true}",
        "{\"type\": \"Sequence\", \"normalizers\": [{\"type\": \"Replace\", \"pattern\": "
        "{\"String\": \"x\"}, \"content\": \"\"}, {\"type\": \"Prepend\", \"prepend\": \"" MS
        "\"}]}", "null", "null", "null");
    EXPECT_NO_IDS(t, "x", "emptied text");
    EXPECT_IDS(t, "xax", false, "text left", 1, 0);
    EXPECT_IDS(t, "x<s>x", false, "emptied texts around an added token", 3);
    EXPECT_IDS(t, "<s>xx<s>a", false, "between added tokens", 3, 3, 1, 0);
    tokenizer_free(t);
    check_end();
}

// Byte-level BPE with an unk_token: a byte without a token is unk, and with
// fuse_unk a run of them one unk.
static void test_byte_level_unk(void) {
    check_begin("tokenizer_byte_level_unk_and_fuse_unk");
    for (int fuse = 0; fuse < 2; fuse++) {
        Tokenizer *t = bpe_json(fuse ? ", \"unk_token\": \"<unk>\", \"fuse_unk\": true"
                                     : ", \"unk_token\": \"<unk>\", \"fuse_unk\": false",
                                "\"a\": 0, \"b\": 1, \"<unk>\": 2", "", "", "null",
                                "{\"type\": \"ByteLevel\", \"add_prefix_space\": false, "
                                "\"trim_offsets\": true, \"use_regex\": false}", "null", "null");
        if (fuse) {
            EXPECT_IDS(t, "a\xc3\xa9\xc3\xa9" "b", false, "fused", 0, 2, 1);
            EXPECT_IDS(t, "zz a", false, "fused", 2, 0);
        } else {
            EXPECT_IDS(t, "a\xc3\xa9\xc3\xa9" "b", false, "not fused", 0, 2, 2, 2, 2, 1);
            EXPECT_IDS(t, "zz a", false, "not fused", 2, 2, 2, 0);
        }
        tokenizer_free(t);
    }
    check_end();
}

// Metaspace (split false) by prepend_scheme: "first" puts "▁" only before the
// text's start, not after an added token; "always" before every text; "never" nowhere.
static void test_metaspace_schemes(void) {
    check_begin("tokenizer_metaspace_prepend_schemes_and_added_tokens");
    static const struct { const char *scheme; uint32_t ids[4][3]; } cases[] = {
        {"first", {{5, 1, 4}, {5, 6, 99}, {1, 3, 99}, {5, 1, 6}}},
        {"always", {{5, 1, 6}, {5, 6, 99}, {1, 5, 99}, {5, 1, 6}}},
        {"never", {{3, 1, 4}, {3, 6, 99}, {1, 3, 99}, {5, 1, 6}}},
    };
    static const char *texts[4] = {"a<s>b", "a b", "<s>a", " a<s> b"};
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        char pre[256];
        snprintf(pre, sizeof pre, "{\"type\": \"Metaspace\", \"replacement\": \"" MS "\", "
                 "\"prepend_scheme\": \"%s\", \"split\": false}", cases[k].scheme);
        Tokenizer *t = bpe_json(", \"unk_token\": \"<unk>\"",
                                "\"<unk>\": 0, \"<s>\": 1, \"" MS "\": 2, \"a\": 3, \"b\": 4, \""
                                MS "a\": 5, \"" MS "b\": 6", "\"" MS " a\", \"" MS " b\"",
                                "{\"id\": 1, \"content\": \"<s>\", \"special\": true}", "null",
                                pre, "null", "null");
        for (int i = 0; i < 4; i++) {
            size_t n = 0;
            while (n < 3 && cases[k].ids[i][n] != 99) n++;
            expect_ids(t, texts[i], false, cases[k].ids[i], n, cases[k].scheme);
        }
        tokenizer_free(t);
    }
    check_end();
}

// ---- the trainer against a naive re-implementation ----------------------------

// Recounts every pair after every merge; the most frequent pair wins, ties to
// the smallest (left, right).  Returns the merges made.
static int naive_train(const WordCounts *w, int n_merges, int32_t (*merges)[2]) {
    int nw = 0;
    int32_t **sym = malloc(w->words.count * sizeof *sym);
    int *len = malloc(w->words.count * sizeof *len);
    int64_t *cnt = malloc(w->words.count * sizeof *cnt);
    for (size_t i = 0; i < w->words.cap; i++) {
        if (!w->words.hashes[i]) continue;
        size_t n;
        const unsigned char *k = (const unsigned char *)strmap_key(&w->words, i, &n);
        sym[nw] = malloc((n + 1) * sizeof **sym);
        for (size_t j = 0; j < n; j++) sym[nw][j] = k[j];
        len[nw] = (int)n;
        cnt[nw++] = w->words.values[i];
    }
    int made = 0;
    for (; made < n_merges; made++) {
        U64Map pairs;
        u64map_init(&pairs, 1 << 12);
        for (int i = 0; i < nw; i++)
            for (int j = 0; j + 1 < len[i]; j++)
                *u64map_put(&pairs, (uint64_t)sym[i][j] << 32 | (uint32_t)sym[i][j + 1], 0,
                            NULL) += cnt[i];
        uint64_t best = 0;
        int64_t best_n = 0;
        for (size_t s = 0; s < pairs.cap; s++)
            if (pairs.used[s] && (pairs.values[s] > best_n ||
                                  (pairs.values[s] == best_n && pairs.keys[s] < best)))
                best = pairs.keys[s], best_n = pairs.values[s];
        u64map_free(&pairs);
        if (best_n == 0) break;
        int32_t a = (int32_t)(best >> 32), b = (int32_t)(uint32_t)best, fresh = 256 + made;
        merges[made][0] = a, merges[made][1] = b;
        for (int i = 0; i < nw; i++) {
            int o = 0;
            for (int j = 0; j < len[i];) {
                if (j + 1 < len[i] && sym[i][j] == a && sym[i][j + 1] == b) sym[i][o++] = fresh, j += 2;
                else sym[i][o++] = sym[i][j++];
            }
            len[i] = o;
        }
    }
    for (int i = 0; i < nw; i++) free(sym[i]);
    free(sym), free(len), free(cnt);
    return made;
}

static void test_trainer(const char *corpus, size_t corpus_len) {
    check_begin("bpe_train_matches_naive_trainer");
    WordCounts w;
    word_counts_init(&w);
    word_counts_add_text(&w, corpus, corpus_len < 400000 ? corpus_len : 400000);
    enum { K = 300 };
    BpeVocab v;
    bpe_train_learn(&w, K, &v);
    int32_t (*ref)[2] = malloc(K * sizeof *ref);
    int made = naive_train(&w, K, ref);
    CHECK(v.n_merges == made, "%d merges, naive %d", v.n_merges, made);
    for (int i = 0; i < made && i < v.n_merges; i++)
        if (v.merges[i][0] != ref[i][0] || v.merges[i][1] != ref[i][1]) {
            CHECK(0, "merge %d: (%d, %d), naive (%d, %d)", i, v.merges[i][0], v.merges[i][1],
                  ref[i][0], ref[i][1]);
            break;
        }
    free(ref);
    bpe_vocab_free(&v);
    word_counts_free(&w);
    check_end();
}

// ---- word counts against the Hugging Face pre-tokenizer ----

typedef struct {
    const char *word;
    size_t len;
    int64_t count;
} WordCount;

static int word_order(const void *a, const void *b) {
    const WordCount *x = a, *y = b;
    int c = memcmp(x->word, y->word, x->len < y->len ? x->len : y->len);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

// SHA-256 (hex) of "<hex of the word> <count>\n" per distinct word, in byte
// order of the words: the golden file's digest.
static void word_counts_digest(const WordCounts *w, WordCount *list, char hex[65]) {
    size_t n = 0, text_len = 0;
    for (size_t i = 0; i < w->words.cap; i++)
        if (w->words.hashes[i]) {
            list[n].word = strmap_key(&w->words, i, &list[n].len);
            list[n].count = w->words.values[i];
            text_len += 2 * list[n].len + 24;
            n++;
        }
    qsort(list, n, sizeof *list, word_order);
    char *text = malloc(text_len + 1), *p = text;
    for (size_t i = 0; i < n; i++) {
        hex_encode((const unsigned char *)list[i].word, list[i].len, p);
        p += 2 * list[i].len;
        p += sprintf(p, " %lld\n", (long long)list[i].count);
    }
    sha256_hex(text, (size_t)(p - text), hex);
    free(text);
}

// The trainer's word counts of the corpus's first n_bytes (whole documents)
// against those of transformers' tokenizers library
// (validation/reference/make_word_counts_golden.py): the counts of words, of
// distinct words, the 50 most frequent, and a digest of all.
static void test_word_counts(const char *corpus, size_t corpus_len) {
    check_begin("word_counts_match_hf_pretokenizer");
    json_error_t jerr;
    json_t *g = json_load_file("validation/golden/word-counts.json", 0, &jerr);
    CHECK(g, "validation/golden/word-counts.json: %s", jerr.text);
    size_t n_bytes = g ? (size_t)json_integer_value(json_object_get(g, "n_bytes")) : 0;
    CHECK(n_bytes > 0 && n_bytes <= corpus_len, "n_bytes %zu of a %zu-byte corpus", n_bytes,
          corpus_len);
    if (g && n_bytes > 0 && n_bytes <= corpus_len) {
        WordCounts w;
        word_counts_init(&w);
        word_counts_add_text(&w, corpus, n_bytes);
        int64_t total = 0;
        for (size_t i = 0; i < w.words.cap; i++)
            if (w.words.hashes[i]) total += w.words.values[i];
        CHECK(total == json_integer_value(json_object_get(g, "words")), "%lld words, the "
              "reference %lld", (long long)total,
              (long long)json_integer_value(json_object_get(g, "words")));
        CHECK((json_int_t)w.words.count == json_integer_value(json_object_get(g, "distinct")),
              "%zu distinct words, the reference %lld", w.words.count,
              (long long)json_integer_value(json_object_get(g, "distinct")));
        size_t i;
        json_t *top;
        json_array_foreach(json_object_get(g, "top"), i, top) {
            const char *hex = json_string_value(json_array_get(top, 0));
            unsigned char word[256];
            size_t len = strlen(hex) / 2;
            for (size_t k = 0; k < len && k < sizeof word; k++)
                sscanf(hex + 2 * k, "%2hhx", &word[k]);
            const int64_t *got = len <= sizeof word ? strmap_get(&w.words, word, len) : NULL;
            json_int_t want = json_integer_value(json_array_get(top, 1));
            CHECK(got && *got == want, "word %s: %lld, the reference %lld", hex,
                  got ? (long long)*got : -1LL, (long long)want);
        }
        WordCount *list = malloc((w.words.count + 1) * sizeof *list);
        char digest[65];
        word_counts_digest(&w, list, digest);
        CHECK(strcmp(digest, json_string_value(json_object_get(g, "sha256"))) == 0,
              "the digest of all word counts differs from the reference's");
        free(list);
        word_counts_free(&w);
    }
    json_decref(g);
    check_end();
}

int main(void) {
    size_t corpus_len;
    char *corpus = read_corpus(&corpus_len);
    if (!corpus) {
        printf("FAIL tokenizer: cannot read the bundled corpus\n");
        return 1;
    }
    test_roundtrip(corpus, corpus_len);
    test_roundtrip_sentencepiece(corpus, corpus_len);
    test_metaspace_cuts();
    test_merge_algorithms();
    test_specials();
    test_word_without_tokens();
    test_bytes();
    test_refusals();
    test_null_decoder_and_token_text();
    test_added_token_options();
    test_split_behaviors();
    test_template_suffix_and_strip();
    test_prepend_after_empty();
    test_byte_level_unk();
    test_metaspace_schemes();
    test_word_counts(corpus, corpus_len);
    test_trainer(corpus, corpus_len);
    free(corpus);
    return check_exit_code();
}
