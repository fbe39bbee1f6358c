// Causal grouped-query attention, flash-style: tiles of queries and keys in
// shared memory, an online softmax, no T × T matrix in device memory.  The
// forward pass keeps the log-sum-exp of each (batch, head, row) as the state
// (natural log of Σ exp(scale·q·k)); the backward pass recomputes the
// probabilities from Q, K and it.
//
// Layouts (ops.h): qkv (B·T, (nh + 2·nkv)·hd) holds the q heads, then the k
// heads, then the v heads of each row; out and dout (B·T, nh·hd); q head h
// reads kv head h / (nh / nkv).  state: lse (B, nh, T) fp32.  The backward
// pass's fp32 dq accumulators (B·T, nh·hd) and D = rowsum(dO ∘ O) (B, nh, T)
// live in the backend's scratch buffer, not in the op's work area (none): it
// is shared with every other op's temporaries and with cuDNN's workspace, and
// needs no memory when cuDNN runs the attention.
//
// Two implementations:
//  - tensor cores for bf16 at head dims 64 and 128 (attention_mma.cuh):
//    FlashAttention-2 with mma.sync m16n8k16, ldmatrix and cp.async; the
//    forward pass over query tiles, the backward pass over key tiles with dQ
//    added to the fp32 accumulators with atomics;
//  - a SIMT path for any even head dim up to 256 and for fp32 (one warp per
//    query or key row, one key or query per lane), deterministic.
#include "common.cuh"
#include "attention_mma.cuh"

#include <math.h>
#include <stdlib.h>

#define SIMT_ROWS 8      // rows (warps) per block of the SIMT kernels
#define SIMT_TILE 32     // keys (forward, dQ) or queries (dK/dV) per tile: one per lane
#define MAX_HD 256       // SIMT: 8 output dims per lane

size_t attention_state_bytes(int B, int T, int nh) { return (size_t)B * nh * T * sizeof(float); }

size_t attention_work_bytes(int, int, int, int) { return 0; }

// The backward pass's scratch: dq accumulators, then D (see the top).
static size_t backward_scratch_bytes(int B, int T, int nh, int hd) {
    return ((size_t)B * T * nh * hd + (size_t)B * nh * T) * sizeof(float);
}

// ---- SIMT path ----

// One warp per query row i: lanes score the keys of a 32-key tile, then the
// probabilities are shared to accumulate the output dims each lane owns
// (d = lane + 32·k).
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_fwd_simt(T *out, float *lse, const T *qkv, int T_, int nh, int nkv, int hd, float scale) {
    DYNAMIC_SMEM(smem);
    const int ks = hd + 1;                        // padded: lanes read different rows
    float *sk = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sv = sk + SIMT_TILE * ks;              // [SIMT_TILE][hd]
    float *sq = sv + SIMT_TILE * hd;              // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, g = h / (nh / nkv), ld = (nh + 2 * nkv) * hd;
    int row0 = blockIdx.x * SIMT_ROWS, i = row0 + warp;
    bool active = i < T_;
    const T *base = qkv + (size_t)b * T_ * ld;
    for (int d = lane; d < hd; d += 32)
        sq[warp * hd + d] = active ? to_f(base[(size_t)i * ld + h * hd + d]) : 0.0f;
    float o[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) o[k] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    int last = (T_ < row0 + SIMT_ROWS ? T_ : row0 + SIMT_ROWS) - 1;   // keys 0..last
    for (int j0 = 0; j0 <= last; j0 += SIMT_TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < SIMT_TILE * hd; e += blockDim.x) {
            int jj = e / hd, d = e % hd, j = j0 + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j <= last) {
                const T *row = base + (size_t)j * ld;
                kv = to_f(row[(nh + g) * hd + d]);
                vv = to_f(row[(nh + nkv + g) * hd + d]);
            }
            sk[jj * ks + d] = kv;
            sv[jj * hd + d] = vv;
        }
        __syncthreads();
        if (active && j0 <= i) {
            int j = j0 + lane;
            float s = -INFINITY;
            if (j <= i) {
                float acc = 0.0f;
                for (int d = 0; d < hd; d++) acc += sq[warp * hd + d] * sk[lane * ks + d];
                s = acc * scale;
            }
            float m_new = fmaxf(m, warp_max(s));   // finite: key j0 <= i
            float alpha = expf(m - m_new);
            float p = j <= i ? expf(s - m_new) : 0.0f;
            l = l * alpha + warp_sum(p);
            m = m_new;
#pragma unroll
            for (int k = 0; k < MAX_HD / 32; k++) o[k] *= alpha;
            for (int jj = 0; jj < SIMT_TILE; jj++) {
                float pj = __shfl_sync(0xffffffffu, p, jj);
#pragma unroll
                for (int k = 0; k < MAX_HD / 32; k++) {
                    int d = lane + 32 * k;
                    if (d < hd) o[k] += pj * sv[jj * hd + d];
                }
            }
        }
    }
    if (active) {
        float inv = 1.0f / l;
        T *orow = out + ((size_t)b * T_ + i) * nh * hd + (size_t)h * hd;
#pragma unroll
        for (int k = 0; k < MAX_HD / 32; k++) {
            int d = lane + 32 * k;
            if (d < hd) orow[d] = from_f<T>(o[k] * inv);
        }
        if (lane == 0) lse[((size_t)b * nh + h) * T_ + i] = m + logf(l);
    }
}

