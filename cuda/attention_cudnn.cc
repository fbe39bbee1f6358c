// cuDNN's flash attention behind the op interface's attention calls: the
// scaled-dot-product-attention forward and backward nodes of cuDNN's graph
// API, built through NVIDIA's header-only cudnn-frontend (bf16 in and out,
// fp32 softmax and accumulation, causal, grouped-query).
//
// Layouts are those of ops.h, given to cuDNN as strided views, so nothing is
// copied: Q (B, nh, T, hd), K and V (B, nkv, T, hd) are the head columns of
// qkv (B·T, (nh + 2·nkv)·hd) with strides (T·ld, hd, ld, 1); O and dO
// (B, nh, T, hd) the rows of out (B·T, nh·hd); dQ, dK, dV the head columns of
// dqkv.  The state is cuDNN's softmax statistics, the natural-log log-sum-exp
// of each scaled score row: (B, nh, T, 1) fp32, the own kernels' layout too.
//
// One forward and one backward graph per shape (B, T, nh, nkv, hd), built on
// first use with cuDNN's heuristics and cached; their workspace comes from the
// backend's scratch buffer.  A shape cuDNN refuses (head dim, sequence length,
// an old library) goes to the own kernels, forward and backward together,
// with one line saying why; fp32 always does.
#include "context.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#ifdef LLAMA_CUDNN
#define CUDNN_BUILT_IN 1
#else
#define CUDNN_BUILT_IN 0
#endif

static bool use_cudnn = CUDNN_BUILT_IN;   // --attention

// The name resolves as ops_attention_for says (ops.c: the default, the
// checks and their messages).
bool attention_select(Attention requested, char *err, int err_len) {
    const char *resolved = ops_attention_for(DEVICE_CUDA, requested, err, err_len);
    if (!resolved) return false;
    use_cudnn = strcmp(resolved, "cudnn") == 0;
    return true;
}

const char *attention_selected(void) { return use_cudnn ? "cudnn" : "own"; }

extern "C" const char *ops_cuda_attention_default(void) { return CUDNN_BUILT_IN ? "cudnn" : "own"; }

#if CUDNN_BUILT_IN

#define CUDNN_FRONTEND_SKIP_JSON_LIB 1   // no plan serialisation: faster builds
#include <cudnn.h>
#include <cstring>   // before the frontend, which uses std::strlen without it
#include <cudnn_frontend.h>

#include <map>
#include <memory>
#include <string>
#include <tuple>
#include <unordered_map>

namespace fe = cudnn_frontend;
typedef std::shared_ptr<fe::graph::Tensor_attributes> TensorRef;

enum : int64_t { Q_UID = 1, K_UID, V_UID, O_UID, STATS_UID, DO_UID, DQ_UID, DK_UID, DV_UID };

struct Shape {
    int64_t B, T, nh, nkv, hd;
    int64_t ld() const { return (nh + 2 * nkv) * hd; }   // qkv row: q heads, k heads, v heads
    int64_t od() const { return nh * hd; }               // out row
};

// One shape's graphs; usable == false sends the shape to the own kernels.
struct ShapePlans {
    bool usable;
    std::shared_ptr<fe::graph::Graph> fwd, bwd;
    int64_t fwd_workspace, bwd_workspace;   // bytes
};

static cudnnHandle_t handle;
static bool handle_failed;
static std::map<std::tuple<int, int, int, int, int>, ShapePlans> *plans_by_shape;

// The handle, made on first use on the backend's compute stream; NULL (with
// one line) when cuDNN cannot start on this machine.
static cudnnHandle_t cudnn_handle(void) {
    if (handle || handle_failed) return handle;
    cudnnStatus_t s = cudnnCreate(&handle);
    if (s == CUDNN_STATUS_SUCCESS) s = cudnnSetStream(handle, g_cuda.stream);
    if (s != CUDNN_STATUS_SUCCESS) {
        info("attention: cuDNN %zu could not start (%s); using the own kernels", cudnnGetVersion(),
             cudnnGetErrorString(s));
        handle = NULL;
        handle_failed = true;
        return NULL;
    }
    plans_by_shape = new std::map<std::tuple<int, int, int, int, int>, ShapePlans>();
    return handle;
}

static std::shared_ptr<fe::graph::Graph> new_graph(void) {
    auto g = std::make_shared<fe::graph::Graph>();
    g->set_io_data_type(fe::DataType_t::BFLOAT16)
        .set_intermediate_data_type(fe::DataType_t::FLOAT)
        .set_compute_data_type(fe::DataType_t::FLOAT);
    return g;
}

