#include "train/checkpoint.h"

#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "backend/ops.h"
#include "comm/comm_mpi.h"
#include "fs/ckpt_dir.h"
#include "hdf5/ckpt_file.h"
#include "parallel/agreement.h"
#include "core/file_kind.h"
#include "core/hashmap.h"
#include "core/util.h"
#include "train/watchdog.h"

// The "format" attribute: FORMAT_PREFIX and the version.  Format 4 adds
// "loader_data", the names of the loader position's per-source counts (a
// JSON array), so a resumed run matches them by name; format 3 stored the
// loader position with its own length (its counts in the loader's order); format 2 stored it as 65 values (still
// read: the same encoding, 64 per-source counts); format 1 had no
// "state_sha256" (still read, with a note).  "rope_scaling" (and its
// "rope_scaling_params") came later within format 3: absent, plain RoPE.
#define FORMAT_PREFIX "llama-hpc checkpoint "
#define FORMAT_VERSION 4          // what this build writes
#define FORMAT_OLDEST 1           // the oldest it reads
#define N_GROUPS 3
static const char *const groups[N_GROUPS] = {"master", "adam_m", "adam_v"};

// What this process did with --save-dir: whether it holds the lock, whether
// the checkpoints newer than its starting step were moved aside, the step it
// started from, the checkpoint it loaded (and whether the position moved on
// from it at that step: checkpoint_mark_moved) and the one it saved last.
static struct {
    bool claimed, started, moved;
    int64_t start_step;
    char loaded[4200], saved[4200];
} session;

// The fp32 buffer of group k over this rank's optimizer shard (device memory).
static float *group_buffer(const CheckpointOptimizer *o, int k) {
    return k == 0 ? o->master : k == 1 ? o->m : o->v;
}

// The flat range [*lo, *hi) of tensor t whose optimizer state this rank saves
// and loads: the part in its shard, or without an optimizer all of it.
static void shard_range(const CheckpointParts *p, const ParamTensor *t, size_t *lo, size_t *hi) {
    size_t at;
    *lo = t->offset, *hi = t->offset + t->numel;
    if (p->optim && !zero_tensor_part(p->optim->layout, t, lo, hi, &at)) *lo = *hi = t->offset;
}

// Where flat position x of tensor t (inside this rank's part) is in the shard buffers.
static size_t shard_index(const CheckpointOptimizer *o, const ParamTensor *t, size_t x) {
    const ZeroChunk *c = &o->layout->chunk[t->unit];
    return c->at + (x - c->begin);
}

// True on every rank when ok is true on every rank.
static bool all_ok(const Comm *c, bool ok) {
    int bad = !ok;
    comm_allreduce(c, &bad, 1, DTYPE_I32, REDUCE_MAX);
    return !bad;
}

// Local elements [*e0, *e1) of tensor p inside the flat range [lo, hi),
// vocabulary padding excluded.
static bool local_range(const ParamTensor *p, size_t lo, size_t hi, int64_t *e0, int64_t *e1) {
    size_t a = p->offset > lo ? p->offset : lo, b = p->offset + p->numel < hi ? p->offset + p->numel : hi;
    int64_t valid = p->valid_rows * p->local_cols;
    *e0 = (int64_t)(a - p->offset);
    *e1 = (int64_t)(b - p->offset) < valid ? (int64_t)(b - p->offset) : valid;
    return a < b && *e0 < *e1;
}

// The slabs of the full tensor that local elements [e0, e1) of p are.
static int global_slabs(const ParamTensor *p, int64_t e0, int64_t e1, Slab out[3]) {
    int n = slabs_of_range(p->local_cols, e0, e1, out);
    for (int i = 0; i < n; i++) {
        out[i].r0 += p->row0;
        out[i].c0 += p->col0;
    }
    return n;
}

// ---- the attributes on "/" and their digest ----

typedef struct {
    int version;   // FORMAT_OLDEST .. FORMAT_VERSION
    int64_t step, seed, shape[7], layout[4];
    int64_t tied;             // 1: tied embeddings (no lm_head.weight); absent before, 0
    int64_t optimizer_step;   // updates made: step less the skipped ones (format 1: step)
    int64_t *loader;          // (loader_len) the encoded data position (malloc'ed)
    int loader_len;
    char *loader_data;        // format 4: JSON names of loader[1..] (malloc'ed); before, NULL
    double rope_theta, norm_eps;
    RopeScaling rope_scaling;   // absent (checkpoints from before it): none
    char *model_name, *options, *tokenizer, *digest;   // malloc'ed; digest NULL in format 1
} State;

static void state_free(State *s) {
    free(s->loader);
    free(s->loader_data);
    free(s->model_name);
    free(s->options);
    free(s->tokenizer);
    free(s->digest);
    memset(s, 0, sizeof *s);
}

static void state_of_parts(const CheckpointRun *r, const CheckpointParts *p, State *s) {
    const ModelConfig *c = p->cfg;
    memset(s, 0, sizeof *s);
    s->version = FORMAT_VERSION;
    s->step = p->pos.step;
    s->optimizer_step = p->pos.optimizer_step;
    s->seed = p->seed == UINT64_MAX ? -1 : (int64_t)p->seed;   // imports: -1, any seed
    s->loader_len = p->pos.loader_len > 0 ? p->pos.loader_len : 1;   // at least "consumed"
    s->loader = xcalloc((size_t)s->loader_len, sizeof *s->loader);
    if (p->pos.loader_len > 0)
        memcpy(s->loader, p->pos.loader, (size_t)p->pos.loader_len * sizeof *s->loader);
    s->loader_data = xstrdup(p->pos.loader_data ? p->pos.loader_data : "{}");
    int64_t shape[7] = {c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab_size,
                        c->max_seq_len};
    memcpy(s->shape, shape, sizeof shape);
    s->tied = c->tie_embeddings;
    int64_t layout[4] = {r->grid->dp, r->grid->tp, r->grid->pp, p->optim ? p->optim->zero : 0};
    memcpy(s->layout, layout, sizeof layout);
    s->rope_theta = c->rope_theta;
    s->rope_scaling = c->rope_scaling;
    s->norm_eps = c->norm_eps;
    s->model_name = xstrdup(c->name);
    s->options = xstrdup(p->options ? p->options : "");
    s->tokenizer = xstrdup(p->tokenizer_sha256 ? p->tokenizer_sha256 : "");
}

static void digest_bytes(EVP_MD_CTX *c, const void *p, size_t n) {
    if (!EVP_DigestUpdate(c, p, n)) fatal("SHA-256 of checkpoint attributes failed (libcrypto)");
}

// "key <length>:<bytes>\n": no string can pass for another.
static void digest_str(EVP_MD_CTX *c, const char *key, const char *v) {
    char head[128];
    int n = snprintf(head, sizeof head, "%s %zu:", key, strlen(v));
    digest_bytes(c, head, (size_t)n);
    digest_bytes(c, v, strlen(v));
    digest_bytes(c, "\n", 1);
}

