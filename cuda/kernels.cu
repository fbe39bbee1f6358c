// The CUDA backend's fused kernels other than matmul and attention: RMSNorm,
// residual add, rotary embedding, SwiGLU, embedding, the three
// cross-entropy steps, argmax, AdamW, reductions and conversions.  Each
// computes exactly the function of ops_cpu.c (same layouts, same
// accumulate-or-overwrite semantics), with the per-element formulas of
// src/backend/elementwise.h, fp32 arithmetic and act buffers of type T (fp32 or bf16).
//
// Memory-bound kernels read 8 elements per thread (16-byte loads) where the
// width divides by 8 and the pointers are 16-byte aligned (V = 8), else one
// (V = 1).  Row kernels use one block per row (embedding, cross-entropy) or one
// warp per row (norms).
#include "common.cuh"
#include "kernels.cuh"

#include <math.h>

// ---- conversions ----

template <class D, class S>
__global__ void convert_kernel(D *dst, const S *src, size_t n) {
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        dst[i] = from_f<D>(to_f(src[i]));
}

void kernels_f32_to_bf16(void *dst, const float *src, size_t n) {
    if (n == 0) return;
    LAUNCH(grid_for(n, 256, 8192), 256, 0, convert_kernel<bf16, float>)((bf16 *)dst, src, n);
    KERNEL_CHECK();
}

void kernels_bf16_to_f32(float *dst, const void *src, size_t n) {
    if (n == 0) return;
    LAUNCH(grid_for(n, 256, 8192), 256, 0, convert_kernel<float, bf16>)(dst, (const bf16 *)src, n);
    KERNEL_CHECK();
}

// ---- residual add: y = a + b ----

template <class T, int V>
__global__ void add_kernel(T *y, const T *a, const T *b, size_t n) {
    size_t vectors = n / V;
    for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < vectors;
         v += (size_t)gridDim.x * blockDim.x) {
        float x[V], z[V];
        Vec<V>::load(a + v * V, x);
        Vec<V>::load(b + v * V, z);
#pragma unroll
        for (int k = 0; k < V; k++) x[k] += z[k];
        Vec<V>::store(y + v * V, x);
    }
}

template <class T> static void add_t(void *y, const void *a, const void *b, size_t n) {
    if (n == 0) return;
    if (n % 8 == 0 && aligned16(y) && aligned16(a) && aligned16(b))
        LAUNCH(grid_for(n / 8, 256, 8192), 256, 0, add_kernel<T, 8>)((T *)y, (const T *)a,
                                                                     (const T *)b, n);
    else
        LAUNCH(grid_for(n, 256, 8192), 256, 0, add_kernel<T, 1>)((T *)y, (const T *)a,
                                                                 (const T *)b, n);
    KERNEL_CHECK();
}

void kernels_add(void *y, const void *a, const void *b, size_t n) {
    g_cuda.bf16 ? add_t<bf16>(y, a, b, n) : add_t<float>(y, a, b, n);
}

void kernels_add_f32(float *y, const float *a, const float *b, size_t n) { add_t<float>(y, a, b, n); }

// ---- RMSNorm ----
//
// One warp per row (NORM_WARPS rows per block in the forward pass): the row's
// sum is a warp reduction, so no block-wide barrier stands between it and its
// use, and many rows are in flight on every SM.

constexpr int NORM_WARPS = 8;

// y = w · (x · rstd), rstd = 1/rms(x), row blockIdx.x · NORM_WARPS + warp.
template <class T, int V>
__global__ void __launch_bounds__(NORM_WARPS * 32)
rmsnorm_forward_kernel(T *y, float *rstd, const T *x, const T *w, int N, int D, float eps) {
    const int lane = threadIdx.x & 31, r = blockIdx.x * NORM_WARPS + (threadIdx.x >> 5);
    if (r >= N) return;
    const T *xr = x + (size_t)r * D;
    T *yr = y + (size_t)r * D;
    float ss = 0.0f;
    for (int c = lane * V; c < D; c += 32 * V) {
        float v[V];
        Vec<V>::load(xr + c, v);
#pragma unroll
        for (int k = 0; k < V; k++) ss += v[k] * v[k];
    }
    float s = rmsnorm_rstd((double)warp_sum(ss), D, eps);
    if (lane == 0) rstd[r] = s;
    for (int c = lane * V; c < D; c += 32 * V) {
        float v[V], wv[V];
        Vec<V>::load(xr + c, v);   // again: the row is in L1 now
        Vec<V>::load(w + c, wv);
#pragma unroll
        for (int k = 0; k < V; k++) v[k] = rmsnorm_apply(v[k], wv[k], s);
        Vec<V>::store(yr + c, v);
    }
}

