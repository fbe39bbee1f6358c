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

// ---- forward ----

template <int HDIM, int WARPS, int BN> struct FwdMma {
    static constexpr int BM = 16 * WARPS, THREADS = 32 * WARPS, S = tile_stride<HDIM>();
    // Q [BM][S], then two buffers of K [BN][S] and V [BN][S]
    static constexpr size_t smem = (size_t)(BM + 4 * BN) * S * sizeof(bf16);
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

// One key tile of the online softmax on the lane's two rows (g, g + 8): the
// running maxima m (of s·scale_log2) and this lane's partial sums l, rescaling
// the O fragments o; s becomes P = 2^(s·scale_log2 − m).  The row's first key
// tile holds key 0, so m is finite from then on.
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
        float m_new = fmaxf(m[r], mx * scale_log2), alpha = exp2f(m[r] - m_new);
        m[r] = m_new;
        l[r] *= alpha;
#pragma unroll
        for (int d = 0; d < HDIM / 8; d++) o[d][2 * r] *= alpha, o[d][2 * r + 1] *= alpha;
#pragma unroll
        for (int j = 0; j < N / 8; j++)
#pragma unroll
            for (int e = 2 * r; e < 2 * r + 2; e++) {
                s[j][e] = exp2f(fmaf(s[j][e], scale_log2, -m_new));
                l[r] += s[j][e];
            }
    }
}

// K and V rows [k0, k0 + BN) of kv head g into buf (K, then V), zeros from
// row limit on.
template <int HDIM, int BN, int THREADS>
__device__ __forceinline__ void load_kv(bf16 *buf, const bf16 *base, size_t ld, int nh, int nkv,
                                        int g, int k0, int limit) {
    constexpr int S = tile_stride<HDIM>();
    cp_async_rows<BN, HDIM, THREADS>(buf, base + (size_t)(nh + g) * HDIM, ld, k0, limit);
    cp_async_rows<BN, HDIM, THREADS>(buf + BN * S, base + (size_t)(nh + nkv + g) * HDIM, ld, k0,
                                     limit);
}

// The row sums of the lane's rows q, q + 8 from its partial sums l (all 4
// lanes of each row get them), 1 / sum into inv, and the natural-log
// log-sum-exp of the rows before T into lse_h (the head's (T) vector).
__device__ __forceinline__ void finish_rows(float inv[2], float *lse_h, int q, int T_,
                                            const float m[2], float l[2], int lane) {
#pragma unroll
    for (int r = 0; r < 2; r++) {
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 1);
        l[r] += __shfl_xor_sync(0xffffffffu, l[r], 2);
        inv[r] = 1.0f / l[r];
        if ((lane & 3) == 0 && q + 8 * r < T_) lse_h[q + 8 * r] = (m[r] + log2f(l[r])) * LN2;
    }
}

