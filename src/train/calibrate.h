// Micro-benchmarks behind jobs/calibrate.sh (llama-calibrate): the rates a
// machine profile (train/machine.h) holds, measured on a backend and a
// communicator, counted the way the planner (train/plan.c) counts work.
// Each figure is the best of a few timed repetitions after one warm-up.
#ifndef LLAMA_CALIBRATE_H
#define LLAMA_CALIBRATE_H

#include "backend/ops.h"
#include "comm/comm.h"

// TFLOP/s of a linear layer's forward and backward passes on (N, in) → (N, out):
// 6·N·in·out FLOPs.
double calibrate_matmul(const Ops *ops, int N, int in, int out);
// Causal attention TFLOP/s, FlashAttention's count: forward 2·B·T·T·nh·hd,
// backward 2.5 times that.
void calibrate_attention(const Ops *ops, int B, int T, int nh, int nkv, int hd, double *fwd,
                         double *bwd);
// GB/s of RMSNorm, SwiGLU and residual adds forward on N rows of width D
// (SwiGLU: F), bytes read and written once.
double calibrate_elementwise(const Ops *ops, int N, int D, int F);
// GB/s of the optimizer's step on n parameters as the planner counts it:
// AdamW (weights, moments, gradient: 32 bytes and a compute copy's act bytes
// per parameter), the gradient norm and zeroing the gradients (4 bytes each).
double calibrate_optimizer(const Ops *ops, size_t n);
// Microseconds of an op on 64 elements: the fixed cost of any op.
double calibrate_op_overhead(const Ops *ops);
// Collective over c: all-reduce bus bandwidth (2·(n−1)/n·bytes per second, as
// nccl-tests count it) of `bytes`, and the latency of an 8-byte all-reduce (µs).
void calibrate_allreduce(const Comm *c, size_t bytes, double *gbs, double *latency_us);
// Ranks 0 and 1 of c: one-way point-to-point GB/s of `bytes` (ping-pong) and
// the latency of an 8-byte message (µs); other ranks wait.
void calibrate_p2p(const Comm *c, size_t bytes, double *gbs, double *latency_us);

#endif