// D (B, nh, T) = rowsum(dO ∘ O): one warp per (row, head).
template <class T>
__global__ void attn_bwd_dot(float *Dv, const T *dout, const T *out, int T_, int nh, int hd,
                             size_t rows) {
    int lane = threadIdx.x & 31;
    size_t warps = (size_t)gridDim.x * (blockDim.x >> 5);
    for (size_t w = blockIdx.x * (size_t)(blockDim.x >> 5) + (threadIdx.x >> 5); w < rows;
         w += warps) {   // the same for every lane of a warp
        size_t r = w / nh;   // b·T + i
        int h = (int)(w % nh);
        const T *a = dout + r * nh * hd + (size_t)h * hd, *o = out + r * nh * hd + (size_t)h * hd;
        float s = 0.0f;
        for (int d = lane; d < hd; d += 32) s += to_f(a[d]) * to_f(o[d]);
        s = warp_sum(s);
        size_t b = r / T_, i = r % T_;
        if (lane == 0) Dv[(b * nh + h) * T_ + i] = s;
    }
}

// dQ of one query row per warp: over the keys j <= i, p = exp(scale·q·k − lse),
// dS = p · (dO·v − D), dq += dS · k · scale.
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_bwd_dq_simt(T *dqkv, const T *qkv, const T *dout, const float *lse, const float *Dv, int T_,
                 int nh, int nkv, int hd, float scale) {
    DYNAMIC_SMEM(smem);
    const int ks = hd + 1;
    float *sk = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sv = sk + SIMT_TILE * ks;              // [SIMT_TILE][hd + 1]
    float *sq = sv + SIMT_TILE * ks;              // [SIMT_ROWS][hd]
    float *sdo = sq + SIMT_ROWS * hd;             // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, g = h / (nh / nkv), ld = (nh + 2 * nkv) * hd;
    int row0 = blockIdx.x * SIMT_ROWS, i = row0 + warp;
    bool active = i < T_;
    const T *base = qkv + (size_t)b * T_ * ld;
    const T *dorow = dout + ((size_t)b * T_ + (active ? i : 0)) * nh * hd + (size_t)h * hd;
    for (int d = lane; d < hd; d += 32) {
        sq[warp * hd + d] = active ? to_f(base[(size_t)i * ld + h * hd + d]) : 0.0f;
        sdo[warp * hd + d] = active ? to_f(dorow[d]) : 0.0f;
    }
    float L = active ? lse[((size_t)b * nh + h) * T_ + i] : 0.0f;
    float Di = active ? Dv[((size_t)b * nh + h) * T_ + i] : 0.0f;
    float dq[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) dq[k] = 0.0f;
    int last = (T_ < row0 + SIMT_ROWS ? T_ : row0 + SIMT_ROWS) - 1;
    for (int j0 = 0; j0 <= last; j0 += SIMT_TILE) {
        __syncthreads();
        for (int e = threadIdx.x; e < SIMT_TILE * hd; e += blockDim.x) {
            int jj = e / hd, d = e % hd, j = j0 + jj;
            float kv = 0.0f, vv = 0.0f;
            if (j <= last) {
                const T *row = base + (size_t)j * ld;
                kv = to_f(row[(nh + g) * hd + d]);
                vv = to_f(row[(nh + nkv + g) * hd + d]);
            }
            sk[jj * ks + d] = kv;
            sv[jj * ks + d] = vv;
        }
        __syncthreads();
        if (active && j0 <= i) {
            int j = j0 + lane;
            float ds = 0.0f;
            if (j <= i) {
                float qk = 0.0f, dp = 0.0f;
                for (int d = 0; d < hd; d++) {
                    qk += sq[warp * hd + d] * sk[lane * ks + d];
                    dp += sdo[warp * hd + d] * sv[lane * ks + d];
                }
                float p = expf(qk * scale - L);
                ds = p * (dp - Di);
            }
            for (int jj = 0; jj < SIMT_TILE; jj++) {
                float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
                for (int k = 0; k < MAX_HD / 32; k++) {
                    int d = lane + 32 * k;
                    if (d < hd) dq[k] += dsj * sk[jj * ks + d];
                }
            }
        }
    }
    if (active) {
        T *row = dqkv + ((size_t)b * T_ + i) * ld + (size_t)h * hd;
#pragma unroll
        for (int k = 0; k < MAX_HD / 32; k++) {
            int d = lane + 32 * k;
            if (d < hd) row[d] = from_f<T>(dq[k] * scale);
        }
    }
}

