#include "tokenizer/tokenizer.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/added_tokens.h"
#include "tokenizer/bpe.h"
#include "tokenizer/byte_level.h"
#include "tokenizer/decoder.h"
#include "tokenizer/normalizer.h"
#include "tokenizer/pretokenizer.h"
#include "tokenizer/sentencepiece_model.h"
#include "core/file_kind.h"
#include "core/util.h"

struct Tokenizer {
    char name[1024];
    char sha256[65];
    bool bytes;               // the raw byte tokenizer
    SpmModel *spm;            // a SentencePiece tokenizer.model (the library does the rest)
    bool byte_level;          // byte-level BPE (a ByteLevel pre-tokenizer), else
                              // SentencePiece-style: tokens are UTF-8 text
    Bpe bpe;
    StrMap vocab_text;        // token text as in the file -> id
    Normalizer *norm;
    PreTokenizer *pt;
    Decoder *decoder;         // SentencePiece-style only (byte-level: by table)
    AddedTokens added;
    TokenIds prefix, suffix;  // what the post-processor puts around a text
    int64_t vocab_size, bos, eos;
    char *dec;                // bytes of every id: dec[dec_off[i], dec_off[i + 1])
    size_t *dec_off;
    SplitList splits, norm_splits;
    PieceList pieces;
};

// ---- helpers ------------------------------------------------------------------

static char *read_whole(const char *path, size_t *len, char *err, int err_len) {
    const char *kind = file_kind_irregular(path);
    if (kind) {
        snprintf(err, err_len, "tokenizer file '%s' is %s, not a file (give a tokenizer.json, "
                 "or 'bytes')", path, kind);
        return NULL;
    }
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, err_len, "cannot open tokenizer file '%s': %s (give a tokenizer.json, or "
                 "'bytes')", path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20, n = 0, got;
    char *buf = xmalloc(cap);
    while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
        n += got;
        if (n == cap) buf = xrealloc(buf, cap *= 2);
    }
    bool bad = ferror(f);
    fclose(f);
    if (bad) {
        snprintf(err, err_len, "error reading tokenizer file '%s': %s", path, strerror(errno));
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}

static bool fail(char *err, int err_len, const char *path, const char *why) {
    snprintf(err, err_len, "%s: %s", path, why);
    return false;
}

static int64_t max_i64(int64_t a, int64_t b) { return a > b ? a : b; }

// ---- the model ----------------------------------------------------------------

static bool check_model_options(const json_t *m, char *why, int why_len) {
    const char *type = json_string_value(json_object_get(m, "type"));
    if (type && strcmp(type, "BPE") != 0) {
        snprintf(why, why_len, "model type \"%s\" is not supported: llama-tokenize reads "
                 "BPE tokenizers (byte-level: GPT-2, LLaMA-3; SentencePiece-style: LLaMA-1/2) "
                 "only", type);
        return false;
    }
    if (!json_is_object(json_object_get(m, "vocab")) ||
        !json_is_array(json_object_get(m, "merges"))) {
        snprintf(why, why_len, "the model has no BPE \"vocab\" object and \"merges\" list");
        return false;
    }
    json_t *dropout = json_object_get(m, "dropout");
    const char *cont = json_string_value(json_object_get(m, "continuing_subword_prefix"));
    const char *suffix = json_string_value(json_object_get(m, "end_of_word_suffix"));
    if (dropout && !json_is_null(dropout) && json_number_value(dropout) != 0.0)
        snprintf(why, why_len, "BPE dropout is not supported (it makes encoding random)");
    else if ((cont && *cont) || (suffix && *suffix))
        snprintf(why, why_len, "BPE continuing_subword_prefix / end_of_word_suffix are not "
                 "supported (neither byte-level nor SentencePiece-style BPE)");
    else
        return true;
    return false;
}

