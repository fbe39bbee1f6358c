// FlashAttention-2 kernels of attention.cu for bf16 at head dims 64 and 128:
// tensor-core products with mma.sync m16n8k16 on fragments loaded by
// ldmatrix (mma.cuh), tiles brought into shared memory with cp.async and
// double-buffered, the online softmax in registers (base 2, scale·log2 e
// folded into one FMA), and P reused from the accumulators as the A operand
// of P·V.  Included once, by attention.cu (layouts: see there).
//
// Forward: block (query tile of BM = 16·WARPS rows, q head, batch); warp w
// owns query rows [16w, 16w + 16) of the tile, its O strip (16 × hd fp32) and
// softmax statistics in registers; the block loops over the key tiles of BN
// keys up to the diagonal, masking only the tiles that cross it.
//
// Backward: block (key tile of 64 keys, kv head, batch), 4 warps; warp w owns
// keys [16w, 16w + 16) and their dK, dV rows (fp32 registers); the block loops
// over the group's q heads and the query tiles of BM rows at or below the
// diagonal: Sᵀ = K Qᵀ, Pᵀ = 2^(Sᵀ·scale·log2 e − lse·log2 e), dPᵀ = V dOᵀ,
// dSᵀ = Pᵀ ∘ (dPᵀ − D)·scale, dV += Pᵀ dO, dK += dSᵀ Q, and through shared
// memory dQ = dS K, added to the fp32 dq buffer with atomics.
//
// Both kernels also run ring attention's blocks (POS = true): keys and values
// in a buffer of their own, causal on global positions rather than row
// indices (tiles skipped and masked by position), the forward pass's rows
// merged with the blocks before by their softmax sums, the backward pass's
// dK and dV added to the gradients of the blocks before.
#pragma once

#include "common.cuh"
#include "mma.cuh"

static constexpr float LOG2E = 1.4426950408889634f;   // (also attention.cu's)
static constexpr float LN2 = 0.6931471805599453f;

// Shared-memory tiles hold rows of HDIM bf16 padded by 8 (16 bytes): the 8
// rows one ldmatrix phase reads then start in 8 different 16-byte bank groups.
template <int HDIM> __host__ __device__ constexpr int tile_stride() { return HDIM + 8; }

// Rows [r0, r0 + ROWS) of HDIM bf16 at src (row stride ld) into dst (row
// stride HDIM + 8) with cp.async; rows >= limit are zero-filled.  All THREADS
// threads of the block take part; the caller commits.
template <int ROWS, int HDIM, int THREADS>
__device__ __forceinline__ void cp_async_rows(bf16 *dst, const bf16 *src, size_t ld, int r0,
                                              int limit) {
    constexpr int VPR = HDIM / 8, S = tile_stride<HDIM>();   // 16-byte vectors per row
    static_assert(ROWS * VPR % THREADS == 0, "whole vectors per thread");
#pragma unroll
    for (int k = 0; k < ROWS * VPR / THREADS; k++) {
        int e = threadIdx.x + k * THREADS, r = e / VPR, c = (e % VPR) * 8;
        bool valid = r0 + r < limit;
        cp_async_16(dst + r * S + c, src + (size_t)(valid ? r0 + r : 0) * ld + c, valid);
    }
}

// ---- warp-level products on 16-row strips (C fragments c[n / 8][4]) ----

template <int N> __device__ __forceinline__ void zero_frags(float c[N / 8][4]) {
#pragma unroll
    for (int j = 0; j < N / 8; j++) c[j][0] = c[j][1] = c[j][2] = c[j][3] = 0.0f;
}

// c (16 × N) += A · Bᵀ: A the 16 × K A fragments a[K / 16] in registers, B
// (N × K) row-major in shared memory at b, row stride sb.
template <int K, int N>
__device__ __forceinline__ void mma_regs_bt(float c[N / 8][4], const uint32_t a[K / 16][4],
                                            const bf16 *b, int sb, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++)
#pragma unroll
        for (int nb = 0; nb < N / 16; nb++) {
            uint32_t f[4];
            ldmatrix_x4(f, b + nb * 16 * sb + kk * 16 + ldm_offset_b(lane, sb));
            mma_m16n8k16_bf16(c[2 * nb], a[kk], f);
            mma_m16n8k16_bf16(c[2 * nb + 1], a[kk], f + 2);
        }
}

// c (16 × N) += A · Bᵀ: A (16 × K) and B (N × K) row-major in shared memory.
template <int K, int N>
__device__ __forceinline__ void mma_smem_bt(float c[N / 8][4], const bf16 *a, int sa,
                                            const bf16 *b, int sb, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
        uint32_t af[4];
        ldmatrix_x4(af, a + kk * 16 + ldm_offset_a(lane, sa));
#pragma unroll
        for (int nb = 0; nb < N / 16; nb++) {
            uint32_t f[4];
            ldmatrix_x4(f, b + nb * 16 * sb + kk * 16 + ldm_offset_b(lane, sb));
            mma_m16n8k16_bf16(c[2 * nb], af, f);
            mma_m16n8k16_bf16(c[2 * nb + 1], af, f + 2);
        }
    }
}

