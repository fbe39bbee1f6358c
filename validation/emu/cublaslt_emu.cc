// The subset of cuBLASLt and cuBLAS that cuda/matmul.cu calls, for the CPU
// emulator (see cuda_emu.h): descriptors kept on the host, the heuristic
// offering one algorithm that needs no workspace, and every product
// D = alpha · op(A) · op(B) + beta · C a plain column-major loop over host
// memory (the emulated device memory), fp32 accumulation in the order of k,
// bf16 or fp32 operands, run when it is queued on its stream.  Built against
// the toolkit's own cublasLt.h and cublas_v2.h, so the signatures are the
// library's; what matmul.cu does not use is refused (CUBLAS_STATUS_NOT_SUPPORTED).
#include "cuda_emu.h"

#include <vector>

#include <stdlib.h>
#include <string.h>

#include <cublasLt.h>
#include <cublas_v2.h>

namespace {

struct LtHandle {
    int unused;
};

// cublas_v2's handle: the stream its products run on.
struct LegacyHandle {
    cudaStream_t stream;
};

struct Desc {
    cublasComputeType_t compute;
    cudaDataType_t scale;
    cublasOperation_t op_a, op_b;
};

struct Layout {
    cudaDataType type;
    uint64_t rows, cols;
    int64_t ld;
};

// One operand: column-major, element (i, j) at i + j · ld.
struct Operand {
    const void *p;
    cudaDataType type;
    int64_t ld;
};

struct Product {
    bool ta, tb;   // op(A) = Aᵀ, op(B) = Bᵀ
    int64_t m, n, k;
    Operand a, b, c;
    void *d;
    cudaDataType d_type;
    int64_t ldd;
    float alpha, beta;
};

template <class T> T *mine(void *handle) { return reinterpret_cast<T *>(handle); }

bool supported(cudaDataType t) { return t == CUDA_R_32F || t == CUDA_R_16BF; }

float get(const Operand &o, int64_t i, int64_t j) {
    size_t at = (size_t)(i + j * o.ld);
    if (o.type == CUDA_R_16BF) return __bfloat162float(((const __nv_bfloat16 *)o.p)[at]);
    return ((const float *)o.p)[at];
}

void put(void *d, cudaDataType t, size_t at, float v) {
    if (t == CUDA_R_16BF) ((__nv_bfloat16 *)d)[at] = __float2bfloat16_rn(v);
    else ((float *)d)[at] = v;
}

// The operands are first converted to fp32 rows of op(A) (m × k) and columns
// of op(B) (n × k), so the inner loop reads contiguous floats; the sums run
// over l in the same order as before, so the results are the same bits.
void run(const Product &g) {
    std::vector<float> a((size_t)(g.m * g.k)), b((size_t)(g.n * g.k));
    for (int64_t i = 0; i < g.m; i++)
        for (int64_t l = 0; l < g.k; l++) a[(size_t)(i * g.k + l)] = g.ta ? get(g.a, l, i) : get(g.a, i, l);
    for (int64_t j = 0; j < g.n; j++)
        for (int64_t l = 0; l < g.k; l++) b[(size_t)(j * g.k + l)] = g.tb ? get(g.b, j, l) : get(g.b, l, j);
    for (int64_t j = 0; j < g.n; j++)
        for (int64_t i = 0; i < g.m; i++) {
            const float *x = &a[(size_t)(i * g.k)], *y = &b[(size_t)(j * g.k)];
            float s = 0.0f;
            for (int64_t l = 0; l < g.k; l++) s += x[l] * y[l];
            s *= g.alpha;
            if (g.beta != 0.0f) s += g.beta * get(g.c, i, j);
            put(g.d, g.d_type, (size_t)(i + j * g.ldd), s);
        }
}

// The types the products support: A and B alike, C and D alike, bf16 or
// fp32, fp32 compute and scale.
bool types_ok(cublasComputeType_t compute, cudaDataType scale, cudaDataType ab_a,
              cudaDataType ab_b, cudaDataType c, cudaDataType d) {
    return compute == CUBLAS_COMPUTE_32F && scale == CUDA_R_32F && ab_a == ab_b &&
           supported(ab_a) && c == d && supported(d);
}

// The stored shape of op(X) (rows × cols) is `rows` × `cols` after the transpose.
bool shape_ok(const Layout *x, bool t, uint64_t rows, uint64_t cols) {
    return (t ? x->cols : x->rows) == rows && (t ? x->rows : x->cols) == cols &&
           x->ld >= (int64_t)(x->rows ? x->rows : 1);
}

cublasStatus_t check(const Desc *o, const Layout *a, const Layout *b, const Layout *c,
                     const Layout *d) {
    if (!types_ok(o->compute, o->scale, a->type, b->type, c->type, d->type))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    bool ta = o->op_a == CUBLAS_OP_T, tb = o->op_b == CUBLAS_OP_T;
    uint64_t k = ta ? a->rows : a->cols;
    if (!shape_ok(a, ta, d->rows, k) || !shape_ok(b, tb, k, d->cols) ||
        !shape_ok(c, false, d->rows, d->cols) || !shape_ok(d, false, d->rows, d->cols) ||
        c->ld != d->ld)
        return CUBLAS_STATUS_INVALID_VALUE;
    return CUBLAS_STATUS_SUCCESS;
}

bool op_ok(cublasOperation_t op) { return op == CUBLAS_OP_N || op == CUBLAS_OP_T; }

}   // namespace

