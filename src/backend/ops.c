#include <stdio.h>
#include <string.h>

#include "backend/ops.h"
#include "backend/sgemm.h"

const char *device_name(Device d) { return d == DEVICE_CUDA ? "cuda" : "cpu"; }
const char *precision_name(Precision p) { return p == PRECISION_BF16 ? "bf16" : "fp32"; }

bool device_parse(const char *name, Device *d) {
    for (Device k = DEVICE_CPU; k <= DEVICE_CUDA; k++)
        if (strcmp(name, device_name(k)) == 0) {
            *d = k;
            return true;
        }
    return false;
}

bool precision_parse(const char *name, Precision *p) {
    for (Precision k = PRECISION_FP32; k <= PRECISION_BF16; k++)
        if (strcmp(name, precision_name(k)) == 0) {
            *p = k;
            return true;
        }
    return false;
}

const Ops *ops_select(Device device, Precision precision, int local_rank, char *err,
                      int err_len) {
    if (device == DEVICE_CPU) {
        if (precision == PRECISION_FP32) return &ops_cpu;
        const char *missing = sgemm_bf16_missing();
        if (!missing) return ops_cpu_bf16();
        snprintf(err, err_len, "--mixed-precision bf16 on the CPU needs a bf16 matmul: %s; use -x "
                 "fp32, or --device cuda", missing);
        return NULL;
    }
#ifdef LLAMA_CUDA
    return ops_cuda_create(precision, local_rank, err, err_len);
#else
    (void)local_rank;
    snprintf(err, err_len, "this build has no CUDA backend (nvcc was not found when it was "
             "built); rebuild with nvcc on the PATH, or use --device cpu");
    return NULL;
#endif
}

bool ops_select_attention(const Ops *o, Attention requested, char *err, int err_len) {
    if (o->host_memory) return true;   // the CPU tables: one attention
#ifdef LLAMA_CUDA
    return ops_cuda_set_attention(requested, err, err_len);
#else
    (void)requested;
    snprintf(err, err_len, "no attention to select: the active backend is not known");
    return false;
#endif
}

const char *ops_attention_for(Device device, Attention requested, char *err, int err_len) {
    if (device != DEVICE_CUDA) return "cpu";
#ifdef LLAMA_CUDA
    const char *built = ops_cuda_attention_default();
#else
    const char *built = "own";
#endif
    if (requested == ATTENTION_DEFAULT) return built;
    if (requested == ATTENTION_OWN) return "own";
    if (strcmp(built, "cudnn") != 0) {
        snprintf(err, err_len, "--attention cudnn: this build has no cuDNN (cudnn.h, libcudnn.so.9 "
                 "or cudnn-frontend's headers were not found when it was built: make deps fetches "
                 "the headers, CUDNN_HOME=dir points at cuDNN); use --attention own");
        return NULL;
    }
    return "cudnn";
}

double ops_backend_reserved_bytes(Device device, const char *attention, Precision precision,
                                  int B, int T, int nh, int hd, int cp, bool backward) {
    if (device != DEVICE_CUDA) return 0;
    if (!backward) return (double)CUDA_MATMUL_WORKSPACE_BYTES + (double)cuda_scratch_size(0);
    double rows = (double)B * T / cp, D = rows * nh * 4.0, dq = rows * nh * hd * 4.0;
    bool bf16 = precision == PRECISION_BF16, tensor_cores = bf16 && (hd == 64 || hd == 128);
    double attn;
    if (cp > 1) attn = tensor_cores ? dq + D : D;   // ring blocks: the own kernels
    else attn = bf16 && strcmp(attention, "cudnn") == 0 ? 0 : dq + D;
    return (double)CUDA_MATMUL_WORKSPACE_BYTES + (double)cuda_scratch_size((size_t)attn);
}

void ops_attention_summary(const Ops *o, char *out, int out_len) {
    if (strcmp(o->attention, "cudnn") == 0) {
#ifdef LLAMA_CUDA
        size_t v = ops_cuda_cudnn_version();
#else
        size_t v = 0;
#endif
        snprintf(out, out_len, "cuDNN %zu.%zu.%zu flash attention for bf16 (fp32 and shapes cuDNN "
                 "refuses: the own kernels; --attention own: the own kernels throughout)",
                 v / 10000, v % 10000 / 100, v % 100);
    } else if (strcmp(o->attention, "own") == 0) {
        snprintf(out, out_len, "the own flash-attention kernels (tensor cores for bf16 at "
                 "head dims 64 and 128)");
    } else {
        snprintf(out, out_len, "the CPU backend's flash-style attention (fp32, log-sum-exp kept)");
    }
}
