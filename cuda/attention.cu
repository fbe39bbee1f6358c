// Causal grouped-query attention, flash-style: tiles of queries and keys in
// shared memory, an online softmax, no T × T matrix in device memory.  The
// forward pass keeps the log-sum-exp of each (batch, head, row) as the state
// (natural log of Σ exp(scale·q·k)); the backward pass recomputes the
// probabilities from Q, K and it.
//
// Layouts (ops.h): qkv (B·T, (nh + 2·nkv)·hd) holds the q heads, then the k
// heads, then the v heads of each row; out and dout (B·T, nh·hd); q head h
// reads kv head h / (nh / nkv).  state: lse (B, nh, T) fp32.  work:
// dq (B·T, nh·hd) fp32 accumulators, then D = rowsum(dO ∘ O) (B, nh, T) fp32.
//
// Two implementations:
//  - tensor cores (WMMA, bf16 in, fp32 accumulation) for head dims 64 and 128:
//    forward blocks of 64 queries × 64-key tiles, one warp per 16 query rows;
//    backward blocks own a 32-key tile of one kv head, loop over the group's
//    heads and the query tiles at or below the diagonal, accumulate dK and dV
//    in shared memory and dQ with fp32 atomics (FlashAttention-2's split);
//  - a SIMT path for any even head dim up to 256 and for fp32 (one warp per
//    query or key row, one key or query per lane), deterministic.
#include "common.cuh"

#include <math.h>
#include <stdlib.h>

using namespace nvcuda;

static constexpr float LOG2E = 1.4426950408889634f;
static constexpr float LN2 = 0.6931471805599453f;

#define SIMT_ROWS 8      // rows (warps) per block of the SIMT kernels
#define SIMT_TILE 32     // keys (forward, dQ) or queries (dK/dV) per tile: one per lane
#define MAX_HD 256       // SIMT: 8 output dims per lane
#define WMMA_BM 64       // query rows per tile
#define WMMA_BN_FWD 64   // keys per tile, forward
#define WMMA_BN_BWD 32   // keys per block, backward

size_t attention_state_bytes(int B, int T, int nh) { return (size_t)B * nh * T * sizeof(float); }

