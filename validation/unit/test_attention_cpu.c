// The CPU backend's flash-style attention (src/backend/attention_cpu.c, through
// ops_cpu) against a naive O(T²) reference in double written here: the full
// causal score matrix, its softmax, out = P V and the textbook gradients
// dP = dO Vᵀ, dS = P ∘ (dP − rowsum(P ∘ dP)), dQ = scale · dS K, dK = scale · dSᵀ Q,
// dV = Pᵀ dO (K and V gradients summed over the query heads of a group).
// Shapes cover sequences shorter than a tile, not a multiple of the tile,
// grouped-query and plain multi-head attention, B > 1, large scores (the
// online softmax's rescaling), and 1 and 3 OpenMP threads; the state must be
// the natural log-sum-exp of each query row, and dqkv is overwritten.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>

#include "backend/ops.h"
#include "check.h"
#include "core/rng.h"

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
    check_begin("CPU attention keeps no T×T matrix (work below T² floats at T 4096)");
    size_t work = ops_cpu.attention_work_bytes(1, 4096, 1, 64);
    CHECK(work < (size_t)4096 * 4096 * sizeof(float), "work %zu bytes at T 4096", work);
    check_end();
    return check_exit_code();
}
