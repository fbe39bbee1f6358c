// The CUDA backend's host-side context, shared by its translation units: the
// device, the compute stream, the precision, memory accounting and scratch,
// error checks, and the entry points between files that host code calls.
// Host C++ only (no device code), so files that need no kernels (cuDNN's
// attention) build with the host compiler; common.cuh adds the device side.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

extern "C" {
#include "backend/ops.h"
#include "core/util.h"
}

// ---- the device context ----

struct CudaContext {
    int device;
    cudaDeviceProp prop;
    cudaStream_t stream;        // every op, matmul and device collective runs on it
    bool bf16;                  // act buffers hold bf16 (else fp32)
    size_t live_bytes, peak_bytes;   // our allocations now and at most
    void *scratch;              // grown on demand: per-block partial results
    size_t scratch_bytes;
    double *host_result;        // pinned: results of reductions read by the host
};
extern CudaContext g_cuda;

// Device memory counted in the high-water mark (not zeroed); fatal with the
// size and the free memory when the device has too little.
void *cuda_device_alloc(size_t bytes);

// A device buffer of at least `bytes` for temporary results of one op
// (ordered on the stream, so one op's scratch is free again for the next).
void *cuda_scratch(size_t bytes);

// ---- error checks: every CUDA call reports the call, file:line and error ----

[[noreturn]] void cuda_fail(const char *what, const char *call, const char *file, int line,
                            const char *message);

#define CUDA_CHECK(call)                                                               \
    do {                                                                               \
        cudaError_t err_ = (call);                                                     \
        if (err_ != cudaSuccess)                                                       \
            cuda_fail("CUDA", #call, __FILE__, __LINE__, cudaGetErrorString(err_));    \
    } while (0)

// attention_cudnn.cu: cuDNN's flash attention when it is selected (--attention)
// and takes the shape; false leaves the call to the own kernels (attention.cu).
// The choice is made once per shape, for the forward and the backward pass
// together, so the state one writes is the state the other reads.
bool attention_cudnn_forward(void *out, void *state, const void *qkv, int B, int T, int nh,
                             int nkv, int hd);
bool attention_cudnn_backward(void *dqkv, const void *dout, const void *qkv, const void *out,
                              const void *state, int B, int T, int nh, int nkv, int hd);
// Selects the implementation: "cudnn" or "own" ("" = cudnn when built in);
// false with a reason when cudnn is asked for and not built in.
bool attention_select(Attention requested, char *err, int err_len);
const char *attention_selected(void);   // "cudnn" or "own"