// (a minimum of 8 warps per SM: without one, ptxas caps head dim 64 at 128
// registers and spills)
template <int HDIM, int WARPS, int BN>
__global__ void __launch_bounds__(32 * WARPS, 8 / WARPS)
attn_fwd_mma(bf16 *out, float *lse, const bf16 *qkv, int T_, int nh, int nkv, float scale_log2) {
    typedef FwdMma<HDIM, WARPS, BN> F;
    constexpr int BM = F::BM, S = F::S;
    DYNAMIC_SMEM(smem);
    bf16 *sq = reinterpret_cast<bf16 *>(smem);   // [BM][S]; at the end each warp's output rows
    bf16 *skv = sq + BM * S;                     // [2][K, V][BN][S]
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // grid (nh · B, query tiles): the longest query tiles (the last) of every
    // head and batch start first, so the short ones fill the tail
    const int b = blockIdx.x / nh, h = blockIdx.x % nh, g = h / (nh / nkv);
    const int q0 = (gridDim.y - 1 - blockIdx.y) * BM;
    const int wq = q0 + 16 * warp, q = wq + (lane >> 2);   // the warp's first row, the lane's
    const size_t ld = (size_t)(nh + 2 * nkv) * HDIM;
    const bf16 *base = qkv + (size_t)b * T_ * ld;
    const int kv_end = T_ < q0 + BM ? T_ : q0 + BM;   // the keys [0, kv_end) of any row
    const int tiles = (kv_end + BN - 1) / BN;

    cp_async_rows<BM, HDIM, F::THREADS>(sq, base + (size_t)h * HDIM, ld, q0, T_);
    load_kv<HDIM, BN, F::THREADS>(skv, base, ld, nh, nkv, g, 0, kv_end);
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
            load_kv<HDIM, BN, F::THREADS>(skv + ((n + 1) & 1) * 2 * BN * S, base, ld, nh, nkv, g,
                                          k0 + BN, kv_end);
            cp_async_commit();
        }
        const bf16 *sk = skv + (n & 1) * 2 * BN * S, *sv = sk + BN * S;
        if (k0 <= wq + 15) {   // some key of the tile precedes some row of the warp
            float s[BN / 8][4];
            zero_frags<BN>(s);
            mma_regs_bt<HDIM, BN>(s, qf, sk, S, lane);
            if (k0 + BN - 1 > wq) mask_causal<BN>(s, q, k0, lane);
            softmax_tile<BN, HDIM>(s, m, l, o, scale_log2);
            mma_cfrag_b<BN, HDIM>(o, s, sv, S, lane);
        }
        cp_async_wait<0>();
        __syncthreads();   // the next tile is visible; this one's buffer is free
    }

    float inv[2];
    finish_rows(inv, lse + ((size_t)b * nh + h) * T_, q, T_, m, l, lane);
    store_strip<HDIM>(out + (size_t)b * T_ * nh * HDIM + (size_t)h * HDIM, (size_t)nh * HDIM, wq,
                      T_, o, inv, sq + 16 * warp * S, lane);
}

// ---- backward ----

template <int HDIM, int BM> struct BwdMma {
    static constexpr int WARPS = 4, THREADS = 128, BN = 64, S = tile_stride<HDIM>(), SP = BM + 8;
    // K, V [BN][S]; two buffers of Q, dO [BM][S]; dSᵀ [BN][SP] bf16; two
    // buffers of lse and D [BM] fp32
    static constexpr size_t smem = (size_t)(2 * BN + 4 * BM) * S * sizeof(bf16) +
                                   (size_t)BN * SP * sizeof(bf16) + (size_t)4 * BM * sizeof(float);
};

// The shared-memory carving of the backward kernel (buffers selected by
// arithmetic: an array of pointers indexed at run time would live in local memory).
template <int HDIM, int BM> struct BwdSmem {
    typedef BwdMma<HDIM, BM> F;
    static constexpr int QT = BM * F::S;   // elements of one Q or dO tile
    bf16 *k, *v, *dst;
    bf16 *qd;   // Q of buffer 0, Q of buffer 1, dO of buffer 0, dO of buffer 1
    float *ld;  // lse of buffer 0 and 1, D of buffer 0 and 1
    __device__ __forceinline__ explicit BwdSmem(unsigned char *p) {
        k = reinterpret_cast<bf16 *>(p);
        v = k + F::BN * F::S;
        qd = v + F::BN * F::S;
        dst = qd + 4 * QT;
        ld = reinterpret_cast<float *>(dst + F::BN * F::SP);
    }
    __device__ __forceinline__ bf16 *q(int buf) const { return qd + buf * QT; }
    __device__ __forceinline__ bf16 *dout(int buf) const { return qd + (2 + buf) * QT; }
    __device__ __forceinline__ float *lse(int buf) const { return ld + buf * BM; }
    __device__ __forceinline__ float *D(int buf) const { return ld + (2 + buf) * BM; }
};

// One query tile of the backward pass: the q head and the first query.
struct QTile {
    int h, i0;
};

