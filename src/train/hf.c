#include "train/hf.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/ckpt_dir.h"
#include "fs/dirs.h"
#include "fs/folder_commit.h"
#include "fs/paths.h"
#include "hf/hf_config.h"
#include "fs/logfile.h"
#include "hf/hf_tokenizer.h"
#include "hf/safetensors.h"
#include "tokenizer/tokenizer.h"
#include "core/hashmap.h"
#include "core/util.h"
#include "train/watchdog.h"

static bool same_shape(const ModelConfig *a, const ModelConfig *b) {
    return a->dim == b->dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim &&
           a->vocab_size == b->vocab_size && a->tie_embeddings == b->tie_embeddings;
}

static const char *head_kind(const ModelConfig *c) {
    return c->tie_embeddings ? "LM head tied to the embedding" : "LM head of its own";
}

// Another RoPE or norm epsilon than the folder's changes no tensor (extending
// a context does it on purpose), so the model's are used, and said.
static void note_fields(const ModelConfig *a, const ModelConfig *b, const char *dir) {
    char sa[256], sb[256];
    config_rope_scaling_describe(&a->rope_scaling, sa, sizeof sa);
    config_rope_scaling_describe(&b->rope_scaling, sb, sizeof sb);
    if (a->rope_theta != b->rope_theta || strcmp(sa, sb) != 0 || a->norm_eps != b->norm_eps)
        info("note: %s's config.json has RoPE theta %g, scaling %s, norm eps %g; the model %s "
             "trains its weights with theta %g, scaling %s, norm eps %g", dir, a->rope_theta, sa,
             a->norm_eps, b->name, b->rope_theta, sb, b->norm_eps);
}

static bool check_config(const Model *m, const char *dir, HfConfig *hf, char *err, int err_len) {
    if (!hf_config_read(dir, hf, err, err_len)) return false;
    const ModelConfig *a = &hf->model, *b = &m->cfg;
    if (same_shape(a, b)) {
        note_fields(a, b, dir);
        return true;
    }
    snprintf(err, err_len, "%s describes dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d, "
             "%s, but the model %s has dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d, %s",
             dir, a->dim, a->n_layers, a->n_heads, a->n_kv_heads, a->ffn_dim, a->vocab_size,
             head_kind(a), b->name, b->dim, b->n_layers, b->n_heads, b->n_kv_heads, b->ffn_dim,
             b->vocab_size, head_kind(b));
    return false;
}

// Reads tensor t's block (as held by this rank) into out, zeros in vocab padding.
static bool read_block(const Safetensors *st, const ParamTensor *t, const char *name,
                       float *out, char *err, int err_len) {
    int64_t shape[2] = {t->rows, t->cols};
    memset(out, 0, t->numel * sizeof(float));
    if (t->ndim == 1)
        return safetensors_read_block(st, name, 1, shape, 0, t->rows, 0, 1, out, err, err_len);
    return safetensors_read_block(st, name, 2, shape, t->row0, t->valid_rows, t->col0,
                                  t->local_cols, out, err, err_len);
}

// A tied model's folder may also hold lm_head.weight (some exporters write
// both), but then equal to the embedding: anything else is another model.
// Checked where the head is held, on that rank's block (`embed`, as read).
static bool tied_head_check(const Safetensors *st, const ParamTensor *t, const float *embed,
                            const char *dir, char *err, int err_len) {
    if (!safetensors_find(st, "lm_head.weight")) return true;
    float *head = xmalloc(t->numel * sizeof(float));
    bool ok = read_block(st, t, "lm_head.weight", head, err, err_len);
    size_t i = 0;
    while (ok && i < t->numel && head[i] == embed[i]) i++;
    if (ok && i < t->numel)
        snprintf(err, err_len, "%s: config.json says tie_word_embeddings true, but the weights "
                 "hold an lm_head.weight that differs from model.embed_tokens.weight (row %lld: "
                 "%g against %g): an untied model; set tie_word_embeddings false in its "
                 "config.json to train it untied", dir,
                 (long long)(t->row0 + (int64_t)i / t->local_cols), head[i], embed[i]);
    free(head);
    return ok && i == t->numel;
}