static bool load_vocab(Tokenizer *t, const json_t *vocab, char *why, int why_len) {
    const char *text;
    json_t *v;
    size_t n = json_object_size(vocab);
    unsigned char *bytes = xmalloc(1024);
    size_t cap = 1024;
    strmap_init(&t->vocab_text, n);
    json_object_foreach((json_t *)vocab, text, v) {
        json_int_t id = json_integer_value(v);
        if (!json_is_integer(v) || id < 0 || id >= INT32_MAX) {
            snprintf(why, why_len, "vocab entry \"%.80s\" has no valid id", text);
            free(bytes);
            return false;
        }
        size_t len = strlen(text), blen;
        if (len > cap) bytes = xrealloc(bytes, cap = len);
        strmap_put(&t->vocab_text, text, len, id, NULL);
        if (!t->byte_level) bpe_add_token(&t->bpe, text, len, (int32_t)id);
        else if (byte_level_decode(text, len, bytes, &blen))
            bpe_add_token(&t->bpe, bytes, blen, (int32_t)id);
        t->vocab_size = max_i64(t->vocab_size, id + 1);
    }
    free(bytes);
    return true;
}

static int32_t vocab_id(const Tokenizer *t, const char *text, size_t len) {
    int64_t *v = strmap_get(&t->vocab_text, text, len);
    return v ? (int32_t)*v : -1;
}

// Splits merge i ("a b" or ["a", "b"]) into its two token texts.
static bool merge_parts(const json_t *m, const char **a, size_t *alen, const char **b,
                        size_t *blen) {
    if (json_is_string(m)) {
        const char *s = json_string_value(m), *sp = strchr(s, ' ');
        if (!sp || strchr(sp + 1, ' ')) return false;
        *a = s, *alen = (size_t)(sp - s), *b = sp + 1, *blen = strlen(sp + 1);
        return true;
    }
    if (!json_is_array(m) || json_array_size(m) != 2 ||
        !json_is_string(json_array_get(m, 0)) || !json_is_string(json_array_get(m, 1)))
        return false;
    *a = json_string_value(json_array_get(m, 0)), *alen = strlen(*a);
    *b = json_string_value(json_array_get(m, 1)), *blen = strlen(*b);
    return true;
}

static bool load_merges(Tokenizer *t, const json_t *merges, char *why, int why_len) {
    size_t i;
    json_t *m;
    char *joined = NULL;
    size_t cap = 0;
    json_array_foreach(merges, i, m) {
        const char *a, *b;
        size_t alen, blen;
        if (!merge_parts(m, &a, &alen, &b, &blen)) {
            snprintf(why, why_len, "merge %zu is neither \"a b\" nor [\"a\", \"b\"]", i);
            free(joined);
            return false;
        }
        if (alen + blen + 1 > cap) joined = xrealloc(joined, cap = 2 * (alen + blen + 1));
        memcpy(joined, a, alen);
        memcpy(joined + alen, b, blen);
        int32_t ia = vocab_id(t, a, alen), ib = vocab_id(t, b, blen);
        int32_t im = vocab_id(t, joined, alen + blen);
        if (ia < 0 || ib < 0 || im < 0) {
            snprintf(why, why_len, "merge %zu (\"%.*s\" \"%.*s\") uses or makes a token that is "
                     "not in the vocab", i, (int)alen, a, (int)blen, b);
            free(joined);
            return false;
        }
        bpe_add_merge(&t->bpe, ia, ib, im, (int32_t)i);
    }
    free(joined);
    return true;
}

static bool load_model(Tokenizer *t, const json_t *root, char *why, int why_len) {
    json_t *m = json_object_get(root, "model");
    if (!json_is_object(m)) {
        snprintf(why, why_len, "no \"model\" object: not a tokenizer.json");
        return false;
    }
    if (!check_model_options(m, why, why_len) ||
        !load_vocab(t, json_object_get(m, "vocab"), why, why_len) ||
        !load_merges(t, json_object_get(m, "merges"), why, why_len))
        return false;
    t->bpe.ignore_merges = json_is_true(json_object_get(m, "ignore_merges"));
    t->bpe.fuse_unk = json_is_true(json_object_get(m, "fuse_unk"));
    t->bpe.chars = !t->byte_level;
    t->bpe.byte_fallback = json_is_true(json_object_get(m, "byte_fallback"));
    if (t->bpe.chars) bpe_allow_metaspace_cuts(&t->bpe);
    const char *unk = json_string_value(json_object_get(m, "unk_token"));
    if (unk) t->bpe.unk_id = vocab_id(t, unk, strlen(unk));
    bpe_finish(&t->bpe);
    return true;
}

