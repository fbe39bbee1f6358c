#include "train/zero.h"

#include <stdlib.h>
#include <string.h>

#include "core/util.h"

// ---- the layout ----

void zero_layout_init(ZeroLayout *z, const ParamTable *pt, int stage, int dp, int dp_rank) {
    *z = (ZeroLayout){.stage = stage, .dp = dp, .dp_rank = dp_rank, .n = pt->n_units};
    z->chunk = xcalloc((size_t)(z->n ? z->n : 1), sizeof *z->chunk);
    for (int u = 0; u < z->n; u++) {
        const ParamUnit *pu = &pt->units[u];
        size_t parts = stage > 0 ? (size_t)dp : 1, r = stage > 0 ? (size_t)dp_rank : 0;
        size_t len = pu->numel / parts;
        z->chunk[u] = (ZeroChunk){.begin = pu->offset + r * len, .len = len, .at = z->len};
        z->len += len;
    }
}

void zero_layout_free(ZeroLayout *z) {
    free(z->chunk);
    memset(z, 0, sizeof *z);
}

bool zero_tensor_part(const ZeroLayout *z, const ParamTensor *t, size_t *a, size_t *b, size_t *at) {
    const ZeroChunk *c = &z->chunk[t->unit];
    *a = t->offset > c->begin ? t->offset : c->begin;
    *b = t->offset + t->numel < c->begin + c->len ? t->offset + t->numel : c->begin + c->len;
    *at = c->at + (*a - c->begin);
    return *a < *b;
}

// ---- slots ----

static void slot_wait(Zero *z, ZeroSlot *s) {
    if (!s->pending) return;
    comm_dev_wait(&z->grid->replica_comm, &s->req);
    s->pending = false;
}

// The slot of `slots` holding unit u, or NULL.
static ZeroSlot *slot_of(ZeroSlot *slots, int u) {
    for (int i = 0; i < ZERO_SLOTS; i++)
        if (slots[i].unit == u) return &slots[i];
    return NULL;
}

// A slot that is not in use and holds n elements: one with nothing in flight
// first, else the one whose transfer was posted first; the smaller of equals.
// NULL when none (idle_only: none without a transfer in flight).
static ZeroSlot *slot_free(ZeroSlot *slots, size_t n, bool idle_only) {
    ZeroSlot *best = NULL;
    for (int i = 0; i < ZERO_SLOTS; i++) {
        ZeroSlot *s = &slots[i];
        if (s->busy || s->cap < n || (idle_only && s->pending)) continue;
        if (!best || (best->pending && (!s->pending || s->posted < best->posted)) ||
            (best->pending == s->pending && !s->pending && s->cap < best->cap))
            best = s;
    }
    return best;
}

static ZeroSlot *slot_take(Zero *z, ZeroSlot *slots, int u) {
    ZeroSlot *s = slot_free(slots, z->model->table.units[u].numel, false);
    if (!s) fatal("ZeRO: no buffer free for unit %d (internal error)", u);
    slot_wait(z, s);
    s->unit = u;
    return s;
}

// Caps: the largest unit, and the largest without a vocabulary matrix.
static void slots_alloc(Zero *z, ZeroSlot *slots, size_t elem_bytes) {
    size_t caps[ZERO_SLOTS];
    params_unit_sizes(&z->model->table, &caps[0], &caps[1]);
    for (int i = 0; i < ZERO_SLOTS; i++)
        slots[i] = (ZeroSlot){.buf = z->ops->alloc(caps[i] * elem_bytes), .cap = caps[i],
                              .unit = -1};
}

static void slots_free(Zero *z, ZeroSlot *slots) {
    for (int i = 0; i < ZERO_SLOTS; i++) {
        slot_wait(z, &slots[i]);
        if (slots[i].buf) z->ops->release(slots[i].buf);
    }
}

// ---- ZeRO-3: weights ----