// c (16 × N) += P · B: P the 16 × K C fragments p[K / 8] of an earlier product
// (rounded to bf16: the A operand without shared memory), B (K × N) row-major
// in shared memory.
template <int K, int N>
__device__ __forceinline__ void mma_cfrag_b(float c[N / 8][4], const float p[K / 8][4],
                                            const bf16 *b, int sb, int lane) {
#pragma unroll
    for (int kk = 0; kk < K / 16; kk++) {
        uint32_t a[4];
        pack_a_from_c(a, p[2 * kk], p[2 * kk + 1]);
#pragma unroll
        for (int nb = 0; nb < N / 16; nb++) {
            uint32_t f[4];
            ldmatrix_x4_trans(f, b + kk * 16 * sb + nb * 16 + ldm_offset_a(lane, sb));
            mma_m16n8k16_bf16(c[2 * nb], a, f);
            mma_m16n8k16_bf16(c[2 * nb + 1], a, f + 2);
        }
    }
}

// The warp's 16 × HDIM strip c (the lane's row g scaled by scale[0], row
// g + 8 by scale[1]) as bf16 into rows [row0, row0 + 16) of dst (row stride
// ld; rows >= limit skipped), staged in the warp's own 16 shared rows st
// (stride HDIM + 8) for 16-byte global stores.
template <int HDIM>
__device__ __forceinline__ void store_strip(bf16 *dst, size_t ld, int row0, int limit,
                                            const float c[HDIM / 8][4], const float scale[2],
                                            bf16 *st, int lane) {
    constexpr int S = tile_stride<HDIM>(), VPR = HDIM / 8;
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < HDIM / 8; j++) {
        *reinterpret_cast<uint32_t *>(st + g * S + 8 * j + 2 * t) =
            pack_bf16(c[j][0] * scale[0], c[j][1] * scale[0]);
        *reinterpret_cast<uint32_t *>(st + (g + 8) * S + 8 * j + 2 * t) =
            pack_bf16(c[j][2] * scale[1], c[j][3] * scale[1]);
    }
    __syncwarp();
#pragma unroll
    for (int k = 0; k < 16 * VPR / 32; k++) {
        int e = lane + 32 * k, r = e / VPR, col = (e % VPR) * 8;
        if (row0 + r < limit)
            *reinterpret_cast<uint4 *>(dst + (size_t)(row0 + r) * ld + col) =
                *reinterpret_cast<const uint4 *>(st + r * S + col);
    }
}

__device__ __forceinline__ int min_int(int a, int b) { return a < b ? a : b; }

// ---- positions ----
//
// Plain attention has a query at row i see the keys of rows ≤ i; a ring block
// (context parallelism) has its queries and keys at global positions (POS
// kernels: device arrays, increasing along the rows), a key seen by the
// queries at its position and later.  So a query sees a prefix of the keys
// and a key a suffix of the queries.

// How many of the n increasing positions p are ≤ x (< x with `strict`).
__device__ __forceinline__ int positions_upto(const int32_t *p, int n, int x, bool strict) {
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (strict ? p[mid] < x : p[mid] <= x) lo = mid + 1;
        else hi = mid;
    }
    return lo;
}

// ---- forward ----

template <int HDIM, int WARPS, int BN> struct FwdMma {
    static constexpr int BM = 16 * WARPS, THREADS = 32 * WARPS, S = tile_stride<HDIM>();
    // Q [BM][S], then two buffers of K [BN][S] and V [BN][S]
    static constexpr size_t smem = (size_t)(BM + 4 * BN) * S * sizeof(bf16);
};

// What the forward kernel reads and writes.  Plain attention: q, k and v are
// column ranges of one qkv buffer (ldq = ldkv), Tq = Tk.  A ring block (POS):
// k and v in a buffer of their own, the positions, and the rows merged with
// the blocks before (`merge`) or written.
struct FwdArgs {
    bf16 *out;                     // (B·Tq, nh·HDIM)
    float *lse;                    // (B, nh, Tq), natural log
    const bf16 *q, *k, *v;         // head 0's columns of row 0
    size_t ldq, ldkv;              // row strides of q, and of k and v
    int Tq, Tk, nh, nkv;
    const int32_t *q_pos, *k_pos;  // POS: (Tq), (Tk)
    float scale_log2;              // scale · log2 e
    bool merge;                    // POS: merge with out and lse as they are
};

// -inf for the keys k0 + col after the lane's queries q (row g) and q + 8.
template <int N>
__device__ __forceinline__ void mask_causal(float s[N / 8][4], int q, int k0, int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < N / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            if (k0 + 8 * j + 2 * t + (e & 1) > q + 8 * (e >> 1)) s[j][e] = -INFINITY;
}

// -inf for the keys k0 + col at positions after qp[0] (the lane's row g) and
// qp[1] (row g + 8), and for the keys from Tk on (zero rows of the tile).
template <int N>
__device__ __forceinline__ void mask_positions(float s[N / 8][4], const int qp[2],
                                               const int32_t *k_pos, int k0, int Tk, int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < N / 8; j++)
#pragma unroll
        for (int c = 0; c < 2; c++) {
            const int k = k0 + 8 * j + 2 * t + c, kp = k < Tk ? k_pos[k] : INT32_MAX;
#pragma unroll
            for (int r = 0; r < 2; r++)
                if (kp > qp[r]) s[j][2 * r + c] = -INFINITY;
        }
}

// One key tile of the online softmax on the lane's two rows (g, g + 8): the
// running maxima m (of s·scale_log2) and this lane's partial sums l, rescaling
// the O fragments o; s becomes P = 2^(s·scale_log2 − m).  A row that has seen
// no key yet (all −∞: only in ring blocks) keeps m = −∞ and gets P = 0.
template <int N, int HDIM>
__device__ __forceinline__ void softmax_tile(float s[N / 8][4], float m[2], float l[2],
                                             float o[HDIM / 8][4], float scale_log2) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        float mx = -INFINITY;
