// Per-op timing (llama-train --profile): a table of ops that calls another
// backend's and adds each call's wall time to a row per kind of op and shape.
// Each timed call ends with the backend's sync, so a device's queued work is
// counted where it was queued (synchronous: a profiled GPU step is slower than
// an unprofiled one, and loses the overlap of communication with compute).
// One profiler per process.
#ifndef LLAMA_OPS_PROFILE_H
#define LLAMA_OPS_PROFILE_H

#include "backend/ops.h"

// One kind of op at one shape: "matmul forward" with in 256, out 768.
typedef struct {
    char kind[40];
    int in, out;        // the matmuls' widths (0 for other ops)
    long long calls;
    double seconds;
    double flops;       // floating-point operations done (0 where not counted)
} OpProfileRow;

// The profiling table around `inner` (kept by the caller; wrapped once).
const Ops *ops_profile_wrap(const Ops *inner);
// Forgets the times so far (after the warm-up steps).
void ops_profile_reset(void);
// The rows so far, the most time first: up to max into out; returns how many.
int ops_profile_rows(OpProfileRow *out, int max);

#endif
