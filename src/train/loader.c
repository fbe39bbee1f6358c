#include "train/loader.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "core/permutation.h"
#include "core/rng.h"
#include "hdf5/shards.h"
#include "core/util.h"
#include "model/context_parallel.h"

typedef struct {
    Shard shard;
    uint64_t n_samples;      // windows in this file
    uint64_t first_sample;   // index of its first window within its source
} LoaderFile;

typedef struct {
    char name[128];
    double weight;           // normalised; 1 for the single combined stream
    int file0, n_files;      // files[file0 .. file0 + n_files)
    uint64_t n_samples;
} Source;

struct Loader {
    int max_length, vocab_size;
    uint64_t seed;
    bool shuffle, mixed;
    LoaderFile *files;
    int n_files;
    Source *sources;          // (n_sources), at most one per file
    int n_sources;
    const char **names;       // (n_sources) for loader_sources
    double *weights;
    char sha256[72];
};

static bool fail(char *err, int err_len, const char *msg) {
    snprintf(err, err_len, "%s", msg);
    return false;
}

// Opens every shard of the split; the order of files is the sorted order of names.
static bool open_files(Loader *l, const LoaderConfig *c, char *err, int err_len) {
    char **paths;
    int n = shards_list(c->path, &paths, err, err_len);
    if (n == 0) return false;
    l->files = xcalloc((size_t)n, sizeof *l->files);
    bool ok = true;
    for (int i = 0; ok && i < n; i++) {
        LoaderFile *f = &l->files[l->n_files];
        if (!shard_open(paths[i], &f->shard, err, err_len)) ok = false;
        else if (strcmp(f->shard.info.split, c->split) != 0) shard_close(&f->shard);
        else if (f->shard.info.vocab_size > c->vocab_size) {
            snprintf(err, err_len, "%s: shard vocabulary %lld is larger than the model's %d; "
                     "use a model with vocab_size >= %lld", paths[i],
                     (long long)f->shard.info.vocab_size, c->vocab_size,
                     (long long)f->shard.info.vocab_size);
            ok = false;
        } else {
            int64_t t = f->shard.info.n_tokens;
            f->n_samples = t > c->max_length ? (uint64_t)((t - 1) / c->max_length) : 0;
            l->n_files++;
        }
    }
    shards_list_free(paths, n);
    return ok;
}

// Shards a and b hold ids of one tokenizer, documents separated alike (the
// end-of-text and beginning ids of --eos are not part of the tokenizer's hash).
static bool same_tokens(const Shard *a, const Shard *b, char *err, int err_len) {
    const ShardInfo *x = &a->info, *y = &b->info;
    if (strcmp(x->tokenizer_sha256, y->tokenizer_sha256) != 0)
        snprintf(err, err_len, "%s was made with another tokenizer (sha256 %.12s…) than %s "
                 "(%.12s…); one dataset needs one tokenizer", b->path, y->tokenizer_sha256,
                 a->path, x->tokenizer_sha256);
    else if (x->eos_id != y->eos_id || x->bos_id != y->bos_id)
        snprintf(err, err_len, "%s separates documents with other ids (end %lld, beginning %lld) "
                 "than %s (%lld, %lld): one dataset needs one separator; encode them with the "
                 "same --eos", b->path, (long long)y->eos_id, (long long)y->bos_id, a->path,
                 (long long)x->eos_id, (long long)x->bos_id);
    else return true;
    return false;
}