#pragma unroll
        for (int j = 0; j < N / 8; j++) mx = fmaxf(mx, fmaxf(s[j][2 * r], s[j][2 * r + 1]));
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));   // the row's 4 lanes
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 2));
        const float m_new = fmaxf(m[r], mx * scale_log2);
        const float m_use = m_new == -INFINITY ? 0.0f : m_new, alpha = exp2f(m[r] - m_use);
        m[r] = m_new;
        l[r] *= alpha;
#pragma unroll
        for (int d = 0; d < HDIM / 8; d++) o[d][2 * r] *= alpha, o[d][2 * r + 1] *= alpha;
#pragma unroll
        for (int j = 0; j < N / 8; j++)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; e++) {
                s[j][e] = exp2f(fmaf(s[j][e], scale_log2, -m_use));
                l[r] += s[j][e];
            }
    }
}

// K and V rows [k0, k0 + BN) of one kv head (k, v: its columns of row 0) into
// buf (K, then V), zeros from row limit on.
template <int HDIM, int BN, int THREADS>
__device__ __forceinline__ void load_kv(bf16 *buf, const bf16 *k, const bf16 *v, size_t ld,
                                        int k0, int limit) {
    constexpr int S = tile_stride<HDIM>();
    cp_async_rows<BN, HDIM, THREADS>(buf, k, ld, k0, limit);
    cp_async_rows<BN, HDIM, THREADS>(buf + BN * S, v, ld, k0, limit);
}

// Both row sums of the lane (rows q, q + 8) from its partial sums l: all 4
// lanes of each row get them.
__device__ __forceinline__ void sum_rows(float l[2]) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
    }
}

// Plain attention: 1 / sum of the lane's rows q, q + 8 into inv, and their
// natural-log log-sum-exp into lse_h (the head's (T) vector), rows before T.
__device__ __forceinline__ void finish_rows(float inv[2], float *lse_h, int q, int T_,
                                            const float m[2], float l[2], int lane) {
    sum_rows(l);
#pragma unroll
    for (int r = 0; r < 2; r++) {
        inv[r] = 1.0f / l[r];
        if ((lane & 3) == 0 && q + 8 * r < T_) lse_h[q + 8 * r] = (m[r] + log2f(l[r])) * LN2;
    }
}

// c (the warp's 16 × HDIM strip) += w[0] · row row0 + g of src (row stride
// ld) and w[1] · row row0 + g + 8, g the lane's fragment row; rows from limit
// on, and rows whose weight is 0, are not read.
template <int HDIM>
__device__ __forceinline__ void add_rows(float c[HDIM / 8][4], const float w[2], const bf16 *src,
                                         size_t ld, int row0, int limit, int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const int row = row0 + g + 8 * r;
        if (row >= limit || w[r] == 0.0f) continue;
        const bf16 *x = src + (size_t)row * ld + 2 * t;
#pragma unroll
        for (int j = 0; j < HDIM / 8; j++) {
            c[j][2 * r] += w[r] * to_f(x[8 * j]);
            c[j][2 * r + 1] += w[r] * to_f(x[8 * j + 1]);
        }
    }
}

// How a block's softmax joins the blocks before it (ring attention, both
// paths): out = out_before·before + (o / l)·mine, log-sum-exp lse.  From the
// blocks' log-sum-exp so far (−∞: none, or none saw a key), this block's
// running max m (natural log) and sum l (0: it saw no key, so out and lse
// stay as they are).
struct SoftmaxMerge {
    float before, mine, lse;
};
__device__ __forceinline__ SoftmaxMerge softmax_merge(float lse_before, float m, float l) {
    if (l == 0.0f) return {lse_before == -INFINITY ? 0.0f : 1.0f, 0.0f, lse_before};
    const float mine = m + logf(l);
    if (lse_before == -INFINITY) return {0.0f, 1.0f / l, mine};
    const float mx = fmaxf(lse_before, mine), a = expf(lse_before - mx), c = expf(mine - mx);
    return {a / (a + c), c / ((a + c) * l), mx + logf(a + c)};
}

// A ring block's rows q, q + 8 (the lane's, q = wq + g) from this block's o, m and the
// partial sums l: out (rows of the head, stride ldo) and lse_h written, or
// with `merge` combined with what they hold by the softmax sums: out =
// out·w_before + (o / l)·w_mine.  A row that saw no key stays as it was (with
// `merge`) or gets out 0 and lse −∞.  o becomes the rows' final values.
template <int HDIM>
__device__ __forceinline__ void merge_rows(float o[HDIM / 8][4], const bf16 *out_h, size_t ldo,
                                           float *lse_h, int wq, int Tq, const float m[2],
                                           float l[2], bool merge, int lane) {
    const int q = wq + (lane >> 2);
    sum_rows(l);
    float w_before[2], lse[2];
#pragma unroll
    for (int r = 0; r < 2; r++) {
        const bool valid = q + 8 * r < Tq;
        const SoftmaxMerge w = softmax_merge(merge && valid ? lse_h[q + 8 * r] : -INFINITY,
                                             m[r] * LN2, l[r]);   // m: base 2
        w_before[r] = w.before, lse[r] = w.lse;
#pragma unroll
        for (int d = 0; d < HDIM / 8; d++) o[d][2 * r] *= w.mine, o[d][2 * r + 1] *= w.mine;
    }
    add_rows<HDIM>(o, w_before, out_h, ldo, wq, Tq, lane);
    __syncwarp();   // every lane has read the rows' lse before lane 4g writes it
#pragma unroll
    for (int r = 0; r < 2; r++)
        if ((lane & 3) == 0 && q + 8 * r < Tq) lse_h[q + 8 * r] = lse[r];
}