template <class T>
static void rmsnorm_forward_t(void *y, float *rstd, const void *x, const void *w, int N, int D,
                              float eps) {
    bool vec = D % 8 == 0 && aligned16(x) && aligned16(y) && aligned16(w);
    unsigned blocks = (unsigned)((N + NORM_WARPS - 1) / NORM_WARPS);
    if (vec)
        LAUNCH(blocks, NORM_WARPS * 32, 0, rmsnorm_forward_kernel<T, 8>)(
            (T *)y, rstd, (const T *)x, (const T *)w, N, D, eps);
    else
        LAUNCH(blocks, NORM_WARPS * 32, 0, rmsnorm_forward_kernel<T, 1>)(
            (T *)y, rstd, (const T *)x, (const T *)w, N, D, eps);
    KERNEL_CHECK();
}

void kernels_rmsnorm_forward(void *y, float *rstd, const void *x, const void *w, int N, int D,
                             float eps) {
    if (N == 0) return;
    g_cuda.bf16 ? rmsnorm_forward_t<bf16>(y, rstd, x, w, N, D, eps)
                : rmsnorm_forward_t<float>(y, rstd, x, w, N, D, eps);
}

// The backward pass's grid, a function of N and D only, so the dw summation
// order (and result) is the same on every device: warps per block such that
// each warp's fp32 row of dw partial sums fits 64 KiB of shared memory per
// block, and at most 2048 warps in all (each takes rows warp, + all warps, ...).
struct NormBackwardGrid {
    int warps, blocks;
};

static NormBackwardGrid rmsnorm_backward_grid(int N, int D) {
    int warps = 16384 / D;
    warps = warps < 1 ? 1 : warps > 8 ? 8 : warps;
    int rows = N < 2048 ? N : 2048;
    return NormBackwardGrid{warps, (rows + warps - 1) / warps};
}

// Rows r = blockIdx.x · warps + warp, + gridDim.x · warps, ...: dx += ∂/∂x,
// one warp per row; each warp sums its rows' ∂/∂w terms (dy·x·rstd) in its own
// shared-memory row (the lane's columns only: no barrier), and the block adds
// its warps' rows in warp order into partial (gridDim.x, D).
template <class T, int V>
__global__ void rmsnorm_backward_kernel(T *dx, float *partial, const T *dy, const T *x,
                                        const T *w, const float *rstd, int N, int D) {
    DYNAMIC_SMEM(smem);
    const int warps = blockDim.x >> 5, warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    float *dw_all = reinterpret_cast<float *>(smem), *dw = dw_all + (size_t)warp * D;
    for (int c = lane * V; c < D; c += 32 * V)
#pragma unroll
        for (int k = 0; k < V; k++) dw[c + k] = 0.0f;
    for (int r = blockIdx.x * warps + warp; r < N; r += gridDim.x * warps) {
        const T *dyr = dy + (size_t)r * D, *xr = x + (size_t)r * D;
        T *dxr = dx + (size_t)r * D;
        float s = rstd[r], dot = 0.0f;
        for (int c = lane * V; c < D; c += 32 * V) {
            float a[V], b[V], wv[V];
            Vec<V>::load(dyr + c, a);
            Vec<V>::load(xr + c, b);
            Vec<V>::load(w + c, wv);
#pragma unroll
            for (int k = 0; k < V; k++) dot += a[k] * wv[k] * b[k];
        }
        float coef = rmsnorm_grad_coef((double)warp_sum(dot), s, D);
        for (int c = lane * V; c < D; c += 32 * V) {
            float a[V], b[V], wv[V], d[V];
            Vec<V>::load(dyr + c, a);
            Vec<V>::load(xr + c, b);
            Vec<V>::load(w + c, wv);
            Vec<V>::load(dxr + c, d);
#pragma unroll
            for (int k = 0; k < V; k++) {
                d[k] += rmsnorm_grad(a[k], wv[k], b[k], s, coef);
                dw[c + k] += a[k] * b[k] * s;
            }
            Vec<V>::store(dxr + c, d);
        }
    }
    __syncthreads();
    for (int c = threadIdx.x; c < D; c += blockDim.x) {
        float sum = 0.0f;
        for (int k = 0; k < warps; k++) sum += dw_all[(size_t)k * D + c];
        partial[(size_t)blockIdx.x * D + c] = sum;
    }
}

