// llama-tokenize bench: the tokenizer's own speed on one core, without file
// or JSON costs: the corpus documents are read into memory first, then
// encoded (as documents, with BOS/EOS) repeatedly for at least 2 seconds.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "text/corpus_files.h"
#include "tokenize/corpus_walk.h"
#include "tokenize/tokenize.h"
#include "tokenizer/tokenizer.h"
#include "core/util.h"

typedef struct {
    char **text;
    size_t *len;
    size_t n, bytes;
} Texts;

static void keep_text(void *ctx, const JsonlRecord *rec, int file) {
    (void)file;
    Texts *t = ctx;
    t->text = xrealloc(t->text, (t->n + 1) * sizeof *t->text);
    t->len = xrealloc(t->len, (t->n + 1) * sizeof *t->len);
    t->text[t->n] = xmalloc(rec->len);
    memcpy(t->text[t->n], rec->text, rec->len);
    t->len[t->n++] = rec->len;
    t->bytes += rec->len;
}

void tokenize_bench(const TokenizeOptions *o) {
    char err[1024];
    CorpusFiles c;
    if (!corpus_files_expand(o->inputs.items, o->inputs.n, &c, err, sizeof err)) fatal("%s", err);
    corpus_note_passed_over(&c);
    Tokenizer *tok = tokenizer_load(o->tokenizer, err, sizeof err);
    if (!tok) fatal("%s", err);
    JsonlOptions jo = {o->text_key, (size_t)o->max_record_bytes, o->skip_bad};
    Texts t = {0};
    JsonlCounts k;
    corpus_walk(&c, &jo, 0, keep_text, &t, &k);
    if (t.n == 0)   // nothing to time: a rate of 0 would read as a measurement
        fatal("the corpus holds no documents (%lld records, %lld bad, %lld empty): nothing to "
              "time", (long long)k.records, (long long)k.bad, (long long)k.empty);
    TokenIds ids = {0};
    double t0 = now_seconds(), secs = 0;
    int64_t rounds = 0, tokens = 0;
    while (secs < 2.0 || rounds == 0) {
        for (size_t i = 0; i < t.n; i++) {
            ids.len = 0;
            tokenizer_encode_document(tok, t.text[i], t.len[i], &ids);
            tokens += (int64_t)ids.len;
        }
        rounds++;
        secs = now_seconds() - t0;
    }
    printf("%s: %s: %zu documents, %.2f MB x %lld rounds in %.2f s: %.2f MB/s, %.2f M tokens/s "
           "(one core)\n", util_program(), o->tokenizer, t.n, (double)t.bytes / 1e6,
           (long long)rounds, secs, (double)t.bytes * (double)rounds / 1e6 / secs,
           (double)tokens / 1e6 / secs);
    for (size_t i = 0; i < t.n; i++) free(t.text[i]);
    free(t.text);
    free(t.len);
    token_ids_free(&ids);
    tokenizer_free(tok);
    corpus_files_free(&c);
}