// The rows of one warp as the forward pass's tile tests see them: its first
// row wq and its last; with POS the positions of the lane's rows and of the
// warp's first and last rows.
struct WarpRows {
    int first, last;   // last < first: the warp has no rows
    int qp[2], qp_first, qp_last;
};

template <bool POS>
__device__ __forceinline__ WarpRows warp_rows(const FwdArgs &a, int wq, int block_last, int q) {
    WarpRows w = {};
    w.first = wq, w.last = POS ? min_int(wq + 15, block_last) : wq + 15;
    if (POS && w.first <= w.last) {
        w.qp[0] = a.q_pos[min_int(q, w.last)], w.qp[1] = a.q_pos[min_int(q + 8, w.last)];
        w.qp_first = a.q_pos[w.first], w.qp_last = a.q_pos[w.last];
    }
    return w;
}

// Whether key tile [k0, k0 + BN) holds a key some row of the warp sees, and
// whether it holds one some row does not see (a mask is needed).
template <bool POS>
__device__ __forceinline__ bool tile_seen(const FwdArgs &a, const WarpRows &w, int k0) {
    if (!POS) return k0 <= w.last;
    return w.first <= w.last && a.k_pos[k0] <= w.qp_last;
}
template <bool POS, int BN>
__device__ __forceinline__ bool tile_masked(const FwdArgs &a, const WarpRows &w, int k0) {
    if (!POS) return k0 + BN - 1 > w.first;
    return k0 + BN > a.Tk || a.k_pos[k0 + BN - 1] > w.qp_first;
}

// (a minimum of 8 warps per SM: without one, ptxas caps head dim 64 at 128
// registers and spills)
template <int HDIM, int WARPS, int BN, bool POS>
__global__ void __launch_bounds__(32 * WARPS, 8 / WARPS) attn_fwd_mma(FwdArgs a) {
    typedef FwdMma<HDIM, WARPS, BN> F;
    constexpr int BM = F::BM, S = F::S;
    DYNAMIC_SMEM(smem);
    bf16 *sq = reinterpret_cast<bf16 *>(smem);   // [BM][S]; at the end each warp's output rows
    bf16 *skv = sq + BM * S;                     // [2][K, V][BN][S]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // grid (nh · B, query tiles): the longest query tiles (the last) of every
    // head and batch start first, so the short ones fill the tail
    const int b = blockIdx.x / a.nh, h = blockIdx.x % a.nh, g = h / (a.nh / a.nkv);
    const int q0 = (gridDim.y - 1 - blockIdx.y) * BM, block_last = min_int(a.Tq, q0 + BM) - 1;
    const int wq = q0 + 16 * warp, q = wq + (lane >> 2);   // the warp's first row, the lane's
    const WarpRows w = warp_rows<POS>(a, wq, block_last, q);
    const bf16 *qb = a.q + (size_t)b * a.Tq * a.ldq + (size_t)h * HDIM;
    const size_t kv_off = (size_t)b * a.Tk * a.ldkv + (size_t)g * HDIM;
    const bf16 *kb = a.k + kv_off, *vb = a.v + kv_off;
    // the keys [0, kv_end) some row of the block sees
    const int kv_end = POS ? positions_upto(a.k_pos, a.Tk, a.q_pos[block_last], false)
                           : block_last + 1;
    const int tiles = (kv_end + BN - 1) / BN;

    cp_async_rows<BM, HDIM, F::THREADS>(sq, qb, a.ldq, q0, a.Tq);
    load_kv<HDIM, BN, F::THREADS>(skv, kb, vb, a.ldkv, 0, kv_end);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    uint32_t qf[HDIM / 16][4];   // the warp's Q strip as A fragments, for every key tile
#pragma unroll
    for (int kk = 0; kk < HDIM / 16; kk++)
        ldmatrix_x4(qf[kk], sq + 16 * warp * S + kk * 16 + ldm_offset_a(lane, S));
    float o[HDIM / 8][4], m[2] = {-INFINITY, -INFINITY}, l[2] = {0.0f, 0.0f};
    zero_frags<HDIM>(o);

    for (int n = 0; n < tiles; n++) {
        const int k0 = n * BN;
        if (n + 1 < tiles) {   // the next tile into the other buffer, freed by the last sync
            load_kv<HDIM, BN, F::THREADS>(skv + ((n + 1) & 1) * 2 * BN * S, kb, vb, a.ldkv,
                                          k0 + BN, kv_end);
            cp_async_commit();
        }
        const bf16 *sk = skv + (n & 1) * 2 * BN * S, *sv = sk + BN * S;
        if (tile_seen<POS>(a, w, k0)) {
            float s[BN / 8][4];
            zero_frags<BN>(s);
            mma_regs_bt<HDIM, BN>(s, qf, sk, S, lane);
            if (tile_masked<POS, BN>(a, w, k0)) {
                if (POS) mask_positions<BN>(s, w.qp, a.k_pos, k0, a.Tk, lane);
                else mask_causal<BN>(s, q, k0, lane);
            }
            softmax_tile<BN, HDIM>(s, m, l, o, a.scale_log2);
            mma_cfrag_b<BN, HDIM>(o, s, sv, S, lane);
        }
        cp_async_wait<0>();
        __syncthreads();   // the next tile is visible; this one's buffer is free
    }

    const size_t ldo = (size_t)a.nh * HDIM;
    bf16 *out_h = a.out + (size_t)b * a.Tq * ldo + (size_t)h * HDIM;
    float *lse_h = a.lse + ((size_t)b * a.nh + h) * a.Tq;
    float scale[2] = {1.0f, 1.0f};
    if (POS) merge_rows<HDIM>(o, out_h, ldo, lse_h, wq, a.Tq, m, l, a.merge, lane);
    else finish_rows(scale, lse_h, q, a.Tq, m, l, lane);
    store_strip<HDIM>(out_h, ldo, wq, a.Tq, o, scale, sq + 16 * warp * S, lane);
}