// dK and dV of one key row j of kv head g per warp, summed over the group's
// query heads and the queries i >= j (lanes take one query each).
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_bwd_dkv_simt(T *dqkv, const T *qkv, const T *dout, const float *lse, const float *Dv,
                  int T_, int nh, int nkv, int hd, float scale) {
    DYNAMIC_SMEM(smem);
    const int qs = hd + 1;
    float *sq = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sdo = sq + SIMT_TILE * qs;             // [SIMT_TILE][hd + 1]
    float *sl = sdo + SIMT_TILE * qs;             // [SIMT_TILE] lse
    float *sD = sl + SIMT_TILE;                   // [SIMT_TILE] D
    float *skj = sD + SIMT_TILE;                  // [SIMT_ROWS][hd]
    float *svj = skj + SIMT_ROWS * hd;            // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, g = blockIdx.y, group = nh / nkv, ld = (nh + 2 * nkv) * hd;
    int row0 = blockIdx.x * SIMT_ROWS, j = row0 + warp;
    bool active = j < T_;
    const T *base = qkv + (size_t)b * T_ * ld;
    for (int d = lane; d < hd; d += 32) {
        skj[warp * hd + d] = active ? to_f(base[(size_t)j * ld + (nh + g) * hd + d]) : 0.0f;
        svj[warp * hd + d] = active ? to_f(base[(size_t)j * ld + (nh + nkv + g) * hd + d]) : 0.0f;
    }
    float dk[MAX_HD / 32], dv[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) dk[k] = dv[k] = 0.0f;
    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *lse_h = lse + ((size_t)b * nh + h) * T_, *D_h = Dv + ((size_t)b * nh + h) * T_;
        for (int i0 = row0; i0 < T_; i0 += SIMT_TILE) {
            __syncthreads();
            for (int e = threadIdx.x; e < SIMT_TILE * hd; e += blockDim.x) {
                int ii = e / hd, d = e % hd, i = i0 + ii;
                float qv = 0.0f, ov = 0.0f;
                if (i < T_) {
                    qv = to_f(base[(size_t)i * ld + h * hd + d]);
                    ov = to_f(dout[((size_t)b * T_ + i) * nh * hd + (size_t)h * hd + d]);
                }
                sq[ii * qs + d] = qv;
                sdo[ii * qs + d] = ov;
            }
            for (int ii = threadIdx.x; ii < SIMT_TILE; ii += blockDim.x) {
                int i = i0 + ii;
                sl[ii] = i < T_ ? lse_h[i] : 0.0f;
                sD[ii] = i < T_ ? D_h[i] : 0.0f;
            }
            __syncthreads();
            if (active && i0 + SIMT_TILE - 1 >= j) {
                int i = i0 + lane;
                float p = 0.0f, ds = 0.0f;
                if (i < T_ && i >= j) {
                    float qk = 0.0f, dp = 0.0f;
                    for (int d = 0; d < hd; d++) {
                        qk += sq[lane * qs + d] * skj[warp * hd + d];
                        dp += sdo[lane * qs + d] * svj[warp * hd + d];
                    }
                    p = expf(qk * scale - sl[lane]);
                    ds = p * (dp - sD[lane]);
                }
                for (int ii = 0; ii < SIMT_TILE; ii++) {
                    float pi = __shfl_sync(0xffffffffu, p, ii);
                    float dsi = __shfl_sync(0xffffffffu, ds, ii);
#pragma unroll
                    for (int k = 0; k < MAX_HD / 32; k++) {
                        int d = lane + 32 * k;
                        if (d < hd) {
                            dv[k] += pi * sdo[ii * qs + d];
                            dk[k] += dsi * sq[ii * qs + d];
                        }
                    }
                }
            }
        }
    }
    if (active) {
        T *row = dqkv + ((size_t)b * T_ + j) * ld;
#pragma unroll
        for (int k = 0; k < MAX_HD / 32; k++) {
            int d = lane + 32 * k;
            if (d < hd) {
                row[(nh + g) * hd + d] = from_f<T>(dk[k] * scale);
                row[(nh + nkv + g) * hd + d] = from_f<T>(dv[k]);
            }
        }
    }
}

