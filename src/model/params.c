#include "model/params.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/rng.h"
#include "core/util.h"

int params_vocab_rows(const ModelConfig *cfg, int tp) { return (cfg->vocab_size + tp - 1) / tp; }

void params_linear_shapes(const ModelConfig *c, int tp, LinearShape s[LINEAR_COUNT]) {
    int hd = config_head_dim(c), q = c->n_heads * hd / tp, kv = c->n_kv_heads * hd / tp;
    int f = c->ffn_dim / tp;
    s[LINEAR_QKV] = (LinearShape){c->dim, q + 2 * kv};
    s[LINEAR_O] = (LinearShape){q, c->dim};
    s[LINEAR_GATE_UP] = (LinearShape){c->dim, 2 * f};
    s[LINEAR_DOWN] = (LinearShape){f, c->dim};
    s[LINEAR_HEAD] = (LinearShape){c->dim, params_vocab_rows(c, tp)};
}

static ParamTensor *add_tensor(ParamTable *pt, const char *name, int ndim, int64_t rows,
                               int64_t cols, TpSplit split, const ModelPart *part, int layer) {
    ParamTensor *t = &pt->t[pt->n++];   // params_build reserved room for every tensor
    memset(t, 0, sizeof *t);
    size_t len = strlen(name);
    if (len >= sizeof t->name) fatal("params: tensor name %s is too long", name);
    memcpy(t->name, name, len + 1);
    t->ndim = ndim;
    t->rows = rows;
    t->cols = cols;
    t->local_rows = rows;
    t->local_cols = cols;
    t->split = split;
    t->layer = layer;
    t->decay = ndim == 2;
    if (split == SPLIT_ROWS) {
        t->local_rows = (rows + part->tp - 1) / part->tp;   // vocab may need padding
        t->row0 = t->local_rows * part->tp_rank;
    } else if (split == SPLIT_COLS) {
        t->local_cols = cols / part->tp;
        t->col0 = t->local_cols * part->tp_rank;
    }
    int64_t end = t->row0 + t->local_rows < rows ? t->row0 + t->local_rows : rows;
    t->valid_rows = end > t->row0 ? end - t->row0 : 0;
    t->offset = pt->numel;
    t->numel = (size_t)(t->local_rows * t->local_cols);
    t->unit = pt->n_units;
    pt->numel += t->numel;
    pt->n_params += (size_t)(t->valid_rows * t->local_cols);
    return t;
}

static void add_layer(ParamTable *pt, const ModelConfig *c, const ModelPart *part, int layer) {
    int64_t d = c->dim, q = (int64_t)c->n_heads * config_head_dim(c);
    int64_t kv = (int64_t)c->n_kv_heads * config_head_dim(c), f = c->ffn_dim;
    struct { const char *name; int ndim; int64_t rows, cols; TpSplit split; } spec[LP_COUNT] = {
        [LP_ATTN_NORM] = {"input_layernorm", 1, d, 1, SPLIT_NONE},
        [LP_WQ] = {"self_attn.q_proj", 2, q, d, SPLIT_ROWS},
        [LP_WK] = {"self_attn.k_proj", 2, kv, d, SPLIT_ROWS},
        [LP_WV] = {"self_attn.v_proj", 2, kv, d, SPLIT_ROWS},
        [LP_WO] = {"self_attn.o_proj", 2, d, q, SPLIT_COLS},
        [LP_FFN_NORM] = {"post_attention_layernorm", 1, d, 1, SPLIT_NONE},
        [LP_GATE] = {"mlp.gate_proj", 2, f, d, SPLIT_ROWS},
        [LP_UP] = {"mlp.up_proj", 2, f, d, SPLIT_ROWS},
        [LP_DOWN] = {"mlp.down_proj", 2, d, f, SPLIT_COLS},
    };
    char name[96];
    int prefix = snprintf(name, sizeof name, "model.layers.%d.", layer);
    for (int k = 0; k < LP_COUNT; k++) {   // the layer's prefix, then the tensor's name
        size_t len = strlen(spec[k].name);
        memcpy(name + prefix, spec[k].name, len);
        memcpy(name + prefix + len, ".weight", sizeof ".weight");
        add_tensor(pt, name, spec[k].ndim, spec[k].rows, spec[k].cols, spec[k].split, part,
                   layer);
    }
}

// The LM head: its own tensor, or with tied embeddings the embedding itself
// (held here) or a copy of it under the embedding's name (the first stage
// holds the original).
static void add_head(ParamTable *pt, const ModelConfig *c, const ModelPart *part) {
    if (c->tie_embeddings && part->first) {
        pt->lm_head = pt->embed;
        return;
    }
    pt->lm_head = pt->n;
    const char *name = c->tie_embeddings ? "model.embed_tokens.weight" : "lm_head.weight";
    ParamTensor *t = add_tensor(pt, name, 2, c->vocab_size, c->dim, SPLIT_ROWS, part, -1);
    t->tied_copy = c->tie_embeddings;
}