// (B, heads, T, hd) view of rows `row` elements apart.
static TensorRef heads_tensor(fe::graph::Graph &g, const char *name, int64_t uid, const Shape &s,
                              int64_t heads, int64_t row) {
    return g.tensor(fe::graph::Tensor_attributes()
                        .set_name(name)
                        .set_uid(uid)
                        .set_dim({s.B, heads, s.T, s.hd})
                        .set_stride({s.T * row, s.hd, row, 1}));
}

static void set_heads_output(const TensorRef &t, int64_t uid, const Shape &s, int64_t heads,
                             int64_t row) {
    t->set_output(true).set_uid(uid).set_dim({s.B, heads, s.T, s.hd}).set_stride(
        {s.T * row, s.hd, row, 1});
}

// Statistics (B, nh, T, 1) fp32: the state's layout (B, nh, T).
static void set_stats_layout(const TensorRef &t, const Shape &s) {
    t->set_uid(STATS_UID)
        .set_data_type(fe::DataType_t::FLOAT)
        .set_dim({s.B, s.nh, s.T, 1})
        .set_stride({s.nh * s.T, s.T, 1, 1});
}

static std::shared_ptr<fe::graph::Graph> forward_graph(const Shape &s, float scale) {
    auto g = new_graph();
    TensorRef q = heads_tensor(*g, "Q", Q_UID, s, s.nh, s.ld());
    TensorRef k = heads_tensor(*g, "K", K_UID, s, s.nkv, s.ld());
    TensorRef v = heads_tensor(*g, "V", V_UID, s, s.nkv, s.ld());
    auto opts = fe::graph::SDPA_attributes()
                    .set_name("attention_forward")
                    .set_generate_stats(true)
                    .set_attn_scale(scale)
                    .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                    .set_diagonal_band_right_bound(0);
    auto outs = g->sdpa(q, k, v, opts);
    set_heads_output(outs[0], O_UID, s, s.nh, s.od());
    outs[1]->set_output(true);
    set_stats_layout(outs[1], s);
    return g;
}

static std::shared_ptr<fe::graph::Graph> backward_graph(const Shape &s, float scale) {
    auto g = new_graph();
    TensorRef q = heads_tensor(*g, "Q", Q_UID, s, s.nh, s.ld());
    TensorRef k = heads_tensor(*g, "K", K_UID, s, s.nkv, s.ld());
    TensorRef v = heads_tensor(*g, "V", V_UID, s, s.nkv, s.ld());
    TensorRef o = heads_tensor(*g, "O", O_UID, s, s.nh, s.od());
    TensorRef d_o = heads_tensor(*g, "dO", DO_UID, s, s.nh, s.od());
    TensorRef stats = g->tensor(fe::graph::Tensor_attributes().set_name("stats"));
    set_stats_layout(stats, s);
    auto opts = fe::graph::SDPA_backward_attributes()
                    .set_name("attention_backward")
                    .set_attn_scale(scale)
                    .set_diagonal_alignment(fe::DiagonalAlignment_t::TOP_LEFT)
                    .set_diagonal_band_right_bound(0);
    auto grads = g->sdpa_backward(q, k, v, o, d_o, stats, opts);
    set_heads_output(grads[0], DQ_UID, s, s.nh, s.ld());
    set_heads_output(grads[1], DK_UID, s, s.nkv, s.ld());
    set_heads_output(grads[2], DV_UID, s, s.nkv, s.ld());
    return g;
}

// Validates the graph, picks cuDNN's heuristic plan and builds it; the
// reason on failure.
static bool build_step(fe::error_t e, std::string *why) {
    if (!e.is_good()) *why = e.get_message();
    return e.is_good();
}

static bool build_graph(fe::graph::Graph &g, int64_t *workspace, std::string *why) {
    return build_step(g.validate(), why) && build_step(g.build_operation_graph(handle), why) &&
           build_step(g.create_execution_plans({fe::HeurMode_t::A}), why) &&
           build_step(g.check_support(handle), why) && build_step(g.build_plans(), why) &&
           build_step(g.get_workspace_size(*workspace), why);
}