static void gather_post(Zero *z, ZeroSlot *s, int u) {
    const ZeroChunk *c = &z->lay.chunk[u];
    const Ops *ops = z->ops;
    void *mine = act_at(ops, s->buf, (size_t)z->lay.dp_rank * c->len);
    ops->copy(mine, act_at(ops, z->compute_shard, c->at), c->len * ops->act_bytes);
    s->req = comm_dev_iallgather(&z->grid->replica_comm, mine, s->buf, c->len, model_act_dtype(z->model));
    s->pending = true;
    s->posted = ++z->clock;
}

// The next unit of the pass (forward: up, backward: down) gathered ahead into
// an idle slot, when there is one.
static void prefetch(Zero *z, int u, ModelPass pass) {
    int next = pass == PASS_FORWARD ? u + 1 : u - 1;
    if (next < 0 || next >= z->lay.n || slot_of(z->w, next)) return;
    ZeroSlot *s = slot_free(z->w, z->model->table.units[next].numel, true);
    if (!s) return;
    s->unit = next;
    gather_post(z, s, next);
}

static void weights_begin(Zero *z, int u, ModelPass pass) {
    ZeroSlot *s = slot_of(z->w, u);
    if (!s) {
        s = slot_take(z, z->w, u);
        gather_post(z, s, u);
    }
    slot_wait(z, s);
    s->busy = true;
    z->model->unit_w[u] = s->buf;
    prefetch(z, u, pass);
}

static void weights_end(Zero *z, int u) {
    ZeroSlot *s = slot_of(z->w, u);
    if (s) s->busy = false;
    z->model->unit_w[u] = NULL;
}

// ---- ZeRO-2/3: gradient buckets ----

// The bucket starts as zeros except for this rank's chunk, which holds the
// shard's running sum: the reduce-scatter then yields "accumulated + new".
static void bucket_begin(Zero *z, int u) {
    ZeroSlot *prior = slot_of(z->g, u);
    if (prior) {   // the last micro-batch's reduction of this unit must have landed
        slot_wait(z, prior);
        prior->unit = -1;
    }
    ZeroSlot *s = slot_take(z, z->g, u);
    const ZeroChunk *c = &z->lay.chunk[u];
    float *b = s->buf;
    z->ops->zero(b, z->model->table.units[u].numel * sizeof(float));
    z->ops->copy(b + (size_t)z->lay.dp_rank * c->len, z->grad_shard + c->at, c->len * sizeof(float));
    s->busy = true;
    z->model->unit_g[u] = b;
}

static void bucket_end(Zero *z, int u) {
    ZeroSlot *s = slot_of(z->g, u);
    const ZeroChunk *c = &z->lay.chunk[u];
    s->req = comm_dev_ireduce_scatter(&z->grid->replica_comm, s->buf, z->grad_shard + c->at, c->len,
                                      DTYPE_F32);
    s->pending = true;
    s->posted = ++z->clock;
    s->busy = false;
    z->model->unit_g[u] = NULL;
}

// ---- ZeRO-0/1: reductions of the full gradient buffer ----

static void reduce_post(Zero *z, int u) {
    const ParamUnit *pu = &z->model->table.units[u];
    float *g = z->model->grads + pu->offset;
    const Comm *dp = &z->grid->replica_comm;
    if (z->n_pending == z->lay.n) fatal("ZeRO: more gradient reductions than units (internal error)");
    z->pending[z->n_pending++] =
        z->lay.stage == 0 ? comm_dev_iallreduce(dp, g, pu->numel, DTYPE_F32, REDUCE_SUM)
                          : comm_dev_ireduce_scatter(dp, g, z->grad_shard + z->lay.chunk[u].at,
                                                     z->lay.chunk[u].len, DTYPE_F32);
    z->n_posted += pu->numel;
}

// ---- the model's hooks ----

static void hook_begin(void *ctx, int u, ModelPass pass) {
    Zero *z = ctx;
    if (z->lay.stage == 3) weights_begin(z, u, pass);
    if (pass == PASS_BACKWARD && z->lay.stage >= 2) bucket_begin(z, u);
}