// Closes the unit of tensors [first, pt->n): pads the flat buffers to a multiple of dp.
static int end_unit(ParamTable *pt, int first, const ModelPart *part, bool vocab) {
    size_t dp = part->dp > 0 ? (size_t)part->dp : 1;
    size_t offset = pt->t[first].offset;
    pt->numel = (pt->numel + dp - 1) / dp * dp;
    pt->units[pt->n_units] = (ParamUnit){.offset = offset, .numel = pt->numel - offset,
                                         .first = first, .count = pt->n - first, .vocab = vocab};
    return pt->n_units++;
}

void params_build(ParamTable *pt, const ModelConfig *c, const ModelPart *part) {
    memset(pt, 0, sizeof *pt);
    int layers = 0;   // room for every tensor and unit at once (the planner builds thousands)
    for (int v = 0; v < part_chunks(part); v++) layers += part_chunk_layers(part, v);
    pt->t = xmalloc((size_t)(1 + layers * LP_COUNT + 2) * sizeof *pt->t);
    pt->units = xmalloc((size_t)(1 + layers + 1) * sizeof *pt->units);
    pt->embed = pt->final_norm = pt->lm_head = -1;
    pt->embed_unit = pt->head_unit = pt->layer_unit = -1;
    if (part->first) {
        pt->embed = pt->n;
        add_tensor(pt, "model.embed_tokens.weight", 2, c->vocab_size, c->dim, SPLIT_ROWS, part,
                   -1);
        pt->embed_unit = end_unit(pt, pt->embed, part, true);
    }
    pt->layers = pt->n;
    pt->layer_unit = pt->n_units;
    for (int v = 0; v < part_chunks(part); v++)
        for (int l = 0; l < part_chunk_layers(part, v); l++) {
            int first = pt->n;
            add_layer(pt, c, part, part_chunk_layer0(part, v) + l);
            end_unit(pt, first, part, false);
        }
    if (part->last) {
        pt->final_norm = pt->n;
        add_tensor(pt, "model.norm.weight", 1, c->dim, 1, SPLIT_NONE, part, -1);
        add_head(pt, c, part);
        pt->head_unit = end_unit(pt, pt->final_norm, part, pt->lm_head != pt->embed);
    }
}

void params_build_global(ParamTable *pt, const ModelConfig *cfg) {
    ModelPart whole = {.tp = 1, .n_layers = cfg->n_layers, .first = true, .last = true, .dp = 1};
    params_build(pt, cfg, &whole);
}

void params_free(ParamTable *pt) {
    free(pt->t);
    free(pt->units);
    memset(pt, 0, sizeof *pt);
}

void params_unit_sizes(const ParamTable *pt, size_t *largest, size_t *largest_plain) {
    *largest = *largest_plain = 0;
    for (int u = 0; u < pt->n_units; u++) {
        size_t n = pt->units[u].numel;
        if (n > *largest) *largest = n;
        if (!pt->units[u].vocab && n > *largest_plain) *largest_plain = n;
    }
    if (*largest_plain == 0) *largest_plain = *largest;
}

const ParamTensor *params_find(const ParamTable *pt, const char *name) {
    for (int i = 0; i < pt->n; i++)
        if (strcmp(pt->t[i].name, name) == 0) return &pt->t[i];
    return NULL;
}

// Local elements [e0, e1) of tensor t into out (e1 - e0).
static void init_tensor(const ParamTensor *t, uint64_t seed, int64_t e0, int64_t e1, float *out) {
    uint64_t key = rng_key(seed, rng_hash_string(t->name));
#pragma omp parallel for schedule(static)
    for (int64_t e = e0; e < e1; e++) {
        int64_t r = e / t->local_cols, c = e % t->local_cols;
        float *v = &out[e - e0];
        if (r >= t->valid_rows) *v = 0.0f;
        else if (t->ndim == 1) *v = 1.0f;
        else *v = (float)(0.02 * rng_normal(key, (uint64_t)((t->row0 + r) * t->cols + t->col0 + c)));
    }
}

void params_init_host_range(const ParamTable *pt, uint64_t seed, size_t lo, size_t hi, float *out) {
    memset(out, 0, (hi - lo) * sizeof(float));
    for (int i = 0; i < pt->n; i++) {
        const ParamTensor *t = &pt->t[i];
        size_t a = t->offset > lo ? t->offset : lo;
        size_t b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
        if (a < b)
            init_tensor(t, seed, (int64_t)(a - t->offset), (int64_t)(b - t->offset), out + (a - lo));
    }
}

void params_init_host(const ParamTable *pt, uint64_t seed, float *out) {
    params_init_host_range(pt, seed, 0, pt->numel, out);
}
