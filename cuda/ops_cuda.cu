// The CUDA backend's op table (src/backend/ops.h): device selection, memory with a
// high-water mark, host transfers, and the ops, which queue kernels
// (kernels.cu, attention.cu) and cuBLASLt matmuls (matmul.cu) on one compute
// stream.  The device collectives (comm_nccl.cu) are queued on that stream
// too, so they are ordered with the compute.
#include "common.cuh"
#include "kernels.cuh"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unordered_map>

#include <cuda_profiler_api.h>

extern "C" {
#include "comm/comm.h"
}

CudaContext g_cuda;

void cuda_fail(const char *what, const char *call, const char *file, int line,
               const char *message) {
    fatal("%s error: %s failed at %s:%d: %s", what, call, file, line, message);
}

// ---- memory ----

static std::unordered_map<void *, size_t> *allocations;

void *cuda_device_alloc(size_t bytes) {
    size_t n = bytes ? bytes : 256;
    void *p = NULL;
    cudaError_t e = cudaMalloc(&p, n);
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total_b = 0;
        (void)cudaGetLastError();
        (void)cudaMemGetInfo(&free_b, &total_b);   // for the message only
        char want[32], have[32], tot[32], live[32];
        fatal("CUDA out of memory on device %d (%s): allocating %s (%zu bytes) with %s free of "
              "%s, %s held by this run; lower --batch-size, add -g, --zero, --tp or --pp "
              "(--describe shows the memory a layout needs)", g_cuda.device, g_cuda.prop.name,
              format_bytes((double)n, want, sizeof want), n,
              format_bytes((double)free_b, have, sizeof have),
              format_bytes((double)total_b, tot, sizeof tot),
              format_bytes((double)g_cuda.live_bytes, live, sizeof live));
    }
    CUDA_CHECK(e);
    (*allocations)[p] = n;
    g_cuda.live_bytes += n;
    if (g_cuda.live_bytes > g_cuda.peak_bytes) g_cuda.peak_bytes = g_cuda.live_bytes;
    return p;
}

static void device_free(void *p) {
    if (!p) return;
    auto it = allocations->find(p);
    if (it == allocations->end()) fatal("CUDA: release of a pointer the backend did not allocate");
    g_cuda.live_bytes -= it->second;
    allocations->erase(it);
    CUDA_CHECK(cudaFree(p));
}

// Zero-filled, like calloc: later ops on the stream see the zeros.
static void *cuda_alloc(size_t bytes) {
    void *p = cuda_device_alloc(bytes);
    CUDA_CHECK(cudaMemsetAsync(p, 0, bytes ? bytes : 256, g_cuda.stream));
    return p;
}

static void cuda_release(void *p) {
    if (!p) return;
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));   // no queued op still uses it
    device_free(p);
}

// Pinned host memory (--offload optimizer: the host's AdamW and the copies
// overlap the device's work without staging).
static void *cuda_host_alloc(size_t bytes) {
    void *p = NULL;
    CUDA_CHECK(cudaMallocHost(&p, bytes ? bytes : 1));
    memset(p, 0, bytes);
    return p;
}

static void cuda_host_release(void *p) {
    if (!p) return;
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));   // no queued copy still reads it
    CUDA_CHECK(cudaFreeHost(p));
}

void *cuda_scratch(size_t bytes) {
    if (bytes > g_cuda.scratch_bytes) {
        if (g_cuda.scratch) {
            CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
            device_free(g_cuda.scratch);
        }
        size_t n = cuda_scratch_size(bytes);   // (ops.h: the memory model counts it)
        g_cuda.scratch = cuda_device_alloc(n);
        g_cuda.scratch_bytes = n;
    }
    return g_cuda.scratch;
}

// Host → device copies go through a ring of pinned staging slots, so the host
// never waits for the queued compute (the caller's buffer is free again on
// return).  A slot is reused once the copy that last read it has run; copies
// larger than a slot go synchronously (weights at start-up, checkpoints).
#define STAGING_SLOTS 16
#define STAGING_SLOT_BYTES ((size_t)1 << 20)

static struct {
    char *host;                       // STAGING_SLOTS × STAGING_SLOT_BYTES, pinned
    cudaEvent_t done[STAGING_SLOTS];  // recorded after the copy out of the slot
    int next;
} staging;

