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
//
// Ring attention's blocks (context parallelism, ops.h's AttentionBlock) run
// on both paths (the tensor-core kernels' POS instances): queries of one rank
// against another rank's packed keys and values (kv (B·Tk, 2·nkv·hd)), causal
// on the rows' global positions (device arrays, increasing, so a query sees a
// prefix of the keys and a key a suffix of the queries).  The forward pass
// merges its result into out and lse by the softmax sums; the backward pass
// adds to dq (dqkv's q columns; on tensor cores through the fp32 accumulators
// in the scratch), dk and dv (dkv) in the act type, D in the backend's scratch.
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

// One call's shape as the SIMT kernels see it: queries of Tq rows per
// sequence against keys and values of Tk rows, causal on the rows' positions
// (a key is seen by queries at its position and later).  Plain attention has
// q, k and v in the rows of qkv and positions = row indices; a ring block
// (ops.h's AttentionBlock) has k and v in their own buffer and global positions.
struct AttnShape {
    int Tq, Tk, nh, nkv, hd;
    int ldq;                        // row stride of q and dq: (nh + 2·nkv)·hd
    int ldk, k_col, v_col;          // row stride of k, v, dk, dv; columns of KV head 0's k, v
    const int32_t *q_pos, *k_pos;   // (Tq), (Tk) positions, increasing; NULL: the row index
    float scale;                    // 1/sqrt(hd)
    bool accumulate;                // backward: add to dq, dk, dv instead of writing them
};

__device__ __forceinline__ int q_position(const AttnShape &s, int i) {
    return s.q_pos ? s.q_pos[i] : i;
}
__device__ __forceinline__ int k_position(const AttnShape &s, int j) {
    return s.k_pos ? s.k_pos[j] : j;
}

// How many keys (a prefix: positions increase) a query at position p sees.
__device__ __forceinline__ int keys_seen_by(const AttnShape &s, int p) {
    return s.k_pos ? positions_upto(s.k_pos, s.Tk, p, false) : min_int(p + 1, s.Tk);
}

// The first query that sees a key at position p (Tq when none does).
__device__ __forceinline__ int first_query_seeing(const AttnShape &s, int p) {
    return s.q_pos ? positions_upto(s.q_pos, s.Tq, p, true) : min_int(p, s.Tq);
}

// Element offsets of row i (of sequence b) of query head h in q (or dq) and
// of KV head g's k and v in kv (or dkv), and of head h's out (or dout) row.
__device__ __forceinline__ size_t q_at(const AttnShape &s, int b, int i, int h) {
    return ((size_t)b * s.Tq + i) * s.ldq + (size_t)h * s.hd;
}
__device__ __forceinline__ size_t k_at(const AttnShape &s, int b, int j, int g) {
    return ((size_t)b * s.Tk + j) * s.ldk + s.k_col + (size_t)g * s.hd;
}
__device__ __forceinline__ size_t v_at(const AttnShape &s, int b, int j, int g) {
    return ((size_t)b * s.Tk + j) * s.ldk + s.v_col + (size_t)g * s.hd;
}
__device__ __forceinline__ size_t o_at(const AttnShape &s, int b, int i, int h) {
    return ((size_t)b * s.Tq + i) * s.nh * s.hd + (size_t)h * s.hd;
}
// lse or D (B, nh, Tq) of row i of head h.
__device__ __forceinline__ size_t stat_at(const AttnShape &s, int b, int h, int i) {
    return ((size_t)b * s.nh + h) * s.Tq + i;
}

// A tile of SIMT_TILE key rows [j0, j0 + SIMT_TILE) of KV head g into shared
// memory, k rows ks and v rows vs floats apart; zeros from row `end` on.
template <class T>
__device__ __forceinline__ void load_kv_tile(float *sk, int ks, float *sv, int vs, const T *kv,
                                             const AttnShape &s, int b, int g, int j0, int end) {
    for (int e = threadIdx.x; e < SIMT_TILE * s.hd; e += blockDim.x) {
        int jj = e / s.hd, d = e % s.hd, j = j0 + jj;
        bool in = j < end;
        sk[jj * ks + d] = in ? to_f(kv[k_at(s, b, j, g) + d]) : 0.0f;
        sv[jj * vs + d] = in ? to_f(kv[v_at(s, b, j, g) + d]) : 0.0f;
    }
}

