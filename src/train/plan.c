// The planner: layouts, their memory (memory_estimate) and predicted time.
#include "train/plan.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "parallel/pipeline.h"
#include "train/memory.h"
#include "train/options.h"
#include "train/traffic.h"
#include "train/train.h"

void plan_request_defaults(PlanRequest *r) {
    memset(r, 0, sizeof *r);
    r->tp = r->cp = r->pp = r->vpp = r->zero = r->B = r->M = r->recompute = r->sp = -1;
    r->offload = -1;
    r->max_micro_batch = 64;
}

void plan_layout_name(const PlanLayout *l, char *out, int len) {
    char vpp[16] = "", cp[16] = "";
    if (l->vpp > 1) snprintf(vpp, sizeof vpp, " vpp %d", l->vpp);
    if (l->cp > 1) snprintf(cp, sizeof cp, " cp %d", l->cp);
    snprintf(out, (size_t)len, "tp %d%s%s pp %d%s dp %d zero %d%s recompute %s b %d ga %d", l->tp,
             l->sp ? " sp" : "", cp, l->pp, vpp, l->dp, l->zero, l->offload ? " offload" : "",
             model_recompute_name(l->recompute), l->B, l->M);
}

// ---- what llama-train accepts ----

// The layout as llama-train's options, on the profile's device (what
// llama-train refuses on GPUs beyond its own checks is the planner's, below).
static TrainOptions layout_options(const PlanRequest *r, const PlanLayout *l) {
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    o.max_length = r->T;
    o.batch_size = l->B;
    o.grad_accum = l->M;
    o.tp = l->tp;
    o.cp = l->cp;
    o.pp = l->pp;
    o.vpp = l->vpp;
    o.zero = l->zero;
    o.sp = l->sp;
    o.recompute = l->recompute;
    o.offload = l->offload ? 1 : 0;
    o.device = r->machine->gpu ? DEVICE_CUDA : DEVICE_CPU;
    o.precision = r->machine->act_bytes == 2 ? PRECISION_BF16 : PRECISION_FP32;
    return o;
}

// --offload optimizer is planned on GPU profiles that say what the host holds and how
// fast its AdamW runs.
static bool offload_planned(const Machine *m) {
    return m->gpu && m->host_memory_gib > 0 && m->host_optimizer_gbs > 0;
}

static int layout_ranks(const PlanLayout *l) { return l->tp * l->cp * l->pp * l->dp; }

// Whether ring attention (--cp) runs at the profile's flash-attention rates:
// on CPU ranks, and on GPUs where its blocks take the tensor-core kernels
// (bf16, head dim 64 or 128); elsewhere the SIMT kernels, far slower.
static bool ring_at_flash_rates(const PlanRequest *r) {
    int hd = config_head_dim(&r->cfg);
    return !r->machine->gpu || (r->machine->act_bytes == 2 && (hd == 64 || hd == 128));
}

// llama-train's own check of the layout (trainer_check_options), and what it
// refuses on GPUs today.
static bool layout_accepted(const PlanRequest *r, const PlanLayout *l, char *err, int len) {
    TrainOptions o = layout_options(r, l);
    if (!trainer_check_options(&o, &r->cfg, layout_ranks(l), err, len)) return false;
    if (l->cp > 1 && !ring_at_flash_rates(r)) {
        snprintf(err, len, "--cp on GPUs runs ring attention on the tensor-core kernels in bf16 at "
                 "head dims 64 and 128 only (here the SIMT ones, far below the profile's "
                 "flash-attention rates): not planned");
        return false;
    }
    if (l->offload && !offload_planned(r->machine)) {
        snprintf(err, len, "--offload optimizer: %s", r->machine->gpu
                 ? "the machine profile gives no host_memory_gib and host_optimizer_gbs"
                 : "CPU ranks keep the optimizer in host memory already");
        return false;
    }
    return true;
}

// ---- the model's work per micro-batch on one stage ----

typedef struct {
    double matmul, attention, elementwise, overhead;   // seconds
    double fwd, bwd;                                   // the same total, by pass
} Work;

static double matmul_seconds(const Machine *m, double N, double in, double out) {
    double least = fmin(N, fmin(in, out));
    double rate = least < m->matmul_small_dim ? m->matmul_small_tflops : m->matmul_tflops;
    return 2.0 * N * in * out / (rate * 1e12);
}

static void work_add(Work *w, double matmul, double attention, double bytes, double ops,
                     const Machine *m) {
    double el = bytes / (m->elementwise_gbs * 1e9), oh = ops * m->op_overhead_us * 1e-6;
    w->matmul += matmul;
    w->attention += attention;
    w->elementwise += el;
    w->overhead += oh;
}

