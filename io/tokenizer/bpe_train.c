#include "tokenizer/bpe_train.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/byte_level.h"
#include "core/util.h"

// ---- word counts --------------------------------------------------------------

void word_counts_init(WordCounts *w) {
    memset(w, 0, sizeof *w);
    strmap_init(&w->words, 1 << 16);
    w->pt = pretokenizer_gpt2();
}

void word_counts_free(WordCounts *w) {
    strmap_free(&w->words);
    pretokenizer_free(w->pt);
    free(w->pieces.v);
    memset(w, 0, sizeof *w);
}

void word_counts_add_text(WordCounts *w, const char *text, size_t len) {
    pretokenizer_run(w->pt, text, len, &w->pieces);
    for (size_t i = 0; i < w->pieces.n; i++)
        (*strmap_put(&w->words, w->pieces.v[i].p, w->pieces.v[i].len, 0, NULL))++;
}

char *word_counts_pack(const WordCounts *w, size_t *len) {
    size_t n = 0;
    char *buf = xmalloc(w->words.arena_len + 12 * w->words.count + 1);
    for (size_t i = 0; i < w->words.cap; i++) {
        if (!w->words.hashes[i]) continue;
        size_t klen;
        const char *key = strmap_key(&w->words, i, &klen);
        uint32_t k32 = (uint32_t)klen;
        memcpy(buf + n, &k32, 4);
        memcpy(buf + n + 4, key, klen);
        memcpy(buf + n + 4 + klen, &w->words.values[i], 8);
        n += 12 + klen;
    }
    *len = n;
    return buf;
}

void word_counts_add_packed(WordCounts *w, const char *buf, size_t len) {
    size_t at = 0;
    while (at + 12 <= len) {
        uint32_t klen;
        int64_t count;
        memcpy(&klen, buf + at, 4);
        memcpy(&count, buf + at + 4 + klen, 8);
        *strmap_put(&w->words, buf + at + 4, klen, 0, NULL) += count;
        at += 12 + klen;
    }
}

// ---- learning -----------------------------------------------------------------

typedef struct {
    int64_t count;
    uint64_t pair;
} HeapItem;

typedef struct {
    int32_t *ids;
    int n, cap;
} IntList;

typedef struct {
    int32_t *sym;        // all words' symbols; word w is sym[off[w], off[w] + n[w])
    int64_t *off;
    int32_t *n;
    int64_t *count;
    int32_t *stamp;
    int n_words;
    U64Map pair_count;   // pair -> occurrences, weighted by word counts
    U64Map pair_list;    // pair -> index into where
    IntList *where;      // words that hold (or held) the pair
    int n_where;
    HeapItem *heap;
    size_t heap_n, heap_cap;
} Trainer;

static uint64_t pair_key(int32_t a, int32_t b) { return (uint64_t)(uint32_t)a << 32 | (uint32_t)b; }

// Max-heap order: more occurrences first, then the smaller pair.
static bool heap_before(HeapItem x, HeapItem y) {
    return x.count != y.count ? x.count > y.count : x.pair < y.pair;
}

static void heap_push(Trainer *t, int64_t count, uint64_t pair) {
    if (t->heap_n == t->heap_cap) {
        t->heap_cap = t->heap_cap ? t->heap_cap * 2 : 4096;
        t->heap = xrealloc(t->heap, t->heap_cap * sizeof *t->heap);
    }
    HeapItem v = {count, pair};
    size_t i = t->heap_n++;
    while (i > 0 && heap_before(v, t->heap[(i - 1) / 2])) {
        t->heap[i] = t->heap[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    t->heap[i] = v;
}

static HeapItem heap_pop(Trainer *t) {
    HeapItem top = t->heap[0], last = t->heap[--t->heap_n];
    size_t i = 0, n = t->heap_n;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && heap_before(t->heap[c + 1], t->heap[c])) c++;
        if (!heap_before(t->heap[c], last)) break;
        t->heap[i] = t->heap[c];
        i = c;
    }
    if (n > 0) t->heap[i] = last;
    return top;
}

