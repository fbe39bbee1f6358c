#include <stdio.h>
#include <string.h>

#include "backend/ops.h"

const Ops *ops = &ops_cpu;

bool ops_select(const char *device, const char *precision, int local_rank, char *err,
                int err_len) {
    if (strcmp(device, "cpu") == 0) {
        if (strcmp(precision, "fp32") != 0) {
            snprintf(err, err_len, "--mixed-precision %s needs --device cuda; the CPU backend "
                     "computes in fp32", precision);
            return false;
        }
        ops = &ops_cpu;
        return true;
    }
    if (strcmp(device, "cuda") == 0) {
#ifdef LLAMA_CUDA
        const Ops *o = ops_cuda_create(precision, local_rank, err, err_len);
        if (o) ops = o;
        return o != NULL;
#else
        (void)local_rank;
        snprintf(err, err_len, "this build has no CUDA backend (nvcc was not found when it was "
                 "built); rebuild with nvcc on the PATH, or use --device cpu");
        return false;
#endif
    }
    snprintf(err, err_len, "unknown --device '%s' (expected cpu or cuda)", device);
    return false;
}

bool ops_select_attention(const char *requested, char *err, int err_len) {
    if (ops == &ops_cpu) return true;
#ifdef LLAMA_CUDA
    return ops_cuda_set_attention(requested, err, err_len);
#else
    (void)requested;
    snprintf(err, err_len, "no attention to select: the active backend is not known");
    return false;
#endif
}

const char *ops_attention_for(const char *device, const char *requested, char *err,
                              int err_len) {
    if (strcmp(device, "cuda") != 0) return "cpu";
    bool any = !requested || !requested[0];
    if (!any && strcmp(requested, "own") && strcmp(requested, "cudnn")) {
        snprintf(err, err_len, "--attention must be cudnn or own, got '%s'", requested);
        return NULL;
    }
#ifdef LLAMA_CUDA
    const char *built = ops_cuda_attention_default();
#else
    const char *built = "own";
#endif
    if (any) return built;
    if (strcmp(requested, "cudnn") == 0 && strcmp(built, "cudnn") != 0) {
        snprintf(err, err_len, "--attention cudnn: this build has no cuDNN (cudnn.h, libcudnn.so.9 "
                 "or cudnn-frontend's headers were not found when it was built: make deps fetches "
                 "the headers, CUDNN_HOME=dir points at cuDNN); use --attention own");
        return NULL;
    }
    return requested;
}

void ops_attention_summary(char *out, int out_len) {
    if (strcmp(ops->attention, "cudnn") == 0) {
#ifdef LLAMA_CUDA
        size_t v = ops_cuda_cudnn_version();
#else
        size_t v = 0;
#endif
        snprintf(out, out_len, "cuDNN %zu.%zu.%zu flash attention for bf16 (fp32 and shapes cuDNN "
                 "refuses: the own kernels; --attention own: the own kernels throughout)",
                 v / 10000, v % 10000 / 100, v % 100);
    } else if (strcmp(ops->attention, "own") == 0) {
        snprintf(out, out_len, "the own flash-attention kernels (tensor cores for bf16 at "
                 "head dims 64 and 128)");
    } else {
        snprintf(out, out_len, "the CPU backend's attention (fp32, the probabilities kept)");
    }
}
