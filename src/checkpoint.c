#include "checkpoint.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ckpt_dir.h"
#include "ckpt_file.h"
#include "rng.h"
#include "util.h"

#define FORMAT "llama-hpc checkpoint 1"
#define N_GROUPS 3
static const char *const groups[N_GROUPS] = {"master", "adam_m", "adam_v"};

// The fp32 buffer of group k over this rank's optimizer shard (device memory).
static float *group_buffer(const Optimizer *o, int k) {
    return k == 0 ? o->master : k == 1 ? o->m1 : o->m2;
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

// Order-independent checksum of the elements of a (rows, cols) tensor held in
// slabs: Σ mix(global index, value bits), so ranks can add their parts.
static uint64_t slab_checksum(int64_t cols, const Slab *s, int n, const float *data) {
    uint64_t sum = 0;
    for (int i = 0; i < n; i++)
        for (int64_t r = 0; r < s[i].nr; r++)
            for (int64_t c = 0; c < s[i].nc; c++) {
                uint32_t bits;
                memcpy(&bits, data++, sizeof bits);
                uint64_t k = (uint64_t)((s[i].r0 + r) * cols + s[i].c0 + c);
                sum += rng_mix(k * 0x9e3779b97f4a7c15ULL ^ bits);
            }
    return sum;
}

// ---- save ----

// The slabs this rank writes of tensor p's optimizer state: its ZeRO shard,
// or the whole block on data-parallel rank 0; replicated tensors from TP rank 0.
static int owned_slabs(const Trainer *t, const ParamTensor *p, Slab s[3], int64_t *e0) {
    const Optimizer *o = t->optim;
    int64_t e1;
    if (p->split == SPLIT_NONE && t->grid.tp_rank != 0) return 0;
    if (o->cfg.zero == 0 && t->grid.dp_rank != 0) return 0;
    if (!local_range(p, o->shard_begin, o->shard_begin + o->shard_len, e0, &e1)) return 0;
    return global_slabs(p, *e0, e1, s);
}

static void save_tensor(Trainer *t, CkptFile *f, const ParamTensor *gt, uint64_t *sums) {
    const ParamTensor *p = params_find(&t->model->table, gt->name);
    Slab s[3];
    int64_t e0 = 0, n = 0;
    int ns = p ? owned_slabs(t, p, s, &e0) : 0;
    for (int i = 0; i < ns; i++) n += s[i].nr * s[i].nc;
    float *host = xmalloc((size_t)(n ? n : 1) * sizeof(float));
    for (int k = 0; k < N_GROUPS; k++) {
        if (n) ops->to_host(host, group_buffer(t->optim, k) + p->offset + e0 - t->optim->shard_begin,
                            (size_t)n * sizeof(float));
        char err[1024];
        if (!ckpt_file_write(f, groups[k], gt->name, gt->rows, gt->cols, s, ns, host, err, sizeof err))
            fatal("saving checkpoint: %s", err);
        sums[k] = slab_checksum(gt->cols, s, ns, host);
    }
    free(host);
}

static void save_attributes(Trainer *t, CkptFile *f) {
    const ModelConfig *c = &t->cfg;
    int64_t shape[7] = {c->dim, c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab_size,
                        c->max_seq_len};
    int64_t layout[4] = {t->grid.dp, t->grid.tp, t->grid.pp, t->optim->cfg.zero};
    int64_t step = t->step, seed = t->opt.seed == UINT64_MAX ? -1 : (int64_t)t->opt.seed, loader[1 + LOADER_MAX_SOURCES];
    loader[0] = (int64_t)t->state.consumed;
    for (int i = 0; i < LOADER_MAX_SOURCES; i++) loader[1 + i] = (int64_t)t->state.source_consumed[i];
    char *options = xmalloc(65536);
    options_format(&t->opt, options, 65536);
    bool ok = ckpt_file_set_str(f, "format", FORMAT) && ckpt_file_set_i64(f, "step", &step, 1) &&
              ckpt_file_set_i64(f, "seed", &seed, 1) &&
              ckpt_file_set_i64(f, "loader", loader, 1 + LOADER_MAX_SOURCES) &&
              ckpt_file_set_i64(f, "model_shape", shape, 7) &&
              ckpt_file_set_f64(f, "rope_theta", c->rope_theta) &&
              ckpt_file_set_f64(f, "norm_eps", c->norm_eps) &&
              ckpt_file_set_str(f, "model_name", c->name) &&
              ckpt_file_set_i64(f, "layout", layout, 4) && ckpt_file_set_str(f, "options", options) &&
              ckpt_file_set_str(f, "tokenizer_sha256", t->train ? loader_tokenizer_sha256(t->train) : "");
    free(options);
    if (!ok) fatal("saving checkpoint: writing attributes to %s failed", ckpt_file_path(f));
}

static void save_file(Trainer *t, const char *path) {
    char err[1024];
    CkptFile *f = ckpt_file_create(t->grid.world.mpi, path, err, sizeof err);
    if (!f) fatal("saving checkpoint: %s", err);
    ParamTable global;
    params_build_global(&global, &t->cfg);
    uint64_t *sums = xcalloc((size_t)global.n * N_GROUPS, sizeof *sums);
    for (int i = 0; i < global.n; i++) save_tensor(t, f, &global.t[i], sums + N_GROUPS * i);
    comm_allreduce(&t->grid.world, sums, (size_t)global.n * N_GROUPS, DTYPE_U64, REDUCE_SUM);
    for (int i = 0; i < global.n; i++)
        for (int k = 0; k < N_GROUPS; k++)
            if (!ckpt_file_set_u64_on(f, groups[k], global.t[i].name, "checksum", sums[N_GROUPS * i + k]))
                fatal("saving checkpoint: cannot write the checksum of %s", global.t[i].name);
    save_attributes(t, f);
    free(sums);
    params_free(&global);
    if (!ckpt_file_close(f)) fatal("saving checkpoint: closing %s failed (disk full?)", path);
}

void checkpoint_save(Trainer *t) {
    char tmp[4200], final[4200], path[4300], err[1024];
    double t0 = now_seconds();
    ckpt_dir_name(t->opt.save_dir, t->step, true, tmp, sizeof tmp);
    ckpt_dir_name(t->opt.save_dir, t->step, false, final, sizeof final);
    info("saving checkpoint %s", final);
    bool ok = t->grid.world_rank != 0 || ckpt_dir_prepare(tmp, err, sizeof err);
    comm_agree(&t->grid.world, ok, err);
    snprintf(path, sizeof path, "%s/checkpoint.h5", tmp);
    save_file(t, path);
    comm_barrier(&t->grid.world);   // every rank's data is in the file
    ok = t->grid.world_rank != 0 || ckpt_dir_commit(t->opt.save_dir, tmp, final, err, sizeof err);
    comm_agree(&t->grid.world, ok, err);
    if (t->grid.world_rank == 0 && t->opt.keep_checkpoints > 0)
        ckpt_dir_prune(t->opt.save_dir, t->opt.keep_checkpoints);
    comm_barrier(&t->grid.world);
    double seconds = now_seconds() - t0, bytes = 3.0 * 4.0 * (double)config_params_total(&t->cfg);
    info("saved checkpoint %s (%.3f GB in %.2f s, %.3f GB/s)", final, bytes / 1e9, seconds,
         bytes / 1e9 / seconds);
}

// ---- load ----

bool checkpoint_resolve(const Trainer *t, char *dir, int len) {
    const char *load = t->opt.load;
    if (strcmp(load, "auto") != 0) {
        char probe[4300];
        snprintf(probe, sizeof probe, "%s/checkpoint.h5", load);
        bool ok = ckpt_dir_exists(load);
        snprintf(dir, (size_t)len, "%s", load);
        char msg[4400];
        snprintf(msg, sizeof msg, "--load %s: no such checkpoint folder", load);
        comm_agree(&t->grid.world, ok, msg);
        return true;
    }
    char **dirs;
    int n = t->grid.world_rank == 0 ? ckpt_dir_list(t->opt.save_dir, &dirs) : 0;
    char chosen[4200] = "";
    if (n > 0) snprintf(chosen, sizeof chosen, "%s", dirs[0]);
    if (t->grid.world_rank == 0) ckpt_dir_list_free(dirs, n);
    comm_broadcast(&t->grid.world, chosen, sizeof chosen, DTYPE_U8, 0);
    snprintf(dir, (size_t)len, "%s", chosen);
    return chosen[0] != 0;
}

// Checks the checkpoint describes this model and run; err says why not.
static bool check_compatible(const Trainer *t, CkptFile *f, char *err, int len) {
    const ModelConfig *c = &t->cfg;
    int64_t shape[7], seed;
    char *format = ckpt_file_get_str(f, "format");
    char *tok = ckpt_file_get_str(f, "tokenizer_sha256");
    bool ok = false;
    const char *data_tok = t->train ? loader_tokenizer_sha256(t->train) : "";
    if (!format || strcmp(format, FORMAT) != 0 || !ckpt_file_get_i64(f, "model_shape", shape, 7) ||
        !ckpt_file_get_i64(f, "seed", &seed, 1))
        snprintf(err, len, "%s is not a complete llama-hpc checkpoint", ckpt_file_path(f));
    else if (shape[0] != c->dim || shape[1] != c->n_layers || shape[2] != c->n_heads ||
             shape[3] != c->n_kv_heads || shape[4] != c->ffn_dim || shape[5] != c->vocab_size)
        snprintf(err, len, "%s holds a model of dim %lld, %lld layers, %lld heads (%lld KV), FFN "
                 "%lld, vocab %lld, not %s (dim %d, %d layers, %d heads (%d KV), FFN %d, vocab "
                 "%d)", ckpt_file_path(f), (long long)shape[0], (long long)shape[1],
                 (long long)shape[2], (long long)shape[3], (long long)shape[4],
                 (long long)shape[5], c->name, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
                 c->ffn_dim, c->vocab_size);
    else if (tok && tok[0] && data_tok[0] && strcmp(tok, data_tok) != 0)
        snprintf(err, len, "%s was trained on data of another tokenizer (sha256 %.12s…) than "
                 "--dataset (%.12s…)", ckpt_file_path(f), tok, data_tok);
    else if (seed >= 0 && (uint64_t)seed != t->opt.seed)   // imports carry seed -1
        snprintf(err, len, "%s was saved by a run with --seed %lld; resume with the same seed "
                 "so the data order continues", ckpt_file_path(f), (long long)seed);
    else ok = true;
    free(format);
    free(tok);
    return ok;
}

// Every element of every dataset is read by exactly one rank (an even split
// of its flat range) and checked against the stored checksums.
static bool verify_checksums(const Comm *world, CkptFile *f, const ParamTable *global, char *err,
                             int len) {
    int W = world->size, r = world->rank;
    size_t n = (size_t)global->n * N_GROUPS;
    uint64_t *sums = xcalloc(n, sizeof *sums), *want = xcalloc(n, sizeof *want);
    bool ok = true;
    const int64_t chunk = 1 << 22;
    float *buf = xmalloc((size_t)chunk * sizeof(float));
    for (int i = 0; ok && i < global->n; i++)
        for (int k = 0; ok && k < N_GROUPS; k++) {
            const ParamTensor *gt = &global->t[i];
            int64_t total = gt->rows * gt->cols, e0 = total * r / W, e1 = total * (r + 1) / W;
            int64_t rows, cols;
            ok = ckpt_file_shape(f, groups[k], gt->name, &rows, &cols);
            if (!ok) snprintf(err, len, "%s: tensor %s/%s is missing", ckpt_file_path(f), groups[k],
                              gt->name);
            else if (rows != gt->rows || cols != gt->cols) {
                snprintf(err, len, "%s: tensor %s/%s has shape (%lld, %lld), expected (%lld, %lld)",
                         ckpt_file_path(f), groups[k], gt->name, (long long)rows, (long long)cols,
                         (long long)gt->rows, (long long)gt->cols);
                ok = false;
            } else if (!(ok = ckpt_file_get_u64_on(f, groups[k], gt->name, "checksum",
                                                   &want[N_GROUPS * i + k])))
                snprintf(err, len, "%s: tensor %s/%s has no checksum (an incomplete save?)",
                         ckpt_file_path(f), groups[k], gt->name);
            for (int64_t a = e0; ok && a < e1; a += chunk) {
                Slab s[3];
                int ns = slabs_of_range(gt->cols, a, a + chunk < e1 ? a + chunk : e1, s);
                ok = ckpt_file_read(f, groups[k], gt->name, gt->rows, gt->cols, s, ns, buf, err, len);
                if (ok) sums[N_GROUPS * i + k] += slab_checksum(gt->cols, s, ns, buf);
            }
        }
    free(buf);
    comm_agree(world, ok, err);
    comm_allreduce(world, sums, n, DTYPE_U64, REDUCE_SUM);
    for (size_t j = 0; ok && j < n; j++)
        if (sums[j] != want[j]) {
            snprintf(err, len, "%s: tensor %s/%s fails its checksum: the file is corrupt; use an "
                     "older checkpoint", ckpt_file_path(f), groups[j % N_GROUPS],
                     global->t[j / N_GROUPS].name);
            ok = false;
        }
    free(sums);
    free(want);
    return ok;
}

// Reads local elements [e0, e1) of tensor p of group k to device memory dst.
static bool read_range(CkptFile *f, int k, const ParamTensor *p, int64_t e0, int64_t e1,
                       float *dst, char *err, int len) {
    Slab s[3];
    int ns = global_slabs(p, e0, e1, s);
    float *host = xmalloc((size_t)(e1 - e0) * sizeof(float));
    bool ok = ckpt_file_read(f, groups[k], p->name, p->rows, p->cols, s, ns, host, err, len);
    if (ok) ops->to_device(dst, host, (size_t)(e1 - e0) * sizeof(float));
    free(host);
    return ok;
}

// Compute weights: each tensor's whole local block from the master weights.
static bool load_weights(Trainer *t, CkptFile *f, char *err, int len) {
    Model *m = t->model;
    bool ok = true;
    for (int i = 0; ok && i < m->table.n; i++) {
        const ParamTensor *p = &m->table.t[i];
        float *host = xcalloc(p->numel, sizeof(float));
        Slab s[3];
        int ns = global_slabs(p, 0, p->valid_rows * p->local_cols, s);
        ok = ckpt_file_read(f, "master", p->name, p->rows, p->cols, s, ns, host, err, len);
        if (ok) ops->act_from_host_f32(model_param(m, p), host, p->numel);
        free(host);
    }
    return ok;
}

// Optimizer state over this rank's shard (whatever layout saved it).
static bool load_optimizer(Trainer *t, CkptFile *f, char *err, int len) {
    Optimizer *o = t->optim;
    ops->zero(o->m1, o->shard_len * sizeof(float));
    ops->zero(o->m2, o->shard_len * sizeof(float));
    bool ok = true;
    for (int i = 0; ok && i < t->model->table.n; i++) {
        const ParamTensor *p = &t->model->table.t[i];
        int64_t e0, e1;
        if (!local_range(p, o->shard_begin, o->shard_begin + o->shard_len, &e0, &e1)) continue;
        for (int k = o->master_owned ? 0 : 1; ok && k < N_GROUPS; k++)
            ok = read_range(f, k, p, e0, e1, group_buffer(o, k) + p->offset + e0 - o->shard_begin,
                            err, len);
    }
    return ok;
}

static void load_state(Trainer *t, CkptFile *f) {
    int64_t step, loader[1 + LOADER_MAX_SOURCES];
    bool ok = ckpt_file_get_i64(f, "step", &step, 1) &&
              ckpt_file_get_i64(f, "loader", loader, 1 + LOADER_MAX_SOURCES);
    char msg[512];
    snprintf(msg, sizeof msg, "%s lacks the step or loader position", ckpt_file_path(f));
    comm_agree(&t->grid.world, ok, msg);
    t->step = step;
    t->optim->step = step;
    t->state.consumed = (uint64_t)loader[0];
    for (int i = 0; i < LOADER_MAX_SOURCES; i++) t->state.source_consumed[i] = (uint64_t)loader[1 + i];
}

static void load(Trainer *t, const char *dir, bool weights_only) {
    char path[4300], err[2048] = "";
    double t0 = now_seconds();
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    CkptFile *f = ckpt_file_open(path, err, sizeof err);
    comm_agree(&t->grid.world, f != NULL, err);
    comm_agree(&t->grid.world, weights_only || check_compatible(t, f, err, sizeof err), err);
    ParamTable global;
    params_build_global(&global, &t->cfg);
    comm_agree(&t->grid.world, verify_checksums(&t->grid.world, f, &global, err, sizeof err), err);
    params_free(&global);
    bool ok = load_weights(t, f, err, sizeof err) &&
              (weights_only || load_optimizer(t, f, err, sizeof err));
    comm_agree(&t->grid.world, ok, err);
    if (!weights_only) load_state(t, f);
    ckpt_file_close(f);
    double seconds = now_seconds() - t0, bytes = 3.0 * 4.0 * (double)config_params_total(&t->cfg);
    info("loaded checkpoint %s at step %lld (%.3f GB verified and read in %.2f s)", dir,
         (long long)t->step, bytes / 1e9, seconds);
}

void checkpoint_load(Trainer *t, const char *dir) { load(t, dir, false); }
void checkpoint_load_weights(Trainer *t, const char *dir) { load(t, dir, true); }

bool checkpoint_info(const char *dir, CheckpointInfo *ci, char *err, int err_len) {
    char path[4300];
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    memset(ci, 0, sizeof *ci);
    CkptFile *f = ckpt_file_open(path, err, err_len);
    if (!f) return false;
    int64_t shape[7];
    char *format = ckpt_file_get_str(f, "format"), *name = ckpt_file_get_str(f, "model_name");
    char *tok = ckpt_file_get_str(f, "tokenizer_sha256");
    bool ok = format && strcmp(format, FORMAT) == 0 && ckpt_file_get_i64(f, "model_shape", shape, 7) &&
              ckpt_file_get_f64(f, "rope_theta", &ci->cfg.rope_theta) &&
              ckpt_file_get_f64(f, "norm_eps", &ci->cfg.norm_eps) &&
              ckpt_file_get_i64(f, "step", &ci->step, 1) && ckpt_file_get_i64(f, "seed", &ci->seed, 1) &&
              ckpt_file_get_i64(f, "layout", ci->layout, 4);
    if (ok) {
        ModelConfig *c = &ci->cfg;
        c->dim = (int)shape[0], c->n_layers = (int)shape[1], c->n_heads = (int)shape[2];
        c->n_kv_heads = (int)shape[3], c->ffn_dim = (int)shape[4], c->vocab_size = (int)shape[5];
        c->max_seq_len = (int)shape[6];
        snprintf(c->name, sizeof c->name, "%s", name ? name : "checkpoint");
        snprintf(ci->tokenizer_sha256, sizeof ci->tokenizer_sha256, "%s", tok ? tok : "");
        ci->options = ckpt_file_get_str(f, "options");
        ok = config_validate(c, err, err_len);
    } else {
        snprintf(err, err_len, "%s is not a complete llama-hpc checkpoint", path);
    }
    free(format);
    free(name);
    free(tok);
    ckpt_file_close(f);
    return ok;
}

bool checkpoint_verify(const Comm *world, const char *dir, const ModelConfig *cfg, char *err,
                       int err_len) {
    char path[4300];
    snprintf(path, sizeof path, "%s/checkpoint.h5", dir);
    CkptFile *f = ckpt_file_open(path, err, err_len);
    comm_agree(world, f != NULL, err);
    ParamTable global;
    params_build_global(&global, cfg);
    bool ok = verify_checksums(world, f, &global, err, err_len);
    params_free(&global);
    ckpt_file_close(f);
    return ok;
}