// Attention's rate at head dim hd relative to the profile's at hd0: per score
// a tile does hd multiply-adds and the softmax's fixed work, worth about
// ATTENTION_SCORE_WORK of them (fitted: the CPU kernels at hd 8 and 64, and
// FlashAttention-2's published hd 64 and 128 rates, both give 27–34), so
// the rate goes as hd / (hd + ATTENTION_SCORE_WORK).
#define ATTENTION_SCORE_WORK 32.0
static double attention_head_dim_factor(double hd, double hd0) {
    return (hd / (hd + ATTENTION_SCORE_WORK)) / (hd0 / (hd0 + ATTENTION_SCORE_WORK));
}

// One decoder layer, forward (and what recomputation reruns) and backward.
static void layer_work(const PlanRequest *r, const PlanLayout *l, Work *w) {
    const ModelConfig *c = &r->cfg;
    const Machine *m = r->machine;
    double N = (double)l->B * r->T / l->cp, tp = l->tp, a = (double)m->act_bytes, D = c->dim;
    double hd = config_head_dim(c), q = c->n_heads * hd / tp, kv = c->n_kv_heads * hd / tp;
    double F = c->ffn_dim / tp, R = l->sp ? N / tp : N, mm = 0;
    LinearShape s[LINEAR_COUNT];
    params_linear_shapes(c, l->tp, s);
    for (int k = 0; k < LINEAR_HEAD; k++) mm += matmul_seconds(m, N, s[k].in, s[k].out);
    // Causal: this rank's N queries see T / 2 keys on average (CP's chunks balance it).
    double slow = attention_head_dim_factor(hd, m->attention_head_dim);
    double att_f = 2.0 * N * r->T * q / (slow * m->attention_fwd_tflops * 1e12);
    double att_b = 2.5 * 2.0 * N * r->T * q / (slow * m->attention_bwd_tflops * 1e12);
    // Element-wise bytes: norms, RoPE, residual adds, SwiGLU (forward), their backward.
    double norms = 2 * R * D * a, rope = 2 * N * (q + kv) * a, add = 3 * R * D * a;
    double swiglu = 3 * N * F * a;
    double el_f = 2 * norms + rope + 2 * add + swiglu;
    double el_b = 2 * 2 * norms + rope + 2 * add + 5 * N * F * a;
    double ops_f = 11, ops_b = 14;
    double rerun = l->recompute == RECOMPUTE_FULL ? 1 : 0;
    double el_re = l->recompute == RECOMPUTE_FULL ? el_f
                   : l->recompute == RECOMPUTE_SELECTIVE ? 2 * norms + swiglu : 0;
    double ops_re = l->recompute == RECOMPUTE_FULL ? ops_f
                    : l->recompute == RECOMPUTE_SELECTIVE ? 3 : 0;
    Work f = {0}, b = {0};
    work_add(&f, mm, att_f, el_f, ops_f, m);
    work_add(&b, 2 * mm + rerun * mm, att_b + rerun * att_f, el_b + el_re, ops_b + ops_re, m);
    w->matmul += f.matmul + b.matmul;
    w->attention += f.attention + b.attention;
    w->elementwise += f.elementwise + b.elementwise;
    w->overhead += f.overhead + b.overhead;
    w->fwd += f.matmul + f.attention + f.elementwise + f.overhead;
    w->bwd += b.matmul + b.attention + b.elementwise + b.overhead;
}

// The head (final norm, LM head, vocab-parallel cross-entropy) and the embedding.
static void ends_work(const PlanRequest *r, const PlanLayout *l, const ModelPart *p, Work *w) {
    const Machine *m = r->machine;
    double N = (double)l->B * r->T / l->cp, a = (double)m->act_bytes, D = r->cfg.dim;
    double R = l->sp ? N / l->tp : N;
    Work f = {0}, b = {0};
    if (p->last) {
        LinearShape s[LINEAR_COUNT];
        params_linear_shapes(&r->cfg, l->tp, s);
        double V = s[LINEAR_HEAD].out, mm = matmul_seconds(m, N, D, V);   // this rank's vocab rows
        work_add(&f, mm, 0, 2 * R * D * a + 2 * N * V * a, 4, m);
        work_add(&b, 2 * mm, 0, 4 * R * D * a + 2 * N * V * a, 4, m);
    }
    if (p->first) {
        work_add(&f, 0, 0, 2 * R * D * a, 1, m);
        work_add(&b, 0, 0, 2 * R * D * 4.0, 1, m);
    }
    w->matmul += f.matmul + b.matmul;
    w->elementwise += f.elementwise + b.elementwise;
    w->overhead += f.overhead + b.overhead;
    w->fwd += f.matmul + f.elementwise + f.overhead;
    w->bwd += b.matmul + b.elementwise + b.overhead;
}