static void where_add(Trainer *t, uint64_t pair, int32_t word) {
    bool added;
    int64_t *slot = u64map_put(&t->pair_list, pair, t->n_where, &added);
    if (added) {
        t->where = xrealloc(t->where, (size_t)(t->n_where + 1) * sizeof *t->where);
        t->where[t->n_where++] = (IntList){0};
    }
    IntList *l = &t->where[*slot];
    if (l->n > 0 && l->ids[l->n - 1] == word) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 4;
        l->ids = xrealloc(l->ids, (size_t)l->cap * sizeof *l->ids);
    }
    l->ids[l->n++] = word;
}

static void load_words(Trainer *t, const WordCounts *w) {
    size_t total = w->words.arena_len;
    t->sym = xmalloc((total + 1) * sizeof *t->sym);
    t->off = xmalloc((w->words.count + 1) * sizeof *t->off);
    t->n = xmalloc((w->words.count + 1) * sizeof *t->n);
    t->count = xmalloc((w->words.count + 1) * sizeof *t->count);
    t->stamp = xcalloc(w->words.count + 1, sizeof *t->stamp);
    int64_t at = 0;
    for (size_t i = 0; i < w->words.cap; i++) {
        if (!w->words.hashes[i]) continue;
        size_t len;
        const unsigned char *key = (const unsigned char *)strmap_key(&w->words, i, &len);
        int k = t->n_words++;
        t->off[k] = at;
        t->n[k] = (int32_t)len;
        t->count[k] = w->words.values[i];
        for (size_t j = 0; j < len; j++) t->sym[at++] = key[j];
    }
}

static void count_pairs(Trainer *t) {
    u64map_init(&t->pair_count, 1 << 16);
    u64map_init(&t->pair_list, 1 << 16);
    for (int w = 0; w < t->n_words; w++) {
        int32_t *s = t->sym + t->off[w];
        for (int i = 0; i + 1 < t->n[w]; i++) {
            uint64_t p = pair_key(s[i], s[i + 1]);
            *u64map_put(&t->pair_count, p, 0, NULL) += t->count[w];
            where_add(t, p, w);
        }
    }
    for (size_t i = 0; i < t->pair_count.cap; i++)
        if (t->pair_count.used[i]) heap_push(t, t->pair_count.values[i], t->pair_count.keys[i]);
}

// Adds sign * count to every pair of word w; new pairs holding `fresh` are
// recorded (where lists) and collected in touched.
static void add_word_pairs(Trainer *t, int w, int sign, int32_t fresh, U64Map *touched) {
    int32_t *s = t->sym + t->off[w];
    for (int i = 0; i + 1 < t->n[w]; i++) {
        uint64_t p = pair_key(s[i], s[i + 1]);
        *u64map_put(&t->pair_count, p, 0, NULL) += sign * t->count[w];
        if (sign > 0 && (s[i] == fresh || s[i + 1] == fresh)) {
            where_add(t, p, w);
            u64map_put(touched, p, 0, NULL);
        }
    }
}

static bool word_merge(Trainer *t, int w, int32_t a, int32_t b, int32_t fresh) {
    int32_t *s = t->sym + t->off[w];
    int n = t->n[w], out = 0;
    bool found = false;
    for (int i = 0; i < n;) {
        if (i + 1 < n && s[i] == a && s[i + 1] == b) {
            s[out++] = fresh;
            i += 2;
            found = true;
        } else {
            s[out++] = s[i++];
        }
    }
    t->n[w] = out;
    return found;
}

static bool word_has_pair(const Trainer *t, int w, int32_t a, int32_t b) {
    const int32_t *s = t->sym + t->off[w];
    for (int i = 0; i + 1 < t->n[w]; i++)
        if (s[i] == a && s[i + 1] == b) return true;
    return false;
}