// No two files of the split hold the same tokens: one file under two names
// (a link) or a copy would be read twice in every epoch.  Copies are known by
// their checksum table's root (shards without one are not compared).
static bool check_distinct(const Loader *l, char *err, int err_len) {
    struct stat *st = xcalloc((size_t)l->n_files, sizeof *st);
    bool ok = true;
    for (int i = 0; i < l->n_files; i++)
        if (stat(l->files[i].shard.path, &st[i]) != 0) memset(&st[i], 0, sizeof st[i]);
    for (int i = 0; ok && i < l->n_files; i++)
        for (int j = i + 1; ok && j < l->n_files; j++) {
            const ShardInfo *a = &l->files[i].shard.info, *b = &l->files[j].shard.info;
            bool same_file = st[i].st_ino && st[i].st_dev == st[j].st_dev && st[i].st_ino == st[j].st_ino;
            bool copy = a->token_sha256_root[0] && strcmp(a->token_sha256_root, b->token_sha256_root) == 0;
            if (!same_file && !copy) continue;
            snprintf(err, err_len, "%s and %s are %s: every epoch would read its tokens twice; "
                     "leave one out (--data-mix weights sources, if that was the aim)",
                     l->files[i].shard.path, l->files[j].shard.path,
                     same_file ? "one file under two names" : "copies of one shard (the same "
                     "token checksums)");
            ok = false;
        }
    free(st);
    return ok;
}

static bool check_tokenizers(Loader *l, char *err, int err_len) {
    snprintf(l->sha256, sizeof l->sha256, "%s", l->files[0].shard.info.tokenizer_sha256);
    for (int i = 1; i < l->n_files; i++)
        if (!same_tokens(&l->files[0].shard, &l->files[i].shard, err, err_len)) return false;
    return true;
}

bool loader_same_tokens(const Loader *a, const Loader *b, char *err, int err_len) {
    return same_tokens(&a->files[0].shard, &b->files[0].shard, err, err_len);
}

static int find_source(const Loader *l, const char *name) {
    for (int s = 0; s < l->n_sources; s++)
        if (strcmp(l->sources[s].name, name) == 0) return s;
    return -1;
}

// Groups files into sources (by shard attribute) or one combined stream.
static void group_sources(Loader *l) {
    // Files sorted by name: order them by source so each source is contiguous.
    for (int i = 1; i < l->n_files; i++)
        for (int j = i; j > 0 && l->mixed && strcmp(l->files[j - 1].shard.info.source,
                                                    l->files[j].shard.info.source) > 0; j--) {
            LoaderFile t = l->files[j];
            l->files[j] = l->files[j - 1];
            l->files[j - 1] = t;
        }
    l->sources = xcalloc((size_t)l->n_files, sizeof *l->sources);
    for (int i = 0; i < l->n_files; i++) {
        const char *name = l->mixed ? l->files[i].shard.info.source : "all";
        int s = find_source(l, name);
        if (s < 0) {
            s = l->n_sources++;
            snprintf(l->sources[s].name, sizeof l->sources[s].name, "%s", name);
            l->sources[s].file0 = i;
            l->sources[s].weight = 1.0;
        }
        Source *src = &l->sources[s];
        l->files[i].first_sample = src->n_samples;
        src->n_samples += l->files[i].n_samples;
        src->n_files++;
    }
}

static bool parse_mix(Loader *l, const char *mix, char *err, int err_len) {
    for (int s = 0; s < l->n_sources; s++) l->sources[s].weight = 0;
    char buf[1024];
    snprintf(buf, sizeof buf, "%s", mix);
    double total = 0;
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        double w;
        if (!eq || !parse_double(eq + 1, &w) || w < 0) {
            snprintf(err, err_len, "--data-mix: expected source=weight, got '%s'", item);
            return false;
        }
        *eq = 0;
        int s = find_source(l, item);
        if (s < 0) {
            char names[512] = "";
            for (int k = 0; k < l->n_sources; k++)
                snprintf(names + strlen(names), sizeof names - strlen(names), " %s",
                         l->sources[k].name);
            snprintf(err, err_len, "--data-mix: no source '%s' in the dataset (sources:%s)",
                     item, names);
            return false;
        }
        l->sources[s].weight = w;
        total += w;
    }
    if (!(total > 0)) return fail(err, err_len, "--data-mix: the weights sum to zero");
    if (!isfinite(total))
        return fail(err, err_len, "--data-mix: the weights' sum overflows; give smaller weights "
                    "(only their ratios matter)");
    char left[512] = "";
    for (int s = 0; s < l->n_sources; s++) {
        l->sources[s].weight /= total;
        if (l->sources[s].weight == 0 && strlen(left) + strlen(l->sources[s].name) + 3 < sizeof left)
            snprintf(left + strlen(left), sizeof left - strlen(left), "%s%s", left[0] ? ", " : "",
                     l->sources[s].name);
    }
    if (left[0]) info("note: --data-mix leaves out (weight 0) the dataset's sources %s", left);
    return true;
}