// The block holds finite values only: a NaN or Inf in imported weights is a
// damaged file, not a learning rate to lower (which every later check says).
static bool finite_block(const ParamTensor *t, const float *host, const char *dir, char *err,
                         int err_len) {
    for (size_t k = 0; k < t->numel; k++)
        if (!isfinite(host[k])) {
            snprintf(err, err_len, "%s: tensor '%s' holds a non-finite value (%g at element %zu of "
                     "this rank's block): the weights are damaged; import a good copy", dir,
                     t->name, (double)host[k], k);
            return false;
        }
    return true;
}

// Every tensor in the folder has a place in the model config.json describes:
// weights it does not (layers past num_hidden_layers, biases) would be left
// out without a word, and the model trained be another than the folder's.
// Tolerated: RoPE's inv_freq buffers (older exports) and a tied model's
// lm_head.weight (tied_head_check).
bool hf_tensors_all_used(const Safetensors *st, const ModelConfig *cfg, const char *dir,
                         char *err, int err_len) {
    ParamTable pt;
    params_build_global(&pt, cfg);
    int unused = 0;
    const char *first = NULL;
    for (int i = 0; i < st->n_tensors; i++) {
        const char *name = st->tensors[i].name;
        bool buffer = name_has_suffix(name, ".rotary_emb.inv_freq");
        bool tied_head = cfg->tie_embeddings && strcmp(name, "lm_head.weight") == 0;
        if (buffer || tied_head || params_find(&pt, name)) continue;
        if (!first) first = name;
        unused++;
    }
    if (unused)
        snprintf(err, err_len, "%s holds %d tensor%s that the model its config.json describes has "
                 "no place for (first '%s'): more layers than num_hidden_layers, biases, or another "
                 "architecture; importing would leave them out", dir, unused,
                 unused > 1 ? "s" : "", first);
    params_free(&pt);
    return unused == 0;
}

bool hf_import(Model *m, const char *dir, char *err, int err_len) {
    return hf_import_digest(m, dir, NULL, err, err_len);
}

// Adds a tensor's values to the hashes they belong to.
static void digest_add(HfImportDigest *d, const Model *m, int i, const float *v, size_t n) {
    const ParamTensor *t = &m->table.t[i];
    uint64_t h = hash_bytes(v, n * sizeof *v);
    d->all = hash_u64(d->all ^ h);
    if (t->split == SPLIT_NONE) d->unsplit = hash_u64(d->unsplit ^ h);
    if (m->cfg.tie_embeddings && (i == m->table.embed || t->tied_copy))
        d->embedding = hash_u64(d->embedding ^ h);
}

bool hf_import_digest(Model *m, const char *dir, HfImportDigest *digest, char *err, int err_len) {
    HfConfig hf;
    if (digest) *digest = (HfImportDigest){0, 0, 0};
    if (!check_config(m, dir, &hf, err, err_len)) return false;
    Safetensors st;
    if (!safetensors_open(dir, &st, err, err_len)) return false;
    bool ok = true;
    for (int i = 0; ok && i < m->table.n; i++) {
        watchdog_alive();
        const ParamTensor *t = &m->table.t[i];
        float *host = xmalloc(t->numel * sizeof(float));
        ok = read_block(&st, t, t->name, host, err, err_len) &&
             finite_block(t, host, dir, err, err_len);
        if (ok && m->cfg.tie_embeddings && i == m->table.lm_head)
            ok = tied_head_check(&st, t, host, dir, err, err_len);
        if (ok) m->ops->act_from_host_f32(model_param(m, t), host, t->numel);
        if (ok && digest) digest_add(digest, m, i, host, t->numel);
        free(host);
    }
    // After the model's own tensors: a shape that differs says more ("another model").
    ok = ok && hf_tensors_all_used(&st, &m->cfg, dir, err, err_len);
    safetensors_close(&st);
    return ok;
}

// ---- export ----

