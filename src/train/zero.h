// ZeRO: the partition of the flat buffers over data-parallel ranks, and the
// data-parallel traffic of the model's units (params.h) during a step.
//
// Each unit is padded to a multiple of DP in the flat buffers and split in DP
// equal chunks; rank r owns chunk r of every unit, and its shard buffers
// (master weights, Adam moments, reduced gradients; ZeRO-3 also the compute
// weights) are those chunks back to back.  Stage 0 is the same with one chunk
// per unit (the whole unit, at its flat offset).
//   ZeRO-0: gradients all-reduced (each unit as its backward pass ends, in the
//           step's last micro-batch, or all after it);
//   ZeRO-1: gradients reduce-scattered into the shard the same way;
//   ZeRO-2: no full gradient buffer: each unit's backward pass writes a bucket
//           that is reduce-scattered into the shard as the unit ends, in
//           every micro-batch (overlapped with the next unit's backward);
//   ZeRO-3: no full compute weights either: each unit's are all-gathered into
//           a buffer just before its forward and its backward pass (the next
//           unit's prefetched while one computes) and dropped after.
#ifndef LLAMA_ZERO_H
#define LLAMA_ZERO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "model/model.h"
#include "parallel/grid.h"

typedef struct {
    size_t begin, len;   // this rank's chunk of a unit: flat [begin, begin + len)
    size_t at;           // where it starts in the shard buffers
} ZeroChunk;

typedef struct {
    int stage, dp, dp_rank;   // dp: the ranks sharing the shards (data- × context-parallel)
    int n;               // units
    ZeroChunk *chunk;    // (n) this rank's chunk of each unit
    size_t len;          // shard elements: Σ chunk lengths
} ZeroLayout;

void zero_layout_init(ZeroLayout *z, const ParamTable *pt, int stage, int dp, int dp_rank);
void zero_layout_free(ZeroLayout *z);
// The part [*a, *b) of tensor t (flat positions) inside this rank's chunk of
// its unit; *at: the shard index of *a.  False when empty.
bool zero_tensor_part(const ZeroLayout *z, const ParamTensor *t, size_t *a, size_t *b, size_t *at);

// A buffer a unit's gathered weights or gradient bucket lives in.
typedef struct {
    void *buf;           // (cap) act elements (weights) or floats (gradients)
    size_t cap;
    int unit;            // whose data it holds; -1: none
    bool busy;           // between the unit's begin and end
    CommRequest req;     // the collective filling or draining it
    bool pending;
    uint64_t posted;     // when req was posted (older first)
} ZeroSlot;

#define ZERO_SLOTS 2

typedef struct {
    ZeroLayout lay;
    Model *model;
    const Ops *ops;
    const Grid *grid;
    float *grad_shard;      // (lay.len) ZeRO ≥ 1: this rank's reduced gradient
    void *compute_shard;    // (lay.len act) ZeRO-3: this rank's chunks of the compute weights
                            // (set by the optimizer: its master weights when they are act)
    ZeroSlot w[ZERO_SLOTS]; // ZeRO-3: gathered weights; caps: the largest unit, the largest
                            // without a vocabulary matrix
    ZeroSlot g[ZERO_SLOTS]; // ZeRO-2/3: gradient buckets, the same caps
    bool overlap;           // ZeRO 0/1: reduce each unit as it ends (--overlap-grad-reduce)
    bool reducing;          // this backward pass is the step's last: ZeRO 0/1 reduce in it
    CommRequest *pending;   // (n units) ZeRO 0/1 reductions posted in this backward pass
    int n_pending;
    size_t n_posted;        // elements they cover
    uint64_t clock;
} Zero;

// Installs itself as the model's UnitHooks.  The model must hold its full
// weights below stage 3 and its full gradients below stage 2.
Zero *zero_create(int stage, bool overlap, Model *m, const Grid *g);
void zero_free(Zero *z);
// The model flags (MODEL_HOLDS_*) for a stage.
int zero_model_holds(int stage);
// Before each micro-batch's backward pass; `last`: the step's last on this rank.
void zero_before_backward(Zero *z, bool last);
// After the step's backward passes: every gradient reduced over DP (into the
// model's buffer at stage 0, into grad_shard above), tied embeddings summed
// over the embedding group.
void zero_finish_reduce(Zero *z);
// The reduced gradients in shard indexing (stage 0: the model's flat buffer).
float *zero_grads(const Zero *z);
// After an update of the shard: the compute weights everywhere they are used
// (stages 1–2: all-gathered into the model's buffer; 3: gathered on next use).
void zero_publish_weights(Zero *z);
// ZeRO-3: the gathered weights are stale (the compute shard was updated or
// loaded): every buffer is dropped, a gather in flight waited for first.
void zero_drop_gathered(Zero *z);
// Clears the gradients for the next step.
void zero_clear_grads(Zero *z);
// ZeRO-3, for what needs every weight at once (--init-hf, --export-hf): the
// model gets full compute weights for a while, all-gathered (gather: a DP
// collective) or uninitialised; dropping them keeps their chunks as the
// compute shard when keep is true.
void zero_full_weights_hold(Zero *z, bool gather);
void zero_full_weights_drop(Zero *z, bool keep);

#endif
