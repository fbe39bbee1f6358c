// Warp-level tensor-core primitives of sm_80+ (PTX ISA): the bf16 MMA
// m16n8k16 with fp32 accumulation, ldmatrix (.x4, plain and .trans) and
// cp.async.  Each is one inline PTX instruction, defined when a CUDA compiler
// builds the file (__CUDACC__); a build of the kernels by a plain C++ compiler
// finds definitions of the same functions in the CUDA headers it uses.
//
// Fragment layouts of mma.m16n8k16 (bf16 inputs, fp32 accumulators), lane =
// 4·g + t (g = lane / 4 the "group", t = lane % 4); a uint32_t holds two bf16,
// the lower-indexed element in the low half:
//   A (16 × 16, row-major, m × k):  a[0] = A[g][2t, 2t+1]      a[1] = A[g+8][2t, 2t+1]
//                                   a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
//   B (16 × 8, k × n):              b[0] = B[2t, 2t+1][g]      b[1] = B[2t+8, 2t+9][g]
//   C, D (16 × 8, fp32):            d[0], d[1] = D[g][2t, 2t+1]   d[2], d[3] = D[g+8][2t, 2t+1]
// So a C fragment of two adjacent n-tiles, rounded to bf16 pairs, is an A
// fragment (the k index running over the 16 columns): FlashAttention's way of
// reusing P = softmax(S) as an operand without a trip through shared memory
// (pack_a_from_c).
//
// ldmatrix.x4 loads four 8 × 8 matrices of 16-bit elements from shared
// memory; lanes 8i .. 8i + 7 give the addresses of the 8 rows (16 bytes each,
// 16-byte aligned) of matrix i, and lane 4·g + t receives in r[i] its
// elements [g][2t, 2t+1] (plain) or [2t, 2t+1][g] (.trans).  The two address
// patterns below give, for a 16 × 16 tile at p (row stride `stride`
// elements), the operands of one k-step:
//   ldm_offset_a:  row lane % 16, column 8·(lane / 16):
//     plain:  the A fragment of a row-major (m × k) tile;
//     .trans: the B fragments of two n-tiles (n 0-7: r[0], r[1]; n 8-15:
//             r[2], r[3]) of a tile stored k-major (row k, column n).
//   ldm_offset_b:  row lane % 8 + 8·(lane / 16), column 8·(lane / 8 % 2):
//     plain:  the B fragments of two n-tiles (r[0..1], r[2..3]) of a tile
//             stored n-major (row n, column k), e.g. K for S = Q Kᵀ;
//     .trans: the A fragment of a tile stored k-major (row k, column m).
#pragma once

#include <stdint.h>
#include <string.h>

#include <cuda_runtime.h>
#include <cuda_bf16.h>

__device__ __forceinline__ int ldm_offset_a(int lane, int stride) {
    return (lane & 15) * stride + (lane >> 4) * 8;
}

__device__ __forceinline__ int ldm_offset_b(int lane, int stride) {
    return ((lane & 7) + (lane >> 4) * 8) * stride + ((lane >> 3) & 1) * 8;
}

// Two floats rounded to a bf16 pair (lo in the low half).
__device__ __forceinline__ uint32_t pack_bf16(float lo, float hi) {
    __nv_bfloat162 v = __floats2bfloat162_rn(lo, hi);
    uint32_t u;
    memcpy(&u, &v, sizeof u);
    return u;
}

// The A fragment of k-step kk from C fragments c[2kk], c[2kk + 1] (columns
// 16kk .. 16kk + 15 of a 16-row strip).
__device__ __forceinline__ void pack_a_from_c(uint32_t a[4], const float c0[4], const float c1[4]) {
    a[0] = pack_bf16(c0[0], c0[1]);
    a[1] = pack_bf16(c0[2], c0[3]);
    a[2] = pack_bf16(c1[0], c1[1]);
    a[3] = pack_bf16(c1[2], c1[3]);
}

// d += a · b (16 × 16 by 16 × 8, fp32 accumulation).
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4],
                                                  const uint32_t b[2]);
// p: this lane's row address (see above), in shared memory.
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p);
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p);
// 16 (4) bytes global → shared, asynchronous (bypassing L1); zeros when !valid
// (src is then not read, but must still be a mapped address).
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid);
__device__ __forceinline__ void cp_async_4(void *dst, const void *src, bool valid);
// Closes the group of this thread's copies issued since the last commit.
__device__ __forceinline__ void cp_async_commit();
// Waits until at most N of this thread's committed groups are in flight; the
// other threads' copies are visible only after a __syncthreads that follows.
template <int N> __device__ __forceinline__ void cp_async_wait();

#ifdef __CUDACC__   // the PTX

__device__ __forceinline__ uint32_t smem_u32(const void *p) {
    return (uint32_t)__cvta_generic_to_shared(p);
}

__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4],
                                                  const uint32_t b[2]) {
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0, %1, %2, %3}, "
        "{%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};\n"
        : "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
}

__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(smem_u32(p)));
}

__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void cp_async_4(void *dst, const void *src, bool valid) {
    asm volatile("cp.async.ca.shared.global [%0], [%1], 4, %2;\n" ::"r"(smem_u32(dst)),
                 "l"(src), "r"(valid ? 4 : 0));
}

__device__ __forceinline__ void cp_async_commit() {
    asm volatile("cp.async.commit_group;\n" ::);
}

template <int N> __device__ __forceinline__ void cp_async_wait() {
    asm volatile("cp.async.wait_group %0;\n" ::"n"(N) : "memory");
}

#endif   // __CUDACC__