// dw[c] += Σ_b partial[b][c] over `blocks` partial rows: 32 columns per block,
// each of its 8 warps sums the rows b ≡ warp (mod 8), then the 8 sums are added
// in warp order.
__global__ void __launch_bounds__(256)
rmsnorm_dw_reduce_kernel(float *dw, const float *partial, int blocks, int D) {
    __shared__ float sums[8][32];
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, c = blockIdx.x * 32 + lane;
    float s = 0.0f;
    if (c < D)
        for (int b = warp; b < blocks; b += 8) s += partial[(size_t)b * D + c];
    sums[warp][lane] = s;
    __syncthreads();
    if (warp == 0 && c < D) {
        float total = 0.0f;
#pragma unroll
        for (int k = 0; k < 8; k++) total += sums[k][lane];
        dw[c] += total;
    }
}

template <class T>
static void rmsnorm_backward_t(void *dx, float *dw, const void *dy, const void *x, const void *w,
                               const float *rstd, int N, int D) {
    NormBackwardGrid grid = rmsnorm_backward_grid(N, D);
    float *partial = (float *)cuda_scratch((size_t)grid.blocks * D * sizeof(float));
    bool vec = D % 8 == 0 && aligned16(dx) && aligned16(dy) && aligned16(x) && aligned16(w);
    size_t smem = (size_t)grid.warps * D * sizeof(float);
    if (smem > g_cuda.prop.sharedMemPerBlockOptin)
        fatal("CUDA RMSNorm backward: width %d needs %zu bytes of shared memory, more than the "
              "%zu this GPU has per block", D, smem, (size_t)g_cuda.prop.sharedMemPerBlockOptin);
    if (vec) {
        cuda_allow_smem(rmsnorm_backward_kernel<T, 8>, smem);
        LAUNCH(grid.blocks, grid.warps * 32, smem, rmsnorm_backward_kernel<T, 8>)(
            (T *)dx, partial, (const T *)dy, (const T *)x, (const T *)w, rstd, N, D);
    } else {
        cuda_allow_smem(rmsnorm_backward_kernel<T, 1>, smem);
        LAUNCH(grid.blocks, grid.warps * 32, smem, rmsnorm_backward_kernel<T, 1>)(
            (T *)dx, partial, (const T *)dy, (const T *)x, (const T *)w, rstd, N, D);
    }
    KERNEL_CHECK();
    LAUNCH((D + 31) / 32, 256, 0, rmsnorm_dw_reduce_kernel)(dw, partial, grid.blocks, D);
    KERNEL_CHECK();
}

void kernels_rmsnorm_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                              const float *rstd, int N, int D) {
    if (N == 0) return;
    g_cuda.bf16 ? rmsnorm_backward_t<bf16>(dx, dw, dy, x, w, rstd, N, D)
                : rmsnorm_backward_t<float>(dx, dw, dy, x, w, rstd, N, D);
}

// ---- rotary embedding ----

// Rotates pairs (i, i + hd/2) of each head of each row, V consecutive pairs
// per thread and iteration; sign −1 rotates back.
template <class T, int V>
__global__ void rope_kernel(T *qkv, const float *cos_t, const float *sin_t, int N, int T_,
                            int stride, int n_heads, int hd, float sign) {
    int half = hd / 2, groups = half / V;
    size_t items = (size_t)N * n_heads * groups;
    for (size_t p = blockIdx.x * (size_t)blockDim.x + threadIdx.x; p < items;
         p += (size_t)gridDim.x * blockDim.x) {
        int i = (int)(p % groups) * V;
        size_t rh = p / groups;
        int h = (int)(rh % n_heads);
        size_t r = rh / n_heads;
        size_t pos = r % (size_t)T_;
        T *v = qkv + r * stride + (size_t)h * hd;
        float a[V], b[V], c[V], s[V];
        Vec<V>::load(v + i, a);
        Vec<V>::load(v + i + half, b);
        Vec<V>::load(cos_t + pos * half + i, c);
        Vec<V>::load(sin_t + pos * half + i, s);
#pragma unroll
        for (int k = 0; k < V; k++) rope_rotate_pair(&a[k], &b[k], c[k], sign * s[k]);
        Vec<V>::store(v + i, a);
        Vec<V>::store(v + i + half, b);
    }
}

