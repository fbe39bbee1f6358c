// The pipeline schedule: one optimizer step's micro-batches through this
// rank's stage.  Training uses 1F1B (one-forward-one-backward): stage s runs
// pp − s − 1 warm-up forwards, then alternates forward and backward, then
// drains the remaining backwards; at most pp − s micro-batches are in flight.
// With --vpp N each rank holds N model chunks (rank p: chunks p, p + pp, …)
// and runs Megatron's interleaved 1F1B over (micro-batch, chunk) pairs: the
// bubble shrinks N-fold; the micro-batches must be a multiple of pp.
// Activations and their gradients travel point-to-point (non-blocking sends,
// receives posted before they are needed).  Without pipeline parallelism it is
// forward, backward per micro-batch.
#ifndef LLAMA_PIPELINE_H
#define LLAMA_PIPELINE_H

#include "model/model.h"
#include "parallel/grid.h"

// Layers of each of the pp · vpp model chunks, in model order (rank p holds
// chunks p, p + pp, …; vpp 1: the pp stages): an even split (pp · vpp must
// divide the layer count), or by hand from "a,b,..." (pp · vpp entries, each
// ≥ 1, summing to the layer count).  False with one line in err otherwise.
bool pipeline_split_layers(const char *spec, int n_layers, int pp, int vpp, int *counts,
                           char *err, int err_len);
// The model part of rank (tp_rank, stage pp_rank) of a tp × dp × pp grid with
// vpp model chunks per stage, its layers split by spec as pipeline_split_layers
// says.  False with one line in err when spec does not split the layers.
bool pipeline_part(const char *spec, const ModelConfig *cfg, int tp, int tp_rank, int dp, int pp,
                   int vpp, int pp_rank, ModelPart *part, char *err, int err_len);
// Forward passes stage pp_rank runs before its first backward pass: pp − pp_rank − 1
// (1F1B), interleaved 2·(pp − pp_rank − 1) + (vpp − 1)·pp (Megatron's); at most M·vpp.
int pipeline_warmup(int pp, int pp_rank, int M, int vpp);
// Activation slots (one chunk's activations each) stage pp_rank of pp needs for
// M micro-batches: the (micro-batch, chunk) pairs in flight.
int pipeline_slots(int pp, int pp_rank, int M, int vpp);
// The share of a step each stage idles (fill and drain), for M micro-batches
// of equal chunks: (pp − 1) / (vpp·M + pp − 1); 0 without a pipeline.
double pipeline_bubble(int pp, int M, int vpp);
// The schedule's state that lives across steps (host staging, pending sends):
// made once, so no step allocates.
typedef struct Pipeline Pipeline;
Pipeline *pipeline_create(Model *m, const Grid *g);
void pipeline_free(Pipeline *p);
// What a step asks of its caller (the trainer): micro-batch mb's inputs and
// next-token targets (B·T each) into the host buffers given, and the
// gradient hook before each micro-batch's backward pass (`last`: the step's
// last one on this rank; may be NULL, and is not called by pipeline_eval).
typedef struct {
    void (*batch)(void *ctx, int mb, int32_t *tokens, int32_t *targets);
    void (*before_backward)(void *ctx, bool last);
    void *ctx;
} PipelineFeed;
// One training step of M micro-batches.  Returns Σ of token losses over the M
// micro-batches on the last stage, 0 elsewhere.
double pipeline_train(Pipeline *p, const PipelineFeed *feed, int M, float grad_scale);
// Forward only (evaluation); same return value.
double pipeline_eval(Pipeline *p, const PipelineFeed *feed, int M);
// Forward only for the rows of slot 0 (already set); on the last stage the
// logits are left for model_argmax.
void pipeline_forward_logits(Pipeline *p);
// Seconds this rank has waited for an activation or a gradient from another
// stage since it was made (the host waits: CPU ranks and host-staged communication).
double pipeline_idle_seconds(const Pipeline *p);

#endif