static Work stage_work(const PlanRequest *r, const PlanLayout *l, const ModelPart *p) {
    Work one = {0}, w = {0};
    layer_work(r, l, &one);
    double L = p->n_layers;
    w = (Work){one.matmul * L, one.attention * L, one.elementwise * L, one.overhead * L,
               one.fwd * L, one.bwd * L};
    ends_work(r, l, p, &w);
    return w;
}

// ---- links ----

// Ranks on one node: devices_per_node, or with `nodes` the devices spread
// over them (more than devices_per_node when CPU ranks oversubscribe cores).
static int ranks_per_node(const PlanRequest *r) {
    const Machine *m = r->machine;
    int spread = m->nodes > 0 ? (r->devices + m->nodes - 1) / m->nodes : 0;
    return spread > m->devices_per_node ? spread : m->devices_per_node;
}

// Bytes/s and latency of a group of `size` ranks `stride` apart in rank order
// (TP varies fastest, then DP, then PP): inside a node, or across nodes, where
// the groups of a node share its network bandwidth.
static double link_rate(const PlanRequest *r, int stride, int size, bool p2p, double *latency) {
    const Machine *m = r->machine;
    int dpn = ranks_per_node(r);
    bool one_node = (long)stride * size <= dpn;
    if (one_node) {
        *latency = m->intra_node_latency_us * 1e-6;
        return (p2p ? m->intra_node_p2p_gbs : m->intra_node_gbs) * 1e9;
    }
    *latency = m->inter_node_latency_us * 1e-6;
    int per_node = stride >= dpn ? 1 : dpn / stride;   // members of the group on one node
    if (per_node > size) per_node = size;
    double net = m->inter_node_gbs * per_node / dpn;
    return fmin(net, p2p ? m->intra_node_p2p_gbs : m->intra_node_gbs) * 1e9;
}

// ---- one stage ----

typedef struct {
    Work work;              // per micro-batch
    double tp, cp, pp;      // per micro-batch, exposed
    double dp, optimizer;   // per step, exposed
    double mem, host;       // bytes per rank: the device's, the offloaded optimizer's
} StageTime;

static ModelPart stage_part(const PlanRequest *r, const PlanLayout *l, int stage) {
    TrainOptions o = layout_options(r, l);
    return trainer_part(&o, &r->cfg, l->dp * l->cp, 0, 0, stage);   // layout_accepted checked it
}

static MemoryLayout stage_memory_layout(const PlanRequest *r, const PlanLayout *l, int stage) {
    TrainOptions o = layout_options(r, l);
    return trainer_memory_layout(&o, &r->cfg, stage);
}

// Tensor-parallel collectives per micro-batch (traffic.c's count).
static double tp_collectives(const PlanLayout *l, const ModelPart *p) {
    bool full = l->recompute == RECOMPUTE_FULL;
    double per_layer = l->sp ? 10 + (full ? 3 : 0) + 1 : 4 + (full ? 1 : 0);
    return p->n_layers * per_layer + (p->first ? (l->sp ? 2 : 1) : 0) +
           (p->last ? (l->sp ? 4 : 2) : 0);
}

// Data-parallel time left exposed: what runs during the backward pass (and
// under ZeRO-3 the forward pass) hides behind it, except the last unit's share.
static double dp_exposed(const PlanRequest *r, const PlanLayout *l, const ModelPart *p,
                         const Work *w, double bytes) {
    if (l->dp * l->cp == 1) return 0;
    const Machine *m = r->machine;
    double lat, rate = link_rate(r, l->tp, l->dp * l->cp, false, &lat);
    double units = p->n_layers + (p->first ? 1 : 0) + (p->last ? 1 : 0), M = l->M;
    double a = (double)m->act_bytes;
    double colls = units * (l->zero == 0 ? 1 : l->zero == 1 ? 2 : l->zero == 2 ? M + 1 : 3 * M);
    double t = bytes / rate + colls * lat;
    double hideable = l->zero == 0 || l->zero == 3 ? 1 : l->zero == 1 ? 4 / (4 + a) : 4 * M / (4 * M + a);
    double window = l->zero <= 1 ? w->bwd : l->zero == 2 ? M * w->bwd : M * (w->fwd + w->bwd);
    double hidden = m->comm_overlap * fmin(hideable * t * (1 - 1 / units), window);
    return t - hidden;
}

