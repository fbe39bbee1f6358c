// A CPU emulator of the CUDA subset the backend's kernels use, so that
// cuda/*.cu compiled by the host compiler (-DLLAMA_CUDA_EMU) runs its real
// kernel code without a GPU: validation/gpu/test_gpu_ops then checks every op
// against the CPU backend on any machine.
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
// What this does not model: real concurrency (races between threads that the
// fiber order happens to serialise), memory ordering, timing, cuBLASLt and
// NCCL (matmul.cu emulates its products; the emulator has no device comm).
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

unsigned char *emu_dynamic_smem();

// ---- tensor-core primitives (cuda/mma.cuh): warp collectives with the PTX
// ISA's per-lane fragment layouts ----

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

// Runs body once per thread of every block of grid, block after block.
void emu_run(dim3 grid, dim3 block, size_t smem, const std::function<void()> &body);

template <class... P> struct EmuLaunch {
    void (*kernel)(P...);
    dim3 grid, block;
    size_t smem;
    template <class... A> void operator()(A... args) const {
        std::tuple<P...> params(args...);   // the kernel's parameter types
        void (*k)(P...) = kernel;
        emu_run(grid, block, smem, [&] { std::apply(k, params); });
    }
};

template <class... P>
EmuLaunch<P...> emu_launch(dim3 grid, dim3 block, size_t smem, void (*kernel)(P...)) {
    return EmuLaunch<P...>{kernel, grid, block, smem};
}
