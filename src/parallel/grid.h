// The process grid: world = TP × CP × DP × PP ranks, TP varying fastest, then
// CP, DP and PP (Megatron-Core's order: a tensor-parallel group sits on one
// node, a context-parallel group next to it).  The ranks of one (TP, PP) place
// hold the same weights: the data-parallel and context-parallel ranks
// together ("replicas") sum their gradients and share ZeRO's shards.
#ifndef LLAMA_GRID_H
#define LLAMA_GRID_H

#include <stdbool.h>

#include "comm/comm.h"
#include "core/config.h"

typedef struct Grid {
    int world_rank, world_size;
    int dp, tp, pp, cp;              // sizes of the four dimensions
    int dp_rank, tp_rank, pp_rank, cp_rank;   // this rank's coordinates
    int replicas, replica_rank;      // dp · cp ranks holding the same weights; cp_rank + cp · dp_rank
    int local_rank, local_size;      // within the node (GPU binding)
    Comm world, tp_comm, pp_comm;
    Comm replica_comm;               // the replicas: gradient sums, ZeRO's shards
    // Point-to-point rings (comm.h's CommRing; zeroed when of one rank): the
    // pipeline's stages round a ring (activations flow to the next stage, their
    // gradients back; validation/gpu/pipeline_streams.py shows why each needs
    // links of its own over NCCL), and ring attention's context-parallel group
    // (keys and values, and their gradients, both to the next rank).
    CommRing pp_act, pp_grad;
    CommRing cp_ring[2];             // [0] keys and values, [1] their gradients
    Comm embed_comm;                 // the first and last stage's ranks at this (replica, tp) place
                                     // (Megatron's embedding group: tied embeddings sum their
                                     // gradients there); a group of one on other stages
                                     // and in untied models
} Grid;

// Checks that tp × cp × pp ranks can hold this model on `world` ranks: TP
// divides heads, KV-heads and FFN width; PP no larger than the layer count;
// world a multiple of tp·cp·pp; ZeRO needs more than one replica.  Returns
// false with one line in err.
bool grid_check_layout(const ModelConfig *cfg, int world, int tp, int cp, int pp, int zero,
                       char *err, int err_len);
// Builds the communicators (collective over every rank); the embedding group
// only with tied embeddings (else embed_comm is every rank's own).  The layout
// must have passed grid_check_layout.
void grid_create(Grid *g, int tp, int cp, int pp, bool tied_embeddings);
void grid_free(Grid *g);

#endif