static void cuda_to_device(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return;
    if (bytes <= STAGING_SLOT_BYTES) {
        int s = staging.next;
        staging.next = (s + 1) % STAGING_SLOTS;
        CUDA_CHECK(cudaEventSynchronize(staging.done[s]));
        char *slot = staging.host + (size_t)s * STAGING_SLOT_BYTES;
        memcpy(slot, src, bytes);
        CUDA_CHECK(cudaMemcpyAsync(dst, slot, bytes, cudaMemcpyHostToDevice, g_cuda.stream));
        CUDA_CHECK(cudaEventRecord(staging.done[s], g_cuda.stream));
        return;
    }
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, g_cuda.stream));
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
}

static void cuda_to_host(void *dst, const void *src, size_t bytes) {
    if (bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, g_cuda.stream));
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
}

static void cuda_copy(void *dst, const void *src, size_t bytes) {
    if (dst == src || bytes == 0) return;
    CUDA_CHECK(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, g_cuda.stream));
}

// Rows of act elements: the width is the table's (ops_cuda.act_bytes).
static size_t act_width(void);
static void cuda_copy_rows(void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t rows,
                           size_t cols) {
    size_t w = act_width();
    if (rows && cols)
        CUDA_CHECK(cudaMemcpy2DAsync(dst, dst_ld * w, src, src_ld * w, cols * w, rows,
                                     cudaMemcpyDeviceToDevice, g_cuda.stream));
}

static void cuda_zero(void *p, size_t bytes) {
    if (bytes) CUDA_CHECK(cudaMemsetAsync(p, 0, bytes, g_cuda.stream));
}

static void cuda_sync(void) { CUDA_CHECK(cudaDeviceSynchronize()); }

static size_t cuda_peak_bytes(void) { return g_cuda.peak_bytes; }

static void cuda_profiler_range(bool start) {
    CUDA_CHECK(start ? cudaProfilerStart() : cudaProfilerStop());
}

// ---- conversions ----

static void cuda_f32_to_act(void *dst, const float *src, size_t n) {
    if (g_cuda.bf16) kernels_f32_to_bf16(dst, src, n);
    else cuda_copy(dst, src, n * sizeof(float));
}

static void cuda_act_to_f32(float *dst, const void *src, size_t n) {
    if (g_cuda.bf16) kernels_bf16_to_f32(dst, src, n);
    else cuda_copy(dst, src, n * sizeof(float));
}

// Host fp32 ↔ device bf16 in chunks through a pinned buffer, rounded on the
// host by bf16.h (round to nearest even), as the GPU's conversions do.
#define CONVERT_CHUNK ((size_t)4 << 20)
static uint16_t *convert_buffer;

static void cuda_act_from_host_f32(void *dst, const float *src, size_t n) {
    if (!g_cuda.bf16) {
        cuda_to_device(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i += CONVERT_CHUNK) {
        size_t k = n - i < CONVERT_CHUNK ? n - i : CONVERT_CHUNK;
        CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));   // the buffer's last copy is done
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < k; j++) convert_buffer[j] = bf16_from_f32(src[i + j]);
        CUDA_CHECK(cudaMemcpyAsync((uint16_t *)dst + i, convert_buffer, k * sizeof(uint16_t),
                                   cudaMemcpyHostToDevice, g_cuda.stream));
    }
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
}

static void cuda_act_to_host_f32(float *dst, const void *src, size_t n) {
    if (!g_cuda.bf16) {
        cuda_to_host(dst, src, n * sizeof(float));
        return;
    }
    for (size_t i = 0; i < n; i += CONVERT_CHUNK) {
        size_t k = n - i < CONVERT_CHUNK ? n - i : CONVERT_CHUNK;
        CUDA_CHECK(cudaMemcpyAsync(convert_buffer, (const uint16_t *)src + i,
                                   k * sizeof(uint16_t), cudaMemcpyDeviceToHost, g_cuda.stream));
        CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
#pragma omp parallel for schedule(static)
        for (size_t j = 0; j < k; j++) dst[i + j] = bf16_to_f32(convert_buffer[j]);
    }
}

// ---- layers ----

