// Per-op timing (ops_profile.h): each entry of the table times its call to
// the wrapped backend and files it under a row (kind, in, out).
#include "backend/ops_profile.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backend/elementwise.h"
#include "core/util.h"

enum { MAX_ROWS = 128 };

static const Ops *inner;      // the backend that does the work
static Ops table;             // inner's entries, the timed ones replaced
static OpProfileRow rows[MAX_ROWS];
static int n_rows;

static double clock_start(void) { return now_seconds(); }

// Adds the call begun at t0 (after the backend's queued work is done).
static void clock_stop(const char *kind, int in, int out, double flops, double t0) {
    inner->sync();
    double dt = now_seconds() - t0;
    int i = 0;
    while (i < n_rows && !(rows[i].in == in && rows[i].out == out && !strcmp(rows[i].kind, kind)))
        i++;
    if (i == n_rows) {   // a new row (the model has a few dozen kinds and shapes)
        if (n_rows == MAX_ROWS) fatal("--profile: more than %d kinds of op and shape", MAX_ROWS);
        snprintf(rows[i].kind, sizeof rows[i].kind, "%s", kind);
        rows[i].in = in, rows[i].out = out;
        rows[i].calls = 0, rows[i].seconds = rows[i].flops = 0;
        n_rows++;
    }
    rows[i].calls++;
    rows[i].seconds += dt;
    rows[i].flops += flops;
}

#define TIMED(kind, in, out, flops, call)            \
    do {                                             \
        double t0_ = clock_start();                  \
        call;                                        \
        clock_stop(kind, in, out, flops, t0_);       \
    } while (0)

// ---- the entries ----

static void to_device(void *d, const void *s, size_t n) { TIMED("host transfers", 0, 0, 0, inner->to_device(d, s, n)); }
static void to_host(void *d, const void *s, size_t n) { TIMED("host transfers", 0, 0, 0, inner->to_host(d, s, n)); }
static void copy(void *d, const void *s, size_t n) { TIMED("copies", 0, 0, 0, inner->copy(d, s, n)); }
static void zero(void *p, size_t n) { TIMED("copies", 0, 0, 0, inner->zero(p, n)); }
static void f32_to_act(void *d, const float *s, size_t n) { TIMED("conversions", 0, 0, 0, inner->f32_to_act(d, s, n)); }
static void act_to_f32(float *d, const void *s, size_t n) { TIMED("conversions", 0, 0, 0, inner->act_to_f32(d, s, n)); }
static void copy_rows(void *d, size_t dl, const void *s, size_t sl, size_t r, size_t c) {
    TIMED("copies", 0, 0, 0, inner->copy_rows(d, dl, s, sl, r, c));
}

static void linear_forward(void *y, const void *x, const void *w, int N, int in, int out) {
    TIMED("matmul forward", in, out, 2.0 * N * in * out, inner->linear_forward(y, x, w, N, in, out));
}
static void linear_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                            int N, int in, int out) {
    double flops = (dx ? 4.0 : 2.0) * N * in * out;
    TIMED("matmul backward", in, out, flops, inner->linear_backward(dx, dw, dy, x, w, N, in, out));
}
static void rmsnorm_forward(void *y, float *r, const void *x, const void *w, int N, int D, float e) {
    TIMED("rmsnorm forward", 0, 0, 0, inner->rmsnorm_forward(y, r, x, w, N, D, e));
}
static void rmsnorm_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                             const float *r, int N, int D) {
    TIMED("rmsnorm backward", 0, 0, 0, inner->rmsnorm_backward(dx, dw, dy, x, w, r, N, D));
}
static void add(void *y, const void *a, const void *b, size_t n) { TIMED("adds", 0, 0, 0, inner->add(y, a, b, n)); }
static void add_f32(float *y, const float *a, const float *b, size_t n) { TIMED("adds", 0, 0, 0, inner->add_f32(y, a, b, n)); }
static void rope_forward(void *q, const float *c, const float *s, int N, int T, int ld, int nh, int hd) {
    TIMED("rope forward", 0, 0, 0, inner->rope_forward(q, c, s, N, T, ld, nh, hd));
}
static void rope_backward(void *q, const float *c, const float *s, int N, int T, int ld, int nh, int hd) {
    TIMED("rope backward", 0, 0, 0, inner->rope_backward(q, c, s, N, T, ld, nh, hd));
}

// Causal attention's FLOPs (FlashAttention's count): 2 · B · heads · hd · T² forward.
static double attention_flops(int B, int T, int nh, int hd) { return 2.0 * B * nh * hd * T * (double)T; }