static bool check_sizes(const Loader *l, const LoaderConfig *c, char *err, int err_len) {
    for (int s = 0; s < l->n_sources; s++)
        if (l->sources[s].weight > 0 && l->sources[s].n_samples == 0) {
            snprintf(err, err_len, "%s split of '%s'%s%s holds fewer than max-length + 1 = %d "
                     "tokens; use a smaller --max-length or more data", c->split, c->path,
                     l->mixed ? ", source " : "", l->mixed ? l->sources[s].name : "",
                     c->max_length + 1);
            return false;
        }
    return true;
}

Loader *loader_open(const LoaderConfig *c, char *err, int err_len) {
    Loader *l = xcalloc(1, sizeof *l);
    l->max_length = c->max_length;
    l->vocab_size = c->vocab_size;
    l->seed = c->seed;
    l->shuffle = c->shuffle;
    l->mixed = c->data_mix && *c->data_mix;
    bool ok = open_files(l, c, err, err_len);
    if (ok && l->n_files == 0) {
        snprintf(err, err_len, "dataset '%s' has no %s shards", c->path, c->split);
        ok = false;
    }
    ok = ok && check_tokenizers(l, err, err_len) && check_distinct(l, err, err_len);
    if (ok) group_sources(l);
    if (ok && l->mixed) ok = parse_mix(l, c->data_mix, err, err_len);
    ok = ok && check_sizes(l, c, err, err_len);
    if (!ok) {
        loader_close(l);
        return NULL;
    }
    l->names = xcalloc((size_t)l->n_sources, sizeof *l->names);
    l->weights = xcalloc((size_t)l->n_sources, sizeof *l->weights);
    for (int s = 0; s < l->n_sources; s++) {
        l->names[s] = l->sources[s].name;
        l->weights[s] = l->sources[s].weight;
    }
    return l;
}

void loader_close(Loader *l) {
    if (!l) return;
    for (int i = 0; i < l->n_files; i++) shard_close(&l->files[i].shard);
    free(l->files);
    free(l->sources);
    free(l->names);
    free(l->weights);
    free(l);
}

uint64_t loader_samples(const Loader *l) {
    uint64_t n = 0;
    for (int s = 0; s < l->n_sources; s++)
        if (l->sources[s].weight > 0) n += l->sources[s].n_samples;
    return n;
}

int loader_sources(const Loader *l, const char ***names, const double **weights) {
    *names = (const char **)l->names;
    *weights = l->weights;
    return l->n_sources;
}

const char *loader_tokenizer_sha256(const Loader *l) { return l->sha256; }

void loader_describe(const Loader *l, char *out, size_t len) {
    size_t at = 0;
    out[0] = 0;
    for (int i = 0; i < l->n_files && at < len; i++) {
        const Shard *s = &l->files[i].shard;
        const char *name = strrchr(s->path, '/');
        int n = snprintf(out + at, len - at, "shard %s: split %s, source %s, %lld tokens, %lld "
                         "documents, vocabulary %lld, tokens %s\n", name ? name + 1 : s->path,
                         s->info.split, s->info.source, (long long)s->info.n_tokens,
                         (long long)s->info.n_documents, (long long)s->info.vocab_size,
                         s->info.token_sha256_root[0] ? s->info.token_sha256_root : "unchecked");
        at += n > 0 ? (size_t)n : 0;
    }
}

