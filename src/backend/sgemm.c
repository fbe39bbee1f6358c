// sgemm.h: cblas_sgemm (OpenBLAS, BLIS), or oneDNN's dnnl_sgemm with -DLLAMA_ONEDNN.
#include "backend/sgemm.h"

#ifdef LLAMA_ONEDNN
#include <dnnl.h>

#include "core/util.h"
#else
#include <cblas.h>
#endif

void sgemm(bool trans_a, bool trans_b, int M, int N, int K, float alpha, const float *A, int lda,
           const float *B, int ldb, float beta, float *C, int ldc) {
#ifdef LLAMA_ONEDNN
    dnnl_status_t st = dnnl_sgemm(trans_a ? 'T' : 'N', trans_b ? 'T' : 'N', M, N, K, alpha, A,
                                  lda, B, ldb, beta, C, ldc);
    if (st != dnnl_success)
        fatal("oneDNN: dnnl_sgemm of (%d × %d) · (%d × %d) failed with status %d; rebuild with "
              "make BLAS=openblas", M, K, K, N, (int)st);
#else
    cblas_sgemm(CblasRowMajor, trans_a ? CblasTrans : CblasNoTrans,
                trans_b ? CblasTrans : CblasNoTrans, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
#endif
}

const char *sgemm_library(void) {
#if defined(LLAMA_ONEDNN)
    return "oneDNN";
#elif defined(LLAMA_BLIS)
    return "BLIS";
#else
    return "OpenBLAS";
#endif
}