// The pipeline stage holding each layer (n_layers), from every stage's chunks.
static int *layer_owners(const Model *m, const Grid *g) {
    int mine[2 * PART_MAX_CHUNKS] = {0};   // (first layer, layer count) per chunk
    for (int v = 0; v < part_chunks(&m->part); v++) {
        mine[2 * v] = part_chunk_layer0(&m->part, v);
        mine[2 * v + 1] = part_chunk_layers(&m->part, v);
    }
    int *all = xmalloc(sizeof mine * (size_t)g->pp);   // (pp, 2 · PART_MAX_CHUNKS)
    comm_allgather(&g->pp_comm, mine, all, 2 * PART_MAX_CHUNKS, DTYPE_I32);
    int *owner = xcalloc((size_t)m->cfg.n_layers, sizeof *owner);
    for (int s = 0; s < g->pp; s++)
        for (int v = 0; v < PART_MAX_CHUNKS; v++) {
            const int *c = all + (size_t)s * 2 * PART_MAX_CHUNKS + 2 * v;
            for (int l = c[0]; l < c[0] + c[1] && l < m->cfg.n_layers; l++) owner[l] = s;
        }
    free(all);
    return owner;
}

// The pipeline stage holding global tensor t.
static int owner_stage(const ParamTensor *t, const int *layer_owner, int pp) {
    if (t->layer < 0) return strcmp(t->name, "model.embed_tokens.weight") == 0 ? 0 : pp - 1;
    return layer_owner[t->layer];
}

// This rank's block of a tensor as fp32 on the host.
static float *host_block(const Model *m, const ParamTensor *t) {
    float *buf = xmalloc(t->numel * sizeof(float));
    m->ops->act_to_host_f32(buf, model_param(m, t), t->numel);
    return buf;
}

// Places tensor-parallel rank r's block (laid out like `local`) into the full tensor.
static void place_block(const ParamTensor *local, int r, const float *block, float *full) {
    const ParamTensor *t = local;
    if (t->split == SPLIT_NONE) {
        memcpy(full, block, (size_t)(t->rows * t->cols) * sizeof(float));
    } else if (t->split == SPLIT_ROWS) {
        int64_t r0 = t->local_rows * r, n = t->rows - r0 < t->local_rows ? t->rows - r0 : t->local_rows;
        if (n > 0) memcpy(full + r0 * t->cols, block, (size_t)(n * t->cols) * sizeof(float));
    } else {
        int64_t lc = t->local_cols;
        for (int64_t row = 0; row < t->rows; row++)
            memcpy(full + row * t->cols + lc * r, block + row * lc, (size_t)lc * sizeof(float));
    }
}

// Every block this rank owns goes to world rank 0, tagged with the tensor's global index.
static void send_my_blocks(const Model *m, const Grid *g, const ParamTable *global) {
    if (g->replica_rank != 0 || g->world_rank == 0) return;
    for (int i = 0; i < global->n; i++) {
        watchdog_alive();
        const ParamTensor *t = params_find(&m->table, global->t[i].name);
        if (!t || t->tied_copy || (t->split == SPLIT_NONE && g->tp_rank != 0)) continue;
        float *b = host_block(m, t);
        CommRequest r = comm_isend(&g->world, b, t->numel, DTYPE_F32, 0, i);
        comm_wait(&r);
        free(b);
    }
}

// Rank 0: receives every tensor-parallel block of global tensor i (held by
// stage s) and assembles the full tensor.
static void gather_tensor(const Model *m, const Grid *g, const ParamTensor *gt, int i, int s,
                          float *full) {
    ModelPart part = {.tp = g->tp, .tp_rank = 0, .n_layers = 1, .layer0 = gt->layer < 0 ? 0 : gt->layer,
                      .first = gt->layer < 0, .last = gt->layer < 0, .dp = 1};
    ParamTable shape;   // the block layout of this tensor under TP
    params_build(&shape, &m->cfg, &part);
    const ParamTensor *t = params_find(&shape, gt->name);
    int owners = t->split == SPLIT_NONE ? 1 : g->tp;
    for (int r = 0; r < owners; r++) {
        int src = s * g->replicas * g->tp + r;   // (pp s, replica 0, tp r)
        float *block;
        if (src == 0) block = host_block(m, params_find(&m->table, gt->name));
        else {
            block = xmalloc(t->numel * sizeof(float));
            CommRequest q = comm_irecv(&g->world, block, t->numel, DTYPE_F32, src, i);
            comm_wait(&q);
        }
        place_block(t, r, block, full);
        free(block);
    }
    params_free(&shape);
}