static void hook_end(void *ctx, int u, ModelPass pass) {
    Zero *z = ctx;
    if (z->lay.stage == 3) weights_end(z, u);
    if (pass != PASS_BACKWARD) return;
    if (z->lay.stage >= 2) bucket_end(z, u);
    else if (z->reducing) reduce_post(z, u);
}

int zero_model_holds(int stage) {
    return stage >= 3 ? 0 : stage == 2 ? MODEL_HOLDS_WEIGHTS : MODEL_HOLDS_ALL;
}

Zero *zero_create(int stage, bool overlap, Model *m, const Grid *g) {
    Zero *z = xcalloc(1, sizeof *z);
    z->model = m;
    z->ops = m->ops;
    z->grid = g;
    z->overlap = overlap && g->replicas > 1;
    zero_layout_init(&z->lay, &m->table, stage, g->replicas, g->replica_rank);
    if (stage > 0) z->grad_shard = z->ops->alloc(z->lay.len * sizeof(float));
    if (stage >= 3) slots_alloc(z, z->w, z->ops->act_bytes);
    if (stage >= 2) slots_alloc(z, z->g, sizeof(float));
    z->pending = xcalloc((size_t)(z->lay.n ? z->lay.n : 1), sizeof *z->pending);
    m->hooks = (UnitHooks){.begin = hook_begin, .end = hook_end, .ctx = z};
    return z;
}

void zero_free(Zero *z) {
    if (!z) return;
    if (z->lay.stage >= 3) slots_free(z, z->w);
    if (z->lay.stage >= 2) slots_free(z, z->g);
    if (z->grad_shard) z->ops->release(z->grad_shard);
    free(z->pending);
    zero_layout_free(&z->lay);
    free(z);
}

void zero_before_backward(Zero *z, bool last) {
    z->reducing = last && z->overlap && z->lay.stage < 2;
}

float *zero_grads(const Zero *z) {
    return z->lay.stage > 0 ? z->grad_shard : z->model->grads;
}

// Waits for the reductions posted during the backward pass, which must have
// covered every gradient exactly once.
static void wait_posted(Zero *z) {
    if (z->n_posted != z->model->table.numel)
        fatal("ZeRO: the backward pass reduced %zu of %zu gradients (internal error)", z->n_posted,
              z->model->table.numel);
    for (int i = 0; i < z->n_pending; i++) comm_dev_wait(&z->grid->replica_comm, &z->pending[i]);
    z->n_pending = 0;
    z->n_posted = 0;
}

static void reduce_all(Zero *z) {
    const Comm *dp = &z->grid->replica_comm;
    Model *m = z->model;
    if (z->lay.stage == 0) {
        comm_dev_allreduce(dp, m->grads, m->flat_numel, DTYPE_F32, REDUCE_SUM);
        return;
    }
    for (int u = 0; u < z->lay.n; u++)
        comm_dev_reduce_scatter(dp, m->grads + m->table.units[u].offset,
                                z->grad_shard + z->lay.chunk[u].at, z->lay.chunk[u].len, DTYPE_F32);
}

// The embedding a pipeline's first and last stage both hold when it is tied
// (the last stage's copy serves as its LM head); NULL elsewhere.
static const ParamTensor *tied_tensor(const Zero *z) {
    const ParamTable *pt = &z->model->table;
    if (!z->model->cfg.tie_embeddings || z->grid->pp == 1) return NULL;
    if (pt->embed >= 0) return &pt->t[pt->embed];
    return pt->lm_head >= 0 ? &pt->t[pt->lm_head] : NULL;
}

