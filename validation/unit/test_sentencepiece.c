// SentencePiece tokenizer.model files through tokenizer_load: ids equal to
// the `sentencepiece` Python package's (the library's version, 0.1.97) on
// every document of the bundled corpus ([BOS] + sp.encode(text)) and on hard
// and fuzz strings (sp.encode(text)), decoding equal to sp.decode, byte
// fallback models round-tripping every document; for a LLaMA-style BPE and a
// unigram model trained by the package and the bundled
// inputs/tokenizer-spm.model.  References written by
// validation/reference/make_sentencepiece_golden.py.  Also: special ids and
// pieces, detection by content, the file's SHA-256, and bad model files.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "token_goldens.h"
#include "tokenizer/tokenizer.h"
#include "core/util.h"

typedef struct {
    const char *name, *model;
    bool byte_fallback;   // LLaMA's settings: <unk> <s> </s>, byte pieces, identity normalization
    uint32_t docs;        // check the first docs documents only (0: all); the library's BPE
                          // encodes about 1 MB/s
} Model;

static void begin(const Model *m, const char *what) {
    static char label[128];
    snprintf(label, sizeof label, "sentencepiece_%s_%s", m->name, what);
    check_begin(label);
}

// Every document: [BOS] + sp.encode(text) against the golden's count and
// hash; with byte fallback, decode(encode(text)) == text.
static void check_corpus(Tokenizer *t, const Model *m, Golden *g, const Docs *d) {
    begin(m, "corpus_ids");
    uint32_t n = u32(g);
    CHECK(n == d->n, "reference has %u documents, the corpus %zu", n, d->n);
    TokenIds ids = {0};
    int bad = 0, bad_trip = 0;
    for (uint32_t i = 0; i < n && i < d->n; i++) {
        uint32_t want_n = u32(g);
        unsigned char h[32];
        if (m->docs && i >= m->docs) {
            g->at += 8;
            continue;
        }
        ids.len = 0;
        tokenizer_encode(t, d->text[i], d->len[i], true, &ids);
        sha256_digest(ids.ids, ids.len * 4, h);  // little-endian host, as the reference
        if ((ids.len != want_n || memcmp(h, g->data + g->at, 8) != 0) && bad++ < 3)
            printf("  document %u: %zu ids, reference %u (or other ids)\n", i, ids.len, want_n);
        g->at += 8;
        size_t len;
        char *text = tokenizer_decode(t, ids.ids, ids.len, &len);
        if (m->byte_fallback && (len != d->len[i] || memcmp(text, d->text[i], len) != 0) &&
            bad_trip++ < 3)
            printf("  document %u does not round-trip: %zu bytes back of %zu\n", i, len,
                   d->len[i]);
        free(text);
    }
    CHECK(bad == 0, "%d of %u documents differ from sentencepiece's ids", bad,
          m->docs ? m->docs : n);
    check_end();
    if (m->byte_fallback) {  // without it, unknown characters decode to " ⁇ "
        begin(m, "corpus_round_trip");
        CHECK(bad_trip == 0, "%d documents do not decode back to their text", bad_trip);
        check_end();
    }
    token_ids_free(&ids);
    uint32_t n_full = u32(g);  // skip the full-id section
    for (uint32_t k = 0; k < n_full; k++) {
        u32(g);
        g->at += 4 * (size_t)u32(g);
    }
}

static void print_ids(const char *what, const uint32_t *ids, size_t n) {
    printf("  %s:", what);
    for (size_t k = 0; k < n && k < 20; k++) printf(" %u", ids[k]);
    printf("\n");
}

