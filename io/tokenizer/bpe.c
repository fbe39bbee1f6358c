#include "tokenizer/bpe.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tokenizer/byte_level.h"

#define NO_RANK INT32_MAX
#define SCAN_MAX_LEN 48           // shorter words use the O(n^2) scan
#define CACHE_MAX_WORD 256        // longer words are not cached
#define CACHE_MAX_ENTRIES (1 << 17)
#define METASPACE "\xE2\x96\x81"  // "▁", U+2581

void bpe_init(Bpe *b) {
    memset(b, 0, sizeof *b);
    strmap_init(&b->vocab, 1024);
    u64map_init(&b->merges, 1024);
    strmap_init(&b->cache, 1024);
    b->unk_id = -1;
    for (int i = 0; i < 256; i++) b->byte_id[i] = b->byte_token[i] = -1;
}

void bpe_free(Bpe *b) {
    strmap_free(&b->vocab);
    u64map_free(&b->merges);
    strmap_free(&b->cache);
    token_ids_free(&b->cache_ids);
    free(b->sym);
    free(b->prev);
    free(b->next);
    free(b->rank);
    free(b->heap);
    memset(b, 0, sizeof *b);
}

bool bpe_add_token(Bpe *b, const void *bytes, size_t len, int32_t id) {
    bool added;
    strmap_put(&b->vocab, bytes, len, id, &added);
    return added;
}

int32_t bpe_token_id(const Bpe *b, const void *bytes, size_t len) {
    int64_t *v = strmap_get(&b->vocab, bytes, len);
    return v ? (int32_t)*v : -1;
}

void bpe_add_merge(Bpe *b, int32_t left, int32_t right, int32_t merged, int32_t rank) {
    uint64_t key = (uint64_t)(uint32_t)left << 32 | (uint32_t)right;
    int64_t value = (int64_t)rank << 32 | (uint32_t)merged;
    *u64map_put(&b->merges, key, value, NULL) = value;
}

void bpe_finish(Bpe *b) {
    for (int i = 0; i < 256; i++) {
        unsigned char c = (unsigned char)i;
        b->byte_id[i] = bpe_token_id(b, &c, 1);
        char name[8];
        snprintf(name, sizeof name, "<0x%02X>", i);
        b->byte_token[i] = bpe_token_id(b, name, 6);
    }
}

// The merge of (left, right): its rank (NO_RANK when none) and merged id.
static inline int32_t pair_rank(const Bpe *b, int32_t left, int32_t right, int32_t *merged) {
    int64_t *v = u64map_get(&b->merges, (uint64_t)(uint32_t)left << 32 | (uint32_t)right);
    if (!v) return NO_RANK;
    *merged = (int32_t)(uint32_t)*v;
    return (int32_t)(*v >> 32);
}

static void reserve_scratch(Bpe *b, size_t n) {
    if (n <= b->scratch_cap) return;
    b->scratch_cap = n * 2;
    b->sym = xrealloc(b->sym, b->scratch_cap * sizeof *b->sym);
    b->prev = xrealloc(b->prev, b->scratch_cap * sizeof *b->prev);
    b->next = xrealloc(b->next, b->scratch_cap * sizeof *b->next);
    b->rank = xrealloc(b->rank, b->scratch_cap * sizeof *b->rank);
}

// One symbol per byte; bytes without a token become unk (fused when asked)
// or are dropped.  Returns the number of symbols in b->sym.
static size_t initial_symbols(Bpe *b, const unsigned char *w, size_t len) {
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        int32_t id = b->byte_id[w[i]];
        if (id < 0) {
            if (b->unk_id < 0) continue;
            if (b->fuse_unk && n > 0 && b->sym[n - 1] == b->unk_id) continue;
            id = b->unk_id;
        }
        b->sym[n++] = id;
    }
    return n;
}

