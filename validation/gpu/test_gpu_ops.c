// The CUDA backend against the CPU reference: every op, forward and backward,
// on random inputs, in bf16 and in fp32; a whole model's loss and gradients;
// the NCCL collectives.  Errors are norm-relative per output tensor,
// ‖gpu − cpu‖ / ‖cpu‖: at most 1e-2 in bf16 (the CPU computes in fp32 from
// the same bf16-rounded inputs) and 1e-5 in fp32.  Outputs are poisoned
// (NaN) before each op, so an element the GPU fails to write shows up.
//
// Built twice: against the GPU (test_gpu_ops; every case SKIPs where no GPU
// is visible) and against the CPU emulator of the same kernel code
// (test_gpu_emu, LLAMA_GPU_EMU: smaller shapes; NCCL is validation/emu's, over
// MPI).  Run under mpirun
// with several ranks it also checks the collectives across ranks.
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/bf16.h"
#include "check.h"
#include "comm/comm_mpi.h"
#include "backend/elementwise.h"
#include "model/context_parallel.h"
#include "model/model.h"
#include "backend/ops.h"
#include "core/rng.h"

#ifdef LLAMA_GPU_EMU
#define PREFIX "emu "
#else
#define PREFIX ""
#endif

#ifdef LLAMA_CUDA

static const Ops *gpu;
static bool bf16;        // the precision under test
static double tol;       // norm-relative tolerance per tensor
static uint64_t draw;    // counter of random tensors
static char name[256];

// ---- host tensors ----

// n values uniform in [-scale, scale) (bf16-rounded in bf16 mode, so both
// backends start from identical inputs).
static float *rnd(size_t n, float scale) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    uint64_t key = rng_key(2024, ++draw);
    for (size_t i = 0; i < n; i++) {
        x[i] = (float)((2.0 * rng_uniform(key, i) - 1.0) * scale);
        if (bf16) x[i] = bf16_round(x[i]);
    }
    return x;
}

static float *copy_of(const float *x, size_t n) {
    float *y = malloc((n ? n : 1) * sizeof(float));
    memcpy(y, x, n * sizeof(float));
    return y;
}

static float *nans(size_t n) {
    float *x = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) x[i] = NAN;
    return x;
}

// ---- device tensors (the GPU backend) ----

static void *dev_act(const float *h, size_t n) {
    void *d = gpu->alloc(n * gpu->act_bytes);
    gpu->act_from_host_f32(d, h, n);
    return d;
}

// Output buffers start as poison, NaN in one run and a finite value no op
// makes by chance in another: an op that writes nothing, or not every
// element, fails either way.
#define N_POISONS 2
static const float POISON[N_POISONS] = {NAN, 1234.5f};

static void *dev_poison(size_t n, int p) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    for (size_t i = 0; i < n; i++) h[i] = POISON[p];
    void *d = dev_act(h, n);
    free(h);
    return d;
}

static float *dev_f32(const float *h, size_t n) {
    float *d = gpu->alloc(n * sizeof(float));
    gpu->to_device(d, h, n * sizeof(float));
    return d;
}

static float *host_act(const void *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->act_to_host_f32(h, d, n);
    return h;
}

static float *host_f32(const float *d, size_t n) {
    float *h = malloc((n ? n : 1) * sizeof(float));
    gpu->to_host(h, d, n * sizeof(float));
    return h;
}

// ‖a − b‖ / ‖b‖ (‖a‖ when b is zero); NaN anywhere gives NaN.
static double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, r = 0;
    for (size_t i = 0; i < n; i++) {
        double e = (double)a[i] - b[i];
        d += e * e;
        r += (double)b[i] * b[i];
    }
    return r > 0 ? sqrt(d / r) : sqrt(d);
}

#define EXPECT_CLOSE(gpu_h, cpu_h, n, what)                                                    \
    do {                                                                                       \
        double e_ = rel_err((gpu_h), (cpu_h), (n));                                            \
        if (getenv("VERBOSE")) printf("  %-40s %.3g\n", (what), e_);                           \
        CHECK(e_ <= tol, "%s: ‖gpu − cpu‖/‖cpu‖ = %.3g > %.0e", (what), e_, tol);             \
    } while (0)

// LLAMA_GPU_TEST_ONLY=word: only the cases whose group contains it (the
// sanitizer runs); LLAMA_GPU_TEST_SMALL=1: only the small shapes.
static bool wanted(const char *group) {
    const char *only = getenv("LLAMA_GPU_TEST_ONLY");
    return !only || strstr(group, only);
}

static void begin(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void begin(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    int k = snprintf(name, sizeof name, "%s%s ", PREFIX, bf16 ? "bf16" : "fp32");
    vsnprintf(name + k, sizeof name - k, fmt, ap);
    va_end(ap);
    check_begin(name);
}

// ---- memory and conversions ----

static void test_memory(void) {
    if (!wanted("memory")) return;
    begin("memory: zero-filled alloc, copy, zero, transfers, peak");
    size_t n = 1000, before = gpu->peak_bytes(), big_n = before + ((size_t)1 << 20);
    void *big = gpu->alloc(big_n);   // more than everything so far: the peak must grow
    CHECK(gpu->peak_bytes() >= big_n && gpu->peak_bytes() > before,
          "peak_bytes %zu after allocating %zu (peak before %zu)", gpu->peak_bytes(), big_n, before);
    gpu->release(big);
    float *d = gpu->alloc(n * sizeof(float));
    float *h = host_f32(d, n);
    for (size_t i = 0; i < n; i++) CHECK(h[i] == 0.0f, "alloc not zero at %zu", i);
    float *x = rnd(n, 1.0f);
    gpu->to_device(d, x, n * sizeof(float));
    float *e = gpu->alloc(n * sizeof(float));
    gpu->copy(e, d, n * sizeof(float));
    float *y = host_f32(e, n);
    CHECK(memcmp(x, y, n * sizeof(float)) == 0, "to_device/copy/to_host changed the data");
    gpu->zero(e + 10, 20 * sizeof(float));
    float *z = host_f32(e, n);
    for (size_t i = 0; i < n; i++)
        CHECK(z[i] == (i >= 10 && i < 30 ? 0.0f : x[i]), "zero touched element %zu", i);
    gpu->release(d);
    gpu->release(e);
    free(h), free(x), free(y), free(z);
    check_end();
}

static void test_conversions(void) {
    if (!wanted("conversions")) return;
    begin("conversions: host and device fp32 <-> act, exact rounding");
    float special[] = {0.0f, -0.0f, 1.0f, 1.00390625f, 1.01171875f, 1.0f + 1.0f / 256,
                       3.14159265f, -2.71828f, 1e-40f, -1e-39f, 3.3895e38f, 1e30f,
                       INFINITY, -INFINITY, 65504.0f, 1.0f / 3.0f};
    size_t ns = sizeof special / sizeof special[0], n = 4099;
    float *x = malloc(n * sizeof(float));
    uint64_t key = rng_key(7, 7);
    for (size_t i = 0; i < n; i++)
        x[i] = i < ns ? special[i] : (float)(rng_normal(key, i) * pow(10.0, (double)(i % 9) - 4));
    float *want = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) want[i] = bf16 ? bf16_round(x[i]) : x[i];
    void *a = dev_act(x, n);
    float *back = host_act(a, n);
    CHECK(memcmp(back, want, n * sizeof(float)) == 0, "act_from_host_f32 / act_to_host_f32");
    float *fx = dev_f32(x, n);
    void *b = gpu->alloc(n * gpu->act_bytes);
    gpu->f32_to_act(b, fx, n);
    float *dev_round = host_act(b, n);
    for (size_t i = 0; i < n; i++)
        CHECK(memcmp(&dev_round[i], &want[i], 4) == 0, "f32_to_act(%.9g) = %.9g, want %.9g",
              x[i], dev_round[i], want[i]);
    float *f2 = gpu->alloc(n * sizeof(float));
    gpu->act_to_f32(f2, b, n);
    float *wide = host_f32(f2, n);
    CHECK(memcmp(wide, want, n * sizeof(float)) == 0, "act_to_f32");
    gpu->release(a), gpu->release(b), gpu->release(fx), gpu->release(f2);
    free(x), free(want), free(back), free(dev_round), free(wide);
    check_end();
}

// ---- linear ----

