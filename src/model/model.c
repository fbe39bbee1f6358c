#include "model/model.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "model/rope.h"
#include "model/context_parallel.h"

// ---- allocation ----

// Element counts of one slot's per-layer buffers: rd on this rank's R rows
// of the residual stream, the rest on all N rows.
typedef struct {
    size_t nd, rd, qkv, att, gu, h;
} LayerSizes;

static LayerSizes layer_sizes(const Model *m) {
    size_t N = (size_t)m->N, D = (size_t)m->cfg.dim;
    return (LayerSizes){N * D, (size_t)m->R * D, N * m->qkv_dim, N * m->heads * m->hd,
                        N * 2 * m->ffn, N * m->ffn};
}

static void set_local_widths(Model *m) {
    const ModelConfig *c = &m->cfg;
    int tp = m->part.tp;
    m->hd = config_head_dim(c);
    m->heads = c->n_heads / tp;
    m->kv_heads = c->n_kv_heads / tp;
    m->qkv_dim = (m->heads + 2 * m->kv_heads) * m->hd;
    m->ffn = c->ffn_dim / tp;
    m->vocab_rows = params_vocab_rows(c, tp);
    m->vocab_start = m->vocab_rows * m->part.tp_rank;
    int end = m->vocab_start + m->vocab_rows;
    m->vocab_valid = (end < c->vocab_size ? end : c->vocab_size) - m->vocab_start;
    if (m->vocab_valid < 0) m->vocab_valid = 0;
    m->R = m->part.sp ? m->N / tp : m->N;
}

// Allocates n elements of the compute type, counting them.
static void *alloc_act(Model *m, size_t n) {
    m->activation_bytes += n * m->ops->act_bytes;
    return m->ops->alloc(n * m->ops->act_bytes);
}

static void *alloc_bytes(Model *m, size_t bytes) {
    m->activation_bytes += bytes;
    return m->ops->alloc(bytes);
}

// Layers of room in a slot: Lk for the matmul and attention outputs, Lc for
// the norms' and SwiGLU's (see Activations).
static size_t kept_layers(Recompute r, int n_layers) {
    return r == RECOMPUTE_FULL ? 1 : (size_t)n_layers;
}
static size_t cheap_layers(Recompute r, int n_layers) {
    return r == RECOMPUTE_NONE ? (size_t)n_layers : 1;
}

static void alloc_slot(Model *m, Activations *a) {
    LayerSizes z = layer_sizes(m);
    int chunk_layers = part_chunk_max_layers(&m->part);
    size_t L = (size_t)chunk_layers, N = (size_t)m->N, R = (size_t)m->R;
    size_t Lk = kept_layers(m->recompute, chunk_layers);
    size_t Lc = cheap_layers(m->recompute, chunk_layers);
    a->res = alloc_act(m, (L + 1) * z.rd);
    a->mid = alloc_act(m, Lk * z.rd);
    a->xn1 = alloc_act(m, Lc * z.rd);
    a->qkv = alloc_act(m, Lk * z.qkv);
    a->att = alloc_act(m, Lk * z.att);
    a->att_state = alloc_bytes(m, Lk * m->state_bytes);
    a->xn2 = alloc_act(m, Lc * z.rd);
    a->gu = alloc_act(m, Lk * z.gu);
    a->h = alloc_act(m, Lc * z.h);
    a->rstd1 = alloc_bytes(m, Lc * R * sizeof(float));
    a->rstd2 = alloc_bytes(m, Lc * R * sizeof(float));
    a->tokens = alloc_bytes(m, N * sizeof(int32_t));
    a->targets = alloc_bytes(m, N * sizeof(int32_t));
}

static void free_slot(const Model *m, Activations *a) {
    void *bufs[] = {a->res, a->mid, a->xn1, a->qkv, a->att, a->att_state, a->xn2, a->gu, a->h,
                    a->rstd1, a->rstd2, a->tokens, a->targets};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) m->ops->release(bufs[i]);
}

