// Launchers of the fused kernels (kernels.cu): device pointers, queued on the
// compute stream; act buffers of the context's type (g_cuda.bf16).
#pragma once

#include <stddef.h>
#include <stdint.h>

extern "C" {
#include "backend/elementwise.h"
}

void kernels_f32_to_bf16(void *dst, const float *src, size_t n);
void kernels_bf16_to_f32(float *dst, const void *src, size_t n);
void kernels_add(void *y, const void *a, const void *b, size_t n);
void kernels_add_f32(float *y, const float *a, const float *b, size_t n);
void kernels_rmsnorm_forward(void *y, float *rstd, const void *x, const void *w, int N, int D,
                             float eps);
void kernels_rmsnorm_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                              const float *rstd, int N, int D);
// sign +1: forward rotation, −1: the inverse (backward pass).
void kernels_rope(void *qkv, const float *cos_t, const float *sin_t, int N, int T, int stride,
                  int n_heads, int hd, float sign);
void kernels_swiglu_forward(void *h, const void *gu, int N, int F);
void kernels_swiglu_backward(void *dgu, const void *dh, const void *gu, int N, int F);
void kernels_embedding_forward(void *x, const int32_t *tokens, const void *table, int N, int D,
                               int vocab_start, int rows);
void kernels_embedding_backward(float *dtable, const void *dx, const int32_t *tokens, int N, int D,
                                int vocab_start, int rows);
void kernels_ce_row_max(float *row_max, const void *logits, int N, int V, int valid);
void kernels_ce_stats(float *stats, const void *logits, const float *row_max,
                      const int32_t *targets, int N, int V, int valid, int vocab_start);
void kernels_ce_loss_grad(float *loss, void *logits, const float *row_max, const float *stats,
                          const int32_t *targets, int N, int V, int valid, int vocab_start,
                          float grad_scale);
// index and value are device arrays (N).
void kernels_argmax(int32_t *index, float *value, const void *logits, int N, int V, int valid,
                    int vocab_start);
// param: NULL, or the new weights in the compute type (bf16 or fp32).
void kernels_adamw(float *w, float *m, float *v, const float *g, void *param, size_t n,
                   AdamwStep a);
// Σ x or Σ x² in double, returned on the host (synchronises the stream).
double kernels_reduce(const float *x, size_t n, bool squares);
void kernels_probe(void);
