// llama-tokenize train: learns a byte-level BPE vocabulary from a corpus and
// writes it as a Hugging Face tokenizer.json (--kind sentencepiece: see
// tokenize_train_sentencepiece.c).  Every rank counts the words of
// its share of the corpus; rank 0 sums the counts, learns the merges (the
// result depends only on the counts, so not on the rank count) and writes.
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "tokenizer/bpe_train.h"
#include "fs/paths.h"
#include "text/corpus_files.h"
#include "tokenize/corpus_walk.h"
#include "tokenize/tokenize.h"
#include "core/util.h"

static void count_record(void *ctx, const JsonlRecord *rec, int file) {
    (void)file;
    word_counts_add_text(ctx, rec->text, rec->len);
}

static void add_packed(void *w, const void *buf, size_t n, int rank) {
    (void)rank;
    word_counts_add_packed(w, buf, n);
}

// Sums every rank's word counts into rank 0's.
static void gather_counts(const Comm *world, WordCounts *w) {
    size_t len;
    char *mine = word_counts_pack(w, &len);
    agree_or_exit(len <= INT_MAX, "a rank's word counts exceed 2 GiB; use more ranks");
    comm_gather_to_root(world, mine, len, add_packed, w);
    free(mine);
}

// The special tokens to write: <|endoftext|> first, then those asked for.
static char **special_list(const TokenizeOptions *o, int *n) {
    char **list = xmalloc((size_t)(o->specials.n + 1) * sizeof *list);
    *n = 0;
    list[(*n)++] = "<|endoftext|>";
    for (int i = 0; i < o->specials.n; i++) {
        bool dup = false;
        for (int j = 0; j < *n; j++) dup = dup || strcmp(list[j], o->specials.items[i]) == 0;
        if (!dup) list[(*n)++] = o->specials.items[i];
    }
    return list;
}

void tokenize_train_output_check(const CorpusFiles *c, const char *path, bool overwrite) {
    const char *input = corpus_files_find(c, path);
    if (input)
        fatal_all("--output %s is the corpus file %s: writing the tokenizer there would destroy "
                  "it; give another path", path, input);
    struct stat st;
    bool exists = stat(path, &st) == 0;
    char err[4500] = "";
    if (exists && S_ISDIR(st.st_mode))
        snprintf(err, sizeof err, "--output %s is a folder: give the tokenizer file's path", path);
    else if (exists && !overwrite)
        snprintf(err, sizeof err, "--output %s exists (a tokenizer shards were encoded with "
                 "need it as it is): give another path, or --overwrite to replace it", path);
    else if (!exists && util_world_rank() == 0) {   // its folder (rank 0 writes the file),
                                                     // before the corpus is read, not after
        char dir[4096];
        path_parent(path, dir, sizeof dir);
        if (access(dir, W_OK) != 0)
            snprintf(err, sizeof err, "--output %s: cannot write in its folder %s: %s", path, dir,
                     strerror(errno));
    }
    agree_or_exit(!err[0], err);
}

void tokenize_train(const TokenizeOptions *o) {
    if (o->kind == TOKENIZER_KIND_SENTENCEPIECE) {
        tokenize_train_sentencepiece(o);
        return;
    }
    char err[1024] = "";
    CorpusFiles c;
    agree_or_exit(corpus_files_expand(o->inputs.items, o->inputs.n, &c, err, sizeof err), err);
    corpus_note_passed_over(&c);
    tokenize_train_output_check(&c, o->output, o->overwrite);
    int n_specials;
    char **specials = special_list(o, &n_specials);
    for (int i = 0; i < n_specials; i++) {
        int b = bpe_train_byte_symbol(specials[i]);
        if (b >= 0)
            fatal_usage("--special '%s' is the byte-level vocabulary's symbol for byte 0x%02X: text "
                      "holding that byte would encode as the special token; choose a special string "
                      "that is not (e.g. <|%s|>)", specials[i], b, specials[i]);
    }
    int n_merges = o->vocab_size - 256 - n_specials;
    if (n_merges < 0)
        fatal_usage("--vocab-size %d leaves no room: it must be at least 256 bytes + %d special "
                  "tokens", o->vocab_size, n_specials);
    double t0 = now_seconds();
    WordCounts w;
    word_counts_init(&w);
    JsonlOptions jo = {o->text_key, (size_t)o->max_record_bytes, o->skip_bad};
    JsonlCounts k, all;
    corpus_walk(&c, &jo, o->progress_every, count_record, &w, &k);
    Comm world;
    comm_world(&world);
    all = k;
    comm_allreduce(&world, &all, 4, DTYPE_I64, REDUCE_SUM);
    gather_counts(&world, &w);
    comm_free(&world);
    bool ok = true;
    if (util_world_rank() == 0) {
        BpeVocab v;
        bpe_train_learn(&w, n_merges, &v);
        if (v.n_merges < n_merges)
            warn("the corpus has pairs for %d merges only: the vocabulary has %d tokens, not %d",
                 v.n_merges, v.n_tokens + n_specials, o->vocab_size);
        ok = bpe_train_write(&v, specials, n_specials, o->output, err, sizeof err);
        if (ok)
            info("%s: learned %d merges from %lld documents (%zu distinct words, %.2f MB) in "
                 "%.2f s; wrote %s (vocabulary %d, special %s%s); skipped %lld bad records, "
                 "%lld empty documents", util_program(), v.n_merges, (long long)all.records,
                 w.words.count, (double)all.text_bytes / 1e6, now_seconds() - t0, o->output,
                 v.n_tokens + n_specials, specials[0], n_specials > 1 ? ", ..." : "",
                 (long long)all.bad, (long long)all.empty);
        bpe_vocab_free(&v);
    }
    agree_or_exit(ok, err);
    word_counts_free(&w);
    free(specials);
    corpus_files_free(&c);
}
