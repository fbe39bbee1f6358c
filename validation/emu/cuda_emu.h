// A CPU emulator of the CUDA subset the backend's kernels use, so that
// cuda/*.cu compiled by the host compiler runs its real kernel code without a
// GPU: validation/gpu/test_gpu_ops then checks every op against the CPU
// backend on any machine.  The emulator build puts validation/emu/include
// first on the include path; its <cuda_runtime.h> brings this header, so the
// plain CUDA sources compile unchanged (cuda/ never names the emulator).
//
// Each block runs alone; each of its threads is a fiber (ucontext) that runs
// until it reaches __syncthreads, a warp collective (shuffle, __syncwarp,
// mma, ldmatrix) or its end.  A barrier is released when every thread of the
// block (or warp) has arrived; a barrier some thread can never reach
// (divergence, or threads that returned early) is reported and aborts.  __shared__
// variables are static (one block at a time); dynamic shared memory and
// cudaMalloc memory start as NaN bytes, so reads of unwritten data show up.
// The PTX primitives of cuda/mma.cuh (mma.m16n8k16, ldmatrix, cp.async)
// exchange the lanes' registers in the exact PTX fragment layouts; ldmatrix
// and cp.async check alignment and that their shared addresses lie in the
// block's dynamic shared memory, and cp.async lands its bytes only at the
// issuing thread's wait.
//
// Kernels, copies and the emulated cuBLASLt (cublaslt_emu.cc) run when they
// are queued; the emulated NCCL (nccl_emu.cc, MPI on host memory) starts its
// operations when they are queued and completes them later: before anything
// that follows on their stream, or on a stream that waits for an event
// recorded after them, runs, and at a synchronisation (emu_stream_enqueue and
// emu_stream_drain below).
//
// What this does not model: real concurrency (races between threads that the
// fiber order happens to serialise), memory ordering, timing, and cuBLASLt's
// and NCCL's own algorithms (the products are plain loops, the collectives MPI's).
#pragma once

#include <cuda_runtime_api.h>
#include <cuda_bf16.h>
#include <vector_functions.h>
#include <vector_types.h>

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <functional>
#include <tuple>

#undef __global__
#define __global__
#undef __device__
#define __device__
#undef __host__
#define __host__
#undef __shared__
#define __shared__ static
#define __launch_bounds__(...)

extern uint3 threadIdx, blockIdx;
extern dim3 blockDim, gridDim;

void __syncthreads();
void __syncwarp(unsigned mask = 0xffffffffu);

// A warp collective: every lane of the calling warp arrives before any leaves.
void emu_warp_barrier(unsigned mask);

// Exchange of one 8-byte value per lane; returns lane src's value.
uint64_t emu_shuffle(unsigned mask, uint64_t value, int src_of_lane_xor, bool xor_mode);

template <class T> T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    (void)width;
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    u = emu_shuffle(mask, u, lane_mask, true);
    T r;
    memcpy(&r, &u, sizeof r);
    return r;
}

template <class T> T __shfl_sync(unsigned mask, T v, int src_lane, int width = 32) {
    static_assert(sizeof(T) <= 8, "shuffle of more than 8 bytes");
    (void)width;
    uint64_t u = 0;
    memcpy(&u, &v, sizeof v);
    u = emu_shuffle(mask, u, src_lane, false);
    T r;
    memcpy(&r, &u, sizeof r);
    return r;
}

static inline float atomicAdd(float *p, float v) {
    float old = *p;   // fibers never run at the same time
    *p = old + v;
    return old;
}

// ---- launches: the hooks the CUDA sources leave to their headers ----

unsigned char *emu_dynamic_smem();

// The kernel's dynamic shared memory (CUDA: extern __shared__ unsigned char name[]).
#define DYNAMIC_SMEM(name) unsigned char *name = emu_dynamic_smem()

// KERNEL_LAUNCH(grid, block, smem, stream, kernel)(args...): CUDA's
// kernel<<<grid, block, smem, stream>>>(args...).
#define KERNEL_LAUNCH(grid, block, smem, stream, ...) \
    emu_launch((grid), (block), (smem), (stream), __VA_ARGS__)