// Applies merge (a, b) -> fresh to every word that holds the pair.
static void apply_merge(Trainer *t, uint64_t pair, int32_t fresh) {
    int32_t a = (int32_t)(pair >> 32), b = (int32_t)(uint32_t)pair;
    int64_t *slot = u64map_get(&t->pair_list, pair);
    IntList l = t->where[*slot];  // taken out: where_add below may move t->where
    t->where[*slot] = (IntList){0};
    U64Map touched;
    u64map_init(&touched, 64);
    for (int k = 0; k < l.n; k++) {
        int w = l.ids[k];
        if (t->stamp[w] == fresh || !word_has_pair(t, w, a, b)) continue;
        t->stamp[w] = fresh;
        add_word_pairs(t, w, -1, fresh, &touched);
        word_merge(t, w, a, b, fresh);
        add_word_pairs(t, w, +1, fresh, &touched);
    }
    free(l.ids);
    for (size_t i = 0; i < touched.cap; i++)
        if (touched.used[i]) heap_push(t, *u64map_get(&t->pair_count, touched.keys[i]),
                                       touched.keys[i]);
    u64map_free(&touched);
}

// The most frequent pair whose count is current, or false when none is left.
static bool best_pair(Trainer *t, uint64_t *pair) {
    while (t->heap_n > 0) {
        HeapItem top = heap_pop(t);
        int64_t now = *u64map_get(&t->pair_count, top.pair);
        if (now == top.count && now > 0) {
            *pair = top.pair;
            return true;
        }
        if (now > 0) heap_push(t, now, top.pair);  // stale: its count went down
    }
    return false;
}

static void trainer_free(Trainer *t) {
    for (int i = 0; i < t->n_where; i++) free(t->where[i].ids);
    free(t->where);
    u64map_free(&t->pair_count);
    u64map_free(&t->pair_list);
    free(t->heap);
    free(t->sym);
    free(t->off);
    free(t->n);
    free(t->count);
    free(t->stamp);
}

static void vocab_add(BpeVocab *v, const unsigned char *bytes, size_t len) {
    v->bytes = xrealloc(v->bytes, (size_t)(v->n_tokens + 1) * sizeof *v->bytes);
    v->len = xrealloc(v->len, (size_t)(v->n_tokens + 1) * sizeof *v->len);
    v->bytes[v->n_tokens] = xmalloc(len + 1);
    memcpy(v->bytes[v->n_tokens], bytes, len);
    v->len[v->n_tokens++] = len;
}

void bpe_train_learn(const WordCounts *w, int n_merges, BpeVocab *out) {
    memset(out, 0, sizeof *out);
    for (int b = 0; b < 256; b++) {
        unsigned char c = (unsigned char)b;
        vocab_add(out, &c, 1);
    }
    Trainer t = {0};
    load_words(&t, w);
    count_pairs(&t);
    out->merges = xmalloc((size_t)(n_merges > 0 ? n_merges : 1) * sizeof *out->merges);
    uint64_t pair;
    while (out->n_merges < n_merges && best_pair(&t, &pair)) {
        int32_t a = (int32_t)(pair >> 32), b = (int32_t)(uint32_t)pair;
        int32_t fresh = out->n_tokens;
        unsigned char *joined = xmalloc(out->len[a] + out->len[b]);
        memcpy(joined, out->bytes[a], out->len[a]);
        memcpy(joined + out->len[a], out->bytes[b], out->len[b]);
        vocab_add(out, joined, out->len[a] + out->len[b]);
        free(joined);
        out->merges[out->n_merges][0] = a;
        out->merges[out->n_merges++][1] = b;
        apply_merge(&t, pair, fresh);
    }
    trainer_free(&t);
}

void bpe_vocab_free(BpeVocab *v) {
    for (int i = 0; i < v->n_tokens; i++) free(v->bytes[i]);
    free(v->bytes);
    free(v->len);
    free(v->merges);
    memset(v, 0, sizeof *v);
}

// ---- tokenizer.json -----------------------------------------------------------

static json_t *byte_level_part(bool prefix, bool trim) {
    return json_pack("{s:s, s:b, s:b, s:b}", "type", "ByteLevel", "add_prefix_space", prefix,
                     "trim_offsets", trim, "use_regex", 1);
}

static json_t *token_string(const BpeVocab *v, int id) {
    char *s = xmalloc(2 * v->len[id] + 1);
    byte_level_encode(v->bytes[id], v->len[id], s);
    json_t *j = json_string(s);
    free(s);
    return j;
}