// Row t of the tables: the rotation of this rank's row t of a sequence (its
// global position under context parallelism).
static void alloc_rope_tables(Model *m) {
    int half = m->hd / 2, cp = part_cp(&m->part);
    size_t n = (size_t)m->T * half;
    float *c = xmalloc(n * sizeof(float)), *s = xmalloc(n * sizeof(float));
    for (int t = 0; t < m->T; t++) {
        int pos = cp_position(m->T * cp, cp, m->part.cp_rank, t);
        for (int i = 0; i < half; i++) {
            double inv_freq = rope_inv_freq(&m->cfg, i, m->hd);
            c[(size_t)t * half + i] = (float)cos(pos * inv_freq);
            s[(size_t)t * half + i] = (float)sin(pos * inv_freq);
        }
    }
    m->rope_cos = alloc_bytes(m, n * sizeof(float));
    m->rope_sin = alloc_bytes(m, n * sizeof(float));
    m->ops->to_device(m->rope_cos, c, n * sizeof(float));
    m->ops->to_device(m->rope_sin, s, n * sizeof(float));
    free(c);
    free(s);
}

// Context parallel: the ring's buffers and every CP rank's row positions.
static void alloc_ring(Model *m) {
    int cp = m->part.cp;
    size_t kv = (size_t)m->N * 2 * m->kv_heads * m->hd, n = (size_t)cp * m->T;
    for (int i = 0; i < 2; i++) {
        m->kv_ring[i] = alloc_act(m, kv);
        m->dkv_ring[i] = alloc_act(m, kv);
    }
    int32_t *pos = xmalloc(n * sizeof(int32_t));   // (cp, T)
    for (int r = 0; r < cp; r++)
        for (int t = 0; t < m->T; t++) pos[(size_t)r * m->T + t] = cp_position(m->T * cp, cp, r, t);
    m->cp_pos = alloc_bytes(m, n * sizeof(int32_t));
    m->ops->to_device(m->cp_pos, pos, n * sizeof(int32_t));
    free(pos);
}

static void alloc_scratch(Model *m) {
    LayerSizes z = layer_sizes(m);
    size_t N = (size_t)m->N;
    if (m->part.last) {
        m->xnf = alloc_act(m, z.nd);
        m->rstdf = alloc_bytes(m, (size_t)m->R * sizeof(float));
        m->logits = alloc_act(m, N * m->vocab_rows);
        m->ce_max = alloc_bytes(m, N * sizeof(float));
        m->ce_stats = alloc_bytes(m, 2 * N * sizeof(float));
        m->ce_loss = alloc_bytes(m, N * sizeof(float));
    }
    m->d_res = alloc_act(m, z.rd);
    m->d_xn = alloc_act(m, z.nd);
    if (m->part.sp) {
        m->gathered = alloc_act(m, z.nd);
        m->rows_scratch = alloc_act(m, z.rd);
        m->norm_grads = alloc_bytes(m, 2 * (size_t)m->cfg.dim * sizeof(float));
    }
    m->d_qkv = alloc_act(m, z.qkv);
    m->d_att = alloc_act(m, z.att);
    if (part_cp(&m->part) > 1) alloc_ring(m);
    m->att_work = alloc_bytes(m, m->ops->attention_work_bytes(m->B, m->T, m->heads, m->hd));
}

// Context parallelism's demands on the layout, fatal when unmet.
static void check_context_parallel(const Model *m, int T) {
    int cp = part_cp(&m->part);
    if (cp == 1) return;
    if (!m->cp || m->cp[0].next.size != 2 || m->cp[1].next.size != 2 || T % (2 * cp) != 0)
        fatal("context parallelism splits each sequence of %d tokens in 2·cp = %d chunks over "
              "a ring of cp = %d ranks: cp must divide the sequence into %d equal chunks", T,
              2 * cp, cp, 2 * cp);
    if (!m->ops->attention_block_forward || !m->ops->copy_rows)
        fatal("context parallelism: the %s backend has no ring attention (run --cp on CPU ranks)",
              m->ops->name);
}

