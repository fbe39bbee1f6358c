// The LLaMA model, written once against ops.h: RMSNorm, rotary embeddings,
// grouped-query attention, SwiGLU MLP, an LM head of its own or tied to the
// embedding; Megatron tensor parallelism over `tp`; one pipeline stage's layers.  Every buffer is
// allocated by model_create; nothing is allocated inside a step.
#ifndef LLAMA_MODEL_H
#define LLAMA_MODEL_H

#include <stdbool.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/config.h"
#include "backend/ops.h"
#include "model/params.h"

// What the backward pass recomputes instead of keeping (--recompute).
typedef enum {
    RECOMPUTE_NONE,        // every layer's activations kept
    RECOMPUTE_SELECTIVE,   // matmul and attention outputs kept; the norms and SwiGLU recomputed
    RECOMPUTE_FULL,        // only the residual stream kept; each layer's forward rerun
} Recompute;

// Activations of one micro-batch in flight through one chunk of this stage
// (the whole stage without an interleaved pipeline).  R is the
// residual stream's rows on this rank: N = B·T, or N / tp under sequence
// parallelism (part.sp: rank r of the TP group holds rows [r·R, (r + 1)·R)).  Lk is the
// number of the chunk's layers, or 1 under full recomputation (then only the
// residual stream is kept per layer); Lc is the number of the chunk's layers
// without recomputation, or 1 under either (the norms' outputs, their 1/rms
// and SwiGLU's output are recomputed from what is kept, into one layer's room).
typedef struct {
    // L: the layers of the largest chunk (all of the stage's without --vpp).
    void *res;          // (L + 1, R, D)  residual stream: res[l] enters layer l
    void *mid;          // (Lk, R, D)     residual after attention
    void *xn1;          // (Lc, R, D)     RMSNorm output feeding Q/K/V
    void *qkv;          // (Lk, N, qkv)   queries and keys after RoPE, values
    void *att;          // (Lk, N, heads·hd) attention output
    void *att_state;    // (Lk, state)    what the attention backward pass needs
    void *xn2;          // (Lc, R, D)     RMSNorm output feeding gate/up
    void *gu;           // (Lk, N, 2F)    gate | up projections
    void *h;            // (Lc, N, F)     SwiGLU output
    float *rstd1, *rstd2;   // (Lc, R)    1/rms of the two norms
    int32_t *tokens;    // (N) input ids
    int32_t *targets;   // (N) next-token ids
} Activations;

// Whoever holds the weights and gradients of a unit (params.h) when the model
// does not hold them all (ZeRO-2 and 3) or wants to know when they are final
// (the data-parallel reduction overlapped with the backward pass).
typedef enum { PASS_FORWARD, PASS_BACKWARD } ModelPass;
typedef struct {
    // Before the model uses unit u in a pass: from then until `end`, m->unit_w[u]
    // (and in the backward pass m->unit_g[u]) point at its weights (gradients).
    void (*begin)(void *ctx, int unit, ModelPass pass);
    // After the last use: backward: unit u's gradients are final for the micro-batch.
    // At most two units are in use at once (the head and the embedding tied to
    // it, the embedding begun first), otherwise one.
    void (*end)(void *ctx, int unit, ModelPass pass);
    void *ctx;
} UnitHooks;

// Which flat buffers model_create allocates (the rest come through UnitHooks).
enum { MODEL_HOLDS_WEIGHTS = 1, MODEL_HOLDS_GRADS = 2, MODEL_HOLDS_ALL = 3 };

typedef struct Model {
    const Ops *ops;         // the backend every buffer below belongs to
    ModelConfig cfg;
    ModelPart part;
    const Comm *tp;         // tensor-parallel group (size 1 without TP)
    int B, T, N;            // micro-batch, sequence rows on this rank (the sequence's length,
                            // or its length / cp under context parallelism), rows = B·T
    int R;                  // residual-stream rows on this rank: N, or N / tp under part.sp
    // Local widths of this tensor-parallel rank.
    int hd, heads, kv_heads, qkv_dim, ffn, vocab_rows, vocab_start, vocab_valid;
    ParamTable table;
    size_t flat_numel;      // table.numel: each unit padded to a multiple of the data-parallel size
    void *params;           // (flat_numel) compute weights; NULL when not held (ZeRO-3)
    float *grads;           // (flat_numel) fp32 gradients, accumulated over micro-batches;
                            // NULL when not held (ZeRO-2 and 3)
    void **unit_w;          // (table.n_units) each unit's weights: into params, or the hooks'
    float **unit_g;         // (table.n_units) each unit's gradients: into grads, or the hooks'
    UnitHooks hooks;        // begin NULL: nobody is asked or told
    Recompute recompute;    // what the backward pass recomputes
    int n_slots;
    Activations *slots;     // one per micro-batch in flight
    size_t state_bytes;     // attention state per layer
    // Head (last stage), one micro-batch at a time.
    void *xnf;              // (N, D) final norm output (all rows)
    float *rstdf;           // (R)
    void *logits;           // (N, vocab_rows), overwritten by their gradient
    float *ce_max, *ce_stats, *ce_loss;   // (N), (N, 2), (N)
    // Backward scratch.
    void *d_res;            // (R, D) gradient of the residual stream (the pipeline swaps in
                            // its own buffer of the same size when a gradient arrives)
    void *d_xn;             // (N, D)
    // Sequence parallel only (NULL otherwise).
    void *gathered;         // (N, D) a norm's output or a gradient gathered from the TP group,
                            // or a row-parallel matmul's partial sums before their reduce-scatter
    void *rows_scratch;     // (R, D) a norm's output or input gradient on this rank's rows
    float *norm_grads;      // (2, D) the norms' weight gradients from this rank's rows
    // Context parallel only (part.cp > 1; NULL otherwise).
    const CommRing *cp;     // the context-parallel group's rings: [0] keys and values, [1] their
                            // gradients (comm.h)
    int32_t *cp_pos;        // (cp, T) global positions of every CP rank's rows of a sequence
    void *kv_ring[2];       // (N, 2·kv_heads·hd) keys and values travelling round the group
    void *dkv_ring[2];      // (N, 2·kv_heads·hd) their gradients
    void *d_qkv;            // (N, qkv)
    void *d_att;            // (N, heads·hd)
    void *att_work;         // attention backward scratch
    float *rope_cos, *rope_sin;   // (T, hd / 2)
    size_t activation_bytes;      // what the buffers above take
} Model;

