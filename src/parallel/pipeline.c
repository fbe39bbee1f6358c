#include "parallel/pipeline.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

bool pipeline_split_layers(const char *spec, int n_layers, int pp, int vpp, int *counts,
                           char *err, int err_len) {
    if (!spec || !*spec) {
        if (n_layers % (pp * vpp) != 0) {
            if (vpp == 1)
                snprintf(err, err_len, "--pp %d does not divide the %d layers; choose a pipeline "
                         "size that does, or give the split by hand with --pp-layers", pp, n_layers);
            else
                snprintf(err, err_len, "--pp %d × --vpp %d = %d model chunks do not divide the %d "
                         "layers; choose sizes that do, or give the chunks by hand with "
                         "--pp-layers", pp, vpp, pp * vpp, n_layers);
            return false;
        }
        for (int s = 0; s < pp * vpp; s++) counts[s] = n_layers / (pp * vpp);
        return true;
    }
    pp *= vpp;   // by hand: one count per chunk, in model order
    char buf[256];
    snprintf(buf, sizeof buf, "%s", spec);
    int n = 0, total = 0;
    bool empty_item = list_has_empty_item(spec);
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        int v;
        if (n == pp || !parse_int(item, &v) || v < 1 || v > n_layers || empty_item) {   // (no sum overflow)
            snprintf(err, err_len, "--pp-layers '%s': expected %d layer counts from 1 to %d, one "
                     "per pipeline stage%s", spec, pp, n_layers,
                     vpp > 1 ? "'s model chunk (pp · vpp)" : "");
            return false;
        }
        counts[n++] = v;
        total += v;
    }
    if (n != pp || total != n_layers) {
        snprintf(err, err_len, "--pp-layers '%s' must give %d %s summing to the model's %d "
                 "layers", spec, pp, vpp > 1 ? "chunks" : "stages", n_layers);
        return false;
    }
    return true;
}

bool pipeline_part(const char *spec, const ModelConfig *cfg, int tp, int tp_rank, int dp, int pp,
                   int vpp, int pp_rank, ModelPart *part, char *err, int err_len) {
    int *counts = xcalloc((size_t)(pp * vpp), sizeof *counts);   // layers per chunk, model order
    bool ok = vpp <= PART_MAX_CHUNKS &&
              pipeline_split_layers(spec, cfg->n_layers, pp, vpp, counts, err, err_len);
    if (vpp > PART_MAX_CHUNKS)
        snprintf(err, err_len, "--vpp %d: at most %d model chunks per pipeline rank", vpp,
                 PART_MAX_CHUNKS);
    *part = (ModelPart){.tp = tp, .tp_rank = tp_rank, .dp = dp, .first = pp_rank == 0,
                        .last = pp_rank == pp - 1, .n_chunks = vpp};
    // Chunk v of rank p is the model's chunk v·pp + p (Megatron's virtual stages).
    for (int c = 0, layer = 0; ok && c < pp * vpp; layer += counts[c++]) {
        if (c % pp != pp_rank) continue;
        part->chunk_layer0[c / pp] = layer;
        part->chunk_layers[c / pp] = counts[c];
        part->n_layers += counts[c];
    }
    part->layer0 = part->chunk_layer0[0];
    free(counts);
    return ok;
}

int pipeline_warmup(int pp, int pp_rank, int M, int vpp) {
    int total = M * vpp;
    int warmup = vpp == 1 ? pp - pp_rank - 1 : 2 * (pp - pp_rank - 1) + (vpp - 1) * pp;
    return warmup < total ? warmup : total;
}

int pipeline_slots(int pp, int pp_rank, int M, int vpp) {
    int in_flight = pipeline_warmup(pp, pp_rank, M, vpp) + 1;
    return in_flight < M * vpp ? in_flight : M * vpp;
}

double pipeline_bubble(int pp, int M, int vpp) {
    return pp > 1 ? (double)(pp - 1) / (double)(vpp * M + pp - 1) : 0.0;
}

// A micro-batch and the chunk it goes through.
typedef struct {
    int mb, chunk;
} Item;

