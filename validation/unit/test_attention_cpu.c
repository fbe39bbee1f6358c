// The CPU backend's flash-style attention (src/backend/attention_cpu.c, through
// ops_cpu) against a naive O(T²) reference in double written here: the full
// causal score matrix, its softmax, out = P V and the textbook gradients
// dP = dO Vᵀ, dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale · dS K, dK = scale · dSᵀ Q,
// dV = Pᵀ dO (K and V gradients summed over the query heads of a group).
// Shapes cover sequences shorter than a tile, not a multiple of the tile,
// grouped-query and plain multi-head attention, B > 1, large scores (the
// online softmax's rescaling), and 1 and 3 OpenMP threads; the state must be
// the natural log-sum-exp of each query row, and dqkv is overwritten.
//
// Ring attention's blocks (context parallelism) against the same reference:
// the sequence cut as model/context_parallel.h cuts it over cp ranks, every
// rank's queries run against every rank's keys in ring order and merged; the
// rows' out, log-sum-exp and gradients must be the reference's at their
// global positions.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "check.h"
#include "core/rng.h"
#include "model/context_parallel.h"

typedef struct {
    const char *name;
    int B, T, nh, nkv, hd;
    double amp;   // q and k are uniform in (−amp, amp)
} Case;

typedef struct {
    double *out, *lse, *dqkv;   // (B·T, nh·hd), (B, nh, T), (B·T, (nh + 2·nkv)·hd)
} Reference;

// Row i's probabilities p (i + 1) of head h, batch b; returns the log-sum-exp.
static double ref_probs(const Case *c, const float *qkv, int b, int h, int i, double *p) {
    int ld = (c->nh + 2 * c->nkv) * c->hd, g = h / (c->nh / c->nkv);
    const float *q = qkv + ((size_t)b * c->T + i) * ld + h * c->hd;
    double mx = -INFINITY, sum = 0;
    for (int j = 0; j <= i; j++) {
        const float *k = qkv + ((size_t)b * c->T + j) * ld + (c->nh + g) * c->hd;
        double s = 0;
        for (int d = 0; d < c->hd; d++) s += (double)q[d] * k[d];
        p[j] = s / sqrt((double)c->hd);
        mx = p[j] > mx ? p[j] : mx;
    }
    for (int j = 0; j <= i; j++) sum += p[j] = exp(p[j] - mx);
    for (int j = 0; j <= i; j++) p[j] /= sum;
    return mx + log(sum);
}

// Row i of head h: out, lse, and its contributions to dq, dk, dv.
static void ref_row(const Case *c, const float *qkv, const float *dout, Reference *r, int b,
                    int h, int i, double *p, double *dp) {
    int hd = c->hd, ld = (c->nh + 2 * c->nkv) * hd, ldo = c->nh * hd;
    int g = h / (c->nh / c->nkv);
    size_t row = (size_t)b * c->T + i, kcol = (size_t)(c->nh + g) * hd;
    size_t vcol = (size_t)(c->nh + c->nkv + g) * hd;
    r->lse[((size_t)b * c->nh + h) * c->T + i] = ref_probs(c, qkv, b, h, i, p);
    const float *dO = dout + row * ldo + h * hd;
    double dot = 0, scale = 1 / sqrt((double)hd);
    for (int j = 0; j <= i; j++) {
        const float *v = qkv + ((size_t)b * c->T + j) * ld + vcol;
        dp[j] = 0;
        for (int d = 0; d < hd; d++) {
            r->out[row * ldo + h * hd + d] += p[j] * v[d];
            dp[j] += (double)dO[d] * v[d];
            r->dqkv[((size_t)b * c->T + j) * ld + vcol + d] += p[j] * dO[d];
        }
        dot += p[j] * dp[j];
    }
    for (int j = 0; j <= i; j++) {
        double ds = p[j] * (dp[j] - dot) * scale;
        size_t krow = ((size_t)b * c->T + j) * ld;
        for (int d = 0; d < hd; d++) {
            r->dqkv[row * ld + h * hd + d] += ds * qkv[krow + kcol + d];
            r->dqkv[krow + kcol + d] += ds * qkv[row * ld + h * hd + d];
        }
    }
}