size_t attention_work_bytes(int B, int T, int nh, int hd) {
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

// ---- tensor-core path (bf16, head dims 64 and 128) ----

typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::row_major> FragA;
typedef wmma::fragment<wmma::matrix_a, 16, 16, 16, bf16, wmma::col_major> FragAT;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::row_major> FragB;
typedef wmma::fragment<wmma::matrix_b, 16, 16, 16, bf16, wmma::col_major> FragBT;
typedef wmma::fragment<wmma::accumulator, 16, 16, 16, float> FragC;

// Copies rows [r0, r0 + rows) of hd = HDIM bf16 columns at `col` of a row-major
// (·, ld) matrix into shared memory (row stride S), zeros for rows >= limit.
template <int HDIM, int S>
__device__ __forceinline__ void load_tile(bf16 *dst, const bf16 *src, size_t ld, int col, int r0,
                                          int rows, int limit) {
    constexpr int VPR = HDIM / 8;   // 16-byte vectors per row
    for (int e = threadIdx.x; e < rows * VPR; e += blockDim.x) {
        int r = e / VPR, c = (e % VPR) * 8;
        uint4 v = make_uint4(0u, 0u, 0u, 0u);
        if (r0 + r < limit)
            v = *reinterpret_cast<const uint4 *>(src + (size_t)(r0 + r) * ld + col + c);
        *reinterpret_cast<uint4 *>(dst + r * S + c) = v;
    }
}

template <int HDIM> struct FwdTile {
    static constexpr int BM = WMMA_BM, BN = WMMA_BN_FWD;
    static constexpr int KS = HDIM + 8;   // bf16 row stride of Q, K, V (multiple of 8)
    static constexpr int SS = BN + 4;     // fp32 row stride of S
    static constexpr int PS = BN + 8;     // bf16 row stride of P
    static constexpr int OS = HDIM + 4;   // fp32 row stride of O
    static constexpr size_t smem = (size_t)(BM + 2 * BN) * KS * 2 + (size_t)BM * SS * 4 +
                                   (size_t)BM * PS * 2 + (size_t)BM * OS * 4;
};

// Block (query tile, head, batch), 4 warps; warp w owns query rows
// [16w, 16w + 16) of the tile: its S strip, softmax statistics (in registers,
// the same in every lane), P strip and O strip (fp32, shared memory).
template <int HDIM>
__global__ void __launch_bounds__(128)
attn_fwd_wmma(bf16 *out, float *lse, const bf16 *qkv, int T_, int nh, int nkv, float scale_log2) {
    typedef FwdTile<HDIM> F;
    constexpr int BM = F::BM, BN = F::BN, KS = F::KS, SS = F::SS, PS = F::PS, OS = F::OS;
    static_assert(BN == 64, "the softmax gives each lane columns lane and lane + 32");
    DYNAMIC_SMEM(smem);
    bf16 *sq = reinterpret_cast<bf16 *>(smem);
    bf16 *sk = sq + BM * KS;
    bf16 *sv = sk + BN * KS;
    float *ss = reinterpret_cast<float *>(sv + BN * KS);
    bf16 *sp = reinterpret_cast<bf16 *>(ss + BM * SS);
    float *so = reinterpret_cast<float *>(sp + BM * PS);
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, g = h / (nh / nkv);
    size_t ld = (size_t)(nh + 2 * nkv) * HDIM;
    int q0 = blockIdx.x * BM;
    const bf16 *base = qkv + (size_t)b * T_ * ld;
    int kv_end = T_ < q0 + BM ? T_ : q0 + BM;   // keys [0, kv_end)

    load_tile<HDIM, KS>(sq, base, ld, h * HDIM, q0, BM, T_);
    for (int e = threadIdx.x; e < BM * OS; e += blockDim.x) so[e] = 0.0f;
    __syncthreads();
    FragA qf[HDIM / 16];
#pragma unroll
    for (int kk = 0; kk < HDIM / 16; kk++)
        wmma::load_matrix_sync(qf[kk], sq + warp * 16 * KS + kk * 16, KS);
    // The softmax gives each row of the strip to two lanes: lanes l and l + 16
    // own row 16w + l, the even and the odd columns (and O elements) of it.
    const int r = warp * 16 + (lane & 15), half = lane >> 4, i = q0 + r;
    float m_run = -INFINITY, l_run = 0.0f;   // the same in both lanes of a row

    for (int k0 = 0; k0 < kv_end; k0 += BN) {
        __syncthreads();   // every warp is done with the previous K and V
        load_tile<HDIM, KS>(sk, base, ld, (nh + g) * HDIM, k0, BN, kv_end);
        load_tile<HDIM, KS>(sv, base, ld, (nh + nkv + g) * HDIM, k0, BN, kv_end);
        __syncthreads();
        // S strip = Q strip · Kᵀ
#pragma unroll
        for (int cb = 0; cb < BN / 16; cb++) {
            FragC acc;
            wmma::fill_fragment(acc, 0.0f);
#pragma unroll
            for (int kk = 0; kk < HDIM / 16; kk++) {
                FragBT kf;
                wmma::load_matrix_sync(kf, sk + cb * 16 * KS + kk * 16, KS);
                wmma::mma_sync(acc, qf[kk], kf, acc);
            }
            wmma::store_matrix_sync(ss + warp * 16 * SS + cb * 16, acc, SS, wmma::mem_row_major);
        }
        __syncwarp();
        // Online softmax (base 2) of the strip's rows; rescale their O rows.
        {
            float sc[BN / 2], mx = -INFINITY;
#pragma unroll
            for (int c = 0; c < BN / 2; c++) {
                int col = half + 2 * c, j = k0 + col;
                sc[c] = j <= i && j < T_ ? ss[r * SS + col] * scale_log2 : -INFINITY;
                mx = fmaxf(mx, sc[c]);
            }
            mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 16));
            float m_new = fmaxf(m_run, mx);
            float m_use = m_new == -INFINITY ? 0.0f : m_new;   // no valid key yet: p = 0
            float alpha = exp2f(m_run - m_use), sum = 0.0f;
#pragma unroll
            for (int c = 0; c < BN / 2; c++) {
                float p = exp2f(sc[c] - m_use);
                sum += p;
                sp[r * PS + half + 2 * c] = __float2bfloat16_rn(p);
            }
            sum += __shfl_xor_sync(0xffffffffu, sum, 16);
            l_run = l_run * alpha + sum;
            m_run = m_new;
#pragma unroll
            for (int d = half; d < HDIM; d += 2) so[r * OS + d] *= alpha;
        }
        __syncwarp();
        // O strip += P strip · V
#pragma unroll
        for (int db = 0; db < HDIM / 16; db++) {
            FragC acc;
            wmma::load_matrix_sync(acc, so + warp * 16 * OS + db * 16, OS, wmma::mem_row_major);
#pragma unroll
            for (int kk = 0; kk < BN / 16; kk++) {
                FragA pf;
                FragB vf;
                wmma::load_matrix_sync(pf, sp + warp * 16 * PS + kk * 16, PS);
                wmma::load_matrix_sync(vf, sv + kk * 16 * KS + db * 16, KS);
                wmma::mma_sync(acc, pf, vf, acc);
            }
            wmma::store_matrix_sync(so + warp * 16 * OS + db * 16, acc, OS, wmma::mem_row_major);
        }
    }
    __syncwarp();
    if (i < T_) {   // each lane writes half of its row: 16-byte stores
        float inv = 1.0f / l_run;
        bf16 *orow = out + ((size_t)b * T_ + i) * nh * HDIM + (size_t)h * HDIM + half * (HDIM / 2);
        const float *orow_s = so + r * OS + half * (HDIM / 2);
#pragma unroll
        for (int v = 0; v < HDIM / 2; v += 8) {
            float o8[8];
#pragma unroll
            for (int k = 0; k < 8; k++) o8[k] = orow_s[v + k] * inv;
            Vec<8>::store(orow + v, o8);
        }
        if (half == 0) lse[((size_t)b * nh + h) * T_ + i] = (m_run + log2f(l_run)) * LN2;
    }
}

