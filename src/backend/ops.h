// The op interface the model is written against.  Two implementations: the
// CPU reference (ops_cpu.c: fp32, the build's sgemm, OpenMP) and the CUDA backend
// (cuda/: bf16 storage, cuBLASLt, fused kernels).
//
// Buffers are device memory of the active backend.  "act" buffers (activations,
// their gradients and the compute copy of the weights) hold elements of the
// backend's compute type, ops->act_bytes wide (fp32 on the CPU; bf16 or fp32 on
// CUDA); use act_at() for offsets.  float buffers (weight gradients, master
// weights, Adam moments, per-row statistics) are always fp32.  Token ids are
// int32.  Row-major throughout; N is the number of token rows (batch × seq).
#ifndef LLAMA_OPS_H
#define LLAMA_OPS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct AdamwStep;   // elementwise.h

// Ring attention's unit of work (context parallelism): the Tq query rows of
// each of B sequences on this rank against Tk rows of keys and values, from
// this or another rank of the context-parallel group, causal on the rows'
// global positions (a key is seen by queries at its position and later).
// Positions (device memory) increase along the rows.
typedef struct AttentionBlock {
    int B, Tq, Tk, nh, nkv, hd;
    const int32_t *q_pos, *k_pos;   // (Tq), (Tk) positions of a sequence's rows
} AttentionBlock;

// Where the model runs, and the type it computes in (act buffers).
typedef enum { DEVICE_CPU, DEVICE_CUDA } Device;
typedef enum { PRECISION_FP32, PRECISION_BF16 } Precision;
// The attention asked for (--attention): the build's default (cuDNN where
// built in, else the own kernels), cuDNN's, or the own kernels.
typedef enum { ATTENTION_DEFAULT, ATTENTION_CUDNN, ATTENTION_OWN } Attention;
// Names as the command line writes them ("cpu", "cuda"; "fp32", "bf16"), and
// back: false for a name that is none of them.
const char *device_name(Device d);
const char *precision_name(Precision p);
bool device_parse(const char *name, Device *d);
bool precision_parse(const char *name, Precision *p);

