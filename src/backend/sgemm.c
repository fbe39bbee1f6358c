// sgemm.h: cblas_sgemm (OpenBLAS, BLIS), or oneDNN's dnnl_sgemm with
// -DLLAMA_ONEDNN; there also the bf16 product, on oneDNN's matmul primitive.
#include "backend/sgemm.h"

#include "core/util.h"

#ifdef LLAMA_ONEDNN
#include <dnnl.h>
#include <stdint.h>
#include <stdlib.h>

#include "core/bf16.h"
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

#ifdef LLAMA_ONEDNN

// ---- bf16 operands on oneDNN's matmul ----

#define DNNL_CHECK(call, what)                                                            \
    do {                                                                                  \
        dnnl_status_t st_ = (call);                                                       \
        if (st_ != dnnl_success)                                                          \
            fatal("oneDNN: %s failed with status %d (bf16 matmul; run with -x fp32)",     \
                  what, (int)st_);                                                        \
    } while (0)

// One product shape's primitive and its memory objects (data handles set per call).
typedef struct {
    int M, N, K, ldc;
    bool trans_a, trans_b, accumulate;
    dnnl_primitive_t prim;
    dnnl_memory_t a, b, c;
} Bf16Gemm;

#define BF16_SHAPES 64   // a model has a dozen shapes (forward, ∂x, ∂w of each linear)

static struct {
    dnnl_engine_t engine;
    dnnl_stream_t stream;
    Bf16Gemm shapes[BF16_SHAPES];
    int n_shapes;
    uint16_t *a, *b;      // the operands in bf16, as stored (row-major, compact)
    size_t a_cap, b_cap;  // elements
} g_bf16;

bool sgemm_bf16_available(void) {
    dnnl_cpu_isa_t isa = dnnl_get_effective_cpu_isa();
    return (isa & dnnl_cpu_isa_avx512_core_bf16) == dnnl_cpu_isa_avx512_core_bf16;
}

const char *sgemm_bf16_missing(void) {
    return sgemm_bf16_available() ? NULL : "oneDNN finds no AVX-512 BF16 (or AMX) on this CPU";
}

static void bf16_start(void) {
    if (g_bf16.engine) return;
    DNNL_CHECK(dnnl_engine_create(&g_bf16.engine, dnnl_cpu, 0), "engine_create");
    DNNL_CHECK(dnnl_stream_create(&g_bf16.stream, g_bf16.engine, dnnl_stream_default_flags),
               "stream_create");
}

// A rows × cols matrix (op(X) of rows × cols) stored row-major with leading
// dimension ld, transposed or not: its description on the compact bf16 copy.
static dnnl_memory_desc_t operand_desc(int rows, int cols, bool trans, dnnl_data_type_t t) {
    dnnl_memory_desc_t md;
    dnnl_dims_t dims = {rows, cols};
    dnnl_dims_t strides = {trans ? 1 : cols, trans ? rows : 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&md, 2, dims, t, strides), "memory_desc");
    return md;
}

static Bf16Gemm *shape_new(int M, int N, int K, int ldc, bool ta, bool tb, bool accumulate) {
    if (g_bf16.n_shapes == BF16_SHAPES)
        fatal("bf16 matmul: more than %d product shapes (internal limit)", BF16_SHAPES);
    Bf16Gemm *s = &g_bf16.shapes[g_bf16.n_shapes++];
    *s = (Bf16Gemm){M, N, K, ldc, ta, tb, accumulate, NULL, NULL, NULL, NULL};
    dnnl_memory_desc_t a = operand_desc(M, K, ta, dnnl_bf16), b = operand_desc(K, N, tb, dnnl_bf16);
    dnnl_memory_desc_t c;
    dnnl_dims_t dims = {M, N}, strides = {ldc, 1};
    DNNL_CHECK(dnnl_memory_desc_init_by_strides(&c, 2, dims, dnnl_f32, strides), "memory_desc");
    dnnl_matmul_desc_t desc;
    DNNL_CHECK(dnnl_matmul_desc_init(&desc, &a, &b, NULL, &c), "matmul_desc_init");
    dnnl_primitive_attr_t attr;
    dnnl_post_ops_t post;
    DNNL_CHECK(dnnl_primitive_attr_create(&attr), "primitive_attr_create");
    DNNL_CHECK(dnnl_post_ops_create(&post), "post_ops_create");
    if (accumulate) DNNL_CHECK(dnnl_post_ops_append_sum(post, 1.0f), "post_ops_append_sum");
    DNNL_CHECK(dnnl_primitive_attr_set_post_ops(attr, post), "attr_set_post_ops");
    dnnl_primitive_desc_t pd;
    DNNL_CHECK(dnnl_primitive_desc_create(&pd, &desc, attr, g_bf16.engine, NULL),
               "matmul primitive_desc_create");
    DNNL_CHECK(dnnl_primitive_create(&s->prim, pd), "primitive_create");
    dnnl_primitive_desc_destroy(pd);
    dnnl_post_ops_destroy(post);
    dnnl_primitive_attr_destroy(attr);
    DNNL_CHECK(dnnl_memory_create(&s->a, &a, g_bf16.engine, DNNL_MEMORY_NONE), "memory_create");
    DNNL_CHECK(dnnl_memory_create(&s->b, &b, g_bf16.engine, DNNL_MEMORY_NONE), "memory_create");
    DNNL_CHECK(dnnl_memory_create(&s->c, &c, g_bf16.engine, DNNL_MEMORY_NONE), "memory_create");
    return s;
}