template <int HDIM> struct BwdTile {
    static constexpr int BM = WMMA_BM, BN = WMMA_BN_BWD;
    static constexpr int KS = HDIM + 8;   // bf16 row stride of K, V, Q, dO
    static constexpr int FS = HDIM + 4;   // fp32 row stride of dK, dV, dQ
    static constexpr int SS = BN + 4;     // fp32 row stride of S/P and dP
    static constexpr int PS = BN + 8;     // bf16 row stride of P and dS
    static constexpr size_t smem = (size_t)(2 * BN + 2 * BM) * KS * 2 +
                                   (size_t)(2 * BN + BM) * FS * 4 + (size_t)2 * BM * SS * 4 +
                                   (size_t)2 * BM * PS * 2 + (size_t)2 * BM * 4;
};

// Block (key tile of BN rows, kv head g, batch), 4 warps.  For each query
// head of the group and each 64-row query tile at or below the diagonal:
// S = Q Kᵀ, P = exp(scale·S − lse), dV += Pᵀ dO, dP = dO Vᵀ,
// dS = P ∘ (dP − D) · scale, dK += dSᵀ Q, dQ += dS K (fp32 atomics).
template <int HDIM>
__global__ void __launch_bounds__(128)
attn_bwd_wmma(bf16 *dqkv, float *dq, const bf16 *qkv, const bf16 *dout, const float *lse,
              const float *Dv, int T_, int nh, int nkv, float scale) {
    typedef BwdTile<HDIM> F;
    constexpr int BM = F::BM, BN = F::BN, KS = F::KS, FS = F::FS, SS = F::SS, PS = F::PS;
    DYNAMIC_SMEM(smem);
    bf16 *sk = reinterpret_cast<bf16 *>(smem);
    bf16 *sv = sk + BN * KS;
    bf16 *sq = sv + BN * KS;
    bf16 *sdo = sq + BM * KS;
    float *sdk = reinterpret_cast<float *>(sdo + BM * KS);
    float *sdv = sdk + BN * FS;
    float *sdq = sdv + BN * FS;
    float *ss = sdq + BM * FS;    // S, then P in fp32
    float *sdp = ss + BM * SS;
    bf16 *sp = reinterpret_cast<bf16 *>(sdp + BM * SS);
    bf16 *sds = sp + BM * PS;
    float *sl = reinterpret_cast<float *>(sds + BM * PS);
    float *sD = sl + BM;
    int warp = threadIdx.x >> 5;
    int b = blockIdx.z, g = blockIdx.y, group = nh / nkv;
    size_t ld = (size_t)(nh + 2 * nkv) * HDIM, ldo = (size_t)nh * HDIM;
    int k0 = blockIdx.x * BN;
    const bf16 *base = qkv + (size_t)b * T_ * ld, *dbase = dout + (size_t)b * T_ * ldo;
    float scale_log2 = scale * LOG2E;

    load_tile<HDIM, KS>(sk, base, ld, (nh + g) * HDIM, k0, BN, T_);
    load_tile<HDIM, KS>(sv, base, ld, (nh + nkv + g) * HDIM, k0, BN, T_);
    for (int e = threadIdx.x; e < BN * FS; e += blockDim.x) sdk[e] = sdv[e] = 0.0f;

    for (int h = g * group; h < (g + 1) * group; h++) {
        const float *lse_h = lse + ((size_t)b * nh + h) * T_, *D_h = Dv + ((size_t)b * nh + h) * T_;
        for (int i0 = k0 / BM * BM; i0 < T_; i0 += BM) {
            __syncthreads();   // the previous tile's readers are done
            load_tile<HDIM, KS>(sq, base, ld, h * HDIM, i0, BM, T_);
            load_tile<HDIM, KS>(sdo, dbase, ldo, h * HDIM, i0, BM, T_);
            for (int r = threadIdx.x; r < BM; r += blockDim.x) {
                sl[r] = i0 + r < T_ ? lse_h[i0 + r] * LOG2E : 0.0f;
                sD[r] = i0 + r < T_ ? D_h[i0 + r] : 0.0f;
            }
            __syncthreads();
            // S = Q Kᵀ (BM × BN)
            for (int t = warp; t < (BM / 16) * (BN / 16); t += 4) {
                int ti = t / (BN / 16), tj = t % (BN / 16);
                FragC acc;
                wmma::fill_fragment(acc, 0.0f);
#pragma unroll
                for (int kk = 0; kk < HDIM / 16; kk++) {
                    FragA a;
                    FragBT bt;
                    wmma::load_matrix_sync(a, sq + ti * 16 * KS + kk * 16, KS);
                    wmma::load_matrix_sync(bt, sk + tj * 16 * KS + kk * 16, KS);
                    wmma::mma_sync(acc, a, bt, acc);
                }
                wmma::store_matrix_sync(ss + ti * 16 * SS + tj * 16, acc, SS, wmma::mem_row_major);
            }
            __syncthreads();
            // P, causal: key j <= query i < T
            for (int e = threadIdx.x; e < BM * BN; e += blockDim.x) {
                int r = e / BN, c = e % BN, i = i0 + r, j = k0 + c;
                float p = i < T_ && j <= i ? exp2f(ss[r * SS + c] * scale_log2 - sl[r]) : 0.0f;
                ss[r * SS + c] = p;
                sp[r * PS + c] = __float2bfloat16_rn(p);
            }
            __syncthreads();
            // dV += Pᵀ dO (BN × HDIM);  dP = dO Vᵀ (BM × BN)
            for (int t = warp; t < (BN / 16) * (HDIM / 16); t += 4) {
                int tj = t / (HDIM / 16), td = t % (HDIM / 16);
                FragC acc;
                wmma::load_matrix_sync(acc, sdv + tj * 16 * FS + td * 16, FS, wmma::mem_row_major);
#pragma unroll
                for (int kk = 0; kk < BM / 16; kk++) {
                    FragAT a;
                    FragB bm;
                    wmma::load_matrix_sync(a, sp + kk * 16 * PS + tj * 16, PS);
                    wmma::load_matrix_sync(bm, sdo + kk * 16 * KS + td * 16, KS);
                    wmma::mma_sync(acc, a, bm, acc);
                }
                wmma::store_matrix_sync(sdv + tj * 16 * FS + td * 16, acc, FS, wmma::mem_row_major);
            }
            for (int t = warp; t < (BM / 16) * (BN / 16); t += 4) {
                int ti = t / (BN / 16), tj = t % (BN / 16);
                FragC acc;
                wmma::fill_fragment(acc, 0.0f);
#pragma unroll
                for (int kk = 0; kk < HDIM / 16; kk++) {
                    FragA a;
                    FragBT bt;
                    wmma::load_matrix_sync(a, sdo + ti * 16 * KS + kk * 16, KS);
                    wmma::load_matrix_sync(bt, sv + tj * 16 * KS + kk * 16, KS);
                    wmma::mma_sync(acc, a, bt, acc);
                }
                wmma::store_matrix_sync(sdp + ti * 16 * SS + tj * 16, acc, SS, wmma::mem_row_major);
            }
            __syncthreads();
            // dS = P ∘ (dP − D) · scale
            for (int e = threadIdx.x; e < BM * BN; e += blockDim.x) {
                int r = e / BN, c = e % BN;
                sds[r * PS + c] = __float2bfloat16_rn(ss[r * SS + c] * (sdp[r * SS + c] - sD[r]) * scale);
            }
            __syncthreads();
            // dK += dSᵀ Q (BN × HDIM);  dQ tile = dS K (BM × HDIM)
            for (int t = warp; t < (BN / 16) * (HDIM / 16); t += 4) {
                int tj = t / (HDIM / 16), td = t % (HDIM / 16);
                FragC acc;
                wmma::load_matrix_sync(acc, sdk + tj * 16 * FS + td * 16, FS, wmma::mem_row_major);
#pragma unroll
                for (int kk = 0; kk < BM / 16; kk++) {
                    FragAT a;
                    FragB bm;
                    wmma::load_matrix_sync(a, sds + kk * 16 * PS + tj * 16, PS);
                    wmma::load_matrix_sync(bm, sq + kk * 16 * KS + td * 16, KS);
                    wmma::mma_sync(acc, a, bm, acc);
                }
                wmma::store_matrix_sync(sdk + tj * 16 * FS + td * 16, acc, FS, wmma::mem_row_major);
            }
            for (int t = warp; t < (BM / 16) * (HDIM / 16); t += 4) {
                int ti = t / (HDIM / 16), td = t % (HDIM / 16);
                FragC acc;
                wmma::fill_fragment(acc, 0.0f);
#pragma unroll
                for (int kk = 0; kk < BN / 16; kk++) {
                    FragA a;
                    FragB bm;
                    wmma::load_matrix_sync(a, sds + ti * 16 * PS + kk * 16, PS);
                    wmma::load_matrix_sync(bm, sk + kk * 16 * KS + td * 16, KS);
                    wmma::mma_sync(acc, a, bm, acc);
                }
                wmma::store_matrix_sync(sdq + ti * 16 * FS + td * 16, acc, FS, wmma::mem_row_major);
            }
            __syncthreads();
            for (int e = threadIdx.x; e < BM * HDIM; e += blockDim.x) {
                int r = e / HDIM, d = e % HDIM, i = i0 + r;
                if (i < T_) atomicAdd(&dq[((size_t)b * T_ + i) * ldo + (size_t)h * HDIM + d], sdq[r * FS + d]);
            }
        }
    }
    __syncthreads();
    for (int e = threadIdx.x; e < BN * HDIM; e += blockDim.x) {
        int r = e / HDIM, d = e % HDIM, j = k0 + r;
        if (j >= T_) continue;
        bf16 *row = dqkv + ((size_t)b * T_ + j) * ld;
        row[(nh + g) * HDIM + d] = __float2bfloat16_rn(sdk[r * FS + d]);
        row[(nh + nkv + g) * HDIM + d] = __float2bfloat16_rn(sdv[r * FS + d]);
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

static bool use_wmma(int hd, size_t smem, const void *a, const void *b, const void *c,
                     const void *d) {
    static int simt_only = -1;
    if (simt_only < 0) simt_only = getenv("LLAMA_ATTENTION_SIMT") != NULL;
    return g_cuda.bf16 && !simt_only && (hd == 64 || hd == 128) && aligned16(a) &&
           aligned16(b) && aligned16(c) && (!d || aligned16(d)) &&
           smem <= g_cuda.prop.sharedMemPerBlockOptin;
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
    if (hd == 64 && use_wmma(hd, FwdTile<64>::smem, out, qkv, state, NULL)) {
        cuda_allow_smem(attn_fwd_wmma<64>, FwdTile<64>::smem);
        LAUNCH(dim3((T + WMMA_BM - 1) / WMMA_BM, nh, B), 128, FwdTile<64>::smem, attn_fwd_wmma<64>)(
            (bf16 *)out, lse, (const bf16 *)qkv, T, nh, nkv, scale * LOG2E);
    } else if (hd == 128 && use_wmma(hd, FwdTile<128>::smem, out, qkv, state, NULL)) {
        cuda_allow_smem(attn_fwd_wmma<128>, FwdTile<128>::smem);
        LAUNCH(dim3((T + WMMA_BM - 1) / WMMA_BM, nh, B), 128, FwdTile<128>::smem,
               attn_fwd_wmma<128>)((bf16 *)out, lse, (const bf16 *)qkv, T, nh, nkv, scale * LOG2E);
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
static void attention_backward_wmma(bf16 *dqkv, float *dq, const float *Dv, const bf16 *dout,
                                    const bf16 *qkv, const float *lse, int B, int T, int nh,
                                    int nkv, float scale) {
    CUDA_CHECK(cudaMemsetAsync(dq, 0, (size_t)B * T * nh * HDIM * sizeof(float), g_cuda.stream));
    cuda_allow_smem(attn_bwd_wmma<HDIM>, BwdTile<HDIM>::smem);
    LAUNCH(dim3((T + WMMA_BN_BWD - 1) / WMMA_BN_BWD, nkv, B), 128, BwdTile<HDIM>::smem,
           attn_bwd_wmma<HDIM>)(dqkv, dq, qkv, dout, lse, Dv, T, nh, nkv, scale);
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
    const float *lse = (const float *)state;
    float *dq = (float *)work, *Dv = dq + (size_t)B * T * nh * hd;
    float scale = 1.0f / sqrtf((float)hd);
    size_t rows = (size_t)B * T * nh;
    if (g_cuda.bf16)
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<bf16>)(Dv, (const bf16 *)dout,
                                                              (const bf16 *)out, T, nh, hd, rows);
    else
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<float>)(Dv, (const float *)dout,
                                                               (const float *)out, T, nh, hd, rows);
    KERNEL_CHECK();
    if (hd == 64 && use_wmma(hd, BwdTile<64>::smem, dqkv, dout, qkv, out))
        attention_backward_wmma<64>((bf16 *)dqkv, dq, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                    lse, B, T, nh, nkv, scale);
    else if (hd == 128 && use_wmma(hd, BwdTile<128>::smem, dqkv, dout, qkv, out))
        attention_backward_wmma<128>((bf16 *)dqkv, dq, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                     lse, B, T, nh, nkv, scale);
    else if (g_cuda.bf16)
        attention_backward_simt<bf16>((bf16 *)dqkv, Dv, (const bf16 *)dout, (const bf16 *)qkv,
                                      lse, B, T, nh, nkv, hd, scale);
    else
        attention_backward_simt<float>((float *)dqkv, Dv, (const float *)dout, (const float *)qkv,
                                       lse, B, T, nh, nkv, hd, scale);
}
