// Causal grouped-query attention on the CPU, flash-style (attention_cpu.h).
//
// Forward: one OpenMP task per (query tile, batch, head), the last query tiles
// (they see the most keys) handed out first.  A task walks the key tiles up to
// its diagonal with an online softmax: per query row a running max m and sum
// l of exp(score − m), the output accumulated unnormalised and rescaled when m
// grows; at the end out = O / l and lse = m + log l.
//
// Backward (FlashAttention-2): D = rowsum(dO ∘ O) first; then one task per
// (batch, KV head) owns dK and dV of that KV head and dQ of the query heads of
// its group, so no two threads write the same element.  Per key tile, per head
// of the group, per query tile from the diagonal on, it recomputes
// P = exp(scale · Q Kᵀ − lse) and accumulates
//   dV += Pᵀ dO,   dS = P ∘ (dO Vᵀ − D),   dQ += scale · dS K,   dK += scale · dSᵀ Q.
//
// The backward pass has B·nkv tasks: fewer than the threads leaves some idle.
//
// Tile products are OpenBLAS sgemm calls (single-threaded inside the parallel
// regions): on AVX2 they ran the whole op about twice as fast as plain C loops
// (a 4×16 register-blocked kernel the compiler vectorises), 64-row tiles the
// best of 32 to 128.  The softmax steps are plain loops over a tile row.
#include "backend/attention_cpu.h"

#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

// glibc's vector expf (libmvec, reached through libm): with this declaration
// the `omp simd` loops below call it 8 floats at a time (AVX2) instead of
// expf once per score.  Elsewhere expf stays the scalar one.
#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__clang__)
#pragma omp declare simd notinbranch
extern float expf(float);
#endif

#define BQ 64   // queries per tile
#define BK 64   // keys per tile; the row stride of the score tiles

// One call's shape.
typedef struct {
    int T, nh, nkv, hd, group;   // group = nh / nkv query heads per KV head
    int ld, ldo;                 // row strides: qkv and dqkv (nh + 2·nkv)·hd, out and dout nh·hd
    float scale;                 // 1/sqrt(hd)
} Shape;

static Shape shape_of(int T, int nh, int nkv, int hd) {
    return (Shape){.T = T, .nh = nh, .nkv = nkv, .hd = hd, .group = nh / nkv,
                   .ld = (nh + 2 * nkv) * hd, .ldo = nh * hd, .scale = 1.0f / sqrtf((float)hd)};
}

// Offsets (elements) of row 0 of batch b: query head h's q, KV head g's k and
// v (in qkv or dqkv), head h's output (in out or dout), and head h's first
// row statistic (in state or D, both (B, nh, T)).
static size_t q_at(const Shape *s, int b, int h) {
    return (size_t)b * s->T * s->ld + (size_t)h * s->hd;
}
static size_t k_at(const Shape *s, int b, int g) { return q_at(s, b, s->nh + g); }
static size_t v_at(const Shape *s, int b, int g) { return q_at(s, b, s->nh + s->nkv + g); }
static size_t o_at(const Shape *s, int b, int h) {
    return (size_t)b * s->T * s->ldo + (size_t)h * s->hd;
}
static size_t stat_at(const Shape *s, int b, int h) { return ((size_t)b * s->nh + h) * s->T; }

static int min_int(int a, int b) { return a < b ? a : b; }

// How many of the keys [k0, k0 + nk) query row i sees (keys j ≤ i).
static int causal_keys(int i, int k0, int nk) {
    int n = i - k0 + 1;
    return n < 0 ? 0 : n > nk ? nk : n;
}

// S (nq, nk), rows BK apart = scale · Q Kᵀ; q (nq, hd) and k (nk, hd) rows ld apart.
static void tile_scores(float *S, const float *q, const float *k, int nq, int nk, const Shape *s) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, s->hd, s->scale, q, s->ld, k,
                s->ld, 0.0f, S, BK);
}

size_t attention_cpu_state_bytes(int B, int T, int nh) {
    return (size_t)B * nh * T * sizeof(float);
}

// ---- forward ----

// One thread's forward tiles.
typedef struct {
    float *S;       // (BQ, BK) scores, then exp(score − m)
    float *O;       // (BQ, hd) the output, unnormalised
    float *m, *l;   // (BQ) running max of the scores, sum of exp(score − m)
} FwdTiles;

static FwdTiles fwd_tiles_new(int hd) {
    float *p = xmalloc(((size_t)BQ * BK + (size_t)BQ * hd + 2 * BQ) * sizeof(float));
    return (FwdTiles){.S = p, .O = p + BQ * BK, .m = p + BQ * BK + BQ * hd,
                      .l = p + BQ * BK + BQ * hd + BQ};
}