Model *model_create(const Ops *ops, const ModelConfig *cfg, const ModelPart *part, const Comm *tp,
                    const CommRing *cp, int B, int T, int n_slots, Recompute recompute, int holds) {
    Model *m = xcalloc(1, sizeof *m);
    m->ops = ops;
    m->cfg = *cfg;
    m->part = *part;
    m->tp = tp;
    m->cp = part_cp(part) > 1 ? cp : NULL;
    check_context_parallel(m, T);
    m->B = B;
    m->T = T / part_cp(part);
    m->N = B * m->T;
    m->recompute = recompute;
    m->n_slots = n_slots;
    if (part->sp && (part->tp < 2 || m->N % part->tp != 0))
        fatal("sequence parallelism splits the %d rows of a micro-batch over the tensor-parallel "
              "group: tp %d must be at least 2 and divide them", m->N, part->tp);
    set_local_widths(m);
    params_build(&m->table, cfg, part);
    m->flat_numel = m->table.numel;
    if (holds & MODEL_HOLDS_WEIGHTS) m->params = ops->alloc(m->flat_numel * ops->act_bytes);
    if (holds & MODEL_HOLDS_GRADS) m->grads = ops->alloc(m->flat_numel * sizeof(float));
    m->unit_w = xcalloc((size_t)m->table.n_units, sizeof *m->unit_w);
    m->unit_g = xcalloc((size_t)m->table.n_units, sizeof *m->unit_g);
    for (int u = 0; u < m->table.n_units; u++) {
        size_t at = m->table.units[u].offset;
        if (m->params) m->unit_w[u] = act_at(ops, m->params, at);
        if (m->grads) m->unit_g[u] = m->grads + at;
    }
    m->state_bytes = m->ops->attention_state_bytes(B, m->T, m->heads);
    m->slots = xcalloc((size_t)n_slots, sizeof *m->slots);
    for (int s = 0; s < n_slots; s++) alloc_slot(m, &m->slots[s]);
    alloc_scratch(m);
    alloc_rope_tables(m);
    return m;
}

void model_free(Model *m) {
    if (!m) return;
    for (int s = 0; s < m->n_slots; s++) free_slot(m, &m->slots[s]);
    free(m->slots);
    void *bufs[] = {m->params, m->grads, m->xnf, m->rstdf, m->logits, m->ce_max, m->ce_stats,
                    m->ce_loss, m->d_res, m->d_xn, m->d_qkv, m->d_att,
                    m->att_work, m->rope_cos, m->rope_sin, m->gathered, m->rows_scratch,
                    m->norm_grads, m->cp_pos, m->kv_ring[0], m->kv_ring[1], m->dkv_ring[0],
                    m->dkv_ring[1]};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++)
        if (bufs[i]) m->ops->release(bufs[i]);
    params_free(&m->table);
    free(m->unit_w);
    free(m->unit_g);
    free(m);
}

const char *model_recompute_name(Recompute r) {
    return r == RECOMPUTE_FULL ? "full" : r == RECOMPUTE_SELECTIVE ? "selective" : "none";
}

