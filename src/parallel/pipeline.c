#include "parallel/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/loader.h"
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

int pipeline_slots(const Grid *g, int M) {
    int in_flight = g->pp - g->pp_rank;
    return in_flight < M ? in_flight : M;
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
    Optimizer *o;
    const int32_t *rows;
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
    for (int i = 0; i < m->n_slots; i++) p->act_send[i] = (CommRequest){MPI_REQUEST_NULL, NULL};
    p->grad_send = (CommRequest){MPI_REQUEST_NULL, NULL};
    return p;
}

void pipeline_free(Pipeline *p) {
    if (!p) return;
    free(p->tokens);
    free(p->targets);
    free(p->act_send);
    free(p);
}

static size_t stage_elems(const Model *m) { return (size_t)m->N * m->cfg.dim; }
static void *stage_output(const Model *m, int slot) {
    return act_at(m->slots[slot].res, (size_t)m->part.n_layers * stage_elems(m));
}
static DType act_type(void) { return model_act_dtype(); }

static void load_batch(Schedule *s, int mb, int slot) {
    const Model *m = s->m;
    loader_split_rows(s->rows + (size_t)mb * m->B * (m->T + 1), m->B, m->T, s->p->tokens,
                      s->p->targets);
    model_set_batch(s->m, slot, s->p->tokens, s->p->targets);
}

static void forward_one(Schedule *s, int mb, bool train) {
    Model *m = s->m;
    int slot = mb % m->n_slots;
    const Comm *pp = &s->g->pp_comm;
    comm_dev_wait(pp, &s->p->act_send[slot]);   // the slot's previous output has left
    load_batch(s, mb, slot);
    if (!m->part.first) {
        CommRequest r = comm_dev_irecv(pp, m->slots[slot].res, stage_elems(m), act_type(),
                                       pp->rank - 1, 2 * mb);
        comm_dev_wait(pp, &r);
    }
    model_forward(m, slot);
    if (!m->part.last)
        s->p->act_send[slot] = comm_dev_isend(pp, stage_output(m, slot), stage_elems(m),
                                           act_type(), pp->rank + 1, 2 * mb);
    else s->loss += model_head_forward(m, slot, train ? s->grad_scale : 0.0f);
}

static void backward_one(Schedule *s, int mb) {
    Model *m = s->m;
    const Comm *pp = &s->g->pp_grad_comm;
    comm_dev_wait(pp, &s->p->grad_send);     // d_res is free again
    if (!m->part.last) {
        CommRequest r = comm_dev_irecv(pp, m->d_res, stage_elems(m), act_type(), pp->rank + 1,
                                       2 * mb + 1);
        comm_dev_wait(pp, &r);
    }
    optimizer_before_backward(s->o, mb == s->M - 1);
    model_backward(m, mb % m->n_slots);
    if (!m->part.first)
        s->p->grad_send = comm_dev_isend(pp, m->d_res, stage_elems(m), act_type(), pp->rank - 1,
                                      2 * mb + 1);
    optimizer_after_micro_step(s->o);
}

static Schedule schedule_begin(Pipeline *p, Optimizer *o, const int32_t *rows, int M,
                               float grad_scale) {
    return (Schedule){.p = p, .m = p->m, .g = p->g, .o = o, .rows = rows, .M = M,
                      .grad_scale = grad_scale};
}

// Every transfer of the step has completed.
static double schedule_end(Schedule *s) {
    for (int i = 0; i < s->m->n_slots; i++) comm_dev_wait(&s->g->pp_comm, &s->p->act_send[i]);
    comm_dev_wait(&s->g->pp_grad_comm, &s->p->grad_send);
    return s->loss;
}

double pipeline_train(Pipeline *p, Optimizer *o, const int32_t *rows, int M, float grad_scale) {
    Schedule s = schedule_begin(p, o, rows, M, grad_scale);
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

double pipeline_eval(Pipeline *p, const int32_t *rows, int M) {
    Schedule s = schedule_begin(p, NULL, rows, M, 0.0f);
    for (int i = 0; i < M; i++) forward_one(&s, i, false);
    return schedule_end(&s);
}

void pipeline_forward_logits(Pipeline *p) {
    Model *m = p->m;
    const Comm *pp = &p->g->pp_comm;
    if (!m->part.first) {
        CommRequest r = comm_dev_irecv(pp, m->slots[0].res, stage_elems(m), act_type(),
                                       pp->rank - 1, 0);
        comm_dev_wait(pp, &r);
    }
    model_forward(m, 0);
    if (!m->part.last) {
        CommRequest r = comm_dev_isend(pp, stage_output(m, 0), stage_elems(m), act_type(),
                                       pp->rank + 1, 0);
        comm_dev_wait(pp, &r);
    } else model_head_forward(m, 0, 0.0f);
}