static Reference reference(const Case *c, const float *qkv, const float *dout) {
    size_t N = (size_t)c->B * c->T;
    Reference r = {calloc(N * c->nh * c->hd, sizeof(double)),
                   calloc((size_t)c->B * c->nh * c->T, sizeof(double)),
                   calloc(N * (c->nh + 2 * c->nkv) * c->hd, sizeof(double))};
    double *p = malloc(2 * c->T * sizeof(double));
    for (int b = 0; b < c->B; b++)
        for (int h = 0; h < c->nh; h++)
            for (int i = 0; i < c->T; i++) ref_row(c, qkv, dout, &r, b, h, i, p, p + c->T);
    free(p);
    return r;
}

// max |got − want| / max |want| over n elements.
static double rel_error(const float *got, const double *want, size_t n) {
    double err = 0, big = 1e-30;
    for (size_t i = 0; i < n; i++) {
        double e = fabs(got[i] - want[i]);
        err = e > err || isnan(e) ? e : err;
        big = fabs(want[i]) > big ? fabs(want[i]) : big;
    }
    return err / big;
}

static float *random_floats(size_t n, uint64_t seed, double amp) {
    float *x = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = (float)(amp * (2 * rng_uniform(seed, i) - 1));
    return x;
}

static void check_case_at(const Case *c, int threads) {
    char name[160];
    snprintf(name, sizeof name, "CPU attention = naive reference: %s (B %d, T %d, heads %d/%d, "
             "hd %d), %d thread%s", c->name, c->B, c->T, c->nh, c->nkv, c->hd, threads,
             threads > 1 ? "s" : "");
    check_begin(name);
    omp_set_num_threads(threads);
    size_t N = (size_t)c->B * c->T, nqkv = N * (c->nh + 2 * c->nkv) * c->hd;
    size_t nout = N * c->nh * c->hd, nstate = (size_t)c->B * c->nh * c->T;
    float *qkv = random_floats(nqkv, 11 + c->T, c->amp), *dout = random_floats(nout, 29, 1.0);
    for (size_t i = 0; i < N; i++)   // v (each row's last nkv·hd columns) in (−1, 1)
        for (int d = 0; d < c->nkv * c->hd; d++)
            qkv[(i + 1) * (c->nh + 2 * c->nkv) * c->hd - 1 - d] /= (float)c->amp;
    float *out = malloc(nout * sizeof(float)), *dqkv = malloc(nqkv * sizeof(float));
    size_t state_bytes = ops_cpu.attention_state_bytes(c->B, c->T, c->nh);
    CHECK(state_bytes == nstate * sizeof(float), "state bytes %zu, want B·nh·T floats",
          state_bytes);
    float *state = malloc(state_bytes);
    void *work = malloc(ops_cpu.attention_work_bytes(c->B, c->T, c->nh, c->hd));
    for (size_t i = 0; i < nqkv; i++) dqkv[i] = NAN;   // every element must be written
    ops_cpu.attention_forward(out, state, qkv, c->B, c->T, c->nh, c->nkv, c->hd);
    ops_cpu.attention_backward(dqkv, work, dout, qkv, out, state, c->B, c->T, c->nh, c->nkv, c->hd);
    Reference r = reference(c, qkv, dout);
    double e_out = rel_error(out, r.out, nout), e_lse = rel_error(state, r.lse, nstate);
    double e_d = rel_error(dqkv, r.dqkv, nqkv);
    CHECK(e_out < 1e-5 && e_lse < 2e-6 && e_d < 2e-5,
          "relative errors: out %.3g, log-sum-exp %.3g, dqkv %.3g", e_out, e_lse, e_d);
    free(r.out), free(r.lse), free(r.dqkv);
    free(qkv), free(dout), free(out), free(dqkv), free(state), free(work);
    check_end();
}

// The ring: cp ranks' rows of the sequences of c, in one process.
typedef struct {
    int cp, Tl, ld, kvw, ldo;     // ranks, rows per sequence per rank, row widths
    int32_t *pos;                 // (cp, Tl) global positions
    float **qkv, **kv, **out, **lse, **dout, **dqkv, **dkv;   // per rank
} Ring;

// Rank r's rows (B·Tl, width) of x (B·T, width), columns [c0, c0 + width) of rows ld wide.
static float *rows_of_rank(const Case *c, const Ring *g, const float *x, int ld, int c0, int width,
                           int r) {
    float *y = malloc((size_t)c->B * g->Tl * width * sizeof(float));
    for (int b = 0; b < c->B; b++)
        for (int i = 0; i < g->Tl; i++)
            memcpy(y + ((size_t)b * g->Tl + i) * width,
                   x + ((size_t)b * c->T + g->pos[r * g->Tl + i]) * ld + c0, width * sizeof(float));
    return y;
}