double model_activation_bytes(const ModelConfig *cfg, const ModelPart *part, int B, int T,
                              int n_slots, Recompute recompute, size_t act_bytes,
                              size_t attention_state_bytes) {
    int Tl = T / part_cp(part);   // this rank's rows of a sequence
    Model m = {.cfg = *cfg, .part = *part, .B = B, .T = Tl, .N = B * Tl};
    set_local_widths(&m);
    LayerSizes z = layer_sizes(&m);
    int chunk_layers = part_chunk_max_layers(part);
    double L = chunk_layers, N = m.N, R = m.R;
    double Lk = (double)kept_layers(recompute, chunk_layers);
    double Lc = (double)cheap_layers(recompute, chunk_layers);
    // mid, qkv, att, gu, the attention state | xn1, xn2, h, rstd1, rstd2
    double kept = (1.0 * z.rd + z.qkv + z.att + z.gu) * act_bytes + attention_state_bytes;
    double cheap = (2.0 * z.rd + z.h) * act_bytes + 2 * R * sizeof(float);
    double slot = (L + 1) * z.rd * act_bytes + Lk * kept + Lc * cheap + 2 * N * sizeof(int32_t);
    // d_res, d_xn, d_qkv, d_att (∂gu and ∂h go to gu and h)
    double scratch = (1.0 * z.rd + z.nd + z.qkv + z.att) * act_bytes;
    if (part->sp) scratch += (1.0 * z.nd + z.rd) * act_bytes + 2.0 * cfg->dim * sizeof(float);
    if (part_cp(part) > 1)   // the ring's keys and values and their gradients, the positions
        scratch += 4.0 * N * 2 * m.kv_heads * m.hd * act_bytes + (double)T * sizeof(int32_t);
    if (part->last) scratch += (z.nd + N * m.vocab_rows) * act_bytes + (R + 4 * N) * sizeof(float);
    return n_slots * slot + scratch;
}

void model_set_batch(Model *m, int s, const int32_t *tokens, const int32_t *targets) {
    size_t bytes = (size_t)m->N * sizeof(int32_t);
    if (tokens) m->ops->to_device(m->slots[s].tokens, tokens, bytes);
    if (targets) m->ops->to_device(m->slots[s].targets, targets, bytes);
}

// ---- forward ----

// Sums a partial activation over the tensor-parallel group (Megatron's "g").
static void tp_sum(const Model *m, void *buf, size_t n) {
    if (m->tp->size > 1) comm_dev_allreduce(m->tp, buf, n, model_act_dtype(m), REDUCE_SUM);
}

// ---- the residual stream's rows under sequence parallelism (Megatron's) ----
// A column-parallel matmul reads all N rows: all-gathered from the TP group
// (the identity without SP).  A row-parallel matmul's partial sums go to a
// full-size buffer and are reduce-scattered to this rank's rows (summed in
// place without SP).  The backward pass does the transposes: gradients of the
// rows gathered, gradients of gathered inputs reduce-scattered.

// x (R, D) on this rank → (N, D).
static const void *rows_gather(const Model *m, const void *x) {
    if (!m->part.sp) return x;
    comm_dev_allgather(m->tp, x, m->gathered, model_stage_elems(m), model_act_dtype(m));
    return m->gathered;
}
// Where a row-parallel result of all N rows goes before rows_reduce to dst.
static void *rows_partial(const Model *m, void *dst) { return m->part.sp ? m->gathered : dst; }
// partial (N, D) summed over the TP group → dst (R, D); partial is
// rows_partial(m, dst).
static void rows_reduce(const Model *m, void *partial, void *dst) {
    if (m->part.sp)
        comm_dev_reduce_scatter(m->tp, partial, dst, model_stage_elems(m), model_act_dtype(m));
    else tp_sum(m, dst, (size_t)m->N * m->cfg.dim);
}
// The gradient of a gathered norm output, dx (N, D) partial → this rank's rows.
static const void *rows_grad(const Model *m, void *dx) {
    if (!m->part.sp) {
        tp_sum(m, dx, (size_t)m->N * m->cfg.dim);
        return dx;
    }
    rows_reduce(m, dx, m->rows_scratch);
    return m->rows_scratch;
}
// Under SP a norm's weight gradient from this rank's rows goes to
// m->norm_grads (slot 0 or 1) first and is summed over the TP group by
// norm_grads_reduce; otherwise straight to g.
static float *norm_grad(const Model *m, float *g, int slot) {
    return m->part.sp ? m->norm_grads + (size_t)slot * m->cfg.dim : g;
}
// g0 += Σ_TP norm_grads[0], g1 (NULL: none) += Σ_TP norm_grads[1]; clears them.
static void norm_grads_reduce(const Model *m, float *g0, float *g1) {
    if (!m->part.sp) return;
    size_t D = (size_t)m->cfg.dim, n = g1 ? 2 * D : D;
    comm_dev_allreduce(m->tp, m->norm_grads, n, DTYPE_F32, REDUCE_SUM);
    m->ops->add_f32(g0, g0, m->norm_grads, D);
    if (g1) m->ops->add_f32(g1, g1, m->norm_grads + D, D);
    m->ops->zero(m->norm_grads, n * sizeof(float));
}