int loader_unchecked_shards(const Loader *l) {
    int n = 0;
    for (int i = 0; i < l->n_files; i++) n += l->files[i].shard.sums < 0;
    return n;
}

// The source global sample g draws (weighted, seeded by g alone).
static int draw_source(const Loader *l, uint64_t g) {
    if (!l->mixed) return 0;
    double u = rng_uniform(rng_key(l->seed, 0x6d6978 /* "mix" */), g), acc = 0;
    int last = 0;
    for (int s = 0; s < l->n_sources; s++) {
        if (l->sources[s].weight <= 0) continue;
        acc += l->sources[s].weight;
        last = s;
        if (u < acc) return s;
    }
    return last;
}

// Reads the k-th sample drawn from source s (k counts over epochs).
static void read_sample(const Loader *l, int s, uint64_t k, int32_t *row) {
    const Source *src = &l->sources[s];
    uint64_t epoch = k / src->n_samples, i = k % src->n_samples;
    if (l->shuffle) {
        Permutation p = permutation_make(src->n_samples,
                                         rng_key(rng_key(l->seed, rng_hash_string(src->name)),
                                                 epoch));
        i = permutation_apply(&p, i);
    }
    int lo = src->file0, hi = src->file0 + src->n_files - 1;
    while (lo < hi) {   // last file whose first_sample <= i
        int mid = (lo + hi + 1) / 2;
        if (l->files[mid].first_sample <= i) lo = mid;
        else hi = mid - 1;
    }
    const LoaderFile *f = &l->files[lo];
    int64_t start = (int64_t)(i - f->first_sample) * l->max_length;
    char err[512];
    if (!shard_read_tokens(&f->shard, start, l->max_length + 1, row, err, sizeof err))
        fatal("%s", err);
    for (int t = 0; t <= l->max_length; t++)
        if (row[t] < 0 || row[t] >= l->vocab_size)
            fatal("%s: token id %d at position %lld is outside the model's vocabulary of %d",
                  f->shard.path, row[t], (long long)(start + t), l->vocab_size);
}

// Room in st for every source's count.
static void state_reserve(LoaderState *st, int n) {
    if (st->n_sources >= n) return;
    st->source_consumed = xrealloc(st->source_consumed, (size_t)n * sizeof *st->source_consumed);
    memset(st->source_consumed + st->n_sources, 0,
           (size_t)(n - st->n_sources) * sizeof *st->source_consumed);
    st->n_sources = n;
}

void loader_next(Loader *l, LoaderState *st, int dp_rank, int dp, int B, int32_t *rows) {
    uint64_t count = (uint64_t)dp * (uint64_t)B;
    if (l->mixed) state_reserve(st, l->n_sources);
    for (uint64_t j = 0; j < count; j++) {
        uint64_t g = st->consumed + j;
        int s = draw_source(l, g);
        uint64_t k = l->mixed ? st->source_consumed[s]++ : g;
        if ((int)(j / (uint64_t)B) == dp_rank)
            read_sample(l, s, k, rows + (j % (uint64_t)B) * (uint64_t)(l->max_length + 1));
    }
    st->consumed += count;
}

void loader_synthetic_next(uint64_t seed, int vocab_size, int max_length, LoaderState *st,
                           int dp_rank, int dp, int B, int32_t *rows) {
    uint64_t key = rng_key(seed, 0x62656e6368 /* "bench" */);
    for (int b = 0; b < B; b++) {
        uint64_t g = st->consumed + (uint64_t)dp_rank * B + (uint64_t)b;
        uint64_t sample_key = rng_key(key, g);
        for (int j = 0; j <= max_length; j++)
            rows[(size_t)b * (max_length + 1) + j] =
                (int32_t)(rng_bits(sample_key, (uint64_t)j) % (uint64_t)vocab_size);
    }
    st->consumed += (uint64_t)dp * B;
}