typedef struct Ops {
    const char *name;   // "cpu" or "cuda"
    const char *device; // the device's name ("NVIDIA H100 80GB HBM3"); NULL on the CPU
    size_t act_bytes;   // bytes per element of act buffers
    bool host_memory;   // buffers are host memory: to_host/to_device are plain copies
    const char *attention;   // the attention implementation: "cpu", "cudnn" or "own"

    // ---- memory ----
    void *(*alloc)(size_t bytes);   // zero-filled; fatal when out of memory
    void (*release)(void *p);
    void (*to_device)(void *dst, const void *host_src, size_t bytes);
    void (*to_host)(void *host_dst, const void *src, size_t bytes);
    void (*copy)(void *dst, const void *src, size_t bytes);
    void (*zero)(void *p, size_t bytes);
    void (*sync)(void);                       // wait for queued work
    size_t (*peak_bytes)(void);               // memory high-water mark (CPU: the resident peak)
    size_t (*buffer_peak_bytes)(void);        // high-water mark of alloc's buffers alone
    // Page-locked host memory, zero-filled, for buffers the host computes on
    // while the device copies them (--offload optimizer); NULL on the CPU.
    void *(*host_alloc)(size_t bytes);
    void (*host_release)(void *p);
    // Starts (true) or stops collection of an attached profiler (Nsight Compute
    // run with --profile-from-start off); NULL on the CPU.
    void (*profiler_range)(bool start);
    // fp32 ↔ act conversions between device buffers.
    void (*f32_to_act)(void *dst, const float *src, size_t n);
    void (*act_to_f32)(float *dst, const void *src, size_t n);
    // The same from and to host memory (weights in and out).
    void (*act_from_host_f32)(void *dst, const float *host_src, size_t n);
    void (*act_to_host_f32)(float *host_dst, const void *src, size_t n);

    // ---- layers ----
    // y (N, out) = x (N, in) · w (out, in)ᵀ
    void (*linear_forward)(void *y, const void *x, const void *w, int N, int in, int out);
    // dx (N, in) = dy (N, out) · w;  dw (out, in) += dyᵀ · x.  dx may be NULL, or x
    // itself (dw is formed first).
    void (*linear_backward)(void *dx, float *dw, const void *dy, const void *x, const void *w,
                            int N, int in, int out);
    // y = x / rms(x) * w per row; rstd (N) keeps 1/rms for the backward pass.
    void (*rmsnorm_forward)(void *y, float *rstd, const void *x, const void *w, int N, int D,
                            float eps);
    // dx (N, D) += ∂/∂x;  dw (D) += ∂/∂w.
    void (*rmsnorm_backward)(void *dx, float *dw, const void *dy, const void *x, const void *w,
                             const float *rstd, int N, int D);
    // y = a + b elementwise, n elements (y may alias a).
    void (*add)(void *y, const void *a, const void *b, size_t n);
    // The same on fp32 buffers (gradients).
    void (*add_f32)(float *y, const float *a, const float *b, size_t n);
    // Rotary embedding in place (Hugging Face rotate-half layout) on the first
    // n_heads heads of each row of qkv (N, row_stride); row r is position r % T.
    // cos, sin: (T, head_dim / 2).  Backward applies the inverse rotation.
    void (*rope_forward)(void *qkv, const float *cos, const float *sin, int N, int T,
                         int row_stride, int n_heads, int head_dim);
    void (*rope_backward)(void *dqkv, const float *cos, const float *sin, int N, int T,
                          int row_stride, int n_heads, int head_dim);
    // Causal grouped-query attention.  qkv (B·T, (nh + 2·nkv)·hd) holds q heads,
    // then k heads, then v heads per row; out (B·T, nh·hd).  state keeps what the
    // backward pass needs (attention_state_bytes), work is scratch
    // (attention_work_bytes) for the backward pass.
    size_t (*attention_state_bytes)(int B, int T, int nh);
    size_t (*attention_work_bytes)(int B, int T, int nh, int hd);
    void (*attention_forward)(void *out, void *state, const void *qkv, int B, int T, int nh,
                              int nkv, int hd);
    void (*attention_backward)(void *dqkv, void *work, const void *dout, const void *qkv,
                               const void *out, const void *state, int B, int T, int nh,
                               int nkv, int hd);
    // Ring attention (NULL where the backend has none).  q in the rows of qkv
    // (B·Tq, (nh + 2·nkv)·hd) as above; kv (B·Tk, 2·nkv·hd): k heads, then v heads.
    // Forward: out (B·Tq, nh·hd) and lse (B, nh, Tq) (the attention state) are
    // written (`first`: rows that see no key get out 0 and lse −∞) or merged with
    // the blocks before (softmaxes weighted by their sums).
    void (*attention_block_forward)(void *out, float *lse, const void *qkv, const void *kv,
                                    const AttentionBlock *a, bool first);
    // Backward from the final out, lse and dout (B·Tq, nh·hd): adds to the q
    // columns of dqkv (laid out as qkv) and to dkv (laid out as kv); work
    // (attention_work_bytes(B, Tq, nh, hd)) is scratch.
    void (*attention_block_backward)(void *dqkv, void *dkv, void *work, const void *dout,
                                     const void *qkv, const void *kv, const void *out,
                                     const float *lse, const AttentionBlock *a);
    // dst (rows, cols) = src (rows, cols), act elements; rows dst_ld and src_ld apart.
    void (*copy_rows)(void *dst, size_t dst_ld, const void *src, size_t src_ld, size_t rows,
                      size_t cols);
    // SwiGLU: gu (N, 2F) = [gate | up];  h (N, F) = silu(gate) · up.
    void (*swiglu_forward)(void *h, const void *gu, int N, int F);
    // dgu (N, 2F) from dh (N, F) and gu; dgu may be gu itself (each element is read
    // before it is written).
    void (*swiglu_backward)(void *dgu, const void *dh, const void *gu, int N, int F);
    // Vocab-parallel embedding: this rank holds rows [vocab_start, vocab_start +
    // rows) of the table (rows, D).  Tokens outside give zero rows.
    void (*embedding_forward)(void *x, const int32_t *tokens, const void *table, int N, int D,
                              int vocab_start, int rows);
    void (*embedding_backward)(float *dtable, const void *dx, const int32_t *tokens, int N,
                               int D, int vocab_start, int rows);

    // ---- vocab-parallel cross-entropy over logits (N, V) of which the first
    // `valid` columns are real vocabulary (the rest is padding); this rank's
    // columns are global ids [vocab_start, vocab_start + V).  Between the
    // steps the caller reduces over tensor-parallel ranks: max of row_max, sum
    // of stats. ----
    void (*ce_row_max)(float *row_max, const void *logits, int N, int V, int valid);
    // stats (N, 2): sum of exp(logit - row_max), and the target's logit (0
    // when the target lies on another rank).
    void (*ce_stats)(float *stats, const void *logits, const float *row_max,
                     const int32_t *targets, int N, int V, int valid, int vocab_start);
    // loss (N) = log(sum) + max - target logit.  When grad_scale != 0 the
    // logits are overwritten with grad_scale · (softmax - onehot(target)).
    void (*ce_loss_grad)(float *loss, void *logits, const float *row_max, const float *stats,
                         const int32_t *targets, int N, int V, int valid, int vocab_start,
                         float grad_scale);
    // Index and value of the largest valid logit of each row (greedy sampling),
    // written to host memory.
    void (*argmax)(int32_t *index, float *value, const void *logits, int N, int V, int valid,
                   int vocab_start);

    // ---- optimizer ----
    // One AdamW step (PyTorch's formulation) on n fp32 master weights;
    // step counts from 1.
    // AdamW on n elements: master weights w, moments m and v, gradient g (times
    // a->grad_scale); with `param` non-NULL, the new weights also go there as
    // act elements (the compute copy), in the same pass.
    void (*adamw)(float *w, float *m, float *v, const float *g, void *param, size_t n,
                  const struct AdamwStep *a);
    double (*sum_squares)(const float *x, size_t n);   // result on the host
    // Σ losses (N floats) in double, on the host.
    double (*sum)(const float *x, size_t n);
} Ops;