// ---- added tokens, pipeline parts ---------------------------------------------

static bool load_added_tokens(Tokenizer *t, const json_t *list, char *why, int why_len) {
    size_t i;
    json_t *o;
    added_tokens_init(&t->added);
    if (list && !json_is_null(list) && !json_is_array(list)) {
        snprintf(why, why_len, "\"added_tokens\" is not a list");
        return false;
    }
    json_array_foreach(list, i, o) {
        json_t *id = json_object_get(o, "id"), *content = json_object_get(o, "content");
        if (!json_is_integer(id) || json_integer_value(id) < 0 ||
            json_integer_value(id) >= INT32_MAX || !json_is_string(content)) {
            snprintf(why, why_len, "added token %zu has no id or content", i);
            return false;
        }
        int32_t in_vocab = vocab_id(t, json_string_value(content), json_string_length(content));
        if (in_vocab >= 0 && in_vocab != json_integer_value(id)) {
            // Hugging Face keeps the vocabulary's id and warns; the shards would follow
            // one and the model's embedding rows the other.  A file to fix.
            snprintf(why, why_len, "added token %zu \"%s\" has id %lld, but the vocabulary gives "
                     "that text id %d: one of the two ids is wrong; fix the file", i,
                     json_string_value(content), (long long)json_integer_value(id), in_vocab);
            return false;
        }
        AddedToken a = {(char *)json_string_value(content), json_string_length(content),
                        (int32_t)json_integer_value(id),
                        json_is_true(json_object_get(o, "single_word")),
                        json_is_true(json_object_get(o, "lstrip")),
                        json_is_true(json_object_get(o, "rstrip")),
                        json_is_true(json_object_get(o, "normalized")),
                        json_is_true(json_object_get(o, "special"))};
        added_tokens_add(&t->added, &a);
        t->vocab_size = max_i64(t->vocab_size, a.id + 1);
    }
    added_tokens_finish(&t->added);
    return true;
}

// Ids of real tokenizers run from 0 with few holes; one far beyond the number
// of tokens (a typo, or 10^9) would size the decode table, the shards'
// vocab_size and every model's embedding by it.  So at most MAX_UNUSED_IDS
// ids below the largest may lack a token.
enum { MAX_UNUSED_IDS = 1 << 17 };

static bool check_id_range(const Tokenizer *t, size_t vocab_entries, char *why, int why_len) {
    size_t tokens = vocab_entries + (size_t)t->added.n;
    if (tokens == 0) {
        snprintf(why, why_len, "the vocab and added_tokens are empty");
        return false;
    }
    if (t->vocab_size <= (int64_t)tokens + MAX_UNUSED_IDS) return true;
    snprintf(why, why_len, "token id %lld is out of range: the vocab and added_tokens hold %zu "
             "tokens, so ids must be below %zu (at most %d ids without a token); fix that id "
             "in the file", (long long)(t->vocab_size - 1), tokens, tokens + MAX_UNUSED_IDS,
             MAX_UNUSED_IDS);
    return false;
}

static bool load_normalizer(Tokenizer *t, const json_t *n, char *why, int why_len) {
    t->norm = normalizer_from_json(n, why, why_len);
    return t->norm != NULL;
}

static bool check_decoder(const json_t *d, char *why, int why_len) {
    if (!d || json_is_null(d)) return true;
    const char *type = json_string_value(json_object_get(d, "type"));
    if (type && strcmp(type, "ByteLevel") == 0) return true;
    if (type && strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(d, "decoders"), i, item)
            if (!check_decoder(item, why, why_len)) return false;
        return true;
    }
    snprintf(why, why_len, "decoder \"%s\" is not supported (only ByteLevel)",
             type ? type : "(no type)");
    return false;
}