static Ring ring_new(const Case *c, int cp, const float *qkv, const float *dout) {
    Ring g = {.cp = cp, .Tl = c->T / cp, .ld = (c->nh + 2 * c->nkv) * c->hd,
              .kvw = 2 * c->nkv * c->hd, .ldo = c->nh * c->hd};
    g.pos = malloc((size_t)c->T * sizeof(int32_t));
    for (int r = 0; r < cp; r++)
        for (int i = 0; i < g.Tl; i++) g.pos[r * g.Tl + i] = cp_position(c->T, cp, r, i);
    float ***bufs[] = {&g.qkv, &g.kv, &g.out, &g.lse, &g.dout, &g.dqkv, &g.dkv};
    for (int k = 0; k < 7; k++) *bufs[k] = calloc((size_t)cp, sizeof(float *));
    size_t rows = (size_t)c->B * g.Tl;
    for (int r = 0; r < cp; r++) {
        g.qkv[r] = rows_of_rank(c, &g, qkv, g.ld, 0, g.ld, r);
        g.kv[r] = rows_of_rank(c, &g, qkv, g.ld, c->nh * c->hd, g.kvw, r);
        g.dout[r] = rows_of_rank(c, &g, dout, g.ldo, 0, g.ldo, r);
        g.out[r] = malloc(rows * g.ldo * sizeof(float));
        g.lse[r] = malloc(rows * c->nh * sizeof(float));
        g.dqkv[r] = calloc(rows * g.ld, sizeof(float));
        g.dkv[r] = calloc(rows * g.kvw, sizeof(float));
    }
    return g;
}

static void ring_free(Ring *g) {
    float **bufs[] = {g->qkv, g->kv, g->out, g->lse, g->dout, g->dqkv, g->dkv};
    for (int k = 0; k < 7; k++) {
        for (int r = 0; r < g->cp; r++) free(bufs[k][r]);
        free(bufs[k]);
    }
    free(g->pos);
}

// Rank r's forward in ring order (its own block first), then every pair's backward.
static void ring_run(const Case *c, Ring *g) {
    void *work = malloc(ops_cpu.attention_work_bytes(c->B, g->Tl, c->nh, c->hd));
    for (int r = 0; r < g->cp; r++)
        for (int s = 0; s < g->cp; s++) {
            int j = (r - s + g->cp) % g->cp;
            AttentionBlock a = {c->B, g->Tl, g->Tl, c->nh, c->nkv, c->hd, g->pos + r * g->Tl,
                                g->pos + j * g->Tl};
            ops_cpu.attention_block_forward(g->out[r], g->lse[r], g->qkv[r], g->kv[j], &a, s == 0);
        }
    for (int r = 0; r < g->cp; r++)
        for (int j = 0; j < g->cp; j++) {
            AttentionBlock a = {c->B, g->Tl, g->Tl, c->nh, c->nkv, c->hd, g->pos + r * g->Tl,
                                g->pos + j * g->Tl};
            ops_cpu.attention_block_backward(g->dqkv[r], g->dkv[j], work, g->dout[r], g->qkv[r],
                                             g->kv[j], g->out[r], g->lse[r], &a);
        }
    free(work);
}

// The largest |ring − reference| / max |reference| of out, lse and the gradients.
static void ring_errors(const Case *c, const Ring *g, const Reference *ref, double e[3]) {
    double big[3] = {1e-30, 1e-30, 1e-30};
    e[0] = e[1] = e[2] = 0;
    for (int r = 0; r < g->cp; r++)
        for (int b = 0; b < c->B; b++)
            for (int i = 0; i < g->Tl; i++) {
                size_t lr = (size_t)b * g->Tl + i, gr = (size_t)b * c->T + g->pos[r * g->Tl + i];
                for (int x = 0; x < g->ldo; x++) {
                    double w = ref->out[gr * g->ldo + x];
                    e[0] = fmax(e[0], fabs(g->out[r][lr * g->ldo + x] - w)), big[0] = fmax(big[0], fabs(w));
                }
                for (int h = 0; h < c->nh; h++) {
                    double w = ref->lse[((size_t)b * c->nh + h) * c->T + g->pos[r * g->Tl + i]];
                    double got = g->lse[r][((size_t)b * c->nh + h) * g->Tl + i];
                    e[1] = fmax(e[1], fabs(got - w)), big[1] = fmax(big[1], fabs(w));
                }
                for (int x = 0; x < g->ld; x++) {   // q columns from dqkv, k and v from dkv
                    double w = ref->dqkv[gr * g->ld + x], got;
                    if (x < c->nh * c->hd) got = g->dqkv[r][lr * g->ld + x];
                    else got = g->dkv[r][lr * g->kvw + x - c->nh * c->hd];
                    e[2] = fmax(e[2], isnan(got) ? INFINITY : fabs(got - w)), big[2] = fmax(big[2], fabs(w));
                }
            }
    for (int k = 0; k < 3; k++) e[k] /= big[k];
}