struct Pipeline {
    Model *m;
    const Grid *g;
    int V;                         // model chunks on this rank (--vpp)
    int32_t *tokens, *targets;     // (N) host staging of a micro-batch's ids
    CommRequest *act_send;         // per slot: the activation sent downstream
    CommRequest grad_send;         // the gradient sent upstream (from the model's d_res)
    void *grad_in;                 // (R, D) the next gradient received while d_res is sent;
                                   // then the two swap (pp > 1 only)
    Item *in_slot;                 // per slot: the item whose activations it holds (mb -1: free)
    double idle;                   // seconds waiting for a stage's input or gradient
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
    p->V = part_chunks(&m->part);
    p->tokens = xmalloc((size_t)m->N * sizeof(int32_t));
    p->targets = xmalloc((size_t)m->N * sizeof(int32_t));
    p->act_send = xcalloc((size_t)m->n_slots, sizeof *p->act_send);
    p->in_slot = xcalloc((size_t)m->n_slots, sizeof *p->in_slot);
    for (int i = 0; i < m->n_slots; i++) {
        p->act_send[i] = comm_request_none();
        p->in_slot[i].mb = -1;
    }
    p->grad_send = comm_request_none();
    if (g->pp > 1) p->grad_in = m->ops->alloc(model_stage_elems(m) * m->ops->act_bytes);
    return p;
}

void pipeline_free(Pipeline *p) {
    if (!p) return;
    free(p->tokens);
    free(p->targets);
    free(p->act_send);
    free(p->in_slot);
    if (p->grad_in) p->m->ops->release(p->grad_in);
    free(p);
}

double pipeline_idle_seconds(const Pipeline *p) { return p->idle; }

// ---- the order of the work ----

// The k-th forward (or backward) of a step on every rank.  Interleaved
// (Megatron's): groups of pp micro-batches go through chunk 0, then chunk 1, …;
// backward passes take the chunks in reverse.  A step of fewer micro-batches
// than pp (evaluation, forward only) goes depth first.
static Item schedule_item(const Schedule *s, int k, bool forward) {
    int pp = s->g->pp, V = s->p->V;
    if (V == 1) return (Item){k, 0};
    if (s->M % pp != 0) return (Item){k / V, k % V};
    int in_group = k % (pp * V), chunk = in_group / pp;
    return (Item){k / (pp * V) * pp + in_group % pp, forward ? chunk : V - 1 - chunk};
}

// The embedding's chunk (no input from another stage) and the head's (no output).
static bool starts_model(const Schedule *s, Item it) { return s->m->part.first && it.chunk == 0; }
static bool ends_model(const Schedule *s, Item it) {
    return s->m->part.last && it.chunk == s->p->V - 1;
}

// Stages pass activations round a ring (the last stage's chunk v feeds the
// first stage's v + 1), each link of it on communicators of its own (grid.h).
// MPI tags: an item's activation (even) and gradient (odd), by the receiving chunk.
static int act_tag(const Schedule *s, int mb, int chunk) { return 2 * (mb * s->p->V + chunk); }

// The slot for a new forward item (training: one no backward still needs; evaluation: round robin).
static int slot_take(Schedule *s, Item it, int k, bool train) {
    Pipeline *p = s->p;
    if (!train) return k % s->m->n_slots;
    for (int i = 0; i < s->m->n_slots; i++)
        if (p->in_slot[i].mb < 0) {
            p->in_slot[i] = it;
            return i;
        }
    fatal("pipeline: no activation slot free for micro-batch %d, chunk %d (internal error)", it.mb,
          it.chunk);
}

static int slot_release(Schedule *s, Item it) {
    for (int i = 0; i < s->m->n_slots; i++)
        if (s->p->in_slot[i].mb == it.mb && s->p->in_slot[i].chunk == it.chunk) {
            s->p->in_slot[i].mb = -1;
            return i;
        }
    fatal("pipeline: micro-batch %d, chunk %d has no activations (internal error)", it.mb, it.chunk);
}

// Waits for a receive, counting the time as the stage's idle time.
static void wait_input(Pipeline *p, const Comm *c, CommRequest *r) {
    double t0 = now_seconds();
    comm_dev_wait(c, r);
    p->idle += now_seconds() - t0;
}

// Item it's input into slot's res[0], from the previous stage (the last
// stage's chunk v − 1 for the first stage's v); nothing for the model's first chunk.
static CommRequest input_post(const Schedule *s, int slot, Item it) {
    const Model *m = s->m;
    if (starts_model(s, it)) return comm_request_none();
    const Comm *link = &s->g->pp_act.prev;
    return comm_dev_irecv(link, m->slots[slot].res, model_stage_elems(m), model_act_dtype(m),
                          comm_link_peer(link), act_tag(s, it.mb, it.chunk));
}

// Item it's output in slot, sent to the next stage (the last stage's chunk v
// feeds the first stage's v + 1); nothing after the model's last chunk.
static CommRequest output_post(const Schedule *s, int slot, Item it) {
    const Model *m = s->m;
    if (ends_model(s, it)) return comm_request_none();
    int to_chunk = s->g->pp_rank == s->g->pp - 1 ? it.chunk + 1 : it.chunk;
    const Comm *link = &s->g->pp_act.next;
    return comm_dev_isend(link, model_chunk_output(m, slot, it.chunk), model_stage_elems(m),
                          model_act_dtype(m), comm_link_peer(link), act_tag(s, it.mb, to_chunk));
}

