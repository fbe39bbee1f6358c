// AdamW on fp32 master weights with ZeRO-1/2 sharding over data-parallel
// ranks, global-norm clipping, and the learning-rate schedule.
#ifndef LLAMA_OPTIMIZER_H
#define LLAMA_OPTIMIZER_H

#include <stdint.h>

#include "grid.h"
#include "model.h"

typedef struct {
    double lr, min_lr_ratio, weight_decay, grad_clip;
    double beta1, beta2, eps;
    int64_t warmup_steps, total_steps;
    int zero;
} OptimizerConfig;

typedef struct {
    OptimizerConfig cfg;
    Model *model;
    const Grid *grid;
    size_t shard_begin, shard_len;   // the flat range this rank updates (all of it without ZeRO)
    float *master;      // (shard_len) fp32 master weights; aliases model->params when fp32, ZeRO 0
    bool master_owned;
    float *m1, *m2;     // (shard_len) Adam moments
    float *grad_shard;  // (shard_len) ZeRO-1/2: this rank's reduced gradient
    int64_t step;       // optimizer steps taken
} Optimizer;

// Learning rate of optimizer step `step` (0-based): linear warm-up over
// warmup_steps, then cosine from lr to lr·min_lr_ratio at total_steps.
double lr_at(const OptimizerConfig *c, int64_t step);

Optimizer *optimizer_create(const OptimizerConfig *cfg, Model *m, const Grid *g);
void optimizer_free(Optimizer *o);
// Re-reads the master weights from the model's compute weights (after they
// were initialised or loaded).
void optimizer_sync_master(Optimizer *o);
// After each micro-batch's backward pass: ZeRO-2 reduce-scatters the
// micro-batch's gradient into the shard and clears the full buffer.
void optimizer_after_micro_step(Optimizer *o);
// Reduces gradients over DP, clips to the global norm, takes one AdamW step,
// refreshes the compute weights (all-gathered under ZeRO) and clears the
// gradients.  Returns the global gradient norm before clipping.
double optimizer_step(Optimizer *o);

#endif