static void check_ring(const Case *c, int cp, int threads) {
    char name[200];
    snprintf(name, sizeof name, "ring attention over cp %d = naive reference: %s (B %d, T %d, "
             "heads %d/%d, hd %d), %d thread%s", cp, c->name, c->B, c->T, c->nh, c->nkv, c->hd,
             threads, threads > 1 ? "s" : "");
    check_begin(name);
    omp_set_num_threads(threads);
    size_t N = (size_t)c->B * c->T, ld = (size_t)(c->nh + 2 * c->nkv) * c->hd;
    float *qkv = random_floats(N * ld, 7 + c->T, c->amp);
    float *dout = random_floats(N * c->nh * c->hd, 31, 1.0);
    Reference ref = reference(c, qkv, dout);
    Ring g = ring_new(c, cp, qkv, dout);
    ring_run(c, &g);
    double e[3];
    ring_errors(c, &g, &ref, e);
    CHECK(e[0] < 1e-5 && e[1] < 2e-6 && e[2] < 2e-5,
          "relative errors: out %.3g, log-sum-exp %.3g, gradients %.3g", e[0], e[1], e[2]);
    ring_free(&g);
    free(ref.out), free(ref.lse), free(ref.dqkv), free(qkv), free(dout);
    check_end();
}

// The load balance of cp_position: at every hop of the ring every rank's
// queries see the same number of (query, key) pairs under the causal mask.
static void check_balance(int T, int cp) {
    char name[120];
    snprintf(name, sizeof name, "the sequence's split over cp %d (T %d) gives every rank the same "
             "causal work at every hop", cp, T);
    check_begin(name);
    int Tl = T / cp;
    for (int s = 0; s < cp; s++) {
        long long rank0 = 0;
        for (int r = 0; r < cp; r++) {
            long long pairs = 0;
            int j = (r - s + cp) % cp;
            for (int i = 0; i < Tl; i++)
                for (int k = 0; k < Tl; k++)
                    pairs += cp_position(T, cp, j, k) <= cp_position(T, cp, r, i);
            if (r == 0) rank0 = pairs;
            CHECK(pairs == rank0, "hop %d: rank %d sees %lld pairs, rank 0 %lld", s, r, pairs, rank0);
        }
    }
    check_end();
}

int main(void) {
    const Case cases[] = {
        {"GQA, T not a multiple of the tile", 2, 150, 6, 2, 16, 2.0},
        {"multi-head, T one tile", 1, 64, 4, 4, 64, 1.5},
        {"T shorter than a tile, one KV head", 3, 5, 2, 1, 8, 2.0},
        {"one position", 2, 1, 4, 2, 16, 1.0},
        {"large scores, head dim 128", 1, 130, 2, 1, 128, 4.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        check_case_at(&cases[i], 1);
        check_case_at(&cases[i], 3);
    }
    const Case ring_cases[] = {
        {"GQA, chunks inside a tile", 2, 128, 4, 2, 16, 2.0},
        {"chunks across tiles, one KV head", 1, 300, 2, 1, 32, 2.0},
        {"multi-head, three ranks", 1, 150, 3, 3, 8, 3.0},
    };
    check_ring(&ring_cases[0], 2, 1);
    check_ring(&ring_cases[0], 4, 3);
    check_ring(&ring_cases[1], 2, 3);
    check_ring(&ring_cases[2], 3, 1);
    check_balance(64, 4);
    check_balance(96, 3);
    check_begin("CPU attention keeps no T×T matrix (work below T² floats at T 4096)");
    size_t work = ops_cpu.attention_work_bytes(1, 4096, 1, 64);
    CHECK(work < (size_t)4096 * 4096 * sizeof(float), "work %zu bytes at T 4096", work);
    check_end();
    return check_exit_code();
}