static void digest_i64(EVP_MD_CTX *c, const char *key, const int64_t *v, int n) {
    char line[64];
    digest_bytes(c, key, strlen(key));
    for (int i = 0; i < n; i++)
        digest_bytes(c, line, (size_t)snprintf(line, sizeof line, " %lld", (long long)v[i]));
    digest_bytes(c, "\n", 1);
}

// Plain RoPE adds nothing: checkpoints from before scaling keep their digest.
static void digest_scaling(EVP_MD_CTX *c, const RopeScaling *r) {
    if (r->kind == ROPE_SCALING_NONE) return;
    char line[256];
    digest_bytes(c, line, (size_t)snprintf(line, sizeof line, "rope_scaling %s %a %a %a %d\n",
                                           config_rope_scaling_name(r->kind), r->factor,
                                           r->low_freq_factor, r->high_freq_factor,
                                           r->original_max_seq_len));
}

// SHA-256 (hex) of the attributes and of the dataset checksums (N_GROUPS per
// tensor of g, in order), as format s->version (2 or 3) defines it.
static void state_digest(const State *s, const ParamTable *g, const uint64_t *sums, char out[65]) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    if (!c || !EVP_DigestInit_ex(c, EVP_sha256(), NULL))
        fatal("SHA-256 of checkpoint attributes failed (libcrypto)");
    char line[512];
    snprintf(line, sizeof line, FORMAT_PREFIX "%d", s->version);
    digest_str(c, "format", line);
    digest_i64(c, "step", &s->step, 1);
    digest_i64(c, "optimizer_step", &s->optimizer_step, 1);
    digest_i64(c, "seed", &s->seed, 1);
    digest_i64(c, "loader", s->loader, s->loader_len);
    if (s->version >= 4) digest_str(c, "loader_data", s->loader_data);
    digest_i64(c, "model_shape", s->shape, 7);
    if (s->tied) digest_i64(c, "tie_embeddings", &s->tied, 1);   // untied: as before it existed
    digest_i64(c, "layout", s->layout, 4);
    digest_bytes(c, line, (size_t)snprintf(line, sizeof line, "rope_theta %a\nnorm_eps %a\n",
                                           s->rope_theta, s->norm_eps));
    digest_scaling(c, &s->rope_scaling);
    digest_str(c, "model_name", s->model_name ? s->model_name : "");
    digest_str(c, "options", s->options ? s->options : "");
    digest_str(c, "tokenizer_sha256", s->tokenizer ? s->tokenizer : "");
    for (int i = 0; i < g->n; i++)
        for (int k = 0; k < N_GROUPS; k++)
            digest_bytes(c, line, (size_t)snprintf(line, sizeof line, "checksum %s/%s %016llx\n",
                                                   groups[k], g->t[i].name,
                                                   (unsigned long long)sums[N_GROUPS * i + k]));
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_DigestFinal_ex(c, md, &n)) fatal("SHA-256 of checkpoint attributes failed (libcrypto)");
    EVP_MD_CTX_free(c);
    hex_encode(md, n < 32 ? n : 32, out);
}

// RoPE scaling: "rope_scaling", its kind's name, and "rope_scaling_params"
// (factor, low_freq_factor, high_freq_factor, original_max_position_embeddings;
// 0 where the kind uses none).
static bool write_scaling(CkptFile *f, const RopeScaling *r) {
    double v[4] = {r->factor, r->low_freq_factor, r->high_freq_factor, r->original_max_seq_len};
    return ckpt_file_set_str(f, "rope_scaling", config_rope_scaling_name(r->kind)) &&
           ckpt_file_set_f64s(f, "rope_scaling_params", v, 4);
}

// Collective (every rank, same values).  False when a write failed here.
static bool write_state(CkptFile *f, const State *s) {
    char format[64];
    snprintf(format, sizeof format, FORMAT_PREFIX "%d", s->version);
    bool ok = ckpt_file_set_str(f, "format", format);
    ok = ckpt_file_set_i64(f, "step", &s->step, 1) && ok;
    ok = ckpt_file_set_i64(f, "optimizer_step", &s->optimizer_step, 1) && ok;
    ok = ckpt_file_set_i64(f, "seed", &s->seed, 1) && ok;
    ok = ckpt_file_set_i64(f, "loader", s->loader, s->loader_len) && ok;
    ok = ckpt_file_set_str(f, "loader_data", s->loader_data) && ok;
    ok = ckpt_file_set_i64(f, "model_shape", s->shape, 7) && ok;
    ok = ckpt_file_set_i64(f, "tie_embeddings", &s->tied, 1) && ok;
    ok = ckpt_file_set_f64(f, "rope_theta", s->rope_theta) && ok;
    ok = write_scaling(f, &s->rope_scaling) && ok;
    ok = ckpt_file_set_f64(f, "norm_eps", s->norm_eps) && ok;
    ok = ckpt_file_set_str(f, "model_name", s->model_name) && ok;
    ok = ckpt_file_set_i64(f, "layout", s->layout, 4) && ok;
    ok = ckpt_file_set_str(f, "options", s->options) && ok;
    ok = ckpt_file_set_str(f, "tokenizer_sha256", s->tokenizer) && ok;
    return ckpt_file_set_str(f, "state_sha256", s->digest) && ok;
}

// The versions this build reads, for messages: "1, 2 and 3".
static void versions_read(char *out, size_t len) {
    size_t at = 0;
    out[0] = 0;
    for (int v = FORMAT_OLDEST; v <= FORMAT_VERSION && at < len; v++) {
        const char *sep = v == FORMAT_OLDEST ? "" : v == FORMAT_VERSION ? " and " : ", ";
        int n = snprintf(out + at, len - at, "%s%d", sep, v);
        at += n > 0 ? (size_t)n : 0;
    }
}

// The version the "format" attribute names ("llama-hpc checkpoint N").
// -1 with the reason in err when it is missing, or not a version this build
// reads: the message names the file's version and the ones it reads.
static int read_version(CkptFile *f, char *err, int len) {
    char *format = ckpt_file_get_str(f, "format");
    if (!format) {
        snprintf(err, len, "%s is not a complete llama-hpc checkpoint (no format attribute)",
                 ckpt_file_path(f));
        return -1;
    }
    size_t n = strlen(FORMAT_PREFIX);
    int version = -1;
    if (strncmp(format, FORMAT_PREFIX, n) != 0 || !parse_int(format + n, &version)) version = -1;
    if (version < FORMAT_OLDEST || version > FORMAT_VERSION) {
        char which[64] = "no llama-hpc format version", reads[64];
        if (version >= 0) snprintf(which, sizeof which, "format version %d", version);
        versions_read(reads, sizeof reads);
        snprintf(err, len, "%s has the format '%s', which this build cannot read: that is %s, and "
                 "this build reads format versions %s (a newer llama-hpc wrote it? read it with "
                 "that version)", ckpt_file_path(f), format, which, reads);
        version = -1;
    }
    free(format);
    return version;
}

// The "loader" attribute, of any length >= 1 (formats 1 and 2: 65 values).
static bool read_loader(CkptFile *f, State *s) {
    s->loader_len = ckpt_file_attr_len(f, "loader");
    if (s->loader_len < 1) return false;
    s->loader = xcalloc((size_t)s->loader_len, sizeof *s->loader);
    return ckpt_file_get_i64(f, "loader", s->loader, s->loader_len);
}

