// Per-element arithmetic shared by the CPU reference (ops_cpu.c) and the CUDA
// kernels (cuda/): silu and SwiGLU with its derivatives, the rotation of one
// rotary pair, the RMSNorm scale and gradient, the cross-entropy loss and
// logit gradient, one AdamW element update.  Both backends evaluate the same
// expressions in the same order, so the CPU tests check the formulas the GPU
// runs.  Plain C; under nvcc every function is also a device function (HD).
// The bf16 round trip lives in bf16.h, included here.
#ifndef LLAMA_ELEMENTWISE_H
#define LLAMA_ELEMENTWISE_H

#include <math.h>

#include "core/bf16.h"

#ifdef __CUDACC__
#define HD __host__ __device__
#else
#define HD
#endif

// ---- SwiGLU ----

// silu(g) = g · sigmoid(g).
static inline HD float silu(float g) { return g / (1.0f + expf(-g)); }

// h = silu(gate) · up.
static inline HD float swiglu(float g, float u) { return silu(g) * u; }

// Backward of h = silu(g) · u for one element: ∂/∂g and ∂/∂u from dh.
static inline HD void swiglu_grad(float g, float u, float dh, float *dg, float *du) {
    float sig = 1.0f / (1.0f + expf(-g));
    *du = dh * g * sig;
    *dg = dh * u * sig * (1.0f + g * (1.0f - sig));
}

// ---- rotary embedding ----

// Rotates the pair (a, b) = (x[i], x[i + head_dim/2]) (rotate-half layout) by
// the angle with cosine c and sine s; the inverse rotation passes −s.
static inline HD void rope_rotate_pair(float *a, float *b, float c, float s) {
    float x = *a, y = *b;
    *a = x * c - y * s;
    *b = y * c + x * s;
}

// ---- RMSNorm ----

// 1 / rms of a row of D elements from its sum of squares.
static inline HD float rmsnorm_rstd(double sum_sq, int D, float eps) {
    return (float)(1.0 / sqrt(sum_sq / D + eps));
}

// y = w · (x · rstd).
static inline HD float rmsnorm_apply(float x, float w, float rstd) { return w * (x * rstd); }

// The row's coefficient of x in ∂loss/∂x, from dot = Σ dy·w·x: dot · rstd³ / D.
static inline HD float rmsnorm_grad_coef(double dot, float rstd, int D) {
    return (float)(dot * rstd * rstd * rstd / D);
}

// ∂loss/∂x of one element: dy·w·rstd − x·coef.
static inline HD float rmsnorm_grad(float dy, float w, float x, float rstd, float coef) {
    return dy * w * rstd - x * coef;
}

// ---- cross-entropy ----

// Loss of a row: log Σ exp(logit − max) + max − target logit.
static inline HD float ce_loss(float sum_exp, float row_max, float target_logit) {
    return (float)(log((double)sum_exp) + row_max - target_logit);
}

// grad_scale · softmax of one logit (the target then subtracts grad_scale).
static inline HD float ce_grad(float logit, float row_max, float inv_sum, float grad_scale) {
    return grad_scale * (expf(logit - row_max) * inv_sum);
}

// ---- AdamW (PyTorch's formulation) ----

// The per-step constants of one AdamW update.
typedef struct AdamwStep {
    float decay;        // 1 − lr · weight_decay
    float beta1, beta2, eps;
    float step_size;    // lr / (1 − beta1^step)
    float inv_bc2;      // 1 / sqrt(1 − beta2^step)
    float grad_scale;   // the gradient is multiplied by this first (clipping; 1: none)
} AdamwStep;

static inline AdamwStep adamw_step(float lr, float beta1, float beta2, float eps,
                                   float weight_decay, int step, float grad_scale) {
    double bc1 = 1.0 - pow(beta1, step), bc2_sqrt = sqrt(1.0 - pow(beta2, step));
    AdamwStep a;
    a.grad_scale = grad_scale;
    a.decay = 1.0f - lr * weight_decay;
    a.beta1 = beta1;
    a.beta2 = beta2;
    a.eps = eps;
    a.step_size = (float)(lr / bc1);
    a.inv_bc2 = (float)(1.0 / bc2_sqrt);
    return a;
}

// One element: weight w, moments m and v, gradient g.
static inline HD void adamw_update(float *w, float *m, float *v, float g, AdamwStep a) {
    float wi = *w * a.decay, mi = *m, vi = *v;
    g *= a.grad_scale;
    mi += (1.0f - a.beta1) * (g - mi);
    vi = a.beta2 * vi + (1.0f - a.beta2) * g * g;
    float denom = sqrtf(vi) * a.inv_bc2 + a.eps;
    *w = wi - a.step_size * (mi / denom);
    *m = mi;
    *v = vi;
}

#endif