static void *W(const Model *m, int l, int kind) {
    return model_param(m, params_layer(&m->table, l, kind));
}
static float *G(const Model *m, int l, int kind) {
    return model_grad(m, params_layer(&m->table, l, kind));
}

// Unit u's use in a pass begins and ends (UnitHooks).
static void unit_begin(const Model *m, int u, ModelPass pass) {
    if (m->hooks.begin) m->hooks.begin(m->hooks.ctx, u, pass);
}
static void unit_end(const Model *m, int u, ModelPass pass) {
    if (m->hooks.end) m->hooks.end(m->hooks.ctx, u, pass);
}
// Tied embeddings on a rank holding both ends: the head is the embedding.
static bool head_is_embedding(const Model *m) {
    return m->part.last && m->table.lm_head == m->table.embed;
}

// Views of slot a's buffers for local layer l.
typedef struct {
    void *x, *out, *mid, *xn1, *qkv, *att, *state, *xn2, *gu, *h;
    float *rstd1, *rstd2;
} LayerActs;

static LayerActs layer_acts(const Model *m, const Activations *a, int l) {
    LayerSizes z = layer_sizes(m);
    size_t k = m->recompute == RECOMPUTE_FULL ? 0 : (size_t)l;   // kept: mid, qkv, att, state, gu
    size_t c = m->recompute == RECOMPUTE_NONE ? (size_t)l : 0;   // cheap: xn1, xn2, h, rstd
    size_t R = (size_t)m->R;
    return (LayerActs){
        .x = act_at(m->ops, a->res, (size_t)l * z.rd), .out = act_at(m->ops, a->res, (size_t)(l + 1) * z.rd),
        .mid = act_at(m->ops, a->mid, k * z.rd), .xn1 = act_at(m->ops, a->xn1, c * z.rd),
        .qkv = act_at(m->ops, a->qkv, k * z.qkv), .att = act_at(m->ops, a->att, k * z.att),
        .state = (char *)a->att_state + k * m->state_bytes, .xn2 = act_at(m->ops, a->xn2, c * z.rd),
        .gu = act_at(m->ops, a->gu, k * z.gu), .h = act_at(m->ops, a->h, c * z.h),
        .rstd1 = a->rstd1 + c * R, .rstd2 = a->rstd2 + c * R};
}

// One decoder layer: local layer lt (its weights), the slot's layer l (its
// activations: the layer's place in its chunk).  With `recomputing`, stops
// once h is known: the layer's output is already stored.
static void layer_forward(Model *m, const Activations *a, int lt, int l, bool recomputing) {
    LayerActs v = layer_acts(m, a, l);
    int N = m->N, R = m->R, D = m->cfg.dim, F = m->ffn;
    float eps = (float)m->cfg.norm_eps;
    m->ops->rmsnorm_forward(v.xn1, v.rstd1, v.x, W(m, lt, LP_ATTN_NORM), R, D, eps);
    m->ops->linear_forward(v.qkv, rows_gather(m, v.xn1), W(m, lt, LP_WQ), N, D, m->qkv_dim);
    m->ops->rope_forward(v.qkv, m->rope_cos, m->rope_sin, N, m->T, m->qkv_dim,
                      m->heads + m->kv_heads, m->hd);
    if (m->cp) cp_attention_forward(m, v.att, v.state, v.qkv);
    else m->ops->attention_forward(v.att, v.state, v.qkv, m->B, m->T, m->heads, m->kv_heads, m->hd);
    void *o = rows_partial(m, v.mid);
    m->ops->linear_forward(o, v.att, W(m, lt, LP_WO), N, m->heads * m->hd, D);
    rows_reduce(m, o, v.mid);
    m->ops->add(v.mid, v.mid, v.x, (size_t)R * D);
    m->ops->rmsnorm_forward(v.xn2, v.rstd2, v.mid, W(m, lt, LP_FFN_NORM), R, D, eps);
    m->ops->linear_forward(v.gu, rows_gather(m, v.xn2), W(m, lt, LP_GATE), N, D, 2 * F);
    m->ops->swiglu_forward(v.h, v.gu, N, F);
    if (recomputing) return;
    o = rows_partial(m, v.out);
    m->ops->linear_forward(o, v.h, W(m, lt, LP_DOWN), N, F, D);
    rows_reduce(m, o, v.out);
    m->ops->add(v.out, v.out, v.mid, (size_t)R * D);
}

