// The CPU reference backend: fp32 everywhere, the build's BLAS sgemm
// (backend/sgemm.h) for every matmul (attention included), OpenMP for the rest.
#include <math.h>
#include <omp.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include "backend/attention_cpu.h"
#include "backend/elementwise.h"
#include "backend/ops.h"
#include "backend/sgemm.h"
#include "core/util.h"

// glibc's vector expf (libmvec): with this declaration the `omp simd` loops
// of SwiGLU and the cross-entropy call it 8 floats at a time (AVX2) instead
// of expf once per element (attention_cpu.c does the same).
#if defined(__GLIBC__) && defined(__x86_64__) && !defined(__clang__)
#pragma omp declare simd notinbranch
extern float expf(float);
#endif

// ---- memory ----

// Buffers carry their size in a header, so the backend knows its own
// high-water mark (what --describe predicts), as the CUDA backend does.
#define CPU_HEADER 64   // keeps the buffer 64-byte aligned as malloc's 16 at least
static size_t cpu_live_bytes, cpu_buffer_peak;

static void *cpu_alloc(size_t bytes) {
    char *p = xcalloc(bytes + CPU_HEADER, 1);
    memcpy(p, &bytes, sizeof bytes);
    cpu_live_bytes += bytes;
    if (cpu_live_bytes > cpu_buffer_peak) cpu_buffer_peak = cpu_live_bytes;
    return p + CPU_HEADER;
}

static void cpu_release(void *p) {
    if (!p) return;
    char *base = (char *)p - CPU_HEADER;
    size_t bytes;
    memcpy(&bytes, base, sizeof bytes);
    cpu_live_bytes -= bytes;
    free(base);
}

static size_t cpu_buffer_peak_bytes(void) { return cpu_buffer_peak; }
static void cpu_copy(void *dst, const void *src, size_t bytes) {
    if (dst != src) memmove(dst, src, bytes);
}
static void cpu_zero(void *p, size_t bytes) { memset(p, 0, bytes); }

static void cpu_copy_rows(void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t rows,
                          size_t cols) {
    for (size_t r = 0; r < rows; r++)
        memcpy((float *)dst + r * dst_ld, (const float *)src + r * src_ld, cols * sizeof(float));
}
static void cpu_sync(void) {}
// The process's resident peak: the CPU backend's buffers are host memory.
static size_t cpu_peak_bytes(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (size_t)ru.ru_maxrss * 1024;
}
static void cpu_f32_copy(void *dst, const float *src, size_t n) {
    cpu_copy(dst, src, n * sizeof(float));
}
static void cpu_f32_copy_out(float *dst, const void *src, size_t n) {
    cpu_copy(dst, src, n * sizeof(float));
}

// ---- linear ----

static void cpu_linear_forward(void *y, const void *x, const void *w, int N, int in, int out) {
    sgemm(false, true, N, out, in, 1.0f, x, in, w, in, 0.0f, y, out);
}

static void cpu_linear_backward(void *dx, float *dw, const void *dy, const void *x,
                                const void *w, int N, int in, int out) {
    sgemm(true, false, out, in, N, 1.0f, dy, out, x, in, 1.0f, dw, in);
    if (dx)   // after dw: dx may overwrite x
        sgemm(false, false, N, in, out, 1.0f, dy, out, w, in, 0.0f, dx, in);
}

// -x bf16 on the CPU: the same products on bf16 operands (sgemm_bf16).
static void cpu_linear_forward_bf16(void *y, const void *x, const void *w, int N, int in, int out) {
    sgemm_bf16(false, true, N, out, in, x, in, w, in, 0.0f, y, out);
}

static void cpu_linear_backward_bf16(void *dx, float *dw, const void *dy, const void *x,
                                     const void *w, int N, int in, int out) {
    sgemm_bf16(true, false, out, in, N, dy, out, x, in, 1.0f, dw, in);
    if (dx) sgemm_bf16(false, false, N, in, out, dy, out, w, in, 0.0f, dx, in);
}