// "loader_data" (format 4 on; before, the counts had no names: NULL).
static bool read_sources(CkptFile *f, State *s) {
    if (s->version < 4) return true;
    s->loader_data = ckpt_file_get_str(f, "loader_data");
    return s->loader_data != NULL;
}

// "tie_embeddings": 0 or 1; absent (older checkpoints): untied.
static bool read_tied(CkptFile *f, State *s) {
    s->tied = 0;
    if (ckpt_file_attr_len(f, "tie_embeddings") < 1) return true;
    return ckpt_file_get_i64(f, "tie_embeddings", &s->tied, 1) && (s->tied == 0 || s->tied == 1);
}

// The RoPE scaling write_scaling stores; absent (older checkpoints): none.
static bool read_scaling(CkptFile *f, State *s) {
    RopeScaling *r = &s->rope_scaling;
    char *name = ckpt_file_get_str(f, "rope_scaling");
    double v[4];
    memset(r, 0, sizeof *r);
    if (!name) return ckpt_file_attr_len(f, "rope_scaling") < 0;
    bool ok = config_rope_scaling_kind(name, &r->kind) &&
              ckpt_file_get_f64s(f, "rope_scaling_params", v, 4) && v[3] >= 0 && v[3] <= INT_MAX &&
              v[3] == (int)v[3];
    free(name);
    if (ok) *r = (RopeScaling){r->kind, v[0], v[1], v[2], (int)v[3]};
    return ok;
}

// An optional string attribute: *out NULL when absent; false when present
// but not one string.
static bool read_str(CkptFile *f, const char *name, char **out) {
    *out = ckpt_file_get_str(f, name);
    return *out || ckpt_file_attr_len(f, name) < 0;
}

static bool read_state(CkptFile *f, State *s, char *err, int len) {
    memset(s, 0, sizeof *s);
    s->version = read_version(f, err, len);
    if (s->version < 0) return false;
    const char *missing = !ckpt_file_get_i64(f, "step", &s->step, 1) ? "step"
                        : !ckpt_file_get_i64(f, "seed", &s->seed, 1) ? "seed"
                        : !read_loader(f, s) ? "loader"
                        : !read_sources(f, s) ? "loader_data"
                        : !ckpt_file_get_i64(f, "model_shape", s->shape, 7) ? "model_shape"
                        : !read_tied(f, s) ? "tie_embeddings"
                        : !ckpt_file_get_i64(f, "layout", s->layout, 4) ? "layout"
                        : !ckpt_file_get_f64(f, "rope_theta", &s->rope_theta) ? "rope_theta"
                        : !read_scaling(f, s) ? "rope_scaling"
                        : !ckpt_file_get_f64(f, "norm_eps", &s->norm_eps) ? "norm_eps" : NULL;
    if (!missing && !read_str(f, "model_name", &s->model_name)) missing = "model_name";
    if (!missing && !read_str(f, "options", &s->options)) missing = "options";
    if (!missing && !read_str(f, "tokenizer_sha256", &s->tokenizer)) missing = "tokenizer_sha256";
    s->digest = s->version >= 2 && !missing ? ckpt_file_get_str(f, "state_sha256") : NULL;
    if (!missing && s->version >= 2 && !s->digest) missing = "state_sha256";
    s->optimizer_step = s->step;   // format 1 had no skipped steps
    if (!missing && s->version >= 2 && !ckpt_file_get_i64(f, "optimizer_step", &s->optimizer_step, 1))
        missing = "optimizer_step";
    if (missing) {
        snprintf(err, len, "%s is not a complete llama-hpc checkpoint (attribute '%s' missing or "
                 "malformed)", ckpt_file_path(f), missing);
    } else if (s->step < 0 || s->optimizer_step < 0 || s->optimizer_step > s->step) {
        snprintf(err, len, "%s holds step %lld and optimizer step %lld: impossible counts (a "
                 "damaged or edited checkpoint); use another", ckpt_file_path(f),
                 (long long)s->step, (long long)s->optimizer_step);
    } else if (s->version == 1 && ckpt_file_attr_len(f, "state_sha256") >= 0) {
        // Format 1 has no digest: a later checkpoint relabelled as format 1
        // would have its attributes read unchecked.
        snprintf(err, len, "%s says format 1 but holds a digest (state_sha256), which format 1 "
                 "never wrote: its format attribute was changed after it was saved; use another "
                 "checkpoint", ckpt_file_path(f));
    } else {
        return true;
    }
    state_free(s);
    return false;
}

// A model_shape entry past int reads as 0, which config_validate refuses.
static int shape_entry(const State *s, int i) {
    return s->shape[i] >= INT32_MIN && s->shape[i] <= INT32_MAX ? (int)s->shape[i] : 0;
}

static void config_of_state(const State *s, ModelConfig *c) {
    memset(c, 0, sizeof *c);
    c->dim = shape_entry(s, 0), c->n_layers = shape_entry(s, 1), c->n_heads = shape_entry(s, 2);
    c->n_kv_heads = shape_entry(s, 3), c->ffn_dim = shape_entry(s, 4);
    c->vocab_size = shape_entry(s, 5), c->max_seq_len = shape_entry(s, 6);
    c->tie_embeddings = s->tied;
    c->rope_theta = s->rope_theta;
    c->rope_scaling = s->rope_scaling;
    c->norm_eps = s->norm_eps;
    snprintf(c->name, sizeof c->name, "%s", s->model_name && s->model_name[0] ? s->model_name : "checkpoint");
}

// The step a folder's name states: "step_N" or "abandoned_step_N_<time>";
// -1 for any other name.
static int64_t step_in_name(const char *dir) {
    size_t n = strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && dir[b - 1] != '/') b--;
    char name[1024];
    snprintf(name, sizeof name, "%.*s", (int)(n - b), dir + b);
    if (strncmp(name, "abandoned_step_", 15) == 0) {
        char *end = strchr(name + 15, '_');
        if (end) *end = 0;
        return ckpt_dir_step_of(name + 10);
    }
    return ckpt_dir_step_of(name);
}