// The optimizer step: on the device, master weights, moments and gradients
// streamed once; offloaded, the fp32 gradient shard down the host link, the
// host's AdamW (the same bytes) and the compute weights back up.
static double optimizer_seconds(const Machine *m, const MemoryEstimate *e) {
    double a = (double)m->act_bytes, fixed = 4 * m->op_overhead_us * 1e-6;
    if (e->host > 0) {
        double shard = e->host / 16.0;   // master, m, v and the gradient's copy, fp32 each
        return shard * (4 + a) / (m->host_link_gbs * 1e9) +
               shard * (32 + a) / (m->host_optimizer_gbs * 1e9) + fixed;
    }
    double shard = e->adam / 8.0;   // Adam: two fp32 moments
    return (shard * (32 + a) + e->grads) / (m->optimizer_gbs * 1e9) + fixed;
}

static StageTime stage_time(const PlanRequest *r, const PlanLayout *l, int stage) {
    const Machine *m = r->machine;
    ModelPart p = stage_part(r, l, stage);
    MemoryLayout lay = stage_memory_layout(r, l, stage);
    MemoryEstimate e = memory_estimate(&r->cfg, &p, &lay);
    Traffic tr = traffic_estimate(&r->cfg, &p, &lay, l->dp * l->cp);
    StageTime s = {.work = stage_work(r, l, &p), .mem = e.total, .host = e.host};
    double lat, rate = link_rate(r, 1, l->tp, false, &lat);
    if (l->tp > 1) s.tp = tr.tp / l->M / rate + tp_collectives(l, &p) * lat;
    if (l->cp > 1) {   // per layer: (cp − 1) hops forward (again when recomputed), 2·cp − 1 back
        rate = link_rate(r, l->tp, l->cp, true, &lat);
        double hops = (l->recompute == RECOMPUTE_FULL ? 3.0 : 2.0) * (l->cp - 1) + l->cp;
        s.cp = tr.cp / l->M / rate + p.n_layers * hops * lat;
    }
    if (l->pp > 1) {
        rate = link_rate(r, l->tp * l->cp * l->dp, l->pp, true, &lat);
        int V = part_chunks(&p), sends = 2 * V - (p.first ? 1 : 0) - (p.last ? 1 : 0);
        s.pp = tr.pp / l->M / rate + sends * lat;
    }
    s.dp = dp_exposed(r, l, &p, &s.work, tr.dp);
    s.optimizer = optimizer_seconds(m, &e);
    return s;
}

static double mb_seconds(const StageTime *s) {
    const Work *w = &s->work;
    return w->matmul + w->attention + w->elementwise + w->overhead + s->tp + s->cp + s->pp;
}

// The mean of the end stages' times per micro-batch (the middle stages are
// the first one's layers without the embedding).
static StageTime stage_mean(const StageTime *a, const StageTime *b) {
    StageTime s = *a;
    s.work.matmul = (a->work.matmul + b->work.matmul) / 2;
    s.work.attention = (a->work.attention + b->work.attention) / 2;
    s.work.elementwise = (a->work.elementwise + b->work.elementwise) / 2;
    s.work.overhead = (a->work.overhead + b->work.overhead) / 2;
    s.tp = (a->tp + b->tp) / 2, s.cp = (a->cp + b->cp) / 2, s.pp = (a->pp + b->pp) / 2;
    return s;
}

// The offloaded optimizer's host memory on a node: its devices' share at the
// largest stage's (stages may share a node).
static double node_host_bytes(const PlanRequest *r, const StageTime *first, const StageTime *last) {
    return fmax(first->host, last->host) * fmin(r->devices, r->machine->devices_per_node);
}