static void test_linear(int N, int in, int out) {
    if (!wanted("linear")) return;
    begin("linear forward+backward N %d in %d out %d", N, in, out);
    float *x = rnd((size_t)N * in, 1.0f), *w = rnd((size_t)out * in, 0.5f);
    float *dy = rnd((size_t)N * out, 1.0f), *dw0 = rnd((size_t)out * in, 1.0f);
    float *y = nans((size_t)N * out), *dx = nans((size_t)N * in), *dw = copy_of(dw0, (size_t)out * in);
    ops_cpu.linear_forward(y, x, w, N, in, out);
    ops_cpu.linear_backward(dx, dw, dy, x, w, N, in, out);
    void *gx = dev_act(x, (size_t)N * in), *gw = dev_act(w, (size_t)out * in);
    void *gdy = dev_act(dy, (size_t)N * out);
    void *gy = dev_act(nans((size_t)N * out), (size_t)N * out);
    void *gdx = dev_act(nans((size_t)N * in), (size_t)N * in);
    float *gdw = dev_f32(dw0, (size_t)out * in);
    gpu->linear_forward(gy, gx, gw, N, in, out);
    gpu->linear_backward(gdx, gdw, gdy, gx, gw, N, in, out);
    float *hy = host_act(gy, (size_t)N * out), *hdx = host_act(gdx, (size_t)N * in);
    float *hdw = host_f32(gdw, (size_t)out * in);
    EXPECT_CLOSE(hy, y, (size_t)N * out, "y");
    EXPECT_CLOSE(hdx, dx, (size_t)N * in, "dx (overwritten)");
    EXPECT_CLOSE(hdw, dw, (size_t)out * in, "dw (accumulated)");
    // dx NULL: only dw, accumulating again.
    ops_cpu.linear_backward(NULL, dw, dy, x, w, N, in, out);
    gpu->linear_backward(NULL, gdw, gdy, gx, gw, N, in, out);
    free(hdw);
    hdw = host_f32(gdw, (size_t)out * in);
    EXPECT_CLOSE(hdw, dw, (size_t)out * in, "dw with dx NULL");
    gpu->release(gx), gpu->release(gw), gpu->release(gdy), gpu->release(gy), gpu->release(gdx);
    gpu->release(gdw);
    free(x), free(w), free(dy), free(dw0), free(y), free(dx), free(dw), free(hy), free(hdx);
    free(hdw);
    check_end();
}

// ---- RMSNorm ----

static void test_rmsnorm(int N, int D) {
    if (!wanted("rmsnorm")) return;
    begin("rmsnorm forward+backward N %d D %d", N, D);
    size_t n = (size_t)N * D;
    float *x = rnd(n, 2.0f), *w = rnd(D, 1.0f), *dy = rnd(n, 1.0f), *dx0 = rnd(n, 1.0f);
    float *dw0 = rnd(D, 1.0f);
    float *y = nans(n), *rstd = nans(N), *dx = copy_of(dx0, n), *dw = copy_of(dw0, D);
    ops_cpu.rmsnorm_forward(y, rstd, x, w, N, D, 1e-5f);
    ops_cpu.rmsnorm_backward(dx, dw, dy, x, w, rstd, N, D);
    void *gx = dev_act(x, n), *gw = dev_act(w, D), *gdy = dev_act(dy, n), *gdx = dev_act(dx0, n);
    float *tmp = nans(n);
    void *gy = dev_act(tmp, n);
    float *grstd = dev_f32(tmp, N), *gdw = dev_f32(dw0, D);
    gpu->rmsnorm_forward(gy, grstd, gx, gw, N, D, 1e-5f);
    gpu->rmsnorm_backward(gdx, gdw, gdy, gx, gw, grstd, N, D);
    float *hy = host_act(gy, n), *hr = host_f32(grstd, N), *hdx = host_act(gdx, n);
    float *hdw = host_f32(gdw, D);
    EXPECT_CLOSE(hy, y, n, "y");
    EXPECT_CLOSE(hr, rstd, N, "rstd");
    EXPECT_CLOSE(hdx, dx, n, "dx (accumulated)");
    EXPECT_CLOSE(hdw, dw, D, "dw (accumulated)");
    gpu->release(gx), gpu->release(gw), gpu->release(gdy), gpu->release(gdx), gpu->release(gy);
    gpu->release(grstd), gpu->release(gdw);
    free(x), free(w), free(dy), free(dx0), free(dw0), free(y), free(rstd), free(dx), free(dw);
    free(tmp), free(hy), free(hr), free(hdx), free(hdw);
    check_end();
}

static void test_add(size_t n) {
    if (!wanted("add")) return;
    begin("add n %zu (also in place)", n);
    float *a = rnd(n, 1.0f), *b = rnd(n, 1.0f), *y = nans(n);
    ops_cpu.add(y, a, b, n);
    for (int p = 0; p < N_POISONS; p++) {
        void *ga = dev_act(a, n), *gb = dev_act(b, n), *gy = dev_poison(n, p);
        gpu->add(gy, ga, gb, n);
        gpu->add(ga, ga, gb, n);
        float *hy = host_act(gy, n), *ha = host_act(ga, n);
        EXPECT_CLOSE(hy, y, n, "y");
        EXPECT_CLOSE(ha, y, n, "y aliasing a");
        gpu->release(ga), gpu->release(gb), gpu->release(gy);
        free(hy), free(ha);
    }
    free(a), free(b), free(y);
    check_end();
}

// The fp32 sum (gradients): exact, whatever the compute type.
static void test_add_f32(size_t n) {
    if (!wanted("add")) return;
    begin("add_f32 n %zu (in place)", n);
    float *a = rnd(n, 1.0f), *b = rnd(n, 1.0f), *y = nans(n);
    ops_cpu.add_f32(y, a, b, n);
    float *ga = dev_f32(a, n), *gb = dev_f32(b, n);
    gpu->add_f32(ga, ga, gb, n);
    float *ha = host_f32(ga, n);
    CHECK(memcmp(ha, y, n * sizeof(float)) == 0, "y = a + b bit for bit");
    gpu->release(ga), gpu->release(gb);
    free(a), free(b), free(y), free(ha);
    check_end();
}

// ---- rotary embedding ----

static void rope_tables(int T, int hd, float **c, float **s) {
    int half = hd / 2;
    *c = malloc((size_t)T * half * sizeof(float));
    *s = malloc((size_t)T * half * sizeof(float));
    for (int p = 0; p < T; p++)
        for (int i = 0; i < half; i++) {
            double f = pow(10000.0, -2.0 * i / hd);
            (*c)[p * half + i] = (float)cos(p * f);
            (*s)[p * half + i] = (float)sin(p * f);
        }
}

static void test_rope(int B, int T, int nh, int nkv, int hd) {
    if (!wanted("rope")) return;
    begin("rope forward+backward B %d T %d heads %d+%d hd %d", B, T, nh, nkv, hd);
    int N = B * T, stride = (nh + 2 * nkv) * hd;
    size_t n = (size_t)N * stride;
    float *c, *s;
    rope_tables(T, hd, &c, &s);
    float *x = rnd(n, 1.0f), *f = copy_of(x, n), *bk = copy_of(x, n);
    ops_cpu.rope_forward(f, c, s, N, T, stride, nh + nkv, hd);
    ops_cpu.rope_backward(bk, c, s, N, T, stride, nh + nkv, hd);
    float *gc = dev_f32(c, (size_t)T * hd / 2), *gs = dev_f32(s, (size_t)T * hd / 2);
    void *gf = dev_act(x, n), *gb = dev_act(x, n);
    gpu->rope_forward(gf, gc, gs, N, T, stride, nh + nkv, hd);
    gpu->rope_backward(gb, gc, gs, N, T, stride, nh + nkv, hd);
    float *hf = host_act(gf, n), *hb = host_act(gb, n);
    EXPECT_CLOSE(hf, f, n, "forward (v heads untouched)");
    EXPECT_CLOSE(hb, bk, n, "backward (inverse rotation)");
    gpu->release(gc), gpu->release(gs), gpu->release(gf), gpu->release(gb);
    free(c), free(s), free(x), free(f), free(bk), free(hf), free(hb);
    check_end();
}

// ---- attention ----

// The implementation under test: cuDNN's flash attention, the own kernels, or
// the own kernels' SIMT path (forced).
typedef enum { ATT_CUDNN, ATT_OWN, ATT_SIMT } AttentionImpl;

// Selects impl; false when this build or machine cannot run it.
static bool attention_use(AttentionImpl impl) {
    char err[512];
    Attention a = impl == ATT_CUDNN ? ATTENTION_CUDNN : ATTENTION_OWN;
    return ops_cuda_set_attention(a, err, sizeof err);
}

static const char *attention_label(AttentionImpl impl, int B, int T, int nh, int nkv, int hd) {
    if (impl == ATT_CUDNN)
        return ops_cuda_attention_uses_cudnn(B, T, nh, nkv, hd) ? "cuDNN"
                                                                  : "cuDNN refused: own kernels";
    return bf16 && impl == ATT_OWN && (hd == 64 || hd == 128) ? "own, tensor cores" : "own, SIMT";
}

