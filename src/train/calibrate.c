#include "train/calibrate.h"

#include <stdlib.h>

#include "backend/elementwise.h"
#include "core/util.h"

enum { REPS = 5 };

// Best seconds of REPS calls of fn after one warm-up call.
typedef void (*Timed)(void *ctx);
static double best_seconds(const Ops *ops, Timed fn, void *ctx) {
    fn(ctx);
    if (ops) ops->sync();
    double best = 1e30;
    for (int r = 0; r < REPS; r++) {
        double t0 = now_seconds();
        fn(ctx);
        if (ops) ops->sync();
        double t = now_seconds() - t0;
        if (t < best) best = t;
    }
    return best;
}

// A buffer of n act elements holding small values (not denormal, not zero).
static void *act_buffer(const Ops *ops, size_t n) {
    float *host = xmalloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) host[i] = 0.01f * (float)((i * 7919) % 97) - 0.48f;
    void *buf = ops->alloc(n * ops->act_bytes);
    ops->act_from_host_f32(buf, host, n);
    free(host);
    return buf;
}

typedef struct {
    const Ops *ops;
    int N, in, out;
    void *x, *w, *y, *dx;
    float *dw;
} Linear;

static void linear_pass(void *ctx) {
    Linear *l = ctx;
    l->ops->linear_forward(l->y, l->x, l->w, l->N, l->in, l->out);
    l->ops->linear_backward(l->dx, l->dw, l->y, l->x, l->w, l->N, l->in, l->out);
}

double calibrate_matmul(const Ops *ops, int N, int in, int out) {
    Linear l = {ops, N, in, out, act_buffer(ops, (size_t)N * in), act_buffer(ops, (size_t)out * in),
                act_buffer(ops, (size_t)N * out), act_buffer(ops, (size_t)N * in),
                ops->alloc((size_t)out * in * sizeof(float))};
    double s = best_seconds(ops, linear_pass, &l);
    void *bufs[] = {l.x, l.w, l.y, l.dx, l.dw};
    for (int i = 0; i < 5; i++) ops->release(bufs[i]);
    return 6.0 * N * in * out / s / 1e12;
}

typedef struct {
    const Ops *ops;
    int B, T, nh, nkv, hd;
    void *qkv, *out, *state, *dqkv, *work;
} Attn;

static void attn_forward(void *ctx) {
    Attn *a = ctx;
    a->ops->attention_forward(a->out, a->state, a->qkv, a->B, a->T, a->nh, a->nkv, a->hd);
}

static void attn_backward(void *ctx) {
    Attn *a = ctx;
    a->ops->attention_backward(a->dqkv, a->work, a->out, a->qkv, a->out, a->state, a->B, a->T,
                               a->nh, a->nkv, a->hd);
}

void calibrate_attention(const Ops *ops, int B, int T, int nh, int nkv, int hd, double *fwd,
                         double *bwd) {
    size_t N = (size_t)B * T, width = (size_t)(nh + 2 * nkv) * hd;
    Attn a = {ops, B, T, nh, nkv, hd, act_buffer(ops, N * width), act_buffer(ops, N * nh * hd),
              ops->alloc(ops->attention_state_bytes(B, T, nh)), act_buffer(ops, N * width),
              ops->alloc(ops->attention_work_bytes(B, T, nh, hd))};
    double flops = 2.0 * N * T * nh * hd;
    *fwd = flops / best_seconds(ops, attn_forward, &a) / 1e12;
    *bwd = 2.5 * flops / best_seconds(ops, attn_backward, &a) / 1e12;
    void *bufs[] = {a.qkv, a.out, a.state, a.dqkv, a.work};
    for (int i = 0; i < 5; i++) ops->release(bufs[i]);
}

typedef struct {
    const Ops *ops;
    int N, D, F;
    void *x, *w, *y, *gu, *h;
    float *rstd;
} Elementwise;

static void elementwise_pass(void *ctx) {
    Elementwise *e = ctx;
    e->ops->rmsnorm_forward(e->y, e->rstd, e->x, e->w, e->N, e->D, 1e-5f);
    e->ops->add(e->y, e->y, e->x, (size_t)e->N * e->D);
    e->ops->swiglu_forward(e->h, e->gu, e->N, e->F);
}