// What the backward kernel reads of batch b.
struct BwdInputs {
    const bf16 *qkv, *dout;   // the batch's rows: (T, ld), (T, ldo)
    const float *lse, *D;     // the batch's (nh, T)
    size_t ld, ldo;
    int T, nh;
};

// Q, dO, lse and D of query tile qt into buffer `buf`.
template <int HDIM, int BM>
__device__ __forceinline__ void load_qtile(const BwdSmem<HDIM, BM> &sm, int buf, QTile qt,
                                           const BwdInputs &in) {
    typedef BwdMma<HDIM, BM> F;
    size_t col = (size_t)qt.h * HDIM;
    cp_async_rows<BM, HDIM, F::THREADS>(sm.q(buf), in.qkv + col, in.ld, qt.i0, in.T);
    cp_async_rows<BM, HDIM, F::THREADS>(sm.dout(buf), in.dout + col, in.ldo, qt.i0, in.T);
#pragma unroll
    for (int k = 0; k < (2 * BM + F::THREADS - 1) / F::THREADS; k++) {   // lse, then D
        const int e = threadIdx.x + k * F::THREADS, r = e % BM, i = qt.i0 + r;
        if (e >= 2 * BM) break;
        const bool valid = i < in.T;   // zeros past T: with zero Q and dO rows, P·dO = dS = 0
        const size_t off = (size_t)qt.h * in.T + (valid ? i : 0);
        if (e < BM) cp_async_4(sm.lse(buf) + r, in.lse + off, valid);
        else cp_async_4(sm.D(buf) + r, in.D + off, valid);
    }
}