void *model_chunk_output(const Model *m, int s, int chunk) {
    return act_at(m->ops, m->slots[s].res,
                  (size_t)part_chunk_layers(&m->part, chunk) * model_stage_elems(m));
}

static int last_chunk(const Model *m) { return part_chunks(&m->part) - 1; }

void model_forward(Model *m, int s, int chunk) {
    Activations *a = &m->slots[s];
    const ParamTable *t = &m->table;
    if (m->part.first && chunk == 0) {
        unit_begin(m, t->embed_unit, PASS_FORWARD);
        void *e = rows_partial(m, a->res);   // vocab-parallel: each rank's rows of the table
        m->ops->embedding_forward(e, a->tokens, model_param(m, &t->t[t->embed]), m->N,
                                  m->cfg.dim, m->vocab_start, m->vocab_rows);
        unit_end(m, t->embed_unit, PASS_FORWARD);
        rows_reduce(m, e, a->res);
    }
    int l0 = part_chunk_local0(&m->part, chunk);
    for (int l = 0; l < part_chunk_layers(&m->part, chunk); l++) {
        int u = params_layer_unit(t, l0 + l);
        unit_begin(m, u, PASS_FORWARD);
        layer_forward(m, a, l0 + l, l, false);
        unit_end(m, u, PASS_FORWARD);
    }
}

double model_head_forward(Model *m, int s, float grad_scale) {
    Activations *a = &m->slots[s];
    const ParamTable *t = &m->table;
    int N = m->N, D = m->cfg.dim, V = m->vocab_rows;
    void *x = model_chunk_output(m, s, last_chunk(m));
    if (head_is_embedding(m)) unit_begin(m, t->embed_unit, PASS_FORWARD);   // the larger first
    unit_begin(m, t->head_unit, PASS_FORWARD);
    void *xn = m->part.sp ? m->rows_scratch : m->xnf;   // (R, D)
    m->ops->rmsnorm_forward(xn, m->rstdf, x, model_param(m, &t->t[t->final_norm]), m->R, D,
                         (float)m->cfg.norm_eps);
    if (m->part.sp)
        comm_dev_allgather(m->tp, xn, m->xnf, model_stage_elems(m), model_act_dtype(m));
    m->ops->linear_forward(m->logits, m->xnf, model_param(m, &t->t[t->lm_head]), N, D, V);
    unit_end(m, t->head_unit, PASS_FORWARD);
    if (head_is_embedding(m)) unit_end(m, t->embed_unit, PASS_FORWARD);
    m->ops->ce_row_max(m->ce_max, m->logits, N, V, m->vocab_valid);
    if (m->tp->size > 1) comm_dev_allreduce(m->tp, m->ce_max, (size_t)N, DTYPE_F32, REDUCE_MAX);
    m->ops->ce_stats(m->ce_stats, m->logits, m->ce_max, a->targets, N, V, m->vocab_valid,
                  m->vocab_start);
    if (m->tp->size > 1) comm_dev_allreduce(m->tp, m->ce_stats, 2 * (size_t)N, DTYPE_F32, REDUCE_SUM);
    m->ops->ce_loss_grad(m->ce_loss, m->logits, m->ce_max, m->ce_stats, a->targets, N, V,
                      m->vocab_valid, m->vocab_start, grad_scale);
    return m->ops->sum(m->ce_loss, (size_t)N);
}