// A micro-batch of B sequences of T tokens (part.cp > 1: T / cp of them on
// this rank, ring attention on the two rings cp[0] and cp[1]; NULL otherwise).
// holds: MODEL_HOLDS_* flags, which flat buffers to allocate.
Model *model_create(const Ops *ops, const ModelConfig *cfg, const ModelPart *part, const Comm *tp,
                    const CommRing *cp, int B, int T, int n_slots, Recompute recompute, int holds);
void model_free(Model *m);
// "none", "selective" or "full".
const char *model_recompute_name(Recompute r);
// Predicted bytes of activations and scratch for a layout, without allocating.
double model_activation_bytes(const ModelConfig *cfg, const ModelPart *part, int B, int T,
                              int n_slots, Recompute recompute, size_t act_bytes,
                              size_t attention_state_bytes);

// Copies a micro-batch's ids (host, N each) into slot s.
void model_set_batch(Model *m, int s, const int32_t *tokens, const int32_t *targets);
// Chunk `chunk` of this rank's model (part.n_chunks; 0 without an interleaved
// pipeline) on slot s: on the first stage chunk 0 embeds the slot's tokens
// into res[0]; then the chunk's L layers: res[0] → res[L].
void model_forward(Model *m, int s, int chunk);
// res[L] of slot s after chunk `chunk`: what goes to the next stage.
void *model_chunk_output(const Model *m, int s, int chunk);
// Last stage: final norm, LM head, vocab-parallel cross-entropy on res[L] of
// slot s (after the last chunk).  Returns Σ of the per-token losses of the micro-batch.  With
// grad_scale != 0 the logits are replaced by grad_scale · ∂loss/∂logits.
double model_head_forward(Model *m, int s, float grad_scale);
// Backward pass of chunk `chunk` on slot s: on the last stage's last chunk
// from the head's logit gradient, otherwise from d_res (the gradient of res[L]
// received from the next stage).  Leaves the gradient of res[0] in d_res (first
// stage's chunk 0: applied to the embedding).  Accumulates into the units' gradients.
void model_backward(Model *m, int s, int chunk);
// Greedy next token at row `row` of slot s after model_forward +
// model_head_forward(…, 0): argmax over the whole vocabulary (last stage).
int32_t model_argmax(Model *m, int row);
// The logits of row `row` after the same passes, over the whole vocabulary:
// out (cfg.vocab_size) on every rank of the tensor-parallel group (collective
// over it; the padded rows of the last TP rank are left out).
void model_logits_row(Model *m, int row, float *out);
// Σ of the per-token losses of the first `rows` sequences (rows·T tokens) of
// the last model_head_forward (last stage): a micro-batch only partly filled.
double model_loss_sum(Model *m, int rows);

// The communication type of act buffers.
static inline DType model_act_dtype(const Model *m) {
    return m->ops->act_bytes == 2 ? DTYPE_BF16 : DTYPE_F32;
}

// The residual stream's rows on this rank (a stage's activations sent on).
static inline size_t model_stage_elems(const Model *m) { return (size_t)m->R * m->cfg.dim; }

// Tensor t's weights and gradients, wherever its unit's are now.
static inline void *model_param(const Model *m, const ParamTensor *t) {
    return act_at(m->ops, m->unit_w[t->unit], t->offset - m->table.units[t->unit].offset);
}
static inline float *model_grad(const Model *m, const ParamTensor *t) {
    return m->unit_g[t->unit] + (t->offset - m->table.units[t->unit].offset);
}

#endif