// ---- backward ----

template <int HDIM, int BM> struct BwdMma {
    static constexpr int WARPS = 4, THREADS = 128, BN = 64, S = tile_stride<HDIM>(), SP = BM + 8;
    // K, V [BN][S]; two buffers of Q, dO [BM][S]; dSᵀ [BN][SP] bf16; two
    // buffers of lse and D [BM] fp32
    static constexpr size_t smem = (size_t)(2 * BN + 4 * BM) * S * sizeof(bf16) +
                                   (size_t)BN * SP * sizeof(bf16) + (size_t)4 * BM * sizeof(float);
    // POS kernels: two buffers of the query tile's positions [BM] after the rest
    static constexpr size_t smem_pos = smem + (size_t)2 * BM * sizeof(int32_t);
};

// The shared-memory carving of the backward kernel (buffers selected by
// arithmetic: an array of pointers indexed at run time would live in local memory).
template <int HDIM, int BM> struct BwdSmem {
    typedef BwdMma<HDIM, BM> F;
    static constexpr int QT = BM * F::S;   // elements of one Q or dO tile
    bf16 *k, *v, *dst;
    bf16 *qd;     // Q of buffer 0, Q of buffer 1, dO of buffer 0, dO of buffer 1
    float *ld;    // lse of buffer 0 and 1, D of buffer 0 and 1
    int32_t *qp;  // POS: positions of buffer 0 and 1
    __device__ __forceinline__ explicit BwdSmem(unsigned char *p) {
        k = reinterpret_cast<bf16 *>(p);
        v = k + F::BN * F::S;
        qd = v + F::BN * F::S;
        dst = qd + 4 * QT;
        ld = reinterpret_cast<float *>(dst + F::BN * F::SP);
        qp = reinterpret_cast<int32_t *>(ld + 4 * BM);
    }
    __device__ __forceinline__ bf16 *q(int buf) const { return qd + buf * QT; }
    __device__ __forceinline__ bf16 *dout(int buf) const { return qd + (2 + buf) * QT; }
    __device__ __forceinline__ float *lse(int buf) const { return ld + buf * BM; }
    __device__ __forceinline__ float *D(int buf) const { return ld + (2 + buf) * BM; }
    __device__ __forceinline__ int32_t *qpos(int buf) const { return qp + buf * BM; }
};

// What the backward kernel reads and writes.  Plain attention: q, k and v
// (and dk, dv) are column ranges of one qkv buffer (ldq = ldkv), Tq = Tk, dk
// and dv written.  A ring block (POS): k, v, dk and dv in buffers of their
// own, the positions, dk and dv added to.
struct BwdArgs {
    bf16 *dk, *dv;                 // head 0's columns of row 0, rows ldkv apart
    float *dq;                     // (B·Tq, nh·HDIM) fp32 accumulators, added to
    const bf16 *q, *k, *v, *dout;  // head 0's columns of row 0; dout (B·Tq, nh·HDIM)
    const float *lse, *D;          // (B, nh, Tq)
    size_t ldq, ldkv;              // row strides of q, and of k, v, dk and dv
    int Tq, Tk, nh, nkv;
    const int32_t *q_pos, *k_pos;  // POS: (Tq), (Tk)
    float scale;
};

// One query tile of the backward pass: the q head and the first query.
struct QTile {
    int h, i0;
};

// What the backward kernel reads of batch b's queries.
struct BwdInputs {
    const bf16 *q, *dout;     // head 0's columns of the batch's rows: (Tq, ldq), (Tq, ldo)
    const float *lse, *D;     // the batch's (nh, Tq)
    const int32_t *q_pos;     // POS: (Tq)
    size_t ldq, ldo;
    int Tq;
};

