// The pipeline schedule: one optimizer step's micro-batches through this
// rank's stage.  Training uses 1F1B (one-forward-one-backward): stage s runs
// pp − s − 1 warm-up forwards, then alternates forward and backward, then
// drains the remaining backwards; at most pp − s micro-batches are in flight.
// Activations and their gradients travel point-to-point (non-blocking sends,
// receives posted before they are needed).  Without pipeline parallelism it is
// forward, backward per micro-batch.
#ifndef LLAMA_PIPELINE_H
#define LLAMA_PIPELINE_H

#include "parallel/grid.h"
#include "model/model.h"
#include "train/optimizer.h"

// Layers of each of the pp stages: an even split (pp must divide the layer
// count), or by hand from "a,b,..." (pp entries, each ≥ 1, summing to the
// layer count).  False with one line in err otherwise.
bool pipeline_split_layers(const char *spec, int n_layers, int pp, int *counts, char *err,
                           int err_len);
// Activation slots a stage needs for M micro-batches.
int pipeline_slots(const Grid *g, int M);
// The schedule's state that lives across steps (host staging, pending sends):
// made once, so no step allocates.
typedef struct Pipeline Pipeline;
Pipeline *pipeline_create(Model *m, const Grid *g);
void pipeline_free(Pipeline *p);
// rows: (M, B, T + 1) token windows of this data-parallel rank.  Returns Σ of
// token losses over the M micro-batches on the last stage, 0 elsewhere.
double pipeline_train(Pipeline *p, Optimizer *o, const int32_t *rows, int M, float grad_scale);
// Forward only (evaluation); same return value.
double pipeline_eval(Pipeline *p, const int32_t *rows, int M);
// Forward only for the rows of slot 0 (already set); on the last stage the
// logits are left for model_argmax.
void pipeline_forward_logits(Pipeline *p);

#endif
