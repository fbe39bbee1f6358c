#include "train/optimizer.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "backend/elementwise.h"
#include "core/util.h"

bool optimizer_keeps_master(int zero, size_t act_bytes) {
    return zero > 0 || act_bytes != sizeof(float);
}

// n floats of optimizer state: device memory, or with offload pinned host memory.
static float *state_alloc(const Optimizer *o, size_t n) {
    if (!o->offload) return o->ops->alloc(n * sizeof(float));
    return o->ops->host_alloc ? o->ops->host_alloc(n * sizeof(float)) : xcalloc(n ? n : 1, sizeof(float));
}

static void state_release(const Optimizer *o, float *p) {
    if (!o->offload) o->ops->release(p);
    else if (o->ops->host_alloc) o->ops->host_release(p);
    else free(p);
}

Optimizer *optimizer_create(const OptimizerConfig *cfg, Model *m, const Grid *g) {
    Optimizer *o = xcalloc(1, sizeof *o);
    o->cfg = *cfg;
    o->model = m;
    o->ops = m->ops;
    o->grid = g;
    o->offload = cfg->offload && !o->ops->host_memory;   // CPU ranks: host memory already
    o->state_ops = o->offload ? &ops_cpu : o->ops;
    o->zero = zero_create(cfg->zero, cfg->overlap_grad_reduce, m, g);
    o->shard_len = o->zero->lay.len;
    o->master_owned = o->offload || optimizer_keeps_master(cfg->zero, o->ops->act_bytes);
    o->master = o->master_owned ? state_alloc(o, o->shard_len) : (float *)m->params;
    o->m1 = state_alloc(o, o->shard_len);
    o->m2 = state_alloc(o, o->shard_len);
    if (o->offload) o->host_grads = state_alloc(o, o->shard_len);
    if (cfg->zero >= 3) {   // the compute weights' shard: the master weights themselves when fp32
        o->compute_owned = o->offload || o->ops->act_bytes != sizeof(float);
        o->zero->compute_shard = o->compute_owned
                                     ? o->ops->alloc(o->shard_len * o->ops->act_bytes) : o->master;
    }
    return o;
}

void optimizer_free(Optimizer *o) {
    if (!o) return;
    if (o->master_owned) state_release(o, o->master);
    if (o->compute_owned) o->ops->release(o->zero->compute_shard);
    state_release(o, o->m1);
    state_release(o, o->m2);
    if (o->host_grads) state_release(o, o->host_grads);
    zero_free(o->zero);
    free(o);
}

// n compute weights (act, device) to fp32 master weights (device, or host with offload).
static void master_from_act(const Optimizer *o, float *master, const void *act, size_t n) {
    if (o->offload) o->ops->act_to_host_f32(master, act, n);
    else o->ops->act_to_f32(master, act, n);
}

static void act_from_master(const Optimizer *o, void *act, const float *master, size_t n) {
    if (o->offload) o->ops->act_from_host_f32(act, master, n);
    else o->ops->f32_to_act(act, master, n);
}

void optimizer_sync_master(Optimizer *o) {
    const ZeroLayout *z = &o->zero->lay;
    if (z->stage >= 3) {
        if (o->compute_owned) master_from_act(o, o->master, o->zero->compute_shard, o->shard_len);
        return;
    }
    if (!o->master_owned) return;
    for (int u = 0; u < z->n; u++)
        master_from_act(o, o->master + z->chunk[u].at,
                        act_at(o->ops, o->model->params, z->chunk[u].begin), z->chunk[u].len);
}

void optimizer_weights_loaded(Optimizer *o) {
    if (o->compute_owned) act_from_master(o, o->zero->compute_shard, o->master, o->shard_len);
    zero_drop_gathered(o->zero);   // a rollback: what was gathered before is stale
}

void optimizer_before_backward(Optimizer *o, bool last) {
    zero_before_backward(o->zero, last);
}

// Tensors [first, next) of the table: their shard parts form the one range
// [a, b) of the flat buffers, for one op call instead of one per tensor (a
// step of 1b has 201 tensors: one launch, and for the norm one host sync, each).
typedef struct {
    int first, next;
    size_t a, b;   // flat range
    size_t at;     // its shard index
} Run;

// RunRule(o, NULL, t): whether tensor t is wanted at all; RunRule(o, first, t):
// whether t may join the run that began with tensor `first`.
typedef bool (*RunRule)(const Optimizer *o, const ParamTensor *first, const ParamTensor *t);