void loader_split_rows(const int32_t *rows, int B, int T, int cp, int cp_rank, int32_t *tokens,
                       int32_t *targets) {
    int Tl = T / cp, pieces = cp > 1 ? 2 : 1, len = Tl / pieces;   // the rank's chunks
    for (int b = 0; b < B; b++)
        for (int k = 0; k < pieces; k++) {
            const int32_t *r = rows + (size_t)b * (T + 1) + cp_position(T, cp, cp_rank, k * len);
            size_t at = (size_t)b * Tl + (size_t)k * len;
            memcpy(tokens + at, r, (size_t)len * sizeof(int32_t));
            memcpy(targets + at, r + 1, (size_t)len * sizeof(int32_t));
        }
}

// ---- the position ----

LoaderState loader_state_copy(const LoaderState *st) {
    LoaderState c = {st->consumed, NULL, 0};
    state_reserve(&c, st->n_sources);
    if (st->n_sources > 0)
        memcpy(c.source_consumed, st->source_consumed, (size_t)st->n_sources * sizeof *c.source_consumed);
    return c;
}

void loader_state_free(LoaderState *st) {
    free(st->source_consumed);
    memset(st, 0, sizeof *st);
}

int loader_state_encode(const LoaderState *st, int64_t **out) {
    int n = 1 + st->n_sources;
    *out = xmalloc((size_t)n * sizeof **out);
    (*out)[0] = (int64_t)st->consumed;
    for (int i = 0; i < st->n_sources; i++) (*out)[1 + i] = (int64_t)st->source_consumed[i];
    return n;
}

bool loader_state_decode(const int64_t *v, int n, LoaderState *st, char *err, int err_len) {
    if (n < 1) {
        snprintf(err, err_len, "the stored data position is empty (%d values)", n);
        return false;
    }
    for (int i = 0; i < n; i++)
        if (v[i] < 0) {
            snprintf(err, err_len, "the stored data position holds a negative count (%lld, value "
                     "%d of %d)", (long long)v[i], i + 1, n);
            return false;
        }
    LoaderState d = {(uint64_t)v[0], NULL, 0};
    state_reserve(&d, n - 1);
    for (int i = 1; i < n; i++) d.source_consumed[i - 1] = (uint64_t)v[i];
    loader_state_free(st);
    *st = d;
    return true;
}

char *loader_state_data(const Loader *l, const LoaderState *st) {
    json_t *names = json_array(), *samples = json_array();
    for (int i = 0; i < st->n_sources && i < l->n_sources; i++) {
        json_array_append_new(names, json_string(l->sources[i].name));
        json_array_append_new(samples, json_integer((json_int_t)l->sources[i].n_samples));
    }
    const ShardInfo *f = &l->files[0].shard.info;
    json_t *o = json_pack("{s:i, s:I, s:o, s:o, s:I, s:I}", "window", l->max_length, "samples",
                          (json_int_t)loader_samples(l), "sources", names, "source_samples",
                          samples, "eos_id", (json_int_t)f->eos_id, "bos_id",
                          (json_int_t)f->bos_id);
    char *out = o ? json_dumps(o, JSON_COMPACT) : NULL;
    json_decref(o);
    if (!out) fatal("out of memory encoding the data position's sources");
    return out;
}

// Counts stored in order (no names): they are this loader's only when their
// count is its source count (or none, or format 2's 64 with the rest zero).
static bool restore_unnamed(const Loader *l, LoaderState *d, char *err, int err_len) {
    int stored = d->n_sources, m = l->n_sources;
    bool extra = false;
    for (int i = m; i < stored; i++) extra = extra || d->source_consumed[i] > 0;
    if (stored == 0 || stored == m || (stored == 64 && !extra)) {
        if (stored > m) d->n_sources = m;
        return true;
    }
    snprintf(err, err_len, "the checkpoint's data position counts samples of %d sources by index "
             "(written before positions were stored by source name) and this run's data has %d "
             "sources: they cannot be matched; resume with the sources it was saved with", stored, m);
    return false;
}

// An optional member is absent or an integer.
static bool optional_integer(const json_t *o, const char *key) {
    const json_t *v = json_object_get(o, key);
    return !v || json_is_integer(v);
}