extern "C" {

cublasStatus_t cublasLtCreate(cublasLtHandle_t *handle) {
    *handle = reinterpret_cast<cublasLtHandle_t>(new LtHandle());
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasLtGetStatusString(cublasStatus_t status) {
    switch (status) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_INVALID_VALUE: return "invalid value (emulated cuBLASLt)";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "not supported by the emulated cuBLASLt";
    default: return "emulated cuBLASLt error";
    }
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *desc,
                                        cublasComputeType_t compute, cudaDataType_t scale) {
    Desc *o = new Desc{compute, scale, CUBLAS_OP_N, CUBLAS_OP_N};
    *desc = reinterpret_cast<cublasLtMatmulDesc_t>(o);
    return CUBLAS_STATUS_SUCCESS;
}

// TRANSA and TRANSB only.
cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc,
                                              cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size) {
    Desc *o = mine<Desc>(desc);
    if (attr != CUBLASLT_MATMUL_DESC_TRANSA && attr != CUBLASLT_MATMUL_DESC_TRANSB)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    cublasOperation_t op;
    if (size != sizeof op) return CUBLAS_STATUS_INVALID_VALUE;
    memcpy(&op, buf, sizeof op);
    if (!op_ok(op)) return CUBLAS_STATUS_NOT_SUPPORTED;
    (attr == CUBLASLT_MATMUL_DESC_TRANSA ? o->op_a : o->op_b) = op;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *layout, cudaDataType type,
                                          uint64_t rows, uint64_t cols, int64_t ld) {
    Layout *l = new Layout{type, rows, cols, ld};
    *layout = reinterpret_cast<cublasLtMatrixLayout_t>(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *pref) {
    *pref = reinterpret_cast<cublasLtMatmulPreference_t>(new LtHandle());
    return CUBLAS_STATUS_SUCCESS;
}

// The workspace limit and the alignments: no product here needs either.
cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t,
                                                    cublasLtMatmulPreferenceAttributes_t attr,
                                                    const void *, size_t) {
    switch (attr) {
    case CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES:
    case CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES: return CUBLAS_STATUS_SUCCESS;
    default: return CUBLAS_STATUS_NOT_SUPPORTED;
    }
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t pref) {
    delete mine<LtHandle>(pref);
    return CUBLAS_STATUS_SUCCESS;
}

// One algorithm (the loop) for every product the emulator supports.
cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t, cublasLtMatmulDesc_t desc,
                                              cublasLtMatrixLayout_t a, cublasLtMatrixLayout_t b,
                                              cublasLtMatrixLayout_t c, cublasLtMatrixLayout_t d,
                                              cublasLtMatmulPreference_t, int requested,
                                              cublasLtMatmulHeuristicResult_t results[],
                                              int *found) {
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t st = check(mine<Desc>(desc), mine<Layout>(a), mine<Layout>(b),
                              mine<Layout>(c), mine<Layout>(d));
    *found = st == CUBLAS_STATUS_SUCCESS;
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    memset(&results[0], 0, sizeof results[0]);
    results[0].state = CUBLAS_STATUS_SUCCESS;
    results[0].wavesCount = 1.0f;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t, cublasLtMatmulDesc_t desc, const void *alpha,
                              const void *A, cublasLtMatrixLayout_t a_layout, const void *B,
                              cublasLtMatrixLayout_t b_layout, const void *beta, const void *C,
                              cublasLtMatrixLayout_t c_layout, void *D,
                              cublasLtMatrixLayout_t d_layout, const cublasLtMatmulAlgo_t *,
                              void *, size_t, cudaStream_t stream) {
    const Desc *o = mine<Desc>(desc);
    const Layout *a = mine<Layout>(a_layout), *b = mine<Layout>(b_layout),
                 *c = mine<Layout>(c_layout), *d = mine<Layout>(d_layout);
    cublasStatus_t st = check(o, a, b, c, d);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    bool ta = o->op_a == CUBLAS_OP_T;
    Product g = {ta, o->op_b == CUBLAS_OP_T, (int64_t)d->rows, (int64_t)d->cols,
                 (int64_t)(ta ? a->rows : a->cols), {A, a->type, a->ld}, {B, b->type, b->ld},
                 {C, c->type, c->ld}, D, d->type, d->ld, *(const float *)alpha,
                 *(const float *)beta};
    emu_stream_drain(stream);
    run(g);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    *handle = reinterpret_cast<cublasHandle_t>(new LegacyHandle{nullptr});
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    mine<LegacyHandle>(handle)->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType a_type, int lda, const void *B,
                            cudaDataType b_type, int ldb, const void *beta, void *C,
                            cudaDataType c_type, int ldc, cublasComputeType_t compute,
                            cublasGemmAlgo_t) {
    if (!types_ok(compute, CUDA_R_32F, a_type, b_type, c_type, c_type) || !op_ok(transa) ||
        !op_ok(transb))
        return CUBLAS_STATUS_NOT_SUPPORTED;
    if (m < 0 || n < 0 || k < 0) return CUBLAS_STATUS_INVALID_VALUE;
    Product g = {transa == CUBLAS_OP_T, transb == CUBLAS_OP_T, m, n, k, {A, a_type, lda},
                 {B, b_type, ldb}, {C, c_type, ldc}, C, c_type, ldc, *(const float *)alpha,
                 *(const float *)beta};
    emu_stream_drain(mine<LegacyHandle>(handle)->stream);
    run(g);
    return CUBLAS_STATUS_SUCCESS;
}

}   // extern "C"