int32_t model_argmax(Model *m, int row) {
    int32_t index;
    float value;
    m->ops->argmax(&index, &value, act_at(m->ops, m->logits, (size_t)row * m->vocab_rows), 1,
                m->vocab_rows, m->vocab_valid, m->vocab_start);
    if (m->tp->size == 1) return index;
    float *all = xmalloc(sizeof(float) * 2 * (size_t)m->tp->size);   // (value, id) per TP rank
    float mine[2] = {value, (float)index};   // ids < 2^24 are exact in fp32
    comm_allgather(m->tp, mine, all, 2, DTYPE_F32);
    int best = 0;
    for (int r = 1; r < m->tp->size; r++)
        if (all[2 * r] > all[2 * best]) best = r;
    int32_t id = (int32_t)all[2 * best + 1];
    free(all);
    return id;
}

void model_logits_row(Model *m, int row, float *out) {
    size_t V = (size_t)m->vocab_rows, P = (size_t)m->tp->size;
    float *mine = xmalloc(V * sizeof(float)), *all = P > 1 ? xmalloc(P * V * sizeof(float)) : mine;
    m->ops->act_to_host_f32(mine, act_at(m->ops, m->logits, (size_t)row * V), V);
    if (P > 1) comm_allgather(m->tp, mine, all, V, DTYPE_F32);   // (P, V): rank r's ids from r·V
    memcpy(out, all, (size_t)m->cfg.vocab_size * sizeof(float));   // padded rows left out
    if (all != mine) free(all);
    free(mine);
}

double model_loss_sum(Model *m, int rows) {
    return rows > 0 ? m->ops->sum(m->ce_loss, (size_t)rows * m->T) : 0.0;
}

// ---- backward ----

// Selective recomputation: the norms' outputs and 1/rms and SwiGLU's output
// of layer l, from the kept res[l], mid and gu: the forward pass's ops on the
// same inputs, so the same bits.  h first: the backward pass overwrites gu.
static void layer_recompute_cheap(Model *m, const LayerActs *v, int lt) {
    int R = m->R, D = m->cfg.dim;
    float eps = (float)m->cfg.norm_eps;
    m->ops->swiglu_forward(v->h, v->gu, m->N, m->ffn);
    m->ops->rmsnorm_forward(v->xn2, v->rstd2, v->mid, W(m, lt, LP_FFN_NORM), R, D, eps);
    m->ops->rmsnorm_forward(v->xn1, v->rstd1, v->x, W(m, lt, LP_ATTN_NORM), R, D, eps);
}