// The q columns of dqkv from the fp32 accumulators dq (B·T, nh·hd).
template <class T>
__global__ void attn_dq_store(T *dqkv, const float *dq, size_t rows, int nh, int nkv, int hd) {
    size_t w = (size_t)nh * hd, n = rows * w, ld = (size_t)(nh + 2 * nkv) * hd;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x)
        dqkv[(e / w) * ld + e % w] = from_f<T>(dq[e]);
}

// ---- dispatch ----

// Tiles of the FlashAttention-2 kernels (attention_mma.cuh) per head dim:
// forward warps (16 query rows each) and keys per tile; backward query rows
// per tile and per register chunk.
template <int HDIM> struct MmaCfg;
template <> struct MmaCfg<64> {
    static constexpr int FWD_WARPS = 4, FWD_BN = 64, BWD_BM = 64, BWD_QC = 64;
};
template <> struct MmaCfg<128> {
    static constexpr int FWD_WARPS = 4, FWD_BN = 64, BWD_BM = 64, BWD_QC = 32;
};

// The tensor-core kernels: bf16 (unless LLAMA_ATTENTION_SIMT is set), head
// dim 64 or 128, 16-byte aligned buffers, and the shared memory they need.
static bool use_tensor_cores(int hd, size_t smem, const void *a, const void *b, const void *c,
                             const void *d) {
    static int simt_only = -1;
    if (simt_only < 0) simt_only = getenv("LLAMA_ATTENTION_SIMT") != NULL;
    return g_cuda.bf16 && !simt_only && (hd == 64 || hd == 128) && aligned16(a) &&
           aligned16(b) && aligned16(c) && (!d || aligned16(d)) &&
           smem <= g_cuda.prop.sharedMemPerBlockOptin;
}

