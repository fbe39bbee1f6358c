#include "parallel/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

bool pipeline_split_layers(const char *spec, int n_layers, int pp, int *counts, char *err,
                           int err_len) {
    if (!spec || !*spec) {
        if (n_layers % pp != 0) {
            snprintf(err, err_len, "--pp %d does not divide the %d layers; choose a pipeline size "
                     "that does, or give the split by hand with --pp-layers", pp, n_layers);
            return false;
        }
        for (int s = 0; s < pp; s++) counts[s] = n_layers / pp;
        return true;
    }
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0, total = 0;
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int v;
        if (n == pp || !parse_int(item, &v) || v < 1) {
            snprintf(err, err_len, "--pp-layers '%s': expected %d positive layer counts, one per "
                     "pipeline stage", spec, pp);
            return false;
        }
        counts[n++] = v;
        total += v;
    }
    if (n != pp || total != n_layers) {
        snprintf(err, err_len, "--pp-layers '%s' must give %d stages summing to the model's %d "
                 "layers", spec, pp, n_layers);
        return false;
    }
    return true;
}

bool pipeline_part(const char *spec, const ModelConfig *cfg, int tp, int tp_rank, int dp, int pp,
                   int pp_rank, ModelPart *part, char *err, int err_len) {
    int *counts = xcalloc((size_t)pp, sizeof *counts);   // layers per stage
    bool ok = pipeline_split_layers(spec, cfg->n_layers, pp, counts, err, err_len);
    *part = (ModelPart){.tp = tp, .tp_rank = tp_rank, .dp = dp, .first = pp_rank == 0,
                        .last = pp_rank == pp - 1, .n_layers = ok ? counts[pp_rank] : 0};
    for (int s = 0; ok && s < pp_rank; s++) part->layer0 += counts[s];
    free(counts);
    return ok;
}

int pipeline_slots(int pp, int pp_rank, int M) {
    int in_flight = pp - pp_rank;
    return in_flight < M ? in_flight : M;
}

double pipeline_bubble(int pp, int M) {
    return pp > 1 ? (double)(pp - 1) / (double)(M + pp - 1) : 0.0;
}

struct Pipeline {
    Model *m;
    const Grid *g;
    int32_t *tokens, *targets;     // (N) host staging of a micro-batch's ids
    CommRequest *act_send;         // per slot: the activation sent downstream
    CommRequest grad_send;         // the gradient sent upstream (d_res is shared)
};

// One step's run through the schedule.
typedef struct {
    Pipeline *p;
    Model *m;
    const Grid *g;
    const PipelineFeed *feed;
    int M;              // micro-batches in the step
    float grad_scale;
    double loss;
} Schedule;

Pipeline *pipeline_create(Model *m, const Grid *g) {
    Pipeline *p = xcalloc(1, sizeof *p);
    p->m = m;
    p->g = g;
    p->tokens = xmalloc((size_t)m->N * sizeof(int32_t));
    p->targets = xmalloc((size_t)m->N * sizeof(int32_t));
    p->act_send = xcalloc((size_t)m->n_slots, sizeof *p->act_send);
    for (int i = 0; i < m->n_slots; i++) p->act_send[i] = comm_request_none();
    p->grad_send = comm_request_none();
    return p;
}

void pipeline_free(Pipeline *p) {
    if (!p) return;
    free(p->tokens);
    free(p->targets);
    free(p->act_send);
    free(p);
}

static void *stage_output(const Model *m, int slot) {
    return act_at(m->ops, m->slots[slot].res, (size_t)m->part.n_layers * model_stage_elems(m));
}


static void load_batch(Schedule *s, int mb, int slot) {
    s->feed->batch(s->feed->ctx, mb, s->p->tokens, s->p->targets);
    model_set_batch(s->m, slot, s->p->tokens, s->p->targets);
}