// An export is written into this folder inside its own and moved in only once
// every file is written: a failure leaves an earlier export there as it was.
#define EXPORT_STAGING ".export-staging"

static void staging_of(const char *dir, char *out, size_t len) {
    snprintf(out, len, "%s/" EXPORT_STAGING, dir);
}

// Rank 0: the weights' writer in a new staging folder of dir, every tensor
// declared; NULL with err.
static SafetensorsWriter *open_export(const ParamTable *global, const char *dir, bool bf16,
                                      char *err, int len) {
    char stage[4096], path[4200];
    staging_of(dir, stage, sizeof stage);
    if (!hf_export_dir_check(dir, err, len) || !make_dirs(dir, err, len)) return NULL;
    remove_tree(stage);   // a crashed export's
    struct stat st;
    if (lstat(stage, &st) == 0 && !S_ISDIR(st.st_mode)) unlink(stage);   // a file or a link
    if (!make_dirs(stage, err, len)) return NULL;
    snprintf(path, sizeof path, "%s/model.safetensors", stage);
    SafetensorsWriter *w = safetensors_writer_create(path, err, len);
    SafetensorsDtype dt = bf16 ? SAFETENSORS_BF16 : SAFETENSORS_F32;
    for (int i = 0; w && i < global->n; i++) {
        const ParamTensor *t = &global->t[i];
        int64_t shape[2] = {t->rows, t->cols};
        if (safetensors_writer_declare(w, t->name, dt, t->ndim, shape, err, len) < 0) {
            safetensors_writer_abort(w);
            w = NULL;
        }
    }
    return w;
}

// Rank 0: gathers every tensor (all of them whatever happens, so that the
// senders finish) and writes them while the writes succeed.
static bool write_tensors(const Model *m, const Grid *g, const ParamTable *global,
                          const int *layer_owner, SafetensorsWriter *w, char *err, int len) {
    bool ok = true;
    for (int i = 0; i < global->n; i++) {
        watchdog_alive();
        const ParamTensor *t = &global->t[i];
        float *full = xcalloc((size_t)(t->rows * t->cols), sizeof(float));
        gather_tensor(m, g, t, i, owner_stage(t, layer_owner, g->pp), full);
        if (ok && !(ok = safetensors_writer_put(w, i, full, err, len))) safetensors_writer_abort(w);
        free(full);
    }
    return ok && safetensors_writer_close(w, err, len);
}

static bool exports_tokenizer(const HfExportOptions *x) {
    return x->tokenizer && x->tokenizer[0] && strcmp(x->tokenizer, "bytes") != 0;
}

// The export's tokenizer, loaded and checked against the model; NULL with err.
static Tokenizer *export_tokenizer(const Model *m, const char *spec, char *err, int len) {
    Tokenizer *tok = tokenizer_load(spec, err, len);
    if (tok && tokenizer_vocab_size(tok) > m->cfg.vocab_size) {
        snprintf(err, len, "the tokenizer %s has %lld ids but the model's vocabulary holds %d: "
                 "not the model's tokenizer", spec, (long long)tokenizer_vocab_size(tok),
                 m->cfg.vocab_size);
        tokenizer_free(tok);
        return NULL;
    }
    return tok;
}

// Rank 0, before anything is written: the tokenizer (if any) can be exported.
static bool tokenizer_fits(const Model *m, const HfExportOptions *x, char *err, int len) {
    if (!exports_tokenizer(x)) return true;
    Tokenizer *tok = export_tokenizer(m, x->tokenizer, err, len);
    bool ok = tok != NULL;
    tokenizer_free(tok);
    return ok;
}

