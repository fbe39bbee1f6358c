// Tokenizer parity: ids equal to the Hugging Face `tokenizers` library's on
// every document of the bundled corpus and on seeded fuzz strings, for the
// bundled tokenizer (trained by llama-tokenize train), a GPT-2-style and a
// LLaMA-3-style tokenizer trained by `tokenizers`.  The reference ids were
// written by validation/reference/make_tokenizer_golden.py.
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "text/jsonl.h"
#include "tokenizer/tokenizer.h"

typedef struct {
    unsigned char *data;
    size_t len, at;
} Golden;

static bool golden_read(const char *path, Golden *g) {
    FILE *f = fopen(path, "rb");
    if (!f) return false;
    fseek(f, 0, SEEK_END);
    g->len = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    g->data = malloc(g->len);
    g->at = 8;
    bool ok = fread(g->data, 1, g->len, f) == g->len && memcmp(g->data, "LLTKGLD1", 8) == 0;
    fclose(f);
    return ok;
}

static uint32_t u32(Golden *g) {
    uint32_t v = 0;
    if (g->at + 4 <= g->len) memcpy(&v, g->data + g->at, 4);
    g->at += 4;
    return v;
}

static void ids_hash(const uint32_t *ids, size_t n, unsigned char out[8]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len;
    EVP_Digest(ids, n * 4, md, &len, EVP_sha256(), NULL);  // little-endian host
    memcpy(out, md, 8);
}

// The corpus documents in the reference script's order.
typedef struct {
    char **text;
    size_t *len;
    size_t n;
} Docs;

static const char *CORPUS[] = {"inputs/redpajama-mini/c4_sample.jsonl",
                               "inputs/redpajama-mini/github_sample.jsonl",
                               "inputs/redpajama-mini/wikipedia_sample.jsonl"};

static bool docs_read(Docs *d) {
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

static void first_difference(const uint32_t *a, size_t na, Golden *g, uint32_t doc) {
    size_t save = g->at;
    uint32_t n_full = u32(g);
    for (uint32_t k = 0; k < n_full; k++) {
        uint32_t idx = u32(g), n = u32(g);
        const unsigned char *ids = g->data + g->at;
        g->at += 4 * (size_t)n;
        if (idx != doc) continue;
        for (uint32_t i = 0; i < n && i < na; i++) {
            uint32_t want;
            memcpy(&want, ids + 4 * (size_t)i, 4);
            if (want != a[i]) {
                printf("  document %u: first difference at id %u: %u, reference %u\n", doc, i,
                       a[i], want);
                break;
            }
        }
    }
    g->at = save;
}

static void check_corpus(Tokenizer *t, Golden *g, const Docs *d, const char *name) {
    char label[128];
    snprintf(label, sizeof label, "tokenizer_parity_%s_corpus", name);
    check_begin(label);
    uint32_t n = u32(g);
    CHECK(n == d->n, "reference has %u documents, the corpus %zu", n, d->n);
    TokenIds ids = {0};
    int bad = 0;
    size_t full_at = g->at + 12 * (size_t)n;
    for (uint32_t i = 0; i < n && i < d->n; i++) {
        uint32_t want_n = u32(g);
        unsigned char want_h[8], h[8];
        memcpy(want_h, g->data + g->at, 8);
        g->at += 8;
        ids.len = 0;
        tokenizer_encode(t, d->text[i], d->len[i], true, &ids);
        ids_hash(ids.ids, ids.len, h);
        if (ids.len != want_n || memcmp(h, want_h, 8) != 0) {
            if (bad++ < 5) {
                printf("  document %u: %zu ids, reference %u (or same count, other ids)\n", i,
                       ids.len, want_n);
                Golden tail = *g;
                tail.at = full_at;
                first_difference(ids.ids, ids.len, &tail, i);
            }
        }
    }
    CHECK(bad == 0, "%d of %u documents differ from tokenizers", bad, n);
    token_ids_free(&ids);
    check_end();
    g->at = full_at;
    uint32_t n_full = u32(g);  // skip the full-id section
    for (uint32_t k = 0; k < n_full; k++) {
        u32(g);
        g->at += 4 * (size_t)u32(g);
    }
}

static void check_fuzz(Tokenizer *t, Golden *g, const char *name) {
    char label[128];
    snprintf(label, sizeof label, "tokenizer_parity_%s_fuzz", name);
    check_begin(label);
    uint32_t n = u32(g);
    TokenIds ids = {0};
    int bad = 0;
    for (uint32_t i = 0; i < n; i++) {
        uint32_t len = u32(g);
        const char *text = (const char *)g->data + g->at;
        g->at += len;
        uint32_t want_n = u32(g);
        const unsigned char *want = g->data + g->at;
        g->at += 4 * (size_t)want_n;
        ids.len = 0;
        tokenizer_encode(t, text, len, false, &ids);
        if (ids.len == want_n && memcmp(ids.ids, want, 4 * (size_t)want_n) == 0) continue;
        if (bad++ < 5) {
            printf("  fuzz string %u \"%.*s\": ids", i, (int)len, text);
            for (size_t k = 0; k < ids.len && k < 20; k++) printf(" %u", ids.ids[k]);
            printf("\n  reference:");
            for (uint32_t k = 0; k < want_n && k < 20; k++) {
                uint32_t w;
                memcpy(&w, want + 4 * (size_t)k, 4);
                printf(" %u", w);
            }
            printf("\n");
        }
    }
    CHECK(bad == 0, "%d of %u fuzz strings differ from tokenizers", bad, n);
    token_ids_free(&ids);
    check_end();
}

static void check_one(const char *name, const char *tok_path, const char *golden, const Docs *d) {
    char err[512];
    Golden g = {0};
    Tokenizer *t = tokenizer_load(tok_path, err, sizeof err);
    if (!t || !golden_read(golden, &g)) {
        char label[128];
        snprintf(label, sizeof label, "tokenizer_parity_%s_corpus", name);
        check_begin(label);
        CHECK(0, "cannot load %s or %s: %s", tok_path, golden, t ? "golden" : err);
        check_end();
        tokenizer_free(t);
        return;
    }
    check_corpus(t, &g, d, name);
    check_fuzz(t, &g, name);
    free(g.data);
    tokenizer_free(t);
}

int main(void) {
    Docs d;
    if (!docs_read(&d)) {
        printf("FAIL tokenizer_parity: cannot read the bundled corpus\n");
        return 1;
    }
    check_one("bundled", "inputs/tokenizer.json", "validation/reference/golden/bundled.bin", &d);
    check_one("gpt2_style", "validation/reference/gpt2-style.json",
              "validation/reference/golden/gpt2-style.bin", &d);
    check_one("llama3_style", "validation/reference/llama3-style.json",
              "validation/reference/golden/llama3-style.bin", &d);
    return check_exit_code();
}
