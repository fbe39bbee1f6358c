// Gradient check: every parameter tensor's analytic gradient against central
// finite differences of the loss, for a tiny GQA model with an odd sequence
// length and a vocabulary that is not a power of two.  The model runs in
// fp32, so the check takes care: directional derivatives along random
// directions spanning the whole tensor (a large signal), Richardson
// extrapolation of two step sizes (truncation error O(h⁴)), and single
// elements with the largest gradients.
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm_mpi.h"
#include "check.h"
#include "model/model.h"
#include "backend/ops.h"
#include "core/rng.h"

static Model *m;
static Comm tp;

static void set_batch(uint64_t seed) {
    int32_t *tok = malloc(sizeof(int32_t) * m->N), *tgt = malloc(sizeof(int32_t) * m->N);
    for (int i = 0; i < m->N; i++) {
        tok[i] = (int32_t)(rng_bits(seed, 2 * i) % (uint64_t)m->cfg.vocab_size);
        tgt[i] = (int32_t)(rng_bits(seed, 2 * i + 1) % (uint64_t)m->cfg.vocab_size);
    }
    model_set_batch(m, 0, tok, tgt);
    free(tok);
    free(tgt);
}

// Mean token loss at the current weights.
static double loss(void) {
    model_forward(m, 0, 0);
    return model_head_forward(m, 0, 0.0f) / m->N;
}

static double loss_at(float *w, const float *u, size_t n, double h) {
    float *save = malloc(n * sizeof(float));
    memcpy(save, w, n * sizeof(float));
    for (size_t i = 0; i < n; i++) w[i] += (float)(h * u[i]);
    double l = loss();
    memcpy(w, save, n * sizeof(float));
    free(save);
    return l;
}

// Richardson-extrapolated central difference along u.
static double directional(float *w, const float *u, size_t n, double h) {
    double d1 = (loss_at(w, u, n, h) - loss_at(w, u, n, -h)) / (2 * h);
    double d2 = (loss_at(w, u, n, h / 2) - loss_at(w, u, n, -h / 2)) / h;
    return (4 * d2 - d1) / 3;
}

// The fp32 forward pass rounds the loss at about 4e-7; divided by the step
// that is an absolute noise floor near 3e-5 on a derivative.
#define REL_TOL 1e-3
#define ABS_FLOOR (3e-5 / REL_TOL)

static void check_direction(const ParamTensor *t, float *w, const float *g, float *u,
                            const char *what) {
    double norm = 0, an = 0;
    for (size_t i = 0; i < t->numel; i++) norm += (double)u[i] * u[i];
    for (size_t i = 0; i < t->numel; i++) u[i] /= (float)sqrt(norm);
    for (size_t i = 0; i < t->numel; i++) an += (double)g[i] * u[i];
    double fd = directional(w, u, t->numel, 2e-2);
    char label[160];
    snprintf(label, sizeof label, "%s along %s", t->name, what);
    if (getenv("VERBOSE")) printf("  %-70s %+.6e fd %+.6e\n", label, an, fd);
    CHECK_CLOSE(an, fd, REL_TOL, ABS_FLOOR, label);
}

// Three directions: the gradient itself (the largest signal), a random one,
// and the single element with the largest gradient.
static void check_tensor(const ParamTensor *t, float *params, const float *grads) {
    float *w = params + t->offset;
    const float *g = grads + t->offset;
    size_t n = t->numel, best = 0;
    float *u = malloc(n * sizeof(float));
    memcpy(u, g, n * sizeof(float));
    check_direction(t, w, g, u, "the gradient");
    for (size_t i = 0; i < n; i++) u[i] = (float)rng_normal(rng_hash_string(t->name), i);
    check_direction(t, w, g, u, "a random direction");
    for (size_t i = 1; i < n; i++)
        if (fabsf(g[i]) > fabsf(g[best])) best = i;
    memset(u, 0, n * sizeof(float));
    u[best] = 1.0f;
    check_direction(t, w, g, u, "its largest element");
    free(u);
}

