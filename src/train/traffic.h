// Communication a layout needs per optimizer step, predicted from the shape
// (ring algorithms: an all-reduce of S bytes sends 2·(n−1)/n·S per rank, a
// reduce-scatter or all-gather (n−1)/n·S).
#ifndef LLAMA_TRAFFIC_H
#define LLAMA_TRAFFIC_H

#include "train/memory.h"

typedef struct {
    double dp, tp, pp, cp;   // bytes each rank sends per step, by grid dimension (dp: over
                             // the ranks holding the same weights, data- and context-parallel)
} Traffic;

// For the rank of pipeline stage lay->pp_rank holding `part`, with `dp` ranks
// holding the same weights (data- × context-parallel), tensor-parallel size part->tp.
Traffic traffic_estimate(const ModelConfig *cfg, const ModelPart *part, const MemoryLayout *lay,
                         int dp);
void traffic_print(const char *title, const Traffic *t);

#endif
