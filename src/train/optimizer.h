// AdamW on fp32 master weights with ZeRO-1/2/3 sharding over data-parallel
// ranks (train/zero.h), global-norm clipping, and the learning-rate schedule.
#ifndef LLAMA_OPTIMIZER_H
#define LLAMA_OPTIMIZER_H

#include <stdint.h>

#include "parallel/grid.h"
#include "train/lr_schedule.h"
#include "model/model.h"
#include "train/zero.h"

typedef struct {
    LrSchedule schedule;
    double weight_decay, grad_clip;
    double beta1, beta2, eps;   // Adam's moment decays and its denominator's epsilon
    int zero;
    bool overlap_grad_reduce;   // ZeRO 0/1: reduce each layer's gradients during the backward pass
    bool offload;               // --offload optimizer: master weights and moments in host
                                // memory, AdamW on the host (a device backend only)
} OptimizerConfig;

typedef struct {
    OptimizerConfig cfg;
    Model *model;
    const Ops *ops;         // the model's backend: every buffer below is its memory but
    const Ops *state_ops;   // master, m1, m2's: ops, or the CPU's with offload (host memory)
    bool offload;           // --offload optimizer on a device backend
    float *host_grads;      // (shard_len) offload: the reduced gradient on the host
    const Grid *grid;
    Zero *zero;         // the shard layout and the data-parallel traffic
    size_t shard_len;   // elements of the buffers below (zero->lay.len; everything without ZeRO)
    float *master;      // (shard_len) fp32 master weights; aliases model->params when fp32, ZeRO 0
    bool master_owned;
    bool compute_owned; // ZeRO-3 bf16: zero->compute_shard is a buffer of its own
    float *m1, *m2;     // (shard_len) Adam moments
    int64_t step;       // optimizer steps taken
} Optimizer;

Optimizer *optimizer_create(const OptimizerConfig *cfg, Model *m, const Grid *g);
// Whether the optimizer keeps fp32 master weights of its own (its shard): with
// ZeRO, or when the compute weights (act_bytes wide) are not fp32 already.
bool optimizer_keeps_master(int zero, size_t act_bytes);
void optimizer_free(Optimizer *o);
// Re-reads the master weights from the model's compute weights (after they
// were initialised or loaded); under ZeRO-3 the other way: the compute shard
// from the master weights (which were initialised or loaded).
void optimizer_sync_master(Optimizer *o);
// After a checkpoint's master weights were loaded into the shard: under ZeRO-3
// the compute shard follows them (other stages loaded the compute weights too).
void optimizer_weights_loaded(Optimizer *o);
// Whether overlap_grad_reduce applies to a layout: ZeRO 0 or 1 and DP > 1
// (ZeRO-2 and 3 reduce each layer as it ends, always).
static inline bool optimizer_overlaps(bool overlap_grad_reduce, int zero, int dp) {
    return overlap_grad_reduce && zero < 2 && dp > 1;
}
// Before each micro-batch's backward pass; `last`: the step's last one on this
// rank.  With overlap_grad_reduce (ZeRO 0/1, DP > 1), the last one's backward
// pass posts a data-parallel reduction of each layer's gradients as soon as
// they are final, and optimizer_reduce waits for them.
void optimizer_before_backward(Optimizer *o, bool last);
// One optimizer step in two halves, so the caller can look at the norm (and
// the loss) before deciding.  optimizer_reduce: reduces the gradients over DP
// and returns the global gradient norm before clipping (the same value on every
// rank).  Then exactly one of: optimizer_apply clips to that norm, takes one
// AdamW step (advancing o->step, the schedule's clock), refreshes the compute
// weights (all-gathered under ZeRO 1–2, on next use under 3) and clears the gradients;
// optimizer_discard clears the gradients only (a skipped step: master and
// compute weights, Adam moments and o->step stay bit for bit as they were).
double optimizer_reduce(Optimizer *o);
void optimizer_apply(Optimizer *o, double norm);
void optimizer_discard(Optimizer *o);
// optimizer_reduce then optimizer_apply; returns the norm.
double optimizer_step(Optimizer *o);
// Collective over the world: the largest |w| of the fp32 master weights over
// the whole grid (the same value on every rank), +inf when any is NaN or
// infinite.  Reads the copies a checkpoint would write (under ZeRO 0, those of
// data-parallel rank 0), through the host on a GPU.
double optimizer_max_abs_weight(const Optimizer *o);

#endif