template <class T>
static void rope_t(T *qkv, const float *cos_t, const float *sin_t, int N, int T_, int stride,
                   int n_heads, int hd, float sign) {
    size_t pairs = (size_t)N * n_heads * (hd / 2);
    if ((hd / 2) % 8 == 0 && stride % 8 == 0 && aligned16(qkv) && aligned16(cos_t) &&
        aligned16(sin_t))
        LAUNCH(grid_for(pairs / 8, 256, 16384), 256, 0, rope_kernel<T, 8>)(
            qkv, cos_t, sin_t, N, T_, stride, n_heads, hd, sign);
    else
        LAUNCH(grid_for(pairs, 256, 16384), 256, 0, rope_kernel<T, 1>)(
            qkv, cos_t, sin_t, N, T_, stride, n_heads, hd, sign);
    KERNEL_CHECK();
}

void kernels_rope(void *qkv, const float *cos_t, const float *sin_t, int N, int T, int stride,
                  int n_heads, int hd, float sign) {
    if ((size_t)N * n_heads * (hd / 2) == 0) return;
    if (g_cuda.bf16) rope_t<bf16>((bf16 *)qkv, cos_t, sin_t, N, T, stride, n_heads, hd, sign);
    else rope_t<float>((float *)qkv, cos_t, sin_t, N, T, stride, n_heads, hd, sign);
}

// ---- SwiGLU: gu (N, 2F) = [gate | up], h (N, F) ----

template <class T, int V>
__global__ void swiglu_forward_kernel(T *h, const T *gu, int N, int F) {
    size_t vectors = (size_t)N * F / V;
    for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < vectors;
         v += (size_t)gridDim.x * blockDim.x) {
        size_t e = v * V, r = e / F, i = e % F;
        float g[V], u[V];
        Vec<V>::load(gu + r * 2 * F + i, g);
        Vec<V>::load(gu + r * 2 * F + F + i, u);
#pragma unroll
        for (int k = 0; k < V; k++) g[k] = swiglu(g[k], u[k]);
        Vec<V>::store(h + e, g);
    }
}

template <class T, int V>
__global__ void swiglu_backward_kernel(T *dgu, const T *dh, const T *gu, int N, int F) {
    size_t vectors = (size_t)N * F / V;
    for (size_t v = blockIdx.x * (size_t)blockDim.x + threadIdx.x; v < vectors;
         v += (size_t)gridDim.x * blockDim.x) {
        size_t e = v * V, r = e / F, i = e % F;
        float g[V], u[V], d[V], dg[V], du[V];
        Vec<V>::load(gu + r * 2 * F + i, g);
        Vec<V>::load(gu + r * 2 * F + F + i, u);
        Vec<V>::load(dh + e, d);
#pragma unroll
        for (int k = 0; k < V; k++) swiglu_grad(g[k], u[k], d[k], &dg[k], &du[k]);
        Vec<V>::store(dgu + r * 2 * F + i, dg);
        Vec<V>::store(dgu + r * 2 * F + F + i, du);
    }
}

template <class T> static void swiglu_forward_t(void *h, const void *gu, int N, int F) {
    size_t n = (size_t)N * F;
    if (F % 8 == 0 && aligned16(h) && aligned16(gu))
        LAUNCH(grid_for(n / 8, 256, 16384), 256, 0, swiglu_forward_kernel<T, 8>)(
            (T *)h, (const T *)gu, N, F);
    else
        LAUNCH(grid_for(n, 256, 16384), 256, 0, swiglu_forward_kernel<T, 1>)(
            (T *)h, (const T *)gu, N, F);
    KERNEL_CHECK();
}

template <class T> static void swiglu_backward_t(void *dgu, const void *dh, const void *gu, int N,
                                                 int F) {
    size_t n = (size_t)N * F;
    if (F % 8 == 0 && aligned16(dgu) && aligned16(dh) && aligned16(gu))
        LAUNCH(grid_for(n / 8, 256, 16384), 256, 0, swiglu_backward_kernel<T, 8>)(
            (T *)dgu, (const T *)dh, (const T *)gu, N, F);
    else
        LAUNCH(grid_for(n, 256, 16384), 256, 0, swiglu_backward_kernel<T, 1>)(
            (T *)dgu, (const T *)dh, (const T *)gu, N, F);
    KERNEL_CHECK();
}