// The stored object is well formed: a name and a sample count per count,
// each name once ({} from a run without data: no counts, nothing known).
static bool data_valid(const json_t *o, int n_counts) {
    const json_t *names = json_object_get(o, "sources");
    bool ok = json_is_object(o) && optional_integer(o, "window") &&
              optional_integer(o, "samples") && optional_integer(o, "eos_id") &&
              optional_integer(o, "bos_id") &&
              (int)json_array_size(names) == n_counts &&
              (n_counts == 0 || json_is_array(names)) &&
              json_array_size(json_object_get(o, "source_samples")) == (size_t)n_counts;
    for (int i = 0; ok && i < n_counts; i++) {
        const char *a = json_string_value(json_array_get(names, (size_t)i));
        ok = a != NULL;
        for (int k = 0; ok && k < i; k++)
            ok = strcmp(a, json_string_value(json_array_get(names, (size_t)k))) != 0;
    }
    return ok;
}

// The checkpoint's source i ("sources"[i], with "source_samples"[i]): its
// count moved to counts[its index here], or a note when it is gone; one when
// its sample count changed too, unless `resized` (another window length:
// every source's changed, said once).
static void restore_source(const Loader *l, const json_t *data, int i, uint64_t drawn,
                           bool resized, uint64_t *counts) {
    const char *name = json_string_value(json_array_get(json_object_get(data, "sources"),
                                                        (size_t)i));
    json_int_t had = json_integer_value(json_array_get(json_object_get(data, "source_samples"),
                                                       (size_t)i));
    int s = find_source(l, name);
    if (s < 0) {
        if (drawn > 0)
            info("note: source '%s' of the checkpoint (%llu samples drawn) is not in this run's "
                 "data: its position is dropped", name, (unsigned long long)drawn);
        return;
    }
    counts[s] = drawn;
    if (!resized && drawn > 0 && had > 0 && (uint64_t)had != l->sources[s].n_samples)
        info("note: source '%s' holds %llu samples now, %lld when the checkpoint was saved: its "
             "epochs are permuted anew, so its position continues with other samples (some seen "
             "again, some skipped)", name, (unsigned long long)l->sources[s].n_samples,
             (long long)had);
}

// Moves d's counts (stored in the order of data's names) to this loader's.
static void restore_named(const Loader *l, LoaderState *d, const json_t *data, bool resized) {
    uint64_t *counts = xcalloc((size_t)l->n_sources + 1, sizeof *counts);
    for (int i = 0; i < d->n_sources; i++)
        restore_source(l, data, i, d->source_consumed[i], resized, counts);
    free(d->source_consumed);
    d->source_consumed = counts;
    d->n_sources = l->n_sources;
}

// Notes for data that changed under a position: the window, the one stream's
// epoch (the sources' epochs: restore_source).  True when the window did.
static bool note_changed_data(const Loader *l, const json_t *data, uint64_t consumed) {
    json_int_t window = json_integer_value(json_object_get(data, "window"));
    json_int_t samples = json_integer_value(json_object_get(data, "samples"));
    bool resized = window > 0 && window != l->max_length;
    if (consumed == 0) return resized;
    if (resized)
        info("note: the checkpoint's data position counts windows of %lld tokens, this run's are "
             "%d: it continues at the same sample count, not after the tokens the saved run "
             "read (resume with --max-length %lld to continue them)", (long long)window,
             l->max_length, (long long)window);
    else if (!l->mixed && samples > 0 && (uint64_t)samples != loader_samples(l))
        info("note: the dataset holds %llu samples now, %lld when the checkpoint was saved: the "
             "epoch is permuted anew, so the position continues with other samples (some seen "
             "again, some skipped)", (unsigned long long)loader_samples(l), (long long)samples);
    return resized;
}