// d_res holds ∂loss/∂(layer output) on entry and ∂loss/∂(layer input) on exit
// (this rank's rows).
static void layer_backward(Model *m, const Activations *a, int lt, int l) {
    if (m->recompute == RECOMPUTE_FULL) layer_forward(m, a, lt, l, true);
    LayerActs v = layer_acts(m, a, l);
    if (m->recompute == RECOMPUTE_SELECTIVE) layer_recompute_cheap(m, &v, lt);
    int N = m->N, R = m->R, D = m->cfg.dim, F = m->ffn, HD = m->heads * m->hd;
    float *g_ffn_norm = G(m, lt, LP_FFN_NORM), *g_attn_norm = G(m, lt, LP_ATTN_NORM);
    // ∂h and ∂gu overwrite h and gu: nothing reads them after this layer's backward.
    void *d_h = v.h, *d_gu = v.gu;
    m->ops->linear_backward(d_h, G(m, lt, LP_DOWN), rows_gather(m, m->d_res), v.h,
                            W(m, lt, LP_DOWN), N, F, D);
    m->ops->swiglu_backward(d_gu, d_h, v.gu, N, F);
    m->ops->linear_backward(m->d_xn, G(m, lt, LP_GATE), d_gu, rows_gather(m, v.xn2),
                            W(m, lt, LP_GATE), N, D, 2 * F);
    m->ops->rmsnorm_backward(m->d_res, norm_grad(m, g_ffn_norm, 0), rows_grad(m, m->d_xn), v.mid,
                             W(m, lt, LP_FFN_NORM), v.rstd2, R, D);
    m->ops->linear_backward(m->d_att, G(m, lt, LP_WO), rows_gather(m, m->d_res), v.att,
                            W(m, lt, LP_WO), N, HD, D);
    if (m->cp) cp_attention_backward(m, m->d_qkv, m->d_att, v.qkv, v.att, v.state);
    else m->ops->attention_backward(m->d_qkv, m->att_work, m->d_att, v.qkv, v.att, v.state, m->B,
                                    m->T, m->heads, m->kv_heads, m->hd);
    m->ops->rope_backward(m->d_qkv, m->rope_cos, m->rope_sin, N, m->T, m->qkv_dim,
                       m->heads + m->kv_heads, m->hd);
    m->ops->linear_backward(m->d_xn, G(m, lt, LP_WQ), m->d_qkv, rows_gather(m, v.xn1),
                            W(m, lt, LP_WQ), N, D, m->qkv_dim);
    m->ops->rmsnorm_backward(m->d_res, norm_grad(m, g_attn_norm, 1), rows_grad(m, m->d_xn), v.x,
                             W(m, lt, LP_ATTN_NORM), v.rstd1, R, D);
    norm_grads_reduce(m, g_ffn_norm, g_attn_norm);
}

static void head_backward(Model *m, int s) {
    const ParamTable *t = &m->table;
    const ParamTensor *norm = &t->t[t->final_norm], *head = &t->t[t->lm_head];
    int N = m->N, D = m->cfg.dim;
    m->ops->linear_backward(m->d_xn, model_grad(m, head), m->logits, m->xnf,
                         model_param(m, head), N, D, m->vocab_rows);
    const void *d_xn = rows_grad(m, m->d_xn);
    m->ops->zero(m->d_res, model_stage_elems(m) * m->ops->act_bytes);
    void *x = model_chunk_output(m, s, last_chunk(m));
    m->ops->rmsnorm_backward(m->d_res, norm_grad(m, model_grad(m, norm), 0), d_xn, x,
                             model_param(m, norm), m->rstdf, m->R, D);
    norm_grads_reduce(m, model_grad(m, norm), NULL);
}

// The embedding tied to the head on this rank is begun with the head and
// ended after the embedding's own backward pass, so its gradient sums both
// uses.  It is begun first: a holder of units (train/zero.c) has one buffer
// for the largest unit, and gives a unit begun second the other.
void model_backward(Model *m, int s, int chunk) {
    Activations *a = &m->slots[s];
    const ParamTable *t = &m->table;
    if (m->part.last && chunk == last_chunk(m)) {
        if (head_is_embedding(m)) unit_begin(m, t->embed_unit, PASS_BACKWARD);
        unit_begin(m, t->head_unit, PASS_BACKWARD);
        head_backward(m, s);
        unit_end(m, t->head_unit, PASS_BACKWARD);
    }
    int l0 = part_chunk_local0(&m->part, chunk);
    for (int l = part_chunk_layers(&m->part, chunk) - 1; l >= 0; l--) {
        int u = params_layer_unit(t, l0 + l);
        unit_begin(m, u, PASS_BACKWARD);
        layer_backward(m, a, l0 + l, l);
        unit_end(m, u, PASS_BACKWARD);
    }
    if (m->part.first && chunk == 0) {
        const ParamTensor *e = &t->t[t->embed];
        if (!head_is_embedding(m)) unit_begin(m, t->embed_unit, PASS_BACKWARD);
        m->ops->embedding_backward(model_grad(m, e), rows_gather(m, m->d_res), a->tokens, m->N,
                                   m->cfg.dim, m->vocab_start, m->vocab_rows);
        unit_end(m, t->embed_unit, PASS_BACKWARD);
    }
}