void kernels_swiglu_forward(void *h, const void *gu, int N, int F) {
    if ((size_t)N * F == 0) return;
    g_cuda.bf16 ? swiglu_forward_t<bf16>(h, gu, N, F) : swiglu_forward_t<float>(h, gu, N, F);
}

void kernels_swiglu_backward(void *dgu, const void *dh, const void *gu, int N, int F) {
    if ((size_t)N * F == 0) return;
    g_cuda.bf16 ? swiglu_backward_t<bf16>(dgu, dh, gu, N, F)
                : swiglu_backward_t<float>(dgu, dh, gu, N, F);
}

// ---- vocab-parallel embedding ----

// One block per row: the table row of the token, or zeros when the token
// lies outside this rank's rows [vocab_start, vocab_start + rows).
template <class T, int V>
__global__ void embedding_forward_kernel(T *x, const int32_t *tokens, const T *table, int D,
                                         int vocab_start, int rows) {
    int t = tokens[blockIdx.x] - vocab_start;
    T *xr = x + (size_t)blockIdx.x * D;
    bool mine = t >= 0 && t < rows;
    for (int c = threadIdx.x * V; c < D; c += blockDim.x * V) {
        float v[V];
        if (mine) Vec<V>::load(table + (size_t)t * D + c, v);
        else
#pragma unroll
            for (int k = 0; k < V; k++) v[k] = 0.0f;
        Vec<V>::store(xr + c, v);
    }
}

// dtable (rows, D) += dx rows of this rank's tokens; repeated tokens add up
// with atomics (the order of those fp32 additions is not fixed).
template <class T>
__global__ void embedding_backward_kernel(float *dtable, const T *dx, const int32_t *tokens,
                                          int N, int D, int vocab_start, int rows) {
    size_t n = (size_t)N * D;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x) {
        size_t r = e / D;
        int i = (int)(e % D), t = tokens[r] - vocab_start;
        if (t >= 0 && t < rows) atomicAdd(&dtable[(size_t)t * D + i], to_f(dx[e]));
    }
}

// Threads of a one-block-per-row kernel: one V-wide vector of the row each,
// 64 to 256.
static int row_threads(int width, int V) {
    int t = (width / V + 31) / 32 * 32;
    return t < 64 ? 64 : t > 256 ? 256 : t;
}

template <class T>
static void embedding_forward_t(void *x, const int32_t *tokens, const void *table, int N, int D,
                                int vocab_start, int rows) {
    bool vec = D % 8 == 0 && aligned16(x) && aligned16(table);
    int threads = row_threads(D, vec ? 8 : 1);
    if (vec)
        LAUNCH(N, threads, 0, embedding_forward_kernel<T, 8>)((T *)x, tokens, (const T *)table, D,
                                                              vocab_start, rows);
    else
        LAUNCH(N, threads, 0, embedding_forward_kernel<T, 1>)((T *)x, tokens, (const T *)table, D,
                                                              vocab_start, rows);
    KERNEL_CHECK();
}

void kernels_embedding_forward(void *x, const int32_t *tokens, const void *table, int N, int D,
                               int vocab_start, int rows) {
    if (N == 0) return;
    g_cuda.bf16 ? embedding_forward_t<bf16>(x, tokens, table, N, D, vocab_start, rows)
                : embedding_forward_t<float>(x, tokens, table, N, D, vocab_start, rows);
}

void kernels_embedding_backward(float *dtable, const void *dx, const int32_t *tokens, int N, int D,
                                int vocab_start, int rows) {
    size_t n = (size_t)N * D;
    if (n == 0) return;
    if (g_cuda.bf16)
        LAUNCH(grid_for(n, 256, 16384), 256, 0, embedding_backward_kernel<bf16>)(
            dtable, (const bf16 *)dx, tokens, N, D, vocab_start, rows);
    else
        LAUNCH(grid_for(n, 256, 16384), 256, 0, embedding_backward_kernel<float>)(
            dtable, (const float *)dx, tokens, N, D, vocab_start, rows);
    KERNEL_CHECK();
}

// ---- vocab-parallel cross-entropy: one block per row of logits (N, V) ----

