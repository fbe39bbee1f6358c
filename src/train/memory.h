// Memory a rank needs for a layout, predicted without allocating it: the
// numbers behind --describe and the start-up memory report.
#ifndef LLAMA_MEMORY_H
#define LLAMA_MEMORY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"
#include "model/model.h"
#include "model/params.h"

typedef struct {
    int B, T, grad_accum;
    int pp, pp_rank, zero;
    bool offload;              // --offload optimizer on a device backend: its state in host memory
    Recompute recompute;       // what the backward pass recomputes (model/model.h)
    size_t act_bytes;          // compute type width (4 fp32, 2 bf16)
    double backend;            // the backend's own memory (ops_backend_reserved_bytes)
} MemoryLayout;

// Bytes of a rank's device memory (the CPU's memory on CPU ranks) by kind;
// under ZeRO-2/3 grads and weights include the buffers one unit's gradient
// and weights pass through (two each: the largest unit, the largest layer).
typedef struct {
    int64_t n_params;          // parameters this rank holds (its TP block of its stage)
    double weights, grads, master, adam, activations, total;   // bytes; total: the device's
    double backend;            // the backend's workspace and scratch (in total)
    double host;               // --offload optimizer: master, Adam and a gradient copy on the host
} MemoryEstimate;

MemoryEstimate memory_estimate(const ModelConfig *cfg, const ModelPart *part,
                               const MemoryLayout *lay);
// This rank's token rows of a micro-batch: B·T, or B·T / cp under context parallelism.
static inline double memory_rows(const ModelPart *part, const MemoryLayout *lay) {
    return (double)lay->B * lay->T / part_cp(part);
}
// Prints the estimate as a few aligned lines (rank 0 prints).
void memory_print(const char *title, const MemoryEstimate *e);

#endif