// TemplateProcessing's "single" template: special tokens before and after $A.
static bool parse_template(Tokenizer *t, const json_t *p, char *why, int why_len) {
    json_t *single = json_object_get(p, "single"), *specials = json_object_get(p, "special_tokens");
    size_t i, j;
    json_t *item, *id;
    bool after = false;
    json_array_foreach(single, i, item) {
        json_t *seq = json_object_get(item, "Sequence"), *sp = json_object_get(item, "SpecialToken");
        if (seq) {
            const char *which = json_string_value(json_object_get(seq, "id"));
            if (!which || strcmp(which, "A") != 0 || after) {
                snprintf(why, why_len, "TemplateProcessing \"single\" template must hold $A once");
                return false;
            }
            after = true;
            continue;
        }
        const char *name = json_string_value(json_object_get(sp, "id"));
        json_t *ids = json_object_get(json_object_get(specials, name ? name : ""), "ids");
        if (!name || !json_is_array(ids)) {
            snprintf(why, why_len, "TemplateProcessing names special token \"%s\" without ids",
                     name ? name : "?");
            return false;
        }
        json_array_foreach(ids, j, id) {
            json_int_t v = json_integer_value(id);
            if (!json_is_integer(id) || v < 0 || v >= t->vocab_size) {
                snprintf(why, why_len, "TemplateProcessing special token \"%.80s\" has an id "
                         "outside the vocabulary (0 to %lld)", name, (long long)t->vocab_size - 1);
                return false;
            }
            token_ids_push(after ? &t->suffix : &t->prefix, (uint32_t)v);
        }
    }
    return true;
}

static bool parse_post_processor(Tokenizer *t, const json_t *p, char *why, int why_len) {
    if (!p || json_is_null(p)) return true;
    const char *type = json_string_value(json_object_get(p, "type"));
    if (type && strcmp(type, "ByteLevel") == 0) return true;
    if (type && strcmp(type, "TemplateProcessing") == 0) return parse_template(t, p, why, why_len);
    if (type && strcmp(type, "Sequence") == 0) {
        size_t i;
        json_t *item;
        json_array_foreach(json_object_get(p, "processors"), i, item)
            if (!parse_post_processor(t, item, why, why_len)) return false;
        return true;
    }
    snprintf(why, why_len, "post-processor \"%s\" is not supported (only ByteLevel, "
             "TemplateProcessing, Sequence)", type ? type : "(no type)");
    return false;
}

// Byte-level BPE has a ByteLevel pre-tokenizer (alone or in a Sequence).
static bool has_byte_level(const json_t *pt) {
    const char *type = json_string_value(json_object_get(pt, "type"));
    size_t i;
    json_t *item;
    if (type && strcmp(type, "ByteLevel") == 0) return true;
    json_array_foreach(json_object_get(pt, "pretokenizers"), i, item)
        if (has_byte_level(item)) return true;
    return false;
}

static bool load_pre_tokenizer(Tokenizer *t, const json_t *root, char *why, int why_len) {
    t->pt = pretokenizer_from_json(json_object_get(root, "pre_tokenizer"), why, why_len);
    return t->pt != NULL;
}

// Byte-level tokenizers decode by table (ByteLevel or no decoder); the
// others run their decoder chain.
static bool load_decoder(Tokenizer *t, const json_t *d, char *why, int why_len) {
    if (t->byte_level) return check_decoder(d, why, why_len);
    t->decoder = decoder_from_json(d, why, why_len);
    return t->decoder != NULL;
}

// ---- ids <-> text -------------------------------------------------------------

static void build_decode_table(Tokenizer *t) {
    size_t n = (size_t)t->vocab_size, used = 0, cap = 16 * n + 1024;
    t->dec = xmalloc(cap);
    t->dec_off = xcalloc(n + 1, sizeof *t->dec_off);
    const char **text = xcalloc(n, sizeof *text);
    size_t *tlen = xcalloc(n, sizeof *tlen);
    for (size_t i = 0; i < t->vocab_text.cap; i++) {
        if (!t->vocab_text.hashes[i]) continue;
        int64_t id = t->vocab_text.values[i];
        text[id] = strmap_key(&t->vocab_text, i, &tlen[id]);
    }
    for (int i = 0; i < t->added.n; i++) {  // added tokens take precedence, as in tokenizers
        text[t->added.tokens[i].id] = t->added.tokens[i].content;
        tlen[t->added.tokens[i].id] = t->added.tokens[i].len;
    }
    for (size_t id = 0; id < n; id++) {
        const char *s = text[id];
        size_t len = tlen[id];
        if (used + len + 1 > cap) t->dec = xrealloc(t->dec, cap = 2 * (used + len + 1));
        size_t blen = 0;
        if (s && (!t->byte_level ||
                  !byte_level_decode(s, len, (unsigned char *)t->dec + used, &blen))) {
            memcpy(t->dec + used, s, len);  // not byte-level text: its UTF-8, as tokenizers
            blen = len;
        }
        used += blen;
        t->dec_off[id + 1] = used;
    }
    free(text);
    free(tlen);
}