template <class T, int VW>
__global__ void ce_row_max_kernel(float *row_max, const T *logits, int V, int valid) {
    const T *l = logits + (size_t)blockIdx.x * V;
    float mx = -INFINITY;
    for (int c = threadIdx.x * VW; c < valid; c += blockDim.x * VW) {
        float v[VW];
        if (c + VW <= valid) Vec<VW>::load(l + c, v);
        else
            for (int k = 0; k < VW; k++) v[k] = c + k < valid ? to_f(l[c + k]) : -INFINITY;
#pragma unroll
        for (int k = 0; k < VW; k++) mx = fmaxf(mx, v[k]);
    }
    mx = block_max(mx);
    if (threadIdx.x == 0) row_max[blockIdx.x] = mx;
}

// stats (N, 2): Σ_j<valid exp(logit − row_max), and the target's logit when
// the target is one of this rank's valid columns (else 0).
template <class T, int VW>
__global__ void ce_stats_kernel(float *stats, const T *logits, const float *row_max,
                                const int32_t *targets, int V, int valid, int vocab_start) {
    const T *l = logits + (size_t)blockIdx.x * V;
    float mx = row_max[blockIdx.x], sum = 0.0f;
    for (int c = threadIdx.x * VW; c < valid; c += blockDim.x * VW) {
        float v[VW];
        if (c + VW <= valid) {
            Vec<VW>::load(l + c, v);
#pragma unroll
            for (int k = 0; k < VW; k++) sum += expf(v[k] - mx);
        } else {
            for (int k = 0; k < VW && c + k < valid; k++) sum += expf(to_f(l[c + k]) - mx);
        }
    }
    sum = block_sum(sum);
    if (threadIdx.x == 0) {
        int t = targets[blockIdx.x] - vocab_start;
        stats[2 * blockIdx.x] = sum;
        stats[2 * blockIdx.x + 1] = t >= 0 && t < valid ? to_f(l[t]) : 0.0f;
    }
}

// loss = log Σ + max − target logit; with grad_scale != 0 the row becomes
// grad_scale · (softmax − onehot(target)), zero on the padded columns.
template <class T, int VW>
__global__ void ce_loss_grad_kernel(float *loss, T *logits, const float *row_max,
                                    const float *stats, const int32_t *targets, int V, int valid,
                                    int vocab_start, float grad_scale) {
    int r = blockIdx.x;
    float mx = row_max[r], sum = stats[2 * r];
    if (threadIdx.x == 0) loss[r] = ce_loss(sum, mx, stats[2 * r + 1]);
    if (grad_scale == 0.0f) return;
    T *l = logits + (size_t)r * V;
    float inv = 1.0f / sum;
    int t = targets[r] - vocab_start;
    for (int c = threadIdx.x * VW; c < V; c += blockDim.x * VW) {
        float v[VW];
        int n = c + VW <= V ? VW : V - c;
        if (n == VW) Vec<VW>::load(l + c, v);
        else
            for (int k = 0; k < VW; k++) v[k] = k < n ? to_f(l[c + k]) : 0.0f;
#pragma unroll
        for (int k = 0; k < VW; k++) {
            int j = c + k;
            v[k] = j < valid ? ce_grad(v[k], mx, inv, grad_scale) : 0.0f;
            if (j == t && t < valid) v[k] -= grad_scale;
        }
        if (n == VW) Vec<VW>::store(l + c, v);
        else
            for (int k = 0; k < n; k++) l[c + k] = from_f<T>(v[k]);
    }
}

static int ce_threads(int V) { return V >= 4096 ? 512 : V >= 1024 ? 256 : 128; }

template <class T>
static void ce_launch(int which, float *out, void *logits, const float *row_max,
                      const float *stats, const int32_t *targets, int N, int V, int valid,
                      int vocab_start, float grad_scale) {
    bool vec = V % 8 == 0 && aligned16(logits);
    int threads = ce_threads(V);
    T *l = (T *)logits;
    if (which == 0) {
        if (vec) LAUNCH(N, threads, 0, ce_row_max_kernel<T, 8>)(out, l, V, valid);
        else LAUNCH(N, threads, 0, ce_row_max_kernel<T, 1>)(out, l, V, valid);
    } else if (which == 1) {
        if (vec)
            LAUNCH(N, threads, 0, ce_stats_kernel<T, 8>)(out, l, row_max, targets, V, valid,
                                                         vocab_start);
        else
            LAUNCH(N, threads, 0, ce_stats_kernel<T, 1>)(out, l, row_max, targets, V, valid,
                                                         vocab_start);
    } else {
        if (vec)
            LAUNCH(N, threads, 0, ce_loss_grad_kernel<T, 8>)(out, l, row_max, stats, targets, V,
                                                             valid, vocab_start, grad_scale);
        else
            LAUNCH(N, threads, 0, ce_loss_grad_kernel<T, 1>)(out, l, row_max, stats, targets, V,
                                                             valid, vocab_start, grad_scale);
    }
    KERNEL_CHECK();
}