double calibrate_elementwise(const Ops *ops, int N, int D, int F) {
    Elementwise e = {ops, N, D, F, act_buffer(ops, (size_t)N * D), act_buffer(ops, (size_t)D),
                     act_buffer(ops, (size_t)N * D), act_buffer(ops, (size_t)N * 2 * F),
                     act_buffer(ops, (size_t)N * F), ops->alloc((size_t)N * sizeof(float))};
    double bytes = (double)ops->act_bytes * ((double)N * D * (2 + 3) + 3.0 * N * F);
    double s = best_seconds(ops, elementwise_pass, &e);
    void *bufs[] = {e.x, e.w, e.y, e.gu, e.h, e.rstd};
    for (int i = 0; i < 6; i++) ops->release(bufs[i]);
    return bytes / s / 1e9;
}

typedef struct {
    const Ops *ops;
    size_t n;
    float *w, *m, *v, *g;
} Adam;

static void optimizer_pass(void *ctx) {
    Adam *a = ctx;
    AdamwStep s = adamw_step(3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 10, 1.0f);
    volatile double norm = a->ops->sum_squares(a->g, a->n);
    (void)norm;
    a->ops->adamw(a->w, a->m, a->v, a->g, NULL, a->n, &s);
    a->ops->zero(a->g, a->n * sizeof(float));
}

double calibrate_optimizer(const Ops *ops, size_t n) {
    Adam a = {ops, n, ops->alloc(n * 4), ops->alloc(n * 4), ops->alloc(n * 4), ops->alloc(n * 4)};
    double s = best_seconds(ops, optimizer_pass, &a);
    float *bufs[] = {a.w, a.m, a.v, a.g};
    for (int i = 0; i < 4; i++) ops->release(bufs[i]);
    return (double)n * (32.0 + (double)ops->act_bytes + 4.0) / s / 1e9;
}

typedef struct {
    const Ops *ops;
    void *a;
} Tiny;

static void tiny_ops(void *ctx) {
    Tiny *t = ctx;
    for (int i = 0; i < 1000; i++) t->ops->add(t->a, t->a, t->a, 64);
}

double calibrate_op_overhead(const Ops *ops) {
    Tiny t = {ops, act_buffer(ops, 64)};
    double s = best_seconds(ops, tiny_ops, &t);
    ops->release(t.a);
    return s / 1000 * 1e6;
}

typedef struct {
    const Comm *c;
    float *buf;
    size_t n;
    int reps;
} Coll;

static void allreduce_pass(void *ctx) {
    Coll *k = ctx;
    for (int i = 0; i < k->reps; i++) comm_allreduce(k->c, k->buf, k->n, DTYPE_F32, REDUCE_SUM);
}

// The slowest rank's best time, so every rank reports the same figure.
static double agreed(const Comm *c, double seconds) {
    comm_allreduce(c, &seconds, 1, DTYPE_F64, REDUCE_MAX);
    return seconds;
}

// Seconds of one repetition of `pass` over the group, agreed: with a message
// of two floats (*small: the latency) and one of `bytes` (*large).
static void time_small_and_large(const Comm *c, size_t bytes, void (*pass)(void *),
                                 double *small, double *large) {
    Coll k = {c, xcalloc(bytes / 4 + 2, 4), 2, 200};
    comm_barrier(c);
    *small = agreed(c, best_seconds(NULL, pass, &k)) / k.reps;
    k.n = bytes / 4;
    k.reps = 4;
    comm_barrier(c);
    *large = agreed(c, best_seconds(NULL, pass, &k)) / k.reps;
    free(k.buf);
}

void calibrate_allreduce(const Comm *c, size_t bytes, double *gbs, double *latency_us) {
    double small, large, n = c->size;
    time_small_and_large(c, bytes, allreduce_pass, &small, &large);
    *latency_us = small * 1e6;
    *gbs = 2.0 * (n - 1) / n * (double)bytes / large / 1e9;
}

static void ping_pong(void *ctx) {
    Coll *k = ctx;
    int rank = k->c->rank;
    for (int i = 0; i < k->reps && rank < 2; i++) {
        CommRequest r = rank == 0 ? comm_isend(k->c, k->buf, k->n, DTYPE_F32, 1, 7)
                                  : comm_irecv(k->c, k->buf, k->n, DTYPE_F32, 0, 7);
        comm_wait(&r);
        r = rank == 1 ? comm_isend(k->c, k->buf, k->n, DTYPE_F32, 0, 8)
                      : comm_irecv(k->c, k->buf, k->n, DTYPE_F32, 1, 8);
        comm_wait(&r);
    }
}

void calibrate_p2p(const Comm *c, size_t bytes, double *gbs, double *latency_us) {
    double small, large;   // a repetition is a round trip: two one-way messages
    time_small_and_large(c, bytes, ping_pong, &small, &large);
    *latency_us = small / 2.0 * 1e6;
    *gbs = (double)bytes / (large / 2.0) / 1e9;
}
