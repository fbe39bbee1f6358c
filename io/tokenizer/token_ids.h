// A growable array of token ids, the tokenizer's output.
#ifndef LLAMA_TOKEN_IDS_H
#define LLAMA_TOKEN_IDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/util.h"

typedef struct {
    uint32_t *ids;
    size_t len, cap;
} TokenIds;

static inline void token_ids_reserve(TokenIds *t, size_t extra) {
    if (t->len + extra <= t->cap) return;
    size_t cap = t->cap ? t->cap : 256;
    while (cap < t->len + extra) cap *= 2;
    t->ids = xrealloc(t->ids, cap * sizeof *t->ids);
    t->cap = cap;
}

static inline void token_ids_push(TokenIds *t, uint32_t id) {
    if (t->len == t->cap) token_ids_reserve(t, 1);
    t->ids[t->len++] = id;
}

static inline void token_ids_free(TokenIds *t) {
    free(t->ids);
    *t = (TokenIds){0};
}

#endif