// Hard and fuzz strings: sp.encode(text) ids, and sp.decode of them.
static void check_strings(Tokenizer *t, const Model *m, Golden *g, Golden *dec) {
    begin(m, "hard_and_fuzz_strings");
    uint32_t n = u32(g), n_dec = u32(dec);
    CHECK(n == n_dec && n > 40, "%u strings, %u decoded", n, n_dec);
    TokenIds ids = {0};
    int bad = 0, bad_dec = 0;
    for (uint32_t i = 0; i < n && i < n_dec; i++) {
        uint32_t len = u32(g);
        const char *text = (const char *)g->data + g->at;
        g->at += len;
        uint32_t want_n = u32(g);
        const unsigned char *want = g->data + g->at;
        g->at += 4 * (size_t)want_n;
        uint32_t dlen = u32(dec);
        const char *want_text = (const char *)dec->data + dec->at;
        dec->at += dlen;
        ids.len = 0;
        tokenizer_encode(t, text, len, false, &ids);
        if ((ids.len != want_n || memcmp(ids.ids, want, 4 * (size_t)want_n) != 0) && bad++ < 3) {
            printf("  string %u \"%.*s\"\n", i, (int)len, text);
            print_ids("ids", ids.ids, ids.len);
            print_ids("reference", (const uint32_t *)want, want_n);
        }
        size_t got_len;
        char *got = tokenizer_decode(t, ids.ids, ids.len, &got_len);
        if ((got_len != dlen || memcmp(got, want_text, dlen) != 0) && bad_dec++ < 3)
            printf("  string %u decodes to \"%s\", sentencepiece \"%.*s\"\n", i, got, (int)dlen,
                   want_text);
        free(got);
    }
    CHECK(bad == 0 && bad_dec == 0, "%d of %u strings differ from sentencepiece's ids, %d "
          "decode otherwise", bad, n, bad_dec);
    token_ids_free(&ids);
    check_end();
}

// <unk> 0, <s> 1, </s> 2, <0x00>.. from 3; a document is [BOS] ids EOS; the
// name and SHA-256 are the file's.
static void check_specials(Tokenizer *t, const Model *m) {
    begin(m, "special_pieces");
    Golden file = {0};
    char hex[65] = "";
    if (golden_read(m->model, NULL, &file)) sha256_hex(file.data, file.len, hex);
    free(file.data);
    CHECK(strcmp(tokenizer_sha256(t), hex) == 0 && strcmp(tokenizer_name(t), m->model) == 0,
          "name %s, sha256 %s; the file's %s", tokenizer_name(t), tokenizer_sha256(t), hex);
    CHECK(tokenizer_bos_id(t) == 1 && tokenizer_eos_id(t) == 2, "bos %lld, eos %lld",
          (long long)tokenizer_bos_id(t), (long long)tokenizer_eos_id(t));
    CHECK(tokenizer_token_id(t, "<unk>") == 0 && tokenizer_token_id(t, "<s>") == 1 &&
          tokenizer_token_id(t, "</s>") == 2 && tokenizer_token_id(t, "no such piece") == -1,
          "ids of <unk> <s> </s> and a non-piece: %lld %lld %lld %lld",
          (long long)tokenizer_token_id(t, "<unk>"), (long long)tokenizer_token_id(t, "<s>"),
          (long long)tokenizer_token_id(t, "</s>"),
          (long long)tokenizer_token_id(t, "no such piece"));
    if (m->byte_fallback)
        CHECK(tokenizer_token_id(t, "<0x00>") == 3 && tokenizer_token_id(t, "<0xFF>") == 258,
              "byte pieces at %lld and %lld, want 3 and 258",
              (long long)tokenizer_token_id(t, "<0x00>"), (long long)tokenizer_token_id(t, "<0xFF>"));
    TokenIds doc = {0}, ids = {0};
    tokenizer_encode_document(t, "Hello world", 11, &doc);
    tokenizer_encode(t, "Hello world", 11, false, &ids);
    CHECK(doc.len == ids.len + 2 && doc.ids[0] == 1 && doc.ids[doc.len - 1] == 2 &&
          memcmp(doc.ids + 1, ids.ids, ids.len * 4) == 0, "a document is not <s> ids </s>");
    char err[256];
    CHECK(tokenizer_set_eos(t, "<unk>", err, sizeof err) && tokenizer_eos_id(t) == 0 &&
          !tokenizer_set_eos(t, "<nope>", err, sizeof err) && strstr(err, m->model),
          "set_eos: eos %lld, error '%s'", (long long)tokenizer_eos_id(t), err);
    token_ids_free(&doc);
    token_ids_free(&ids);
    check_end();
}

