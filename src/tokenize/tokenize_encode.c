// llama-tokenize encode: JSON Lines corpus -> HDF5 token shards, one per
// (source, split), written collectively by every rank.  Each rank tokenizes
// its share of the corpus (work_split: rank order is document order), keeps
// its documents' tokens per (source, split), and then every shard is written
// with shard_write_collective: the same shards whatever the rank count.
#include <errno.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "text/corpus_files.h"
#include "tokenize/corpus_walk.h"
#include "comm/comm_mpi.h"
#include "fs/ckpt_dir.h"
#include "fs/paths.h"
#include "hdf5/shards.h"
#include "parallel/agreement.h"
#include "tokenize/tokenize.h"
#include "tokenizer/tokenizer.h"
#include "core/util.h"

enum { TRAIN, VAL };
static const char *SPLIT_NAME[2] = {"train", "val"};

typedef struct {
    uint64_t *v;
    size_t n, cap;
} U64Vec;

typedef struct {
    char *name;
    TokenIds tokens[2];
    U64Vec lengths[2];
    unsigned char *from_file;  // which input files gave it documents
} SourceBuf;

#define STAGING ".encode.tmp"   // OUTPUT/STAGING: the new shards until every one is written
#define LOCK ".encode.lock"     // OUTPUT/LOCK: one encode per folder at a time

typedef struct {
    Comm world;
    Tokenizer *tok;
    SourceBuf *src;
    int n_src, last;
    int n_files;
    double val_fraction;
    uint64_t seed;
    int64_t docs[2], tokens;
    const char *output;          // --output
    char staging[4200];          // OUTPUT/.encode.tmp: the new shards until all are written
    char **old;                  // rank 0: the shards they replace (--overwrite)
    int n_old;
} EncodeState;

static void u64vec_push(U64Vec *v, uint64_t x) {
    if (v->n == v->cap) {
        v->cap = v->cap ? v->cap * 2 : 1024;
        v->v = xrealloc(v->v, v->cap * sizeof *v->v);
    }
    v->v[v->n++] = x;
}

// Held out when SHA-256(seed as 8 bytes little-endian, text), read as a
// fraction in [0, 1) from its first 8 bytes, is below val_fraction: a property
// of the document alone, so the same whatever the ranks or file order.
static int doc_split(const EncodeState *s, const char *text, size_t len) {
    if (s->val_fraction <= 0) return TRAIN;
    unsigned char seed[8], md[EVP_MAX_MD_SIZE];
    for (int i = 0; i < 8; i++) seed[i] = (unsigned char)(s->seed >> (8 * i));
    unsigned int n;
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL) || !EVP_DigestUpdate(c, seed, 8) ||
        !EVP_DigestUpdate(c, text, len) || !EVP_DigestFinal_ex(c, md, &n))
        fatal("SHA-256 failed (libcrypto)");
    EVP_MD_CTX_free(c);
    uint64_t h = 0;
    for (int i = 0; i < 8; i++) h = h << 8 | md[i];
    return (double)h / 18446744073709551616.0 < s->val_fraction ? VAL : TRAIN;
}

static SourceBuf *find_source(EncodeState *s, const char *name) {
    if (s->last >= 0 && strcmp(s->src[s->last].name, name) == 0) return &s->src[s->last];
    for (int i = 0; i < s->n_src; i++)
        if (strcmp(s->src[i].name, name) == 0) return &s->src[s->last = i];
    s->src = xrealloc(s->src, (size_t)(s->n_src + 1) * sizeof *s->src);
    SourceBuf *b = &s->src[s->last = s->n_src++];
    memset(b, 0, sizeof *b);
    b->name = xstrdup(name);
    b->from_file = xcalloc((size_t)s->n_files, 1);
    return b;
}

static void encode_record(void *ctx, const JsonlRecord *rec, int file) {
    EncodeState *s = ctx;
    SourceBuf *b = find_source(s, rec->source);
    int split = doc_split(s, rec->text, rec->len);
    TokenIds *t = &b->tokens[split];
    size_t before = t->len;
    tokenizer_encode_document(s->tok, rec->text, rec->len, t);
    u64vec_push(&b->lengths[split], t->len - before);
    b->from_file[file] = 1;
    s->docs[split]++;
    s->tokens += (int64_t)(t->len - before);
}

// ---- agreeing on the sources --------------------------------------------------