void kernels_ce_row_max(float *row_max, const void *logits, int N, int V, int valid) {
    if (N == 0) return;
    void *l = (void *)logits;
    g_cuda.bf16 ? ce_launch<bf16>(0, row_max, l, NULL, NULL, NULL, N, V, valid, 0, 0)
                : ce_launch<float>(0, row_max, l, NULL, NULL, NULL, N, V, valid, 0, 0);
}

void kernels_ce_stats(float *stats, const void *logits, const float *row_max,
                      const int32_t *targets, int N, int V, int valid, int vocab_start) {
    if (N == 0) return;
    void *l = (void *)logits;
    g_cuda.bf16
        ? ce_launch<bf16>(1, stats, l, row_max, NULL, targets, N, V, valid, vocab_start, 0)
        : ce_launch<float>(1, stats, l, row_max, NULL, targets, N, V, valid, vocab_start, 0);
}

void kernels_ce_loss_grad(float *loss, void *logits, const float *row_max, const float *stats,
                          const int32_t *targets, int N, int V, int valid, int vocab_start,
                          float grad_scale) {
    if (N == 0) return;
    g_cuda.bf16 ? ce_launch<bf16>(2, loss, logits, row_max, stats, targets, N, V, valid,
                                  vocab_start, grad_scale)
                : ce_launch<float>(2, loss, logits, row_max, stats, targets, N, V, valid,
                                   vocab_start, grad_scale);
}

// ---- argmax: one block per row; the first index of the largest valid logit ----