static void attention_forward(void *o, void *st, const void *qkv, int B, int T, int nh, int nkv, int hd) {
    TIMED("attention forward", 0, 0, attention_flops(B, T, nh, hd),
          inner->attention_forward(o, st, qkv, B, T, nh, nkv, hd));
}
static void attention_backward(void *dqkv, void *w, const void *dout, const void *qkv,
                               const void *out, const void *st, int B, int T, int nh, int nkv, int hd) {
    TIMED("attention backward", 0, 0, 2.5 * attention_flops(B, T, nh, hd),
          inner->attention_backward(dqkv, w, dout, qkv, out, st, B, T, nh, nkv, hd));
}
static void block_forward(void *o, float *lse, const void *qkv, const void *kv,
                          const AttentionBlock *a, bool first) {
    TIMED("ring attention forward", 0, 0, 0, inner->attention_block_forward(o, lse, qkv, kv, a, first));
}
static void block_backward(void *dqkv, void *dkv, void *w, const void *dout, const void *qkv,
                           const void *kv, const void *out, const float *lse, const AttentionBlock *a) {
    TIMED("ring attention backward", 0, 0, 0,
          inner->attention_block_backward(dqkv, dkv, w, dout, qkv, kv, out, lse, a));
}
static void swiglu_forward(void *h, const void *gu, int N, int F) {
    TIMED("swiglu forward", 0, 0, 0, inner->swiglu_forward(h, gu, N, F));
}
static void swiglu_backward(void *dgu, const void *dh, const void *gu, int N, int F) {
    TIMED("swiglu backward", 0, 0, 0, inner->swiglu_backward(dgu, dh, gu, N, F));
}
static void embedding_forward(void *x, const int32_t *t, const void *w, int N, int D, int v0, int rows_) {
    TIMED("embedding", 0, 0, 0, inner->embedding_forward(x, t, w, N, D, v0, rows_));
}
static void embedding_backward(float *dw, const void *dx, const int32_t *t, int N, int D, int v0, int rows_) {
    TIMED("embedding", 0, 0, 0, inner->embedding_backward(dw, dx, t, N, D, v0, rows_));
}
static void ce_row_max(float *m, const void *l, int N, int V, int valid) {
    TIMED("cross-entropy", 0, 0, 0, inner->ce_row_max(m, l, N, V, valid));
}
static void ce_stats(float *s, const void *l, const float *m, const int32_t *t, int N, int V,
                     int valid, int v0) {
    TIMED("cross-entropy", 0, 0, 0, inner->ce_stats(s, l, m, t, N, V, valid, v0));
}
static void ce_loss_grad(float *loss, void *l, const float *m, const float *s, const int32_t *t,
                         int N, int V, int valid, int v0, float scale) {
    TIMED("cross-entropy", 0, 0, 0, inner->ce_loss_grad(loss, l, m, s, t, N, V, valid, v0, scale));
}
static void adamw(float *w, float *m, float *v, const float *g, void *p, size_t n, const AdamwStep *a) {
    TIMED("AdamW", 0, 0, 0, inner->adamw(w, m, v, g, p, n, a));
}
static double sum_squares(const float *x, size_t n) {
    double r;
    TIMED("gradient norm", 0, 0, 0, r = inner->sum_squares(x, n));
    return r;
}

// ---- the table ----

const Ops *ops_profile_wrap(const Ops *wrapped) {
    if (inner) fatal("ops_profile_wrap: one profiled backend per process");
    inner = wrapped;
    table = *wrapped;
    table.to_device = to_device, table.to_host = to_host, table.copy = copy, table.zero = zero;
    table.f32_to_act = f32_to_act, table.act_to_f32 = act_to_f32;
    table.linear_forward = linear_forward, table.linear_backward = linear_backward;
    table.rmsnorm_forward = rmsnorm_forward, table.rmsnorm_backward = rmsnorm_backward;
    table.add = add, table.add_f32 = add_f32;
    table.rope_forward = rope_forward, table.rope_backward = rope_backward;
    table.attention_forward = attention_forward, table.attention_backward = attention_backward;
    table.swiglu_forward = swiglu_forward, table.swiglu_backward = swiglu_backward;
    table.embedding_forward = embedding_forward, table.embedding_backward = embedding_backward;
    table.ce_row_max = ce_row_max, table.ce_stats = ce_stats, table.ce_loss_grad = ce_loss_grad;
    table.adamw = adamw, table.sum_squares = sum_squares;
    if (wrapped->copy_rows) table.copy_rows = copy_rows;
    if (wrapped->attention_block_forward) {
        table.attention_block_forward = block_forward;
        table.attention_block_backward = block_backward;
    }
    return &table;
}

void ops_profile_reset(void) { n_rows = 0; }

static int by_time(const void *a, const void *b) {
    double x = ((const OpProfileRow *)a)->seconds, y = ((const OpProfileRow *)b)->seconds;
    return x < y ? 1 : x > y ? -1 : 0;
}

int ops_profile_rows(OpProfileRow *out, int max) {
    int n = n_rows < max ? n_rows : max;
    OpProfileRow sorted[MAX_ROWS];
    memcpy(sorted, rows, (size_t)n_rows * sizeof *rows);
    qsort(sorted, (size_t)n_rows, sizeof *sorted, by_time);
    memcpy(out, sorted, (size_t)n * sizeof *out);
    return n;
}