// ---- RMSNorm ----

static void cpu_rmsnorm_forward(void *y_, float *rstd, const void *x_, const void *w_, int N,
                                int D, float eps) {
    float *y = y_;
    const float *x = x_, *w = w_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *xr = x + (size_t)r * D;
        float *yr = y + (size_t)r * D;
        double ss = 0;
        for (int i = 0; i < D; i++) ss += (double)xr[i] * xr[i];
        float s = rmsnorm_rstd(ss, D, eps);
        rstd[r] = s;
        for (int i = 0; i < D; i++) yr[i] = rmsnorm_apply(xr[i], w[i], s);
    }
}

// Columns [c0, c1) of dw += Σ_rows dy · x · rstd.
static void rmsnorm_weight_grad(float *dw, const float *dy, const float *x, const float *rstd,
                                int N, int D, int c0, int c1) {
    for (int r = 0; r < N; r++) {
        const float *dyr = dy + (size_t)r * D, *xr = x + (size_t)r * D;
        for (int i = c0; i < c1; i++) dw[i] += dyr[i] * xr[i] * rstd[r];
    }
}

static void cpu_rmsnorm_backward(void *dx_, float *dw, const void *dy_, const void *x_,
                                 const void *w_, const float *rstd, int N, int D) {
    float *dx = dx_;
    const float *dy = dy_, *x = x_, *w = w_;
#pragma omp parallel
    {
#pragma omp for schedule(static)
        for (int r = 0; r < N; r++) {
            const float *dyr = dy + (size_t)r * D, *xr = x + (size_t)r * D;
            float *dxr = dx + (size_t)r * D;
            float s = rstd[r];
            double dot = 0;
            for (int i = 0; i < D; i++) dot += (double)dyr[i] * w[i] * xr[i];
            float k = rmsnorm_grad_coef(dot, s, D);
            for (int i = 0; i < D; i++) dxr[i] += rmsnorm_grad(dyr[i], w[i], xr[i], s, k);
        }
        int nt = omp_get_num_threads(), t = omp_get_thread_num();
        int c0 = (int)((int64_t)D * t / nt), c1 = (int)((int64_t)D * (t + 1) / nt);
        rmsnorm_weight_grad(dw, dy, x, rstd, N, D, c0, c1);
    }
}

static void cpu_add_f32(float *y, const float *a, const float *b, size_t n) {
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) y[i] = a[i] + b[i];
}

static void cpu_add(void *y, const void *a, const void *b, size_t n) { cpu_add_f32(y, a, b, n); }

// ---- rotary embedding ----

// Rotates every (i, i + half) pair of the first n_heads heads of each row by
// the position's angle times `sign` (+1 forward, -1 for the backward pass).
static void rope_rotate(float *qkv, const float *cos_t, const float *sin_t, int N, int T,
                        int stride, int n_heads, int hd, float sign) {
    int half = hd / 2;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *c = cos_t + (size_t)(r % T) * half, *s = sin_t + (size_t)(r % T) * half;
        for (int h = 0; h < n_heads; h++) {
            float *v = qkv + (size_t)r * stride + (size_t)h * hd;
            for (int i = 0; i < half; i++) rope_rotate_pair(&v[i], &v[i + half], c[i], sign * s[i]);
        }
    }
}

static void cpu_rope_forward(void *qkv, const float *cos_t, const float *sin_t, int N, int T,
                             int stride, int n_heads, int hd) {
    rope_rotate(qkv, cos_t, sin_t, N, T, stride, n_heads, hd, 1.0f);
}

static void cpu_rope_backward(void *dqkv, const float *cos_t, const float *sin_t, int N, int T,
                              int stride, int n_heads, int hd) {
    rope_rotate(dqkv, cos_t, sin_t, N, T, stride, n_heads, hd, -1.0f);
}

// ---- SwiGLU ----