// x (hd, d = lane + 32·k per lane) · c into a head's row of dst: written, or
// added to what is there.
template <class T>
__device__ __forceinline__ void store_head_row(T *row, const float *x, float c, int hd,
                                               bool accumulate) {
    int lane = threadIdx.x & 31;
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) {
        int d = lane + 32 * k;
        if (d < hd) row[d] = from_f<T>(accumulate ? to_f(row[d]) + x[k] * c : x[k] * c);
    }
}

// A query row's result from this call's unnormalised o (the lane's dims), m
// and l (running max and sum of exp(score − m)): written (`first`), or merged
// with the blocks before by their softmax sums.  A row that saw no key (l = 0)
// is left as it was, or on `first` gets out 0 and lse −∞.  Warp-wide.
template <class T>
__device__ __forceinline__ void fwd_finish_row(T *orow, float *lse_at, const float *o, float m,
                                               float l, int hd, bool first) {
    int lane = threadIdx.x & 31;
    const SoftmaxMerge w = softmax_merge(first ? -INFINITY : *lse_at, m, l);
    __syncwarp();   // every lane has read the lse before lane 0 writes it
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) {   // (a row that saw no key: o = 0)
        int d = lane + 32 * k;
        if (d < hd)
            orow[d] = from_f<T>((w.before != 0.0f ? to_f(orow[d]) * w.before : 0.0f) +
                                o[k] * w.mine);
    }
    if (lane == 0) *lse_at = w.lse;
}