template <int HDIM> using FwdTiles = FwdMma<HDIM, MmaCfg<HDIM>::FWD_WARPS, MmaCfg<HDIM>::FWD_BN>;
template <int HDIM> using BwdTiles = BwdMma<HDIM, MmaCfg<HDIM>::BWD_BM>;

template <int HDIM>
static void attention_forward_tc(bf16 *out, float *lse, const bf16 *qkv, int B, int T, int nh,
                                 int nkv, float scale) {
    typedef MmaCfg<HDIM> C;
    typedef FwdTiles<HDIM> F;
    cuda_allow_smem(attn_fwd_mma<HDIM, C::FWD_WARPS, C::FWD_BN>, F::smem);
    LAUNCH(dim3(nh * B, (T + F::BM - 1) / F::BM), F::THREADS, F::smem,
           attn_fwd_mma<HDIM, C::FWD_WARPS, C::FWD_BN>)(out, lse, qkv, T, nh, nkv, scale * LOG2E);
}

static void check_shape(int nh, int nkv, int hd) {
    if (hd > MAX_HD || hd % 2 || nkv <= 0 || nh % nkv)
        fatal("CUDA attention: head dim %d with %d heads and %d KV heads is not supported (even "
              "head dims up to %d, KV heads dividing heads)", hd, nh, nkv, MAX_HD);
}

void attention_forward(void *out, void *state, const void *qkv, int B, int T, int nh, int nkv,
                       int hd) {
    if (B == 0 || T == 0) return;
    check_shape(nh, nkv, hd);
    if (attention_cudnn_forward(out, state, qkv, B, T, nh, nkv, hd)) return;
    float *lse = (float *)state;
    float scale = 1.0f / sqrtf((float)hd);
    if (hd == 64 && use_tensor_cores(hd, FwdTiles<64>::smem, out, qkv, state, NULL)) {
        attention_forward_tc<64>((bf16 *)out, lse, (const bf16 *)qkv, B, T, nh, nkv, scale);
    } else if (hd == 128 && use_tensor_cores(hd, FwdTiles<128>::smem, out, qkv, state, NULL)) {
        attention_forward_tc<128>((bf16 *)out, lse, (const bf16 *)qkv, B, T, nh, nkv, scale);
    } else {
        size_t smem = ((size_t)SIMT_TILE * (hd + 1) + SIMT_TILE * hd + SIMT_ROWS * hd) * 4;
        dim3 grid((T + SIMT_ROWS - 1) / SIMT_ROWS, nh, B);
        if (g_cuda.bf16) {
            cuda_allow_smem(attn_fwd_simt<bf16>, smem);
            LAUNCH(grid, SIMT_ROWS * 32, smem, attn_fwd_simt<bf16>)(
                (bf16 *)out, lse, (const bf16 *)qkv, T, nh, nkv, hd, scale);
        } else {
            cuda_allow_smem(attn_fwd_simt<float>, smem);
            LAUNCH(grid, SIMT_ROWS * 32, smem, attn_fwd_simt<float>)(
                (float *)out, lse, (const float *)qkv, T, nh, nkv, hd, scale);
        }
    }
    KERNEL_CHECK();
}

