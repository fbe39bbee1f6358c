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
    Recompute recompute;       // what the backward pass recomputes (model/model.h)
    size_t act_bytes;          // compute type width (4 fp32, 2 bf16)
    bool flash_attention;      // CUDA keeps only softmax statistics; the CPU keeps P (T×T)
} MemoryLayout;

typedef struct {
    int64_t n_params;          // parameters this rank holds (its TP block of its stage)
    double weights, grads, master, adam, activations, total;   // bytes
} MemoryEstimate;

MemoryEstimate memory_estimate(const ModelConfig *cfg, const ModelPart *part,
                               const MemoryLayout *lay);
// Prints the estimate as a few aligned lines (rank 0 prints).
void memory_print(const char *title, const MemoryEstimate *e);

#endif