static Bf16Gemm *shape_of(int M, int N, int K, int ldc, bool ta, bool tb, bool accumulate) {
    for (int i = 0; i < g_bf16.n_shapes; i++) {
        Bf16Gemm *s = &g_bf16.shapes[i];
        if (s->M == M && s->N == N && s->K == K && s->ldc == ldc && s->trans_a == ta &&
            s->trans_b == tb && s->accumulate == accumulate)
            return s;
    }
    return shape_new(M, N, K, ldc, ta, tb, accumulate);
}

// rows × cols of x (row-major, leading dimension ld) rounded to bf16 into
// *buf (compact), grown as needed.
static uint16_t *to_bf16(uint16_t **buf, size_t *cap, const float *x, int rows, int cols, int ld) {
    size_t n = (size_t)rows * cols;
    if (n > *cap) {
        free(*buf);
        *buf = xmalloc(n * sizeof **buf);
        *cap = n;
    }
    uint16_t *out = *buf;
#pragma omp parallel for schedule(static)
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            out[(size_t)r * cols + c] = bf16_from_f32(x[(size_t)r * ld + c]);
    return out;
}

void sgemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    if (beta != 0.0f && beta != 1.0f) fatal("bf16 matmul: beta %g (0 or 1 only)", beta);
    bf16_start();
    Bf16Gemm *s = shape_of(M, N, K, ldc, trans_a, trans_b, beta == 1.0f);
    uint16_t *a = to_bf16(&g_bf16.a, &g_bf16.a_cap, A, trans_a ? K : M, trans_a ? M : K, lda);
    uint16_t *b = to_bf16(&g_bf16.b, &g_bf16.b_cap, B, trans_b ? N : K, trans_b ? K : N, ldb);
    DNNL_CHECK(dnnl_memory_set_data_handle(s->a, a), "memory_set_data_handle");
    DNNL_CHECK(dnnl_memory_set_data_handle(s->b, b), "memory_set_data_handle");
    DNNL_CHECK(dnnl_memory_set_data_handle(s->c, C), "memory_set_data_handle");
    dnnl_exec_arg_t args[] = {{DNNL_ARG_SRC, s->a}, {DNNL_ARG_WEIGHTS, s->b}, {DNNL_ARG_DST, s->c}};
    DNNL_CHECK(dnnl_primitive_execute(s->prim, g_bf16.stream, 3, args), "matmul execute");
    DNNL_CHECK(dnnl_stream_wait(g_bf16.stream), "stream_wait");
}

#else

bool sgemm_bf16_available(void) { return false; }

const char *sgemm_bf16_missing(void) {
#ifdef LLAMA_BLIS
    return "this build's BLAS, BLIS, has none; rebuild with make BLAS=onednn (on a CPU with "
           "AVX-512 BF16)";
#else
    return "this build's BLAS, OpenBLAS, has none; rebuild with make BLAS=onednn (on a CPU with "
           "AVX-512 BF16)";
#endif
}

void sgemm_bf16(bool trans_a, bool trans_b, int M, int N, int K, const float *A, int lda,
                const float *B, int ldb, float beta, float *C, int ldc) {
    (void)trans_a, (void)trans_b, (void)M, (void)N, (void)K, (void)A, (void)lda, (void)B;
    (void)ldb, (void)beta, (void)C, (void)ldc;
    fatal("bf16 matmul: %s", sgemm_bf16_missing());
}

#endif