// Reads the attributes (this rank alone) and every tensor's stored checksum
// (*want, N_GROUPS per tensor of *global, the checkpoint's own model), and
// checks the digest and, when dir is given, the folder name against the step.
static bool read_verified_state(CkptFile *f, const char *dir, State *s, ModelConfig *cfg,
                                ParamTable *global, uint64_t **want, char *err, int len) {
    *want = NULL;
    memset(global, 0, sizeof *global);
    if (!read_state(f, s, err, len)) return false;
    config_of_state(s, cfg);
    char why[512];
    if (!config_validate(cfg, why, sizeof why)) {
        snprintf(err, len, "%s holds an impossible model shape: %s", ckpt_file_path(f), why);
        state_free(s);
        return false;
    }
    params_build_global(global, cfg);
    *want = xcalloc((size_t)global->n * N_GROUPS, sizeof **want);
    bool ok = true;
    for (int i = 0; ok && i < global->n; i++)
        for (int k = 0; ok && k < N_GROUPS; k++) {
            watchdog_alive();
            const ParamTensor *gt = &global->t[i];
            int64_t rows, cols;
            if (!(ok = ckpt_file_shape(f, groups[k], gt->name, &rows, &cols)))
                snprintf(err, len, "%s: tensor %s/%s is missing (an incomplete save?)",
                         ckpt_file_path(f), groups[k], gt->name);
            else if (!(ok = rows == gt->rows && cols == gt->cols))
                snprintf(err, len, "%s: tensor %s/%s has shape (%lld, %lld), expected (%lld, %lld)",
                         ckpt_file_path(f), groups[k], gt->name, (long long)rows, (long long)cols,
                         (long long)gt->rows, (long long)gt->cols);
            else if (!(ok = ckpt_file_get_u64_on(f, groups[k], gt->name, "checksum",
                                                 &(*want)[N_GROUPS * i + k])))
                snprintf(err, len, "%s: tensor %s/%s has no checksum (an incomplete save?)",
                         ckpt_file_path(f), groups[k], gt->name);
        }
    char digest[65] = "";
    if (ok && s->version >= 2) state_digest(s, global, *want, digest);
    if (ok && s->version >= 2 && strcmp(digest, s->digest) != 0) {
        snprintf(err, len, "%s: its step, loader position, options or tensor checksums do not "
                 "match their digest (state_sha256): the file was changed after it was saved; "
                 "use another checkpoint", ckpt_file_path(f));
        ok = false;
    }
    int64_t named = dir ? step_in_name(dir) : -1;
    if (ok && named >= 0 && named != s->step) {
        snprintf(err, len, "%s holds step %lld but its folder is named for step %lld: a renamed "
                 "or modified checkpoint; give the folder its own name or use another",
                 ckpt_file_path(f), (long long)s->step, (long long)named);
        ok = false;
    }
    if (!ok) {
        state_free(s);
        params_free(global);
        free(*want);
        *want = NULL;
    }
    return ok;
}

// ---- verification (every element read once, split over the ranks) ----

// Reads every element of every dataset, each by exactly one rank (an even
// split of its flat range), and checks the sums against want; counts
// non-finite values into *h.  Collective; returns this rank's verdict
// (a read error is known to its rank alone: agree on it afterwards).
static bool verify_data(const Comm *world, CkptFile *f, const ParamTable *global,
                        const uint64_t *want, CheckpointHealth *h, char *err, int len) {
    int W = world->size, r = world->rank;
    size_t n = (size_t)global->n * N_GROUPS;
    uint64_t *sums = xcalloc(n, sizeof *sums);
    int64_t *bad = xcalloc(n, sizeof *bad);
    bool ok = true;
    const int64_t chunk = 1 << 22;
    // Each rank checks its share against the sums it read itself: ranks that
    // see different checkpoints must say so, not "corrupt".
    if (!agree_same_u64(world, hash_bytes(want, n * sizeof *want))) {
        snprintf(err, len, "%s: the ranks read different checkpoints under this name (each "
                 "holds other checksums): every rank must see the same folder", ckpt_file_path(f));
        ok = false;
    }
    float *buf = xmalloc((size_t)chunk * sizeof(float));
    for (int i = 0; ok && i < global->n; i++)
        for (int k = 0; ok && k < N_GROUPS; k++) {
            watchdog_alive();
            const ParamTensor *gt = &global->t[i];
            int64_t total = gt->rows * gt->cols, e0 = total * r / W, e1 = total * (r + 1) / W;
            int64_t rows, cols;
            if (!ckpt_file_shape(f, groups[k], gt->name, &rows, &cols) || rows != gt->rows ||
                cols != gt->cols) {
                snprintf(err, len, "%s: tensor %s/%s has shape (%lld, %lld), expected (%lld, %lld)",
                         ckpt_file_path(f), groups[k], gt->name, (long long)rows, (long long)cols,
                         (long long)gt->rows, (long long)gt->cols);
                ok = false;
            }
            for (int64_t a = e0; ok && a < e1; a += chunk) {
                Slab s[3];
                int64_t m = (a + chunk < e1 ? a + chunk : e1) - a;
                int ns = slabs_of_range(gt->cols, a, a + m, s);
                ok = ckpt_file_read(f, groups[k], gt->name, gt->rows, gt->cols, s, ns, buf, err, len);
                if (!ok) break;
                sums[N_GROUPS * i + k] += ckpt_file_checksum(gt->cols, s, ns, buf);
                for (int64_t j = 0; j < m; j++) bad[N_GROUPS * i + k] += !isfinite(buf[j]);
            }
        }
    free(buf);
    if (all_ok(world, ok)) {
        comm_allreduce(world, sums, n, DTYPE_U64, REDUCE_SUM);
        comm_allreduce(world, bad, n, DTYPE_I64, REDUCE_SUM);
        memset(h, 0, sizeof *h);
        for (size_t j = 0; j < n; j++) {
            if (ok && sums[j] != want[j]) {
                snprintf(err, len, "%s: tensor %s/%s fails its checksum: the file is corrupt or "
                         "incomplete; use an older checkpoint", ckpt_file_path(f),
                         groups[j % N_GROUPS], global->t[j / N_GROUPS].name);
                ok = false;
            }
            h->nonfinite[j % N_GROUPS] += bad[j];
            if (bad[j] && !h->first[0])
                snprintf(h->first, sizeof h->first, "%s/%s", groups[j % N_GROUPS],
                         global->t[j / N_GROUPS].name);
        }
    }
    free(sums);
    free(bad);
    return ok;
}

static long long nonfinite_total(const CheckpointHealth *h) {
    return h->nonfinite[0] + h->nonfinite[1] + h->nonfinite[2];
}

// ---- save ----

// The slabs this rank writes of tensor t's optimizer state: its ZeRO shard,
// or the whole block on data-parallel rank 0; replicated tensors from TP rank 0;
// a tied embedding from the first stage (the last stage's copy is loaded from it).
static int owned_slabs(const CheckpointRun *r, const CheckpointParts *p, const ParamTensor *t,
                       Slab s[3], int64_t *e0) {
    size_t lo, hi;
    int64_t e1;
    if (t->tied_copy || (t->split == SPLIT_NONE && r->grid->tp_rank != 0)) return 0;
    if ((!p->optim || p->optim->zero == 0) && r->grid->replica_rank != 0) return 0;
    shard_range(p, t, &lo, &hi);
    if (!local_range(t, lo, hi, e0, &e1)) return 0;
    return global_slabs(t, *e0, e1, s);
}

// Elements [at, at + n) of the flat buffer of group k to host fp32: the
// optimizer's, or without one the compute weights and zero moments.
static void group_to_host(const CheckpointParts *p, const ParamTensor *t, int k, size_t at,
                          size_t n, float *host) {
    const CheckpointOptimizer *o = p->optim;
    if (o) o->ops->to_host(host, group_buffer(o, k) + shard_index(o, t, at), n * sizeof(float));
    else if (k == 0) p->ops->act_to_host_f32(host, act_at(p->ops, p->weights, at), n);
    else memset(host, 0, n * sizeof(float));
}