// One warp per query row i: lanes score the keys of a 32-key tile, then the
// probabilities are shared to accumulate the output dims each lane owns
// (d = lane + 32·k).  Key tiles no row of the block sees are not loaded; a
// warp skips the tiles its row does not see.
// out (B·Tq, nh·hd), lse (B, nh, Tq); q rows (B·Tq) and kv rows (B·Tk) as in s.
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_fwd_simt(T *out, float *lse, const T *q, const T *kv, AttnShape s, bool first) {
    DYNAMIC_SMEM(smem);
    const int hd = s.hd, ks = hd + 1;             // padded: lanes read different rows
    float *sk = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sv = sk + SIMT_TILE * ks;              // [SIMT_TILE][hd]
    float *sq = sv + SIMT_TILE * hd;              // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, g = h / (s.nh / s.nkv);
    int row0 = blockIdx.x * SIMT_ROWS, i = row0 + warp;
    int rows_end = min_int(s.Tq, row0 + SIMT_ROWS);
    bool active = i < s.Tq;
    int pos_i = active ? q_position(s, i) : -1;
    int kend = keys_seen_by(s, q_position(s, rows_end - 1));   // keys the block's rows see
    for (int d = lane; d < hd; d += 32)
        sq[warp * hd + d] = active ? to_f(q[q_at(s, b, i, h) + d]) : 0.0f;
    float o[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) o[k] = 0.0f;
    float m = -INFINITY, l = 0.0f;
    for (int j0 = 0; j0 < kend; j0 += SIMT_TILE) {
        __syncthreads();
        load_kv_tile(sk, ks, sv, hd, kv, s, b, g, j0, kend);
        __syncthreads();
        if (active && k_position(s, j0) <= pos_i) {   // the same for every lane of the warp
            int j = j0 + lane;
            bool seen = j < kend && k_position(s, j) <= pos_i;
            float sc = -INFINITY;
            if (seen) {
                float acc = 0.0f;
                for (int d = 0; d < hd; d++) acc += sq[warp * hd + d] * sk[lane * ks + d];
                sc = acc * s.scale;
            }
            float m_new = fmaxf(m, warp_max(sc));   // finite: key j0 is seen
            float alpha = expf(m - m_new);
            float p = seen ? expf(sc - m_new) : 0.0f;
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
    if (active)
        fwd_finish_row(out + o_at(s, b, i, h), lse + stat_at(s, b, h, i), o, m, l, hd, first);
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

// dQ of one query row per warp: over the keys it sees, p = exp(scale·q·k − lse),
// dS = p · (dO·v − D), dq += dS · k · scale.  dq rows as q's (s).
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_bwd_dq_simt(T *dq, const T *q, const T *kv, const T *dout, const float *lse,
                 const float *Dv, AttnShape s) {
    DYNAMIC_SMEM(smem);
    const int hd = s.hd, ks = hd + 1;
    float *sk = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sv = sk + SIMT_TILE * ks;              // [SIMT_TILE][hd + 1]
    float *sq = sv + SIMT_TILE * ks;              // [SIMT_ROWS][hd]
    float *sdo = sq + SIMT_ROWS * hd;             // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, h = blockIdx.y, g = h / (s.nh / s.nkv);
    int row0 = blockIdx.x * SIMT_ROWS, i = row0 + warp;
    int rows_end = min_int(s.Tq, row0 + SIMT_ROWS);
    bool active = i < s.Tq;
    int pos_i = active ? q_position(s, i) : -1;
    int kend = keys_seen_by(s, q_position(s, rows_end - 1));
    const T *dorow = dout + o_at(s, b, active ? i : 0, h);
    for (int d = lane; d < hd; d += 32) {
        sq[warp * hd + d] = active ? to_f(q[q_at(s, b, i, h) + d]) : 0.0f;
        sdo[warp * hd + d] = active ? to_f(dorow[d]) : 0.0f;
    }
    float L = active ? lse[stat_at(s, b, h, i)] : 0.0f;
    float Di = active ? Dv[stat_at(s, b, h, i)] : 0.0f;
    float acc[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) acc[k] = 0.0f;
    for (int j0 = 0; j0 < kend; j0 += SIMT_TILE) {
        __syncthreads();
        load_kv_tile(sk, ks, sv, ks, kv, s, b, g, j0, kend);
        __syncthreads();
        if (active && k_position(s, j0) <= pos_i) {   // the same for every lane of the warp
            int j = j0 + lane;
            float ds = 0.0f;
            if (j < kend && k_position(s, j) <= pos_i) {
                float qk = 0.0f, dp = 0.0f;
                for (int d = 0; d < hd; d++) {
                    qk += sq[warp * hd + d] * sk[lane * ks + d];
                    dp += sdo[warp * hd + d] * sv[lane * ks + d];
                }
                float p = expf(qk * s.scale - L);
                ds = p * (dp - Di);
            }
            for (int jj = 0; jj < SIMT_TILE; jj++) {
                float dsj = __shfl_sync(0xffffffffu, ds, jj);
#pragma unroll
                for (int k = 0; k < MAX_HD / 32; k++) {
                    int d = lane + 32 * k;
                    if (d < hd) acc[k] += dsj * sk[jj * ks + d];
                }
            }
        }
    }
    if (active) store_head_row(dq + q_at(s, b, i, h), acc, s.scale, hd, s.accumulate);
}

// A tile of SIMT_TILE query rows [i0, i0 + SIMT_TILE) of head h into shared
// memory: q and dO (rows qs floats apart), lse and D; zeros from row Tq on.
template <class T>
__device__ __forceinline__ void load_q_tile(float *sq, float *sdo, int qs, float *sl, float *sD,
                                            const T *q, const T *dout, const float *lse,
                                            const float *Dv, const AttnShape &s, int b, int h,
                                            int i0) {
    for (int e = threadIdx.x; e < SIMT_TILE * s.hd; e += blockDim.x) {
        int ii = e / s.hd, d = e % s.hd, i = i0 + ii;
        bool in = i < s.Tq;
        sq[ii * qs + d] = in ? to_f(q[q_at(s, b, i, h) + d]) : 0.0f;
        sdo[ii * qs + d] = in ? to_f(dout[o_at(s, b, i, h) + d]) : 0.0f;
    }
    for (int ii = threadIdx.x; ii < SIMT_TILE; ii += blockDim.x) {
        int i = i0 + ii;
        sl[ii] = i < s.Tq ? lse[stat_at(s, b, h, i)] : 0.0f;
        sD[ii] = i < s.Tq ? Dv[stat_at(s, b, h, i)] : 0.0f;
    }
}

// dK and dV of one key row j of kv head g per warp, summed over the group's
// query heads and the queries that see it (lanes take one query each).  The
// query tiles start at the first query that sees the block's first key; a
// warp skips the tiles none of whose queries sees its key.  dkv rows as kv's (s).
template <class T>
__global__ void __launch_bounds__(SIMT_ROWS * 32)
attn_bwd_dkv_simt(T *dkv, const T *q, const T *kv, const T *dout, const float *lse,
                  const float *Dv, AttnShape s) {
    DYNAMIC_SMEM(smem);
    const int hd = s.hd, qs = hd + 1;
    float *sq = reinterpret_cast<float *>(smem);  // [SIMT_TILE][hd + 1]
    float *sdo = sq + SIMT_TILE * qs;             // [SIMT_TILE][hd + 1]
    float *sl = sdo + SIMT_TILE * qs;             // [SIMT_TILE] lse
    float *sD = sl + SIMT_TILE;                   // [SIMT_TILE] D
    float *skj = sD + SIMT_TILE;                  // [SIMT_ROWS][hd]
    float *svj = skj + SIMT_ROWS * hd;            // [SIMT_ROWS][hd]
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    int b = blockIdx.z, g = blockIdx.y, group = s.nh / s.nkv;
    int row0 = blockIdx.x * SIMT_ROWS, j = row0 + warp;
    bool active = j < s.Tk;
    int pos_j = active ? k_position(s, j) : 0;
    int i_begin = first_query_seeing(s, k_position(s, row0));
    for (int d = lane; d < hd; d += 32) {
        skj[warp * hd + d] = active ? to_f(kv[k_at(s, b, j, g) + d]) : 0.0f;
        svj[warp * hd + d] = active ? to_f(kv[v_at(s, b, j, g) + d]) : 0.0f;
    }
    float dk[MAX_HD / 32], dv[MAX_HD / 32];
#pragma unroll
    for (int k = 0; k < MAX_HD / 32; k++) dk[k] = dv[k] = 0.0f;
    for (int h = g * group; h < (g + 1) * group; h++) {
        for (int i0 = i_begin; i0 < s.Tq; i0 += SIMT_TILE) {
            __syncthreads();
            load_q_tile(sq, sdo, qs, sl, sD, q, dout, lse, Dv, s, b, h, i0);
            __syncthreads();
            int tile_last = min_int(i0 + SIMT_TILE, s.Tq) - 1;   // warp-uniform test:
            if (active && q_position(s, tile_last) >= pos_j) {
                int i = i0 + lane;
                float p = 0.0f, ds = 0.0f;
                if (i < s.Tq && q_position(s, i) >= pos_j) {
                    float qk = 0.0f, dp = 0.0f;
                    for (int d = 0; d < hd; d++) {
                        qk += sq[lane * qs + d] * skj[warp * hd + d];
                        dp += sdo[lane * qs + d] * svj[warp * hd + d];
                    }
                    p = expf(qk * s.scale - sl[lane]);
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
        store_head_row(dkv + k_at(s, b, j, g), dk, s.scale, hd, s.accumulate);
        store_head_row(dkv + v_at(s, b, j, g), dv, 1.0f, hd, s.accumulate);
    }
}

// The q columns of dqkv from the fp32 accumulators dq (B·T, nh·hd): written,
// or added to (`accumulate`).
template <class T>
__global__ void attn_dq_store(T *dqkv, const float *dq, size_t rows, int nh, int nkv, int hd,
                              bool accumulate) {
    size_t w = (size_t)nh * hd, n = rows * w, ld = (size_t)(nh + 2 * nkv) * hd;
    for (size_t e = blockIdx.x * (size_t)blockDim.x + threadIdx.x; e < n;
         e += (size_t)gridDim.x * blockDim.x) {
        T *x = dqkv + (e / w) * ld + e % w;
        *x = from_f<T>(accumulate ? to_f(*x) + dq[e] : dq[e]);
    }
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
    // read at every call: the GPU op test sets it for some cases only
    return g_cuda.bf16 && !getenv("LLAMA_ATTENTION_SIMT") && (hd == 64 || hd == 128) &&
           aligned16(a) && aligned16(b) && aligned16(c) && (!d || aligned16(d)) &&
           smem <= g_cuda.prop.sharedMemPerBlockOptin;
}

template <int HDIM> using FwdTiles = FwdMma<HDIM, MmaCfg<HDIM>::FWD_WARPS, MmaCfg<HDIM>::FWD_BN>;
template <int HDIM> using BwdTiles = BwdMma<HDIM, MmaCfg<HDIM>::BWD_BM>;

// The tensor-core forward pass of B sequences: plain attention, or with POS
// a ring block (a.q_pos, a.k_pos set).
template <int HDIM, bool POS> static void attention_forward_tc(const FwdArgs &a, int B) {
    typedef MmaCfg<HDIM> C;
    typedef FwdTiles<HDIM> F;
    cuda_allow_smem(attn_fwd_mma<HDIM, C::FWD_WARPS, C::FWD_BN, POS>, F::smem);
    LAUNCH(dim3(a.nh * B, (a.Tq + F::BM - 1) / F::BM), F::THREADS, F::smem,
           attn_fwd_mma<HDIM, C::FWD_WARPS, C::FWD_BN, POS>)(a);
    KERNEL_CHECK();
}

// The tensor-core kernels' arguments for plain attention over qkv, and for a
// ring block (q in qkv; k, v in kv: ops.h).
static FwdArgs plain_fwd_args(void *out, float *lse, const void *qkv, int T, int nh, int nkv,
                              int hd) {
    const bf16 *x = (const bf16 *)qkv;
    size_t ld = (size_t)(nh + 2 * nkv) * hd;
    return FwdArgs{(bf16 *)out, lse, x, x + (size_t)nh * hd, x + (size_t)(nh + nkv) * hd, ld, ld,
                   T, T, nh, nkv, NULL, NULL, LOG2E / sqrtf((float)hd), false};
}

static FwdArgs block_fwd_args(void *out, float *lse, const void *qkv, const void *kv,
                              const AttentionBlock *a, bool first) {
    const bf16 *k = (const bf16 *)kv;
    FwdArgs f = plain_fwd_args(out, lse, qkv, a->Tq, a->nh, a->nkv, a->hd);
    f.k = k, f.v = k + (size_t)a->nkv * a->hd, f.ldkv = (size_t)2 * a->nkv * a->hd;
    f.Tk = a->Tk, f.q_pos = a->q_pos, f.k_pos = a->k_pos, f.merge = !first;
    return f;
}

static void check_shape(int nh, int nkv, int hd) {
    if (hd > MAX_HD || hd % 2 || nkv <= 0 || nh % nkv)
        fatal("CUDA attention: head dim %d with %d heads and %d KV heads is not supported (even "
              "head dims up to %d, KV heads dividing heads)", hd, nh, nkv, MAX_HD);
}

// Plain causal attention: q, k and v in the rows of qkv, positions the row indices.
static AttnShape plain_shape(int T, int nh, int nkv, int hd) {
    AttnShape s = {};
    s.Tq = s.Tk = T, s.nh = nh, s.nkv = nkv, s.hd = hd;
    s.ldq = s.ldk = (nh + 2 * nkv) * hd;
    s.k_col = nh * hd, s.v_col = (nh + nkv) * hd;
    s.scale = 1.0f / sqrtf((float)hd);
    return s;
}

// A ring block (ops.h): q in qkv, k and v in kv (Tk rows, k heads then v
// heads), global positions; the backward pass adds to the gradients.
static AttnShape block_shape(const AttentionBlock *a) {
    AttnShape s = plain_shape(a->Tq, a->nh, a->nkv, a->hd);
    s.Tk = a->Tk;
    s.ldk = 2 * a->nkv * a->hd, s.k_col = 0, s.v_col = a->nkv * a->hd;
    s.q_pos = a->q_pos, s.k_pos = a->k_pos;
    s.accumulate = true;
    return s;
}

template <class T>
static void attention_forward_simt(T *out, float *lse, const T *q, const T *kv,
                                   const AttnShape &s, int B, bool first) {
    int hd = s.hd;
    size_t smem = ((size_t)SIMT_TILE * (hd + 1) + SIMT_TILE * hd + SIMT_ROWS * hd) * 4;
    cuda_allow_smem(attn_fwd_simt<T>, smem);
    LAUNCH(dim3((s.Tq + SIMT_ROWS - 1) / SIMT_ROWS, s.nh, B), SIMT_ROWS * 32, smem,
           attn_fwd_simt<T>)(out, lse, q, kv, s, first);
    KERNEL_CHECK();
}

// The SIMT path in the backend's precision.
static void forward_simt(void *out, float *lse, const void *q, const void *kv, const AttnShape &s,
                         int B, bool first) {
    if (g_cuda.bf16)
        attention_forward_simt<bf16>((bf16 *)out, lse, (const bf16 *)q, (const bf16 *)kv, s, B,
                                     first);
    else
        attention_forward_simt<float>((float *)out, lse, (const float *)q, (const float *)kv, s,
                                      B, first);
}

void attention_forward(void *out, void *state, const void *qkv, int B, int T, int nh, int nkv,
                       int hd) {
    if (B == 0 || T == 0) return;
    check_shape(nh, nkv, hd);
    if (attention_cudnn_forward(out, state, qkv, B, T, nh, nkv, hd)) return;
    float *lse = (float *)state;
    if (hd == 64 && use_tensor_cores(hd, FwdTiles<64>::smem, out, qkv, state, NULL))
        attention_forward_tc<64, false>(plain_fwd_args(out, lse, qkv, T, nh, nkv, hd), B);
    else if (hd == 128 && use_tensor_cores(hd, FwdTiles<128>::smem, out, qkv, state, NULL))
        attention_forward_tc<128, false>(plain_fwd_args(out, lse, qkv, T, nh, nkv, hd), B);
    else
        forward_simt(out, lse, qkv, qkv, plain_shape(T, nh, nkv, hd), B, true);
}

void attention_block_forward(void *out, float *lse, const void *qkv, const void *kv,
                             const AttentionBlock *a, bool first) {
    if (a->B == 0 || a->Tq == 0) return;
    check_shape(a->nh, a->nkv, a->hd);
    const int hd = a->hd;
    if (hd == 64 && use_tensor_cores(hd, FwdTiles<64>::smem, out, qkv, kv, NULL))
        attention_forward_tc<64, true>(block_fwd_args(out, lse, qkv, kv, a, first), a->B);
    else if (hd == 128 && use_tensor_cores(hd, FwdTiles<128>::smem, out, qkv, kv, NULL))
        attention_forward_tc<128, true>(block_fwd_args(out, lse, qkv, kv, a, first), a->B);
    else
        forward_simt(out, lse, qkv, kv, block_shape(a), a->B, first);
}

// D (B, nh, T) = rowsum(dO ∘ O) of dout and out (B·T, nh·hd).
static void rowsum_dout_out(float *Dv, const void *dout, const void *out, int B, int T, int nh,
                            int hd) {
    size_t rows = (size_t)B * T * nh;
    if (g_cuda.bf16)
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<bf16>)(Dv, (const bf16 *)dout,
                                                              (const bf16 *)out, T, nh, hd, rows);
    else
        LAUNCH(grid_for(rows, 8), 256, 0, attn_bwd_dot<float>)(Dv, (const float *)dout,
                                                               (const float *)out, T, nh, hd, rows);
    KERNEL_CHECK();
}

// dq into dq's rows (as q's), dk and dv into dkv's rows (as kv's): written, or
// added (s.accumulate).
template <class T>
static void attention_backward_simt(T *dq, T *dkv, const float *Dv, const T *dout, const T *q,
                                    const T *kv, const float *lse, const AttnShape &s, int B) {
    int hd = s.hd;
    size_t smem_q = ((size_t)2 * SIMT_TILE * (hd + 1) + 2 * SIMT_ROWS * hd) * 4;
    size_t smem_kv = ((size_t)2 * SIMT_TILE * (hd + 1) + 2 * SIMT_TILE + 2 * SIMT_ROWS * hd) * 4;
    cuda_allow_smem(attn_bwd_dq_simt<T>, smem_q);
    cuda_allow_smem(attn_bwd_dkv_simt<T>, smem_kv);
    LAUNCH(dim3((s.Tq + SIMT_ROWS - 1) / SIMT_ROWS, s.nh, B), SIMT_ROWS * 32, smem_q,
           attn_bwd_dq_simt<T>)(dq, q, kv, dout, lse, Dv, s);
    KERNEL_CHECK();
    LAUNCH(dim3((s.Tk + SIMT_ROWS - 1) / SIMT_ROWS, s.nkv, B), SIMT_ROWS * 32, smem_kv,
           attn_bwd_dkv_simt<T>)(dkv, q, kv, dout, lse, Dv, s);
    KERNEL_CHECK();
}

// The SIMT path in the backend's precision.
static void backward_simt(void *dq, void *dkv, const float *Dv, const void *dout, const void *q,
                          const void *kv, const float *lse, const AttnShape &s, int B) {
    if (g_cuda.bf16)
        attention_backward_simt<bf16>((bf16 *)dq, (bf16 *)dkv, Dv, (const bf16 *)dout,
                                      (const bf16 *)q, (const bf16 *)kv, lse, s, B);
    else
        attention_backward_simt<float>((float *)dq, (float *)dkv, Dv, (const float *)dout,
                                       (const float *)q, (const float *)kv, lse, s, B);
}

// The tensor-core backward pass of B sequences: dk and dv as the args say
// (plain: written; POS, a ring block: added to), dq through the fp32
// accumulators a.dq into dqkv's q columns (written, or with POS added to).
template <int HDIM, bool POS>
static void attention_backward_tc(const BwdArgs &a, void *dqkv, int B) {
    typedef MmaCfg<HDIM> C;
    typedef BwdTiles<HDIM> F;
    const size_t smem = POS ? F::smem_pos : F::smem, rows = (size_t)B * a.Tq;
    CUDA_CHECK(cudaMemsetAsync(a.dq, 0, rows * a.nh * HDIM * sizeof(float), g_cuda.stream));
    cuda_allow_smem(attn_bwd_mma<HDIM, C::BWD_BM, C::BWD_QC, POS>, smem);
    LAUNCH(dim3(a.nkv * B, (a.Tk + F::BN - 1) / F::BN), F::THREADS, smem,
           attn_bwd_mma<HDIM, C::BWD_BM, C::BWD_QC, POS>)(a);
    KERNEL_CHECK();
    LAUNCH(grid_for(rows * a.nh * HDIM, 256, 16384), 256, 0, attn_dq_store<bf16>)(
        (bf16 *)dqkv, a.dq, rows, a.nh, a.nkv, HDIM, POS);
    KERNEL_CHECK();
}

// The backward kernels' arguments for plain attention over qkv (dk and dv
// into dqkv's columns), and for a ring block (k, v in kv; dk, dv in dkv).
static BwdArgs plain_bwd_args(void *dqkv, float *dq, const float *Dv, const void *dout,
                              const void *qkv, const float *lse, int T, int nh, int nkv, int hd) {
    const bf16 *x = (const bf16 *)qkv;
    bf16 *dx = (bf16 *)dqkv;
    size_t ld = (size_t)(nh + 2 * nkv) * hd, k_col = (size_t)nh * hd, v_col = k_col + nkv * hd;
    return BwdArgs{dx + k_col, dx + v_col, dq, x, x + k_col, x + v_col, (const bf16 *)dout,
                   lse, Dv, ld, ld, T, T, nh, nkv, NULL, NULL, 1.0f / sqrtf((float)hd)};
}

static BwdArgs block_bwd_args(void *dkv, float *dq, const float *Dv, const void *dout,
                              const void *qkv, const void *kv, const float *lse,
                              const AttentionBlock *a) {
    const bf16 *k = (const bf16 *)kv;
    bf16 *dk = (bf16 *)dkv;
    size_t v_col = (size_t)a->nkv * a->hd, ldq = (size_t)(a->nh + 2 * a->nkv) * a->hd;
    return BwdArgs{dk, dk + v_col, dq, (const bf16 *)qkv, k, k + v_col, (const bf16 *)dout,
                   lse, Dv, ldq, 2 * v_col, a->Tq, a->Tk, a->nh, a->nkv, a->q_pos, a->k_pos,
                   1.0f / sqrtf((float)a->hd)};
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
    rowsum_dout_out(Dv, dout, out, B, T, nh, hd);
    if (hd == 64 && use_tensor_cores(hd, BwdTiles<64>::smem, dqkv, dout, qkv, out))
        attention_backward_tc<64, false>(
            plain_bwd_args(dqkv, dq, Dv, dout, qkv, lse, T, nh, nkv, hd), dqkv, B);
    else if (hd == 128 && use_tensor_cores(hd, BwdTiles<128>::smem, dqkv, dout, qkv, out))
        attention_backward_tc<128, false>(
            plain_bwd_args(dqkv, dq, Dv, dout, qkv, lse, T, nh, nkv, hd), dqkv, B);
    else
        backward_simt(dqkv, dqkv, Dv, dout, qkv, qkv, lse, plain_shape(T, nh, nkv, hd), B);
}

// A block's backward pass: D (B, nh, Tq) in the backend's scratch; the
// gradients added to dqkv's q columns and to dkv.
void attention_block_backward(void *dqkv, void *dkv, void *work, const void *dout,
                              const void *qkv, const void *kv, const void *out, const float *lse,
                              const AttentionBlock *a) {
    if (a->B == 0 || a->Tq == 0 || a->Tk == 0) return;
    check_shape(a->nh, a->nkv, a->hd);
    (void)work;
    const int hd = a->hd;
    const size_t smem = hd == 64 ? BwdTiles<64>::smem_pos : BwdTiles<128>::smem_pos;
    const bool tc = (hd == 64 || hd == 128) && aligned16(dout) &&
                    use_tensor_cores(hd, smem, dqkv, dkv, qkv, kv);
    // D, after the tensor cores' dq accumulators
    const size_t dq_elems = tc ? (size_t)a->B * a->Tq * a->nh * hd : 0;
    float *dq = (float *)cuda_scratch((dq_elems + (size_t)a->B * a->nh * a->Tq) * sizeof(float));
    float *Dv = dq + dq_elems;
    rowsum_dout_out(Dv, dout, out, a->B, a->Tq, a->nh, hd);
    if (!tc)
        backward_simt(dqkv, dkv, Dv, dout, qkv, kv, lse, block_shape(a), a->B);
    else if (hd == 64)
        attention_backward_tc<64, true>(block_bwd_args(dkv, dq, Dv, dout, qkv, kv, lse, a), dqkv,
                                        a->B);
    else
        attention_backward_tc<128, true>(block_bwd_args(dkv, dq, Dv, dout, qkv, kv, lse, a),
                                         dqkv, a->B);
}