static int by_string(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

// The sorted union of every rank's source names (the same list on every rank).
static char **all_sources(const EncodeState *s, int *n_out) {
    size_t mine = 0, total;
    for (int i = 0; i < s->n_src; i++) mine += strlen(s->src[i].name) + 1;
    char *local = xmalloc(mine + 1), *p = local;
    for (int i = 0; i < s->n_src; i++) p = stpcpy(p, s->src[i].name) + 1;
    char *all = comm_allgather_bytes(&s->world, local, mine, &total);
    char **names = NULL;
    int n = 0;
    for (char *q = all; q < all + total; q += strlen(q) + 1) {
        names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = q;
    }
    if (n > 0) qsort(names, (size_t)n, sizeof *names, by_string);
    int u = 0;
    for (int i = 0; i < n; i++)
        if (u == 0 || strcmp(names[u - 1], names[i]) != 0) names[u++] = xstrdup(names[i]);
    free(all);
    free(local);
    *n_out = u;
    return names;
}

// The source's name made safe for a file name: [A-Za-z0-9._-], others '_'.
static void file_safe(const char *name, char *out, size_t len) {
    size_t i = 0;
    for (; name[i] && i + 1 < len; i++) {
        char c = name[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  c == '.' || c == '_' || c == '-';
        out[i] = ok && !(i == 0 && c == '.') ? c : '_';
    }
    out[i] = 0;
}

static void check_distinct_names(char **names, int n) {
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            char a[256], b[256];
            file_safe(names[i], a, sizeof a);
            file_safe(names[j], b, sizeof b);
            if (strcmp(a, b) == 0)
                fatal_all("sources \"%s\" and \"%s\" would both be written as %s.*.h5; rename "
                          "one in the corpus meta", names[i], names[j], a);
        }
}

// ---- writing ------------------------------------------------------------------

typedef struct {
    int64_t docs, tokens;
    char path[4096];
} ShardDone;

// Newline-separated input paths that gave documents to this source (any rank).
static char *source_files(const Comm *world, const CorpusFiles *c, const SourceBuf *b) {
    unsigned char *all = xcalloc((size_t)c->n + 1, 1);
    if (b) memcpy(all, b->from_file, (size_t)c->n);
    comm_allreduce(world, all, (size_t)c->n, DTYPE_U8, REDUCE_MAX);
    size_t len = 1;
    for (int i = 0; i < c->n; i++) len += strlen(c->files[i].path) + 1;
    char *out = xcalloc(len, 1), *p = out;
    for (int i = 0; i < c->n; i++)
        if (all[i]) p += sprintf(p, "%s%s", p == out ? "" : "\n", c->files[i].path);
    free(all);
    return out;
}

// A shard write that failed (a full disk) can leave HDF5 holding a
// half-closed file, which its clean-up at MPI_Finalize or exit dereferences
// (HDF5 1.10: a segfault after the message).  Every rank learns of the failure
// together (shard_write_collective agrees), so each ends here, after the
// others, without that clean-up.  The new shards written so far go; the old
// ones stay.
static void write_failed(const EncodeState *s, const char *err) {
    const Comm *world = &s->world;
    char why[1024];
    if (world->rank == 0 && !corpus_output_discard(s->staging, why, sizeof why))
        fprintf(stderr, "%s: warning: %s\n", util_program(), why);
    if (world->rank == 0) folder_unlock(s->output, LOCK);
    if (world->rank == 0) fprintf(stderr, "%s: error: %s\n", util_program(), err);
    fflush(stdout);
    fflush(stderr);
    comm_barrier(world);
    _exit(1);
}

static void write_source(const TokenizeOptions *o, const EncodeState *s, const CorpusFiles *c,
                         const char *name, ShardDone done[2]) {
    SourceBuf *b = NULL;
    for (int i = 0; i < s->n_src; i++)
        if (strcmp(s->src[i].name, name) == 0) b = &s->src[i];
    char *files = source_files(&s->world, c, b);
    for (int split = TRAIN; split <= VAL; split++) {
        int64_t local[2] = {b ? (int64_t)b->lengths[split].n : 0,
                            b ? (int64_t)b->tokens[split].len : 0};
        int64_t total[2] = {local[0], local[1]};
        comm_allreduce(&s->world, total, 2, DTYPE_I64, REDUCE_SUM);
        done[split].docs = total[0];
        done[split].tokens = total[1];
        if (total[0] == 0) continue;  // no shard without documents
        char safe[256], err[1024];
        file_safe(name, safe, sizeof safe);
        char path[4600];
        snprintf(done[split].path, sizeof done[split].path, "%s/%s.%s.h5", o->output, safe,
                 SPLIT_NAME[split]);
        snprintf(path, sizeof path, "%s/%s.%s.h5", s->staging, safe, SPLIT_NAME[split]);
        static uint32_t no_tokens[1];
        static uint64_t no_lengths[1];
        ShardMeta meta = {tokenizer_vocab_size(s->tok), tokenizer_bos_id(s->tok),
                          tokenizer_eos_id(s->tok), tokenizer_sha256(s->tok), name,
                          SPLIT_NAME[split], files};
        if (!shard_write_collective(comm_mpi(&s->world), path, &meta,
                                    local[1] ? b->tokens[split].ids : no_tokens, local[1],
                                    local[0] ? b->lengths[split].v : no_lengths, local[0], err,
                                    sizeof err))
            write_failed(s, err);
    }
    free(files);
}

static void print_summary(const EncodeState *s, const JsonlCounts *k, double secs, int n_names,
                          ShardDone (*done)[2]) {
    int64_t mine[7] = {s->docs[TRAIN], s->docs[VAL], s->tokens, k->bad, k->empty, k->text_bytes,
                       k->records};
    int64_t all[7];
    memcpy(all, mine, sizeof all);
    comm_allreduce(&s->world, all, 7, DTYPE_I64, REDUCE_SUM);
    if (s->world.rank != 0) return;
    info("%s: %lld documents (%lld train, %lld val), %lld tokens, %.2f MB of text in %.2f s "
         "(%.2f MB/s, %d rank%s); skipped %lld bad records, %lld empty documents",
         util_program(), (long long)(all[0] + all[1]), (long long)all[0], (long long)all[1],
         (long long)all[2], (double)all[5] / 1e6, secs, secs > 0 ? (double)all[5] / 1e6 / secs : 0,
         util_world_size(), util_world_size() > 1 ? "s" : "", (long long)all[3],
         (long long)all[4]);
    for (int i = 0; i < n_names; i++)
        for (int split = TRAIN; split <= VAL; split++)
            if (done[i][split].docs > 0)
                info("  %s: %lld documents, %lld tokens", done[i][split].path,
                     (long long)done[i][split].docs, (long long)done[i][split].tokens);
}

// ---- the command --------------------------------------------------------------

static Tokenizer *load_tokenizer(const TokenizeOptions *o) {
    char err[1024] = "";
    Tokenizer *t = tokenizer_load(o->tokenizer, err, sizeof err);
    if (t && o->eos && !tokenizer_set_eos(t, o->eos, err, sizeof err)) {
        tokenizer_free(t);
        t = NULL;
    }
    agree_or_exit(t != NULL, err);
    if (t && o->eos && !tokenizer_is_special(t, o->eos) && util_world_rank() == 0)
        warn("--eos %s is an ordinary token (id %lld), which text produces too: the model cannot "
             "tell a document's end from it; a special token (added_tokens, \"special\": true) "
             "is the usual separator", o->eos, (long long)tokenizer_eos_id(t));
    if (tokenizer_eos_id(t) < 0 && strcmp(o->tokenizer, "bytes") != 0 && util_world_rank() == 0)
        warn("%s names no end-of-text token: documents are not separated (use --eos TOKEN)",
             o->tokenizer);
    return t;
}

// An --output inside a staging folder would be emptied by the encode that
// owns it.
static bool output_outside_staging(const char *output, char *err, int len) {
    char path[8400];
    path_lexical(output, path, sizeof path);
    bool inside = strstr(path, "/" STAGING "/") || !strcmp(strrchr(path, '/'), "/" STAGING);
    if (inside)
        snprintf(err, len, "--output %s lies in a folder named %s, which an encode into the "
                 "folder above uses for its unfinished shards (and empties): give another path",
                 output, STAGING);
    return !inside;
}

// The output folder and the shards it holds already (refused, or with
// --overwrite replaced at the end), checked before the corpus is read.
static void prepare_output(const TokenizeOptions *o, EncodeState *s) {
    char err[5000] = "";
    snprintf(s->staging, sizeof s->staging, "%s/" STAGING, o->output);
    s->output = o->output;
    bool ok = s->world.rank != 0 ||
              (output_outside_staging(o->output, err, sizeof err) &&
               corpus_make_dir(o->output, err, sizeof err) &&
               (s->old = corpus_output_old(o->output, o->overwrite, shard_is_complete, &s->n_old,
                                           err, sizeof err)));
    corpus_output_old_free(s->old, s->n_old);
    s->old = NULL;
    s->n_old = 0;
    agree_or_exit(ok, err);
    // The shards are written collectively: a folder on each node's own disk
    // (or missing on some) would fail only after the whole corpus was encoded.
    agree_folder_shared(&s->world, "--output", o->output, "the shards are written by every rank "
                        "together, so the folder must be one they all share (a parallel or "
                        "network file system, the same path on every node)");
}

// Once the corpus is read: the output folder locked for this run until its
// shards are in place (two encodes at once would mix theirs), its shards
// listed again under the lock, the staging folder made (a failed run's left
// there removed first).
static void open_staging(const TokenizeOptions *o, EncodeState *s) {
    char err[5000] = "", note[1024] = "";
    bool ok = s->world.rank != 0 ||
              (folder_lock(o->output, LOCK, "--output", note, sizeof note, err, sizeof err) &&
               (s->old = corpus_output_old(o->output, o->overwrite, shard_is_complete, &s->n_old,
                                           err, sizeof err)) &&
               corpus_output_discard(s->staging, err, sizeof err) &&
               corpus_make_dir(s->staging, err, sizeof err));
    agree_or_exit(ok, err);
    if (note[0]) info("%s", note);
}

// Every shard written: they replace the old ones.  n_names 0: no shard, the
// old ones stay.
static void commit_output(const TokenizeOptions *o, EncodeState *s, int n_names) {
    char err[5000] = "";
    bool ok = s->world.rank != 0 ||
              (n_names > 0 ? corpus_output_commit(o->output, s->staging, s->old, s->n_old, err,
                                                  sizeof err)
                           : corpus_output_discard(s->staging, err, sizeof err));
    if (s->world.rank == 0) corpus_output_old_free(s->old, s->n_old);
    if (s->world.rank == 0) folder_unlock(o->output, LOCK);
    agree_or_exit(ok, err);
    if (n_names > 0 && s->n_old > 0)
        info("--overwrite: the new shards replaced the %d shard file%s %s held", s->n_old,
             s->n_old > 1 ? "s" : "", o->output);
}

static void free_state(EncodeState *s) {
    for (int i = 0; i < s->n_src; i++) {
        SourceBuf *b = &s->src[i];
        for (int k = 0; k < 2; k++) {
            token_ids_free(&b->tokens[k]);
            free(b->lengths[k].v);
        }
        free(b->from_file);
        free(b->name);
    }
    free(s->src);
    tokenizer_free(s->tok);
    comm_free(&s->world);
}

void tokenize_encode(const TokenizeOptions *o) {
    char err[1024] = "";
    CorpusFiles c;
    agree_or_exit(corpus_files_expand(o->inputs.items, o->inputs.n, &c, err, sizeof err), err);
    corpus_note_passed_over(&c);
    EncodeState s = {.tok = load_tokenizer(o), .last = -1, .n_files = c.n,
                     .val_fraction = o->val_fraction, .seed = (uint64_t)o->seed};
    comm_world(&s.world);
    prepare_output(o, &s);
    JsonlOptions jo = {o->text_key, (size_t)o->max_record_bytes, o->skip_bad};
    double t0 = now_seconds();
    JsonlCounts counts;
    corpus_walk(&c, &jo, o->progress_every, encode_record, &s, &counts);
    int n_names;
    char **names = all_sources(&s, &n_names);
    check_distinct_names(names, n_names);
    ShardDone (*done)[2] = xcalloc((size_t)n_names + 1, sizeof *done);
    open_staging(o, &s);
    for (int i = 0; i < n_names; i++) write_source(o, &s, &c, names[i], done[i]);
    commit_output(o, &s, n_names);
    double slowest = now_seconds() - t0;
    comm_allreduce(&s.world, &slowest, 1, DTYPE_F64, REDUCE_MAX);
    print_summary(&s, &counts, slowest, n_names, done);
    if (n_names == 0)
        fatal_all("the corpus (%s%s) holds no documents (see the counts above): no shard "
                  "written; check --input and --text-key", o->inputs.items[0],
                  o->inputs.n > 1 ? ", ..." : "");
    for (int i = 0; i < n_names; i++) free(names[i]);
    free(names);
    free(done);
    free_state(&s);
    corpus_files_free(&c);
}