// Collective; the verdict is the same on every rank.
static bool save_tensor(const CheckpointRun *r, const CheckpointParts *p, CkptFile *f,
                        const ParamTensor *gt, uint64_t *sums, char *err, int len) {
    const ParamTensor *t = params_find(p->table, gt->name);
    Slab s[3];
    int64_t e0 = 0, n = 0;
    int ns = t ? owned_slabs(r, p, t, s, &e0) : 0;
    for (int i = 0; i < ns; i++) n += s[i].nr * s[i].nc;
    float *host = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    bool ok = true;
    for (int k = 0; ok && k < N_GROUPS; k++) {
        if (n) group_to_host(p, t, k, t->offset + (size_t)e0, (size_t)n, host);
        ok = ckpt_file_write(f, groups[k], gt->name, gt->rows, gt->cols, s, ns, host, err, len);
        sums[k] = ckpt_file_checksum(gt->cols, s, ns, host);
    }
    free(host);
    return ok;
}

// Collective, once every tensor is written: the checksums and the attributes.
static bool save_attributes(const CheckpointRun *r, const CheckpointParts *p, CkptFile *f,
                            const ParamTable *global, uint64_t *sums) {
    comm_allreduce(&r->grid->world, sums, (size_t)global->n * N_GROUPS, DTYPE_U64, REDUCE_SUM);
    bool ok = true;
    for (int i = 0; i < global->n; i++)
        for (int k = 0; k < N_GROUPS; k++)
            ok = ckpt_file_set_u64_on(f, groups[k], global->t[i].name, "checksum",
                                      sums[N_GROUPS * i + k]) && ok;
    State s;
    state_of_parts(r, p, &s);
    s.digest = xmalloc(65);
    state_digest(&s, global, sums, s.digest);
    ok = write_state(f, &s) && ok;
    state_free(&s);
    return ok;
}

// Collective: writes and closes the file.  Returns this rank's verdict.
static bool save_file(const CheckpointRun *r, const CheckpointParts *p, const char *path,
                      char *err, int len) {
    CkptFile *f = ckpt_file_create(comm_mpi(&r->grid->world), path, err, len);
    if (!f) return false;   // on every rank
    ParamTable global;
    params_build_global(&global, p->cfg);
    uint64_t *sums = xcalloc((size_t)global.n * N_GROUPS, sizeof *sums);
    bool ok = true;
    for (int i = 0; ok && i < global.n; i++) {
        watchdog_alive();
        ok = save_tensor(r, p, f, &global.t[i], sums + N_GROUPS * i, err, len);
    }
    if (ok && !(ok = save_attributes(r, p, f, &global, sums)))   // every rank got here
        snprintf(err, len, "writing the checksums and attributes of '%s' failed (disk full?)", path);
    bool closed = ckpt_file_close(f);
    if (ok && !closed) snprintf(err, len, "closing '%s' failed (disk full?)", path);
    free(sums);
    params_free(&global);
    return ok && closed;
}

// Collective: re-reads the closed file (every element once, split over the
// ranks) whatever the MPI-IO layer reported: the attributes and their digest,
// the step, every checksum, and finite values.  Returns this rank's verdict.
static bool verify_saved(const CheckpointRun *r, const CheckpointParts *p, const char *path,
                         char *err, int len) {
    CkptFile *f = ckpt_file_open(path, err, len);
    State s = {0};
    ModelConfig cfg;
    ParamTable global = {0};
    uint64_t *want = NULL;
    int64_t step = p->pos.step;
    bool ok = f && read_verified_state(f, NULL, &s, &cfg, &global, &want, err, len);
    if (ok && (s.step != step || cfg.dim != p->cfg->dim || cfg.n_layers != p->cfg->n_layers)) {
        snprintf(err, len, "'%s' reads back as step %lld of another model", path, (long long)s.step);
        ok = false;
    }
    if (all_ok(&r->grid->world, ok)) {
        CheckpointHealth h;
        ok = verify_data(&r->grid->world, f, &global, want, &h, err, len);
        if (ok && nonfinite_total(&h) > 0) {
            snprintf(err, len, "the weights of step %lld hold %lld non-finite values (NaN or Inf; "
                     "first in %s): the run diverged, and a diverged checkpoint is never saved "
                     "(lower --lr, raise --warmup-steps or set --grad-clip)", (long long)step,
                     nonfinite_total(&h), h.first);
            ok = false;
        }
    }
    if (want) {
        state_free(&s);
        params_free(&global);
        free(want);
    }
    ckpt_file_close(f);
    return ok;
}

// Ends the job after a failed save of step: the temporary folder is removed
// first, so nothing half-written remains and the last good checkpoint is
// untouched.  The lowest failing rank prints the reason.  When HDF5 could not
// close the file, MPI_Finalize would crash in HDF5's clean-up: the job ends by
// MPI_Abort then, after the lock is released.
static void save_failed(const CheckpointRun *r, int64_t step, const char *tmp, bool mine,
                        const char *err) {
    const Grid *g = r->grid;
    if (g->world_rank == 0) ckpt_dir_discard(tmp);
    char msg[16384];
    snprintf(msg, sizeof msg, "saving the checkpoint of step %lld failed: %s; removed '%s', the "
             "earlier checkpoints and 'latest' are as they were", (long long)step, err, tmp);
    if (all_ok(&g->world, !ckpt_file_unclean())) {
        comm_agree(&g->world, mine, msg);   // ends the job: some rank failed
        return;
    }
    if (g->world_rank == 0) ckpt_dir_unlock(r->save_dir);
    int key = mine ? 0 : g->world_size - g->world_rank;   // the lowest failing rank
    comm_allreduce(&g->world, &key, 1, DTYPE_I32, REDUCE_MAX);
    if (g->world_rank == (key ? g->world_size - key : 0)) fatal("%s", msg);
    comm_barrier(&g->world);   // until that rank's MPI_Abort ends the job
}

// Rank 0 locks the folder; every rank must see the file rank 0 writes there:
// on each node's own disk, each rank would write its own part of a
// checkpoint (none complete), and where the folder is missing the collective
// file creation waits for ranks that gave up.
void checkpoint_claim(const CheckpointRun *r) {
    if (session.claimed) return;
    char note[1024] = "", err[8192] = "";
    bool ok = r->grid->world_rank != 0 ||
              ckpt_dir_lock(r->save_dir, note, sizeof note, err, sizeof err);
    comm_agree(&r->grid->world, ok, err);
    if (note[0]) info("%s", note);
    session.claimed = true;
    agree_folder_shared(&r->grid->world, "--save-dir", r->save_dir, "checkpoints need a folder "
                        "that every rank shares (a parallel or network file system, the same "
                        "path on every node); give such a --save-dir");
}

void checkpoint_release(const CheckpointRun *r) {
    if (!session.claimed) return;
    comm_barrier(&r->grid->world);
    if (r->grid->world_rank == 0) ckpt_dir_unlock(r->save_dir);
    session.claimed = false;
}