// Pᵀ = 2^(Sᵀ·scale·log2 e − lse·log2 e) in place of Sᵀ (16 keys × QC queries);
// sl: the chunk's lse; with `masked`, 0 where the query qi0 + column precedes
// the key kr + row (kr: the lane's key of row g).
template <int QC>
__device__ __forceinline__ void bwd_probs(float p[QC / 8][4], const float *sl, float scale,
                                          bool masked, int qi0, int kr, int lane) {
    const int t = lane & 3;
#pragma unroll
    for (int j = 0; j < QC / 8; j++)
#pragma unroll
        for (int e = 0; e < 4; e++) {
            int col = 8 * j + 2 * t + (e & 1);
            float v = exp2f(fmaf(p[j][e], scale * LOG2E, -sl[col] * LOG2E));
            p[j][e] = masked && qi0 + col < kr + 8 * (e >> 1) ? 0.0f : v;
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

// Pᵀ and dSᵀ of the warp's 16 keys (fragment rows g, g + 8: the lane's keys
// kr, kr + 8) and the QC queries [i0 + qc, + QC) (columns); adds to dk, dv
// and writes dSᵀ (scaled) into the warp's rows of sm.dst.
template <int HDIM, int BM, int QC>
__device__ __forceinline__ void bwd_chunk(float dk[HDIM / 8][4], float dv[HDIM / 8][4],
                                          const BwdSmem<HDIM, BM> &sm, int buf, int i0, int qc,
                                          int kr, bool masked, float scale, int warp, int lane) {
    typedef BwdMma<HDIM, BM> F;
    constexpr int S = F::S;
    const bf16 *sq = sm.q(buf) + qc * S, *sdo = sm.dout(buf) + qc * S;
    float p[QC / 8][4];   // Sᵀ = K Qᵀ, then Pᵀ
    zero_frags<QC>(p);
    mma_smem_bt<HDIM, QC>(p, sm.k + 16 * warp * S, S, sq, S, lane);
    bwd_probs<QC>(p, sm.lse(buf) + qc, scale, masked, i0 + qc, kr, lane);
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
// chunks whose queries all precede the warp's keys are zeros.
template <int HDIM, int BM, int QC>
__device__ __forceinline__ void bwd_pair(float dk[HDIM / 8][4], float dv[HDIM / 8][4],
                                         const BwdSmem<HDIM, BM> &sm, int buf, int i0, int wk,
                                         float scale, int warp, int lane) {
    static_assert(BM % QC == 0 && QC % 16 == 0, "whole chunks of 16-query k-steps");
#pragma unroll
    for (int qc = 0; qc < BM; qc += QC) {
        if (i0 + qc + QC - 1 < wk)
            zero_dst<HDIM, BM, QC>(sm, qc, warp, lane);
        else
            bwd_chunk<HDIM, BM, QC>(dk, dv, sm, buf, i0, qc, wk + (lane >> 2), i0 + qc < wk + 15,
                                    scale, warp, lane);
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

template <int HDIM, int BM, int QC>
__global__ void __launch_bounds__(128, 2)
attn_bwd_mma(bf16 *dqkv, float *dq, const bf16 *qkv, const bf16 *dout, const float *lse,
             const float *Dv, int T_, int nh, int nkv, float scale) {
    typedef BwdMma<HDIM, BM> F;
    constexpr int BN = F::BN, S = F::S;
    DYNAMIC_SMEM(smem);
    const BwdSmem<HDIM, BM> sm(smem);
    const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    // grid (nkv · B, key tiles): the key tiles with the most query tiles after
    // them start first, of every head and batch, so the short ones fill the tail
    const int b = blockIdx.x / nkv, g = blockIdx.x % nkv, group = nh / nkv;
    const int k0 = blockIdx.y * BN, wk = k0 + 16 * warp;   // the warp's first key
    const size_t ld = (size_t)(nh + 2 * nkv) * HDIM, ldo = (size_t)nh * HDIM;
    const bf16 *base = qkv + (size_t)b * T_ * ld;
    const BwdInputs in = {base, dout + (size_t)b * T_ * ldo, lse + (size_t)b * nh * T_,
                          Dv + (size_t)b * nh * T_, ld, ldo, T_, nh};
    // the query tiles: for each q head of the group, those from the diagonal on
    const int first = k0 / BM, per_head = (T_ + BM - 1) / BM - first, total = group * per_head;
    auto qtile = [&](int it) {
        return QTile{g * group + it / per_head, (first + it % per_head) * BM};
    };

    cp_async_rows<BN, HDIM, F::THREADS>(sm.k, base + (size_t)(nh + g) * HDIM, ld, k0, T_);
    cp_async_rows<BN, HDIM, F::THREADS>(sm.v, base + (size_t)(nh + nkv + g) * HDIM, ld, k0, T_);
    load_qtile<HDIM, BM>(sm, 0, qtile(0), in);
    cp_async_commit();
    cp_async_wait<0>();
    __syncthreads();
    float dk[HDIM / 8][4], dv[HDIM / 8][4];
    zero_frags<HDIM>(dk);
    zero_frags<HDIM>(dv);

    for (int it = 0; it < total; it++) {
        const QTile qt = qtile(it);
        const int buf = it & 1;
        if (it + 1 < total) {   // the next tile into the other buffer, freed by the last sync
            load_qtile<HDIM, BM>(sm, buf ^ 1, qtile(it + 1), in);
            cp_async_commit();
        }
        bwd_pair<HDIM, BM, QC>(dk, dv, sm, buf, qt.i0, wk, scale, warp, lane);
        __syncthreads();   // dSᵀ complete
        bwd_dq<HDIM, BM>(dq + ((size_t)b * T_ + qt.i0) * ldo + (size_t)qt.h * HDIM, ldo,
                         T_ - qt.i0, sm, warp, lane);
        cp_async_wait<0>();
        __syncthreads();   // the next tile is visible; dSᵀ and this tile's buffer are free
    }

    const float one[2] = {1.0f, 1.0f};   // dSᵀ carried the scale
    bf16 *drow = dqkv + (size_t)b * T_ * ld;
    store_strip<HDIM>(drow + (size_t)(nh + g) * HDIM, ld, wk, T_, dk, one, sm.k + 16 * warp * S,
                      lane);
    store_strip<HDIM>(drow + (size_t)(nh + nkv + g) * HDIM, ld, wk, T_, dv, one,
                      sm.v + 16 * warp * S, lane);
}