static ShapePlans build_plans(const Shape &s) {
    ShapePlans p = {false, NULL, NULL, 0, 0};
    float scale = 1.0f / sqrtf((float)s.hd);
    std::string why;
    try {
        p.fwd = forward_graph(s, scale);
        p.bwd = backward_graph(s, scale);
        p.usable = build_graph(*p.fwd, &p.fwd_workspace, &why) &&
                   build_graph(*p.bwd, &p.bwd_workspace, &why);
    } catch (const std::exception &ex) {   // the frontend throws on some library errors
        why = ex.what();
        p.usable = false;
    }
    if (!p.usable) {
        info("attention: cuDNN %zu refuses B %lld, T %lld, %lld heads (%lld KV), head dim %lld "
             "(%s); this shape uses the own kernels", cudnnGetVersion(), (long long)s.B,
             (long long)s.T, (long long)s.nh, (long long)s.nkv, (long long)s.hd,
             why.empty() ? "no reason given" : why.c_str());
        p.fwd = p.bwd = NULL;
    }
    return p;
}

// The plans of this shape when cuDNN runs it, else NULL (own kernels).
static const ShapePlans *plans_for(int B, int T, int nh, int nkv, int hd) {
    static bool fp32_said = false;
    if (!use_cudnn) return NULL;
    if (!g_cuda.bf16) {
        if (!fp32_said)
            info("attention: cuDNN's flash attention needs bf16; fp32 uses the own kernels");
        fp32_said = true;
        return NULL;
    }
    if (!cudnn_handle()) return NULL;
    auto key = std::make_tuple(B, T, nh, nkv, hd);
    auto it = plans_by_shape->find(key);
    if (it == plans_by_shape->end())
        it = plans_by_shape->emplace(key, build_plans(Shape{B, T, nh, nkv, hd})).first;
    return it->second.usable ? &it->second : NULL;
}

static void execute(const fe::graph::Graph &g, std::unordered_map<int64_t, void *> &pack,
                    int64_t workspace, const char *what, int B, int T, int nh, int nkv, int hd) {
    void *ws = workspace > 0 ? cuda_scratch((size_t)workspace) : NULL;
    fe::error_t e = g.execute(handle, pack, ws);
    if (!e.is_good())
        fatal("cuDNN attention %s failed (B %d, T %d, %d heads, %d KV, head dim %d): %s; "
              "--attention own uses the own kernels", what, B, T, nh, nkv, hd,
              e.get_message().c_str());
}

// The bf16 element `elements` past base.
static void *at(const void *base, int64_t elements) {
    return (void *)((const uint16_t *)base + elements);
}

bool attention_cudnn_forward(void *out, void *state, const void *qkv, int B, int T, int nh,
                             int nkv, int hd) {
    const ShapePlans *p = plans_for(B, T, nh, nkv, hd);
    if (!p) return false;
    std::unordered_map<int64_t, void *> pack = {
        {Q_UID, at(qkv, 0)}, {K_UID, at(qkv, (int64_t)nh * hd)},
        {V_UID, at(qkv, (int64_t)(nh + nkv) * hd)}, {O_UID, out}, {STATS_UID, state}};
    execute(*p->fwd, pack, p->fwd_workspace, "forward", B, T, nh, nkv, hd);
    return true;
}

bool attention_cudnn_backward(void *dqkv, const void *dout, const void *qkv, const void *out,
                              const void *state, int B, int T, int nh, int nkv, int hd) {
    const ShapePlans *p = plans_for(B, T, nh, nkv, hd);
    if (!p) return false;
    int64_t k0 = (int64_t)nh * hd, v0 = (int64_t)(nh + nkv) * hd;
    std::unordered_map<int64_t, void *> pack = {
        {Q_UID, at(qkv, 0)},    {K_UID, at(qkv, k0)},   {V_UID, at(qkv, v0)},
        {O_UID, (void *)out},   {DO_UID, (void *)dout}, {STATS_UID, (void *)state},
        {DQ_UID, at(dqkv, 0)},  {DK_UID, at(dqkv, k0)}, {DV_UID, at(dqkv, v0)}};
    execute(*p->bwd, pack, p->bwd_workspace, "backward", B, T, nh, nkv, hd);
    return true;
}

extern "C" size_t ops_cuda_cudnn_version(void) { return cudnnGetVersion(); }

extern "C" bool ops_cuda_attention_uses_cudnn(int B, int T, int nh, int nkv, int hd) {
    return plans_for(B, T, nh, nkv, hd) != NULL;
}

#else   // no cuDNN in this build: the own kernels always

bool attention_cudnn_forward(void *, void *, const void *, int, int, int, int, int) {
    return false;
}

bool attention_cudnn_backward(void *, const void *, const void *, const void *, const void *,
                              int, int, int, int, int) {
    return false;
}

extern "C" size_t ops_cuda_cudnn_version(void) { return 0; }

extern "C" bool ops_cuda_attention_uses_cudnn(int, int, int, int, int) { return false; }

#endif
