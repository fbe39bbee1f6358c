#include "train/traffic.h"

#include <stdio.h>

#include "model/model.h"
#include "core/util.h"

static double ring_allreduce(double bytes, int n) { return n > 1 ? 2.0 * (n - 1) / n * bytes : 0; }
static double ring_half(double bytes, int n) { return n > 1 ? (double)(n - 1) / n * bytes : 0; }

// Data parallel: gradients (fp32) reduced, parameters (compute type) gathered under ZeRO.
static double dp_bytes(double n_params, const MemoryLayout *lay, int dp) {
    double grads = n_params * 4.0, params = n_params * (double)lay->act_bytes;
    if (lay->zero == 0) return ring_allreduce(grads, dp);
    double scatter = ring_half(grads, dp) * (lay->zero >= 2 ? lay->grad_accum : 1);
    // ZeRO-3 gathers the weights for each micro-batch's forward and backward pass.
    double gathers = lay->zero == 3 ? 2.0 * lay->grad_accum : 1.0;
    return scatter + ring_half(params, dp) * gathers;
}

// Tensor parallel, per micro-batch: two all-reduces of (N, D) per layer forward
// (one more for the recomputed attention under --recompute full) and two backward, the
// embedding's forward, the head's backward, the cross-entropy statistics.
static double tp_bytes(const ModelConfig *c, const ModelPart *p, const MemoryLayout *lay) {
    double act = memory_rows(p, lay) * c->dim * (double)lay->act_bytes;
    double per_layer = (lay->recompute == RECOMPUTE_FULL ? 5.0 : 4.0) * ring_allreduce(act, p->tp);
    double mb = p->n_layers * per_layer;
    if (p->first) mb += ring_allreduce(act, p->tp);
    if (p->last) mb += ring_allreduce(act, p->tp) + ring_allreduce(3.0 * memory_rows(p, lay) * 4.0, p->tp);
    return mb * lay->grad_accum;
}

// The same under sequence parallelism, in all-gathers and reduce-scatters of
// (N, D) (each ring_half): per layer forward two of each (the recomputed
// forward of --recompute full two gathers and one reduce-scatter more);
// backward the gathers of the two output gradients and, again, of the two
// norms' outputs, and two reduce-scatters; the norms' weight gradients summed
// (fp32).  The embedding scatters forward and gathers backward; the head the
// other way round.
static double tp_sp_bytes(const ModelConfig *c, const ModelPart *p, const MemoryLayout *lay) {
    double act = memory_rows(p, lay) * c->dim * (double)lay->act_bytes;
    double halves = 4.0 + 6.0 + (lay->recompute == RECOMPUTE_FULL ? 3.0 : 0.0);
    double norms = ring_allreduce(2.0 * c->dim * 4.0, p->tp);
    double mb = p->n_layers * (halves * ring_half(act, p->tp) + norms);
    if (p->first) mb += 2.0 * ring_half(act, p->tp);
    if (p->last)
        mb += 2.0 * ring_half(act, p->tp) + ring_allreduce(c->dim * 4.0, p->tp) +
              ring_allreduce(3.0 * memory_rows(p, lay) * 4.0, p->tp);
    return mb * lay->grad_accum;
}

// Tied embeddings over a pipeline: the first and last stage sum the tensor's
// gradient (fp32, this rank's vocabulary rows); under ZeRO each end first
// gathers the tensor's reduced gradient over DP (optimizer.c, reduce_tied).
static double tied_bytes(const ModelConfig *c, const ModelPart *p, const MemoryLayout *lay, int dp) {
    if (!c->tie_embeddings || lay->pp == 1 || !(p->first || p->last)) return 0;
    double grad = (double)params_vocab_rows(c, p->tp) * c->dim * 4.0;
    return ring_allreduce(grad, 2) + (lay->zero > 0 ? ring_allreduce(grad, dp) : 0);
}

// Pipeline: each micro-batch's activation forward and its gradient back from
// each chunk (but the model's last and first), and the tied embedding's gradient.
static double pp_bytes(const ModelConfig *c, const ModelPart *p, const MemoryLayout *lay, int dp) {
    double act = memory_rows(p, lay) * c->dim * (double)lay->act_bytes / (p->sp ? p->tp : 1);
    int V = part_chunks(p);
    return lay->grad_accum * act * ((V - (p->last ? 1 : 0)) + (V - (p->first ? 1 : 0))) +
           tied_bytes(c, p, lay, dp);
}

// Context parallel, per micro-batch: each layer's ring passes this rank's keys
// and values (rows × 2·kv_heads·hd of its TP block) on cp − 1 times forward
// (again in --recompute full's recomputed forward), and backward cp − 1 times
// with their gradients cp times.
static double cp_bytes(const ModelConfig *c, const ModelPart *p, const MemoryLayout *lay) {
    int cp = part_cp(p);
    if (cp == 1) return 0;
    double kv = memory_rows(p, lay) * 2.0 * c->n_kv_heads / p->tp * config_head_dim(c) *
                (double)lay->act_bytes;
    double hops = (lay->recompute == RECOMPUTE_FULL ? 3.0 : 2.0) * (cp - 1) + cp;
    return p->n_layers * hops * kv * lay->grad_accum;
}

Traffic traffic_estimate(const ModelConfig *cfg, const ModelPart *part, const MemoryLayout *lay,
                         int dp) {
    ParamTable pt;
    params_build(&pt, cfg, part);
    double n = (double)pt.numel;
    params_free(&pt);
    double tp = part->sp ? tp_sp_bytes(cfg, part, lay) : tp_bytes(cfg, part, lay);
    return (Traffic){dp_bytes(n, lay, dp), tp, pp_bytes(cfg, part, lay, dp),
                     cp_bytes(cfg, part, lay)};
}

void traffic_print(const char *title, const Traffic *t) {
    char a[32], b[32], c[32], s[32], x[32], cp[64] = "";
    if (t->cp > 0) snprintf(cp, sizeof cp, ", context-parallel %s", format_bytes(t->cp, x, sizeof x));
    info("%s: data-parallel %s, tensor-parallel %s, pipeline %s%s, total %s sent per rank per step",
         title, format_bytes(t->dp, a, sizeof a), format_bytes(t->tp, b, sizeof b),
         format_bytes(t->pp, c, sizeof c), cp,
         format_bytes(t->dp + t->tp + t->pp + t->cp, s, sizeof s));
}