// One symbol per UTF-8 character (an invalid byte counts as one), as
// tokenizers' BPE::merge_word: a character without a token becomes its
// bytes' <0xNN> tokens (byte_fallback, when all exist), else unk.  An unk
// waits until the next character with a token, so that fuse_unk can join
// unks in a row; byte-fallback tokens do not end the wait (as in tokenizers).
static size_t initial_chars(Bpe *b, const unsigned char *w, size_t len) {
    size_t n = 0;
    int32_t unk = -1;
    for (size_t i = 0; i < len;) {
        int c;
        utf8_decode_char(w + i, len - i, &c);
        if (c == 0) c = 1;
        int32_t id = c == 1 ? b->byte_id[w[i]] : bpe_token_id(b, w + i, (size_t)c);
        bool bytes = id < 0 && b->byte_fallback;
        for (int k = 0; bytes && k < c; k++) bytes = b->byte_token[w[i + k]] >= 0;
        if (id >= 0) {
            if (unk >= 0) b->sym[n++] = unk, unk = -1;
            b->sym[n++] = id;
        } else if (bytes) {
            for (int k = 0; k < c; k++) b->sym[n++] = b->byte_token[w[i + k]];
        } else if (b->unk_id >= 0) {
            if (unk >= 0 && !b->fuse_unk) b->sym[n++] = unk;
            unk = b->unk_id;
        }
        i += (size_t)c;
    }
    if (unk >= 0) b->sym[n++] = unk;
    return n;
}

// Short words: keep the rank of every adjacent pair, merge the lowest
// (leftmost on ties), update the two neighbouring ranks.
static size_t merge_scan(Bpe *b, size_t n) {
    int32_t *sym = b->sym, *rank = b->rank, *merged = b->next;
    for (size_t i = 0; i + 1 < n; i++) rank[i] = pair_rank(b, sym[i], sym[i + 1], &merged[i]);
    while (n > 1) {
        size_t best = 0;
        for (size_t i = 1; i + 1 < n; i++)
            if (rank[i] < rank[best]) best = i;
        if (rank[best] == NO_RANK) break;
        sym[best] = merged[best];
        memmove(sym + best + 1, sym + best + 2, (n - best - 2) * sizeof *sym);
        memmove(rank + best + 1, rank + best + 2, (n - best - 2) * sizeof *rank);
        memmove(merged + best + 1, merged + best + 2, (n - best - 2) * sizeof *merged);
        n--;
        if (best > 0) rank[best - 1] = pair_rank(b, sym[best - 1], sym[best], &merged[best - 1]);
        if (best + 1 < n) rank[best] = pair_rank(b, sym[best], sym[best + 1], &merged[best]);
    }
    return n;
}

// ---- heap version for long words ---------------------------------------------

static void heap_push(Bpe *b, size_t *hn, int64_t v) {
    if (*hn == b->heap_cap) {
        b->heap_cap = b->heap_cap ? b->heap_cap * 2 : 1024;
        b->heap = xrealloc(b->heap, b->heap_cap * sizeof *b->heap);
    }
    int64_t *h = b->heap;
    size_t i = (*hn)++;
    while (i > 0 && h[(i - 1) / 2] > v) {
        h[i] = h[(i - 1) / 2];
        i = (i - 1) / 2;
    }
    h[i] = v;
}

static int64_t heap_pop(Bpe *b, size_t *hn) {
    int64_t *h = b->heap, top = h[0], last = h[--*hn];
    size_t i = 0, n = *hn;
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= n) break;
        if (c + 1 < n && h[c + 1] < h[c]) c++;
        if (h[c] >= last) break;
        h[i] = h[c];
        i = c;
    }
    if (n > 0) h[i] = last;
    return top;
}

// Pushes the pair starting at symbol pos when it has a merge.
static void push_pair(Bpe *b, size_t *hn, int32_t pos) {
    int32_t q = b->next[pos], merged;
    if (pos < 0 || q < 0) return;
    int32_t r = pair_rank(b, b->sym[pos], b->sym[q], &merged);
    if (r != NO_RANK) heap_push(b, hn, (int64_t)r << 32 | (uint32_t)pos);
}

static size_t merge_heap(Bpe *b, size_t n) {
    int32_t *sym = b->sym, *prev = b->prev, *next = b->next;
    for (size_t i = 0; i < n; i++) {
        prev[i] = (int32_t)i - 1;
        next[i] = i + 1 < n ? (int32_t)i + 1 : -1;
    }
    size_t hn = 0;
    for (size_t i = 0; i + 1 < n; i++) push_pair(b, &hn, (int32_t)i);
    while (hn > 0) {
        int64_t top = heap_pop(b, &hn);
        int32_t pos = (int32_t)(uint32_t)top, q = next[pos], merged = -1;
        if (sym[pos] < 0 || q < 0 || pair_rank(b, sym[pos], sym[q], &merged) != (top >> 32))
            continue;  // stale: one of the two symbols has been merged since
        sym[pos] = merged;
        sym[q] = -1;
        next[pos] = next[q];
        if (next[q] >= 0) prev[next[q]] = pos;
        if (prev[pos] >= 0) push_pair(b, &hn, prev[pos]);
        push_pair(b, &hn, pos);
    }
    size_t m = 0;
    for (int32_t p = 0; p >= 0; p = next[p]) sym[m++] = sym[p];
    return m;
}