static void test_attention_with(AttentionImpl impl, int B, int T, int nh, int nkv, int hd) {
    begin("attention forward+backward B %d T %d heads %d kv %d hd %d (%s)", B, T, nh, nkv, hd,
          attention_label(impl, B, T, nh, nkv, hd));
    if (impl == ATT_SIMT) setenv("LLAMA_ATTENTION_SIMT", "1", 1);
    int N = B * T, ld = (nh + 2 * nkv) * hd, ldo = nh * hd;
    size_t nq = (size_t)N * ld, no = (size_t)N * ldo;
    float *qkv = rnd(nq, 1.5f), *dout = rnd(no, 1.0f);
    float *out = nans(no), *dqkv = nans(nq);
    void *state = malloc(ops_cpu.attention_state_bytes(B, T, nh));
    void *work = malloc(ops_cpu.attention_work_bytes(B, T, nh, hd));
    ops_cpu.attention_forward(out, state, qkv, B, T, nh, nkv, hd);
    ops_cpu.attention_backward(dqkv, work, dout, qkv, out, state, B, T, nh, nkv, hd);
    // The GPU's backward starts from its own forward output (as in training).
    void *gq = dev_act(qkv, nq), *gdo = dev_act(dout, no), *go = dev_act(nans(no), no);
    void *gdq = dev_act(nans(nq), nq);
    void *gstate = gpu->alloc(gpu->attention_state_bytes(B, T, nh));
    void *gwork = gpu->alloc(gpu->attention_work_bytes(B, T, nh, hd));
    gpu->attention_forward(go, gstate, gq, B, T, nh, nkv, hd);
    gpu->attention_backward(gdq, gwork, gdo, gq, go, gstate, B, T, nh, nkv, hd);
    float *ho = host_act(go, no), *hdq = host_act(gdq, nq);
    EXPECT_CLOSE(ho, out, no, "out");
    // dQ, dK, dV separately: each must be right, not just the sum.
    size_t parts[3][2] = {{0, (size_t)nh * hd}, {(size_t)nh * hd, (size_t)nkv * hd},
                          {(size_t)(nh + nkv) * hd, (size_t)nkv * hd}};
    const char *pname[3] = {"dq", "dk", "dv"};
    for (int p = 0; p < 3; p++) {
        size_t w = parts[p][1], m = (size_t)N * w;
        float *a = malloc(m * sizeof(float)), *b = malloc(m * sizeof(float));
        for (int r = 0; r < N; r++) {
            memcpy(a + (size_t)r * w, hdq + (size_t)r * ld + parts[p][0], w * sizeof(float));
            memcpy(b + (size_t)r * w, dqkv + (size_t)r * ld + parts[p][0], w * sizeof(float));
        }
        EXPECT_CLOSE(a, b, m, pname[p]);
        free(a), free(b);
    }
    gpu->release(gq), gpu->release(gdo), gpu->release(go), gpu->release(gdq);
    gpu->release(gstate), gpu->release(gwork);
    free(qkv), free(dout), free(out), free(dqkv), free(state), free(work), free(ho), free(hdq);
    unsetenv("LLAMA_ATTENTION_SIMT");
    check_end();
}

// LLAMA_GPU_TEST_ATTENTION=own or cudnn: that implementation's cases only
// (the sanitizer's race checks look at our kernels, not cuDNN's).
static bool attention_wanted(const char *impl) {
    const char *only = getenv("LLAMA_GPU_TEST_ATTENTION");
    return !only || strcmp(only, impl) == 0;
}

// Both implementations where the build has cuDNN (a real GPU), the own
// kernels alone otherwise; simt forces the own SIMT path.
static void test_attention(int B, int T, int nh, int nkv, int hd, bool simt) {
    if (!wanted("attention")) return;
    if (simt && attention_wanted("own")) {
        attention_use(ATT_OWN);
        test_attention_with(ATT_SIMT, B, T, nh, nkv, hd);
    } else if (!simt) {
        if (attention_wanted("cudnn") && attention_use(ATT_CUDNN))
            test_attention_with(ATT_CUDNN, B, T, nh, nkv, hd);
        attention_use(ATT_OWN);
        if (attention_wanted("own")) test_attention_with(ATT_OWN, B, T, nh, nkv, hd);
    }
    attention_use(ATT_CUDNN);   // back to the default where built in
}

// ---- ring attention's blocks (context parallelism) ----

// cp ranks' rows of B sequences of T tokens, Tl = T / cp rows per sequence
// per rank at the global positions cp_position gives, all in this process.
#define RING_MAX 4
typedef struct {
    int cp, B, T, Tl, nh, nkv, hd;
    int ld, kvw, ldo;   // row widths of qkv, kv and out
} RingShape;

// One backend's buffers, per rank (host memory for the CPU, device memory for the GPU).
typedef struct {
    void *qkv[RING_MAX], *kv[RING_MAX], *dout[RING_MAX];   // (B·Tl, ld), (B·Tl, kvw), (B·Tl, ldo)
    void *out[RING_MAX], *dqkv[RING_MAX], *dkv[RING_MAX];  // (B·Tl, ldo), (B·Tl, ld), (B·Tl, kvw)
    float *lse[RING_MAX];                                   // (B, nh, Tl)
    int32_t *pos;                                           // (cp, Tl) global positions
} RingSide;

// Rank r's rows (B·Tl, width) of columns [c0, c0 + width) of x (B·T, ld).
static float *ring_rows(const RingShape *z, const int32_t *pos, const float *x, int ld, int c0,
                        int width, int r) {
    float *y = malloc((size_t)z->B * z->Tl * width * sizeof(float));
    for (int b = 0; b < z->B; b++)
        for (int i = 0; i < z->Tl; i++)
            memcpy(y + ((size_t)b * z->Tl + i) * width,
                   x + ((size_t)b * z->T + pos[r * z->Tl + i]) * ld + c0, width * sizeof(float));
    return y;
}

static AttentionBlock ring_block(const RingShape *z, const RingSide *x, int r, int j) {
    return (AttentionBlock){z->B, z->Tl, z->Tl, z->nh, z->nkv, z->hd, x->pos + r * z->Tl,
                            x->pos + j * z->Tl};
}

// Each rank's queries against `hops` blocks, from rank r − start's on down
// the ring (the first written, the others merged).
static void ring_forward(const Ops *o, const RingShape *z, RingSide *x, int start, int hops) {
    for (int r = 0; r < z->cp; r++)
        for (int s = 0; s < hops; s++) {
            int j = ((r - start - s) % z->cp + z->cp) % z->cp;
            AttentionBlock a = ring_block(z, x, r, j);
            o->attention_block_forward(x->out[r], x->lse[r], x->qkv[r], x->kv[j], &a, s == 0);
        }
}

// Every (queries, keys) pair's backward pass, added to dqkv and dkv.
static void ring_backward(const Ops *o, const RingShape *z, RingSide *x, void *work) {
    for (int r = 0; r < z->cp; r++)
        for (int j = 0; j < z->cp; j++) {
            AttentionBlock a = ring_block(z, x, r, j);
            o->attention_block_backward(x->dqkv[r], x->dkv[j], work, x->dout[r], x->qkv[r],
                                        x->kv[j], x->out[r], x->lse[r], &a);
        }
}

// The ranks' buffers bufs[r] of n elements each, one after the other, on the
// host: act elements (GPU) or fp32 (CPU, and the GPU's lse).
static float *ring_gather(void *const *bufs, int cp, size_t n, bool on_gpu, bool f32) {
    float *y = malloc((size_t)cp * n * sizeof(float));
    for (int r = 0; r < cp; r++) {
        float *h = !on_gpu ? copy_of(bufs[r], n)
                   : f32   ? host_f32(bufs[r], n)
                           : host_act(bufs[r], n);
        memcpy(y + (size_t)r * n, h, n * sizeof(float));
        free(h);
    }
    return y;
}

// Columns [c0, c0 + w) of `rows` rows ld wide.
static float *columns(const float *x, size_t rows, int ld, int c0, int w) {
    float *y = malloc(rows * w * sizeof(float));
    for (size_t i = 0; i < rows; i++) memcpy(y + i * w, x + i * ld + c0, w * sizeof(float));
    return y;
}

// The GPU's out and lse against the CPU's; rows that saw no key must agree
// exactly (lse −∞), the rest within the tolerance.
static void ring_compare_forward(const RingShape *z, RingSide *c, RingSide *g, const char *when) {
    size_t no = (size_t)z->B * z->Tl * z->ldo, nl = (size_t)z->B * z->nh * z->Tl;
    float *co = ring_gather(c->out, z->cp, no, false, true);
    float *go = ring_gather(g->out, z->cp, no, true, false);
    float *cl = ring_gather((void **)c->lse, z->cp, nl, false, true);
    float *gl = ring_gather((void **)g->lse, z->cp, nl, true, true);
    for (size_t i = 0; i < z->cp * nl; i++)
        if (isinf(cl[i]) || isinf(gl[i])) {
            CHECK(cl[i] == gl[i], "%s: lse %zu is %g on the GPU, %g on the CPU", when, i, gl[i],
                  cl[i]);
            cl[i] = gl[i] = 0.0f;
        }
    char what[96];
    snprintf(what, sizeof what, "out, %s", when);
    EXPECT_CLOSE(go, co, z->cp * no, what);
    snprintf(what, sizeof what, "lse, %s", when);
    EXPECT_CLOSE(gl, cl, z->cp * nl, what);
    free(co), free(go), free(cl), free(gl);
}

