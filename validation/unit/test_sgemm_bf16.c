// The CPU's bf16 product (src/backend/sgemm.c: -x bf16 --device cpu) against
// a double-precision product of the same operands rounded to bf16 here
// (bf16_round): every element within 1e-5 of Σ|a·b| (fp32 accumulation
// only), for both transpositions of each operand, leading dimensions wider
// than the rows, beta 0 and 1 (accumulating into C), odd shapes, and a shape
// met twice (the cached primitive on new data).  The same product of the
// unrounded operands must differ by far more, or the test could not tell a
// bf16 product from an fp32 one.  Skipped where the build or the CPU has no
// bf16 matmul (not oneDNN, no AVX-512 BF16).
#include <math.h>
#include <stdlib.h>

#include "backend/sgemm.h"
#include "check.h"
#include "core/bf16.h"
#include "core/rng.h"

typedef struct {
    int M, N, K;
    bool ta, tb;
    float beta;
} Case;

// rows × cols uniform in (−1, 1), leading dimension ld (the padding NaN: never read).
static float *random_matrix(int rows, int cols, int ld, uint64_t key) {
    float *x = malloc((size_t)rows * ld * sizeof *x);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < ld; c++)
            x[(size_t)r * ld + c] = c < cols ? (float)(2 * rng_uniform(key, (uint64_t)r * ld + c) - 1)
                                             : NAN;
    return x;
}

// op(X)[i][j] of X stored row-major with leading dimension ld.
static double at(const float *x, int ld, bool trans, int i, int j, bool round) {
    float v = trans ? x[(size_t)j * ld + i] : x[(size_t)i * ld + j];
    return round ? bf16_round(v) : v;
}

// Largest |C − reference| / Σ|a·b| over the elements, against the rounded
// operands' product (round) or the unrounded ones'.
static double worst_error(const Case *c, const float *A, int lda, const float *B, int ldb,
                          const float *C0, const float *C, bool round) {
    double worst = 0;
    for (int i = 0; i < c->M; i++)
        for (int j = 0; j < c->N; j++) {
            double ref = c->beta * C0[(size_t)i * c->N + j], mag = fabs(ref) + 1e-30;
            for (int k = 0; k < c->K; k++) {
                double p = at(A, lda, c->ta, i, k, round) * at(B, ldb, c->tb, k, j, round);
                ref += p;
                mag += fabs(p);
            }
            double e = fabs(C[(size_t)i * c->N + j] - ref) / mag;
            if (!(e <= worst)) worst = e;   // NaN counts as worst
        }
    return worst;
}

static void run_case(const Case *c, uint64_t seed) {
    int a_rows = c->ta ? c->K : c->M, a_cols = c->ta ? c->M : c->K;
    int b_rows = c->tb ? c->N : c->K, b_cols = c->tb ? c->K : c->N;
    int lda = a_cols + 3, ldb = b_cols + 5;
    float *A = random_matrix(a_rows, a_cols, lda, seed), *B = random_matrix(b_rows, b_cols, ldb, seed + 1);
    float *C0 = random_matrix(c->M, c->N, c->N, seed + 2), *C = malloc((size_t)c->M * c->N * sizeof *C);
    for (size_t i = 0; i < (size_t)c->M * c->N; i++) C[i] = C0[i];
    sgemm_bf16(c->ta, c->tb, c->M, c->N, c->K, A, lda, B, ldb, c->beta, C, c->N);
    double rounded = worst_error(c, A, lda, B, ldb, C0, C, true);
    double exact = worst_error(c, A, lda, B, ldb, C0, C, false);
    CHECK(rounded <= 1e-5, "M %d N %d K %d ta %d tb %d beta %g: error %.3g of Σ|a·b| against the "
          "bf16 operands' product (at most 1e-5)", c->M, c->N, c->K, c->ta, c->tb, c->beta, rounded);
    CHECK(exact > 1e-4, "M %d N %d K %d: error %.3g against the fp32 operands' product: the "
          "operands were not rounded to bf16", c->M, c->N, c->K, exact);
    free(A), free(B), free(C0), free(C);
}

int main(void) {
    check_begin("bf16 product = the bf16-rounded operands' product in fp32 (both transpositions, "
                "beta 0 and 1, wide leading dimensions, odd shapes, a shape met twice)");
    if (!sgemm_bf16_available()) {
        check_skip("no bf16 matmul in this build or on this CPU (oneDNN, AVX-512 BF16)");
        return 0;
    }
    const int shapes[][3] = {{37, 53, 70}, {128, 96, 64}, {1, 17, 5}, {64, 384, 256}};
    uint64_t seed = 11;
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++)
        for (int t = 0; t < 4; t++)
            for (int acc = 0; acc < 2; acc++) {
                Case c = {shapes[s][0], shapes[s][1], shapes[s][2], t & 1, t >> 1, (float)acc};
                run_case(&c, seed += 3);
            }
    Case again = {37, 53, 70, false, true, 1.0f};
    run_case(&again, 1000);
    check_end();
    return check_exit_code();
}
