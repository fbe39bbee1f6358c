// A CPU emulator of the CUDA subset the backend's kernels use, so that
// cuda/*.cu compiled by the host compiler (-DLLAMA_CUDA_EMU) runs its real
// kernel code without a GPU: validation/gpu/test_gpu_ops then checks every op
// against the CPU backend on any machine.
//
// Each block runs alone; each of its threads is a fiber (ucontext) that runs
// until it reaches __syncthreads, a warp collective (shuffle, __syncwarp,
// WMMA) or its end.  A barrier is released when every thread of the block
// (or warp) has arrived; a barrier some thread can never reach (divergence,
// or threads that returned early) is reported and aborts.  __shared__
// variables are static (one block at a time); dynamic shared memory and
// cudaMalloc memory start as NaN bytes, so reads of unwritten data show up.
// WMMA fragments hold the whole tile in every lane; loads and stores check
// the documented alignment (32 bytes) and leading-dimension (16 bytes) rules.
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
#include <type_traits>

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

// ---- nvcuda::wmma ----

void emu_wmma_check(const void *p, unsigned ldm, size_t element_bytes);

namespace nvcuda {
namespace wmma {

struct matrix_a {};
struct matrix_b {};
struct accumulator {};
struct row_major {};
struct col_major {};
enum layout_t { mem_row_major, mem_col_major };

template <class Use, int M, int N, int K> struct frag_shape;
template <int M, int N, int K> struct frag_shape<matrix_a, M, N, K> {
    static const int rows = M, cols = K;
};
template <int M, int N, int K> struct frag_shape<matrix_b, M, N, K> {
    static const int rows = K, cols = N;
};
template <int M, int N, int K> struct frag_shape<accumulator, M, N, K> {
    static const int rows = M, cols = N;
};

// Every lane holds the whole tile: element (r, c) at v[r·cols + c].
template <class Use, int M, int N, int K, class T, class Layout = void> struct fragment {
    static const int rows = frag_shape<Use, M, N, K>::rows, cols = frag_shape<Use, M, N, K>::cols;
    static const int num_elements = rows * cols;
    float v[rows * cols];
};

static inline float emu_get(const float *p, size_t i) { return p[i]; }
static inline float emu_get(const __nv_bfloat16 *p, size_t i) { return __bfloat162float(p[i]); }

template <class Use, int M, int N, int K, class T, class Layout>
void load_matrix_sync(fragment<Use, M, N, K, T, Layout> &f, const T *p, unsigned ldm) {
    emu_warp_barrier(0xffffffffu);
    emu_wmma_check(p, ldm, sizeof(T));
    typedef fragment<Use, M, N, K, T, Layout> F;
    for (int r = 0; r < F::rows; r++)
        for (int c = 0; c < F::cols; c++) {
            size_t i = std::is_same<Layout, row_major>::value ? (size_t)r * ldm + c
                                                              : (size_t)c * ldm + r;
            f.v[r * F::cols + c] = emu_get(p, i);
        }
    emu_warp_barrier(0xffffffffu);
}

template <int M, int N, int K>
void load_matrix_sync(fragment<accumulator, M, N, K, float> &f, const float *p, unsigned ldm,
                      layout_t layout) {
    emu_warp_barrier(0xffffffffu);
    emu_wmma_check(p, ldm, sizeof(float));
    for (int r = 0; r < M; r++)
        for (int c = 0; c < N; c++)
            f.v[r * N + c] = p[layout == mem_row_major ? (size_t)r * ldm + c : (size_t)c * ldm + r];
    emu_warp_barrier(0xffffffffu);
}

template <int M, int N, int K>
void store_matrix_sync(float *p, const fragment<accumulator, M, N, K, float> &f, unsigned ldm,
                       layout_t layout) {
    emu_warp_barrier(0xffffffffu);
    emu_wmma_check(p, ldm, sizeof(float));
    if ((threadIdx.x & 31) == 0)
        for (int r = 0; r < M; r++)
            for (int c = 0; c < N; c++)
                p[layout == mem_row_major ? (size_t)r * ldm + c : (size_t)c * ldm + r] =
                    f.v[r * N + c];
    emu_warp_barrier(0xffffffffu);
}

template <class Use, int M, int N, int K, class T, class Layout>
void fill_fragment(fragment<Use, M, N, K, T, Layout> &f, float value) {
    emu_warp_barrier(0xffffffffu);
    for (int i = 0; i < fragment<Use, M, N, K, T, Layout>::num_elements; i++) f.v[i] = value;
}

// d = a · b + c, fp32 accumulation of exact bf16 products.
template <int M, int N, int K, class T, class LA, class LB>
void mma_sync(fragment<accumulator, M, N, K, float> &d, const fragment<matrix_a, M, N, K, T, LA> &a,
              const fragment<matrix_b, M, N, K, T, LB> &b,
              const fragment<accumulator, M, N, K, float> &c) {
    emu_warp_barrier(0xffffffffu);
    float out[M * N];
    for (int i = 0; i < M; i++)
        for (int j = 0; j < N; j++) {
            float s = c.v[i * N + j];
            for (int k = 0; k < K; k++) s += a.v[i * K + k] * b.v[k * N + j];
            out[i * N + j] = s;
        }
    memcpy(d.v, out, sizeof out);
}

}   // namespace wmma
}   // namespace nvcuda