// The GPU's dq (dqkv's q columns), dk and dv (dkv) against the CPU's; dqkv's
// k and v columns must be untouched (dqkv0: their start values).
static void ring_compare_backward(const RingShape *z, RingSide *c, RingSide *g,
                                  const float *dqkv0) {
    size_t rows = (size_t)z->B * z->Tl, nq = rows * z->ld, nkv = rows * z->kvw;
    int qw = z->nh * z->hd;
    float *cq = ring_gather(c->dqkv, z->cp, nq, false, true);
    float *gq = ring_gather(g->dqkv, z->cp, nq, true, false);
    float *ck = ring_gather(c->dkv, z->cp, nkv, false, true);
    float *gk = ring_gather(g->dkv, z->cp, nkv, true, false);
    float *cdq = columns(cq, z->cp * rows, z->ld, 0, qw);
    float *gdq = columns(gq, z->cp * rows, z->ld, 0, qw);
    EXPECT_CLOSE(gdq, cdq, z->cp * rows * qw, "dq (added to dqkv's q columns)");
    EXPECT_CLOSE(gk, ck, z->cp * nkv, "dk, dv (added to dkv)");
    for (int r = 0; r < z->cp; r++)
        for (size_t i = 0; i < rows; i++)
            for (int x = qw; x < z->ld; x++) {
                size_t e = (size_t)r * nq + i * z->ld + x;
                CHECK(gq[e] == dqkv0[e], "dqkv's k/v column %d of rank %d row %zu changed", x, r,
                      i);
            }
    free(cq), free(gq), free(ck), free(gk), free(cdq), free(gdq);
}

// Both backends' buffers from the same host tensors: qkv, dout (B·T rows of
// the whole sequences) and the gradients' start values dqkv0 (cp·B·Tl, ld)
// and dkv0 (cp·B·Tl, kvw).
static void ring_sides(const RingShape *z, RingSide *c, RingSide *g, const float *qkv,
                       const float *dout, const float *dqkv0, const float *dkv0) {
    size_t rows = (size_t)z->B * z->Tl;
    c->pos = malloc((size_t)z->cp * z->Tl * sizeof(int32_t));
    for (int r = 0; r < z->cp; r++)
        for (int i = 0; i < z->Tl; i++) c->pos[r * z->Tl + i] = cp_position(z->T, z->cp, r, i);
    g->pos = gpu->alloc((size_t)z->cp * z->Tl * sizeof(int32_t));
    gpu->to_device(g->pos, c->pos, (size_t)z->cp * z->Tl * sizeof(int32_t));
    for (int r = 0; r < z->cp; r++) {
        c->qkv[r] = ring_rows(z, c->pos, qkv, z->ld, 0, z->ld, r);
        c->kv[r] = ring_rows(z, c->pos, qkv, z->ld, z->nh * z->hd, z->kvw, r);
        c->dout[r] = ring_rows(z, c->pos, dout, z->ldo, 0, z->ldo, r);
        c->out[r] = nans(rows * z->ldo);
        c->lse[r] = nans(rows * z->nh);
        c->dqkv[r] = copy_of(dqkv0 + r * rows * z->ld, rows * z->ld);
        c->dkv[r] = copy_of(dkv0 + r * rows * z->kvw, rows * z->kvw);
        g->qkv[r] = dev_act(c->qkv[r], rows * z->ld);
        g->kv[r] = dev_act(c->kv[r], rows * z->kvw);
        g->dout[r] = dev_act(c->dout[r], rows * z->ldo);
        g->out[r] = dev_act(c->out[r], rows * z->ldo);
        g->lse[r] = dev_f32(c->lse[r], rows * z->nh);
        g->dqkv[r] = dev_act(c->dqkv[r], rows * z->ld);
        g->dkv[r] = dev_act(c->dkv[r], rows * z->kvw);
    }
}

static void ring_sides_free(const RingShape *z, RingSide *c, RingSide *g) {
    for (int r = 0; r < z->cp; r++) {
        void *bc[] = {c->qkv[r], c->kv[r], c->dout[r], c->out[r], c->lse[r], c->dqkv[r], c->dkv[r]};
        void *bg[] = {g->qkv[r], g->kv[r], g->dout[r], g->out[r], g->lse[r], g->dqkv[r], g->dkv[r]};
        for (int k = 0; k < 7; k++) free(bc[k]), gpu->release(bg[k]);
    }
    free(c->pos), gpu->release(g->pos);
}

// The CUDA block ops against the CPU's on a ring of cp ranks: the forward
// pass's first hop alone and the whole ring, starting from the rank's own
// block (training's order: every row sees a key) and from the next rank's
// (rank 0's first chunk sees none of it: out 0, lse −∞, merged later); then
// every pair's backward pass, added to gradients that start non-zero.  simt
// forces the SIMT kernels where the tensor-core ones would run.
static void test_ring_attention(int cp, int B, int T, int nh, int nkv, int hd, bool simt) {
    if (!wanted("attention") || !attention_wanted("own")) return;
    begin("ring attention blocks cp %d B %d T %d heads %d kv %d hd %d (%s)", cp, B, T, nh, nkv, hd,
          attention_label(simt ? ATT_SIMT : ATT_OWN, B, T, nh, nkv, hd));
    if (simt) setenv("LLAMA_ATTENTION_SIMT", "1", 1);
    if (cp > RING_MAX || T % (2 * cp)) {
        check_failed(__FILE__, __LINE__, "a ring of at most %d ranks, T a multiple of 2·cp",
                     RING_MAX);
        return;
    }
    RingShape z = {cp, B, T, T / cp, nh, nkv, hd, (nh + 2 * nkv) * hd, 2 * nkv * hd, nh * hd};
    size_t rows = (size_t)cp * B * z.Tl;
    float *qkv = rnd(rows * z.ld, 1.5f), *dout = rnd(rows * z.ldo, 1.0f);
    float *dqkv0 = rnd(rows * z.ld, 0.1f), *dkv0 = rnd(rows * z.kvw, 0.1f);
    RingSide c, g;
    ring_sides(&z, &c, &g, qkv, dout, dqkv0, dkv0);
    const int starts[2] = {0, cp - 1};   // rank r's own block first, or rank r + 1's
    for (int k = 0; k < 2; k++) {
        const char *from = k == 0 ? "own block first" : "rank r + 1's first";
        char when[64];
        snprintf(when, sizeof when, "first hop, %s", from);
        ring_forward(&ops_cpu, &z, &c, starts[k], 1);
        ring_forward(gpu, &z, &g, starts[k], 1);
        ring_compare_forward(&z, &c, &g, when);
        snprintf(when, sizeof when, "%d hops, %s", cp, from);
        ring_forward(&ops_cpu, &z, &c, starts[k], cp);
        ring_forward(gpu, &z, &g, starts[k], cp);
        ring_compare_forward(&z, &c, &g, when);
    }
    void *work = malloc(ops_cpu.attention_work_bytes(B, z.Tl, nh, hd));
    void *gwork = gpu->alloc(gpu->attention_work_bytes(B, z.Tl, nh, hd));
    ring_backward(&ops_cpu, &z, &c, work);
    ring_backward(gpu, &z, &g, gwork);   // from the GPU's own out and lse, as in training
    ring_compare_backward(&z, &c, &g, dqkv0);
    ring_sides_free(&z, &c, &g);
    gpu->release(gwork);
    free(work), free(qkv), free(dout), free(dqkv0), free(dkv0);
    unsetenv("LLAMA_ATTENTION_SIMT");
    check_end();
}

// ---- SwiGLU ----