// The model part; special tokens get the ids after the merges (none is a
// vocabulary string: bpe_train_write checks).  Their ids go to special_ids.
static json_t *model_part(const BpeVocab *v, char **specials, int n_specials, int *special_ids) {
    json_t *vocab = json_object(), *merges = json_array();
    for (int id = 0; id < v->n_tokens; id++) {
        json_t *s = token_string(v, id);
        json_object_set_new(vocab, json_string_value(s), json_integer(id));
        json_decref(s);
    }
    int next = v->n_tokens;
    for (int i = 0; i < n_specials; i++) {
        special_ids[i] = next++;
        json_object_set_new(vocab, specials[i], json_integer(special_ids[i]));
    }
    for (int m = 0; m < v->n_merges; m++) {
        json_t *a = token_string(v, v->merges[m][0]), *b = token_string(v, v->merges[m][1]);
        json_array_append_new(merges, json_sprintf("%s %s", json_string_value(a),
                                                   json_string_value(b)));
        json_decref(a);
        json_decref(b);
    }
    return json_pack("{s:s, s:n, s:n, s:n, s:n, s:b, s:b, s:b, s:o, s:o}", "type", "BPE",
                     "dropout", "unk_token", "continuing_subword_prefix", "end_of_word_suffix",
                     "fuse_unk", 0, "byte_fallback", 0, "ignore_merges", 0, "vocab", vocab,
                     "merges", merges);
}

static json_t *tokenizer_json(const BpeVocab *v, char **specials, int n_specials) {
    int *ids = xmalloc((size_t)(n_specials + 1) * sizeof *ids);
    json_t *model = model_part(v, specials, n_specials, ids);
    json_t *added = json_array();
    for (int i = 0; i < n_specials; i++)
        json_array_append_new(added, json_pack("{s:i, s:s, s:b, s:b, s:b, s:b, s:b}", "id",
                                               ids[i], "content", specials[i], "single_word", 0,
                                               "lstrip", 0, "rstrip", 0, "normalized", 0,
                                               "special", 1));
    free(ids);
    return json_pack("{s:s, s:n, s:n, s:o, s:n, s:o, s:o, s:o, s:o}", "version", "1.0",
                     "truncation", "padding", "added_tokens", added, "normalizer",
                     "pre_tokenizer", byte_level_part(false, true), "post_processor",
                     byte_level_part(true, false), "decoder", byte_level_part(true, true),
                     "model", model);
}

int bpe_train_vocab_id(const BpeVocab *v, const char *text) {
    int found = -1;
    for (int id = 0; id < v->n_tokens && found < 0; id++) {
        json_t *s = token_string(v, id);
        if (strcmp(json_string_value(s), text) == 0) found = id;
        json_decref(s);
    }
    return found;
}

int bpe_train_byte_symbol(const char *text) {
    for (int b = 0; b < 256; b++) {
        unsigned char byte = (unsigned char)b;
        char s[8];
        s[byte_level_encode(&byte, 1, s)] = 0;
        if (strcmp(s, text) == 0) return b;
    }
    return -1;
}

bool bpe_train_write(const BpeVocab *v, char **specials, int n_specials, const char *path,
                     char *err, int err_len) {
    for (int i = 0; i < n_specials; i++) {
        json_t *s = json_string(specials[i]);
        if (!s || !*specials[i]) {
            snprintf(err, err_len, "special token \"%s\" is empty or not UTF-8", specials[i]);
            return false;
        }
        json_decref(s);
        int id = bpe_train_vocab_id(v, specials[i]);
        if (id >= 0) {   // the text's own token would be taken over by the special one
            snprintf(err, err_len, "special token \"%s\" is also the string of a learned token "
                     "(id %d): text holding it would encode differently; choose a special string "
                     "that is not (e.g. <|%s|>)", specials[i], id, specials[i]);
            return false;
        }
    }
    json_t *root = tokenizer_json(v, specials, n_specials);
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    bool ok = root && json_dump_file(root, tmp, JSON_INDENT(2)) == 0;
    if (root) json_decref(root);
    if (ok && rename(tmp, path) != 0) ok = false;
    if (!ok) {
        snprintf(err, err_len, "cannot write tokenizer '%s': %s (is the folder there and "
                 "writable?)", path, strerror(errno));
        remove(tmp);
    }
    return ok;
}