// Q, dO, lse and D (and with POS the positions) of query tile qt into buffer `buf`.
template <int HDIM, int BM, bool POS>
__device__ __forceinline__ void load_qtile(const BwdSmem<HDIM, BM> &sm, int buf, QTile qt,
                                           const BwdInputs &in) {
    typedef BwdMma<HDIM, BM> F;
    size_t col = (size_t)qt.h * HDIM;
    cp_async_rows<BM, HDIM, F::THREADS>(sm.q(buf), in.q + col, in.ldq, qt.i0, in.Tq);
    cp_async_rows<BM, HDIM, F::THREADS>(sm.dout(buf), in.dout + col, in.ldo, qt.i0, in.Tq);
    constexpr int VECTORS = (POS ? 3 : 2) * BM;   // lse, D, positions
#pragma unroll
    for (int k = 0; k < (VECTORS + F::THREADS - 1) / F::THREADS; k++) {
        const int e = threadIdx.x + k * F::THREADS, r = e % BM, i = qt.i0 + r;
        if (e >= VECTORS) break;
        const bool valid = i < in.Tq;   // zeros past Tq: with zero Q and dO rows, P·dO = dS = 0
        const size_t off = (size_t)qt.h * in.Tq + (valid ? i : 0);
        if (e < BM) cp_async_4(sm.lse(buf) + r, in.lse + off, valid);
        else if (e < 2 * BM) cp_async_4(sm.D(buf) + r, in.D + off, valid);
        else cp_async_4(sm.qpos(buf) + r, in.q_pos + (valid ? i : 0), valid);
    }
}

// The warp's 16 keys as its masks see them: positions (POS) or row indices.
struct WarpKeys {
    bool any;         // some key before Tk
    int first, last;  // of the warp's first and last keys (before Tk)
    int kp[2];        // of the lane's keys (fragment rows g, g + 8; clamped as last)
};

template <bool POS>
__device__ __forceinline__ WarpKeys warp_keys(const BwdArgs &a, int wk, int lane) {
    const int kr = wk + (lane >> 2);
    if (!POS) return WarpKeys{true, wk, wk + 15, {kr, kr + 8}};
    const int end = a.Tk - 1;
    WarpKeys w = {wk <= end, 0, 0, {0, 0}};
    if (w.any)
        w = WarpKeys{true, a.k_pos[wk], a.k_pos[min_int(wk + 15, end)],
                     {a.k_pos[min_int(kr, end)], a.k_pos[min_int(kr + 8, end)]}};
    return w;
}

// Pᵀ = 2^(Sᵀ·scale·log2 e − lse·log2 e) in place of Sᵀ (16 keys × QC queries);
// sl: the chunk's lse; with `masked`, 0 where the query of a column precedes
// the key of the row (the lane's keys kp: rows g, g + 8); the queries are
// qi0 + column, or with POS at the positions sp (the chunk's).
template <int QC, bool POS>
__device__ __forceinline__ void bwd_probs(float p[QC / 8][4], const float *sl, float scale,
                                          bool masked, const int32_t *sp, int qi0,
                                          const int kp[2], int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < QC / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int col = 8 * j + 2 * t + (e & 1), qp = POS ? sp[col] : qi0 + col;
            float v = exp2f(fmaf(p[j][e], scale * LOG2E, -sl[col] * LOG2E));
            p[j][e] = masked && qp < kp[e >> 1] ? 0.0f : v;
        }
}

// dSᵀ = Pᵀ ∘ (dPᵀ − D)·scale in place of dPᵀ; sD: the chunk's D.
template <int QC>
__device__ __forceinline__ void bwd_dscores(float ds[QC / 8][4], const float p[QC / 8][4],
                                            const float *sD, float scale, int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < QC / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++)
            ds[j][e] = p[j][e] * (ds[j][e] - sD[8 * j + 2 * t + (e & 1)]) * scale;
}

// The C fragments c (16 × N) as bf16 into the 16 rows at dst (row stride sd).
template <int N>
__device__ __forceinline__ void store_cfrags(bf16 *dst, int sd, const float c[N / 8][4],
                                             int lane) {
    const int g = lane >> 2, t = lane & 3;
#pragma unroll
    for (int j = 0; j < N / 8; j++) {
        *reinterpret_cast<uint32_t *>(dst + g * sd + 8 * j + 2 * t) = pack_bf16(c[j][0], c[j][1]);
        *reinterpret_cast<uint32_t *>(dst + (g + 8) * sd + 8 * j + 2 * t) =
            pack_bf16(c[j][2], c[j][3]);
    }
}

// Pᵀ and dSᵀ of the warp's 16 keys (fragment rows g, g + 8: the lane's keys,
// kp) and the QC queries [i0 + qc, + QC) (columns); adds to dk, dv and writes
// dSᵀ (scaled) into the warp's rows of sm.dst.
template <int HDIM, int BM, int QC, bool POS>
__device__ __forceinline__ void bwd_chunk(float dk[HDIM / 8][4], float dv[HDIM / 8][4],
                                          const BwdSmem<HDIM, BM> &sm, int buf, int i0, int qc,
                                          const int kp[2], bool masked, float scale, int warp,
                                          int lane) {
    typedef BwdMma<HDIM, BM> F;
    constexpr int S = F::S;
    const bf16 *sq = sm.q(buf) + qc * S, *sdo = sm.dout(buf) + qc * S;
    float p[QC / 8][4];   // Sᵀ = K Qᵀ, then Pᵀ
    zero_frags<QC>(p);
    mma_smem_bt<HDIM, QC>(p, sm.k + 16 * warp * S, S, sq, S, lane);
    bwd_probs<QC, POS>(p, sm.lse(buf) + qc, scale, masked, sm.qpos(buf) + qc, i0 + qc, kp, lane);
    mma_cfrag_b<QC, HDIM>(dv, p, sdo, S, lane);   // dV += Pᵀ dO
    float ds[QC / 8][4];   // dPᵀ = V dOᵀ, then dSᵀ
    zero_frags<QC>(ds);
    mma_smem_bt<HDIM, QC>(ds, sm.v + 16 * warp * S, S, sdo, S, lane);
    bwd_dscores<QC>(ds, p, sm.D(buf) + qc, scale, lane);
    mma_cfrag_b<QC, HDIM>(dk, ds, sq, S, lane);   // dK += dSᵀ Q
    store_cfrags<QC>(sm.dst + 16 * warp * F::SP + qc, F::SP, ds, lane);
}

