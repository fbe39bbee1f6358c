#include "train/memory.h"

#include <stdio.h>

#include "core/util.h"
#include "model/model.h"
#include "parallel/pipeline.h"
#include "train/optimizer.h"

MemoryEstimate memory_estimate(const ModelConfig *cfg, const ModelPart *part,
                               const MemoryLayout *lay) {
    ParamTable pt;
    params_build(&pt, cfg, part);
    MemoryEstimate e = {.n_params = (int64_t)pt.n_params};
    size_t big, small;   // ZeRO-2/3's buffers for the units in flight (train/zero.c)
    params_unit_sizes(&pt, &big, &small);
    double n = (double)pt.numel, dp = part->dp > 0 ? part->dp : 1;
    params_free(&pt);
    double shard = lay->zero > 0 ? n / dp : n, act = (double)lay->act_bytes;
    double units = (double)big + (double)small;
    bool master = lay->offload || optimizer_keeps_master(lay->zero, (size_t)lay->act_bytes);
    // ZeRO-3: the compute shard is the master weights when both are fp32 on the device.
    bool own_compute = lay->offload || lay->act_bytes != sizeof(float);
    e.weights = lay->zero < 3 ? n * act : (own_compute ? shard * act : 0) + units * act;
    e.grads = lay->zero < 2 ? n * 4.0 + (lay->zero == 1 ? shard * 4.0 : 0) : shard * 4.0 + units * 4.0;
    e.master = master && !lay->offload ? shard * 4.0 : 0;
    e.adam = lay->offload ? 0 : 2.0 * shard * 4.0;
    e.host = lay->offload ? 4.0 * shard * 4.0 : 0;   // master, m, v, the gradient's copy
    int heads = cfg->n_heads / part->tp;
    double rows = memory_rows(part, lay);
    double state = rows * heads * 4.0;   // attention: log-sum-exp per row
    int slots = pipeline_slots(lay->pp, lay->pp_rank, lay->grad_accum, part_chunks(part));
    e.activations = model_activation_bytes(cfg, part, lay->B, lay->T, slots, lay->recompute,
                                           lay->act_bytes, (size_t)state);
    if (lay->pp > 1)   // the pipeline's second buffer for a stage's incoming gradient
        e.activations += rows / (part->sp ? part->tp : 1) * cfg->dim * act;
    e.backend = lay->backend;
    e.total = e.weights + e.grads + e.master + e.adam + e.activations + e.backend;
    return e;
}

void memory_print(const char *title, const MemoryEstimate *e) {
    char a[32], b[32], c[32], d[32], f[32], t[32], x[32], h[64] = "", w[64] = "";
    if (e->host > 0)
        snprintf(h, sizeof h, " | host (offload) %s", format_bytes(e->host, x, sizeof x));
    if (e->backend > 0)
        snprintf(w, sizeof w, " | backend %s", format_bytes(e->backend, x, sizeof x));
    info("%s: %.3g M parameters | weights %s | grads %s | master %s | Adam %s | "
         "activations %s%s | total %s%s", title, (double)e->n_params / 1e6,
         format_bytes(e->weights, a, sizeof a), format_bytes(e->grads, b, sizeof b),
         format_bytes(e->master, c, sizeof c), format_bytes(e->adam, d, sizeof d),
         format_bytes(e->activations, f, sizeof f), w, format_bytes(e->total, t, sizeof t), h);
}