static void load_batch(Schedule *s, int mb, int slot) {
    s->feed->batch(s->feed->ctx, mb, s->p->tokens, s->p->targets);
    model_set_batch(s->m, slot, s->p->tokens, s->p->targets);
}

// Receives go out before this rank waits for its own sends: with chunks the
// stages send both ways round the ring, and two stages each waiting for their
// send to be taken before posting the receive the other's send waits for would
// deadlock.  A slot's input res[0] is apart from its output res[L] that may
// still be leaving.
static void forward_one(Schedule *s, int k, bool train) {
    Model *m = s->m;
    Item it = schedule_item(s, k, true);
    int slot = slot_take(s, it, k, train);
    CommRequest r = input_post(s, slot, it);
    // The slot's previous output has left.
    comm_dev_wait(&s->g->pp_act.next, &s->p->act_send[slot]);
    load_batch(s, it.mb, slot);
    wait_input(s->p, &s->g->pp_act.prev, &r);
    model_forward(m, slot, it.chunk);
    if (ends_model(s, it)) s->loss += model_head_forward(m, slot, train ? s->grad_scale : 0.0f);
    s->p->act_send[slot] = output_post(s, slot, it);
}

static void backward_one(Schedule *s, int k) {
    Model *m = s->m;
    Item it = schedule_item(s, k, false);
    const Comm *in = &s->g->pp_grad.next, *out = &s->g->pp_grad.prev;
    CommRequest r = comm_request_none();
    if (!ends_model(s, it))
        r = comm_dev_irecv(in, s->p->grad_in, model_stage_elems(m), model_act_dtype(m),
                           comm_link_peer(in), act_tag(s, it.mb, it.chunk) + 1);
    comm_dev_wait(out, &s->p->grad_send);     // d_res is free again
    if (!ends_model(s, it)) {
        wait_input(s->p, in, &r);
        void *received = s->p->grad_in;
        s->p->grad_in = m->d_res;
        m->d_res = received;
    }
    if (s->feed->before_backward) s->feed->before_backward(s->feed->ctx, it.mb == s->M - 1);
    model_backward(m, slot_release(s, it), it.chunk);
    if (starts_model(s, it)) return;
    int to_chunk = s->g->pp_rank == 0 ? it.chunk - 1 : it.chunk;
    s->p->grad_send = comm_dev_isend(out, m->d_res, model_stage_elems(m), model_act_dtype(m),
                                     comm_link_peer(out), act_tag(s, it.mb, to_chunk) + 1);
}

static Schedule schedule_begin(Pipeline *p, const PipelineFeed *feed, int M, float grad_scale) {
    return (Schedule){.p = p, .m = p->m, .g = p->g, .feed = feed, .M = M,
                      .grad_scale = grad_scale};
}

// Every transfer of the step has completed.
static double schedule_end(Schedule *s) {
    for (int i = 0; i < s->m->n_slots; i++) comm_dev_wait(&s->g->pp_act.next, &s->p->act_send[i]);
    comm_dev_wait(&s->g->pp_grad.prev, &s->p->grad_send);
    return s->loss;
}

double pipeline_train(Pipeline *p, const PipelineFeed *feed, int M, float grad_scale) {
    Schedule s = schedule_begin(p, feed, M, grad_scale);
    int total = M * p->V, warmup = pipeline_warmup(p->g->pp, p->g->pp_rank, M, p->V);
    for (int k = 0; k < warmup; k++) forward_one(&s, k, true);
    for (int k = 0; k < total - warmup; k++) {
        forward_one(&s, warmup + k, true);
        backward_one(&s, k);
    }
    for (int k = total - warmup; k < total; k++) backward_one(&s, k);
    return schedule_end(&s);
}

double pipeline_eval(Pipeline *p, const PipelineFeed *feed, int M) {
    Schedule s = schedule_begin(p, feed, M, 0.0f);
    for (int k = 0; k < M * p->V; k++) forward_one(&s, k, false);
    return schedule_end(&s);
}

// Slot 0 through every chunk in turn; nothing else is in flight.
void pipeline_forward_logits(Pipeline *p) {
    Schedule s = schedule_begin(p, NULL, 1, 0.0f);
    for (int v = 0; v < p->V; v++) {
        Item it = {0, v};
        CommRequest r = input_post(&s, 0, it);
        comm_dev_wait(&p->g->pp_act.prev, &r);
        model_forward(p->m, 0, v);
        if (ends_model(&s, it)) model_head_forward(p->m, 0, 0.0f);
        r = output_post(&s, 0, it);
        comm_dev_wait(&p->g->pp_act.next, &r);
    }
}
