// llama-tokenize train --kind sentencepiece: a LLaMA-style SentencePiece BPE
// model (byte fallback, <unk> <s> </s>) trained by the SentencePiece
// library.  Every rank reads its share of the corpus; rank 0 gathers the
// documents in rank order, which is corpus order (work_split gives each rank
// a contiguous span), so the sentences, and the model, do not depend on the
// rank count.  The library holds every sentence in memory on rank 0: train on
// a sample of a large corpus.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "text/corpus_files.h"
#include "tokenize/corpus_walk.h"
#include "tokenize/tokenize.h"
#include "tokenizer/sentencepiece_model.h"
#include "core/util.h"

typedef struct {
    char *p;        // the documents, each followed by '\n' (the library's sentences are lines)
    size_t len, cap;
} Text;

static void text_add(Text *t, const void *s, size_t n) {
    if (t->len + n > t->cap) {
        t->cap = 2 * (t->len + n) + 4096;
        t->p = xrealloc(t->p, t->cap);
    }
    memcpy(t->p + t->len, s, n);
    t->len += n;
}

static void add_record(void *ctx, const JsonlRecord *rec, int file) {
    (void)file;
    text_add(ctx, rec->text, rec->len);
    text_add(ctx, "\n", 1);
}

static void add_rank_text(void *ctx, const void *buf, size_t n, int rank) {
    (void)rank;
    text_add(ctx, buf, n);
}

// --output as given when it ends in ".model", else with ".model" added.
static void model_path(const char *output, char *path, size_t size) {
    size_t n = strlen(output);
    bool has = n >= 6 && strcmp(output + n - 6, ".model") == 0;
    snprintf(path, size, "%s%s", output, has ? "" : ".model");
}

void tokenize_train_sentencepiece(const TokenizeOptions *o) {
    char err[1024] = "", path[4096];
    if (o->specials.n > 0)
        fatal_usage("--special belongs to --kind bpe: a SentencePiece model has <unk>, <s> and "
                  "</s> (see llama-tokenize --help)");
    if (o->vocab_size < 3 + 256 + 1)
        fatal_usage("--vocab-size %d is too small for --kind sentencepiece: it needs 3 special "
                  "pieces, 256 byte pieces and at least one more", o->vocab_size);
    model_path(o->output, path, sizeof path);
    CorpusFiles c;
    agree_or_exit(corpus_files_expand(o->inputs.items, o->inputs.n, &c, err, sizeof err), err);
    corpus_note_passed_over(&c);
    tokenize_train_output_check(&c, path, o->overwrite);
    double t0 = now_seconds();
    Text text = {0};
    JsonlOptions jo = {o->text_key, (size_t)o->max_record_bytes, o->skip_bad};
    JsonlCounts k;
    corpus_walk(&c, &jo, o->progress_every, add_record, &text, &k);
    Comm world;
    comm_world(&world);
    comm_allreduce(&world, &k, 4, DTYPE_I64, REDUCE_SUM);
    comm_gather_to_root(&world, text.p, text.len, add_rank_text, &text);
    comm_free(&world);
    bool ok = true;
    if (util_world_rank() == 0) {
        ok = spm_train_bpe(text.p, text.len, o->vocab_size, path, err, sizeof err);
        if (ok)
            info("%s: trained a SentencePiece BPE model (vocabulary %d: <unk> <s> </s>, 256 "
                 "byte pieces, merges) on %lld documents (%.2f MB) in %.2f s; wrote %s; skipped "
                 "%lld bad records, %lld empty documents", util_program(), o->vocab_size,
                 (long long)k.records, (double)k.text_bytes / 1e6, now_seconds() - t0, path,
                 (long long)k.bad, (long long)k.empty);
    }
    agree_or_exit(ok, err);
    free(text.p);
    corpus_files_free(&c);
}