// The pipeline's time: M micro-batches at the slowest stage's pace plus the
// fill and drain, which pass through the other stages (the mean stage's
// time: the bubble fraction of equal stages applied to it).  With more ranks
// than cores (share > 1) the ranks' work shares the cores, a waiting stage
// lending its core: the step is the larger of the shared work and the
// pipeline's critical path, and the parts shown are the mean stage's.
static void predict_from(const PlanRequest *r, const PlanLayout *l, const StageTime *first,
                         const StageTime *last, PlanRow *out) {
    const Machine *m = r->machine;
    memset(out, 0, sizeof *out);
    out->lay = *l;
    StageTime mean = stage_mean(first, last);
    const StageTime *slow = mb_seconds(last) >= mb_seconds(first) ? last : first;
    double M = l->M, b = pipeline_bubble(l->pp, l->M, l->vpp);
    double share = m->nodes > 0 ? fmax(1.0, (double)r->devices / (m->nodes * m->devices_per_node)) : 1;
    const StageTime *shown = share > 1 ? &mean : slow;
    out->mem = fmax(first->mem, last->mem);
    out->host_mem = node_host_bytes(r, first, last);
    out->matmul = share * M * shown->work.matmul;
    out->attention = share * M * shown->work.attention;
    out->elementwise = share * M * shown->work.elementwise;
    out->overhead = share * M * shown->work.overhead;
    out->tp_comm = share * M * shown->tp;
    out->cp_comm = share * M * shown->cp;
    out->pp_comm = share * M * shown->pp;
    double busy = share * M * mb_seconds(shown);
    double path = M * mb_seconds(slow) + M * mb_seconds(&mean) * b / (1 - b);
    out->bubble = fmax(busy, path) - busy;
    out->dp_comm = share * fmax(first->dp, last->dp);
    out->optimizer = share * fmax(first->optimizer, last->optimizer);
    out->step = busy + out->bubble + out->dp_comm + out->optimizer;
    out->tokens_per_s = (double)r->global_tokens / out->step;
    out->tflops = out->tokens_per_s * config_flops_per_token(&r->cfg, r->T) / r->devices / 1e12;
    out->mfu = out->tflops / m->peak_tflops;
    out->tflops_8n = out->tokens_per_s * 8.0 * (double)config_params_total(&r->cfg) / r->devices / 1e12;
}

// The first and the last stage (the largest in memory and the slowest; the
// middle ones are the first's layers without the embedding).
static void end_stages(const PlanRequest *r, const PlanLayout *l, StageTime *first,
                       StageTime *last) {
    *first = stage_time(r, l, 0);
    *last = l->pp > 1 ? stage_time(r, l, l->pp - 1) : *first;
}

void plan_predict(const PlanRequest *r, const PlanLayout *l, PlanRow *out) {
    StageTime first, last;
    end_stages(r, l, &first, &last);
    predict_from(r, l, &first, &last, out);
}

// ---- enumeration ----

typedef struct {
    PlanRow *rows;
    int n, cap;
} Rows;

static PlanRow *rows_push(Rows *rs) {
    if (rs->n == rs->cap) {
        rs->cap = rs->cap ? 2 * rs->cap : 256;
        rs->rows = xrealloc(rs->rows, (size_t)rs->cap * sizeof *rs->rows);
    }
    PlanRow *row = &rs->rows[rs->n++];
    memset(row, 0, sizeof *row);
    return row;
}

static bool wanted(int filter, int value) { return filter < 0 || filter == value; }

// A layout, with llama-train's reason when it refuses it (predicted later).
// A row for a layout that cannot be planned, with the reason (--all lists it).
static void add_refused(Rows *rs, const PlanLayout *l, const char *why) {
    PlanRow *row = rows_push(rs);
    row->lay = *l;
    snprintf(row->why, sizeof row->why, "refused: %s", why);
}

static void add_layout(const PlanRequest *r, const PlanLayout *l, Rows *rs) {
    char why[320];
    if (layout_accepted(r, l, why, sizeof why)) rows_push(rs)->lay = *l;
    else add_refused(rs, l, why);
}

static bool refused(const PlanRow *row) { return strncmp(row->why, "refused: ", 9) == 0; }

// Judges an accepted layout's memory, and predicts its time when it fits.
static void judge(const PlanRequest *r, PlanRow *row) {
    const Machine *m = r->machine;
    double usable = m->usable_memory * m->device_memory_gib * 1073741824.0;
    StageTime first, last;
    end_stages(r, &row->lay, &first, &last);
    double mem = fmax(first.mem, last.mem), host = node_host_bytes(r, &first, &last);
    double host_usable = m->usable_memory * m->host_memory_gib * 1073741824.0;
    if (mem <= usable && host <= host_usable) {
        PlanLayout l = row->lay;
        predict_from(r, &l, &first, &last, row);
        row->fits = true;
        return;
    }
    row->mem = mem;
    row->host_mem = host;
    char need[32], have[32], dev[32];
    if (mem > usable)
        snprintf(row->why, sizeof row->why, "needs %s per rank, %s usable of %s",
                 format_bytes(mem, need, sizeof need), format_bytes(usable, have, sizeof have),
                 format_bytes(m->device_memory_gib * 1073741824.0, dev, sizeof dev));
    else
        snprintf(row->why, sizeof row->why, "the offloaded optimizer needs %s of host memory "
                 "per node, %s usable of %s", format_bytes(host, need, sizeof need),
                 format_bytes(host_usable, have, sizeof have),
                 format_bytes(m->host_memory_gib * 1073741824.0, dev, sizeof dev));
}