static void check_model(const Model *m, const Docs *d) {
    char err[512], path[256], dpath[256];
    snprintf(path, sizeof path, "validation/reference/golden/%s.bin", m->name);
    snprintf(dpath, sizeof dpath, "validation/reference/golden/%s.decoded.bin", m->name);
    Golden g = {0}, dec = {0};
    Tokenizer *t = tokenizer_load(m->model, err, sizeof err);
    if (!t || !golden_read(path, "LLTKGLD1", &g) || !golden_read(dpath, "LLSPDEC1", &dec) ||
        memcmp(g.data, "LLTKGLD1", 8) != 0 || memcmp(dec.data, "LLSPDEC1", 8) != 0) {
        begin(m, "load");
        CHECK(0, "cannot load %s or its goldens: %s", m->model, t ? path : err);
        check_end();
    } else {
        check_corpus(t, m, &g, d);
        check_strings(t, m, &g, &dec);
        check_specials(t, m);
    }
    free(g.data);
    free(dec.data);
    tokenizer_free(t);
}

// ---- detection and bad files ----------------------------------------------------

static bool write_file(const char *path, const void *data, size_t len) {
    FILE *f = fopen(path, "wb");
    bool ok = f && fwrite(data, 1, len, f) == len;
    return f && fclose(f) == 0 && ok;
}

// A model loads by its content whatever its name; a truncated one, random
// bytes, or random bytes that start like a model are refused naming the file.
static void check_files(const char *dir) {
    check_begin("sentencepiece_detected_by_content");
    Golden m = {0};
    char path[512], err[512] = "";
    bool read = golden_read("validation/reference/spm-llama-bpe-c4.model", NULL, &m);
    snprintf(path, sizeof path, "%s/tokenizer.bin", dir);
    Tokenizer *t = read && write_file(path, m.data, m.len) ? tokenizer_load(path, err, sizeof err)
                                                            : NULL;
    CHECK(t && tokenizer_vocab_size(t) == 1000, "a model named tokenizer.bin: %s", err);
    tokenizer_free(t);
    check_end();
    const struct { const char *name, *file; size_t len; unsigned char first; } bad[] = {
        {"truncated_model", "cut.model", m.len / 2, 0},
        {"truncated_model_other_name", "cut.bin", m.len - 7, 0},
        {"random_bytes_model", "random.model", 3000, 0x37},
        {"random_bytes_like_a_model", "random.bin", 3000, 0x0A},
    };
    unsigned char *junk = malloc(m.len + 3000);
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 4; i++) {
        char label[128];
        snprintf(label, sizeof label, "sentencepiece_bad_file_%s", bad[i].name);
        check_begin(label);
        snprintf(path, sizeof path, "%s/%s", dir, bad[i].file);
        const unsigned char *data = m.data;
        if (bad[i].first) {
            for (size_t k = 0; k < bad[i].len; k++) x ^= x << 13, x ^= x >> 7, x ^= x << 17,
                                                    junk[k] = (unsigned char)x;
            junk[0] = bad[i].first;
            data = junk;
        }
        err[0] = 0;
        t = read && write_file(path, data, bad[i].len) ? tokenizer_load(path, err, sizeof err)
                                                       : NULL;
        CHECK(!t && strstr(err, path), "loaded (%d) or the error '%s' does not name %s", t != NULL,
              err, path);
        tokenizer_free(t);
        check_end();
    }
    free(junk);
    free(m.data);
}

int main(void) {
    Docs d;
    if (!docs_read(&d)) {
        printf("FAIL sentencepiece: cannot read the bundled corpus\n");
        return 1;
    }
    const Model models[] = {
        {"spm-llama-bpe-c4", "validation/reference/spm-llama-bpe-c4.model", true, 746},  // c4's
        {"spm-unigram", "validation/reference/spm-unigram.model", false, 0},
        {"bundled-spm", "inputs/tokenizer-spm.model", true, 0},
    };
    for (int i = 0; i < 3; i++) check_model(&models[i], &d);
    char dir[] = "/tmp/llama-test-spm.XXXXXX";
    if (mkdtemp(dir)) {
        check_files(dir);
        char cmd[300];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0) printf("  (could not remove %s)\n", dir);
    }
    return check_exit_code();
}