// Zeros in the warp's rows, columns [qc, qc + QC), of dSᵀ.
template <int HDIM, int BM, int QC>
__device__ __forceinline__ void zero_dst(const BwdSmem<HDIM, BM> &sm, int qc, int warp, int lane) {
    typedef BwdMma<HDIM, BM> F;
    bf16 *dst = sm.dst + 16 * warp * F::SP + qc;
    for (int e = lane; e < 16 * QC / 2; e += 32)
        reinterpret_cast<uint32_t *>(dst + e / (QC / 2) * F::SP)[e % (QC / 2)] = 0u;
}

// The warp's part of one (key tile, query tile) pair, QC queries at a time
// (16 × QC fp32 strips of Sᵀ and dPᵀ in registers besides dK and dV);
// chunks whose queries all precede the warp's keys (or that have no query
// before Tq, or no key before Tk: POS) are zeros.
template <int HDIM, int BM, int QC, bool POS>
__device__ __forceinline__ void bwd_pair(float dk[HDIM / 8][4], float dv[HDIM / 8][4],
                                         const BwdSmem<HDIM, BM> &sm, int buf, int i0, int Tq,
                                         const WarpKeys &keys, float scale, int warp, int lane) {
    static_assert(BM % QC == 0 && QC % 16 == 0, "whole chunks of 16-query k-steps");
    const int32_t *sp = sm.qpos(buf);
#pragma unroll
    for (int qc = 0; qc < BM; qc += QC) {
        bool skip, masked;
        if (POS) {
            const int last = min_int(qc + QC, Tq - i0) - 1;   // the chunk's last query before Tq
            skip = !keys.any || last < qc || sp[last] < keys.first;
            masked = !skip && sp[qc] < keys.last;
        } else {
            skip = i0 + qc + QC - 1 < keys.first;
            masked = i0 + qc < keys.last;
        }
        if (skip)
            zero_dst<HDIM, BM, QC>(sm, qc, warp, lane);
        else
            bwd_chunk<HDIM, BM, QC, POS>(dk, dv, sm, buf, i0, qc, keys.kp, masked, scale, warp,
                                         lane);
    }
}

// p[0..3] += v[0..3] in global memory (p 16-byte aligned): one 16-byte
// reduction on sm_90, four 4-byte ones before.
__device__ __forceinline__ void atomic_add_f4(float *p, const float v[4]) {
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 900
    atomicAdd(reinterpret_cast<float4 *>(p), make_float4(v[0], v[1], v[2], v[3]));
#else
    for (int k = 0; k < 4; k++) atomicAdd(p + k, v[k]);
#endif
}

// Adds the C fragment c (16 × 8) to rows of dq (row stride ldo) at column
// col0, rows >= rows_left skipped.  Lanes 4g + t and 4g + (t ^ 1) swap half
// their fragment first, so each adds 4 consecutive floats: the even lane row
// g, columns 2t .. 2t + 3; the odd lane row g + 8, columns 2t − 2 .. 2t + 1.
__device__ __forceinline__ void atomic_add_cfrag(float *dq, size_t ldo, int rows_left, int col0,
                                                 const float c[4], int lane) {
    const int g = lane >> 2, t = lane & 3, odd = t & 1;
    float r0 = __shfl_xor_sync(0xffffffffu, odd ? c[0] : c[2], 1);
    float r1 = __shfl_xor_sync(0xffffffffu, odd ? c[1] : c[3], 1);
    float v[4] = {odd ? r0 : c[0], odd ? r1 : c[1], odd ? c[2] : r0, odd ? c[3] : r1};
    int row = g + 8 * odd;
    if (row < rows_left) atomic_add_f4(dq + (size_t)row * ldo + col0 + 2 * (t & ~1), v);
}

// dQ rows [16·rs, 16·rs + 16), columns [c0, c0 + CW) of the query tile +=
// dS K, from dSᵀ (BN × BM) and K (BN × HDIM) in shared memory.  dq: the
// tile's row 0 of the q head (row stride ldo), rows >= rows_left skipped.
template <int HDIM, int BM, int CW>
__device__ __forceinline__ void bwd_dq_strip(float *dq, size_t ldo, int rows_left,
                                             const BwdSmem<HDIM, BM> &sm, int rs, int c0,
                                             int lane) {
    typedef BwdMma<HDIM, BM> F;
    constexpr int S = F::S;
    uint32_t a[F::BN / 16][4];   // dS strip (16 × BN): A fragments from dSᵀ, .trans
#pragma unroll
    for (int kk = 0; kk < F::BN / 16; kk++)
        ldmatrix_x4_trans(a[kk], sm.dst + kk * 16 * F::SP + rs * 16 + ldm_offset_b(lane, F::SP));
#pragma unroll
    for (int nb = 0; nb < CW / 16; nb++) {
        float c[2][4];
        zero_frags<16>(c);
#pragma unroll
        for (int kk = 0; kk < F::BN / 16; kk++) {
            uint32_t f[4];
            ldmatrix_x4_trans(f, sm.k + kk * 16 * S + c0 + nb * 16 + ldm_offset_a(lane, S));
            mma_m16n8k16_bf16(c[0], a[kk], f);
            mma_m16n8k16_bf16(c[1], a[kk], f + 2);
        }
#pragma unroll
        for (int h = 0; h < 2; h++)
            atomic_add_cfrag(dq + (size_t)rs * 16 * ldo, ldo, rows_left - rs * 16,
                             c0 + nb * 16 + 8 * h, c[h], lane);
    }
}