static void forward_one(Schedule *s, int mb, bool train) {
    Model *m = s->m;
    int slot = mb % m->n_slots;
    const Comm *pp = &s->g->pp_comm;
    comm_dev_wait(pp, &s->p->act_send[slot]);   // the slot's previous output has left
    load_batch(s, mb, slot);
    if (!m->part.first) {
        CommRequest r = comm_dev_irecv(pp, m->slots[slot].res, model_stage_elems(m), model_act_dtype(m),
                                       pp->rank - 1, 2 * mb);
        comm_dev_wait(pp, &r);
    }
    model_forward(m, slot);
    if (!m->part.last)
        s->p->act_send[slot] = comm_dev_isend(pp, stage_output(m, slot), model_stage_elems(m),
                                           model_act_dtype(m), pp->rank + 1, 2 * mb);
    else s->loss += model_head_forward(m, slot, train ? s->grad_scale : 0.0f);
}

static void backward_one(Schedule *s, int mb) {
    Model *m = s->m;
    const Comm *pp = &s->g->pp_grad_comm;
    comm_dev_wait(pp, &s->p->grad_send);     // d_res is free again
    if (!m->part.last) {
        CommRequest r = comm_dev_irecv(pp, m->d_res, model_stage_elems(m), model_act_dtype(m), pp->rank + 1,
                                       2 * mb + 1);
        comm_dev_wait(pp, &r);
    }
    if (s->feed->before_backward) s->feed->before_backward(s->feed->ctx, mb == s->M - 1);
    model_backward(m, mb % m->n_slots);
    if (!m->part.first)
        s->p->grad_send = comm_dev_isend(pp, m->d_res, model_stage_elems(m), model_act_dtype(m), pp->rank - 1,
                                      2 * mb + 1);
}

static Schedule schedule_begin(Pipeline *p, const PipelineFeed *feed, int M, float grad_scale) {
    return (Schedule){.p = p, .m = p->m, .g = p->g, .feed = feed, .M = M,
                      .grad_scale = grad_scale};
}

// Every transfer of the step has completed.
static double schedule_end(Schedule *s) {
    for (int i = 0; i < s->m->n_slots; i++) comm_dev_wait(&s->g->pp_comm, &s->p->act_send[i]);
    comm_dev_wait(&s->g->pp_grad_comm, &s->p->grad_send);
    return s->loss;
}

double pipeline_train(Pipeline *p, const PipelineFeed *feed, int M, float grad_scale) {
    Schedule s = schedule_begin(p, feed, M, grad_scale);
    int warmup = p->g->pp - p->g->pp_rank - 1;
    if (warmup > M) warmup = M;
    for (int i = 0; i < warmup; i++) forward_one(&s, i, true);
    for (int i = 0; i < M - warmup; i++) {
        forward_one(&s, warmup + i, true);
        backward_one(&s, i);
    }
    for (int i = M - warmup; i < M; i++) backward_one(&s, i);
    return schedule_end(&s);
}

double pipeline_eval(Pipeline *p, const PipelineFeed *feed, int M) {
    Schedule s = schedule_begin(p, feed, M, 0.0f);
    for (int i = 0; i < M; i++) forward_one(&s, i, false);
    return schedule_end(&s);
}

void pipeline_forward_logits(Pipeline *p) {
    Model *m = p->m;
    const Comm *pp = &p->g->pp_comm;
    if (!m->part.first) {
        CommRequest r = comm_dev_irecv(pp, m->slots[0].res, model_stage_elems(m), model_act_dtype(m),
                                       pp->rank - 1, 0);
        comm_dev_wait(pp, &r);
    }
    model_forward(m, 0);
    if (!m->part.last) {
        CommRequest r = comm_dev_isend(pp, stage_output(m, 0), model_stage_elems(m), model_act_dtype(m),
                                       pp->rank + 1, 0);
        comm_dev_wait(pp, &r);
    } else model_head_forward(m, 0, 0.0f);
}