template <class T>
static void attention_backward_simt(T *dqkv, float *Dv, const T *dout, const T *qkv,
                                    const float *lse, int B, int T_, int nh, int nkv, int hd,
                                    float scale) {
    size_t smem_q = ((size_t)2 * SIMT_TILE * (hd + 1) + 2 * SIMT_ROWS * hd) * 4;
    size_t smem_kv = ((size_t)2 * SIMT_TILE * (hd + 1) + 2 * SIMT_TILE + 2 * SIMT_ROWS * hd) * 4;
    cuda_allow_smem(attn_bwd_dq_simt<T>, smem_q);
    cuda_allow_smem(attn_bwd_dkv_simt<T>, smem_kv);
    unsigned tiles = (T_ + SIMT_ROWS - 1) / SIMT_ROWS;
    LAUNCH(dim3(tiles, nh, B), SIMT_ROWS * 32, smem_q, attn_bwd_dq_simt<T>)(
        dqkv, qkv, dout, lse, Dv, T_, nh, nkv, hd, scale);
    KERNEL_CHECK();
    LAUNCH(dim3(tiles, nkv, B), SIMT_ROWS * 32, smem_kv, attn_bwd_dkv_simt<T>)(
        dqkv, qkv, dout, lse, Dv, T_, nh, nkv, hd, scale);
    KERNEL_CHECK();
}

template <int HDIM>
static void attention_backward_tc(bf16 *dqkv, float *dq, const float *Dv, const bf16 *dout,
                                  const bf16 *qkv, const float *lse, int B, int T, int nh,
                                  int nkv, float scale) {
    typedef MmaCfg<HDIM> C;
    typedef BwdTiles<HDIM> F;
    CUDA_CHECK(cudaMemsetAsync(dq, 0, (size_t)B * T * nh * HDIM * sizeof(float), g_cuda.stream));
    cuda_allow_smem(attn_bwd_mma<HDIM, C::BWD_BM, C::BWD_QC>, F::smem);
    LAUNCH(dim3(nkv * B, (T + F::BN - 1) / F::BN), F::THREADS, F::smem,
           attn_bwd_mma<HDIM, C::BWD_BM, C::BWD_QC>)(dqkv, dq, qkv, dout, lse, Dv, T, nh, nkv,
                                                     scale);
    KERNEL_CHECK();
    size_t rows = (size_t)B * T;
    LAUNCH(grid_for(rows * nh * HDIM, 256, 16384), 256, 0, attn_dq_store<bf16>)(dqkv, dq, rows, nh,
                                                                              nkv, HDIM);
    KERNEL_CHECK();
}

void attention_backward(void *dqkv, void *work, const void *dout, const void *qkv,
                        const void *out, const void *state, int B, int T, int nh, int nkv,
                        int hd) {
    if (B == 0 || T == 0) return;
    check_shape(nh, nkv, hd);
    if (attention_cudnn_backward(dqkv, dout, qkv, out, state, B, T, nh, nkv, hd)) return;
    (void)work;
    const float *lse = (const float *)state;
    float *dq = (float *)cuda_scratch(backward_scratch_bytes(B, T, nh, hd));
    float *Dv = dq + (size_t)B * T * nh * hd;
    float scale = 1.0f / sqrtf((float)hd);
    size_t rows = (size_t)B * T * nh;
    if (g_cuda.bf16)
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<bf16>)(Dv, (const bf16 *)dout,
                                                              (const bf16 *)out, T, nh, hd, rows);
    else
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<float>)(Dv, (const float *)dout,
                                                               (const float *)out, T, nh, hd, rows);
    KERNEL_CHECK();
    if (hd == 64 && use_tensor_cores(hd, BwdTiles<64>::smem, dqkv, dout, qkv, out))
        attention_backward_tc<64>((bf16 *)dqkv, dq, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                  lse, B, T, nh, nkv, scale);
    else if (hd == 128 && use_tensor_cores(hd, BwdTiles<128>::smem, dqkv, dout, qkv, out))
        attention_backward_tc<128>((bf16 *)dqkv, dq, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                   lse, B, T, nh, nkv, scale);
    else if (g_cuda.bf16)
        attention_backward_simt<bf16>((bf16 *)dqkv, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                      lse, B, T, nh, nkv, hd, scale);
    else
        attention_backward_simt<float>((float *)dqkv, Dv, (const float *)dout, (const float *)qkv,
                                       lse, B, T, nh, nkv, hd, scale);
}