// Runs body once per thread of every block of grid, block after block, once
// the stream's earlier work is complete.
void emu_run(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
             const std::function<void()> &body);

template <class... P> struct EmuLaunch {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    cudaStream_t stream;
    template <class... A> void operator()(A... args) const {
        std::tuple<P...> params(args...);   // the kernel's parameter types
        void (*k)(P...) = kernel;
        emu_run(grid, block, smem, stream, [&] { std::apply(k, params); });
    }
};

template <class... P>
EmuLaunch<P...> emu_launch(dim3 grid, dim3 block, size_t smem, cudaStream_t stream,
                           void (*kernel)(P...)) {
    return EmuLaunch<P...>{kernel, grid, block, smem, stream};
}

// The runtime's template overloads (as in CUDA's <cuda_runtime.h>).
template <class T>
cudaError_t cudaFuncSetAttribute(T *entry, enum cudaFuncAttribute attr, int value) {
    return ::cudaFuncSetAttribute((const void *)entry, attr, value);
}

template <class T> cudaError_t cudaMalloc(T **p, size_t bytes) {
    return ::cudaMalloc((void **)(void *)p, bytes);
}

// ---- tensor-core primitives: warp collectives with the PTX ISA's per-lane
// fragment layouts (cuda/mma.cuh documents them) ----

// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32: d += a · b.
void emu_mma_m16n8k16_bf16(float d[4], const uint32_t a[4], const uint32_t b[2]);
// ldmatrix.sync.aligned.m8n8.x4[.trans].shared.b16; p: this lane's row
// address, 16-byte aligned, in the dynamic shared memory.
void emu_ldmatrix_x4(uint32_t r[4], const void *p, bool trans);
// cp.async of `bytes` (4 or 16) global → shared, zeros when !valid.  The
// source is read now; the bytes land in shared memory when the issuing
// thread's cp_async_wait retires their group (so a read before the wait, or
// by another thread before the wait and a __syncthreads, sees the old data).
// A thread that ends with copies not waited for is reported.
void emu_cp_async(void *dst, const void *src, size_t bytes, bool valid);
void emu_cp_async_commit();
void emu_cp_async_wait(int n);   // all but the n most recent committed groups

// The functions cuda/mma.cuh declares and defines with inline PTX for the
// device only.
__device__ __forceinline__ void mma_m16n8k16_bf16(float d[4], const uint32_t a[4],
                                                  const uint32_t b[2]) {
    emu_mma_m16n8k16_bf16(d, a, b);
}
__device__ __forceinline__ void ldmatrix_x4(uint32_t r[4], const void *p) {
    emu_ldmatrix_x4(r, p, false);
}
__device__ __forceinline__ void ldmatrix_x4_trans(uint32_t r[4], const void *p) {
    emu_ldmatrix_x4(r, p, true);
}
__device__ __forceinline__ void cp_async_16(void *dst, const void *src, bool valid) {
    emu_cp_async(dst, src, 16, valid);
}
__device__ __forceinline__ void cp_async_4(void *dst, const void *src, bool valid) {
    emu_cp_async(dst, src, 4, valid);
}
__device__ __forceinline__ void cp_async_commit() { emu_cp_async_commit(); }
template <int N> __device__ __forceinline__ void cp_async_wait() { emu_cp_async_wait(N); }

// ---- asynchronous work on streams (the emulated libraries) ----

// Completes, in order, the work queued on `stream` (0: the default stream)
// and the work it waits for (cudaStreamWaitEvent).  Call it before starting
// anything on the stream: kernels, copies and products do.
void emu_stream_drain(cudaStream_t stream);

// Queues work already started (an MPI request) on `stream`: `complete`
// finishes it (waits, writes the results).  It is called once: when the
// stream is drained or synchronised, when an event recorded after the work is
// synchronised, or when a stream that waits for such an event is drained.
void emu_stream_enqueue(cudaStream_t stream, std::function<void()> complete);
