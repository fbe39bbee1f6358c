#define PCRE2_CODE_UNIT_WIDTH 8
#include "tokenizer/added_tokens.h"

#include <pcre2.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

void added_tokens_init(AddedTokens *a) { memset(a, 0, sizeof *a); }

static void trie_free(AddedTrie *t) {
    if (t->terminal) u64map_free(&t->edges);
    free(t->terminal);
    memset(t, 0, sizeof *t);
}

void added_tokens_free(AddedTokens *a) {
    for (int i = 0; i < a->n; i++) free(a->tokens[i].content);
    free(a->tokens);
    trie_free(&a->trie[0]);
    trie_free(&a->trie[1]);
    if (a->md) pcre2_match_data_free(a->md);
    if (a->word_re) pcre2_code_free(a->word_re);
    if (a->space_re) pcre2_code_free(a->space_re);
    memset(a, 0, sizeof *a);
}

int added_tokens_find(const AddedTokens *a, const char *content, size_t len) {
    for (int i = 0; i < a->n; i++)
        if (a->tokens[i].len == len && memcmp(a->tokens[i].content, content, len) == 0) return i;
    return -1;
}

void added_tokens_add(AddedTokens *a, const AddedToken *t) {
    if (t->len == 0) return;  // tokenizers ignores empty tokens
    int i = added_tokens_find(a, t->content, t->len);
    if (i < 0) {
        a->tokens = xrealloc(a->tokens, (size_t)(a->n + 1) * sizeof *a->tokens);
        i = a->n++;
    } else {
        free(a->tokens[i].content);
    }
    a->tokens[i] = *t;
    a->tokens[i].content = xmalloc(t->len + 1);
    memcpy(a->tokens[i].content, t->content, t->len);
    a->tokens[i].content[t->len] = 0;
}

// ---- the matcher: a byte trie -------------------------------------------------

static void trie_insert(AddedTrie *t, const AddedToken *tok, int32_t index) {
    int32_t node = 0;
    for (size_t i = 0; i < tok->len; i++) {
        uint64_t key = (uint64_t)node << 8 | (unsigned char)tok->content[i];
        bool added;
        int64_t *child = u64map_put(&t->edges, key, t->n_nodes, &added);
        if (added) {
            t->terminal = xrealloc(t->terminal, (size_t)(t->n_nodes + 1) * sizeof *t->terminal);
            t->terminal[t->n_nodes++] = -1;
        }
        node = (int32_t)*child;
    }
    t->terminal[node] = index;
    t->first[(unsigned char)tok->content[0]] = true;
}

static pcre2_code *compile_class(const char *pattern) {
    int code;
    PCRE2_SIZE at;
    pcre2_code *re = pcre2_compile((PCRE2_SPTR)pattern, PCRE2_ZERO_TERMINATED,
                                   PCRE2_UTF | PCRE2_UCP | PCRE2_MATCH_INVALID_UTF |
                                   PCRE2_ANCHORED | PCRE2_ENDANCHORED, &code, &at, NULL);
    if (!re) fatal("internal error: cannot compile %s", pattern);
    return re;
}

void added_tokens_finish(AddedTokens *a) {
    for (int s = 0; s < 2; s++) {
        trie_free(&a->trie[s]);
        u64map_init(&a->trie[s].edges, 64);
        a->trie[s].terminal = xmalloc(sizeof *a->trie[s].terminal);
        a->trie[s].terminal[0] = -1;
        a->trie[s].n_nodes = 1;
    }
    for (int i = 0; i < a->n; i++) trie_insert(&a->trie[a->tokens[i].normalized], &a->tokens[i], i);
    if (!a->word_re) {
        a->word_re = compile_class("\\w");
        a->space_re = compile_class("\\s");
        a->md = pcre2_match_data_create(4, NULL);
    }
}

// The longest token starting at text[i]: its index (and *end), or -1.
static int longest_at(const AddedTrie *t, const char *text, size_t len, size_t i, size_t *end) {
    int32_t node = 0;
    int found = -1;
    for (size_t j = i; j < len; j++) {
        int64_t *child = u64map_get(&t->edges, (uint64_t)node << 8 | (unsigned char)text[j]);
        if (!child) break;
        node = (int32_t)*child;
        if (t->terminal[node] >= 0) {
            found = t->terminal[node];
            *end = j + 1;
        }
    }
    return found;
}