// Moves the checkpoints newer than the run's starting step aside (once).
static void abandon_newer(const CheckpointRun *r) {
    checkpoint_claim(r);
    session.started = true;
    char moved[2048] = "", err[8192] = "";
    int n = r->grid->world_rank != 0 ? 0
          : ckpt_dir_abandon_newer(r->save_dir, session.start_step, moved, sizeof moved, err,
                                   sizeof err);
    comm_agree(&r->grid->world, n >= 0, err);
    if (n > 0)
        info("this run continues from step %lld, so the newer checkpoint%s %s in %s belong%s to an "
             "abandoned run: moved aside as abandoned_<name>_<time> (kept; --load auto skips them)",
             (long long)session.start_step, n > 1 ? "s" : "", moved, r->save_dir,
             n > 1 ? "" : "s");
}

void checkpoint_start(const CheckpointRun *r, int64_t step) {
    if (session.started || !r->writes_dir) return;
    session.start_step = step;
    abandon_newer(r);
}

static void prune(const CheckpointRun *r) {
    if (r->grid->world_rank != 0) return;
    const char *keep[2] = {session.saved, session.loaded};
    ckpt_dir_prune(r->save_dir, r->keep_checkpoints, keep, 2);
}

// Whether final, the folder a save of step writes, is the checkpoint this
// run loaded (the same step of this folder).
static bool saves_loaded(int64_t step, const char *final) {
    return session.loaded[0] && step == session.start_step && file_kind_same(final, session.loaded);
}

// Saving the step this run loaded from this folder, with the position it
// loaded: that checkpoint stays as it is and becomes "latest" again.  True
// when that was the case.  A position moved since (a rollback past a data
// window) is saved again: kept, the folder would send a requeue back into
// the window.
static bool keep_loaded(const CheckpointRun *r, int64_t step, const char *final) {
    int same = r->grid->world_rank == 0 && !session.moved && saves_loaded(step, final);
    comm_broadcast(&r->grid->world, &same, 1, DTYPE_I32, 0);
    if (!same) return false;
    char err[8192] = "";
    bool ok = r->grid->world_rank != 0 ||
              ckpt_dir_point_latest(r->save_dir, final, err, sizeof err);
    comm_agree(&r->grid->world, ok, err);
    snprintf(session.saved, sizeof session.saved, "%s", final);
    prune(r);
    info("step %lld is the checkpoint this run loaded, %s: kept as it is", (long long)step, final);
    return true;
}

// Collective: writes p to tmp/checkpoint.h5, syncs and re-reads it.  Ends the
// job (tmp removed) when any of it failed.
static void write_verified(const CheckpointRun *r, const CheckpointParts *p, const char *tmp) {
    char path[4300], err[8192] = "";
    const Comm *world = &r->grid->world;
    bool ok = r->grid->world_rank != 0 || ckpt_dir_prepare(tmp, err, sizeof err);
    comm_agree(world, ok, err);
    ckpt_dir_file(tmp, path, sizeof path);
    ok = save_file(r, p, path, err, sizeof err);
    if (all_ok(world, ok)) ok = ckpt_file_sync(path, err, sizeof err);   // each rank's node
    if (all_ok(world, ok) && !(ok = verify_saved(r, p, path, err, sizeof err))) {
        char why[8192];
        snprintf(why, sizeof why, "it does not read back complete and correct (%.7000s)", err);
        snprintf(err, sizeof err, "%s", why);
    }
    if (!all_ok(world, ok)) save_failed(r, p->pos.step, tmp, ok, err);
}

void checkpoint_save(const CheckpointRun *r, const CheckpointParts *p) {
    char tmp[4200], final[4200], err[8192] = "";
    double t0 = now_seconds();
    int64_t step = p->pos.step;
    if (!session.started) abandon_newer(r);
    ckpt_dir_name(r->save_dir, step, true, tmp, sizeof tmp);
    ckpt_dir_name(r->save_dir, step, false, final, sizeof final);
    if (keep_loaded(r, step, final)) return;
    bool again = session.moved && saves_loaded(step, final);
    info("saving checkpoint %s%s", final,
         again ? " again: a rollback moved the data position past the samples it skipped" : "");
    write_verified(r, p, tmp);
    bool ok = r->grid->world_rank != 0 || ckpt_dir_commit(r->save_dir, tmp, final, err, sizeof err);
    if (!all_ok(&r->grid->world, ok)) save_failed(r, step, tmp, ok, err);
    snprintf(session.saved, sizeof session.saved, "%s", final);
    prune(r);
    comm_barrier(&r->grid->world);
    double seconds = now_seconds() - t0, bytes = 3.0 * 4.0 * (double)config_params_total(p->cfg);
    info("saved checkpoint %s (%.3f GB written and verified in %.2f s, %.3f GB/s)", final,
         bytes / 1e9, seconds, bytes / 1e9 / seconds);
}

// ---- load ----

bool checkpoint_resolve(const CheckpointRun *r, const char *load, char *dir, int len) {
    if (strcmp(load, "auto") == 0) return checkpoint_newest(r, dir, len);
    if (r->writes_dir) checkpoint_claim(r);
    char msg[9000], probe[4300];
    snprintf(dir, (size_t)len, "%s", load);
    ckpt_dir_file(load, probe, sizeof probe);
    bool ok = ckpt_dir_exists(load);
    if (!ok) snprintf(msg, sizeof msg, "--load %s: no such checkpoint folder", load);
    else if (ckpt_dir_is_unfinished(load) && (ok = false, true))
        snprintf(msg, sizeof msg, "--load %s is an unfinished save (a .tmp folder: never "
                 "verified, and removed by the next save); load a step_N folder", load);
    else if (access(probe, F_OK) != 0 && (ok = false, true))
        snprintf(msg, sizeof msg, "--load %s holds no checkpoint.h5%s", load,
                 ckpt_dir_is_empty(load, probe, sizeof probe) ? ""
                 : ": a --save-dir? give --load auto --save-dir it (its newest complete "
                   "checkpoint), or one of its step_N folders");
    comm_agree(&r->grid->world, ok, msg);
    return true;
}

bool checkpoint_newest(const CheckpointRun *r, char *dir, int len) {
    if (r->writes_dir) checkpoint_claim(r);
    char **dirs;
    int n = r->grid->world_rank == 0 ? ckpt_dir_list(r->save_dir, &dirs) : 0;
    char chosen[4200] = "";
    if (n > 0) snprintf(chosen, sizeof chosen, "%s", dirs[0]);
    if (r->grid->world_rank == 0) ckpt_dir_list_free(dirs, n);
    char latest[256] = "";
    if (r->grid->world_rank == 0) ckpt_dir_latest(r->save_dir, latest, sizeof latest);
    const char *base = strrchr(chosen, '/');
    if (latest[0] && base && strcmp(base + 1, latest) != 0 &&
        ckpt_dir_step_of(chosen) > ckpt_dir_step_of(latest))
        info("note: %s/latest names %s, but %s is a newer complete checkpoint (a save stopped "
             "before it updated latest): loading %s", r->save_dir, latest, base + 1, base + 1);
    comm_broadcast(&r->grid->world, chosen, sizeof chosen, DTYPE_U8, 0);
    snprintf(dir, (size_t)len, "%s", chosen);
    return chosen[0] != 0;
}