// Picks the backend: the CPU (fp32, or bf16 matmul operands where the CPU and
// the BLAS have a bf16 product), or CUDA (bf16 or fp32); the model
// and optimizer are then built on it (they hold it).  NULL with a reason when it is not available in this
// build or on this machine.
const Ops *ops_select(Device device, Precision precision, int local_rank, char *err,
                      int err_len);

extern const Ops ops_cpu;
// -x bf16 on the CPU: ops_cpu with the linears' products on bf16 operands and
// fp32 accumulation (backend/sgemm.h's sgemm_bf16); activations, attention
// and everything else stay fp32.  Only where sgemm_bf16_available().
const Ops *ops_cpu_bf16(void);

// The attention implementation of backend o (--attention); the CPU backend
// has one and ignores it.  False with a reason when it is not built in.
bool ops_select_attention(const Ops *o, Attention requested, char *err, int err_len);
// What a --device/--attention pair resolves to in this build, without
// touching a GPU ("cpu", "cudnn" or "own"); NULL with a reason when it cannot.
const char *ops_attention_for(Device device, Attention requested, char *err, int err_len);

// The CUDA backend's device memory besides the buffers it is asked for:
// cuBLASLt's workspace, and one scratch buffer that grows to its largest
// request (cuda_scratch_size of it): the own attention kernels' backward pass
// (fp32 dQ accumulators and D, per row and head), cuDNN's workspace, the
// norms' and argmax's partial results.
#define CUDA_MATMUL_WORKSPACE_BYTES ((size_t)32 << 20)
static inline size_t cuda_scratch_size(size_t request) {
    return request < ((size_t)1 << 20) ? (size_t)1 << 20 : request + request / 4;
}
// Predicted bytes of both on a rank of `device` (0 on the CPU) whose attention
// is `attention` (ops_attention_for's name) over B sequences of T tokens, nh
// heads of hd on the rank, context parallel over cp ranks (ring blocks),
// with backward passes (training) or without (evaluation: no attention
// scratch).  cuDNN's own workspace is not known before its plans are built:
// counted as 0 (and a shape cuDNN refuses takes the own kernels' scratch, not
// counted).
double ops_backend_reserved_bytes(Device device, const char *attention, Precision precision,
                                  int B, int T, int nh, int hd, int cp, bool backward);
// One line on backend o's attention, for the start-up log.
void ops_attention_summary(const Ops *o, char *out, int out_len);

#ifdef LLAMA_CUDA
// The CUDA backend (cuda/): one GPU per rank, device local_rank mod the
// visible count.  NULL with a reason when no usable GPU is visible, or when
// the backend exists already in the other precision (ops_cuda_set_precision).
const Ops *ops_cuda_create(Precision precision, int local_rank, char *err, int err_len);
// Switches the existing CUDA backend's compute type (the GPU tests run both);
// act buffers made in the other precision must not be used afterwards.
const Ops *ops_cuda_set_precision(Precision precision);
// GPUs visible to this process (0 when none or no driver).
int ops_cuda_device_count(void);
// --attention on the CUDA backend (attention_cudnn.cu): see ops_select_attention.
bool ops_cuda_set_attention(Attention requested, char *err, int err_len);
const char *ops_cuda_attention_default(void);   // "cudnn" when built with cuDNN, else "own"
size_t ops_cuda_cudnn_version(void);            // the loaded cuDNN's (91900 = 9.19.0); 0: none
// Whether cuDNN runs attention of this shape now (it is selected, the precision
// is bf16 and cuDNN takes the shape); builds the shape's plans on first use.
bool ops_cuda_attention_uses_cudnn(int B, int T, int nh, int nkv, int hd);
// The function `name` of the CUDA backend's library (cuda_library.c: loaded on
// first use), or NULL when the library cannot be loaded or has none.
void *cuda_library_function(const char *name);
#endif

// Element `elements` of an act buffer of backend o.
static inline void *act_at(const Ops *o, const void *base, size_t elements) {
    return (char *)base + elements * o->act_bytes;
}

#endif