// The checkpoint's data separated documents by the ids this data does
// (stored since the end and beginning ids were; --eos is not part of the
// tokenizer's hash).
static bool same_separator(const Loader *l, const json_t *data, char *err, int err_len) {
    const json_t *eos = json_object_get(data, "eos_id"), *bos = json_object_get(data, "bos_id");
    const ShardInfo *f = &l->files[0].shard.info;
    if (!eos || !bos || (json_integer_value(eos) == f->eos_id &&
                         json_integer_value(bos) == f->bos_id))
        return true;
    snprintf(err, err_len, "the checkpoint's data separated documents with other ids (end %lld, "
             "beginning %lld) than this dataset's (%lld, %lld): encode it with the same --eos, or "
             "start a new run", (long long)json_integer_value(eos),
             (long long)json_integer_value(bos), (long long)f->eos_id, (long long)f->bos_id);
    return false;
}

bool loader_data_same_separator(const Loader *l, const char *data, char *err, int err_len) {
    json_t *o = data ? json_loads(data, 0, NULL) : NULL;
    bool ok = !o || same_separator(l, o, err, err_len);
    json_decref(o);
    return ok;
}

bool loader_state_restore(const Loader *l, const int64_t *v, int n, const char *data,
                          LoaderState *st, char *err, int err_len) {
    LoaderState d = {0};
    if (!loader_state_decode(v, n, &d, err, err_len)) return false;
    json_t *o = data ? json_loads(data, 0, NULL) : NULL;
    bool ok = !data || data_valid(o, d.n_sources);
    if (!ok)
        snprintf(err, err_len, "the stored description of the data position is malformed (%d "
                 "counts for '%.200s')", d.n_sources, data);
    bool drawn = false;
    for (int i = 0; i < d.n_sources; i++) drawn = drawn || d.source_consumed[i] > 0;
    if (ok && l && !l->mixed && drawn)
        info("note: the checkpoint's per-source data positions (--data-mix) are dropped: this "
             "run reads its sources as one stream");
    if (ok && l && l->mixed && !drawn && d.consumed > 0)
        info("note: the checkpoint drew %llu samples as one stream (no --data-mix): each source "
             "of --data-mix starts at its beginning, so samples trained on may come again",
             (unsigned long long)d.consumed);
    ok = ok && (!l || !o || same_separator(l, o, err, err_len));
    bool resized = ok && l && o && note_changed_data(l, o, d.consumed);
    if (ok && l && !l->mixed) d.n_sources = 0;
    if (ok && l && l->mixed && o) restore_named(l, &d, o, resized);
    if (ok && l && l->mixed && !o) ok = restore_unnamed(l, &d, err, err_len);
    json_decref(o);
    if (!ok) {
        loader_state_free(&d);
        return false;
    }
    loader_state_free(st);
    *st = d;
    return true;
}

void loader_state_describe(const int64_t *v, int n, const char *data, char *out, size_t len) {
    json_t *o = data ? json_loads(data, 0, NULL) : NULL, *a = json_object_get(o, "sources");
    size_t at = (size_t)snprintf(out, len, "%lld samples drawn", n > 0 ? (long long)v[0] : 0LL);
    json_int_t window = json_integer_value(json_object_get(o, "window"));
    if (window > 0 && at < len)
        at += (size_t)snprintf(out + at, len - at, " of %lld tokens", (long long)window);
    int last = n - 1;   // the last non-zero count: format 2 stored 64
    while (last > 0 && v[last] == 0 && !a) last--;
    for (int i = 1; i <= last && at < len; i++) {
        const char *name = a ? json_string_value(json_array_get(a, (size_t)(i - 1))) : NULL;
        char unnamed[32];
        snprintf(unnamed, sizeof unnamed, "source %d", i);
        int k = snprintf(out + at, len - at, "%s%s %lld", i == 1 ? " (per source: " : ", ",
                         name ? name : unnamed, (long long)v[i]);
        at += k > 0 ? (size_t)k : 0;
    }
    if (last >= 1 && at < len) snprintf(out + at, len - at, ")");
    json_decref(o);
}