static void test_swiglu(int N, int F) {
    if (!wanted("swiglu")) return;
    begin("swiglu forward+backward N %d F %d", N, F);
    size_t n = (size_t)N * F;
    float *gu = rnd(2 * n, 3.0f), *dh = rnd(n, 1.0f), *h = nans(n), *dgu = nans(2 * n);
    ops_cpu.swiglu_forward(h, gu, N, F);
    ops_cpu.swiglu_backward(dgu, dh, gu, N, F);
    for (int p = 0; p < N_POISONS; p++) {
        void *ggu = dev_act(gu, 2 * n), *gdh = dev_act(dh, n), *gh = dev_poison(n, p);
        void *gdgu = dev_poison(2 * n, p);
        gpu->swiglu_forward(gh, ggu, N, F);
        gpu->swiglu_backward(gdgu, gdh, ggu, N, F);
        float *hh = host_act(gh, n), *hdgu = host_act(gdgu, 2 * n);
        EXPECT_CLOSE(hh, h, n, "h");
        EXPECT_CLOSE(hdgu, dgu, 2 * n, "dgate|dup");
        gpu->swiglu_backward(ggu, gdh, ggu, N, F);   // in place, as the model runs it
        float *hip = host_act(ggu, 2 * n);
        EXPECT_CLOSE(hip, dgu, 2 * n, "dgate|dup in place of gate|up");
        gpu->release(ggu), gpu->release(gdh), gpu->release(gh), gpu->release(gdgu);
        free(hh), free(hdgu), free(hip);
    }
    free(gu), free(dh), free(h), free(dgu);
    check_end();
}

// ---- embedding ----

static void test_embedding(int N, int D, int vocab_start, int rows) {
    if (!wanted("embedding")) return;
    begin("embedding forward+backward N %d D %d rows [%d, %d)", N, D, vocab_start,
          vocab_start + rows);
    int32_t *tok = malloc(N * sizeof(int32_t));
    for (int r = 0; r < N; r++)   // inside and outside this rank's rows, with repeats
        tok[r] = (int32_t)(rng_bits(5, r) % (uint64_t)(vocab_start + rows + 7));
    float *table = rnd((size_t)rows * D, 1.0f), *dx = rnd((size_t)N * D, 1.0f);
    float *dt0 = rnd((size_t)rows * D, 1.0f), *x = nans((size_t)N * D);
    float *dt = copy_of(dt0, (size_t)rows * D);
    ops_cpu.embedding_forward(x, tok, table, N, D, vocab_start, rows);
    ops_cpu.embedding_backward(dt, dx, tok, N, D, vocab_start, rows);
    int32_t *gtok = gpu->alloc(N * sizeof(int32_t));
    gpu->to_device(gtok, tok, N * sizeof(int32_t));
    for (int p = 0; p < N_POISONS; p++) {
        void *gt = dev_act(table, (size_t)rows * D), *gdx = dev_act(dx, (size_t)N * D);
        void *gx = dev_poison((size_t)N * D, p);
        float *gdt = dev_f32(dt0, (size_t)rows * D);
        gpu->embedding_forward(gx, gtok, gt, N, D, vocab_start, rows);
        gpu->embedding_backward(gdt, gdx, gtok, N, D, vocab_start, rows);
        float *hx = host_act(gx, (size_t)N * D), *hdt = host_f32(gdt, (size_t)rows * D);
        EXPECT_CLOSE(hx, x, (size_t)N * D, "x (zero rows for other ranks' tokens)");
        EXPECT_CLOSE(hdt, dt, (size_t)rows * D, "dtable (accumulated)");
        gpu->release(gt), gpu->release(gdx), gpu->release(gx), gpu->release(gdt);
        free(hx), free(hdt);
    }
    gpu->release(gtok);
    free(tok), free(table), free(dx), free(dt0), free(x), free(dt);
    check_end();
}

// ---- cross-entropy and argmax ----

static void test_cross_entropy(int N, int V, int valid, int vocab_start) {
    if (!wanted("cross-entropy")) return;
    begin("cross-entropy N %d V %d (valid %d) from id %d", N, V, valid, vocab_start);
    int32_t *tgt = malloc(N * sizeof(int32_t));
    for (int r = 0; r < N; r++)   // some targets on other ranks, some in the padding
        tgt[r] = vocab_start - 3 + (int32_t)(rng_bits(11, r) % (uint64_t)(V + 6));
    size_t n = (size_t)N * V;
    float *logits = rnd(n, 6.0f);
    float *g = copy_of(logits, n), *mx = nans(N), *st = nans(2 * N), *loss = nans(N);
    float *loss0 = nans(N);
    ops_cpu.ce_row_max(mx, logits, N, V, valid);
    ops_cpu.ce_stats(st, logits, mx, tgt, N, V, valid, vocab_start);
    ops_cpu.ce_loss_grad(loss0, logits, mx, st, tgt, N, V, valid, vocab_start, 0.0f);
    ops_cpu.ce_loss_grad(loss, g, mx, st, tgt, N, V, valid, vocab_start, 0.37f);
    int32_t *gtgt = gpu->alloc(N * sizeof(int32_t));
    gpu->to_device(gtgt, tgt, N * sizeof(int32_t));
    void *gl = dev_act(logits, n);
    float *tmp = nans(2 * N);
    float *gmx = dev_f32(tmp, N), *gst = dev_f32(tmp, 2 * N), *gloss = dev_f32(tmp, N);
    float *gloss0 = dev_f32(tmp, N);
    gpu->ce_row_max(gmx, gl, N, V, valid);
    gpu->ce_stats(gst, gl, gmx, gtgt, N, V, valid, vocab_start);
    gpu->ce_loss_grad(gloss0, gl, gmx, gst, gtgt, N, V, valid, vocab_start, 0.0f);
    float *hl0 = host_act(gl, n);
    gpu->ce_loss_grad(gloss, gl, gmx, gst, gtgt, N, V, valid, vocab_start, 0.37f);
    float *hmx = host_f32(gmx, N), *hst = host_f32(gst, 2 * N), *hloss = host_f32(gloss, N);
    float *hloss0 = host_f32(gloss0, N), *hg = host_act(gl, n);
    EXPECT_CLOSE(hmx, mx, N, "row max");
    EXPECT_CLOSE(hst, st, 2 * N, "stats");
    EXPECT_CLOSE(hloss0, loss0, N, "loss (grad_scale 0)");
    CHECK(memcmp(hl0, logits, n * sizeof(float)) == 0, "grad_scale 0 changed the logits");
    EXPECT_CLOSE(hloss, loss, N, "loss");
    EXPECT_CLOSE(hg, g, n, "logit gradient (zero on the padding)");
    gpu->release(gtgt), gpu->release(gl), gpu->release(gmx), gpu->release(gst);
    gpu->release(gloss), gpu->release(gloss0);
    free(tgt), free(logits), free(g), free(mx), free(st), free(loss), free(loss0), free(tmp);
    free(hl0), free(hmx), free(hst), free(hloss), free(hloss0), free(hg);
    check_end();
}

static void test_argmax(int N, int V, int valid) {
    if (!wanted("argmax")) return;
    begin("argmax N %d V %d (valid %d), ties", N, V, valid);
    size_t n = (size_t)N * V;
    float *l = rnd(n, 1.0f);
    for (int r = 0; r < N; r++) {   // a tie: the first index must win
        int a = (int)(rng_bits(3, r) % (uint64_t)valid), b = (int)(rng_bits(4, r) % (uint64_t)valid);
        l[(size_t)r * V + a] = l[(size_t)r * V + b] = 2.0f;
        if (V > valid) l[(size_t)r * V + valid + r % (V - valid)] = 9.0f;   // padding: ignored
    }
    int32_t *ci = malloc(N * sizeof(int32_t)), *gi = malloc(N * sizeof(int32_t));
    float *cv = malloc(N * sizeof(float)), *gv = malloc(N * sizeof(float));
    ops_cpu.argmax(ci, cv, l, N, V, valid, 40);
    void *gl = dev_act(l, n);
    gpu->argmax(gi, gv, gl, N, V, valid, 40);
    for (int r = 0; r < N; r++)
        CHECK(ci[r] == gi[r] && cv[r] == gv[r], "row %d: gpu (%d, %g), cpu (%d, %g)", r, gi[r],
              gv[r], ci[r], cv[r]);
    gpu->release(gl);
    free(l), free(ci), free(gi), free(cv), free(gv);
    check_end();
}

// ---- optimizer and reductions (fp32 in both precisions) ----

