// Machine profiles for the planner (inputs/machines/*.machine): "key = value"
// lines (a deck, io/text/deck.h) saying what one device computes and moves
// per second, how much memory it has, and how devices talk inside a node and
// between nodes.  Every key below is required once, except `nodes`,
// `comm_overlap`, `attention_head_dim`, `host_memory_gib`, `host_optimizer_gbs`
// and `name`; unknown keys are errors (a typo must not leave a
// rate at zero).  Rates are what a program reaches, not peaks, except
// peak_tflops (the MFU denominator).  The files say where each number comes
// from: "datasheet", "assumed" or "measured" (jobs/calibrate.sh).
#ifndef LLAMA_MACHINE_H
#define LLAMA_MACHINE_H

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    char path[1024];
    char name[128];                // the device, for the report
    bool gpu;                      // device = cuda (else cpu)
    size_t act_bytes;              // precision = bf16 (2) or fp32 (4): the compute type
    int devices_per_node;
    int nodes;                     // 0: as many as the devices need; N > 0: the devices
                                   // share N nodes (CPU ranks: more ranks than cores slow
                                   // each down, devices / (nodes · devices_per_node))
    double device_memory_gib;      // per device (GiB)
    double usable_memory;          // fraction of it a layout may plan for (0..1]
    double peak_tflops;            // dense peak in the compute type: MFU's denominator
    double matmul_tflops;          // matmuls whose smallest dimension is >= matmul_small_dim
    double matmul_small_tflops;    // the others
    int matmul_small_dim;
    double attention_fwd_tflops;   // causal attention, FLOPs performed (FlashAttention's count:
    double attention_bwd_tflops;   // forward 2·N·T·width, backward 2.5 times that)
    int attention_head_dim;        // the head dim those rates are for (optional, default 64);
                                   // other head dims are scaled (train/plan.c)
    double elementwise_gbs;        // GB/s of element-wise kernels and the optimizer
    double optimizer_gbs;          // GB/s of the optimizer step (train/calibrate.h counts its bytes)
    double host_link_gbs;          // device <-> host, GB/s per device per direction
    double host_memory_gib;        // host memory of a node (optional; with host_optimizer_gbs
                                   // the planner plans --offload optimizer on GPU profiles)
    double host_optimizer_gbs;     // GB/s per device of the host's AdamW under --offload (optional;
                                   // the node's memory bandwidth shared by its devices)
    double op_overhead_us;         // fixed cost of one op (a kernel launch, an OpenMP region)
    double intra_node_gbs;         // collective bus bandwidth inside a node, GB/s per device
    double intra_node_p2p_gbs;     // point-to-point inside a node, GB/s
    double intra_node_latency_us;  // per collective or message inside a node
    double inter_node_gbs;         // network bandwidth of one node, GB/s (all its devices share it)
    double inter_node_latency_us;
    double comm_overlap;           // 0..1: how much of overlappable communication hides behind
                                   // compute (1: all of it; CPU ranks progress MPI only inside calls)
} Machine;

// Reads a profile; false with "FILE:LINE: what" in err on any problem.
bool machine_read(const char *path, Machine *m, char *err, int err_len);

#endif