// --describe's activation bytes (model_activation_bytes) are what
// model_create allocates, less the RoPE tables and the attention backward's
// work buffer, for each recompute mode; none > selective > full.
static void check_activation_bytes(const ModelConfig *cfg, const ModelPart *part) {
    check_begin("predicted activation bytes equal allocated (recompute none, selective, full)");
    double got[3];
    for (int r = RECOMPUTE_NONE; r <= RECOMPUTE_FULL; r++) {
        Model *x = model_create(&ops_cpu, cfg, part, &tp, NULL, 2, 7, 3, (Recompute)r, MODEL_HOLDS_ALL);
        double tables = 2.0 * x->T * (x->hd / 2) * sizeof(float);
        double work = (double)ops_cpu.attention_work_bytes(x->B, x->T, x->heads, x->hd);
        double want = model_activation_bytes(cfg, part, 2, 7, 3, (Recompute)r, sizeof(float),
                                             x->state_bytes);
        got[r] = (double)x->activation_bytes - tables - work;
        CHECK(got[r] == want, "recompute %s: allocated %.0f bytes (without tables and work), "
              "predicted %.0f", model_recompute_name((Recompute)r), got[r], want);
        model_free(x);
    }
    CHECK(got[RECOMPUTE_NONE] > got[RECOMPUTE_SELECTIVE] &&
          got[RECOMPUTE_SELECTIVE] > got[RECOMPUTE_FULL], "none %.0f, selective %.0f, full %.0f",
          got[0], got[1], got[2]);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    comm_init(&tp, MPI_COMM_SELF);
    ModelConfig cfg = {.name = "gradcheck", .dim = 32, .n_layers = 2, .n_heads = 4,
                       .n_kv_heads = 2, .ffn_dim = 48, .vocab_size = 77, .max_seq_len = 16,
                       .rope_theta = 10000.0, .norm_eps = 1e-5};
    // llama3 RoPE scaling over an original context of 16: of head dim 8's
    // wavelengths (6.3, 63, 628, 6283) the first blended, the others divided by 4
    RopeScaling llama3 = {ROPE_SCALING_LLAMA3, 4.0, 1.0, 4.0, 16};
    ModelPart part = {.tp = 1, .n_layers = 2, .first = true, .last = true, .dp = 1};
    for (int pass = 0; pass <= 3; pass++) {
        Recompute recompute = pass == 1 ? RECOMPUTE_FULL
                              : pass == 3 ? RECOMPUTE_SELECTIVE : RECOMPUTE_NONE;
        cfg.rope_scaling = pass == 2 ? llama3 : (RopeScaling){0};
        check_begin(pass == 1 ? "gradcheck with full activation recomputation"
                    : pass == 2 ? "gradcheck with llama3 RoPE scaling"
                    : pass == 3 ? "gradcheck with selective activation recomputation"
                                : "gradcheck every tensor (GQA, T=7, vocab 77)");
        m = model_create(&ops_cpu, &cfg, &part, &tp, NULL, 2, 7, 1, recompute, MODEL_HOLDS_ALL);
        float *params = m->params;
        params_init_host(&m->table, 1234, params);
        // Norm weights away from 1 and larger weights, so every path matters.
        for (int i = 0; i < m->table.n; i++) {
            const ParamTensor *t = &m->table.t[i];
            for (size_t k = 0; k < t->numel; k++)
                params[t->offset + k] = t->ndim == 1
                    ? 1.0f + 0.3f * (float)rng_normal(99 + i, k)
                    : params[t->offset + k] * 8.0f;
        }
        set_batch(7);
        model_forward(m, 0, 0);
        model_head_forward(m, 0, 1.0f / m->N);
        model_backward(m, 0, 0);
        for (int i = 0; i < m->table.n; i++) check_tensor(&m->table.t[i], params, m->grads);
        check_end();
        model_free(m);
    }
    check_activation_bytes(&cfg, &part);
    comm_free(&tp);
    comm_world_end();
    return check_exit_code();
}