static void test_optimizer(size_t n) {
    if (!wanted("optimizer")) return;
    begin("adamw (gradient scale, compute copy), sum_squares, sum n %zu", n);
    bool was = bf16;
    bf16 = false;   // fp32 tensors: no rounding of the inputs
    float *w = rnd(n, 1.0f), *m = rnd(n, 0.1f), *v = rnd(n, 0.01f), *g = rnd(n, 1.0f);
    bf16 = was;
    for (size_t i = 0; i < n; i++) v[i] = fabsf(v[i]);
    float *gw = dev_f32(w, n), *gm = dev_f32(m, n), *gvv = dev_f32(v, n), *gg = dev_f32(g, n);
    float *param = nans(n);
    void *gparam = dev_act(param, n);
    // The clipping scale: as if g had been multiplied by 0.3 first.
    AdamwStep a = adamw_step(3e-4f, 0.9f, 0.95f, 1e-8f, 0.1f, 3, 0.3f);
    float *w2 = copy_of(w, n), *m2 = copy_of(m, n), *v2 = copy_of(v, n), *g2 = copy_of(g, n);
    AdamwStep a1 = a;
    a1.grad_scale = 1.0f;
    for (size_t i = 0; i < n; i++) g2[i] *= 0.3f;
    ops_cpu.adamw(w2, m2, v2, g2, NULL, n, &a1);
    ops_cpu.adamw(w, m, v, g, param, n, &a);
    CHECK(memcmp(w2, w, n * sizeof(float)) == 0 && memcmp(m2, m, n * sizeof(float)) == 0 &&
          memcmp(v2, v, n * sizeof(float)) == 0, "grad_scale is not the gradient scaled first");
    CHECK(memcmp(param, w, n * sizeof(float)) == 0, "the CPU's compute copy is not w");
    gpu->adamw(gw, gm, gvv, gg, gparam, n, &a);
    float *hw = host_f32(gw, n), *hm = host_f32(gm, n), *hv = host_f32(gvv, n);
    float *hp = host_act(gparam, n);
    double t = tol;
    tol = 1e-6;
    EXPECT_CLOSE(hw, w, n, "w");
    EXPECT_CLOSE(hm, m, n, "m");
    EXPECT_CLOSE(hv, v, n, "v");
    tol = t;
    size_t off = 0;   // the device's own w, in the compute type
    for (size_t i = 0; i < n; i++) off += hp[i] != (bf16 ? bf16_round(hw[i]) : hw[i]);
    CHECK(off == 0, "%zu of %zu compute-copy elements are not the new w", off, n);
    double cs = ops_cpu.sum_squares(g, n), gs = gpu->sum_squares(gg, n);
    double cu = ops_cpu.sum(g, n), gu = gpu->sum(gg, n);
    CHECK(fabs(cs - gs) <= 1e-10 * fabs(cs), "sum_squares %.17g vs %.17g", gs, cs);
    CHECK(fabs(cu - gu) <= 1e-9 * (fabs(cu) + sqrt(cs)), "sum %.17g vs %.17g", gu, cu);
    CHECK(gpu->sum_squares(gg, n) == gs, "sum_squares is not reproducible");
    gpu->release(gw), gpu->release(gm), gpu->release(gvv), gpu->release(gg), gpu->release(gparam);
    free(w), free(m), free(v), free(g), free(hw), free(hm), free(hv), free(hp), free(param);
    free(w2), free(m2), free(v2), free(g2);
    check_end();
}

// ---- a whole model: loss and every parameter gradient ----

static void test_model(Recompute recompute, int dim, int heads, int kv_heads) {
    if (!wanted("model")) return;
    ModelConfig cfg = {.name = "ops-test", .dim = dim, .n_layers = 2, .n_heads = heads,
                       .n_kv_heads = kv_heads, .ffn_dim = 96, .vocab_size = 77,
                       .max_seq_len = 64, .rope_theta = 10000.0, .norm_eps = 1e-5};
    ModelPart part = {.tp = 1, .n_layers = 2, .first = true, .last = true, .dp = 1};
    int B = 2, T = 37;
    double model_tol = bf16 ? 2e-2 : 1e-5;
    begin("model loss and gradients (hd %d, T %d, recompute %s) within %.0e", dim / heads, T,
          model_recompute_name(recompute), model_tol);
    Comm tp;
    comm_init(&tp, MPI_COMM_SELF);
    int32_t *tok = malloc(B * T * sizeof(int32_t)), *tgt = malloc(B * T * sizeof(int32_t));
    for (int i = 0; i < B * T; i++) {
        tok[i] = (int32_t)(rng_bits(1, i) % 77);
        tgt[i] = (int32_t)(rng_bits(2, i) % 77);
    }
    double loss[2];
    float *grads[2];
    size_t numel = 0;
    for (int k = 0; k < 2; k++) {
        const Ops *ops = k ? gpu : &ops_cpu;
        Model *m = model_create(ops, &cfg, &part, &tp, NULL, B, T, 1, recompute, MODEL_HOLDS_ALL);
        float *host = malloc(m->table.numel * sizeof(float));
        params_init_host(&m->table, 99, host);
        for (int i = 0; i < m->table.n; i++) {   // norm weights away from 1
            const ParamTensor *t = &m->table.t[i];
            if (t->ndim == 1)
                for (size_t e = 0; e < t->numel; e++)
                    host[t->offset + e] = 1.0f + 0.3f * (float)rng_normal(99 + i, e);
        }
        if (bf16)
            for (size_t i = 0; i < m->table.numel; i++) host[i] = bf16_round(host[i]);
        ops->act_from_host_f32(m->params, host, m->table.numel);
        model_set_batch(m, 0, tok, tgt);
        model_forward(m, 0, 0);
        loss[k] = model_head_forward(m, 0, 1.0f / m->N) / m->N;
        model_backward(m, 0, 0);
        numel = m->table.numel;
        grads[k] = malloc(numel * sizeof(float));
        ops->to_host(grads[k], m->grads, numel * sizeof(float));
        if (k == 1)
            for (int i = 0; i < m->table.n; i++) {
                const ParamTensor *t = &m->table.t[i];
                double e = rel_err(grads[1] + t->offset, grads[0] + t->offset, t->numel);
                if (getenv("VERBOSE")) printf("  %-45s %.3g\n", t->name, e);
                CHECK(e <= model_tol, "gradient of %s: %.3g", t->name, e);
            }
        model_free(m);
        free(host);
    }
    CHECK(fabs(loss[1] - loss[0]) <= model_tol * fabs(loss[0]), "loss %.7g vs %.7g", loss[1],
          loss[0]);
    free(grads[0]), free(grads[1]), free(tok), free(tgt);
    comm_free(&tp);
    check_end();
}

// ---- collectives over MPI_COMM_WORLD through the device communicator ----

static void fill_rank(float *x, size_t n, int rank, int salt) {
    for (size_t i = 0; i < n; i++) x[i] = bf16_round((float)((int)(i % 13) - 6 + rank * salt) * 0.5f);
}