// The one split of the DP rank's sequences a pinned -b or --grad-accum
// gives, or a refused row saying why there is none.
static void add_pinned_split(const PlanRequest *r, PlanLayout l, int64_t per_rank, Rows *rs) {
    int64_t B = r->B > 0 ? r->B : per_rank % r->M == 0 ? per_rank / r->M : 0;
    l.B = (int)(B > 0 ? B : 1);
    l.M = r->M > 0 ? r->M : (int)(per_rank / l.B);
    bool splits = B > 0 && per_rank % B == 0 && wanted(r->M, (int)(per_rank / B));
    if (splits && B <= r->max_micro_batch) {
        add_layout(r, &l, rs);
        return;
    }
    char given[64], why[320];
    if (r->B > 0 && r->M > 0) snprintf(given, sizeof given, "-b %d × --grad-accum %d", r->B, r->M);
    else if (r->B > 0) snprintf(given, sizeof given, "a multiple of -b %d", r->B);
    else snprintf(given, sizeof given, "a multiple of --grad-accum %d", r->M);
    if (splits)
        snprintf(why, sizeof why, "micro-batch %lld is above --max-micro-batch %d", (long long)B,
                 r->max_micro_batch);
    else
        snprintf(why, sizeof why, "the global batch gives each of the %d data-parallel ranks %lld "
                 "sequences, not %s", l.dp, (long long)per_rank, given);
    add_refused(rs, &l, why);
}

// Micro-batches B dividing the DP rank's sequences, in increasing order (the
// one pinned by -b or --grad-accum).
static void add_micro_batches(const PlanRequest *r, PlanLayout l, int64_t per_rank, Rows *rs) {
    if (r->B > 0 || r->M > 0) {
        add_pinned_split(r, l, per_rank, rs);
        return;
    }
    for (int B = 1; B <= per_rank && B <= r->max_micro_batch; B++) {
        if (per_rank % B || !wanted(r->B, B) || !wanted(r->M, (int)(per_rank / B))) continue;
        l.B = B;
        l.M = (int)(per_rank / B);
        add_layout(r, &l, rs);
    }
}

// Every recomputation and sequence-parallel choice of a layout; the
// micro-batches of each choice come together (a group), the smallest first.
static void add_recompute_choices(const PlanRequest *r, PlanLayout l, int64_t seqs, Rows *rs,
                                  int **groups, int *n_groups) {
    for (int rc = RECOMPUTE_NONE; rc <= RECOMPUTE_FULL; rc++) {
        // --sp at tp 1 asked for: llama-train's refusal is listed, not a silence
        for (int sp = 0; sp <= (l.tp > 1 || r->sp == 1 ? 1 : 0) && wanted(r->recompute, rc); sp++) {
            if (!wanted(r->sp, sp)) continue;
            l.recompute = (Recompute)rc;
            l.sp = sp;
            *groups = xrealloc(*groups, (size_t)(*n_groups + 2) * sizeof **groups);
            (*groups)[(*n_groups)++] = rs->n;
            add_micro_batches(r, l, seqs / l.dp, rs);
        }
    }
}

// Every interleaving, ZeRO stage and offload choice of a grid, then add_recompute_choices.
static void add_choices(const PlanRequest *r, PlanLayout l, int64_t seqs, Rows *rs,
                        int **groups, int *n_groups) {
    // Offload where the profile plans it, or listed (refused) when asked for.
    int offloads = offload_planned(r->machine) || r->offload == 1 ? 1 : 0;
    for (int vpp = 1; vpp <= PART_MAX_CHUNKS; vpp++) {
        bool splits = vpp == 1 || r->vpp == vpp ||   // asked for: refused with the reason
                      (l.pp > 1 && r->cfg.n_layers % (l.pp * vpp) == 0);
        if (!splits || !wanted(r->vpp, vpp)) continue;
        for (int zero = 0; zero <= 3; zero++) {
            // ZeRO without replicas: refused, listed only when asked for.
            if (!wanted(r->zero, zero) || (zero > 0 && l.dp * l.cp == 1 && r->zero < 0)) continue;
            for (int offload = 0; offload <= offloads; offload++) {
                if (!wanted(r->offload, offload)) continue;
                l.vpp = vpp;
                l.zero = zero;
                l.offload = offload;
                add_recompute_choices(r, l, seqs, rs, groups, n_groups);
            }
        }
    }
}

