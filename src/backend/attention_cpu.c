// Causal grouped-query attention on the CPU, flash-style (attention_cpu.h).
//
// Forward: one OpenMP task per (query tile, batch, head), the last query tiles
// (they see the most keys) handed out first.  A task walks the key tiles up to
// its diagonal with an online softmax: per query row a running max m and sum
// l of exp(score − m), the output accumulated unnormalised and rescaled when m
// grows; at the end out = O / l and lse = m + log l.
//
// The block entries (ring attention) run the same loops on a query block and
// another block's keys and values: rows carry global positions (increasing,
// so a query row sees a prefix of each key tile, and tiles past the last
// query's position are skipped); the forward pass merges its (O / l, lse)
// into the blocks before by their softmax sums, the backward pass adds to
// the gradients instead of writing them.
//
// Backward (FlashAttention-2): D = rowsum(dO ∘ O) first; then one task per
// (batch, KV head) owns dK and dV of that KV head and dQ of the query heads of
// its group, so no two threads write the same element.  Per key tile, per head
// of the group, per query tile that sees the key tile, it recomputes
// P = exp(scale · Q Kᵀ − lse) and accumulates
//   dV += Pᵀ dO,   dS = P ∘ (dO Vᵀ − D),   dQ += scale · dS K,   dK += scale · dSᵀ Q.
//
// The backward pass has B·nkv tasks: fewer than the threads leaves some idle.
//
// Tile products are sgemm calls (backend/sgemm.h; single-threaded inside the
// parallel regions): on AVX2 they ran the whole op about twice as fast as plain C loops
// (a 4×16 register-blocked kernel the compiler vectorises), 64-row tiles the
// best of 32 to 128.  The products against Kᵀ and Vᵀ read transposed copies
// of K and V, made once per call (forward: all of Kᵀ) or per key tile of a
// task (backward: that tile's Kᵀ and Vᵀ):
// a 64³ product with a transposed operand ran at half the plain one's rate
// in oneDNN (10.8 µs against 6.5 on Zen 4) and 20% under it in OpenBLAS.
// The softmax steps are plain loops over a tile row.
#include "backend/attention_cpu.h"

#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/sgemm.h"
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

// One call's shape: queries of Tq rows per sequence against keys and values
// of Tk rows (the same rows in plain causal attention).
typedef struct {
    int Tq, Tk, nh, nkv, hd, group;   // group = nh / nkv query heads per KV head
    int ldq;                     // row stride of q and dq: (nh + 2·nkv)·hd
    int ldk, k_col, v_col;       // row stride of k, v (and dk, dv); columns of KV head 0's k, v
    int ldo;                     // row stride of out and dout: nh·hd
    const int32_t *q_pos, *k_pos;   // (Tq), (Tk) global positions, increasing; NULL: the row index
    float scale;                 // 1/sqrt(hd)
} Shape;

// Plain causal attention: q, k and v in the rows of qkv.
static Shape shape_of(int T, int nh, int nkv, int hd) {
    int ld = (nh + 2 * nkv) * hd;
    return (Shape){.Tq = T, .Tk = T, .nh = nh, .nkv = nkv, .hd = hd, .group = nh / nkv,
                   .ldq = ld, .ldk = ld, .k_col = nh * hd, .v_col = (nh + nkv) * hd,
                   .ldo = nh * hd, .scale = 1.0f / sqrtf((float)hd)};
}

// A block (ring attention): q in qkv, k and v in kv (Tk rows, k heads then v heads).
static Shape block_shape(const AttentionBlock *a) {
    Shape s = shape_of(a->Tq, a->nh, a->nkv, a->hd);
    s.Tk = a->Tk;
    s.ldk = 2 * a->nkv * a->hd;
    s.k_col = 0;
    s.v_col = a->nkv * a->hd;
    s.q_pos = a->q_pos;
    s.k_pos = a->k_pos;
    return s;
}

