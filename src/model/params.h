// The parameter table: every weight tensor of the part of the model a rank
// holds, its Hugging Face name, full logical shape, the block of it this rank
// holds under tensor parallelism, and its place in the flat buffers (compute
// weights, gradients, master weights and Adam moments share one layout).
#ifndef LLAMA_PARAMS_H
#define LLAMA_PARAMS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/config.h"

// How tensor parallelism splits a (rows, cols) weight.
typedef enum {
    SPLIT_NONE,   // replicated (RMSNorm weights)
    SPLIT_ROWS,   // output features: column-parallel linears, vocab-parallel embedding/head
    SPLIT_COLS,   // input features: row-parallel linears (attention output, MLP down)
} TpSplit;

typedef struct {
    char name[96];           // Hugging Face name, e.g. model.layers.3.mlp.up_proj.weight
    int ndim;                // 1 (norm weights) or 2
    int64_t rows, cols;      // full logical shape (cols = 1 when ndim = 1)
    int64_t row0, col0;      // this rank's block starts here in the full tensor
    int64_t local_rows, local_cols;   // the block's shape in the local buffer
    int64_t valid_rows;      // rows of the block inside the logical tensor (vocab padding excluded)
    size_t offset, numel;    // place in the flat local buffers
    TpSplit split;
    bool decay;              // AdamW weight decay applies (not to norm weights)
    int layer;               // global layer index, -1 outside the layers
    bool tied_copy;          // tied embeddings, pipeline: the last stage's copy of the first
                             // stage's embedding (saved by the first, its gradient summed with it)
    int unit;                // the unit it belongs to (ParamTable.units)
} ParamTensor;

// A unit: tensors the model uses together, contiguous in the flat buffers and
// padded to a multiple of the data-parallel size there, so ZeRO splits each
// unit in equal chunks (one per DP rank) and gathers or reduces it in one
// collective: the embedding, each layer, the head (final norm and LM head; with
// the embedding tied on the same rank, the final norm alone).
typedef struct {
    size_t offset, numel;    // flat range, padding included (numel a multiple of dp)
    int first, count;        // tensors [first, first + count)
    bool vocab;              // holds a vocabulary-sized matrix (embedding, LM head, tied copy)
} ParamUnit;

// The kinds of tensor in one decoder layer, in buffer order.  Q, K and V are
// adjacent, so they form one fused (q + k + v rows, dim) matrix; so do gate and up.
enum {
    LP_ATTN_NORM, LP_WQ, LP_WK, LP_WV, LP_WO, LP_FFN_NORM, LP_GATE, LP_UP, LP_DOWN, LP_COUNT
};

// What part of the model this rank holds.
enum { PART_MAX_CHUNKS = 16 };
typedef struct {
    int tp, tp_rank;          // tensor-parallel size and coordinate
    int layer0, n_layers;     // pipeline stage: layers [layer0, layer0 + n_layers); with
                              // chunks, n_layers counts all of them and layer0 is unused
    // Interleaved pipeline (--vpp): the model chunks this rank holds, in the order
    // they come in the model; chunk v is layers [chunk_layer0[v], + chunk_layers[v]).
    // n_chunks 0 is one chunk, [layer0, layer0 + n_layers).
    int n_chunks;
    int chunk_layer0[PART_MAX_CHUNKS], chunk_layers[PART_MAX_CHUNKS];
    bool first, last;         // holds the embedding (in its first chunk) / the final norm and
                              // LM head (in its last)
    int dp;                   // ranks holding the same weights (data-parallel × context-
                              // parallel size): flat buffers are padded to a multiple of it
    bool sp;                  // sequence parallel: the residual stream's rows split over the
                              // tensor-parallel group (activations only; the weights are the same)
    int cp, cp_rank;          // context parallel (0 or 1: none): each sequence split over cp
                              // ranks (model/context_parallel.h); weights the same on all
} ModelPart;