// A grid llama-train refuses, whatever else: one row with its reason.
static bool grid_refused(const PlanRequest *r, const PlanLayout *l, int64_t seqs, Rows *rs) {
    char why[320];
    if (grid_check_layout(&r->cfg, r->devices, l->tp, l->cp, l->pp, 0, why, sizeof why)) {
        if (seqs % l->dp == 0) return false;
        snprintf(why, sizeof why, "the global batch of %lld sequence%s does not split over "
                 "data-parallel size %d", (long long)seqs, seqs == 1 ? "" : "s", l->dp);
    }
    add_refused(rs, l, why);
    return true;
}

// Judges each group's layouts, the smallest micro-batch first.  Memory grows
// with the micro-batch B at a fixed layout (activations ∝ B · slots, and the
// slots min(pp, M) with M ∝ 1/B), so without --all a group stops at its first
// layout that does not fit, and the rest are dropped.  Groups are independent:
// spread over the threads (65B on 32 devices has ~2,000 to judge).
static void judge_groups(const PlanRequest *r, Rows *rs, const int *groups, int n_groups) {
#pragma omp parallel for schedule(dynamic, 4)
    for (int g = 0; g < n_groups; g++) {
        int end = g + 1 < n_groups ? groups[g + 1] : rs->n;
        bool full = false;
        for (int i = groups[g]; i < end; i++) {
            PlanRow *row = &rs->rows[i];
            if (full) row->dropped = true;
            else if (!refused(row)) judge(r, row);
            full = full || (!r->all && !refused(row) && !row->fits);
        }
    }
    int kept = 0;
    for (int i = 0; i < rs->n; i++)
        if (!rs->rows[i].dropped) rs->rows[kept++] = rs->rows[i];
    rs->n = kept;
}

static int compare_rows(const void *pa, const void *pb) {
    const PlanRow *a = pa, *b = pb;
    if (a->fits != b->fits) return a->fits ? -1 : 1;
    if (refused(a) != refused(b)) return refused(a) ? 1 : -1;
    if (a->tokens_per_s != b->tokens_per_s) return a->tokens_per_s > b->tokens_per_s ? -1 : 1;
    if (a->mem != b->mem) return a->mem < b->mem ? -1 : 1;
    const PlanLayout *x = &a->lay, *y = &b->lay;
    int kx[] = {x->tp, x->cp, x->pp, x->vpp, x->zero, x->offload, (int)x->recompute, x->sp, x->B};
    int ky[] = {y->tp, y->cp, y->pp, y->vpp, y->zero, y->offload, (int)y->recompute, y->sp, y->B};
    for (int i = 0; i < 9; i++)
        if (kx[i] != ky[i]) return kx[i] < ky[i] ? -1 : 1;
    return 0;
}

// Why no layout matched: the first grid size given that does not divide
// what is left of the devices, else the options together.
static void no_layout_why(const PlanRequest *r, char *err, int err_len) {
    const char *names[] = {"--tp", "--cp", "--pp"};
    int sizes[] = {r->tp, r->cp, r->pp}, left = r->devices;
    for (int i = 0; i < 3; i++) {
        if (sizes[i] > 0 && left % sizes[i]) {
            snprintf(err, err_len, "no layout of %d devices: %s %d does not divide the %d "
                     "devices left for it", r->devices, names[i], sizes[i], left);
            return;
        }
        if (sizes[i] > 0) left /= sizes[i];
    }
    snprintf(err, err_len, "no layout of %d devices matches the options given (--all lists "
             "the layouts refused and why)", r->devices);
}

