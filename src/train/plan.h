// The planner behind llama-plan: every layout llama-train accepts for a model,
// sequence length, global batch and device count, its memory per rank (the
// model of --describe: train/memory.h, train/traffic.h) and its predicted step
// time on a machine profile (train/machine.h), ranked by tokens/s.
//
// Step time, for the slowest pipeline stage (the first and the last are
// evaluated, as --describe does), per micro-batch:
//   compute  = matmul FLOPs / matmul rate (by shape class) + causal attention
//              FLOPs / attention rate + element-wise bytes / bandwidth + ops ·
//              op overhead (forward, backward, and what --recompute reruns);
//   TP       = the stage's tensor-parallel bytes (traffic_estimate) / link
//              bandwidth + collectives · latency, not overlapped;
//   CP       = the ring attention's key/value blocks and their gradients
//              (traffic_estimate) over point-to-point links, not overlapped;
//   PP       = the activation and gradient sends of the micro-batch, not overlapped;
// then the pipeline: M micro-batches take M·t / (1 − bubble) (pipeline_bubble);
// data parallel: traffic_estimate's bytes / bandwidth, of which what runs
// during the backward pass (ZeRO-0/1: the last micro-batch's; 2: every one's;
// 3: forward and backward) hides behind it, times the machine's comm_overlap,
// except the last layer's share; the optimizer: master weights, Adam moments
// and gradients moved once at the optimizer's bandwidth, or with --offload
// optimizer (GPU profiles that give the host's memory and AdamW rate) the
// gradient shard down and the weights up the host link, and the host's AdamW;
// the offloaded state must fit the node's host memory.  Model FLOPs per token:
// config_flops_per_token (the convention of llama-train's MFU).
#ifndef LLAMA_PLAN_H
#define LLAMA_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "core/config.h"
#include "model/model.h"
#include "train/machine.h"

typedef struct {
    int tp, cp, pp, dp, vpp, zero;
    int B, M;                  // micro-batch (sequences per DP rank), micro-batches per step
    bool sp;
    bool offload;              // --offload optimizer
    Recompute recompute;
} PlanLayout;

typedef struct {
    PlanLayout lay;
    bool fits;                 // accepted by llama-train and within the usable memory
    char why[336];             // when not: the reason
    bool dropped;              // not judged: a smaller micro-batch of the layout did not fit
    double mem;                // bytes per rank, the largest stage's (memory_estimate's total)
    double host_mem;           // --offload: host bytes per node (its devices at the largest
                               // stage's)
    double matmul, attention, elementwise, overhead;   // compute seconds per step, slowest stage
    double tp_comm, cp_comm, pp_comm, dp_comm;        // exposed communication, seconds per step
    double bubble, optimizer, step;                   // seconds per step
    double tokens_per_s, tflops, mfu;                 // tflops: model TFLOP/s per device
    double tflops_8n;        // Colossal-AI's convention: 8 · parameters FLOPs per token
                             // (6N with recomputation's forward), TFLOP/s per device
} PlanRow;

// What to plan.  Filters: -1 (or RECOMPUTE -1) is any; sp_filter -1 any, 0 off, 1 on.
typedef struct {
    ModelConfig cfg;
    int T;                     // sequence length
    int64_t global_tokens;     // tokens per optimizer step
    int devices;
    const Machine *machine;
    int tp, cp, pp, vpp, zero, B, M, recompute, sp, offload;   // filters
    int max_micro_batch;       // largest B tried (default 64)
    bool all;                  // judge every layout (else a layout's larger micro-batches are
                               // left out once one does not fit)
} PlanRequest;

// The request with no filters.
void plan_request_defaults(PlanRequest *r);
// Every layout of the request, ranked: those that fit by tokens/s (then less
// memory, then the layout's numbers), then the others.  *n rows, malloc'd.
// NULL with the reason in err when the request itself is impossible (the
// global batch not a whole number of sequences, no grid of that many devices).
PlanRow *plan_layouts(const PlanRequest *r, int *n, char *err, int err_len);
// Memory and time of one layout accepted by llama-train (no fit check).
void plan_predict(const PlanRequest *r, const PlanLayout *l, PlanRow *out);
// "tp 8 sp cp 2 pp 4 vpp 2 dp 1 zero 1 offload recompute full b 1 ga 64".
void plan_layout_name(const PlanLayout *l, char *out, int len);
// The ranked table (rows [0, n)), one line per layout.
void plan_print_table(const PlanRequest *r, const PlanRow *rows, int n, bool tsv);

#endif
