// The CPU backend's one matrix product, by the BLAS chosen at build time
// (make BLAS=onednn, the default; openblas; blis): row-major
// C (M, N) = alpha · op(A) · op(B) + beta · C, op(X) = Xᵀ when its flag is set;
// A is (M, K) after op, B (K, N), rows lda, ldb, ldc elements apart.  Called
// inside an OpenMP parallel region it runs on the calling thread.
#ifndef LLAMA_SGEMM_H
#define LLAMA_SGEMM_H

#include <stdbool.h>

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc);
// The library behind sgemm, for the start-up line and the benchmarks.
const char *sgemm_library(void);

// -x bf16 on the CPU: sgemm with alpha 1 and beta 0 or 1, A and B rounded to
// bf16 (to nearest even), products accumulated and C kept in fp32, as on the
// GPU.  oneDNN's bf16 matmul; the rounded copies live in buffers of its own,
// so not from several threads at once.
bool sgemm_bf16_available(void);   // a oneDNN build on a CPU with AVX-512 BF16 (or AMX)
// Why sgemm_bf16 is not available here, in a phrase (NULL when it is).
const char *sgemm_bf16_missing(void);
void sgemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc);

#endif