// The checkpoint holds this model: err says why not.
static bool check_shape(const ModelConfig *c, const ModelConfig *k, const char *path, char *err,
                        int len) {
    if (k->dim == c->dim && k->n_layers == c->n_layers && k->n_heads == c->n_heads &&
        k->n_kv_heads == c->n_kv_heads && k->ffn_dim == c->ffn_dim && k->vocab_size == c->vocab_size &&
        k->tie_embeddings == c->tie_embeddings)
        return true;
    if (k->tie_embeddings != c->tie_embeddings) {
        snprintf(err, len, "%s holds a model whose LM head is %s, but %s's is %s: give the "
                 "checkpoint's model (-c, with or without --tie-embeddings)", path,
                 k->tie_embeddings ? "tied to the embedding" : "a tensor of its own", c->name,
                 c->tie_embeddings ? "tied to the embedding" : "a tensor of its own");
        return false;
    }
    snprintf(err, len, "%s holds a model of dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d, "
             "not %s (dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d)", path, k->dim,
             k->n_layers, k->n_heads, k->n_kv_heads, k->ffn_dim, k->vocab_size, c->name, c->dim,
             c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab_size);
    return false;
}

static bool same_value(double a, double b) {
    return fabs(a - b) <= 1e-12 * fmax(fabs(a), fabs(b));
}

// Another RoPE scaling, like another rope_theta: refused unless
// --override-checkpoint-config.
static bool check_scaling(const CheckpointParts *p, const ModelConfig *k, const char *path,
                          char *err, int len) {
    const ModelConfig *c = p->cfg;
    if (config_rope_scaling_equal(&k->rope_scaling, &c->rope_scaling)) return true;
    char saved[256], now[256];
    config_rope_scaling_describe(&k->rope_scaling, saved, sizeof saved);
    config_rope_scaling_describe(&c->rope_scaling, now, sizeof now);
    if (!p->override_config) {
        snprintf(err, len, "%s was trained with RoPE scaling %s but the model %s has RoPE scaling "
                 "%s: give the checkpoint's model (-c), or add --override-checkpoint-config to "
                 "continue with %s", path, saved, c->name, now, now);
        return false;
    }
    info("--override-checkpoint-config: RoPE scaling %s of %s replaced by the model's %s", saved,
         path, now);
    return true;
}

// The fields that change no tensor's shape but what the weights compute:
// another rope_theta, RoPE scaling or norm_eps is refused unless --override-checkpoint-config
// (the model's values are used, and said so); another max_seq_len, which no
// weight depends on, is said.
static bool check_fields(const CheckpointParts *p, const ModelConfig *k, const char *path,
                         char *err, int len) {
    const ModelConfig *c = p->cfg;
    const char *names[2] = {"rope_theta", "norm_eps"};
    double saved[2] = {k->rope_theta, k->norm_eps}, now[2] = {c->rope_theta, c->norm_eps};
    for (int i = 0; i < 2; i++) {
        if (same_value(saved[i], now[i])) continue;
        if (!p->override_config) {
            snprintf(err, len, "%s was trained with %s %g but the model %s has %s %g: give the "
                     "checkpoint's model (-c), or add --override-checkpoint-config to continue "
                     "with %g", path, names[i], saved[i], c->name, names[i], now[i], now[i]);
            return false;
        }
        info("--override-checkpoint-config: %s %g of %s replaced by the model's %g", names[i],
             saved[i], path, now[i]);
    }
    if (!check_scaling(p, k, path, err, len)) return false;
    if (k->max_seq_len != c->max_seq_len)
        info("note: %s was saved by a model with max_seq_len %d, this run's has %d (no weight "
             "depends on it)", path, k->max_seq_len, c->max_seq_len);
    return true;
}

// The checkpoint continues this run's data: same tokenizer and seed.
static bool check_run(const CheckpointParts *p, const State *s, const char *path, char *err,
                      int len) {
    const char *data_tok = p->tokenizer_sha256 ? p->tokenizer_sha256 : "";
    if (s->tokenizer && s->tokenizer[0] && data_tok[0] && strcmp(s->tokenizer, data_tok) != 0)
        snprintf(err, len, "%s was trained on data of another tokenizer (sha256 %.12s…) than "
                 "--dataset (%.12s…)", path, s->tokenizer, data_tok);
    else if (s->seed >= 0 && (uint64_t)s->seed != p->seed)   // imports carry seed -1
        snprintf(err, len, "%s was saved by a run with --seed %lld; resume with the same seed "
                 "so the data order continues", path, (long long)s->seed);
    else return true;
    return false;
}

// Reads local elements [e0, e1) of tensor p of group k to device memory dst.
static bool read_range(const Ops *ops, CkptFile *f, int k, const ParamTensor *p, int64_t e0,
                       int64_t e1, float *dst, char *err, int len) {
    Slab s[3];
    int ns = global_slabs(p, e0, e1, s);
    float *host = xmalloc((size_t)(e1 - e0) * sizeof(float));
    bool ok = ckpt_file_read(f, groups[k], p->name, p->rows, p->cols, s, ns, host, err, len);
    if (ok) ops->to_device(dst, host, (size_t)(e1 - e0) * sizeof(float));
    free(host);
    return ok;
}

// Compute weights: each tensor's whole local block from the master weights
// (ZeRO-3: no full compute weights; the master weights are loaded, and the
// compute shard follows them).
static bool load_weights(const CheckpointParts *parts, CkptFile *f, char *err, int len) {
    bool ok = true;
    if (!parts->weights) return true;
    for (int i = 0; ok && i < parts->table->n; i++) {
        watchdog_alive();
        const ParamTensor *p = &parts->table->t[i];
        float *host = xcalloc(p->numel, sizeof(float));
        Slab s[3];
        int ns = global_slabs(p, 0, p->valid_rows * p->local_cols, s);
        ok = ckpt_file_read(f, "master", p->name, p->rows, p->cols, s, ns, host, err, len);
        if (ok) parts->ops->act_from_host_f32(act_at(parts->ops, parts->weights, p->offset), host,
                                              p->numel);
        free(host);
    }
    return ok;
}

// Optimizer state over this rank's shard (whatever layout saved it).
static bool load_optimizer(const CheckpointParts *parts, CkptFile *f, char *err, int len) {
    const CheckpointOptimizer *o = parts->optim;
    o->ops->zero(o->m, o->layout->len * sizeof(float));
    o->ops->zero(o->v, o->layout->len * sizeof(float));
    bool ok = true;
    for (int i = 0; ok && i < parts->table->n; i++) {
        watchdog_alive();
        const ParamTensor *p = &parts->table->t[i];
        int64_t e0, e1;
        size_t lo, hi;
        shard_range(parts, p, &lo, &hi);
        if (!local_range(p, lo, hi, &e0, &e1)) continue;
        for (int k = o->master_is_weights ? 1 : 0; ok && k < N_GROUPS; k++)
            ok = read_range(o->ops, f, k, p, e0, e1,
                            group_buffer(o, k) + shard_index(o, p, p->offset + (size_t)e0), err, len);
    }
    return ok;
}