static void detect_eos(Tokenizer *t) {
    const char *names[] = {"<|endoftext|>", "<|end_of_text|>", "</s>", "<eos>", "<|eos|>",
                           "[EOS]", "<|end|>", "<|im_end|>"};
    t->eos = -1;
    for (int k = 0; k < 8 && t->eos < 0; k++) {
        int i = added_tokens_find(&t->added, names[k], strlen(names[k]));
        if (i >= 0 && t->added.tokens[i].special) t->eos = t->added.tokens[i].id;
    }
    t->bos = t->prefix.len > 0 ? (int64_t)t->prefix.ids[0] : -1;
}

// ---- loading ------------------------------------------------------------------

static Tokenizer *load_bytes(void) {
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->bytes = true;
    snprintf(t->name, sizeof t->name, "bytes");
    sha256_hex("bytes", 5, t->sha256);
    t->vocab_size = 256;
    t->bos = t->eos = -1;
    t->dec = xmalloc(256);
    t->dec_off = xmalloc(257 * sizeof *t->dec_off);
    for (int i = 0; i < 256; i++) t->dec[i] = (char)i, t->dec_off[i] = (size_t)i;
    t->dec_off[256] = 256;
    return t;
}

static bool load_parts(Tokenizer *t, const json_t *root, char *why, int why_len) {
    if (!json_is_object(root)) {
        snprintf(why, why_len, "not a JSON object: not a tokenizer.json");
        return false;
    }
    bpe_init(&t->bpe);
    json_t *vocab = json_object_get(json_object_get(root, "model"), "vocab");
    t->byte_level = has_byte_level(json_object_get(root, "pre_tokenizer"));
    return load_model(t, root, why, why_len) &&
           load_added_tokens(t, json_object_get(root, "added_tokens"), why, why_len) &&
           check_id_range(t, json_object_size(vocab), why, why_len) &&
           load_normalizer(t, json_object_get(root, "normalizer"), why, why_len) &&
           load_pre_tokenizer(t, root, why, why_len) &&
           parse_post_processor(t, json_object_get(root, "post_processor"), why, why_len) &&
           load_decoder(t, json_object_get(root, "decoder"), why, why_len);
}

// ---- SentencePiece tokenizer.model files (sentencepiece_model.h) ----------------

// Not a tokenizer.json (those start with '{'), and a protobuf's first byte or
// the name of one.
static bool is_sentencepiece(const char *spec, const char *data, size_t len) {
    size_t i = 0, n = strlen(spec);
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\n' || data[i] == '\r'))
        i++;
    if (i < len && data[i] == '{') return false;
    return spm_looks_like_model(data, len) || (n >= 6 && strcmp(spec + n - 6, ".model") == 0);
}

// The library encodes and decodes; a text's prefix is the model's BOS.
static Tokenizer *load_sentencepiece(const char *spec, const char *data, size_t len, char *err,
                                     int err_len) {
    SpmModel *m = spm_load(data, len, spec, err, err_len);
    if (!m) return NULL;
    Tokenizer *t = xcalloc(1, sizeof *t);
    t->spm = m;
    snprintf(t->name, sizeof t->name, "%s", spec);
    sha256_hex(data, len, t->sha256);
    t->vocab_size = spm_vocab_size(m);
    t->bos = spm_bos_id(m);
    t->eos = spm_eos_id(m);
    if (t->bos >= 0) token_ids_push(&t->prefix, (uint32_t)t->bos);
    return t;
}

static void encode_sentencepiece(Tokenizer *t, const char *text, size_t len, TokenIds *out) {
    char err[1024];
    size_t n;
    const int *ids = spm_encode(t->spm, text, len, &n, err, sizeof err);
    if (!ids) fatal("%s", err);
    token_ids_reserve(out, n);
    for (size_t i = 0; i < n; i++) out->ids[out->len++] = (uint32_t)ids[i];
}

