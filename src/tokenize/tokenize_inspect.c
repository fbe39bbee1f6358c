// llama-tokenize inspect: a shard's attributes and a SHA-256 of each of its
// datasets' values, one "key: value" line each (to compare shards).
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

#include "hdf5/shards.h"
#include "tokenize/tokenize.h"
#include "core/util.h"

#define CHUNK ((int64_t)1 << 20)

// SHA-256 of the tokens as int32 little-endian and of the offsets as uint64.
static bool content_hashes(const Shard *s, char tok_hex[65], char off_hex[65], char *err,
                           int err_len) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned n;
    int32_t *buf = xmalloc((size_t)CHUNK * sizeof *buf);
    bool ok = EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    for (int64_t at = 0; ok && at < s->info.n_tokens; at += CHUNK) {
        int64_t k = s->info.n_tokens - at < CHUNK ? s->info.n_tokens - at : CHUNK;
        ok = shard_read_tokens(s, at, k, buf, err, err_len) &&
             EVP_DigestUpdate(c, buf, (size_t)k * sizeof *buf);
    }
    ok = ok && EVP_DigestFinal_ex(c, md, &n);
    if (ok) hex_encode(md, n, tok_hex);
    int64_t n_off = s->info.n_documents + 1;
    uint64_t *off = xmalloc((size_t)n_off * sizeof *off);
    ok = ok && shard_read_doc_offsets(s, 0, n_off, off, err, err_len) &&
         EVP_DigestInit_ex(c, EVP_sha256(), NULL) &&
         EVP_DigestUpdate(c, off, (size_t)n_off * sizeof *off) && EVP_DigestFinal_ex(c, md, &n);
    if (ok) hex_encode(md, n, off_hex);
    free(off);
    free(buf);
    EVP_MD_CTX_free(c);
    return ok;
}

static void inspect_one(const char *path) {
    Shard s;
    char err[1024], tok[65], off[65];
    if (!shard_open(path, &s, err, sizeof err) || !content_hashes(&s, tok, off, err, sizeof err))
        fatal("%s", err);
    const ShardInfo *f = &s.info;
    printf("path: %s\nsource: %s\nsplit: %s\nvocab_size: %lld\nbos_id: %lld\neos_id: %lld\n"
           "n_documents: %lld\nn_tokens: %lld\ntokenizer_sha256: %s\ntokens_sha256: %s\n"
           "doc_offsets_sha256: %s\n", path, f->source, f->split, (long long)f->vocab_size,
           (long long)f->bos_id, (long long)f->eos_id, (long long)f->n_documents,
           (long long)f->n_tokens, f->tokenizer_sha256, tok, off);
    shard_close(&s);
}

// Each argument: a shard, or a folder's shards in name order.
void tokenize_inspect(const TokenizeOptions *o) {
    if (util_world_rank() != 0) return;
    for (int i = 0; i < o->shards.n; i++) {
        char **files, err[1024];
        int n = shards_list(o->shards.items[i], &files, err, sizeof err);
        if (n == 0) fatal("%s", err);
        for (int k = 0; k < n; k++) inspect_one(files[k]);
        shards_list_free(files, n);
    }
}