// ---- single_word / lstrip / rstrip --------------------------------------------

static size_t char_start_before(const char *text, size_t at) {
    size_t i = at - 1;
    while (i > 0 && at - i < 4 && ((unsigned char)text[i] & 0xC0) == 0x80) i--;
    return i;
}

static size_t char_end_after(const char *text, size_t len, size_t at) {
    size_t i = at + 1;
    while (i < len && i - at < 4 && ((unsigned char)text[i] & 0xC0) == 0x80) i++;
    return i;
}

static bool is_class(AddedTokens *a, void *re, const char *text, size_t from, size_t to) {
    return pcre2_match(re, (PCRE2_SPTR)text + from, to - from, 0, 0, a->md, NULL) >= 0;
}

static bool word_before(AddedTokens *a, const char *text, size_t at) {
    return at > 0 && is_class(a, a->word_re, text, char_start_before(text, at), at);
}

static bool word_after(AddedTokens *a, const char *text, size_t len, size_t at) {
    return at < len && is_class(a, a->word_re, text, at, char_end_after(text, len, at));
}

static size_t strip_left(AddedTokens *a, const char *text, size_t at, size_t floor) {
    while (at > floor) {
        size_t s = char_start_before(text, at);
        if (!is_class(a, a->space_re, text, s, at)) break;
        at = s;
    }
    return at;
}

static size_t strip_right(AddedTokens *a, const char *text, size_t len, size_t at) {
    while (at < len) {
        size_t e = char_end_after(text, len, at);
        if (!is_class(a, a->space_re, text, at, e)) break;
        at = e;
    }
    return at;
}

// ---- splitting ----------------------------------------------------------------

static void split_push(SplitList *l, size_t start, size_t end, int32_t id) {
    if (start >= end) return;
    if (l->n == l->cap) {
        l->cap = l->cap ? l->cap * 2 : 64;
        l->v = xrealloc(l->v, l->cap * sizeof *l->v);
    }
    l->v[l->n++] = (TextSplit){start, end, id};
}

// Splits text[from, to) with one trie, appending to out (offsets into text).
static void split_with(AddedTokens *a, const AddedTrie *t, const char *text, size_t from,
                       size_t to, SplitList *out) {
    size_t done = from, i = from;
    while (i < to) {
        size_t end;
        int k = t->first[(unsigned char)text[i]] ? longest_at(t, text, to, i, &end) : -1;
        if (k < 0) {
            i++;
            continue;
        }
        const AddedToken *tok = &a->tokens[k];
        size_t start = i;
        i = end;
        if (tok->single_word && (word_before(a, text + from, start - from) ||
                                 word_after(a, text + from, to - from, end - from)))
            continue;
        if (tok->lstrip) start = strip_left(a, text, start, done);
        if (tok->rstrip) i = end = strip_right(a, text, to, end);
        split_push(out, done, start, -1);
        split_push(out, start, end, tok->id);
        done = end;
    }
    split_push(out, done, to, -1);
}

void added_tokens_split_stage(AddedTokens *a, bool normalized, const char *text, size_t len,
                              SplitList *out) {
    out->n = 0;
    if (a->trie[normalized].n_nodes <= 1) split_push(out, 0, len, -1);
    else split_with(a, &a->trie[normalized], text, 0, len, out);
}

void added_tokens_split(AddedTokens *a, const char *text, size_t len, SplitList *out) {
    out->n = 0;
    if (a->n == 0) {
        split_push(out, 0, len, -1);
        return;
    }
    SplitList first = {0};
    split_with(a, &a->trie[0], text, 0, len, &first);
    for (size_t i = 0; i < first.n; i++) {
        TextSplit s = first.v[i];
        if (s.id >= 0 || a->trie[1].n_nodes == 1) split_push(out, s.start, s.end, s.id);
        else split_with(a, &a->trie[1], text, s.start, s.end, out);
    }
    free(first.v);
}