static void cpu_swiglu_forward(void *h_, const void *gu_, int N, int F) {
    float *h = h_;
    const float *gu = gu_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F;
        float *hr = h + (size_t)r * F;
#pragma omp simd
        for (int i = 0; i < F; i++) hr[i] = swiglu(g[i], u[i]);
    }
}

static void cpu_swiglu_backward(void *dgu_, const void *dh_, const void *gu_, int N, int F) {
    float *dgu = dgu_;
    const float *dh = dh_, *gu = gu_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *g = gu + (size_t)r * 2 * F, *u = g + F, *d = dh + (size_t)r * F;
        float *dg = dgu + (size_t)r * 2 * F, *du = dg + F;
#pragma omp simd
        for (int i = 0; i < F; i++) swiglu_grad(g[i], u[i], d[i], &dg[i], &du[i]);
    }
}

// ---- embedding ----

static void cpu_embedding_forward(void *x_, const int32_t *tokens, const void *table_, int N,
                                  int D, int vocab_start, int rows) {
    float *x = x_;
    const float *table = table_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        int t = tokens[r] - vocab_start;
        float *xr = x + (size_t)r * D;
        if (t >= 0 && t < rows) memcpy(xr, table + (size_t)t * D, (size_t)D * sizeof(float));
        else memset(xr, 0, (size_t)D * sizeof(float));
    }
}

static void cpu_embedding_backward(float *dtable, const void *dx_, const int32_t *tokens, int N,
                                   int D, int vocab_start, int rows) {
    const float *dx = dx_;
#pragma omp parallel
    {
        int nt = omp_get_num_threads(), th = omp_get_thread_num();
        int c0 = (int)((int64_t)D * th / nt), c1 = (int)((int64_t)D * (th + 1) / nt);
        for (int r = 0; r < N; r++) {
            int t = tokens[r] - vocab_start;
            if (t < 0 || t >= rows) continue;
            float *dr = dtable + (size_t)t * D;
            const float *g = dx + (size_t)r * D;
            for (int i = c0; i < c1; i++) dr[i] += g[i];
        }
    }
}

// ---- cross-entropy ----

static void cpu_ce_row_max(float *row_max, const void *logits_, int N, int V, int valid) {
    const float *logits = logits_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *l = logits + (size_t)r * V;
        float mx = -INFINITY;
#pragma omp simd reduction(max : mx)
        for (int j = 0; j < valid; j++) mx = l[j] > mx ? l[j] : mx;
        row_max[r] = mx;
    }
}

static void cpu_ce_stats(float *stats, const void *logits_, const float *row_max,
                         const int32_t *targets, int N, int V, int valid, int vocab_start) {
    const float *logits = logits_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        const float *l = logits + (size_t)r * V;
        double sum = 0;
        float mx = row_max[r];
#pragma omp simd reduction(+ : sum)
        for (int j = 0; j < valid; j++) sum += expf(l[j] - mx);
        int t = targets[r] - vocab_start;
        stats[2 * r] = (float)sum;
        stats[2 * r + 1] = t >= 0 && t < valid ? l[t] : 0.0f;
    }
}

static void cpu_ce_loss_grad(float *loss, void *logits_, const float *row_max,
                             const float *stats, const int32_t *targets, int N, int V, int valid,
                             int vocab_start, float grad_scale) {
    float *logits = logits_;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < N; r++) {
        float mx = row_max[r], sum = stats[2 * r];
        loss[r] = ce_loss(sum, mx, stats[2 * r + 1]);
        if (grad_scale == 0.0f) continue;
        float *l = logits + (size_t)r * V;
        float inv = 1.0f / sum;
        int t = targets[r] - vocab_start;
#pragma omp simd
        for (int j = 0; j < valid; j++) l[j] = ce_grad(l[j], mx, inv, grad_scale);
        for (int j = valid; j < V; j++) l[j] = 0.0f;
        if (t >= 0 && t < valid) l[t] -= grad_scale;
    }
}