// Opens dir's file and checks that it can be loaded into parts (the digest
// and folder name, the model, with pos the data and seed, every checksum,
// finite values): fatal when not.  *s: its attributes.
static CkptFile *open_checked(const CheckpointRun *r, const CheckpointParts *parts,
                              const char *dir, bool weights_only, State *s) {
    char path[4300], err[8192] = "";
    const Comm *world = &r->grid->world;
    ckpt_dir_file(dir, path, sizeof path);
    CkptFile *f = ckpt_file_open(path, err, sizeof err);
    comm_agree(world, f != NULL, err);
    ModelConfig cfg;
    ParamTable global;
    uint64_t *want;
    comm_agree(world, read_verified_state(f, dir, s, &cfg, &global, &want, err, sizeof err), err);
    comm_agree(world, check_shape(parts->cfg, &cfg, path, err, sizeof err), err);
    comm_agree(world, check_fields(parts, &cfg, path, err, sizeof err), err);
    comm_agree(world, weights_only || check_run(parts, s, path, err, sizeof err), err);
    CheckpointHealth h;
    comm_agree(world, verify_data(world, f, &global, want, &h, err, sizeof err), err);
    if (nonfinite_total(&h) > 0)
        snprintf(err, sizeof err, "%s holds %lld non-finite values (NaN or Inf; first in %s): the "
                 "run that saved it had diverged; load an older checkpoint", path,
                 nonfinite_total(&h), h.first);
    comm_agree(world, nonfinite_total(&h) == 0, err);
    params_free(&global);
    free(want);
    return f;
}

// Loads dir into parts; with pos (not weights only) the optimizer state too,
// and the position into *pos.
static void load(const CheckpointRun *r, const CheckpointParts *parts, const char *dir,
                 CheckpointPosition *pos) {
    char err[8192] = "";
    double t0 = now_seconds();
    State s;
    CkptFile *f = open_checked(r, parts, dir, pos == NULL, &s);
    bool ok = load_weights(parts, f, err, sizeof err) &&
              (!pos || !parts->optim || load_optimizer(parts, f, err, sizeof err));
    comm_agree(&r->grid->world, ok, err);
    if (s.version == 1)
        info("note: %s is a format-1 checkpoint: its step, loader position and options carry no "
             "checksum (checkpoints saved from now on do)", dir);
    if (pos) {
        *pos = (CheckpointPosition){s.step, s.optimizer_step, s.loader, s.loader_len,
                                    s.loader_data, s.options};
        s.loader = NULL;   // now pos's
        s.loader_data = NULL;
        s.options = NULL;
    }
    int64_t step = s.step;
    state_free(&s);
    ckpt_file_close(f);
    double seconds = now_seconds() - t0, bytes = 3.0 * 4.0 * (double)config_params_total(parts->cfg);
    info("loaded checkpoint %s at step %lld (%.3f GB verified and read in %.2f s)", dir,
         (long long)step, bytes / 1e9, seconds);
    if (!pos) return;
    snprintf(session.loaded, sizeof session.loaded, "%s", dir);
    session.start_step = step;
    session.moved = false;
    if (!session.started && r->writes_dir) abandon_newer(r);
}

void checkpoint_load(const CheckpointRun *r, CheckpointParts *p, const char *dir) {
    load(r, p, dir, &p->pos);
}

void checkpoint_mark_moved(void) { session.moved = true; }

void checkpoint_load_weights(const CheckpointRun *r, const CheckpointParts *p, const char *dir) {
    load(r, p, dir, NULL);
}

void checkpoint_position_free(CheckpointPosition *pos) {
    free(pos->loader);
    free(pos->loader_data);
    free(pos->options);
    pos->options = NULL;
    pos->loader = NULL;
    pos->loader_len = 0;
    pos->loader_data = NULL;
}

// Why dir holds no checkpoint file, when it is something else a user may
// give for one: the file itself, or a --save-dir.  False when neither.
static bool not_a_checkpoint_folder(const char *dir, const char *file, char *err, int err_len) {
    struct stat st;
    if (stat(dir, &st) == 0 && S_ISREG(st.st_mode)) {
        snprintf(err, err_len, "%s is a file: give the checkpoint folder that holds it", dir);
        return true;
    }
    if (access(file, F_OK) == 0) return false;
    char **dirs;
    int n = ckpt_dir_list(dir, &dirs);
    if (n > 0)
        snprintf(err, err_len, "%s is a checkpoint folder (--save-dir), not a checkpoint: give one "
                 "of its step_N folders (the newest complete: %s)", dir, dirs[0]);
    ckpt_dir_list_free(dirs, n);
    return n > 0;
}

bool checkpoint_info(const char *dir, CheckpointInfo *ci, char *err, int err_len) {
    char path[4300];
    ckpt_dir_file(dir, path, sizeof path);
    memset(ci, 0, sizeof *ci);
    if (not_a_checkpoint_folder(dir, path, err, err_len)) return false;
    CkptFile *f = ckpt_file_open(path, err, err_len);
    if (!f) return false;
    State s;
    ParamTable global;
    uint64_t *want;
    bool ok = read_verified_state(f, dir, &s, &ci->cfg, &global, &want, err, err_len);
    if (ok) {
        ci->format = s.version;
        ci->step = s.step;
        ci->seed = s.seed;
        memcpy(ci->layout, s.layout, sizeof ci->layout);
        snprintf(ci->tokenizer_sha256, sizeof ci->tokenizer_sha256, "%s", s.tokenizer ? s.tokenizer : "");
        ci->options = s.options ? xstrdup(s.options) : NULL;
        ci->pos = (CheckpointPosition){s.step, s.optimizer_step, s.loader, s.loader_len,
                                       s.loader_data, NULL};   // the options: ci->options
        s.loader = NULL;   // now ci's
        s.loader_data = NULL;
        state_free(&s);
        params_free(&global);
        free(want);
    }
    ckpt_file_close(f);
    return ok;
}

void checkpoint_info_free(CheckpointInfo *ci) {
    free(ci->options);
    ci->options = NULL;
    checkpoint_position_free(&ci->pos);
}

void checkpoint_verify(const Comm *world, const char *dir, CheckpointHealth *h) {
    char path[4300], err[8192] = "";
    ckpt_dir_file(dir, path, sizeof path);
    CkptFile *f = ckpt_file_open(path, err, sizeof err);
    comm_agree(world, f != NULL, err);
    State s;
    ModelConfig cfg;
    ParamTable global;
    uint64_t *want;
    comm_agree(world, read_verified_state(f, dir, &s, &cfg, &global, &want, err, sizeof err), err);
    comm_agree(world, verify_data(world, f, &global, want, h, err, sizeof err), err);
    state_free(&s);
    params_free(&global);
    free(want);
    ckpt_file_close(f);
}
