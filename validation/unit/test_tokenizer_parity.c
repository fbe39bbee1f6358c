// Tokenizer parity: ids equal to the Hugging Face `tokenizers` library's on
// every document of the bundled corpus and on seeded fuzz strings, for the
// bundled tokenizer (trained by llama-tokenize train), a GPT-2-style and a
// LLaMA-3-style tokenizer trained by `tokenizers` (reference ids written by
// validation/reference/make_tokenizer_golden.py), and four SentencePiece-style
// (LLaMA-1/2) tokenizers converted by transformers, with hard strings and
// decoding too (validation/reference/make_spm_tokenizer_golden.py).
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "token_goldens.h"
#include "tokenizer/tokenizer.h"

// The first 8 bytes of SHA-256.
static void ids_hash_bytes(const void *data, size_t len, unsigned char out[8]) {
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n;
    EVP_Digest(data, len, md, &n, EVP_sha256(), NULL);
    memcpy(out, md, 8);
}

static void ids_hash(const uint32_t *ids, size_t n, unsigned char out[8]) {
    ids_hash_bytes(ids, n * 4, out);  // little-endian host
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
        if (ids.len == want_n && (want_n == 0 || memcmp(ids.ids, want, 4 * (size_t)want_n) == 0))
            continue;  // (no ids: ids.ids may be NULL)
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

// ---- decoding (SentencePiece-style goldens) -------------------------------------

static bool same_text(const char *text, size_t len, Golden *g) {
    uint32_t want_len = u32(g);
    unsigned char h[8];
    ids_hash_bytes(text, len, h);
    bool same = want_len == len && g->at + 8 <= g->len && memcmp(h, g->data + g->at, 8) == 0;
    g->at += 8;
    return same;
}

// decode(ids of each fuzz string) against tokenizers' decode; fuzz is a copy
// of the golden positioned at the fuzz section.
static void check_decode_strings(Tokenizer *t, Golden *g, Golden fuzz, const char *name) {
    char label[128];
    snprintf(label, sizeof label, "tokenizer_parity_%s_decode_strings", name);
    check_begin(label);
    uint32_t n = u32(g), n_fuzz = u32(&fuzz);
    CHECK(n == n_fuzz, "%u decoded strings for %u strings", n, n_fuzz);
    int bad = 0;
    for (uint32_t i = 0; i < n && i < n_fuzz; i++) {
        uint32_t len = u32(&fuzz);
        const char *src = (const char *)fuzz.data + fuzz.at;
        fuzz.at += len;
        uint32_t n_ids = u32(&fuzz);
        uint32_t *ids = malloc(4 * (size_t)n_ids + 4);
        memcpy(ids, fuzz.data + fuzz.at, 4 * (size_t)n_ids);
        fuzz.at += 4 * (size_t)n_ids;
        size_t m;
        char *text = tokenizer_decode(t, ids, n_ids, &m);
        if (!same_text(text, m, g) && bad++ < 5)
            printf("  string %u \"%.*s\": decoded \"%.*s\"\n", i, (int)len, src, (int)m, text);
        free(text);
        free(ids);
    }
    CHECK(bad == 0, "%d of %u decoded strings differ from tokenizers", bad, n);
    check_end();
}

// decode(encode(document)) against tokenizers', and (roundtrip) the document.
static void check_decode_docs(Tokenizer *t, Golden *g, const Docs *d, const char *name,
                              bool roundtrip) {
    char label[128];
    snprintf(label, sizeof label, "tokenizer_parity_%s_decode_documents", name);
    check_begin(label);
    uint32_t n = u32(g);
    CHECK(n == d->n, "reference has %u documents, the corpus %zu", n, d->n);
    TokenIds ids = {0};
    int bad = 0, not_back = 0;
    for (uint32_t i = 0; i < n && i < d->n; i++) {
        ids.len = 0;
        tokenizer_encode(t, d->text[i], d->len[i], false, &ids);
        size_t m;
        char *text = tokenizer_decode(t, ids.ids, ids.len, &m);
        if (!same_text(text, m, g) && bad++ < 3)
            printf("  document %u decodes to \"%.60s...\" (%zu bytes)\n", i, text, m);
        not_back += roundtrip && (m != d->len[i] || memcmp(text, d->text[i], m) != 0);
        free(text);
    }
    CHECK(bad == 0, "%d of %u documents decode unlike tokenizers", bad, n);
    CHECK(not_back == 0, "%d of %u documents do not decode back to their text", not_back, n);
    token_ids_free(&ids);
    check_end();
}

// decode(seeded id sequences: special tokens, <0xNN> runs that are and are
// not UTF-8, any token) against tokenizers'.
static void check_decode_ids(Tokenizer *t, Golden *g, const char *name) {
    char label[128];
    snprintf(label, sizeof label, "tokenizer_parity_%s_decode_ids", name);
    check_begin(label);
    uint32_t n = u32(g);
    int bad = 0;
    for (uint32_t i = 0; i < n && g->at < g->len; i++) {
        uint32_t n_ids = u32(g);
        uint32_t *ids = malloc(4 * (size_t)n_ids + 4);
        memcpy(ids, g->data + g->at, 4 * (size_t)n_ids);
        g->at += 4 * (size_t)n_ids;
        size_t m;
        char *text = tokenizer_decode(t, ids, n_ids, &m);
        if (!same_text(text, m, g) && bad++ < 5) {
            printf("  ids");
            for (uint32_t k = 0; k < n_ids; k++) printf(" %u", ids[k]);
            printf(": decoded \"%.*s\"\n", (int)m, text);
        }
        free(text);
        free(ids);
    }
    CHECK(n > 0 && g->at == g->len, "the golden's decode sections do not end where expected");
    CHECK(bad == 0, "%d of %u id sequences decode unlike tokenizers", bad, n);
    check_end();
}

// spm: the golden has the decode sections; roundtrip: every document
// decodes back to its text (byte fallback, no unk).
static void check_one(const char *name, const char *tok_path, const char *golden, const Docs *d,
                      bool spm, bool roundtrip) {
    char err[512];
    Golden g = {0};
    Tokenizer *t = tokenizer_load(tok_path, err, sizeof err);
    if (!t || !golden_read(golden, "LLTKGLD1", &g)) {
        char label[128];
        snprintf(label, sizeof label, "tokenizer_parity_%s_corpus", name);
        check_begin(label);
        CHECK(0, "cannot load %s or %s: %s", tok_path, golden, t ? "golden" : err);
        check_end();
        tokenizer_free(t);
        return;
    }
    check_corpus(t, &g, d, name);
    Golden fuzz = g;
    check_fuzz(t, &g, name);
    if (spm) {
        check_decode_strings(t, &g, fuzz, name);
        check_decode_docs(t, &g, d, name, roundtrip);
        check_decode_ids(t, &g, name);
    }
    free(g.data);
    tokenizer_free(t);
}

int main(void) {
    Docs d;
    if (!docs_read(&d)) {
        printf("FAIL tokenizer_parity: cannot read the bundled corpus\n");
        return 1;
    }
    check_one("bundled", "inputs/tokenizer.json", "validation/reference/golden/bundled.bin", &d,
              false, false);
    check_one("gpt2_style", "validation/reference/gpt2-style.json",
              "validation/reference/golden/gpt2-style.bin", &d, false, false);
    check_one("llama3_style", "validation/reference/llama3-style.json",
              "validation/reference/golden/llama3-style.bin", &d, false, false);
    // LLaMA-1/2 kinds: legacy=True (normalizer Prepend + Replace), legacy=False
    // (Metaspace "first"), byte_fallback off (unk), the older Metaspace
    // (prepend "always", split) with a Metaspace decoder.
    check_one("spm_legacy", "validation/reference/spm-legacy.json",
              "validation/reference/golden/spm-legacy.bin", &d, true, true);
    check_one("spm_metaspace", "validation/reference/spm-metaspace.json",
              "validation/reference/golden/spm-metaspace.bin", &d, true, true);
    check_one("spm_unk", "validation/reference/spm-unk.json",
              "validation/reference/golden/spm-unk.bin", &d, true, false);
    check_one("spm_unk_split", "validation/reference/spm-unk-split.json",
              "validation/reference/golden/spm-unk-split.bin", &d, true, false);
    return check_exit_code();
}
