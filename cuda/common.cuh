// Shared by the CUDA backend's translation units: the device context (stream,
// precision, memory accounting), error checks, the launch macro, element
// types with 8-wide vector loads, and warp/block reductions.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>
#include <cuda_bf16.h>

extern "C" {
#include "backend/elementwise.h"
}
#include "context.h"

typedef __nv_bfloat16 bf16;

// After every kernel launch: a bad configuration or a missing kernel image.
#define KERNEL_CHECK() CUDA_CHECK(cudaGetLastError())

// LAUNCH(grid, block, shared_bytes, kernel<...>)(args...) on the compute stream.
// KERNEL_LAUNCH and DYNAMIC_SMEM are CUDA's syntax unless the CUDA headers in
// use define them first (a build of these kernels by a plain C++ compiler).
#ifndef KERNEL_LAUNCH
#define KERNEL_LAUNCH(grid, block, smem, stream, ...) \
    __VA_ARGS__<<<(grid), (block), (smem), (stream)>>>
#endif
#define LAUNCH(grid, block, smem, ...) \
    KERNEL_LAUNCH((grid), (block), (smem), g_cuda.stream, __VA_ARGS__)

// Dynamic shared memory of a kernel (aligned for 16-byte vectors, ldmatrix and cp.async).
#ifndef DYNAMIC_SMEM
#define DYNAMIC_SMEM(name) extern __shared__ __align__(128) unsigned char name[]
#endif

// Allows `bytes` of dynamic shared memory for `kernel` (needed above 48 KiB);
// fatal when the device has less.
template <class K> void cuda_allow_smem(K kernel, size_t bytes) {
    if (bytes > g_cuda.prop.sharedMemPerBlockOptin)
        fatal("CUDA: a kernel needs %zu bytes of shared memory per block, more than the %zu "
              "this GPU (%s) allows", bytes, (size_t)g_cuda.prop.sharedMemPerBlockOptin,
              g_cuda.prop.name);
    if (bytes > 48 * 1024)
        CUDA_CHECK(cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                        (int)bytes));
}

// Blocks for n items at `per_block` items each, at most `cap`.
static inline unsigned grid_for(size_t n, size_t per_block, size_t cap = 65535) {
    size_t g = (n + per_block - 1) / per_block;
    if (g < 1) g = 1;
    return (unsigned)(g < cap ? g : cap);
}

static inline bool aligned16(const void *p) { return ((uintptr_t)p & 15) == 0; }

// ---- element types: fp32 or bf16 in memory, fp32 in registers ----

__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(bf16 v) { return __bfloat162float(v); }
template <class T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ bf16 from_f<bf16>(float v) { return __float2bfloat16_rn(v); }

// V consecutive elements (V = 1, or 8 from a 16-byte aligned address) to and
// from fp32 registers.
template <int V> struct Vec {
    __device__ __forceinline__ static void load(const float *p, float *out) {
#pragma unroll
        for (int k = 0; k < V; k++) out[k] = p[k];
    }
    __device__ __forceinline__ static void load(const bf16 *p, float *out) {
#pragma unroll
        for (int k = 0; k < V; k++) out[k] = __bfloat162float(p[k]);
    }
    __device__ __forceinline__ static void store(float *p, const float *in) {
#pragma unroll
        for (int k = 0; k < V; k++) p[k] = in[k];
    }
    __device__ __forceinline__ static void store(bf16 *p, const float *in) {
#pragma unroll
        for (int k = 0; k < V; k++) p[k] = __float2bfloat16_rn(in[k]);
    }
};

template <> struct Vec<8> {
    __device__ __forceinline__ static void load(const float *p, float *out) {
        float4 a = reinterpret_cast<const float4 *>(p)[0], b = reinterpret_cast<const float4 *>(p)[1];
        out[0] = a.x, out[1] = a.y, out[2] = a.z, out[3] = a.w;
        out[4] = b.x, out[5] = b.y, out[6] = b.z, out[7] = b.w;
    }
    __device__ __forceinline__ static void load(const bf16 *p, float *out) {
        uint4 u = *reinterpret_cast<const uint4 *>(p);
        const __nv_bfloat162 *h = reinterpret_cast<const __nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) {
            float2 f = __bfloat1622float2(h[k]);
            out[2 * k] = f.x, out[2 * k + 1] = f.y;
        }
    }
    __device__ __forceinline__ static void store(float *p, const float *in) {
        reinterpret_cast<float4 *>(p)[0] = make_float4(in[0], in[1], in[2], in[3]);
        reinterpret_cast<float4 *>(p)[1] = make_float4(in[4], in[5], in[6], in[7]);
    }
    __device__ __forceinline__ static void store(bf16 *p, const float *in) {
        uint4 u;
        __nv_bfloat162 *h = reinterpret_cast<__nv_bfloat162 *>(&u);
#pragma unroll
        for (int k = 0; k < 4; k++) h[k] = __floats2bfloat162_rn(in[2 * k], in[2 * k + 1]);
        *reinterpret_cast<uint4 *>(p) = u;
    }
};

// ---- reductions (blockDim.x a multiple of 32, at most 1024) ----

__device__ __forceinline__ float warp_sum(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ double warp_sum(double v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// The block's sum (or max), returned to every thread; the order of the
// additions is fixed, so results are reproducible.  Every thread of the
// block must call it.
template <class F> __device__ __forceinline__ F block_sum(F v) {
    __shared__ F partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads();   // the previous call's readers are done with `partial`
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : (F)0;
    return warp_sum(v);
}

__device__ __forceinline__ float block_max(float v) {
    __shared__ float partial[32];
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) partial[warp] = v;
    __syncthreads();
    v = lane < warps ? partial[lane] : -INFINITY;
    return warp_max(v);
}

// ---- entry points between the backend's files (device pointers) ----

// matmul.cu
void matmul_init(void);
void matmul_linear_forward(void *y, const void *x, const void *w, int N, int in, int out);
void matmul_linear_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                            int N, int in, int out);

// attention.cu
size_t attention_state_bytes(int B, int T, int nh);
size_t attention_work_bytes(int B, int T, int nh, int hd);
void attention_forward(void *out, void *state, const void *qkv, int B, int T, int nh, int nkv,
                       int hd);
void attention_backward(void *dqkv, void *work, const void *dout, const void *qkv,
                        const void *out, const void *state, int B, int T, int nh, int nkv,
                        int hd);
void attention_block_forward(void *out, float *lse, const void *qkv, const void *kv,
                             const AttentionBlock *a, bool first);
void attention_block_backward(void *dqkv, void *dkv, void *work, const void *dout,
                              const void *qkv, const void *kv, const void *out, const float *lse,
                              const AttentionBlock *a);