static void test_collectives(void) {
    if (!wanted("collectives")) return;
    const DeviceCommOps *dev = comm_device_ops();
    Comm c;
    comm_init(&c, MPI_COMM_WORLD);
    const char *what = dev && strncmp(dev->name, "nccl", 4) == 0 ? "NCCL collectives"
                                                                   : "host-staged collectives";
    begin("%s on %d rank%s (allreduce, reduce-scatter, all-gather, p2p)", what, c.size,
          c.size > 1 ? "s" : "");
    if (!dev || !c.dev) {
        check_failed(__FILE__, __LINE__, "no device communicator");
        comm_free(&c);
        return;
    }
    int P = c.size, R = c.rank;
    size_t n = 1000;
    float *x = malloc(n * P * sizeof(float)), *want = malloc(n * P * sizeof(float));
    // allreduce sum and max, fp32 and bf16 (values exact in bf16)
    for (int pass = 0; pass < 4; pass++) {
        bool half = pass >= 2, max = pass % 2;
        fill_rank(x, n, R, 3);
        for (size_t i = 0; i < n; i++) {
            double s = 0, mx = -1e30;
            for (int r = 0; r < P; r++) {
                float v = bf16_round((float)((int)(i % 13) - 6 + r * 3) * 0.5f);
                s += v;
                mx = v > mx ? v : mx;
            }
            want[i] = (float)(max ? mx : s);
        }
        void *d;
        if (half) d = dev_act(x, n);   // the act type: bf16 in bf16 mode
        else d = dev_f32(x, n);
        DType t = half ? (gpu->act_bytes == 2 ? DTYPE_BF16 : DTYPE_F32) : DTYPE_F32;
        dev->allreduce(c.dev, d, n, t, max ? REDUCE_MAX : REDUCE_SUM);
        float *h = half ? host_act(d, n) : host_f32(d, n);
        for (size_t i = 0; i < n; i++)
            CHECK(h[i] == want[i], "allreduce %s %s [%zu]: %g, want %g", half ? "act" : "f32",
                  max ? "max" : "sum", i, h[i], want[i]);
        gpu->release(d);
        free(h);
    }
    // f64 and i32 sums
    {
        double dv[3] = {1.5 + R, -2.0, 1e10};
        int32_t iv[3] = {R, 7, -1};
        double *dd = gpu->alloc(sizeof dv);
        int32_t *di = gpu->alloc(sizeof iv);
        gpu->to_device(dd, dv, sizeof dv);
        gpu->to_device(di, iv, sizeof iv);
        dev->allreduce(c.dev, dd, 3, DTYPE_F64, REDUCE_SUM);
        dev->allreduce(c.dev, di, 3, DTYPE_I32, REDUCE_SUM);
        gpu->to_host(dv, dd, sizeof dv);
        gpu->to_host(iv, di, sizeof iv);
        double rs = (double)P * (P - 1) / 2;
        CHECK(dv[0] == 1.5 * P + rs && dv[1] == -2.0 * P && dv[2] == 1e10 * P, "f64 allreduce");
        CHECK(iv[0] == (int32_t)rs && iv[1] == 7 * P && iv[2] == -P, "i32 allreduce");
        gpu->release(dd), gpu->release(di);
    }
    // reduce-scatter (P·n → n) and all-gather, out of place and in place
    fill_rank(x, n * P, R, 1);
    float *ds = dev_f32(x, n * P), *dr = dev_f32(x, n);
    comm_dev_reduce_scatter(&c, ds, dr, n, DTYPE_F32);
    float *h = host_f32(dr, n);
    for (size_t i = 0; i < n; i++) {
        double s = 0;
        for (int r = 0; r < P; r++)
            s += bf16_round((float)((int)((R * n + i) % 13) - 6 + r) * 0.5f);
        CHECK(h[i] == (float)s, "reduce-scatter [%zu]: %g, want %g", i, h[i], s);
    }
    free(h);
    fill_rank(x, n, R, 5);
    float *dg = gpu->alloc(n * P * sizeof(float)), *dmine = dev_f32(x, n);
    comm_dev_allgather(&c, dmine, dg, n, DTYPE_F32);
    float *dg2 = gpu->alloc(n * P * sizeof(float));
    gpu->copy(dg2 + (size_t)R * n, dmine, n * sizeof(float));
    comm_dev_allgather(&c, dg2 + (size_t)R * n, dg2, n, DTYPE_F32);   // in place
    float *h1 = host_f32(dg, n * P), *h2 = host_f32(dg2, n * P);
    for (int r = 0; r < P; r++)
        for (size_t i = 0; i < n; i++) {
            float w = bf16_round((float)((int)(i % 13) - 6 + r * 5) * 0.5f);
            CHECK(h1[(size_t)r * n + i] == w && h2[(size_t)r * n + i] == w,
                  "all-gather block %d [%zu]", r, i);
        }
    // p2p along a chain (rank r → r + 1), as the pipeline does
    if (P > 1) {
        float *buf = dev_f32(x, n);
        CommRequest rs = comm_request_none(), rr = comm_request_none();
        if (R > 0) rr = comm_dev_irecv(&c, buf, n, DTYPE_F32, R - 1, 0);
        comm_dev_wait(&c, &rr);
        if (R + 1 < P) rs = comm_dev_isend(&c, buf, n, DTYPE_F32, R + 1, 0);
        comm_dev_wait(&c, &rs);
        float *hb = host_f32(buf, n);
        fill_rank(want, n, 0, 5);
        CHECK(memcmp(hb, want, n * sizeof(float)) == 0, "p2p chain: rank %d got other data", R);
        gpu->release(buf);
        free(hb);
    }
    gpu->release(ds), gpu->release(dr), gpu->release(dg), gpu->release(dmine), gpu->release(dg2);
    free(x), free(want), free(h1), free(h2);
    comm_free(&c);
    check_end();
}

// ---- attention micro-benchmark (--bench-attention) ----

// The median of n times in seconds, in milliseconds (v is sorted).
static double median_ms(double *v, int n) {
    for (int i = 1; i < n; i++)   // insertion sort
        for (int j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double x = v[j];
            v[j] = v[j - 1], v[j - 1] = x;
        }
    return 1e3 * v[n / 2];
}

// Milliseconds per call of fwd (or fwd then bwd when backward), the median of
// `reps` synchronised calls after warm-up.
static double time_attention(bool backward, void *o, void *st, void *q, void *dq, void *work,
                             void *dout, int B, int T, int nh, int nkv, int hd, int reps) {
    double t[64], fwd_only[64];
    for (int r = -3; r < reps; r++) {
        gpu->sync();
        double t0 = MPI_Wtime();
        gpu->attention_forward(o, st, q, B, T, nh, nkv, hd);
        gpu->sync();
        double t1 = MPI_Wtime();
        if (backward) gpu->attention_backward(dq, work, dout, q, o, st, B, T, nh, nkv, hd);
        gpu->sync();
        double t2 = MPI_Wtime();
        if (r >= 0) fwd_only[r] = t1 - t0, t[r] = t2 - t1;
    }
    return median_ms(backward ? t : fwd_only, reps);
}

// Causal attention TFLOP/s of one implementation at one shape: forward
// 4·B·nh·T²·hd / 2 FLOPs, backward 2.5 times that.
static void bench_attention(AttentionImpl impl, int B, int T, int nh, int nkv, int hd) {
    if (!attention_use(impl)) {
        printf("attention-bench %s: not in this build\n", impl == ATT_CUDNN ? "cudnn" : "own");
        return;
    }
    const char *label = attention_label(impl, B, T, nh, nkv, hd);
    size_t N = (size_t)B * T, nq = N * (nh + 2 * nkv) * hd, no = N * nh * hd;
    float *hq = rnd(nq, 1.0f), *hdo = rnd(no, 1.0f);
    void *q = dev_act(hq, nq), *dout = dev_act(hdo, no), *o = gpu->alloc(no * gpu->act_bytes);
    void *dq = gpu->alloc(nq * gpu->act_bytes);
    void *st = gpu->alloc(gpu->attention_state_bytes(B, T, nh));
    void *work = gpu->alloc(gpu->attention_work_bytes(B, T, nh, hd));
    double flops = 4.0 * B * nh * (double)T * T * hd / 2;
    double f = time_attention(false, o, st, q, dq, work, dout, B, T, nh, nkv, hd, 21);
    double b = time_attention(true, o, st, q, dq, work, dout, B, T, nh, nkv, hd, 21);
    printf("attention-bench %-26s B %d T %d heads %d kv %d hd %3d: forward %7.3f ms %6.1f TFLOP/s, "
           "backward %7.3f ms %6.1f TFLOP/s\n", label, B, T, nh, nkv, hd, f, flops / f / 1e9, b,
           2.5 * flops / b / 1e9);
    fflush(stdout);
    gpu->release(q), gpu->release(dout), gpu->release(o), gpu->release(dq);
    gpu->release(st), gpu->release(work);
    free(hq), free(hdo);
}

// Milliseconds of one rank's share of ring attention (the own kernels' block
// ops): its queries against the cp ranks' blocks, forward (own block first,
// as in training) or backward; the median of `reps` synchronised rounds.
static double time_ring(bool backward, const RingShape *z, RingSide *x, void *work, int reps) {
    double t[64];
    for (int r = -3; r < reps; r++) {
        gpu->sync();
        double t0 = MPI_Wtime();
        for (int j = 0; j < z->cp; j++) {   // rank 0 − j's block (its keys: kv[0] for all)
            AttentionBlock a = ring_block(z, x, 0, (z->cp - j) % z->cp);
            if (backward)
                gpu->attention_block_backward(x->dqkv[0], x->dkv[0], work, x->dout[0], x->qkv[0],
                                              x->kv[0], x->out[0], x->lse[0], &a);
            else
                gpu->attention_block_forward(x->out[0], x->lse[0], x->qkv[0], x->kv[0], &a,
                                             j == 0);
        }
        gpu->sync();
        if (r >= 0) t[r] = MPI_Wtime() - t0;
    }
    return median_ms(t, reps);
}

