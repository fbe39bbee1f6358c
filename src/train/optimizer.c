#include "train/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/elementwise.h"
#include "core/util.h"

double lr_at(const OptimizerConfig *c, int64_t step) {
    if (step < c->warmup_steps) return c->lr * (double)(step + 1) / (double)c->warmup_steps;
    int64_t span = c->total_steps - c->warmup_steps;
    double progress = span > 0 ? (double)(step - c->warmup_steps) / (double)span : 1.0;
    if (progress > 1.0) progress = 1.0;
    double min_lr = c->lr * c->min_lr_ratio;
    return min_lr + 0.5 * (c->lr - min_lr) * (1.0 + cos(M_PI * progress));
}

bool optimizer_keeps_master(int zero, size_t act_bytes) {
    return zero > 0 || act_bytes != sizeof(float);
}

Optimizer *optimizer_create(const OptimizerConfig *cfg, Model *m, const Grid *g) {
    Optimizer *o = xcalloc(1, sizeof *o);
    o->cfg = *cfg;
    o->model = m;
    o->ops = m->ops;
    o->grid = g;
    if (cfg->zero > 0) {
        o->shard_len = m->flat_numel / (size_t)g->dp;
        o->shard_begin = o->shard_len * (size_t)g->dp_rank;
        o->grad_shard = o->ops->alloc(o->shard_len * sizeof(float));
    } else {
        o->shard_begin = 0;
        o->shard_len = m->flat_numel;
    }
    o->master_owned = optimizer_keeps_master(cfg->zero, o->ops->act_bytes);
    o->master = o->master_owned ? o->ops->alloc(o->shard_len * sizeof(float)) : (float *)m->params;
    o->m1 = o->ops->alloc(o->shard_len * sizeof(float));
    o->m2 = o->ops->alloc(o->shard_len * sizeof(float));
    o->overlap = optimizer_overlaps(cfg->overlap_grad_reduce, cfg->zero, g->dp);
    m->grads_ready_ctx = o;
    o->max_pending = m->table.n;   // at most one request per tensor
    o->pending = xcalloc((size_t)o->max_pending, sizeof *o->pending);
    return o;
}

void optimizer_free(Optimizer *o) {
    if (!o) return;
    if (o->master_owned) o->ops->release(o->master);
    if (o->grad_shard) o->ops->release(o->grad_shard);
    o->ops->release(o->m1);
    o->ops->release(o->m2);
    free(o->pending);
    free(o);
}

void optimizer_sync_master(Optimizer *o) {
    if (o->master_owned)
        o->ops->act_to_f32(o->master, act_at(o->ops, o->model->params, o->shard_begin), o->shard_len);
}

static void post_allreduce(void *ctx, size_t offset, size_t numel) {
    Optimizer *o = ctx;
    if (o->n_pending == o->max_pending) fatal("optimizer: more gradient ranges than tensors");
    o->pending[o->n_pending++] = comm_dev_iallreduce(&o->grid->dp_comm, o->model->grads + offset,
                                                     numel, DTYPE_F32, REDUCE_SUM);
    o->n_posted += numel;
}

void optimizer_before_backward(Optimizer *o, bool last) {
    o->model->grads_ready = o->overlap && last ? post_allreduce : NULL;
}

// Waits for the all-reduces the backward pass posted, which must have covered
// every gradient exactly once (the flat buffer's padding excepted: zeros).
static void wait_posted(Optimizer *o) {
    Model *m = o->model;
    if (o->n_posted != m->table.numel)
        fatal("optimizer: the backward pass all-reduced %zu of %zu gradients (internal error)",
              o->n_posted, m->table.numel);
    for (int i = 0; i < o->n_pending; i++) comm_dev_wait(&o->grid->dp_comm, &o->pending[i]);
    o->n_pending = 0;
    o->n_posted = 0;
    m->grads_ready = NULL;
}

// ZeRO-2: reduce-scatter this micro-step's gradients into the shard, then
// clear the full buffer except for this rank's region, which gets the running
// sum back: the next reduce-scatter then sums exactly "accumulated + new".
void optimizer_after_micro_step(Optimizer *o) {
    if (o->cfg.zero < 2) return;
    Model *m = o->model;
    comm_dev_reduce_scatter(&o->grid->dp_comm, m->grads, o->grad_shard, o->shard_len, DTYPE_F32);
    o->ops->zero(m->grads, m->flat_numel * sizeof(float));
    o->ops->copy(m->grads + o->shard_begin, o->grad_shard, o->shard_len * sizeof(float));
}