// dQ of the query tile += dS K, its BM / 16 row strips shared among the
// warps: warp w takes strips w, w + WARPS, ... when there are more strips
// than warps, else strip w % strips and a 1 / (WARPS / strips) share of the
// columns.
template <int HDIM, int BM>
__device__ __forceinline__ void bwd_dq(float *dq, size_t ldo, int rows_left,
                                       const BwdSmem<HDIM, BM> &sm, int warp, int lane) {
    constexpr int MT = BM / 16, W = BwdMma<HDIM, BM>::WARPS;
    if constexpr (MT >= W) {
        static_assert(MT % W == 0, "whole strips per warp");
#pragma unroll
        for (int k = 0; k < MT / W; k++)
            bwd_dq_strip<HDIM, BM, HDIM>(dq, ldo, rows_left, sm, warp + k * W, 0, lane);
    } else {
        constexpr int CW = HDIM * MT / W;
        static_assert(W % MT == 0 && CW % 16 == 0, "whole column blocks per warp");
        bwd_dq_strip<HDIM, BM, CW>(dq, ldo, rows_left, sm, warp % MT, warp / MT * CW, lane);
    }
}

template <int HDIM, int BM, int QC, bool POS>
__global__ void __launch_bounds__(128, 2) attn_bwd_mma(BwdArgs a) {
    typedef BwdMma<HDIM, BM> F;
    constexpr int BN = F::BN, S = F::S;
    DYNAMIC_SMEM(smem);
    const BwdSmem<HDIM, BM> sm(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // grid (nkv · B, key tiles): the key tiles with the most query tiles after
    // them start first, of every head and batch, so the short ones fill the tail
    const int b = blockIdx.x / a.nkv, g = blockIdx.x % a.nkv, group = a.nh / a.nkv;
    const int k0 = blockIdx.y * BN, wk = k0 + 16 * warp;   // the warp's first key
    const size_t ldo = (size_t)a.nh * HDIM;
    const size_t kv_off = (size_t)b * a.Tk * a.ldkv + (size_t)g * HDIM;
    const BwdInputs in = {a.q + (size_t)b * a.Tq * a.ldq, a.dout + (size_t)b * a.Tq * ldo,
                          a.lse + (size_t)b * a.nh * a.Tq, a.D + (size_t)b * a.nh * a.Tq,
                          a.q_pos, a.ldq, ldo, a.Tq};
    // the query tiles: for each q head of the group, those from the first
    // query that sees key k0 on (plain: the diagonal tile's first)
    const int i_begin = POS ? positions_upto(a.q_pos, a.Tq, a.k_pos[k0], true) : k0 / BM * BM;
    const int per_head = (a.Tq - i_begin + BM - 1) / BM, total = group * per_head;
    auto qtile = [&](int it) {
        return QTile{g * group + it / per_head, i_begin + it % per_head * BM};
    };
    if (total == 0) return;   // POS: no query sees these keys; nothing to add

    cp_async_rows<BN, HDIM, F::THREADS>(sm.k, a.k + kv_off, a.ldkv, k0, a.Tk);
    cp_async_rows<BN, HDIM, F::THREADS>(sm.v, a.v + kv_off, a.ldkv, k0, a.Tk);
    load_qtile<HDIM, BM, POS>(sm, 0, qtile(0), in);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    const WarpKeys keys = warp_keys<POS>(a, wk, lane);
    float dk[HDIM / 8][4], dv[HDIM / 8][4];
    zero_frags<HDIM>(dk);
    zero_frags<HDIM>(dv);

    for (int it = 0; it < total; it++) {
        const QTile qt = qtile(it);
        const int buf = it & 1;
        if (it + 1 < total) {   // the next tile into the other buffer, freed by the last sync
            load_qtile<HDIM, BM, POS>(sm, buf ^ 1, qtile(it + 1), in);
            cp_async_commit();
        }
        bwd_pair<HDIM, BM, QC, POS>(dk, dv, sm, buf, qt.i0, a.Tq, keys, a.scale, warp, lane);
        __syncthreads();   // dSᵀ complete
        bwd_dq<HDIM, BM>(a.dq + ((size_t)b * a.Tq + qt.i0) * ldo + (size_t)qt.h * HDIM, ldo,
                         a.Tq - qt.i0, sm, warp, lane);
        cp_async_wait<0>();
        __syncthreads();   // the next tile is visible; dSᵀ and this tile's buffer are free
    }

    const float one[2] = {1.0f, 1.0f};   // dSᵀ carried the scale
    if (POS) {   // added to the gradients of the blocks before
        add_rows<HDIM>(dk, one, a.dk + kv_off, a.ldkv, wk, a.Tk, lane);
        add_rows<HDIM>(dv, one, a.dv + kv_off, a.ldkv, wk, a.Tk, lane);
    }
    store_strip<HDIM>(a.dk + kv_off, a.ldkv, wk, a.Tk, dk, one, sm.k + 16 * warp * S, lane);
    store_strip<HDIM>(a.dv + kv_off, a.ldkv, wk, a.Tk, dv, one, sm.v + 16 * warp * S, lane);
}