// The tokenizer's files beside the weights, and its special ids in hf.
static bool write_tokenizer(const Model *m, const char *dir, const char *spec, HfConfig *hf,
                            char *err, int len) {
    Tokenizer *tok = export_tokenizer(m, spec, err, len);
    if (!tok) return false;
    hf->bos_id = tokenizer_bos_id(tok);
    hf->eos_id = tokenizer_eos_id(tok);
    hf->pad_id = tokenizer_token_id(tok, "<pad>");
    HfTokenizerFiles files = {.file = spec, .bos = tokenizer_token_text(tok, hf->bos_id),
                              .eos = tokenizer_token_text(tok, hf->eos_id),
                              .pad = tokenizer_token_text(tok, hf->pad_id),
                              .max_length = m->cfg.max_seq_len};
    bool ok = hf_tokenizer_write(dir, &files, err, len);
    free((char *)files.bos);
    free((char *)files.eos);
    free((char *)files.pad);
    tokenizer_free(tok);
    return ok;
}

// config.json, generation_config.json and the tokenizer's files (if any)
// into the staging folder stage.
static bool write_config(const Model *m, const char *stage, const HfExportOptions *x, char *err,
                         int len) {
    HfConfig hf = {.model = m->cfg, .bos_id = -1, .eos_id = -1, .pad_id = -1};
    snprintf(hf.torch_dtype, sizeof hf.torch_dtype, "%s", x->bf16 ? "bfloat16" : "float32");
    return (!exports_tokenizer(x) || write_tokenizer(m, stage, x->tokenizer, &hf, err, len)) &&
           hf_config_write(stage, &hf, err, len) && hf_generation_config_write(stage, &hf, err, len);
}

static bool any_name(const char *name) { return name[0] != '.'; }

static bool move_in(const char *stage, const char *dir, const char *name, char *err, int len) {
    char from[4400], to[4400];
    snprintf(from, sizeof from, "%s/%s", stage, name);
    snprintf(to, sizeof to, "%s/%s", dir, name);
    if (rename(from, to) == 0) return true;
    snprintf(err, len, "moving %s into %s failed (%s): the export in %s is incomplete; write it "
             "again", name, dir, strerror(errno), dir);
    return false;
}

// Moves every file of the staging folder into dir, the weights last, then
// removes the tokenizer files an earlier export left that this one does not
// have, and the staging folder.
static bool commit_export(const char *dir, char *err, int len) {
    char stage[4096];
    staging_of(dir, stage, sizeof stage);
    int n = 0, n_old = 0;
    char **names = dir_names(stage, any_name, &n);
    char **old = dir_names(dir, hf_tokenizer_is_file, &n_old);
    bool ok = names && old;
    if (!ok) snprintf(err, len, "cannot list '%s': %s", names ? dir : stage, strerror(errno));
    ok = ok && folder_commit_begin(dir, "an export (llama-train --export-hf or llama-ckpt "
                                   "export-hf)", err, len);
    for (int k = 0; ok && k < n; k++)
        if (strcmp(names[k], "model.safetensors") != 0) ok = move_in(stage, dir, names[k], err, len);
    ok = ok && move_in(stage, dir, "model.safetensors", err, len);   // the weights last
    for (int i = 0; ok && i < n_old; i++) {
        char path[4400];
        snprintf(path, sizeof path, "%s/%s", dir, old[i]);
        if (!names_contain(names, n, old[i]) && unlink(path) != 0 && errno != ENOENT) {
            snprintf(err, len, "cannot remove the earlier export's %s: %s", path, strerror(errno));
            ok = false;
        }
    }
    if (names) dir_names_free(names, n);
    if (old) dir_names_free(old, n_old);
    ok = ok && folder_commit_end(dir, err, len);
    if (ok) remove_tree(stage);
    return ok;
}

// World rank 0's verdict, and its message in err, on every rank.
static bool agree_root(const Grid *g, bool ok, char *err, int len) {
    int v = ok;
    comm_broadcast(&g->world, &v, 1, DTYPE_I32, 0);
    comm_broadcast(&g->world, err, (size_t)len, DTYPE_U8, 0);
    return v;
}