// The gradient this rank updates with, over the flat range [shard_begin, +shard_len).
static float *owned_grads(const Optimizer *o) {
    return o->cfg.zero > 0 ? o->grad_shard : o->model->grads;
}

// The part [*a, *b) of tensor t inside this rank's shard; false when empty.
static bool shard_part(const Optimizer *o, const ParamTensor *t, size_t *a, size_t *b) {
    size_t lo = o->shard_begin, hi = o->shard_begin + o->shard_len;
    *a = t->offset > lo ? t->offset : lo;
    *b = t->offset + t->numel < hi ? t->offset + t->numel : hi;
    return *a < *b;
}

static void reduce_grads(Optimizer *o) {
    Model *m = o->model;
    const Comm *dp = &o->grid->dp_comm;
    if (o->overlap) wait_posted(o);
    else if (o->cfg.zero == 0)
        comm_dev_allreduce(dp, m->grads, m->flat_numel, DTYPE_F32, REDUCE_SUM);
    else if (o->cfg.zero == 1)
        comm_dev_reduce_scatter(dp, m->grads, o->grad_shard, o->shard_len, DTYPE_F32);
    // ZeRO-2 reduced after every micro-step already.
}

// The embedding a pipeline's first and last stage both hold when it is tied
// (the last stage's copy serves as its LM head); NULL elsewhere.
static const ParamTensor *tied_tensor(const Optimizer *o) {
    const ParamTable *pt = &o->model->table;
    if (!o->model->cfg.tie_embeddings || o->grid->pp == 1) return NULL;
    if (pt->embed >= 0) return &pt->t[pt->embed];
    return pt->lm_head >= 0 ? &pt->t[pt->lm_head] : NULL;
}

// Tied embeddings over a pipeline (Megatron's embedding group): once reduced
// over DP, the first stage's embedding gradient and the last stage's head
// gradient are summed, so both copies take the same update.  Under ZeRO the
// reduced gradient is spread over the shards: it is gathered first (each
// element has one owner, so the sum is exact) and the shard takes its part back.
static void reduce_tied(Optimizer *o) {
    const ParamTensor *t = tied_tensor(o);
    if (!t) return;
    float *g = o->model->grads + t->offset;
    size_t a = 0, b = 0, bytes;
    bool mine = shard_part(o, t, &a, &b);
    bytes = (b - a) * sizeof(float);
    if (o->cfg.zero > 0) {
        o->ops->zero(g, t->numel * sizeof(float));
        if (mine) o->ops->copy(o->model->grads + a, o->grad_shard + (a - o->shard_begin), bytes);
        comm_dev_allreduce(&o->grid->dp_comm, g, t->numel, DTYPE_F32, REDUCE_SUM);
    }
    comm_dev_allreduce(&o->grid->embed_comm, g, t->numel, DTYPE_F32, REDUCE_SUM);
    if (o->cfg.zero > 0 && mine)
        o->ops->copy(o->grad_shard + (a - o->shard_begin), o->model->grads + a, bytes);
}

// Tensors [first, next) of the table: their shard parts form the one range
// [a, b) of the flat buffers, for one op call instead of one per tensor (a
// step of 1b has 201 tensors: one launch, and for the norm one host sync, each).
typedef struct {
    int first, next;
    size_t a, b;
} Run;

// RunRule(o, NULL, t): whether tensor t is wanted at all; RunRule(o, first, t):
// whether t may join the run that began with tensor `first`.
typedef bool (*RunRule)(const Optimizer *o, const ParamTensor *first, const ParamTensor *t);

// The next run, from r->next on, of wanted tensors that lie back to back in
// this rank's shard and that `rule` lets share a call; false when none is left.
static bool next_run(const Optimizer *o, Run *r, RunRule rule) {
    const ParamTable *pt = &o->model->table;
    size_t a = 0, b = 0;
    while (r->next < pt->n &&
           !(rule(o, NULL, &pt->t[r->next]) && shard_part(o, &pt->t[r->next], &a, &b)))
        r->next++;
    if (r->next >= pt->n) return false;
    r->first = r->next++;
    r->a = a, r->b = b;
    while (r->next < pt->n) {
        const ParamTensor *t = &pt->t[r->next];
        if (!rule(o, &pt->t[r->first], t) || !shard_part(o, t, &a, &b) || a != r->b) break;
        r->b = b;
        r->next++;
    }
    return true;
}