static char *decode_sentencepiece(const Tokenizer *t, const uint32_t *ids, size_t n, size_t *len) {
    char err[1024];
    char *text = spm_decode(t->spm, ids, n, len, err, sizeof err);
    if (!text) fatal("%s", err);
    return text;
}

Tokenizer *tokenizer_load(const char *spec, char *err, int err_len) {
    if (strcmp(spec, "bytes") == 0) return load_bytes();
    size_t len;
    char *data = read_whole(spec, &len, err, err_len);
    if (!data) return NULL;
    if (is_sentencepiece(spec, data, len)) {
        Tokenizer *t = load_sentencepiece(spec, data, len, err, err_len);
        free(data);
        return t;
    }
    Tokenizer *t = xcalloc(1, sizeof *t);
    snprintf(t->name, sizeof t->name, "%s", spec);
    sha256_hex(data, len, t->sha256);
    json_error_t je;
    json_t *root = json_loadb(data, len, 0, &je);
    free(data);
    char why[512];
    bool ok = root != NULL;
    if (!ok)
        snprintf(why, sizeof why, "not valid JSON at line %d, column %d (%s)", je.line,
                 je.column, je.text);
    else
        ok = load_parts(t, root, why, sizeof why);
    if (root) json_decref(root);
    if (!ok) {
        fail(err, err_len, spec, why);
        tokenizer_free(t);
        return NULL;
    }
    detect_eos(t);
    build_decode_table(t);
    return t;
}

void tokenizer_free(Tokenizer *t) {
    if (!t) return;
    if (t->spm) {
        spm_free(t->spm);
        token_ids_free(&t->prefix);
        free(t);
        return;
    }
    if (!t->bytes) {
        bpe_free(&t->bpe);
        if (t->vocab_text.hashes) strmap_free(&t->vocab_text);
        added_tokens_free(&t->added);
        normalizer_free(t->norm);
        pretokenizer_free(t->pt);
        decoder_free(t->decoder);
    }
    token_ids_free(&t->prefix);
    token_ids_free(&t->suffix);
    free(t->dec);
    free(t->dec_off);
    free(t->splits.v);
    free(t->norm_splits.v);
    free(t->pieces.v);
    free(t);
}

// ---- queries ------------------------------------------------------------------

int64_t tokenizer_vocab_size(const Tokenizer *t) { return t->vocab_size; }
int64_t tokenizer_bos_id(const Tokenizer *t) { return t->bos; }
int64_t tokenizer_eos_id(const Tokenizer *t) { return t->eos; }
const char *tokenizer_sha256(const Tokenizer *t) { return t->sha256; }
const char *tokenizer_name(const Tokenizer *t) { return t->name; }

int64_t tokenizer_token_id(const Tokenizer *t, const char *token) {
    if (t->spm) return spm_piece_id(t->spm, token, strlen(token));
    if (t->bytes) return -1;
    int i = added_tokens_find(&t->added, token, strlen(token));
    if (i >= 0) return t->added.tokens[i].id;
    return vocab_id(t, token, strlen(token));
}

// The vocabulary text of id (a slot search: for the few special ids of an export).
static char *vocab_text_of(const Tokenizer *t, int64_t id) {
    for (size_t i = 0; i < t->vocab_text.cap; i++) {
        if (!t->vocab_text.hashes[i] || t->vocab_text.values[i] != id) continue;
        size_t len;
        const char *key = strmap_key(&t->vocab_text, i, &len);
        char *out = xmalloc(len + 1);
        memcpy(out, key, len);
        out[len] = 0;
        return out;
    }
    return NULL;
}

char *tokenizer_token_text(const Tokenizer *t, int64_t id) {
    if (id < 0 || id >= t->vocab_size || t->bytes) return NULL;
    if (t->spm) {
        const char *piece = spm_piece(t->spm, (int)id);
        return piece ? xstrdup(piece) : NULL;
    }
    for (int i = 0; i < t->added.n; i++)
        if (t->added.tokens[i].id == id) {
            const AddedToken *a = &t->added.tokens[i];
            char *out = xmalloc(a->len + 1);
            memcpy(out, a->content, a->len);
            out[a->len] = 0;
            return out;
        }
    return vocab_text_of(t, id);
}