template <class T>
__global__ void argmax_kernel(int32_t *index, float *value, const T *logits, int V, int valid,
                              int vocab_start) {
    __shared__ float best_v[32];
    __shared__ int best_i[32];
    const T *l = logits + (size_t)blockIdx.x * V;
    float bv = -INFINITY;
    int bi = valid;   // "none yet": larger than any index
    for (int j = threadIdx.x; j < valid; j += blockDim.x) {
        float v = to_f(l[j]);
        if (bi == valid || v > bv) bv = v, bi = j;
    }
    // Warp then block: larger value wins, the lower index on ties.
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) {
        float ov = __shfl_xor_sync(0xffffffffu, bv, o);
        int oi = __shfl_xor_sync(0xffffffffu, bi, o);
        if (oi != valid && (bi == valid || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
    }
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    if (lane == 0) best_v[warp] = bv, best_i[warp] = bi;
    __syncthreads();
    if (threadIdx.x == 0) {
        for (int w = 1; w < (int)(blockDim.x >> 5); w++) {
            float ov = best_v[w];
            int oi = best_i[w];
            if (oi != valid && (bi == valid || ov > bv || (ov == bv && oi < bi))) bv = ov, bi = oi;
        }
        index[blockIdx.x] = vocab_start + (bi == valid ? 0 : bi);
        value[blockIdx.x] = valid > 0 ? (bi == valid ? to_f(l[0]) : bv) : -INFINITY;
    }
}

void kernels_argmax(int32_t *index, float *value, const void *logits, int N, int V, int valid,
                    int vocab_start) {
    if (N == 0) return;
    if (g_cuda.bf16)
        LAUNCH(N, 256, 0, argmax_kernel<bf16>)(index, value, (const bf16 *)logits, V, valid,
                                               vocab_start);
    else
        LAUNCH(N, 256, 0, argmax_kernel<float>)(index, value, (const float *)logits, V, valid,
                                                vocab_start);
    KERNEL_CHECK();
}

// ---- optimizer ----

// Elements [0, n / V · V) V at a time, then the n % V left one by one; the new
// weights also into param (P: bf16 or float) unless it is NULL.
template <int V, class P>
__global__ void adamw_kernel(float *w, float *m, float *v, const float *g, P *param, size_t n,
                             AdamwStep a) {
    size_t vectors = n / V, stride = (size_t)gridDim.x * blockDim.x;
    size_t first = blockIdx.x * (size_t)blockDim.x + threadIdx.x;
    for (size_t i = first; i < vectors; i += stride) {
        float wv[V], mv[V], vv[V], gv[V];
        Vec<V>::load(w + i * V, wv);
        Vec<V>::load(m + i * V, mv);
        Vec<V>::load(v + i * V, vv);
        Vec<V>::load(g + i * V, gv);
#pragma unroll
        for (int k = 0; k < V; k++) adamw_update(&wv[k], &mv[k], &vv[k], gv[k], a);
        Vec<V>::store(w + i * V, wv);
        Vec<V>::store(m + i * V, mv);
        Vec<V>::store(v + i * V, vv);
        if (param) Vec<V>::store(param + i * V, wv);
    }
    for (size_t i = vectors * V + first; i < n; i += stride) {
        adamw_update(&w[i], &m[i], &v[i], g[i], a);
        if (param) Vec<1>::store(param + i, &w[i]);
    }
}

template <class P>
static void adamw_t(float *w, float *m, float *v, const float *g, P *param, size_t n,
                    AdamwStep a) {
    bool vec = aligned16(w) && aligned16(m) && aligned16(v) && aligned16(g) &&
               (!param || aligned16(param));
    if (vec && n >= 8)
        LAUNCH(grid_for(n / 8, 256, 8192), 256, 0, adamw_kernel<8, P>)(w, m, v, g, param, n, a);
    else
        LAUNCH(grid_for(n, 256, 8192), 256, 0, adamw_kernel<1, P>)(w, m, v, g, param, n, a);
    KERNEL_CHECK();
}

void kernels_adamw(float *w, float *m, float *v, const float *g, void *param, size_t n,
                   AdamwStep a) {
    if (n == 0) return;
    if (g_cuda.bf16) adamw_t<bf16>(w, m, v, g, (bf16 *)param, n, a);
    else adamw_t<float>(w, m, v, g, (float *)param, n, a);
}

// ---- deterministic reductions in double: Σ x (squares = false) or Σ x² ----

#define REDUCE_THREADS 256
#define REDUCE_BLOCKS_MAX 1024

// Block b sums elements b·256 + t + k·(blocks·256) into partial[b].
__global__ void reduce_partial_kernel(double *partial, const float *x, size_t n, bool squares) {
    double s = 0.0;
    for (size_t i = blockIdx.x * (size_t)REDUCE_THREADS + threadIdx.x; i < n;
         i += (size_t)gridDim.x * REDUCE_THREADS) {
        double v = x[i];
        s += squares ? v * v : v;
    }
    s = block_sum(s);
    if (threadIdx.x == 0) partial[blockIdx.x] = s;
}

__global__ void reduce_final_kernel(double *out, const double *partial, int blocks) {
    double s = 0.0;
    for (int i = threadIdx.x; i < blocks; i += REDUCE_THREADS) s += partial[i];
    s = block_sum(s);
    if (threadIdx.x == 0) *out = s;
}

// Σ over n floats, on the host.  The grid depends on n only, so the result is
// the same on every device and every run.
double kernels_reduce(const float *x, size_t n, bool squares) {
    if (n == 0) return 0.0;
    int blocks = (int)grid_for(n, (size_t)REDUCE_THREADS * 8, REDUCE_BLOCKS_MAX);
    double *partial = (double *)cuda_scratch((blocks + 1) * sizeof(double));
    LAUNCH(blocks, REDUCE_THREADS, 0, reduce_partial_kernel)(partial, x, n, squares);
    KERNEL_CHECK();
    LAUNCH(1, REDUCE_THREADS, 0, reduce_final_kernel)(partial + blocks, partial, blocks);
    KERNEL_CHECK();
    CUDA_CHECK(cudaMemcpyAsync(g_cuda.host_result, partial + blocks, sizeof(double),
                               cudaMemcpyDeviceToHost, g_cuda.stream));
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
    return g_cuda.host_result[0];
}

// A kernel that does nothing: launched once at start-up to check that this
// build has machine code for the device.
__global__ void probe_kernel(int *p) {
    if (p) *p = 0;
}

void kernels_probe(void) { LAUNCH(1, 32, 0, probe_kernel)((int *)nullptr); }
