// comm.h's NCCL device communication, which lives in the CUDA backend's
// library (cuda/comm_nccl.cu in libllama-cuda.so, loaded on first use by
// src/backend/cuda_library.c): forwarded to it.  Left out of the emulated
// backend's programs, which link cuda/ directly.
#include "comm/comm.h"

#ifdef LLAMA_CUDA
#include "backend/ops.h"

const DeviceCommOps *comm_nccl_device_ops(void) {
    const DeviceCommOps *(*library_ops)(void);
    *(void **)&library_ops = cuda_library_function("comm_nccl_device_ops");
    return library_ops ? library_ops() : NULL;
}
#endif