// Tied embeddings over a pipeline (Megatron's embedding group): once reduced
// over DP, the first stage's embedding gradient and the last stage's head
// gradient are summed, so both copies take the same update.  Under ZeRO the
// reduced gradient is spread over the shards: it is gathered first (each
// element has one owner, so the sum is exact) in a unit-sized scratch (the
// model's buffer, or the large gradient bucket) and the shard takes its part back.
static void reduce_tied(Zero *z) {
    const ParamTensor *t = tied_tensor(z);
    if (!t) return;
    Model *m = z->model;
    const ParamUnit *pu = &m->table.units[t->unit];
    float *unit = m->grads ? m->grads + pu->offset : z->g[0].buf;   // (pu->numel)
    float *g = unit + (t->offset - pu->offset);
    size_t a = 0, b = 0, at = 0, bytes;
    bool mine = zero_tensor_part(&z->lay, t, &a, &b, &at);
    bytes = (b - a) * sizeof(float);
    if (z->lay.stage > 0) {
        z->ops->zero(g, t->numel * sizeof(float));
        if (mine) z->ops->copy(unit + (a - pu->offset), z->grad_shard + at, bytes);
        comm_dev_allreduce(&z->grid->replica_comm, g, t->numel, DTYPE_F32, REDUCE_SUM);
    }
    comm_dev_allreduce(&z->grid->embed_comm, g, t->numel, DTYPE_F32, REDUCE_SUM);
    if (z->lay.stage > 0 && mine) z->ops->copy(z->grad_shard + at, unit + (a - pu->offset), bytes);
}

void zero_finish_reduce(Zero *z) {
    if (z->lay.stage >= 2) {
        for (int i = 0; i < ZERO_SLOTS; i++) {
            slot_wait(z, &z->g[i]);
            z->g[i].unit = -1;
        }
    } else if (z->overlap) {
        wait_posted(z);
    } else if (z->grid->replicas > 1) {
        reduce_all(z);
    }
    z->reducing = false;
    reduce_tied(z);
}

// Stages 1–2: each unit's updated chunk to every rank; 3: gathered weights
// are stale (a prefetch in flight too: waited for and dropped).
void zero_drop_gathered(Zero *z) {
    if (z->lay.stage < 3) return;
    for (int i = 0; i < ZERO_SLOTS; i++) {
        slot_wait(z, &z->w[i]);
        z->w[i].unit = -1;
    }
}

void zero_publish_weights(Zero *z) {
    Model *m = z->model;
    if (z->lay.stage == 3) {
        zero_drop_gathered(z);
        return;
    }
    if (z->lay.stage == 0) return;
    for (int u = 0; u < z->lay.n; u++) {
        const ZeroChunk *c = &z->lay.chunk[u];
        comm_dev_allgather(&z->grid->replica_comm, act_at(z->ops, m->params, c->begin),
                           act_at(z->ops, m->params, m->table.units[u].offset), c->len,
                           model_act_dtype(m));
    }
}

void zero_clear_grads(Zero *z) {
    Model *m = z->model;
    if (m->grads) z->ops->zero(m->grads, m->flat_numel * sizeof(float));
    if (z->grad_shard) z->ops->zero(z->grad_shard, z->lay.len * sizeof(float));
}

// Points every unit's weights into the model's full buffer (or at nothing).
static void point_units(Zero *z) {
    Model *m = z->model;
    for (int u = 0; u < z->lay.n; u++)
        m->unit_w[u] = m->params ? act_at(z->ops, m->params, m->table.units[u].offset) : NULL;
}

void zero_full_weights_hold(Zero *z, bool gather) {
    Model *m = z->model;
    m->params = z->ops->alloc(m->flat_numel * z->ops->act_bytes);
    point_units(z);
    if (!gather) return;
    for (int u = 0; u < z->lay.n; u++) {
        const ZeroChunk *c = &z->lay.chunk[u];
        comm_dev_allgather(&z->grid->replica_comm, act_at(z->ops, z->compute_shard, c->at), m->unit_w[u],
                           c->len, model_act_dtype(m));
    }
}

void zero_full_weights_drop(Zero *z, bool keep) {
    Model *m = z->model;
    for (int u = 0; keep && u < z->lay.n; u++) {
        const ZeroChunk *c = &z->lay.chunk[u];
        z->ops->copy(act_at(z->ops, z->compute_shard, c->at), act_at(z->ops, m->params, c->begin),
                     c->len * z->ops->act_bytes);
    }
    z->ops->release(m->params);
    m->params = NULL;
    point_units(z);
}