static void cuda_rmsnorm_forward(void *y, float *rstd, const void *x, const void *w, int N, int D,
                                 float eps) {
    kernels_rmsnorm_forward(y, rstd, x, w, N, D, eps);
}

static void cuda_rmsnorm_backward(void *dx, float *dw, const void *dy, const void *x,
                                  const void *w, const float *rstd, int N, int D) {
    kernels_rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
}

static void cuda_rope_forward(void *qkv, const float *c, const float *s, int N, int T, int stride,
                              int n_heads, int hd) {
    kernels_rope(qkv, c, s, N, T, stride, n_heads, hd, 1.0f);
}

static void cuda_rope_backward(void *dqkv, const float *c, const float *s, int N, int T,
                               int stride, int n_heads, int hd) {
    kernels_rope(dqkv, c, s, N, T, stride, n_heads, hd, -1.0f);
}

// Argmax results travel through a small device buffer to the host arrays.
static void cuda_argmax(int32_t *index, float *value, const void *logits, int N, int V,
                        int valid, int vocab_start) {
    if (N <= 0) return;
    char *buf = (char *)cuda_scratch((size_t)N * 8);
    int32_t *d_index = (int32_t *)buf;
    float *d_value = (float *)(buf + (size_t)N * 4);
    kernels_argmax(d_index, d_value, logits, N, V, valid, vocab_start);
    cuda_to_host(index, d_index, (size_t)N * sizeof(int32_t));
    cuda_to_host(value, d_value, (size_t)N * sizeof(float));
}

// ---- optimizer ----

static void cuda_adamw(float *w, float *m, float *v, const float *g, void *param, size_t n,
                       const AdamwStep *a) {
    kernels_adamw(w, m, v, g, param, n, *a);
}

static double cuda_sum_squares(const float *x, size_t n) { return kernels_reduce(x, n, true); }
static double cuda_sum(const float *x, size_t n) { return kernels_reduce(x, n, false); }

// ---- the table ----

static Ops ops_cuda;
static char gpu_name[256];
static size_t act_width(void) { return ops_cuda.act_bytes; }

static void fill_table(bool bf16) {
    Ops o;
    memset(&o, 0, sizeof o);
    o.name = "cuda";
    o.device = gpu_name;
    o.act_bytes = bf16 ? 2 : 4;
    o.attention = attention_selected();
    o.alloc = cuda_alloc;
    o.release = cuda_release;
    o.to_device = cuda_to_device;
    o.to_host = cuda_to_host;
    o.copy = cuda_copy;
    o.copy_rows = cuda_copy_rows;
    o.zero = cuda_zero;
    o.sync = cuda_sync;
    o.peak_bytes = cuda_peak_bytes;
    o.buffer_peak_bytes = cuda_peak_bytes;   // device memory is alloc's alone
    o.host_alloc = cuda_host_alloc;
    o.host_release = cuda_host_release;
    o.profiler_range = cuda_profiler_range;
    o.f32_to_act = cuda_f32_to_act;
    o.act_to_f32 = cuda_act_to_f32;
    o.act_from_host_f32 = cuda_act_from_host_f32;
    o.act_to_host_f32 = cuda_act_to_host_f32;
    o.linear_forward = matmul_linear_forward;
    o.linear_backward = matmul_linear_backward;
    o.rmsnorm_forward = cuda_rmsnorm_forward;
    o.rmsnorm_backward = cuda_rmsnorm_backward;
    o.add = kernels_add;
    o.add_f32 = kernels_add_f32;
    o.rope_forward = cuda_rope_forward;
    o.rope_backward = cuda_rope_backward;
    o.attention_state_bytes = attention_state_bytes;
    o.attention_work_bytes = attention_work_bytes;
    o.attention_forward = attention_forward;
    o.attention_backward = attention_backward;
    o.attention_block_forward = attention_block_forward;
    o.attention_block_backward = attention_block_backward;
    o.swiglu_forward = kernels_swiglu_forward;
    o.swiglu_backward = kernels_swiglu_backward;
    o.embedding_forward = kernels_embedding_forward;
    o.embedding_backward = kernels_embedding_backward;
    o.ce_row_max = kernels_ce_row_max;
    o.ce_stats = kernels_ce_stats;
    o.ce_loss_grad = kernels_ce_loss_grad;
    o.argmax = cuda_argmax;
    o.adamw = cuda_adamw;
    o.sum_squares = cuda_sum_squares;
    o.sum = cuda_sum;
    ops_cuda = o;
}

