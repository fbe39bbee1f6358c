// What the tokenizer tests share: reading the golden id files the reference
// scripts wrote (validation/reference/make_tokenizer_golden.py's format: an
// 8-byte magic, then little-endian u32 counts and ids) and the bundled
// corpus's documents in those scripts' order.
#ifndef LLAMA_TEST_TOKEN_GOLDENS_H
#define LLAMA_TEST_TOKEN_GOLDENS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/jsonl.h"

typedef struct {
    unsigned char *data;
    size_t len, at;   // reading position: after the magic
} Golden;

// The whole file; with magic (8 characters), false unless it starts so.
static inline bool golden_read(const char *path, const char *magic, Golden *g) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    g->len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->data = malloc(g->len + 1);
    g->at = 8;
    bool ok = fread(g->data, 1, g->len, f) == g->len &&
              (!magic || (g->len >= 8 && memcmp(g->data, magic, 8) == 0));
    fclose(f);
    return ok;
}

static inline uint32_t u32(Golden *g) {
    uint32_t v = 0;
    if (g->at + 4 <= g->len) memcpy(&v, g->data + g->at, 4);
    g->at += 4;
    return v;
}

// The corpus documents in the reference scripts' order.
typedef struct {
    char **text;
    size_t *len;
    size_t n;
} Docs;

static const char *const CORPUS[] = {"inputs/redpajama-mini/c4_sample.jsonl",
                                     "inputs/redpajama-mini/github_sample.jsonl",
                                     "inputs/redpajama-mini/wikipedia_sample.jsonl"};

static inline bool docs_read(Docs *d) {
    char err[512];
    memset(d, 0, sizeof *d);
    for (int f = 0; f < 3; f++) {
        JsonlReader *r = jsonl_open(CORPUS[f], 0, -1, NULL, err, sizeof err);
        if (!r) return false;
        JsonlRecord rec;
        int s;
        while ((s = jsonl_next(r, &rec, err, sizeof err)) == 1) {
            d->text = realloc(d->text, (d->n + 1) * sizeof *d->text);
            d->len = realloc(d->len, (d->n + 1) * sizeof *d->len);
            d->text[d->n] = malloc(rec.len);
            memcpy(d->text[d->n], rec.text, rec.len);
            d->len[d->n++] = rec.len;
        }
        jsonl_close(r);
        if (s < 0) return false;
    }
    return true;
}

#endif