// One score row p (nk) of which the first n are causal: p = exp(p − m_new)
// (0 past n), m and l brought up to date.  Returns exp(m_old − m_new), the
// factor of the row's output so far (0 at the first tile, where m = −∞).
static float online_softmax_row(float *p, int n, int nk, float *m, float *l) {
    float mx = *m, sum = 0.0f;
#pragma omp simd reduction(max : mx)
    for (int j = 0; j < n; j++) mx = p[j] > mx ? p[j] : mx;
#pragma omp simd reduction(+ : sum)
    for (int j = 0; j < n; j++) {
        p[j] = expf(p[j] - mx);
        sum += p[j];
    }
    for (int j = n; j < nk; j++) p[j] = 0.0f;
    float c = expf(*m - mx);
    *l = *l * c + sum;
    *m = mx;
    return c;
}

static void scale_row(float *x, int n, float c) {
    for (int j = 0; j < n; j++) x[j] *= c;
}

// Query rows [q0, q0 + nq) of one head: o (rows ldo apart) and lse (T) of
// those rows, from q (T, hd), k and v (T, hd) rows ld apart.
static void forward_tile(const Shape *s, const FwdTiles *w, float *o, float *lse, const float *q,
                         const float *k, const float *v, int q0, int nq) {
    int hd = s->hd, ld = s->ld;
    memset(w->O, 0, (size_t)nq * hd * sizeof(float));
    for (int r = 0; r < nq; r++) w->m[r] = -INFINITY, w->l[r] = 0.0f;
    for (int k0 = 0; k0 < q0 + nq; k0 += BK) {
        int nk = min_int(BK, q0 + nq - k0);
        tile_scores(w->S, q + (size_t)q0 * ld, k + (size_t)k0 * ld, nq, nk, s);
        for (int r = 0; r < nq; r++) {
            float c = online_softmax_row(w->S + r * BK, causal_keys(q0 + r, k0, nk), nk, &w->m[r],
                                         &w->l[r]);
            scale_row(w->O + r * hd, hd, c);
        }
        // O (nq, hd) += S (nq, nk) · V (nk, hd)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, 1.0f, w->S, BK,
                    v + (size_t)k0 * ld, ld, 1.0f, w->O, hd);
    }
    for (int r = 0; r < nq; r++) {
        float *orow = o + (size_t)(q0 + r) * s->ldo, inv = 1.0f / w->l[r];
        for (int d = 0; d < hd; d++) orow[d] = w->O[r * hd + d] * inv;
        lse[q0 + r] = w->m[r] + logf(w->l[r]);
    }
}

void attention_cpu_forward(void *out, void *state, const void *qkv_, int B, int T, int nh, int nkv,
                           int hd) {
    Shape s = shape_of(T, nh, nkv, hd);
    const float *qkv = qkv_;
    int tiles = (T + BQ - 1) / BQ;
#pragma omp parallel
    {
        FwdTiles w = fwd_tiles_new(hd);
#pragma omp for collapse(3) schedule(dynamic)
        for (int t = tiles - 1; t >= 0; t--)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < nh; h++) {
                    int g = h / s.group;
                    forward_tile(&s, &w, (float *)out + o_at(&s, b, h),
                                 (float *)state + stat_at(&s, b, h), qkv + q_at(&s, b, h),
                                 qkv + k_at(&s, b, g), qkv + v_at(&s, b, g), t * BQ,
                                 min_int(BQ, T - t * BQ));
                }
        free(w.S);
    }
}

// ---- backward ----

size_t attention_cpu_work_bytes(int B, int T, int nh, int hd) {
    (void)hd;
    size_t tiles = (size_t)omp_get_max_threads() * 2 * BQ * BK;
    return ((size_t)B * nh * T + tiles) * sizeof(float);
}

// One (batch, query head) and its KV head, for the backward pass.
typedef struct {
    const float *q, *k, *v;    // (T, hd) rows ld apart
    const float *dO;           // (T, hd) rows ldo apart
    const float *lse, *D;      // (T)
    float *dq, *dk, *dv;       // (T, hd) rows ld apart, accumulated
    float *P, *dS;             // this thread's (BQ, BK) tiles
} HeadGrad;

// D (B, nh, T) = rowsum(dO ∘ O) per head.
static void rowsum_dout_out(float *D, const float *dout, const float *out, int B, const Shape *s) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < s->nh; h++) {
            const float *dO = dout + o_at(s, b, h), *O = out + o_at(s, b, h);
            float *Dh = D + stat_at(s, b, h);
            for (int i = 0; i < s->T; i++) {
                const float *x = dO + (size_t)i * s->ldo, *y = O + (size_t)i * s->ldo;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int d = 0; d < s->hd; d++) dot += x[d] * y[d];
                Dh[i] = dot;
            }
        }
}

// Score row p (nk), first n causal → probabilities exp(p − lse), 0 past n.
static void probs_row(float *p, int n, int nk, float lse) {
#pragma omp simd
    for (int j = 0; j < n; j++) p[j] = expf(p[j] - lse);
    for (int j = n; j < nk; j++) p[j] = 0.0f;
}