// The next run, from r->next on, of wanted tensors that lie back to back in
// this rank's shard and that `rule` lets share a call; false when none is left.
// Back to back means in the flat buffers and in the shard both.
static bool next_run(const Optimizer *o, Run *r, RunRule rule) {
    const ParamTable *pt = &o->model->table;
    const ZeroLayout *z = &o->zero->lay;
    size_t a = 0, b = 0, at = 0;
    while (r->next < pt->n &&
           !(rule(o, NULL, &pt->t[r->next]) && zero_tensor_part(z, &pt->t[r->next], &a, &b, &at)))
        r->next++;
    if (r->next >= pt->n) return false;
    r->first = r->next++;
    r->a = a, r->b = b, r->at = at;
    while (r->next < pt->n) {
        const ParamTensor *t = &pt->t[r->next];
        if (!rule(o, &pt->t[r->first], t) || !zero_tensor_part(z, t, &a, &b, &at) || a != r->b ||
            at != r->at + (r->b - r->a))
            break;
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
    const float *g = zero_grads(o->zero);
    double local = 0;
    Run r = {0};
    if (o->cfg.zero > 0 || o->grid->replica_rank == 0)
        while (next_run(o, &r, counts_in_norm))
            local += o->ops->sum_squares(g + r.at, r.b - r.a);
    comm_allreduce(&o->grid->world, &local, 1, DTYPE_F64, REDUCE_SUM);
    return sqrt(local);
}

// Where the update writes the compute weights of run r: the model's buffer
// (stages 0–2 with master weights of their own), the compute shard (stage 3,
// bf16), or nowhere (they are the master weights).
static void *compute_copy(const Optimizer *o, const Run *r) {
    if (o->cfg.zero >= 3) return o->compute_owned ? act_at(o->ops, o->zero->compute_shard, r->at) : NULL;
    return o->master_owned ? act_at(o->ops, o->model->params, r->a) : NULL;
}

// One AdamW call covers tensors that all decay or all do not.
static bool same_decay(const Optimizer *o, const ParamTensor *first, const ParamTensor *t) {
    (void)o;
    return !first || first->decay == t->decay;
}

// The update of this rank's shard, the gradient times grad_scale; with its own
// master copy, the compute weights are written in the same pass.
static void adam_update(Optimizer *o, float lr, float grad_scale) {
    float *g = zero_grads(o->zero);
    const OptimizerConfig *c = &o->cfg;
    AdamwStep decay = adamw_step(lr, (float)c->beta1, (float)c->beta2, (float)c->eps,
                                 (float)c->weight_decay, (int)o->step, grad_scale);
    AdamwStep plain = adamw_step(lr, (float)c->beta1, (float)c->beta2, (float)c->eps, 0.0f,
                                 (int)o->step, grad_scale);
    if (o->offload) {   // the host's AdamW on the host's copy of the gradient
        o->ops->to_host(o->host_grads, g, o->shard_len * sizeof(float));
        g = o->host_grads;
    }
    Run r = {0};
    while (next_run(o, &r, same_decay)) {
        size_t k = r.at, n = r.b - r.a;
        const AdamwStep *step = o->model->table.t[r.first].decay ? &decay : &plain;
        // Offloaded, the host's update cannot write device weights: they follow it.
        void *param = o->offload ? NULL : compute_copy(o, &r);
        o->state_ops->adamw(o->master + k, o->m1 + k, o->m2 + k, g + k, param, n, step);
        if (o->offload && o->cfg.zero < 3) o->ops->act_from_host_f32(compute_copy(o, &r), o->master + k, n);
    }
    if (o->offload && o->cfg.zero >= 3)   // the compute shard is contiguous: one copy
        o->ops->act_from_host_f32(o->zero->compute_shard, o->master, o->shard_len);
}

double optimizer_reduce(Optimizer *o) {
    zero_finish_reduce(o->zero);
    return global_grad_norm(o);
}

void optimizer_apply(Optimizer *o, double norm) {
    double coef = o->cfg.grad_clip / (norm + 1e-6);   // torch.nn.utils.clip_grad_norm_
    float grad_scale = o->cfg.grad_clip > 0 && coef < 1.0 ? (float)coef : 1.0f;
    double lr = lr_schedule_at(&o->cfg.schedule, o->step);
    o->step++;
    adam_update(o, (float)lr, grad_scale);
    zero_publish_weights(o->zero);
    zero_clear_grads(o->zero);
}

void optimizer_discard(Optimizer *o) {
    zero_clear_grads(o->zero);
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
    if (o->cfg.zero > 0 || o->grid->replica_rank == 0) {   // ZeRO 0: DP replicas hold the same
        float *host = xmalloc(chunk * sizeof(float));
        m = max_abs(o->state_ops, o->master, o->shard_len, host, chunk);   // shard padding: zeros
        free(host);
    }
    comm_allreduce(&o->grid->world, &m, 1, DTYPE_F64, REDUCE_MAX);
    return m;
}
