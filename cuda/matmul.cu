// The linear layers on cuBLASLt: bf16 (or fp32) operands, fp32 compute and
// accumulation; the weight gradient accumulates into fp32 (beta = 1).
//
// Row-major (N, in) · (out, in)ᵀ products are column-major products of the
// same memory: a row-major (r, c) matrix is a column-major (c, r) one.  So
//   y  (N, out)  = x · wᵀ   is  Yc (out × N)  = Wcᵀ · Xc      (TN)
//   dx (N, in)   = dy · w   is  dXc (in × N)  = Wc · dYc      (NN)
//   dw (out, in) += dyᵀ · x is  dWc (in × out) += Xc · dYcᵀ   (NT)
// with Wc (in × out, ld in), Xc (in × N, ld in), dYc (out × N, ld out).
//
// Each distinct product (shape, transposes, types, pointer alignments) gets a
// plan once: descriptors and the heuristic's first algorithm, cached; one
// 32 MiB workspace serves them all.  A product for which the heuristic has no
// algorithm falls back to cublasGemmEx (same types, CUBLAS_COMPUTE_32F: no
// TF32 either), with a warning.
#include "common.cuh"

#include <string.h>

#include <unordered_map>

#include <cublasLt.h>
#include <cublas_v2.h>

// D (m × n) = alpha · op(A) · op(B) + beta · D, column-major.
struct Gemm {
    bool ta, tb;              // op(A) = Aᵀ, op(B) = Bᵀ
    int m, n, k;
    const void *a, *b;
    void *d;
    int lda, ldb, ldd;
    bool ab_bf16;             // A and B are bf16 (else fp32)
    bool d_bf16;              // D is bf16 (else fp32)
    float beta;               // 0 (overwrite) or 1 (accumulate)
};

#define CUBLAS_CHECK(call)                                                                  \
    do {                                                                                    \
        cublasStatus_t st_ = (call);                                                        \
        if (st_ != CUBLAS_STATUS_SUCCESS)                                                   \
            cuda_fail("cuBLASLt", #call, __FILE__, __LINE__, cublasLtGetStatusString(st_)); \
    } while (0)

static cublasLtHandle_t lt;
static cublasHandle_t legacy;   // cublasGemmEx, for products cuBLASLt has no algorithm for
static void *workspace;
static const size_t WORKSPACE_BYTES = CUDA_MATMUL_WORKSPACE_BYTES;   // (ops.h)

struct PlanKey {
    int m, n, k, lda, ldb, ldd;
    uint8_t ta, tb, ab_bf16, d_bf16, beta_one;
    uint16_t align;           // four 4-bit log2 alignments (a, b, d) packed
    bool operator==(const PlanKey &o) const { return memcmp(this, &o, sizeof o) == 0; }
};

struct PlanKeyHash {
    size_t operator()(const PlanKey &k) const {
        const unsigned char *p = reinterpret_cast<const unsigned char *>(&k);
        size_t h = 1469598103934665603ull;
        for (size_t i = 0; i < sizeof k; i++) h = (h ^ p[i]) * 1099511628211ull;
        return h;
    }
};

struct Plan {
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t a, b, d;
    cublasLtMatmulAlgo_t algo;
    bool use_legacy;
};

static std::unordered_map<PlanKey, Plan, PlanKeyHash> *plans;

// log2 of the pointer's alignment, at most 256 bytes.
static unsigned align_log2(const void *p) {
    uintptr_t v = (uintptr_t)p;
    unsigned l = 0;
    while (l < 8 && !(v & ((uintptr_t)1 << l))) l++;
    return l;
}

static const Plan &plan_for(const Gemm &g) {
    PlanKey key;
    memset(&key, 0, sizeof key);
    key.m = g.m, key.n = g.n, key.k = g.k, key.lda = g.lda, key.ldb = g.ldb, key.ldd = g.ldd;
    key.ta = g.ta, key.tb = g.tb, key.ab_bf16 = g.ab_bf16, key.d_bf16 = g.d_bf16;
    key.beta_one = g.beta != 0.0f;
    unsigned la = align_log2(g.a), lb = align_log2(g.b), ld = align_log2(g.d);
    key.align = (uint16_t)(la | lb << 4 | ld << 8);
    auto it = plans->find(key);
    if (it != plans->end()) return it->second;

    Plan p;
    cudaDataType ab = g.ab_bf16 ? CUDA_R_16BF : CUDA_R_32F, dt = g.d_bf16 ? CUDA_R_16BF : CUDA_R_32F;
    CUBLAS_CHECK(cublasLtMatmulDescCreate(&p.desc, CUBLAS_COMPUTE_32F, CUDA_R_32F));
    cublasOperation_t opa = g.ta ? CUBLAS_OP_T : CUBLAS_OP_N, opb = g.tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &opa, sizeof opa));
    CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &opb, sizeof opb));
    // Stored shapes: op(A) is m × k, op(B) is k × n.
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.a, ab, g.ta ? g.k : g.m, g.ta ? g.m : g.k, g.lda));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.b, ab, g.tb ? g.n : g.k, g.tb ? g.k : g.n, g.ldb));
    CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&p.d, dt, g.m, g.n, g.ldd));

    cublasLtMatmulPreference_t pref;
    CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = WORKSPACE_BYTES;
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                      &ws, sizeof ws));
    uint32_t al[3] = {1u << la, 1u << lb, 1u << ld};
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &al[0], sizeof al[0]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &al[1], sizeof al[1]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &al[2], sizeof al[2]));
    CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(
        pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &al[2], sizeof al[2]));
    cublasLtMatmulHeuristicResult_t result[4];
    int found = 0;
    CUBLAS_CHECK(cublasLtMatmulAlgoGetHeuristic(lt, p.desc, p.a, p.b, p.d, p.d, pref, 4, result,
                                                &found));
    CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    int pick = -1;
    for (int i = 0; i < found && pick < 0; i++)
        if (result[i].state == CUBLAS_STATUS_SUCCESS && result[i].workspaceSize <= WORKSPACE_BYTES)
            pick = i;
    p.use_legacy = pick < 0;
    if (pick >= 0) p.algo = result[pick].algo;
    else
        warn("cuBLASLt has no algorithm for the %s product %c%c m %d n %d k %d (lda %d ldb %d "
             "ldd %d, alignments %u/%u/%u bytes) on %s: using cublasGemmEx",
             g.ab_bf16 ? "bf16" : "fp32", g.ta ? 'T' : 'N', g.tb ? 'T' : 'N', g.m, g.n, g.k,
             g.lda, g.ldb, g.ldd, al[0], al[1], al[2], g_cuda.prop.name);
    return plans->emplace(key, p).first->second;
}

