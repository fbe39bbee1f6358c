// Causal grouped-query attention of the CPU backend (attention_cpu.c), the
// four .attention_* entries of ops_cpu (the contract is in ops.h).
//
// Flash-style: the forward pass walks tiles of queries and keys with an
// online softmax and keeps, for the backward pass, only the log-sum-exp of
// every (batch, head, query row): state (B, nh, T) fp32, natural log, as the
// CUDA kernels do.  The backward pass (FlashAttention-2) recomputes the
// probabilities tile by tile from q, k and that state.  fp32 throughout;
// scores scaled by 1/sqrt(hd).  The block entries are ring attention's
// (context parallelism): this rank's queries against another rank's keys and
// values, causal on global positions, merged into what earlier blocks left.
#ifndef LLAMA_ATTENTION_CPU_H
#define LLAMA_ATTENTION_CPU_H

#include <stdbool.h>
#include <stddef.h>

#include "backend/ops.h"

// B·nh·T floats: the log-sum-exp of every query row.
size_t attention_cpu_state_bytes(int B, int T, int nh);
// The backward pass's scratch: D = rowsum(dO ∘ O) (B, nh, T), and per OpenMP
// thread (omp_get_max_threads() when it is called) two score tiles and a key
// tile's Kᵀ and Vᵀ.  The forward pass allocates its own (Kᵀ of every KV
// head, B·nkv·hd·T floats, for the call).
size_t attention_cpu_work_bytes(int B, int T, int nh, int hd);
// out (B·T, nh·hd), state (B, nh, T) from qkv (B·T, (nh + 2·nkv)·hd).
void attention_cpu_forward(void *out, void *state, const void *qkv, int B, int T, int nh, int nkv,
                           int hd);
// dqkv (B·T, (nh + 2·nkv)·hd), overwritten, from dout (B·T, nh·hd), the
// forward's qkv, out and state.
void attention_cpu_backward(void *dqkv, void *work, const void *dout, const void *qkv,
                            const void *out, const void *state, int B, int T, int nh, int nkv,
                            int hd);
// The .attention_block_* entries (ops.h).
void attention_cpu_block_forward(void *out, float *lse, const void *qkv, const void *kv,
                                 const AttentionBlock *a, bool first);
void attention_cpu_block_backward(void *dqkv, void *dkv, void *work, const void *dout,
                                  const void *qkv, const void *kv, const void *out,
                                  const float *lse, const AttentionBlock *a);

#endif