// Rank 0's ring attention blocks at cp ranks (sequence T, its 2 chunks),
// TFLOP/s over the (query, key) pairs it computes: 4·hd per pair and head
// forward, 2.5 times that backward.  Every block reads the same keys and adds
// to the same gradients (the values do not change the time), at the positions
// of its rank.
static void bench_ring(int cp, int B, int T, int nh, int nkv, int hd) {
    attention_use(ATT_OWN);
    RingShape z = {cp, B, T, T / cp, nh, nkv, hd, (nh + 2 * nkv) * hd, 2 * nkv * hd, nh * hd};
    RingSide x = {0};
    size_t rows = (size_t)B * z.Tl;
    int32_t *pos = malloc((size_t)cp * z.Tl * sizeof(int32_t));
    for (int r = 0; r < cp; r++)
        for (int i = 0; i < z.Tl; i++) pos[r * z.Tl + i] = cp_position(T, cp, r, i);
    double pairs = 0;   // rank 0's queries against every rank's keys
    for (int i = 0; i < z.Tl; i++)
        for (int k = 0; k < cp * z.Tl; k++) pairs += pos[k] <= pos[i];
    x.pos = gpu->alloc((size_t)cp * z.Tl * sizeof(int32_t));
    gpu->to_device(x.pos, pos, (size_t)cp * z.Tl * sizeof(int32_t));
    float *hq = rnd(rows * z.ld, 1.0f), *hdo = rnd(rows * z.ldo, 1.0f);
    float *hkv = rnd(rows * z.kvw, 1.0f);
    x.qkv[0] = dev_act(hq, rows * z.ld), x.dout[0] = dev_act(hdo, rows * z.ldo);
    x.kv[0] = dev_act(hkv, rows * z.kvw);
    x.out[0] = gpu->alloc(rows * z.ldo * gpu->act_bytes);
    x.dqkv[0] = gpu->alloc(rows * z.ld * gpu->act_bytes);
    x.dkv[0] = gpu->alloc(rows * z.kvw * gpu->act_bytes);
    x.lse[0] = gpu->alloc(rows * nh * sizeof(float));
    gpu->zero(x.dqkv[0], rows * z.ld * gpu->act_bytes);
    gpu->zero(x.dkv[0], rows * z.kvw * gpu->act_bytes);
    void *work = gpu->alloc(gpu->attention_work_bytes(B, z.Tl, nh, hd));
    double flops = 4.0 * B * nh * hd * pairs;
    double f = time_ring(false, &z, &x, work, 21), b = time_ring(true, &z, &x, work, 21);
    printf("attention-bench ring blocks cp %d (%s) B %d T %d heads %d kv %d hd %3d, rank 0: "
           "forward %7.3f ms %6.1f TFLOP/s, backward %7.3f ms %6.1f TFLOP/s\n", cp,
           attention_label(ATT_OWN, B, z.Tl, nh, nkv, hd), B, T, nh, nkv, hd, f,
           flops / f / 1e9, b, 2.5 * flops / b / 1e9);
    fflush(stdout);
    void *bufs[] = {x.qkv[0], x.dout[0], x.kv[0], x.out[0], x.dqkv[0], x.dkv[0], x.lse[0],
                    x.pos, work};
    for (size_t i = 0; i < sizeof bufs / sizeof bufs[0]; i++) gpu->release(bufs[i]);
    free(pos), free(hq), free(hdo), free(hkv);
}

// The 1b preset's attention (32 heads, 4 KV, head dim 64) at sequence 2048,
// micro-batch 8, and the same at head dim 128 (16 heads), both implementations;
// then the ring blocks of cp 2 and 4 at the first shape.
static void bench_attention_all(void) {
    char err[512];
    gpu = ops_cuda_create(PRECISION_BF16, 0, err, sizeof err);
    if (!gpu) {
        printf("attention-bench: %s\n", err);
        return;
    }
    bf16 = true;
    int shapes[2][5] = {{8, 2048, 32, 4, 64}, {8, 2048, 16, 4, 128}};
    for (int s = 0; s < 2; s++)
        for (int impl = ATT_CUDNN; impl <= ATT_OWN; impl++)
            bench_attention((AttentionImpl)impl, shapes[s][0], shapes[s][1], shapes[s][2],
                            shapes[s][3], shapes[s][4]);
    bench_ring(2, 8, 2048, 32, 4, 64);
    bench_ring(4, 8, 2048, 32, 4, 64);
}

// The rank's index among the ranks of its node: its GPU, as in llama-train.
static int local_rank(void) {
    int r, n;
    comm_node_rank(&r, &n);
    return r;
}

static void run_all(const char *precision) {
    char err[512];
    Precision p = strcmp(precision, "bf16") == 0 ? PRECISION_BF16 : PRECISION_FP32;
    static bool created = false;   // the backend once; then switched to the other precision
    gpu = created ? ops_cuda_set_precision(p) : ops_cuda_create(p, local_rank(), err, sizeof err);
    created = gpu != NULL;
    if (!gpu) {
        check_begin(precision);
        check_failed(__FILE__, __LINE__, "ops_cuda_create: %s", err);
        return;
    }
    // LLAMA_GPU_TEST_DEVICE_COMM=mpi: the host-staged collectives (ranks may share a GPU).
    const char *dc = getenv("LLAMA_GPU_TEST_DEVICE_COMM");
    bool staged = dc && strcmp(dc, "mpi") == 0;
    comm_set_device_ops(staged ? comm_staged_device_ops(gpu) : comm_nccl_device_ops());
    bf16 = strcmp(precision, "bf16") == 0;
    tol = bf16 ? 1e-2 : 1e-5;
#ifdef LLAMA_GPU_EMU
    const int big = getenv("LLAMA_GPU_TEST_BIG") != NULL;   // slow: one thread at a time
#else
    const int big = !getenv("LLAMA_GPU_TEST_SMALL");
#endif
    test_memory();
    test_conversions();
    test_linear(37, 72, 40);
    test_linear(5, 30, 7);   // unaligned rows: other cuBLASLt algorithms
    if (big) test_linear(512, 1024, 768);
    test_rmsnorm(33, 96);
    test_rmsnorm(7, 50);
    test_rmsnorm(2600, 40);   // more rows than the backward pass has warps
    test_rmsnorm(2100, 9);
    if (big) test_rmsnorm(300, 4096);
    test_add(1000);
    test_add(1001);
    test_add_f32(1000);
    test_add_f32(1001);
    test_rope(2, 7, 4, 2, 8);
    test_rope(2, 5, 2, 1, 64);
    // Attention: T not a multiple of the tiles (64 queries, 64 keys),
    // GQA groups of 1, 2 and 3, head dims of both paths.
    test_attention(2, 37, 4, 2, 64, false);
    test_attention(1, 70, 2, 1, 128, false);
    test_attention(2, 33, 6, 2, 8, false);
    test_attention(1, 20, 3, 3, 32, false);
    test_attention(1, 9, 2, 1, 80, false);
    test_attention(1, 1, 2, 2, 64, false);
    if (bf16) test_attention(2, 37, 4, 2, 64, true);
    test_attention(1, 40, 8, 1, 64, false);    // GQA group 8
    test_attention(1, 33, 8, 2, 128, false);   // GQA group 4
    // Ring attention's blocks: chunks of 20 rows across the SIMT kernels'
    // 32-key tiles, GQA; in bf16 at head dims 64 and 128 the tensor-core
    // kernels: chunks of 6 rows inside one tile, and chunks of 40 and 18 rows
    // across the 64-row tiles (GQA 2 and 4, four ranks); and the SIMT
    // kernels forced at head dim 64.
    test_ring_attention(2, 2, 80, 4, 2, 16, false);
    test_ring_attention(3, 1, 36, 2, 1, 64, false);
    test_ring_attention(2, 2, 160, 4, 2, 64, false);
    test_ring_attention(4, 1, 144, 8, 2, 128, false);
    if (bf16) test_ring_attention(3, 1, 36, 2, 1, 64, true);
    if (big) {
        test_attention(2, 300, 8, 2, 64, false);
        test_attention(1, 257, 4, 1, 128, false);
        test_attention(1, 200, 2, 2, 256, false);
        test_attention(2, 300, 8, 8, 64, false);    // GQA groups 1, (4 above), 8; both head dims
        test_attention(2, 300, 8, 1, 64, false);
        test_attention(1, 257, 8, 8, 128, false);
        test_attention(1, 257, 8, 2, 128, false);
        test_attention(1, 257, 8, 1, 128, false);
    }
    test_swiglu(13, 24);
    test_swiglu(5, 13);
    test_embedding(19, 16, 10, 20);
    test_embedding(7, 12, 0, 9);
    test_cross_entropy(9, 50, 43, 100);
    test_cross_entropy(6, 64, 64, 0);
    test_cross_entropy(7, 64, 61, 64);   // 8-wide vectors, the valid columns end inside one
    if (big) test_cross_entropy(64, 32000, 31990, 32000);
    test_argmax(5, 37, 30);
    test_optimizer(1003);
    test_optimizer(4096);
    test_model(RECOMPUTE_NONE, 64, 4, 2);
    test_model(RECOMPUTE_FULL, 64, 4, 2);
    test_model(RECOMPUTE_SELECTIVE, 64, 4, 2);
    test_model(RECOMPUTE_NONE, 128, 2, 1);   // head dim 64: tensor-core attention in bf16
    test_collectives();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    int n = ops_cuda_device_count();
    if (n == 0) {
        const char *groups[] = {"memory and conversions", "linear", "rmsnorm", "add", "rope",
                                "attention", "swiglu", "embedding", "cross-entropy", "argmax",
                                "optimizer and reductions", "model gradients", "NCCL collectives"};
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
            char label[96];
            snprintf(label, sizeof label, "gpu ops: %s", groups[i]);
            check_begin(label);
            check_skip("no GPU visible");
        }
    } else if (argc > 1 && strcmp(argv[1], "--bench-attention") == 0) {
        bench_attention_all();
    } else {
        run_all("bf16");
        run_all("fp32");
    }
    comm_world_end();
    return check_exit_code();
}

#else   // a build without the CUDA backend

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    check_begin(PREFIX "gpu ops");
    check_skip("this build has no CUDA backend (nvcc was not found)");
    comm_world_end();
    return 0;
}

#endif
