// The process grid: world = DP × PP × TP ranks, TP varying fastest, then DP,
// then PP (Megatron-Core's order, so a tensor-parallel group sits on one node).
#ifndef LLAMA_GRID_H
#define LLAMA_GRID_H

#include <stdbool.h>

#include "comm/comm.h"
#include "core/config.h"

typedef struct Grid {
    int world_rank, world_size;
    int dp, tp, pp;                  // sizes of the three dimensions
    int dp_rank, tp_rank, pp_rank;   // this rank's coordinates
    int local_rank, local_size;      // within the node (GPU binding)
    Comm world, dp_comm, tp_comm, pp_comm;
    Comm pp_grad_comm;               // pp_comm's twin for gradients flowing back (a device
                                     // backend then never orders the two directions)
    Comm embed_comm;                 // the first and last stage's ranks at this (dp, tp) place
                                     // (Megatron's embedding group: tied embeddings sum their
                                     // gradients there); a group of one on other stages
                                     // and in untied models
} Grid;

// Checks that tp × pp ranks can hold this model on `world` ranks: TP divides
// heads, KV-heads and FFN width; PP no larger than the layer count; world a
// multiple of tp·pp; ZeRO needs DP > 1.  Returns false with one line in err.
bool grid_check_layout(const ModelConfig *cfg, int world, int tp, int pp, int zero, char *err,
                       int err_len);
// Builds the communicators (collective over every rank); the embedding group
// only with tied embeddings (else embed_comm is every rank's own).  The layout
// must have passed grid_check_layout.
void grid_create(Grid *g, int tp, int pp, bool tied_embeddings);
void grid_free(Grid *g);

#endif