static void cpu_argmax(int32_t *index, float *value, const void *logits_, int N, int V,
                       int valid, int vocab_start) {
    const float *logits = logits_;
    for (int r = 0; r < N; r++) {
        const float *l = logits + (size_t)r * V;
        int best = 0;
        for (int j = 1; j < valid; j++)
            if (l[j] > l[best]) best = j;
        index[r] = vocab_start + best;
        value[r] = valid > 0 ? l[best] : -INFINITY;
    }
}

// ---- optimizer ----

static void cpu_adamw(float *w, float *m, float *v, const float *g, void *param_, size_t n,
                      const AdamwStep *a) {
    float *param = param_;
    AdamwStep k = *a;
    if (param) {   // the compute copy in the same pass; two loops so both vectorise
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) {
            adamw_update(&w[i], &m[i], &v[i], g[i], k);
            param[i] = w[i];
        }
        return;
    }
#pragma omp parallel for simd schedule(static)
    for (size_t i = 0; i < n; i++) adamw_update(&w[i], &m[i], &v[i], g[i], k);
}

static double cpu_sum_squares(const float *x, size_t n) {
    double s = 0;
#pragma omp parallel for simd reduction(+ : s) schedule(static)
    for (size_t i = 0; i < n; i++) s += (double)x[i] * x[i];
    return s;
}

static double cpu_sum(const float *x, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += x[i];
    return s;
}

const Ops ops_cpu = {
    .name = "cpu",
    .act_bytes = sizeof(float),
    .host_memory = true,
    .attention = "cpu",
    .alloc = cpu_alloc,
    .release = cpu_release,
    .to_device = cpu_copy,
    .to_host = cpu_copy,
    .copy = cpu_copy,
    .zero = cpu_zero,
    .sync = cpu_sync,
    .peak_bytes = cpu_peak_bytes,
    .buffer_peak_bytes = cpu_buffer_peak_bytes,
    .f32_to_act = cpu_f32_copy,
    .act_to_f32 = cpu_f32_copy_out,
    .act_from_host_f32 = cpu_f32_copy,
    .act_to_host_f32 = cpu_f32_copy_out,
    .linear_forward = cpu_linear_forward,
    .linear_backward = cpu_linear_backward,
    .rmsnorm_forward = cpu_rmsnorm_forward,
    .rmsnorm_backward = cpu_rmsnorm_backward,
    .add = cpu_add,
    .add_f32 = cpu_add_f32,
    .rope_forward = cpu_rope_forward,
    .rope_backward = cpu_rope_backward,
    .attention_state_bytes = attention_cpu_state_bytes,
    .attention_work_bytes = attention_cpu_work_bytes,
    .attention_forward = attention_cpu_forward,
    .attention_backward = attention_cpu_backward,
    .attention_block_forward = attention_cpu_block_forward,
    .attention_block_backward = attention_cpu_block_backward,
    .copy_rows = cpu_copy_rows,
    .swiglu_forward = cpu_swiglu_forward,
    .swiglu_backward = cpu_swiglu_backward,
    .embedding_forward = cpu_embedding_forward,
    .embedding_backward = cpu_embedding_backward,
    .ce_row_max = cpu_ce_row_max,
    .ce_stats = cpu_ce_stats,
    .ce_loss_grad = cpu_ce_loss_grad,
    .argmax = cpu_argmax,
    .adamw = cpu_adamw,
    .sum_squares = cpu_sum_squares,
    .sum = cpu_sum,
};

const Ops *ops_cpu_bf16(void) {
    static Ops bf16;
    if (!bf16.name) {
        bf16 = ops_cpu;
        bf16.name = "cpu (bf16 matmul operands)";
        bf16.linear_forward = cpu_linear_forward_bf16;
        bf16.linear_backward = cpu_linear_backward_bf16;
    }
    return &bf16;
}