static inline int part_cp(const ModelPart *p) { return p->cp > 1 ? p->cp : 1; }
static inline int part_chunks(const ModelPart *p) { return p->n_chunks > 0 ? p->n_chunks : 1; }
// Chunk v's first global layer and its layer count.
static inline int part_chunk_layer0(const ModelPart *p, int v) {
    return p->n_chunks > 0 ? p->chunk_layer0[v] : p->layer0;
}
static inline int part_chunk_layers(const ModelPart *p, int v) {
    return p->n_chunks > 0 ? p->chunk_layers[v] : p->n_layers;
}
// Chunk v's first local layer (the local layers are the chunks' back to back).
static inline int part_chunk_local0(const ModelPart *p, int v) {
    int l = 0;
    for (int c = 0; c < v; c++) l += part_chunk_layers(p, c);
    return l;
}
// The most layers a chunk has.
static inline int part_chunk_max_layers(const ModelPart *p) {
    int most = 0;
    for (int v = 0; v < part_chunks(p); v++)
        if (part_chunk_layers(p, v) > most) most = part_chunk_layers(p, v);
    return most;
}

typedef struct {
    ParamTensor *t;
    int n;
    size_t numel;               // elements in the flat buffers (units' padding included)
    size_t n_params;            // parameters (padding excluded)
    int embed, final_norm, lm_head, layers;   // indices into t; -1 when not held
    ParamUnit *units;           // (n_units) in flat order
    int n_units;
    int embed_unit, head_unit, layer_unit;   // embedding's, head's, local layer 0's; -1 when not held
    // Tied embeddings: lm_head is the embedding (== embed) on a rank holding
    // both ends, and the tied copy on a last stage that is not the first.
} ParamTable;

void params_build(ParamTable *pt, const ModelConfig *cfg, const ModelPart *part);
void params_free(ParamTable *pt);
// Every tensor of the whole model, unsplit (names and full shapes, in the
// order of the flat buffers of a one-rank run).
void params_build_global(ParamTable *pt, const ModelConfig *cfg);
// Tensor `kind` of local layer l (0-based within the stage).
static inline const ParamTensor *params_layer(const ParamTable *pt, int l, int kind) {
    return &pt->t[pt->layers + l * LP_COUNT + kind];
}
const ParamTensor *params_find(const ParamTable *pt, const char *name);
// The largest unit and the largest without a vocabulary matrix (the largest
// when every unit has one): what ZeRO's per-unit buffers must hold.
void params_unit_sizes(const ParamTable *pt, size_t *largest, size_t *largest_plain);
// Local layer l's unit.
static inline int params_layer_unit(const ParamTable *pt, int l) { return pt->layer_unit + l; }
// Rows of the vocabulary each tensor-parallel rank holds (vocab padded to a multiple of tp).
int params_vocab_rows(const ModelConfig *cfg, int tp);

// The (in, out) widths of the linears on one of tp ranks: a decoder layer's
// four (Q/K/V fused, attention output, gate/up fused, down) and the LM head
// (its vocabulary rows padded as params_vocab_rows).  The planner's time
// model and llama-calibrate's matmul rate weigh the same products.
enum { LINEAR_QKV, LINEAR_O, LINEAR_GATE_UP, LINEAR_DOWN, LINEAR_HEAD, LINEAR_COUNT };
typedef struct {
    int in, out;
} LinearShape;
void params_linear_shapes(const ModelConfig *cfg, int tp, LinearShape s[LINEAR_COUNT]);
// Fills host fp32 values (pt->numel) like transformers' LLaMA: normal(0, 0.02)
// for matrices, ones for norm weights, zeros in vocab padding.  Each element
// depends only on (seed, tensor name, its index in the full tensor).
void params_init_host(const ParamTable *pt, uint64_t seed, float *out);
// The same for the flat range [lo, hi) only: out (hi - lo), zeros in padding.
void params_init_host_range(const ParamTable *pt, uint64_t seed, size_t lo, size_t hi, float *out);

#endif