// Whether an export writes (or removes) a file of this name.
static bool export_writes(const char *name) {
    static const char *const own[] = {".", "..", "config.json", "generation_config.json",
                                      "model.safetensors", EXPORT_STAGING, FOLDER_COMMIT_MARK};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (strcmp(name, own[i]) == 0) return true;
    return hf_tokenizer_is_file(name);
}

static bool not_export_file(const char *name) { return !export_writes(name); }

// The first file of dir, by name, that an export does not write (NULL: none).
static const char *foreign_file(const char *dir) {
    static char name[256];
    int n = 0;
    char **names = dir_names(dir, not_export_file, &n);
    if (n > 0) snprintf(name, sizeof name, "%s", names[0]);
    dir_names_free(names, n);
    return n > 0 ? name : NULL;
}

static bool not_staging(const char *name) {
    return strcmp(name, ".") != 0 && strcmp(name, "..") != 0 && strcmp(name, EXPORT_STAGING) != 0 &&
           strcmp(name, FOLDER_COMMIT_MARK) != 0;
}

// Whether folder dir holds nothing but a crashed export's staging folder (and
// mark); else its first other name in first.
static bool empty_but_staging(const char *dir, char *first, size_t len) {
    int n = 0;
    char **names = dir_names(dir, not_staging, &n);
    if (names && n > 0) snprintf(first, len, "%s", names[0]);
    if (names) dir_names_free(names, n);
    return names && n == 0;
}

bool hf_export_dir_check(const char *dir_given, char *err, int len) {
    struct stat st;
    char first[512], config[8500], dir[8400];
    path_resolved(dir_given, dir, sizeof dir);   // zz/../x is x once zz is made
    if (stat(dir, &st) != 0) return true;   // a new folder (make_dirs says what stops it)
    if (!S_ISDIR(st.st_mode)) {
        snprintf(err, len, "%s is a file, not a folder; give a new or empty folder", dir_given);
        return false;
    }
    snprintf(config, sizeof config, "%s/config.json", dir);
    if (empty_but_staging(dir, first, sizeof first)) return true;
    if (stat(config, &st) != 0) {
        snprintf(err, len, "%s is neither empty nor a Hugging Face folder (it holds '%s' and no "
                 "config.json): give a new or empty folder, or an earlier export to replace",
                 dir_given, first);
        return false;
    }
    const char *other = foreign_file(dir);
    if (!hf_config_is_own_export(dir) || other) {
        snprintf(err, len, "%s is a Hugging Face folder this program did not export (%s%s%s): "
                 "replacing its weights would leave its other files (sharded weights, an index, "
                 "its tokenizer) beside them or remove them; export into a new or empty folder",
                 dir_given, other ? "it holds '" : "its config.json has no \"exported_by\": "
                 "\"llama-hpc\"", other ? other : "", other ? "'" : "");
        return false;
    }
    return true;
}

bool hf_export_try(const Model *m, const Grid *g, const char *dir, const HfExportOptions *x,
                   char *err, int len) {
    ParamTable global;
    params_build_global(&global, &m->cfg);
    int *layer_owner = layer_owners(m, g);   // (n_layers) pipeline stage
    bool root = g->world_rank == 0;
    err[0] = 0;
    SafetensorsWriter *w = root && tokenizer_fits(m, x, err, len)
                               ? open_export(&global, dir, x->bf16, err, len) : NULL;
    bool ok = agree_root(g, !root || w, err, len);
    char stage[4096];
    staging_of(dir, stage, sizeof stage);
    if (ok && root) {
        ok = write_tensors(m, g, &global, layer_owner, w, err, len) &&
             write_config(m, stage, x, err, len);
        if (!ok) remove_tree(stage);   // dir as it was
        ok = ok && commit_export(dir, err, len);
    } else if (ok)
        send_my_blocks(m, g, &global);
    free(layer_owner);
    params_free(&global);
    return agree_root(g, ok, err, len);
}

void hf_export(const Model *m, const Grid *g, const char *dir, const HfExportOptions *x) {
    char err[2048];
    if (!hf_export_try(m, g, dir, x, err, sizeof err))
        fatal_all("exporting to %s failed: %s", dir, err);
}