static void gemm_run(const Gemm &g) {
    const Plan &p = plan_for(g);
    float alpha = 1.0f, beta = g.beta;
    if (p.use_legacy) {
        cudaDataType ab = g.ab_bf16 ? CUDA_R_16BF : CUDA_R_32F, dt = g.d_bf16 ? CUDA_R_16BF : CUDA_R_32F;
        CUBLAS_CHECK(cublasGemmEx(legacy, g.ta ? CUBLAS_OP_T : CUBLAS_OP_N,
                                  g.tb ? CUBLAS_OP_T : CUBLAS_OP_N, g.m, g.n, g.k, &alpha, g.a, ab,
                                  g.lda, g.b, ab, g.ldb, &beta, g.d, dt, g.ldd, CUBLAS_COMPUTE_32F,
                                  CUBLAS_GEMM_DEFAULT));
        return;
    }
    CUBLAS_CHECK(cublasLtMatmul(lt, p.desc, &alpha, g.a, p.a, g.b, p.b, &beta, g.d, p.d, g.d, p.d,
                                &p.algo, workspace, WORKSPACE_BYTES, g_cuda.stream));
}

void matmul_init(void) {
    CUBLAS_CHECK(cublasLtCreate(&lt));
    CUBLAS_CHECK(cublasCreate(&legacy));
    CUBLAS_CHECK(cublasSetStream(legacy, g_cuda.stream));
    plans = new std::unordered_map<PlanKey, Plan, PlanKeyHash>();
    workspace = cuda_device_alloc(WORKSPACE_BYTES);
}

// y (N, out) = x (N, in) · w (out, in)ᵀ
void matmul_linear_forward(void *y, const void *x, const void *w, int N, int in, int out) {
    if (N == 0 || out == 0) return;
    Gemm g = {true, false, out, N, in, w, x, y, in, in, out, g_cuda.bf16, g_cuda.bf16, 0.0f};
    gemm_run(g);
}

// dx (N, in) = dy (N, out) · w (out, in), unless dx is NULL;
// dw (out, in) += dy (N, out)ᵀ · x (N, in), in fp32.
void matmul_linear_backward(void *dx, float *dw, const void *dy, const void *x, const void *w,
                            int N, int in, int out) {
    if (N == 0 || out == 0 || in == 0) return;
    Gemm gw = {false, true, in, out, N, x, dy, dw, in, out, in, g_cuda.bf16, false, 1.0f};
    gemm_run(gw);
    if (dx) {   // after dw: dx may overwrite x
        Gemm gx = {false, false, in, N, out, w, dy, dx, in, out, in, g_cuda.bf16, g_cuda.bf16,
                   0.0f};
        gemm_run(gx);
    }
}