PlanRow *plan_layouts(const PlanRequest *r, int *n, char *err, int err_len) {
    *n = 0;
    if (r->T < 1 || r->global_tokens < r->T || r->global_tokens % r->T) {
        snprintf(err, err_len, "--global-batch-tokens %lld is not a whole number of sequences of "
                 "--max-length %d; give a multiple of %d", (long long)r->global_tokens, r->T, r->T);
        return NULL;
    }
    int64_t seqs = r->global_tokens / r->T;
    if (seqs > INT_MAX) {   // a layout's micro-batch and grad-accum are ints, as llama-train's
        snprintf(err, err_len, "--global-batch-tokens %lld is %lld sequences of %d tokens, more than "
                 "the 2147483647 a step can take (micro-batch × --grad-accum × data-parallel "
                 "ranks); give a smaller global batch", (long long)r->global_tokens,
                 (long long)seqs, r->T);
        return NULL;
    }
    Rows rs = {0};
    int *groups = NULL, n_groups = 0;   // where each group of micro-batches starts in rs
    for (int tp = 1; tp <= r->devices; tp++) {
        if (r->devices % tp || !wanted(r->tp, tp)) continue;
        for (int cp = 1; cp <= r->devices / tp; cp++) {
            // --cp where its blocks would run on the SIMT kernels: listed when asked (--all, --cp).
            if ((r->devices / tp) % cp || !wanted(r->cp, cp) ||
                (cp > 1 && !ring_at_flash_rates(r) && !r->all && r->cp < 0))
                continue;
            for (int pp = 1; pp <= r->devices / (tp * cp); pp++) {
                if ((r->devices / (tp * cp)) % pp || !wanted(r->pp, pp)) continue;
                PlanLayout l = {.tp = tp, .cp = cp, .pp = pp, .dp = r->devices / (tp * cp * pp),
                                .vpp = 1, .B = 1, .M = 1};
                if (!grid_refused(r, &l, seqs, &rs)) add_choices(r, l, seqs, &rs, &groups, &n_groups);
            }
        }
    }
    if (rs.n == 0) {
        no_layout_why(r, err, err_len);
        free(rs.rows);
        return NULL;
    }
    judge_groups(r, &rs, groups, n_groups);
    free(groups);
    qsort(rs.rows, (size_t)rs.n, sizeof *rs.rows, compare_rows);
    *n = rs.n;
    return rs.rows;
}

// ---- the table ----

static void print_row(const PlanRow *w, int rank, bool tsv) {
    char name[128], mem[32];
    plan_layout_name(&w->lay, name, sizeof name);
    format_bytes(w->mem, mem, sizeof mem);
    const PlanLayout *l = &w->lay;
    if (tsv) {
        printf("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%d\t%d\t%d\t%.0f\t%.6g\t%.6g\t%.6g\t%.6g\t"
               "%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%.6g\t%d\t%.0f\t%s\n",
               rank, l->tp,
               l->cp, l->pp, l->dp, l->vpp, l->zero, model_recompute_name(l->recompute), l->sp, l->B,
               l->M, w->fits, w->mem, w->step, w->matmul, w->attention, w->elementwise, w->overhead,
               w->tp_comm, w->cp_comm, w->pp_comm, w->dp_comm, w->bubble, w->optimizer,
               w->tokens_per_s, w->tflops, w->mfu, w->tflops_8n, l->offload, w->host_mem,
               w->fits ? "" : w->why);
        return;
    }
    char at[16] = "-";
    if (w->fits) snprintf(at, sizeof at, "%d", rank);
    if (refused(w)) {
        printf("%4s  %-58s %10s %s\n", at, name, "", w->why);
        return;
    }
    if (!w->fits) {
        printf("%4s  %-58s %10s %s\n", at, name, mem, w->why);
        return;
    }
    double compute = w->matmul + w->attention + w->elementwise + w->overhead;
    printf("%4s  %-58s %10s %9.4g %9.4g %8.3g %8.3g %8.3g %8.3g %8.3g %8.3g %11.4g %8.4g %5.1f%% "
           "%8.4g\n", at, name, mem, w->step, compute, w->tp_comm, w->cp_comm, w->pp_comm,
           w->dp_comm, w->bubble, w->optimizer, w->tokens_per_s, w->tflops, 100 * w->mfu,
           w->tflops_8n);
}

void plan_print_table(const PlanRequest *r, const PlanRow *rows, int n, bool tsv) {
    (void)r;
    if (tsv)
        printf("rank\ttp\tcp\tpp\tdp\tvpp\tzero\trecompute\tsp\tb\tga\tfits\tmem_bytes\tstep_s\t"
               "matmul_s\tattention_s\telementwise_s\toverhead_s\ttp_s\tcp_s\tpp_s\tdp_s\tbubble_s\t"
               "optimizer_s\ttokens_per_s\ttflops_per_device\tmfu\ttflops_8n\toffload\t"
               "host_mem_bytes_per_node\twhy\n");
    else
        printf("%4s  %-58s %10s %9s %9s %8s %8s %8s %8s %8s %8s %11s %8s %6s %8s\n", "rank",
               "layout", "mem/rank", "step s", "compute", "TP", "CP", "PP", "DP", "bubble",
               "optim", "tokens/s", "TFLOP/s", "MFU", "8N TF/s");
    for (int i = 0; i < n; i++) print_row(&rows[i], i + 1, tsv);
}
