// The CPU backend's one matrix product, by the BLAS chosen at build time
// (make BLAS=openblas, the default; blis; onednn): row-major
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

#endif