// TP-replicated tensors count on tp_rank 0 only; a tied embedding on its first stage only.
static bool counts_in_norm(const Optimizer *o, const ParamTensor *first, const ParamTensor *t) {
    (void)first;
    return !t->tied_copy && (t->split != SPLIT_NONE || o->grid->tp_rank == 0);
}

// Σ g² over every parameter exactly once in the whole grid: DP replicas count
// once (or each its shard), TP-replicated tensors once.
static double global_grad_norm(const Optimizer *o) {
    const float *g = owned_grads(o);
    double local = 0;
    Run r = {0};
    if (o->cfg.zero > 0 || o->grid->dp_rank == 0)
        while (next_run(o, &r, counts_in_norm))
            local += o->ops->sum_squares(g + (r.a - o->shard_begin), r.b - r.a);
    comm_allreduce(&o->grid->world, &local, 1, DTYPE_F64, REDUCE_SUM);
    return sqrt(local);
}

// One AdamW call covers tensors that all decay or all do not.
static bool same_decay(const Optimizer *o, const ParamTensor *first, const ParamTensor *t) {
    (void)o;
    return !first || first->decay == t->decay;
}

// The update of this rank's shard, the gradient times grad_scale; with its own
// master copy, the compute weights are written in the same pass.
static void adam_update(Optimizer *o, float lr, float grad_scale) {
    float *g = owned_grads(o);
    const OptimizerConfig *c = &o->cfg;
    AdamwStep decay = adamw_step(lr, (float)c->beta1, (float)c->beta2, (float)c->eps,
                                 (float)c->weight_decay, (int)o->step, grad_scale);
    AdamwStep plain = adamw_step(lr, (float)c->beta1, (float)c->beta2, (float)c->eps, 0.0f,
                                 (int)o->step, grad_scale);
    Run r = {0};
    while (next_run(o, &r, same_decay)) {
        size_t k = r.a - o->shard_begin;
        void *param = o->master_owned ? act_at(o->ops, o->model->params, r.a) : NULL;
        o->ops->adamw(o->master + k, o->m1 + k, o->m2 + k, g + k, param, r.b - r.a,
                   o->model->table.t[r.first].decay ? &decay : &plain);
    }
}

// Under ZeRO, each rank's updated shard of the compute weights to every rank.
static void gather_params(Optimizer *o) {
    Model *m = o->model;
    if (o->cfg.zero == 0) return;
    void *mine = act_at(o->ops, m->params, o->shard_begin);
    comm_dev_allgather(&o->grid->dp_comm, mine, m->params, o->shard_len, model_act_dtype(m));
}

double optimizer_reduce(Optimizer *o) {
    reduce_grads(o);
    reduce_tied(o);
    return global_grad_norm(o);
}

void optimizer_apply(Optimizer *o, double norm) {
    double coef = o->cfg.grad_clip / (norm + 1e-6);   // torch.nn.utils.clip_grad_norm_
    float grad_scale = o->cfg.grad_clip > 0 && coef < 1.0 ? (float)coef : 1.0f;
    double lr = lr_at(&o->cfg, o->step);
    o->step++;
    adam_update(o, (float)lr, grad_scale);
    gather_params(o);
    o->ops->zero(o->model->grads, o->model->flat_numel * sizeof(float));
}

void optimizer_discard(Optimizer *o) {
    o->ops->zero(o->model->grads, o->model->flat_numel * sizeof(float));
}

double optimizer_step(Optimizer *o) {
    double norm = optimizer_reduce(o);
    optimizer_apply(o, norm);
    return norm;
}

// Largest |x| of n device floats, +inf when any is NaN or infinite.
static double max_abs(const Ops *ops, const float *x, size_t n, float *host, size_t chunk) {
    double m = 0;
    for (size_t a = 0; a < n; a += chunk) {
        size_t k = n - a < chunk ? n - a : chunk;
        ops->to_host(host, x + a, k * sizeof(float));
        for (size_t i = 0; i < k; i++) {
            double v = fabs((double)host[i]);
            if (!isfinite(v)) return INFINITY;
            if (v > m) m = v;
        }
    }
    return m;
}

double optimizer_max_abs_weight(const Optimizer *o) {
    const size_t chunk = (size_t)1 << 20;
    double m = 0;
    if (o->cfg.zero > 0 || o->grid->dp_rank == 0) {   // ZeRO 0: DP replicas hold the same
        float *host = xmalloc(chunk * sizeof(float));
        m = max_abs(o->ops, o->master, o->shard_len, host, chunk);
        free(host);
    }
    comm_allreduce(&o->grid->world, &m, 1, DTYPE_F64, REDUCE_MAX);
    return m;
}