bool tokenizer_set_eos(Tokenizer *t, const char *token, char *err, int err_len) {
    int64_t id = tokenizer_token_id(t, token);
    if (id < 0) {
        snprintf(err, err_len, "--eos %s: no such token in %s", token, t->name);
        return false;
    }
    t->eos = id;
    return true;
}

bool tokenizer_is_special(const Tokenizer *t, const char *token) {
    int i = added_tokens_find(&t->added, token, strlen(token));
    return i >= 0 && t->added.tokens[i].special;
}

// ---- encode / decode ----------------------------------------------------------

// Text between the added tokens with normalized=false, as tokenizers: it is
// normalized, split by the added tokens with normalized=true, pre-tokenized
// (text_start: it begins the text) and each piece run through BPE.
static void encode_between(Tokenizer *t, const char *text, size_t len, bool text_start,
                           TokenIds *out) {
    size_t n;
    const char *norm = normalizer_run(t->norm, text, len, &n);
    added_tokens_split_stage(&t->added, true, norm, n, &t->norm_splits);
    for (size_t i = 0; i < t->norm_splits.n; i++) {
        TextSplit s = t->norm_splits.v[i];
        if (s.id >= 0) {
            token_ids_push(out, (uint32_t)s.id);
            continue;
        }
        pretokenizer_run_from(t->pt, norm + s.start, s.end - s.start, text_start && s.start == 0,
                              &t->pieces);
        for (size_t j = 0; j < t->pieces.n; j++)
            bpe_encode_word(&t->bpe, t->pieces.v[j].p, t->pieces.v[j].len, out);
    }
}

static void encode_plain(Tokenizer *t, const char *text, size_t len, TokenIds *out) {
    if (t->spm) {
        encode_sentencepiece(t, text, len, out);
        return;
    }
    if (t->bytes) {
        token_ids_reserve(out, len);
        for (size_t i = 0; i < len; i++) out->ids[out->len++] = (unsigned char)text[i];
        return;
    }
    added_tokens_split_stage(&t->added, false, text, len, &t->splits);
    for (size_t i = 0; i < t->splits.n; i++) {
        TextSplit s = t->splits.v[i];
        if (s.id >= 0) token_ids_push(out, (uint32_t)s.id);
        else encode_between(t, text + s.start, s.end - s.start, s.start == 0, out);
    }
}

void tokenizer_encode(Tokenizer *t, const char *text, size_t len, bool add_special,
                      TokenIds *out) {
    if (add_special)
        for (size_t i = 0; i < t->prefix.len; i++) token_ids_push(out, t->prefix.ids[i]);
    encode_plain(t, text, len, out);
    if (add_special)
        for (size_t i = 0; i < t->suffix.len; i++) token_ids_push(out, t->suffix.ids[i]);
}

void tokenizer_encode_document(Tokenizer *t, const char *text, size_t len, TokenIds *out) {
    tokenizer_encode(t, text, len, true, out);
    bool ended = t->suffix.len > 0 && (int64_t)t->suffix.ids[t->suffix.len - 1] == t->eos;
    if (t->eos >= 0 && !ended) token_ids_push(out, (uint32_t)t->eos);
}

char *tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, size_t *len) {
    if (t->spm) return decode_sentencepiece(t, ids, n, len);
    if (t->decoder)
        return decoder_run(t->decoder, t->dec, t->dec_off, (size_t)t->vocab_size, ids, n, len);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        if (ids[i] < (uint64_t)t->vocab_size) total += t->dec_off[ids[i] + 1] - t->dec_off[ids[i]];
    char *out = xmalloc(total + 1);
    size_t at = 0;
    for (size_t i = 0; i < n; i++) {
        if (ids[i] >= (uint64_t)t->vocab_size) continue;
        size_t s = t->dec_off[ids[i]], e = t->dec_off[ids[i] + 1];
        memcpy(out + at, t->dec + s, e - s);
        at += e - s;
    }
    out[at] = 0;
    *len = at;
    return out;
}