// Offsets (elements) of row 0 of batch b: query head h's q (in qkv or dqkv),
// KV head g's k and v (in their buffer or its gradient), head h's output (in
// out or dout), and head h's first row statistic (in state or D, both (B, nh, Tq)).
static size_t q_at(const Shape *s, int b, int h) {
    return (size_t)b * s->Tq * s->ldq + (size_t)h * s->hd;
}
static size_t k_at(const Shape *s, int b, int g) {
    return (size_t)b * s->Tk * s->ldk + (size_t)s->k_col + (size_t)g * s->hd;
}
static size_t v_at(const Shape *s, int b, int g) {
    return (size_t)b * s->Tk * s->ldk + (size_t)s->v_col + (size_t)g * s->hd;
}
static size_t o_at(const Shape *s, int b, int h) {
    return (size_t)b * s->Tq * s->ldo + (size_t)h * s->hd;
}
static size_t stat_at(const Shape *s, int b, int h) { return ((size_t)b * s->nh + h) * s->Tq; }

static int min_int(int a, int b) { return a < b ? a : b; }

static int q_pos(const Shape *s, int i) { return s->q_pos ? s->q_pos[i] : i; }
static int k_pos(const Shape *s, int j) { return s->k_pos ? s->k_pos[j] : j; }

// How many of the keys [k0, k0 + nk) query row i sees (keys at positions up
// to its own): a prefix, the positions increasing.
static int visible_keys(const Shape *s, int i, int k0, int nk) {
    int p = q_pos(s, i), lo = 0, hi = nk;
    if (!s->k_pos) {
        int n = p - k0 + 1;
        return n < 0 ? 0 : n > nk ? nk : n;
    }
    while (lo < hi) {   // the first key past p
        int mid = (lo + hi) / 2;
        if (s->k_pos[k0 + mid] <= p) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// Whether any of query rows [q0, q0 + nq) sees key k0 (and so the tile from k0).
static bool tile_visible(const Shape *s, int q0, int nq, int k0) {
    return k_pos(s, k0) <= q_pos(s, q0 + nq - 1);
}

// S (nq, nk), rows BK apart = scale · Q Kᵀ; q (nq, hd) rows ldq apart, kt
// (hd, nk) the tile's columns of Kᵀ, rows ldkt apart.
static void tile_scores(float *S, const float *q, const float *kt, int ldkt, int nq, int nk,
                        const Shape *s) {
    sgemm(false, false, nq, nk, s->hd, s->scale, q, s->ldq, kt, ldkt, 0.0f, S, BK);
}

// dst (hd, rows), rows ld_dst apart = srcᵀ; src (rows, hd) rows ld apart.
static void transpose_rows(float *dst, int ld_dst, const float *src, int rows, int ld, int hd) {
    for (int j = 0; j < rows; j++)
        for (int d = 0; d < hd; d++) dst[(size_t)d * ld_dst + j] = src[(size_t)j * ld + d];
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

// One score row p (nk) of which the first n are visible: p = exp(p − m_new)
// (0 past n), m and l brought up to date.  Returns exp(m_old − m_new), the
// factor of the row's output so far (0 at the first tile, where m = −∞; 1
// when the row sees none of the tile's keys).
static float online_softmax_row(float *p, int n, int nk, float *m, float *l) {
    if (n == 0) {
        memset(p, 0, (size_t)nk * sizeof(float));
        return 1.0f;
    }
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

// Query row's result o (hd) and *lse from this call's unnormalised O (hd), m
// and l: written (`first`), or merged with what earlier blocks left there
// (the two softmaxes weighted by their sums).  A row that saw no key (l = 0)
// is left as it was, or on `first` gets out 0 and lse −∞.
static void finish_row(float *o, float *lse, const float *O, float m, float l, int hd, bool first) {
    if (l == 0.0f) {
        if (first) memset(o, 0, (size_t)hd * sizeof(float)), *lse = -INFINITY;
        return;
    }
    float mine = m + logf(l);
    if (first || *lse == -INFINITY) {
        for (int d = 0; d < hd; d++) o[d] = O[d] / l;
        *lse = mine;
        return;
    }
    float mx = fmaxf(*lse, mine), a = expf(*lse - mx), b = expf(mine - mx), sum = a + b;
    for (int d = 0; d < hd; d++) o[d] = (o[d] * a + O[d] / l * b) / sum;
    *lse = mx + logf(sum);
}

// Query rows [q0, q0 + nq) of one head: o (rows ldo apart) and lse (Tq) of
// those rows, from q (Tq, hd) rows ldq apart, kt = Kᵀ (hd, Tk) rows Tk apart
// and v (Tk, hd) rows ldk apart.
static void forward_tile(const Shape *s, const FwdTiles *w, float *o, float *lse, const float *q,
                         const float *kt, const float *v, int q0, int nq, bool first) {
    int hd = s->hd;
    memset(w->O, 0, (size_t)nq * hd * sizeof(float));
    for (int r = 0; r < nq; r++) w->m[r] = -INFINITY, w->l[r] = 0.0f;
    for (int k0 = 0; k0 < s->Tk && tile_visible(s, q0, nq, k0); k0 += BK) {
        int nk = min_int(BK, s->Tk - k0);
        tile_scores(w->S, q + (size_t)q0 * s->ldq, kt + k0, s->Tk, nq, nk, s);
        for (int r = 0; r < nq; r++) {
            float c = online_softmax_row(w->S + r * BK, visible_keys(s, q0 + r, k0, nk), nk,
                                         &w->m[r], &w->l[r]);
            scale_row(w->O + r * hd, hd, c);
        }
        // O (nq, hd) += S (nq, nk) · V (nk, hd)
        sgemm(false, false, nq, hd, nk, 1.0f, w->S, BK, v + (size_t)k0 * s->ldk, s->ldk, 1.0f,
              w->O, hd);
    }
    for (int r = 0; r < nq; r++)
        finish_row(o + (size_t)(q0 + r) * s->ldo, &lse[q0 + r], w->O + r * hd, w->m[r], w->l[r],
                   hd, first);
}

// Kᵀ of KV head g of batch b in kt (B, nkv, hd, Tk).
static size_t kt_at(const Shape *s, int b, int g) {
    return ((size_t)b * s->nkv + g) * s->hd * s->Tk;
}

// One task per (query tile, batch, head), the last query tiles (they see the
// most keys) first; Kᵀ of every KV head made first (B·nkv·hd·Tk floats,
// allocated for the call).
static void forward_all(const Shape *s, float *out, float *lse, const float *q_base,
                        const float *kv_base, int B, bool first) {
    int tiles = (s->Tq + BQ - 1) / BQ;
    float *kt = xmalloc((size_t)B * s->nkv * s->hd * s->Tk * sizeof(float));
#pragma omp parallel
    {
#pragma omp for collapse(2) schedule(static)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < s->nkv; g++)
                transpose_rows(kt + kt_at(s, b, g), s->Tk, kv_base + k_at(s, b, g), s->Tk, s->ldk,
                               s->hd);
        FwdTiles w = fwd_tiles_new(s->hd);
#pragma omp for collapse(3) schedule(dynamic)
        for (int t = tiles - 1; t >= 0; t--)
            for (int b = 0; b < B; b++)
                for (int h = 0; h < s->nh; h++) {
                    int g = h / s->group;
                    forward_tile(s, &w, out + o_at(s, b, h), lse + stat_at(s, b, h),
                                 q_base + q_at(s, b, h), kt + kt_at(s, b, g),
                                 kv_base + v_at(s, b, g), t * BQ, min_int(BQ, s->Tq - t * BQ),
                                 first);
                }
        free(w.S);
    }
    free(kt);
}

void attention_cpu_forward(void *out, void *state, const void *qkv, int B, int T, int nh, int nkv,
                           int hd) {
    Shape s = shape_of(T, nh, nkv, hd);
    forward_all(&s, out, state, qkv, qkv, B, true);
}

void attention_cpu_block_forward(void *out, float *lse, const void *qkv, const void *kv,
                                 const AttentionBlock *a, bool first) {
    Shape s = block_shape(a);
    forward_all(&s, out, lse, qkv, kv, a->B, first);
}

// ---- backward ----

// A thread's scratch: score tiles P and dS (BQ, BK), the key tile's Kᵀ and
// Vᵀ (hd, BK).
typedef struct {
    float *P, *dS, *kt, *vt;
} BwdTiles;

static size_t bwd_tiles_floats(int hd) { return 2 * BQ * BK + 2 * (size_t)hd * BK; }

// Thread t's tiles in the scratch `tiles` (one bwd_tiles_floats per thread).
static BwdTiles bwd_tiles_at(float *tiles, int t, int hd) {
    float *p = tiles + (size_t)t * bwd_tiles_floats(hd);
    return (BwdTiles){.P = p, .dS = p + BQ * BK, .kt = p + 2 * BQ * BK,
                      .vt = p + 2 * BQ * BK + (size_t)hd * BK};
}

size_t attention_cpu_work_bytes(int B, int T, int nh, int hd) {
    size_t tiles = (size_t)omp_get_max_threads() * bwd_tiles_floats(hd);
    return ((size_t)B * nh * T + tiles) * sizeof(float);
}

// One (batch, query head) and its KV head, for the backward pass.
typedef struct {
    const float *q;            // (Tq, hd) rows ldq apart
    const float *k;            // (Tk, hd) rows ldk apart
    const float *kt, *vt;      // the key tile's Kᵀ, Vᵀ (hd, nk), rows BK apart
    const float *dO;           // (Tq, hd) rows ldo apart
    const float *lse, *D;      // (Tq)
    float *dq;                 // (Tq, hd) rows ldq apart, accumulated
    float *dk, *dv;            // (Tk, hd) rows ldk apart, accumulated
    float *P, *dS;             // this thread's (BQ, BK) tiles
} HeadGrad;

// D (B, nh, Tq) = rowsum(dO ∘ O) per head.
static void rowsum_dout_out(float *D, const float *dout, const float *out, int B, const Shape *s) {
#pragma omp parallel for collapse(2) schedule(static)
    for (int b = 0; b < B; b++)
        for (int h = 0; h < s->nh; h++) {
            const float *dO = dout + o_at(s, b, h), *O = out + o_at(s, b, h);
            float *Dh = D + stat_at(s, b, h);
            for (int i = 0; i < s->Tq; i++) {
                const float *x = dO + (size_t)i * s->ldo, *y = O + (size_t)i * s->ldo;
                float dot = 0.0f;
#pragma omp simd reduction(+ : dot)
                for (int d = 0; d < s->hd; d++) dot += x[d] * y[d];
                Dh[i] = dot;
            }
        }
}

// Score row p (nk), first n visible → probabilities exp(p − lse), 0 past n.
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
    int hd = s->hd;
    const float *q = g->q + (size_t)q0 * s->ldq, *k = g->k + (size_t)k0 * s->ldk;
    const float *dO = g->dO + (size_t)q0 * s->ldo;
    tile_scores(g->P, q, g->kt, BK, nq, nk, s);
    for (int r = 0; r < nq; r++)
        probs_row(g->P + r * BK, visible_keys(s, q0 + r, k0, nk), nk, g->lse[q0 + r]);
    // dV (nk, hd) += Pᵀ (nk, nq) · dO (nq, hd)
    sgemm(true, false, nk, hd, nq, 1.0f, g->P, BK, dO, s->ldo, 1.0f, g->dv + (size_t)k0 * s->ldk,
          s->ldk);
    // dP (nq, nk) = dO (nq, hd) · Vᵀ (hd, nk), then dS in place
    sgemm(false, false, nq, nk, hd, 1.0f, dO, s->ldo, g->vt, BK, 0.0f, g->dS, BK);
    for (int r = 0; r < nq; r++) dscores_row(g->dS + r * BK, g->P + r * BK, nk, g->D[q0 + r]);
    // Position 0 sees key 0 alone: P = 1 and dP = D, so dS = 0 exactly (not rounding noise).
    if (q_pos(s, q0) == 0 && k_pos(s, k0) == 0) memset(g->dS, 0, (size_t)nk * sizeof(float));
    // dQ (nq, hd) += scale · dS (nq, nk) · K (nk, hd)
    sgemm(false, false, nq, hd, nk, s->scale, g->dS, BK, k, s->ldk, 1.0f,
          g->dq + (size_t)q0 * s->ldq, s->ldq);
    // dK (nk, hd) += scale · dSᵀ (nk, nq) · Q (nq, hd)
    sgemm(true, false, nk, hd, nq, s->scale, g->dS, BK, q, s->ldq, 1.0f,
          g->dk + (size_t)k0 * s->ldk, s->ldk);
}

// Zeros hd columns of `rows` rows ld apart.
static void zero_head(float *x, int rows, int ld, int hd) {
    for (int i = 0; i < rows; i++) memset(x + (size_t)i * ld, 0, (size_t)hd * sizeof(float));
}

// The buffers of one call's backward pass.
typedef struct {
    float *dq_base, *dkv_base;             // dq in dqkv; dk, dv in dkv (plain attention: dqkv)
    const float *q_base, *kv_base, *dout, *lse, *D;
    bool overwrite;                        // zero the gradients first (else accumulate)
} BwdBuffers;

// The views of query head h of batch b (KV head h / group) into the buffers.
static HeadGrad head_grad(const Shape *s, const BwdBuffers *x, int b, int h) {
    int g = h / s->group;
    return (HeadGrad){.q = x->q_base + q_at(s, b, h), .k = x->kv_base + k_at(s, b, g),
                      .dO = x->dout + o_at(s, b, h),
                      .lse = x->lse + stat_at(s, b, h), .D = x->D + stat_at(s, b, h),
                      .dq = x->dq_base + q_at(s, b, h), .dk = x->dkv_base + k_at(s, b, g),
                      .dv = x->dkv_base + v_at(s, b, g)};
}

// Everything KV head g of batch b writes: its dK and dV, and dQ of its
// group's query heads.
static void backward_group(const Shape *s, const BwdBuffers *x, int b, int g, const BwdTiles *w) {
    if (x->overwrite) {
        zero_head(x->dkv_base + k_at(s, b, g), s->Tk, s->ldk, s->hd);
        zero_head(x->dkv_base + v_at(s, b, g), s->Tk, s->ldk, s->hd);
        for (int h = g * s->group; h < (g + 1) * s->group; h++)
            zero_head(x->dq_base + q_at(s, b, h), s->Tq, s->ldq, s->hd);
    }
    for (int k0 = 0; k0 < s->Tk; k0 += BK) {
        int nk = min_int(BK, s->Tk - k0);
        transpose_rows(w->kt, BK, x->kv_base + k_at(s, b, g) + (size_t)k0 * s->ldk, nk, s->ldk,
                       s->hd);
        transpose_rows(w->vt, BK, x->kv_base + v_at(s, b, g) + (size_t)k0 * s->ldk, nk, s->ldk,
                       s->hd);
        for (int h = g * s->group; h < (g + 1) * s->group; h++) {
            HeadGrad hg = head_grad(s, x, b, h);
            hg.P = w->P, hg.dS = w->dS, hg.kt = w->kt, hg.vt = w->vt;
            for (int q0 = 0; q0 < s->Tq; q0 += BQ) {
                int nq = min_int(BQ, s->Tq - q0);
                if (tile_visible(s, q0, nq, k0)) backward_tile(s, &hg, q0, nq, k0, nk);
            }
        }
    }
}

// One task per (batch, KV head); D first.
static void backward_all(const Shape *s, BwdBuffers *x, float *work, const float *out, int B) {
    float *D = work, *tiles = D + (size_t)B * s->nh * s->Tq;   // D (B, nh, Tq); per thread BwdTiles
    rowsum_dout_out(D, x->dout, out, B, s);
    x->D = D;
#pragma omp parallel
    {
        BwdTiles w = bwd_tiles_at(tiles, omp_get_thread_num(), s->hd);
#pragma omp for collapse(2) schedule(dynamic)
        for (int b = 0; b < B; b++)
            for (int g = 0; g < s->nkv; g++) backward_group(s, x, b, g, &w);
    }
}

void attention_cpu_backward(void *dqkv, void *work, const void *dout, const void *qkv,
                            const void *out, const void *state, int B, int T, int nh, int nkv,
                            int hd) {
    Shape s = shape_of(T, nh, nkv, hd);
    BwdBuffers x = {.dq_base = dqkv, .dkv_base = dqkv, .q_base = qkv, .kv_base = qkv,
                    .dout = dout, .lse = state, .overwrite = true};
    backward_all(&s, &x, work, out, B);
}

void attention_cpu_block_backward(void *dqkv, void *dkv, void *work, const void *dout,
                                  const void *qkv, const void *kv, const void *out,
                                  const float *lse, const AttentionBlock *a) {
    Shape s = block_shape(a);
    BwdBuffers x = {.dq_base = dqkv, .dkv_base = dkv, .q_base = qkv, .kv_base = kv,
                    .dout = dout, .lse = lse, .overwrite = false};
    backward_all(&s, &x, work, out, a->B);
}