extern "C" bool ops_cuda_set_attention(Attention requested, char *err, int err_len) {
    if (!attention_select(requested, err, err_len)) return false;
    ops_cuda.attention = attention_selected();
    return true;
}

extern "C" int ops_cuda_device_count(void) {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
        (void)cudaGetLastError();
        return 0;
    }
    return n;
}

static bool created = false;

extern "C" const Ops *ops_cuda_set_precision(Precision precision) {
    if (!created) fatal("ops_cuda_set_precision: the CUDA backend was not created");
    CUDA_CHECK(cudaStreamSynchronize(g_cuda.stream));
    g_cuda.bf16 = precision == PRECISION_BF16;
    fill_table(g_cuda.bf16);
    return &ops_cuda;
}

// One GPU per rank: device local_rank mod the visible count; bf16 or fp32
// act buffers.  Created once per process.
extern "C" const Ops *ops_cuda_create(Precision precision, int local_rank, char *err,
                                      int err_len) {
    bool bf16 = precision == PRECISION_BF16;
    if (created && bf16 != g_cuda.bf16) {
        snprintf(err, err_len, "the CUDA backend exists already in %s; switching to %s takes "
                 "ops_cuda_set_precision", g_cuda.bf16 ? "bf16" : "fp32", precision_name(precision));
        return NULL;
    }
    if (created) return &ops_cuda;
    int count = 0;
    cudaError_t e = cudaGetDeviceCount(&count);
    if (e != cudaSuccess || count == 0) {
        snprintf(err, err_len, "--device cuda: no CUDA GPU is visible (%s); use --device cpu",
                 e != cudaSuccess ? cudaGetErrorString(e) : "no device found");
        (void)cudaGetLastError();
        return NULL;
    }
    memset(&g_cuda, 0, sizeof g_cuda);
    g_cuda.device = (local_rank < 0 ? 0 : local_rank) % count;
    g_cuda.bf16 = bf16;
    CUDA_CHECK(cudaSetDevice(g_cuda.device));
    CUDA_CHECK(cudaGetDeviceProperties(&g_cuda.prop, g_cuda.device));
    if (g_cuda.prop.major < 8) {
        snprintf(err, err_len, "--device cuda needs a GPU of compute capability 8.0 or newer "
                 "(Ampere, Hopper); device %d (%s) is %d.%d", g_cuda.device, g_cuda.prop.name,
                 g_cuda.prop.major, g_cuda.prop.minor);
        return NULL;
    }
    CUDA_CHECK(cudaStreamCreateWithFlags(&g_cuda.stream, cudaStreamNonBlocking));
    kernels_probe();
    e = cudaGetLastError();
    if (e != cudaSuccess) {
        snprintf(err, err_len, "--device cuda: this build has no kernels for device %d (%s, "
                 "compute capability %d.%d): %s; rebuild with make CUDA_ARCH=\"%d%d\"",
                 g_cuda.device, g_cuda.prop.name, g_cuda.prop.major, g_cuda.prop.minor,
                 cudaGetErrorString(e), g_cuda.prop.major, g_cuda.prop.minor);
        return NULL;
    }
    allocations = new std::unordered_map<void *, size_t>();
    CUDA_CHECK(cudaMallocHost((void **)&g_cuda.host_result, 64));
    CUDA_CHECK(cudaMallocHost((void **)&staging.host, STAGING_SLOTS * STAGING_SLOT_BYTES));
    for (int s = 0; s < STAGING_SLOTS; s++)
        CUDA_CHECK(cudaEventCreateWithFlags(&staging.done[s], cudaEventDisableTiming));
    CUDA_CHECK(cudaMallocHost((void **)&convert_buffer, CONVERT_CHUNK * sizeof(uint16_t)));
    snprintf(gpu_name, sizeof gpu_name, "%s", g_cuda.prop.name);
    matmul_init();
    fill_table(bf16);
    created = true;
    return &ops_cuda;
}