void bpe_merge_word(Bpe *b, const char *word, size_t len, bool heap, TokenIds *out) {
    reserve_scratch(b, len + 1);
    const unsigned char *w = (const unsigned char *)word;
    size_t n = b->chars ? initial_chars(b, w, len) : initial_symbols(b, w, len);
    if (n == 0) return;
    n = heap ? merge_heap(b, n) : merge_scan(b, n);
    token_ids_reserve(out, n);
    memcpy(out->ids + out->len, b->sym, n * sizeof *b->sym);
    out->len += n;
}

// Whether s[at] starts a "▁" that follows another character.
static bool metaspace_cut(const char *s, size_t at) {
    return at > 0 && memcmp(s + at, METASPACE, 3) == 0 &&
           !(at >= 3 && memcmp(s + at - 3, METASPACE, 3) == 0);
}

void bpe_allow_metaspace_cuts(Bpe *b) {
    b->cut_at_metaspace = false;  // (ignore_merges looks up whole words: no cuts)
    if (b->ignore_merges || bpe_token_id(b, METASPACE, 3) < 0) return;
    for (size_t i = 0; i < b->vocab.cap; i++) {
        size_t len;
        if (!b->vocab.hashes[i]) continue;
        const char *s = strmap_key(&b->vocab, i, &len);
        for (const char *p = s; len >= 3 && (p = memmem(p, len - (size_t)(p - s), METASPACE, 3));
             p++)
            if (metaspace_cut(s, (size_t)(p - s))) return;
    }
    b->cut_at_metaspace = true;
}

static void encode_piece(Bpe *b, const char *word, size_t len, TokenIds *out);

void bpe_encode_word(Bpe *b, const char *word, size_t len, TokenIds *out) {
    if (!b->cut_at_metaspace) {
        encode_piece(b, word, len, out);
        return;
    }
    size_t start = 0;
    for (const char *p = word; (p = memchr(p, METASPACE[0], len - (size_t)(p - word))); p++) {
        size_t at = (size_t)(p - word);
        if (at + 3 > len || !metaspace_cut(word, at)) continue;
        encode_piece(b, word + start, at - start, out);
        start = at;
    }
    encode_piece(b, word + start, len - start, out);
}

static void encode_piece(Bpe *b, const char *word, size_t len, TokenIds *out) {
    if (b->ignore_merges) {
        int32_t id = bpe_token_id(b, word, len);
        if (id >= 0) {
            token_ids_push(out, (uint32_t)id);
            return;
        }
    }
    bool cacheable = len <= CACHE_MAX_WORD;
    if (cacheable) {
        int64_t *hit = strmap_get(&b->cache, word, len);
        if (hit) {
            size_t off = (size_t)(*hit >> 16), n = (size_t)(*hit & 0xFFFF);
            if (n == 0) return;  // a word without tokens: no ids, maybe no cache_ids yet
            token_ids_reserve(out, n);
            memcpy(out->ids + out->len, b->cache_ids.ids + off, n * sizeof *out->ids);
            out->len += n;
            return;
        }
    }
    size_t start = out->len;
    bpe_merge_word(b, word, len, len > SCAN_MAX_LEN, out);
    if (!cacheable) return;
    if (b->cache.count >= CACHE_MAX_ENTRIES) {
        strmap_clear(&b->cache);
        b->cache_ids.len = 0;
    }
    size_t n = out->len - start, off = b->cache_ids.len;
    if (n > 0) {  // a word of bytes without tokens (and no unk) gives none
        token_ids_reserve(&b->cache_ids, n);
        memcpy(b->cache_ids.ids + off, out->ids + start, n * sizeof *out->ids);
        b->cache_ids.len += n;
    }
    strmap_put(&b->cache, word, len, (int64_t)off << 16 | (int64_t)n, NULL);
}