// dP row (nk) → dS = P ∘ (dP − D_i).
static void dscores_row(float *ds, const float *p, int nk, float D) {
    for (int j = 0; j < nk; j++) ds[j] = p[j] * (ds[j] - D);
}

// Query rows [q0, q0 + nq) against keys [k0, k0 + nk) of one head.
static void backward_tile(const Shape *s, const HeadGrad *g, int q0, int nq, int k0, int nk) {
    int ld = s->ld, hd = s->hd;
    const float *q = g->q + (size_t)q0 * ld, *k = g->k + (size_t)k0 * ld;
    const float *v = g->v + (size_t)k0 * ld, *dO = g->dO + (size_t)q0 * s->ldo;
    tile_scores(g->P, q, k, nq, nk, s);
    for (int r = 0; r < nq; r++)
        probs_row(g->P + r * BK, causal_keys(q0 + r, k0, nk), nk, g->lse[q0 + r]);
    // dV (nk, hd) += Pᵀ (nk, nq) · dO (nq, hd)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, 1.0f, g->P, BK, dO, s->ldo,
                1.0f, g->dv + (size_t)k0 * ld, ld);
    // dP (nq, nk) = dO (nq, hd) · Vᵀ (hd, nk), then dS in place
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nq, nk, hd, 1.0f, dO, s->ldo, v, ld, 0.0f,
                g->dS, BK);
    for (int r = 0; r < nq; r++) dscores_row(g->dS + r * BK, g->P + r * BK, nk, g->D[q0 + r]);
    // Query 0 sees key 0 alone: P = 1 and dP = D, so dS = 0 exactly (not rounding noise).
    if (q0 == 0 && k0 == 0) memset(g->dS, 0, (size_t)nk * sizeof(float));
    // dQ (nq, hd) += scale · dS (nq, nk) · K (nk, hd)
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, nq, hd, nk, s->scale, g->dS, BK, k, ld,
                1.0f, g->dq + (size_t)q0 * ld, ld);
    // dK (nk, hd) += scale · dSᵀ (nk, nq) · Q (nq, hd)
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, nk, hd, nq, s->scale, g->dS, BK, q, ld,
                1.0f, g->dk + (size_t)k0 * ld, ld);
}

// Zeros hd columns of T rows ld apart.
static void zero_head(float *x, const Shape *s) {
    for (int i = 0; i < s->T; i++) memset(x + (size_t)i * s->ld, 0, (size_t)s->hd * sizeof(float));
}

// The views of query head h of batch b (KV head h / group) into the buffers.
static HeadGrad head_grad(const Shape *s, float *dqkv, const float *qkv, const float *dout,
                          const float *lse, const float *D, int b, int h) {
    int g = h / s->group;
    return (HeadGrad){.q = qkv + q_at(s, b, h), .k = qkv + k_at(s, b, g), .v = qkv + v_at(s, b, g),
                      .dO = dout + o_at(s, b, h), .lse = lse + stat_at(s, b, h),
                      .D = D + stat_at(s, b, h), .dq = dqkv + q_at(s, b, h),
                      .dk = dqkv + k_at(s, b, g), .dv = dqkv + v_at(s, b, g)};
}

// Everything KV head g of batch b writes: its dK and dV, and dQ of its
// group's query heads; P and dS (BQ, BK) are the thread's tiles.
static void backward_group(const Shape *s, float *dqkv, const float *qkv, const float *dout,
                           const float *lse, const float *D, int b, int g, float *P, float *dS) {
    zero_head(dqkv + k_at(s, b, g), s);
    zero_head(dqkv + v_at(s, b, g), s);
    for (int h = g * s->group; h < (g + 1) * s->group; h++) zero_head(dqkv + q_at(s, b, h), s);
    for (int k0 = 0; k0 < s->T; k0 += BK) {
        int nk = min_int(BK, s->T - k0);
        for (int h = g * s->group; h < (g + 1) * s->group; h++) {
            HeadGrad hg = head_grad(s, dqkv, qkv, dout, lse, D, b, h);
            hg.P = P, hg.dS = dS;
            for (int q0 = k0 / BQ * BQ; q0 < s->T; q0 += BQ)
                backward_tile(s, &hg, q0, min_int(BQ, s->T - q0), k0, nk);
        }
    }
}

void attention_cpu_backward(void *dqkv, void *work, const void *dout, const void *qkv,
                            const void *out, const void *state, int B, int T, int nh, int nkv,
                            int hd) {
    Shape s = shape_of(T, nh, nkv, hd);
    float *D = work, *tiles = D + (size_t)B * nh * T;   // D (B, nh, T); per thread P, dS (BQ, BK)
    rowsum_dout_out(D, dout, out, B, &s);
#pragma omp parallel
    {
        float *P = tiles + (size_t)omp_get_thread_num() * 2 * BQ * BK, *dS = P + BQ * BK;
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < nkv; g++)
                backward_group(&s, dqkv, qkv, dout, state, D, b, g, P, dS);
    }
}
