// sgemm at the shapes one training step of a preset runs (each linear's
// forward y = x·wᵀ, backward dx = dy·w and dw += dyᵀ·x), timed with the
// BLAS it is linked against: OpenBLAS or BLIS through CBLAS, oneDNN through
// dnnl_sgemm (-DUSE_DNNL).  jobs/bench-blas.sh builds and runs it for each.
//   blas_compare N D QKV F VOCAB REPEATS  → GFLOP/s per shape and in total
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#ifdef USE_DNNL
#include <dnnl.h>
#else
#include <cblas.h>
#endif

static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + 1e-9 * t.tv_nsec;
}

// C (m, n) = alpha · op(A) · op(B) + beta · C, row-major.
static void gemm(int ta, int tb, int m, int n, int k, const float *A, int lda, const float *B,
                 int ldb, float beta, float *C, int ldc) {
#ifdef USE_DNNL
    if (dnnl_sgemm(ta ? 'T' : 'N', tb ? 'T' : 'N', m, n, k, 1.0f, A, lda, B, ldb, beta, C, ldc) !=
        dnnl_success) {
        fprintf(stderr, "dnnl_sgemm failed\n");
        exit(1);
    }
#else
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, m,
                n, k, 1.0f, A, lda, B, ldb, beta, C, ldc);
#endif
}

static float *filled(size_t n) {
    float *x = malloc(n * sizeof(float));
    if (!x) exit(1);
    for (size_t i = 0; i < n; i++) x[i] = (float)((i * 2654435761u) % 1000) / 1000.0f - 0.5f;
    return x;
}

// One linear of `in` → `out` on N rows: forward, dx, dw; seconds per pass of all three.
static double linear(int N, int in, int out, int reps) {
    float *x = filled((size_t)N * in), *w = filled((size_t)out * in), *y = filled((size_t)N * out);
    float *dx = filled((size_t)N * in), *dw = filled((size_t)out * in);
    gemm(0, 1, N, out, in, x, in, w, in, 0.0f, y, out);   // warm-up
    double t0 = now();
    for (int r = 0; r < reps; r++) {
        gemm(0, 1, N, out, in, x, in, w, in, 0.0f, y, out);    // y = x · wᵀ
        gemm(0, 0, N, in, out, y, out, w, in, 0.0f, dx, in);   // dx = dy · w
        gemm(1, 0, out, in, N, y, out, x, in, 1.0f, dw, in);   // dw += dyᵀ · x
    }
    double s = (now() - t0) / reps;
    free(x), free(w), free(y), free(dx), free(dw);
    return s;
}

int main(int argc, char **argv) {
    if (argc != 7) {
        fprintf(stderr, "usage: blas_compare N D QKV F VOCAB REPEATS\n");
        return 2;
    }
    int N = atoi(argv[1]), D = atoi(argv[2]), Q = atoi(argv[3]), F = atoi(argv[4]);
    int V = atoi(argv[5]), reps = atoi(argv[6]);
    int shapes[5][2] = {{D, Q}, {D, D}, {D, 2 * F}, {F, D}, {D, V}};
    const char *names[5] = {"qkv", "attn-out", "gate-up", "down", "head"};
    double flops = 0, secs = 0;
    for (int s = 0; s < 5; s++) {
        double t = linear(N, shapes[s][0], shapes[s][1], reps), f = 6.0 * N * shapes[s][0] * shapes[s][1];
        printf("%-9s %5d -> %-5d %8.2f GFLOP/s\n", names[s], shapes[s][0], shapes[s][1], f / t / 1e9);
        flops += f, secs += t;
    }
    printf("all       %8.2f GFLOP/s\n", flops / secs / 1e9);
    return 0;
}
