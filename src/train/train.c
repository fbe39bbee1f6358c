#include "train/train.h"

#include <limits.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "parallel/agreement.h"
#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "train/hf.h"
#include "train/memory.h"
#include "train/metrics.h"
#include "train/profile.h"
#include "backend/ops_profile.h"
#include "parallel/pipeline.h"
#include "core/rng.h"
#include "core/signals.h"
#include "train/sampler.h"
#include "train/traffic.h"
#include "tokenizer/tokenizer.h"
#include "core/file_kind.h"
#include "core/host_memory.h"
#include "core/util.h"
#include "train/watchdog.h"

#define BENCH_STEPS 10   // --bench without --steps

// ---- options and layout ----

int trainer_seq_len(const TrainOptions *o, const ModelConfig *cfg) {
    return o->max_length > 0 ? o->max_length : cfg->max_seq_len;
}

// The lengths against the model (the options alone: options_check).
static bool check_ranges(const TrainOptions *o, const ModelConfig *cfg, char *err, int len) {
    int T = trainer_seq_len(o, cfg);
    if (T > cfg->max_seq_len) {
        snprintf(err, len, "--max-length %d exceeds the model's max_seq_len %d", T,
                 cfg->max_seq_len);
        return false;
    }
    if ((int64_t)o->batch_size * T > INT_MAX) {   // the kernels index a micro-batch's rows in int
        snprintf(err, len, "-b %d × --max-length %d = %lld tokens per micro-batch, more than "
                 "the %d one micro-batch may hold: lower -b (and raise --grad-accum)",
                 o->batch_size, T, (long long)o->batch_size * T, INT_MAX);
        return false;
    }
    return true;
}

// --sp splits each micro-batch's sequences over the tensor-parallel group.
static bool check_sequence_parallel(const TrainOptions *o, const ModelConfig *cfg, char *err,
                                    int err_len) {
    int T = trainer_seq_len(o, cfg);
    if (o->sp && o->tp < 2)
        snprintf(err, err_len, "--sp splits the sequence over the tensor-parallel group, but "
                 "--tp is %d; give --tp 2 or more, or leave --sp out", o->tp);
    else if (o->sp && T % (o->tp * o->cp) != 0)   // cp ≥ 1: check_context_parallel ran first
        snprintf(err, err_len, "--sp with --tp %d%s needs a sequence length divisible by %d (got "
                 "%d); change --max-length", o->tp, o->cp > 1 ? " and --cp" : "", o->tp * o->cp, T);
    else return true;
    return false;
}

// --cp splits each sequence in 2·cp chunks over the context-parallel group.
static bool check_context_parallel(const TrainOptions *o, const ModelConfig *cfg, char *err,
                                   int err_len) {
    int T = trainer_seq_len(o, cfg);
    if (o->cp > 1 && T % (2 * o->cp) != 0)
        snprintf(err, err_len, "--cp %d cuts each sequence in 2·cp = %d equal chunks (two per "
                 "rank, for the causal mask's balance), but the sequence length %d is not a "
                 "multiple of %d; change --max-length or --cp", o->cp, 2 * o->cp, T, 2 * o->cp);
    else if (o->cp > 1 && o->sample_tokens > 0)
        snprintf(err, err_len, "--sample-tokens generates token by token on one sequence, which "
                 "--cp %d splits over ranks; sample from a run or checkpoint with --cp 1", o->cp);
    else return true;
    return false;
}

// --vpp: model chunks per pipeline rank, run interleaved.
static bool check_interleaving(const TrainOptions *o, char *err, int err_len) {
    if (o->vpp < 1 || o->vpp > PART_MAX_CHUNKS)
        snprintf(err, err_len, "--vpp %d: give 1 to %d model chunks per pipeline rank", o->vpp,
                 PART_MAX_CHUNKS);
    else if (o->vpp > 1 && o->pp < 2)
        snprintf(err, err_len, "--vpp %d interleaves model chunks over pipeline stages, but --pp "
                 "is %d; give --pp 2 or more, or leave --vpp out", o->vpp, o->pp);
    else if (o->vpp > 1 && !o->eval_only && o->grad_accum % o->pp != 0)
        snprintf(err, err_len, "--vpp %d runs micro-batches in groups of --pp %d: --grad-accum %d "
                 "is not a multiple of it; give a multiple of %d", o->vpp, o->pp, o->grad_accum,
                 o->pp);
    else return true;
    return false;
}

LrSchedule trainer_lr_schedule(const TrainOptions *o, int64_t total_steps) {
    return (LrSchedule){.lr = o->lr, .min_lr_ratio = o->min_lr_ratio,
                        .warmup_steps = o->warmup_steps,
                        // default: the run's end; a run inside its warm-up never decays,
                        // whatever the decay would be
                        .decay_end = o->lr_decay_steps > 0 ? o->lr_decay_steps
                                     : total_steps > o->warmup_steps ? total_steps
                                     : o->warmup_steps + (o->lr_decay_style == LR_DECAY_WSD
                                                          ? o->lr_wsd_decay_steps : 0),
                        .style = o->lr_decay_style, .wsd_decay_steps = o->lr_wsd_decay_steps};
}

// The run's steps when the options alone decide them (--steps, --bench);
// 0 when the data does (--num-epochs).
static int64_t steps_of_options(const TrainOptions *o) {
    return o->steps > 0 ? o->steps : o->bench ? BENCH_STEPS : 0;
}

// The schedule, where its end is known before the data is (--steps,
// --lr-decay-steps or --bench); count_steps checks the others.
static bool check_schedule(const TrainOptions *o, char *err, int err_len) {
    int64_t total = steps_of_options(o);
    if (o->eval_only || (total == 0 && o->lr_decay_steps == 0)) return true;
    LrSchedule s = trainer_lr_schedule(o, total);
    return lr_schedule_check(&s, err, err_len);
}

bool trainer_check_options(const TrainOptions *o, const ModelConfig *cfg, int world, char *err,
                           int err_len) {
    if (!check_ranges(o, cfg, err, err_len)) return false;
    if (!check_schedule(o, err, err_len)) return false;
    if (!ops_attention_for(o->device, o->attention, err, err_len))
        return false;
    if (!check_context_parallel(o, cfg, err, err_len)) return false;
    if (!grid_check_layout(cfg, world, o->tp, o->cp, o->pp, o->zero, err, err_len)) return false;
    if (!check_sequence_parallel(o, cfg, err, err_len)) return false;
    if (!check_interleaving(o, err, err_len)) return false;
    int *counts = xcalloc((size_t)(o->pp * o->vpp), sizeof *counts);   // layers per chunk
    bool ok = pipeline_split_layers(o->pp_layers, cfg->n_layers, o->pp, o->vpp, counts, err,
                                    err_len);
    free(counts);
    return ok;
}

ModelPart trainer_part(const TrainOptions *o, const ModelConfig *cfg, int replicas, int tp_rank,
                       int cp_rank, int pp_rank) {
    ModelPart p;
    char err[256];
    if (!pipeline_part(o->pp_layers, cfg, o->tp, tp_rank, replicas, o->pp, o->vpp, pp_rank, &p,
                       err, sizeof err))
        fatal("%s", err);
    p.sp = o->sp;
    p.cp = o->cp;
    p.cp_rank = cp_rank;
    return p;
}

MemoryLayout trainer_memory_layout(const TrainOptions *o, const ModelConfig *cfg, int pp_rank) {
    char err[256];
    const char *attention = ops_attention_for(o->device, o->attention, err, sizeof err);
    int T = trainer_seq_len(o, cfg);
    return (MemoryLayout){.B = o->batch_size, .T = T,
                          .grad_accum = o->eval_only ? 1 : o->grad_accum, .pp = o->pp,
                          .pp_rank = pp_rank, .zero = o->eval_only ? 0 : o->zero,
                          .recompute = options_recompute(o),
                          .offload = o->offload == 1 && o->device != DEVICE_CPU && !o->eval_only,
                          .act_bytes = o->precision == PRECISION_BF16 && o->device == DEVICE_CUDA
                                           ? 2 : 4,   // the CPU's activations stay fp32
                          .backend = ops_backend_reserved_bytes(
                              o->device, attention ? attention : "own", o->precision,
                              o->batch_size, T, cfg->n_heads / o->tp, config_head_dim(cfg),
                              o->cp, !o->eval_only)};
}

void trainer_describe(const TrainOptions *o, const ModelConfig *c, int world) {
    int T = trainer_seq_len(o, c), dp = world / (o->tp * o->cp * o->pp), replicas = dp * o->cp;
    char scaling[256] = "";
    if (c->rope_scaling.kind != ROPE_SCALING_NONE) {
        strcpy(scaling, ", RoPE scaling ");
        config_rope_scaling_describe(&c->rope_scaling, scaling + strlen(scaling),
                                     (int)(sizeof scaling - strlen(scaling)));
    }
    info("model %s: dim %d, %d layers, %d heads (%d KV), head dim %d, FFN %d, vocab %d, "
         "max seq %d, rope theta %g%s, norm eps %g", c->name, c->dim, c->n_layers, c->n_heads,
         c->n_kv_heads, config_head_dim(c), c->ffn_dim, c->vocab_size, c->max_seq_len,
         c->rope_theta, scaling, c->norm_eps);
    char total[32], flop[32];
    info("parameters: %s total%s, %s non-embedding + LM head (the N of 6N)",
         format_count((double)config_params_total(c), total, sizeof total),
         c->tie_embeddings ? " (the LM head is the embedding: tied)" : "",
         format_count((double)config_params_flop(c), flop, sizeof flop));
    info("model FLOPs per token at sequence %d: %.4g (6N + 12·layers·dim·seq)", T,
         config_flops_per_token(c, T));
    bool overlap = optimizer_overlaps(o->overlap_grad_reduce, o->zero, replicas) ||
                   (o->zero >= 2 && replicas > 1);
    char vpp[32] = "", cp[32] = "";
    if (o->vpp > 1) snprintf(vpp, sizeof vpp, " (%d chunks each)", o->vpp);
    if (o->cp > 1) snprintf(cp, sizeof cp, " × cp %d", o->cp);
    info("layout: %d ranks = dp %d × tp %d%s%s × pp %d%s, ZeRO-%d, micro-batch %d, grad-accum %d, "
         "%s on %s, recompute %s%s%s", world, dp, o->tp, o->sp ? " (sequence parallel)" : "", cp,
         o->pp, vpp, o->zero, o->batch_size, o->grad_accum,
         precision_name(o->precision), device_name(o->device),
         model_recompute_name(options_recompute(o)),
         !overlap ? "" : o->zero == 0 ? ", gradient all-reduce per layer during the backward pass"
                                      : ", gradient reduce-scatter per layer during the backward pass",
         o->offload != 1 ? "" : o->device == DEVICE_CPU ? ", offload optimizer (host memory already)"
                                                        : ", optimizer offloaded to host memory");
    if (o->pp > 1 && o->vpp == 1)
        info("pipeline: 1F1B over %d micro-batches on %d stages: each stage idles %.1f%% of the "
             "step (bubble (pp - 1)/(micro-batches + pp - 1), equal stages)", o->grad_accum, o->pp,
             100.0 * pipeline_bubble(o->pp, o->grad_accum, 1));
    else if (o->pp > 1)
        info("pipeline: interleaved 1F1B over %d micro-batches on %d stages of %d model chunks "
             "each: each stage idles %.1f%% of the step (bubble (pp - 1)/(vpp · micro-batches + "
             "pp - 1), equal chunks; plain 1F1B: %.1f%%)", o->grad_accum, o->pp, o->vpp,
             100.0 * pipeline_bubble(o->pp, o->grad_accum, o->vpp),
             100.0 * pipeline_bubble(o->pp, o->grad_accum, 1));
    if (o->cp > 1)
        info("context parallel: each sequence of %d in %d chunks of %d, two per rank; ring "
             "attention passes keys and values round %d ranks (the backend's block kernels%s)",
             T, 2 * o->cp, T / (2 * o->cp), o->cp,
             o->device == DEVICE_CUDA ? ": the SIMT ones, whatever --attention says" : "");
    char err[256];
    info("attention: %s",
         ops_attention_for(o->device, o->attention, err, sizeof err));
    for (int s = 0; s < o->pp; s++) {
        if (s > 0 && s < o->pp - 1) continue;   // middle stages look like stage 0 without the embedding
        ModelPart part = trainer_part(o, c, replicas, 0, 0, s);
        MemoryLayout lay = trainer_memory_layout(o, c, s);
        MemoryEstimate e = memory_estimate(c, &part, &lay);
        char title[64];
        snprintf(title, sizeof title, "memory per rank, stage %d", s);
        memory_print(title, &e);
        char h[32], node[32];
        if (e.host > 0)
            info("  host memory of the offloaded optimizer, stage %d: %s per rank, %s per node of 8 "
                 "GPUs", s, format_bytes(e.host, h, sizeof h), format_bytes(8 * e.host, node, sizeof node));
        Traffic tr = traffic_estimate(c, &part, &lay, replicas);
        snprintf(title, sizeof title, "communication, stage %d", s);
        traffic_print(title, &tr);
    }
}

// ---- set-up ----

// Every rank reads its slices from its own view of the folder: the replicas
// of one slice must have read the same values (a node's stale copy would
// train replicas of other models, their losses averaged).
static void import_hf(Trainer *t) {
    char err[2048];
    HfImportDigest d;
    bool ok = hf_import_digest(t->model, t->opt.init_hf, &d, err, sizeof err);
    comm_agree(&t->grid.world, ok, err);
    const Grid *g = &t->grid;   // each check on every rank: they are collectives
    bool replicas = agree_same_u64(&g->replica_comm, d.all);
    bool tp = agree_same_u64(&g->tp_comm, d.unsplit);
    bool tied = agree_same_u64(&g->embed_comm, d.embedding);
    const char *which = !replicas ? "data-parallel replicas"
                        : !tp     ? "tensor-parallel ranks' norms"
                        : !tied   ? "the first and last stages' tied embedding" : NULL;
    snprintf(err, sizeof err, "--init-hf %s: the ranks read different weights for the same part "
             "of the model (%s differ): every rank must see the same folder (a node's copy stale "
             "or damaged?)", t->opt.init_hf, which ? which : "");
    comm_agree(&g->world, which == NULL, err);
    info("initialised from Hugging Face weights in %s%s", t->opt.init_hf,
         t->cfg.tie_embeddings ? " (tie_word_embeddings: the LM head stays the embedding, "
                                 "one tensor)" : "");
}

// The model's compute weights, seeded or from --init-hf (ZeRO-3: init_shard
// once the optimizer holds the shard).
static void init_weights(Trainer *t) {
    Model *m = t->model;
    if (!m->params) return;
    if (t->opt.init_hf[0]) {
        import_hf(t);
        return;
    }
    float *host = xmalloc(m->table.numel * sizeof(float));
    params_init_host(&m->table, t->opt.seed, host);
    m->ops->act_from_host_f32(m->params, host, m->table.numel);
    free(host);
}

// ZeRO-3: this rank's chunks of the compute weights, seeded chunk by chunk,
// or from --init-hf through full weights held for the import only.
static void init_shard(Trainer *t) {
    Zero *z = t->optim->zero;
    if (t->opt.init_hf[0]) {
        zero_full_weights_hold(z, false);
        import_hf(t);
        zero_full_weights_drop(z, true);
        return;
    }
    for (int u = 0; u < z->lay.n; u++) {
        const ZeroChunk *c = &z->lay.chunk[u];
        float *host = xmalloc((c->len ? c->len : 1) * sizeof(float));
        params_init_host_range(&t->model->table, t->opt.seed, c->begin, c->begin + c->len, host);
        t->model->ops->act_from_host_f32(act_at(t->model->ops, z->compute_shard, c->at), host, c->len);
        free(host);
    }
}

// ---- checkpoints: the trainer's parts (train/checkpoint.h) ----

static CheckpointRun ckpt_run(const Trainer *t) {
    return (CheckpointRun){.grid = &t->grid, .save_dir = t->opt.save_dir,
                           .keep_checkpoints = t->opt.keep_checkpoints,
                           .writes_dir = t->opt.save_dir[0] != 0 && !t->opt.eval_only};
}

// The parts of t a checkpoint holds (no options text, no data position);
// *o is the view of t's optimizer they point to.
static CheckpointParts ckpt_parts(const Trainer *t, CheckpointOptimizer *o) {
    const Optimizer *opt = t->optim;
    *o = (CheckpointOptimizer){.master = opt->master, .m = opt->m1, .v = opt->m2,
                               .ops = opt->state_ops, .layout = &opt->zero->lay,
                               .master_is_weights = !opt->master_owned, .zero = opt->cfg.zero};
    return (CheckpointParts){.ops = t->model->ops, .cfg = &t->cfg, .table = &t->model->table, .weights = t->model->params,
                             .optim = o, .pos = {.step = t->step, .optimizer_step = opt->step},
                             .seed = t->opt.seed,
                             .tokenizer_sha256 = t->train ? loader_tokenizer_sha256(t->train) : "",
                             .override_config = t->opt.override_checkpoint_config};
}

void trainer_checkpoint_save(Trainer *t) {
    CheckpointRun r = ckpt_run(t);
    // A save inside a run of skipped or spiking steps (the final one, or a
    // signal's) holds a suspect model: the older checkpoints all stay, so
    // the last good one is there to go back to.
    if (t->bad_steps > 0 && r.keep_checkpoints > 0) {
        info("saving step %lld after %d skipped or spiking steps in a row: no older checkpoint is "
             "pruned (--keep-checkpoints %d resumes at the next healthy save)", (long long)t->step,
             t->bad_steps, r.keep_checkpoints);
        r.keep_checkpoints = 0;
    }
    CheckpointOptimizer o;
    CheckpointParts p = ckpt_parts(t, &o);
    char *options = options_format(&t->opt);
    p.options = options;
    p.pos.loader_len = loader_state_encode(&t->state, &p.pos.loader);
    if (t->train) p.pos.loader_data = loader_state_data(t->train, &t->state);
    checkpoint_save(&r, &p);
    checkpoint_position_free(&p.pos);
    free(options);
}

void trainer_checkpoint_release(const Trainer *t) {
    CheckpointRun r = ckpt_run(t);
    checkpoint_release(&r);
}

// Loads dir into t: weights, optimizer state, step and data position.
static void ckpt_load(Trainer *t, const char *dir) {
    CheckpointRun r = ckpt_run(t);
    CheckpointOptimizer o;
    CheckpointParts p = ckpt_parts(t, &o);
    checkpoint_load(&r, &p, dir);
    char err[512], msg[5000];
    bool ok = loader_state_restore(t->train, p.pos.loader, p.pos.loader_len, p.pos.loader_data,
                                   &t->state, err, sizeof err);
    snprintf(msg, sizeof msg, "%s: %s; use another checkpoint", dir, err);
    comm_agree(&t->grid.world, ok, msg);
    t->step = p.pos.step;
    t->optim->step = p.pos.optimizer_step;   // the schedule's clock: skipped steps made no update
    char changed[1024] = "";
    if (p.pos.options && p.pos.options[0])
        options_optimizer_changes(p.pos.options, &t->opt, changed, sizeof changed);
    if (changed[0])
        info("note: this run's optimizer settings differ from those of the run that saved %s: %s; "
             "the schedule continues at its step %lld with this run's", dir, changed,
             (long long)p.pos.optimizer_step);
    optimizer_weights_loaded(t->optim);
    checkpoint_position_free(&p.pos);
}

// --load: a checkpoint folder, or "auto" for the newest in --save-dir.  One
// that is --save-dir's own checkpoint of the step counts as saved: a signal
// before the next step saves nothing again.
static void resume(Trainer *t) {
    t->saved_step = -1;
    if (!t->opt.load[0]) return;
    char dir[4200], own[4200];
    CheckpointRun r = ckpt_run(t);
    if (!checkpoint_resolve(&r, t->opt.load, dir, sizeof dir)) {
        info("no checkpoint in %s: starting from step 0", t->opt.save_dir);
        return;
    }
    ckpt_load(t, dir);
    t->loaded = true;
    snprintf(t->resumed_from, sizeof t->resumed_from, "%s", dir);
    ckpt_dir_name(t->opt.save_dir, t->step, false, own, sizeof own);
    if (t->opt.save_dir[0] && file_kind_same(dir, own)) t->saved_step = t->step;
    t->start_step = t->step;
}

static void ckpt_start(const Trainer *t) {
    CheckpointRun r = ckpt_run(t);
    checkpoint_start(&r, t->step);
}

// Every rank must read the same shards: a node whose staged copy lacks or
// changed one would train on other data without a word.
static void agree_on_data(const Trainer *t) {
    size_t len = 1 << 20;
    char *text = xmalloc(len);
    const Loader *any = t->train ? t->train : t->val;   // --eval-only: the validation split alone
    snprintf(text, len, "tokenizer %s\n", loader_tokenizer_sha256(any));
    if (t->train) loader_describe(t->train, text + strlen(text), len - strlen(text));
    if (t->val) loader_describe(t->val, text + strlen(text), len - strlen(text));
    agree_on_text(&t->grid.world, "the datasets", text, "every rank must read the same shards: "
                  "make the dataset copies identical on every node (llama-tokenize verify checks "
                  "them)");
    free(text);
    int unchecked = (t->train ? loader_unchecked_shards(t->train) : 0) +
                    (t->val ? loader_unchecked_shards(t->val) : 0);
    if (unchecked > 0)
        info("notice: %d shard%s of %s carry no token checksums (encoded before llama-tokenize "
             "kept them): their tokens are read unchecked; encode them again to have them checked",
             unchecked, unchecked == 1 ? "" : "s", t->opt.dataset);
}

// --eval-steps past the validation split: an evaluation wraps around.
static void note_eval_wrap(const Trainer *t) {
    uint64_t per_eval = (uint64_t)t->opt.eval_steps * (uint64_t)t->B * (uint64_t)t->grid.dp;
    bool evaluates = t->opt.eval_interval > 0 || t->opt.eval_only;
    if (t->val && evaluates && t->opt.eval_steps > 0 && per_eval > loader_samples(t->val))
        info("note: --eval-steps %lld reads %llu sequences, the validation split holds %llu: an "
             "evaluation wraps around and scores windows again (--eval-steps 0: each once)",
             (long long)t->opt.eval_steps, (unsigned long long)per_eval,
             (unsigned long long)loader_samples(t->val));
}

static void open_data(Trainer *t) {
    if (t->opt.bench) return;
    char err[1024];
    LoaderConfig lc = {.path = t->opt.dataset, .split = "train", .max_length = t->T,
                       .vocab_size = t->cfg.vocab_size, .seed = t->opt.seed,
                       .data_mix = t->opt.data_mix, .shuffle = true};
    t->train = loader_open(&lc, err, sizeof err);
    comm_agree(&t->grid.world, t->train != NULL, err);   // one message, not one per rank
    lc.split = "val";
    lc.shuffle = false;
    lc.data_mix = NULL;
    t->val = loader_open(&lc, err, sizeof err);
    char msg[6000];
    snprintf(msg, sizeof msg, "--eval-interval needs a validation split: %s (tokenize with "
             "--val-fraction)", err);
    comm_agree(&t->grid.world, t->val != NULL || t->opt.eval_interval <= 0, msg);
    bool same = !t->val || loader_same_tokens(t->train, t->val, err, sizeof err);
    snprintf(msg, sizeof msg, "the validation split of --dataset %s: %s", t->opt.dataset, err);
    comm_agree(&t->grid.world, same, msg);
    agree_on_data(t);
    note_eval_wrap(t);
}

// --eval-only: the validation split alone, which it needs.
static void open_val(Trainer *t) {
    char err[1024], msg[1400];
    LoaderConfig lc = {.path = t->opt.dataset, .split = "val", .max_length = t->T,
                       .vocab_size = t->cfg.vocab_size, .seed = t->opt.seed};
    t->val = loader_open(&lc, err, sizeof err);
    snprintf(msg, sizeof msg, "--eval-only needs the validation split of --dataset: %s (tokenize "
             "with --val-fraction)", err);
    comm_agree(&t->grid.world, t->val != NULL, msg);
    agree_on_data(t);
    note_eval_wrap(t);
}

// --eval-only --load: the step and tokenizer of the checkpoint (rank 0 reads
// them): its model was trained on ids of that tokenizer, so data of another
// would give a meaningless loss.
static void check_eval_checkpoint(Trainer *t, const char *dir) {
    char err[8192] = "";
    int64_t step = 0;
    bool ok = true;
    if (t->grid.world_rank == 0) {
        CheckpointInfo ci;
        const char *data = loader_tokenizer_sha256(t->val);
        ok = checkpoint_info(dir, &ci, err, sizeof err);
        if (ok && ci.tokenizer_sha256[0] && data[0] && strcmp(ci.tokenizer_sha256, data) != 0) {
            snprintf(err, sizeof err, "%s was trained on data of another tokenizer (sha256 %.12s…) "
                     "than %s (%.12s…): its loss there would mean nothing; give that data", dir,
                     ci.tokenizer_sha256, t->opt.dataset, data);
            ok = false;
        }
        char why[1024];
        if (ok && !loader_data_same_separator(t->val, ci.pos.loader_data, why, sizeof why)) {
            snprintf(err, sizeof err, "%s: %s", dir, why);
            ok = false;
        }
        if (ok) step = ci.step;
        checkpoint_info_free(&ci);
    }
    comm_agree(&t->grid.world, ok, err);
    comm_broadcast(&t->grid.world, &step, 1, DTYPE_I64, 0);
    t->step = step;
}

// --eval-only: the weights of --load's checkpoint (no optimizer state, no
// data position; --save-dir is locked only to find --load auto's newest).
static void load_for_eval(Trainer *t) {
    if (!t->opt.load[0]) {
        if (!t->opt.init_hf[0])
            info("note: --eval-only without --load or --init-hf evaluates the initial weights of "
                 "--seed %llu", (unsigned long long)t->opt.seed);
        return;
    }
    CheckpointRun r = {.grid = &t->grid, .save_dir = t->opt.save_dir};
    char dir[4200];
    if (!checkpoint_resolve(&r, t->opt.load, dir, sizeof dir))
        fatal_all("--eval-only --load auto: %s holds no checkpoint; give --save-dir of the run, or "
                  "--load DIR (a step_N folder)", t->opt.save_dir);
    check_eval_checkpoint(t, dir);
    CheckpointParts p = {.ops = t->model->ops, .cfg = &t->cfg, .table = &t->model->table,
                         .weights = t->model->params, .seed = UINT64_MAX,
                         .override_config = t->opt.override_checkpoint_config};
    checkpoint_load_weights(&r, &p, dir);
}

static uint64_t samples_per_step(const Trainer *t) { return (uint64_t)t->B * t->M * t->grid.dp; }

// --num-epochs decides the end in samples: the step at which they are all
// drawn is the steps so far plus the whole global batches left at this
// run's batch (at the start: the epochs' samples over the batch).
static int64_t epoch_end_step(const Trainer *t) {
    uint64_t target = loader_samples(t->train) * (uint64_t)t->opt.num_epochs;
    uint64_t left = t->state.consumed >= target ? 0 : (target - t->state.consumed) / samples_per_step(t);
    return t->step + (int64_t)left;
}

// The schedule of a run that ends at step total (its end set by --num-epochs).
static LrSchedule epoch_schedule(const Trainer *t, int64_t total) {
    char err[512];
    LrSchedule s = trainer_lr_schedule(&t->opt, total);
    if (!lr_schedule_check(&s, err, sizeof err))
        fatal_all("%s (this run has %lld steps: --num-epochs %d of the data)", err,
                  (long long)total, t->opt.num_epochs);
    return s;
}

static void count_steps(Trainer *t) {
    t->total_steps = steps_of_options(&t->opt);
    if (t->total_steps > 0) return;
    t->total_steps = epoch_end_step(t);
    if (t->total_steps < 1)
        fatal("the dataset has %llu samples of %d tokens, fewer than one step's %llu; use a "
              "smaller --batch-size or --max-length", (unsigned long long)loader_samples(t->train),
              t->T + 1, (unsigned long long)samples_per_step(t));
    epoch_schedule(t, t->total_steps);
}

// Recounted after a resume (the checkpoint may have drawn at another batch,
// or have been recounted itself: a requeue must end where its first run
// would) and after a rollback that skipped samples; a run that kept one
// batch throughout keeps its first count.
static void recount_epoch_end(Trainer *t) {
    if (steps_of_options(&t->opt) > 0) return;
    int64_t total = epoch_end_step(t);
    if (total == t->total_steps) return;
    info("note: %llu of the %llu samples of --num-epochs %d are drawn at step %lld: at %llu "
         "samples per step the run ends at step %lld, not %lld%s", (unsigned long long)t->state.consumed,
         (unsigned long long)(loader_samples(t->train) * (uint64_t)t->opt.num_epochs),
         t->opt.num_epochs, (long long)t->step, (unsigned long long)samples_per_step(t),
         (long long)total, (long long)t->total_steps,
         t->opt.lr_decay_steps > 0 ? "" : ", and the learning rate decays to that step");
    t->total_steps = total;
    t->optim->cfg.schedule = epoch_schedule(t, total);
}

static void open_outputs(Trainer *t) {
    char err[1024];
    if (t->opt.log[0] && t->grid.world_rank == 0 && !(t->log = logfile_open(t->opt.log, err, sizeof err)))
        fatal("%s", err);
    // One writer per data-parallel rank (its TP, CP and PP ranks read the same rows).
    if (t->opt.dump_batches[0] && !t->opt.eval_only && t->grid.tp_rank == 0 &&
        t->grid.cp_rank == 0 && t->grid.pp_rank == 0) {
        char path[1100];
        if (t->grid.dp > 1) snprintf(path, sizeof path, "%s.dp%d", t->opt.dump_batches, t->grid.dp_rank);
        else snprintf(path, sizeof path, "%s", t->opt.dump_batches);
        if (!(t->dump = logfile_open(path, err, sizeof err))) fatal("%s", err);
        long long cut = logfile_align(t->dump, (size_t)(t->T + 1) * sizeof(int32_t));   // one row
        if (cut > 0)
            warn("%s ended in a partial row of tokens (a killed run, a full disk): its last %lld "
                 "bytes were cut so that the rows appended stay aligned", path, cut);
    }
}

// Test hooks (validation/test_divergence.sh), environment variables naming a
// window of global samples [a, b), which the steps starting in it read:
//   LLAMA_TEST_NAN_SAMPLES=a:b[:rank]  a NaN logit-gradient scale, on world rank
//       `rank` only or on every rank: the loss stays finite, every gradient
//       becomes NaN, as a poisoned batch would make them;
//   LLAMA_TEST_NOISE_SAMPLES=a:b  uniformly random tokens instead of the data
//       (without --data-mix): a loss spike.
static void read_window(const char *name, uint64_t w[2], int *rank) {
    const char *e = getenv(name);
    long long a = 0, b = 0;
    int r = -1;
    if (!e || !e[0]) return;
    if (sscanf(e, "%lld:%lld:%d", &a, &b, &r) < 2 || a < 0 || b < a || r < -1 || (!rank && r != -1))
        fatal("%s='%s': expected FIRST:END%s (a test hook; unset it)", name, e, rank ? "[:RANK]" : "");
    w[0] = (uint64_t)a;
    w[1] = (uint64_t)b;
    if (rank) *rank = r;
    info("test hook %s: the steps that start at global samples %lld to %lld get %s%s", name, a,
         b - 1, rank ? "NaN gradients" : "random tokens", r >= 0 ? " on one rank" : "");
}

static void read_test_hooks(Trainer *t) {
    t->nan_rank = -1;
    read_window("LLAMA_TEST_NAN_SAMPLES", t->nan_window, &t->nan_rank);
    read_window("LLAMA_TEST_NOISE_SAMPLES", t->noise_window, NULL);
}

static bool in_window(const uint64_t w[2], uint64_t sample) { return sample >= w[0] && sample < w[1]; }

// Peak for MFU: --peak-tflops, else on the CPU the measured sgemm rate (of
// bf16 operands with -x bf16), on a
// GPU the datasheet's dense rate for the compute precision (0, no MFU, for a
// card the table does not know).
static void set_peak(Trainer *t) {
    t->flops_per_token = config_flops_per_token(&t->cfg, t->T);
    t->peak_tflops = t->opt.peak_tflops;
    if (t->peak_tflops > 0) return;
    const Ops *ops = t->model->ops;
    if (ops->host_memory) {   // the CPU: measured
        bool bf16 = t->opt.precision == PRECISION_BF16;
        if (t->grid.world_rank == 0) t->peak_tflops = metrics_sgemm_tflops(bf16);
        comm_broadcast(&t->grid.world, &t->peak_tflops, 1, DTYPE_F64, 0);
        return;
    }
    t->peak_tflops = metrics_gpu_peak_tflops(ops->device, ops->act_bytes == 2);
    comm_allreduce(&t->grid.world, &t->peak_tflops, 1, DTYPE_F64, REDUCE_MAX);
    if (t->peak_tflops > 0)
        info("MFU against %.4g TFLOP/s, the dense %s peak of %s (--peak-tflops overrides)",
             t->peak_tflops, ops->act_bytes == 2 ? "bf16" : "fp32", ops->device);
    else
        info("no peak known for %s: give --peak-tflops for MFU", ops->device ? ops->device : "?");
}

static void report_memory(Trainer *t) {
    MemoryLayout lay = trainer_memory_layout(&t->opt, &t->cfg, t->grid.pp_rank);
    MemoryEstimate e = memory_estimate(&t->cfg, &t->part, &lay);
    int n = t->grid.world_size;
    double mine[2] = {e.total, (double)e.n_params};
    double *all = xmalloc(sizeof(double) * 2 * (size_t)n);   // (bytes, parameters) per rank
    comm_allgather(&t->grid.world, mine, all, 2, DTYPE_F64);
    memory_print("memory (rank 0)", &e);
    Traffic tr = traffic_estimate(&t->cfg, &t->part, &lay, t->grid.replicas);
    traffic_print("predicted communication (rank 0)", &tr);
    if (t->grid.world_rank == 0 && n > 1) {
        int most = 0;
        char b[32];
        for (int r = 0; r < n; r++) {
            if (all[2 * r] > all[2 * most]) most = r;
            if (r < 64)
                info("  rank %d: %.4g M parameters, %s predicted", r, all[2 * r + 1] / 1e6,
                     format_bytes(all[2 * r], b, sizeof b));
        }
        if (n > 64)
            info("  ... %d ranks more; the most memory: rank %d, %s predicted", n - 64, most,
                 format_bytes(all[2 * most], b, sizeof b));
    }
    free(all);
}

// On the CPU the buffers of every rank of a node come out of its memory:
// when --describe's prediction for them exceeds what the node has left, the
// kernel would kill the run midway (OOM) without a word.  Collective.
static void check_host_memory(const Trainer *t, const Ops *ops) {
    if (!ops->host_memory) return;
    MemoryLayout lay = trainer_memory_layout(&t->opt, &t->cfg, t->grid.pp_rank);
    MemoryEstimate e = memory_estimate(&t->cfg, &t->part, &lay);
    double need = comm_node_sum(e.total);
    int node_rank, node_ranks;
    comm_node_rank(&node_rank, &node_ranks);
    char source[400] = "", err[1400] = "", a[32], b[32];
    double avail = node_rank == 0 ? host_memory_available(source, sizeof source) : 0;
    bool ok = avail <= 0 || need <= avail;   // 0: unknown (no check)
    if (!ok)
        snprintf(err, sizeof err, "the %d rank%s on this node need%s %s for the model's buffers "
                 "(--describe's prediction), more than the %s available (%s): the kernel would "
                 "kill the run; use more nodes or fewer ranks per node, --zero 3, --tp or --pp, "
                 "a smaller --batch-size or -g, or a smaller model", node_ranks,
                 node_ranks > 1 ? "s" : "", node_ranks > 1 ? "" : "s", format_bytes(need, a, sizeof a),
                 format_bytes(avail, b, sizeof b), source);
    comm_agree(&t->grid.world, ok, err);
}

// Grid, model part and model for micro-batch B, sequence T, M micro-batches;
// `check` the node's memory first (runs, not the bare trainers of tests).
static Trainer *trainer_alloc(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg, int B,
                              int T, int M, bool check) {
    Trainer *t = xcalloc(1, sizeof *t);
    t->opt = *o;
    options_resolve(&t->opt);
    t->cfg = *cfg;
    t->B = B;
    t->T = T;
    t->M = M;
    grid_create(&t->grid, o->tp, o->cp, o->pp, cfg->tie_embeddings);
    const Grid *g = &t->grid;
    t->part = trainer_part(o, cfg, g->replicas, g->tp_rank, g->cp_rank, g->pp_rank);
    if (check) check_host_memory(t, ops);
    int slots = pipeline_slots(g->pp, g->pp_rank, M, part_chunks(&t->part));
    t->model = model_create(ops, cfg, &t->part, &g->tp_comm, g->cp_ring, B, T, slots,
                            options_recompute(o), o->eval_only ? MODEL_HOLDS_ALL : zero_model_holds(o->zero));
    t->pipeline = pipeline_create(t->model, &t->grid);
    init_weights(t);
    return t;
}

OptimizerConfig trainer_optimizer_config(const TrainOptions *o, int64_t total_steps) {
    return (OptimizerConfig){.schedule = trainer_lr_schedule(o, total_steps),
                             .weight_decay = o->weight_decay, .grad_clip = o->grad_clip,
                             .beta1 = o->adam_beta1, .beta2 = o->adam_beta2, .eps = o->adam_eps,
                             .zero = o->zero, .overlap_grad_reduce = o->overlap_grad_reduce,
                             .offload = o->offload == 1};
}

static void create_optimizer(Trainer *t) {
    OptimizerConfig oc = trainer_optimizer_config(&t->opt, t->total_steps);
    t->optim = optimizer_create(&oc, t->model, &t->grid);
    if (!t->model->params) init_shard(t);
    optimizer_sync_master(t->optim);
}

// The backend's attention implementation (--attention), said once at start-up.
static void select_attention(const Ops *ops, const TrainOptions *o) {
    char err[512] = "";
    agree_or_exit(ops_select_attention(ops, o->attention, err, sizeof err), err);
    char line[256];
    ops_attention_summary(ops, line, sizeof line);
    info("attention: %s", line);
}

// Every rank must run the same job: ranks started with other options (or
// another model file) would diverge, or hang in a collective the others skip.
static void agree_on_job(const TrainOptions *o, const ModelConfig *c) {
    char *options = options_format(o), scaling[256];
    size_t at = strlen(options), len = at + 768;
    char *text = xrealloc(options, len);
    config_rope_scaling_describe(&c->rope_scaling, scaling, sizeof scaling);
    snprintf(text + at, len - at, "model = dim %d, layers %d, heads %d, kv heads %d, ffn %d, vocab "
             "%d, max seq %d, rope theta %.17g, rope scaling %s, norm eps %.17g\n", c->dim,
             c->n_layers, c->n_heads, c->n_kv_heads, c->ffn_dim, c->vocab_size, c->max_seq_len,
             c->rope_theta, scaling, c->norm_eps);
    agree_on_text(comm_job(), "the options", text, "start every rank with the same command line "
                  "(and the same model file)");
    free(text);
}

// --eval-only: the model (seeded, --init-hf or --load's weights), the
// validation split and --log; no optimizer, no training data.
static Trainer *create_for_eval(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg) {
    Trainer *t = trainer_alloc(ops, o, cfg, o->batch_size, trainer_seq_len(o, cfg), 1, true);
    open_val(t);
    load_for_eval(t);
    t->rows = xmalloc((size_t)t->B * (t->T + 1) * sizeof(int32_t));
    open_outputs(t);
    return t;
}

// Test hooks LLAMA_TEST_SIGNAL_AT_START=RANK, LLAMA_TEST_SIGNAL_AT_CLOSE=RANK
// and LLAMA_TEST_SIGNAL_AT_ROLLBACK=RANK: that rank sends itself SIGTERM as
// start-up begins (as the closing evaluation begins, as a rollback ends) and
// goes on once the signal thread has taken it.
static void test_signal_at(const char *hook) {
    const char *e = getenv(hook);
    if (!e || !e[0] || atoi(e) != util_world_rank()) return;
    info("test hook %s: rank %d sends itself SIGTERM", hook, util_world_rank());
    kill(getpid(), SIGTERM);
    while (!signals_pending()) sched_yield();
}

Trainer *trainer_create(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg) {
    agree_on_job(o, cfg);
    watchdog_start(o->hang_timeout, util_world_rank());
    watchdog_beat("starting up (model, data, checkpoint)", 0);
    test_signal_at("LLAMA_TEST_SIGNAL_AT_START");
    select_attention(ops, o);
    if (o->profile) ops = ops_profile_wrap(ops);
    if (o->eval_only) return create_for_eval(ops, o, cfg);
    Trainer *t = trainer_alloc(ops, o, cfg, o->batch_size, trainer_seq_len(o, cfg), o->grad_accum,
                               true);
    open_data(t);
    count_steps(t);
    create_optimizer(t);
    resume(t);
    if (t->loaded) recount_epoch_end(t);
    ckpt_start(t);   // the --save-dir lock, newer checkpoints moved aside, before training
    t->weight_max0 = optimizer_max_abs_weight(t->optim);
    read_test_hooks(t);
    t->rows = xmalloc((size_t)t->M * t->B * (t->T + 1) * sizeof(int32_t));
    open_outputs(t);
    set_peak(t);
    report_memory(t);
    return t;
}

Trainer *trainer_create_bare(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg) {
    Trainer *t = trainer_alloc(ops, o, cfg, 1, 1, 1, false);
    t->total_steps = 1;
    create_optimizer(t);
    return t;
}

void trainer_free(Trainer *t) {
    if (!t) return;
    watchdog_stop();
    logfile_close(t->log);
    logfile_close(t->dump);
    loader_close(t->train);
    loader_close(t->val);
    loader_state_free(&t->state);
    optimizer_free(t->optim);
    pipeline_free(t->pipeline);
    model_free(t->model);
    grid_free(&t->grid);
    free(t->rows);
    free(t);
}

// ---- steps ----

// The pipeline schedule's view of a step: micro-batch mb of t->rows
// ((M, B, T + 1) token windows), and the optimizer's gradient hooks.
static void feed_batch(void *trainer, int mb, int32_t *tokens, int32_t *targets) {
    const Trainer *t = trainer;
    watchdog_alive();   // a micro-batch of the step
    loader_split_rows(t->rows + (size_t)mb * t->B * (t->T + 1), t->B, t->T, t->grid.cp,
                      t->grid.cp_rank, tokens, targets);
}
static void feed_before_backward(void *trainer, bool last) {
    optimizer_before_backward(((Trainer *)trainer)->optim, last);
}

static void fill_rows(Trainer *t) {
    size_t per_micro = (size_t)t->B * (t->T + 1);
    bool noise = in_window(t->noise_window, t->state.consumed);   // test hook
    for (int k = 0; k < t->M; k++) {
        int32_t *rows = t->rows + (size_t)k * per_micro;
        if (t->train && !noise)
            loader_next(t->train, &t->state, t->grid.dp_rank, t->grid.dp, t->B, rows);
        else
            loader_synthetic_next(t->opt.seed, t->cfg.vocab_size, t->T, &t->state,
                                  t->grid.dp_rank, t->grid.dp, t->B, rows);
        if (t->dump) logfile_write(t->dump, rows, per_micro * sizeof(int32_t));
    }
}

// Σ of token losses from the last stage's tensor-parallel rank 0, over the grid.
static double global_loss_sum(const Trainer *t, double local) {
    double v = t->part.last && t->grid.tp_rank == 0 ? local : 0.0;
    comm_allreduce(&t->grid.world, &v, 1, DTYPE_F64, REDUCE_SUM);
    return v;
}

static double step_tokens(const Trainer *t) {
    return (double)t->B * t->T * t->M * t->grid.dp;
}

// ---- divergence: skipped steps, loss spikes, rollback, the save guard ----

#define ROLLBACK_LIMIT 3          // rollbacks without a newer checkpoint before the run stops
#define WEIGHT_GROWTH_LIMIT 1e3   // max |w| may grow this much between checkpoints

// What judge_step decided about a step, the same on every rank.
typedef struct {
    bool loss_bad;   // the loss is not finite
    bool skip;       // the loss or the gradient norm is not finite: no update
    bool spike;      // finite, but its z-score passed --spike-threshold
    double z;        // the loss's z-score over the window (0 without one)
} Verdict;

// The logit-gradient scale of a step whose first global sample is `first`.
static float grad_scale(const Trainer *t, uint64_t first) {
    bool nan = in_window(t->nan_window, first) && (t->nan_rank < 0 || t->nan_rank == t->grid.world_rank);
    return nan ? NAN : (float)(1.0 / step_tokens(t));
}

// Judges a step by its global loss and gradient norm.  The flags are reduced
// over the world, so every rank takes the same decision even where its copy of
// a reduced value differs in the last bit.  Healthy losses join the window.
static Verdict judge_step(Trainer *t, double loss, double norm) {
    Verdict v = {0};
    int f[3] = {!isfinite(loss), !isfinite(norm), 0};
    if (!f[0] && t->opt.spike_threshold > 0) {
        v.z = loss_window_z(&t->losses, loss);
        f[2] = v.z > t->opt.spike_threshold;
    }
    comm_allreduce(&t->grid.world, f, 3, DTYPE_I32, REDUCE_MAX);
    v.loss_bad = f[0];
    v.skip = f[0] || f[1];
    v.spike = !v.skip && f[2];
    if (!v.skip && !v.spike) loss_window_push(&t->losses, loss);
    return v;
}

static void log_rollback(Trainer *t, int64_t from, uint64_t skipped, const char *why) {
    uint64_t per_step = samples_per_step(t);
    info("ROLLBACK: %s: back from step %lld to the checkpoint of step %lld (rollback %d of at most "
         "%d before a newer checkpoint); skipping the %llu samples (%llu steps) read since, the "
         "next step reads from sample %llu", why, (long long)from, (long long)t->step, t->rollbacks,
         ROLLBACK_LIMIT, (unsigned long long)skipped, (unsigned long long)(skipped / per_step),
         (unsigned long long)t->state.consumed);
    if (!t->log) return;
    char line[768];
    snprintf(line, sizeof line, "{\"step\": %lld, \"rollback\": true, \"from_step\": %lld, "
             "\"skipped_samples\": %llu, \"reason\": \"%s\"}", (long long)t->step,
             (long long)from, (unsigned long long)skipped, why);
    logfile_line(t->log, line);
}

// Rolls back to the newest checkpoint in --save-dir but keeps the data
// position, so the samples read since (the window that led here) are not seen
// again.  Stops instead when rollback is disabled, there is no checkpoint, or
// ROLLBACK_LIMIT rollbacks did not get the run past its last checkpoint.
static void rollback(Trainer *t, const char *why) {
    char dir[4200];
    if (t->opt.max_bad_steps == 0)
        fatal_all("%s; --max-bad-steps 0 disables rolling back, so the run stops here (the newest "
                  "checkpoint is kept): lower --lr or raise --warmup-steps", why);
    if (!t->opt.save_dir[0])
        fatal_all("%s, and the run saves no checkpoints to roll back to: lower --lr or raise "
                  "--warmup-steps, and save checkpoints (-i N)", why);
    CheckpointRun r = ckpt_run(t);
    if (!checkpoint_newest(&r, dir, sizeof dir))
        fatal_all("%s, and %s holds no checkpoint to roll back to: lower --lr or raise "
                  "--warmup-steps, and save checkpoints (-i N)", why, t->opt.save_dir);
    // Older than the checkpoint this run started from: another run's (a --load
    // from elsewhere into a --save-dir with older checkpoints); back to the start.
    if (t->resumed_from[0] && ckpt_dir_step_of(dir) < t->start_step) {
        info("note: the newest checkpoint in %s (%s) is older than the one this run started "
             "from: rolling back to %s", t->opt.save_dir, dir, t->resumed_from);
        snprintf(dir, sizeof dir, "%s", t->resumed_from);
    }
    if (++t->rollbacks > ROLLBACK_LIMIT)
        fatal_all("%s again after %d rollbacks to %s, whatever data it saw: the run diverges; lower "
                  "--lr or raise --warmup-steps and resume with --load auto", why, ROLLBACK_LIMIT, dir);
    LoaderState here = loader_state_copy(&t->state);
    int64_t from = t->step;
    watchdog_beat("loading a checkpoint (rollback)", t->step);
    ckpt_load(t, dir);
    if (t->step > from)
        fatal_all("the newest checkpoint %s is at step %lld, ahead of this run's step %lld: not "
                  "rolling forward; give its save folder to this run alone", dir,
                  (long long)t->step, (long long)from);
    uint64_t skipped = here.consumed > t->state.consumed ? here.consumed - t->state.consumed : 0;
    if (skipped > 0) {
        loader_state_free(&t->state);
        t->state = here;
        // Step S on disk still reads the skipped window: a stop or the closing
        // save at S must write it again, or a requeue (--load auto) replays it.
        t->saved_step = -1;
        checkpoint_mark_moved();
    } else loader_state_free(&here);
    t->bad_steps = 0;
    t->weight_max0 = optimizer_max_abs_weight(t->optim);
    log_rollback(t, from, skipped, why);
    if (skipped > 0) recount_epoch_end(t);
    test_signal_at("LLAMA_TEST_SIGNAL_AT_ROLLBACK");
}

// This rank's peak memory as its backend counts it: the device's high-water
// mark, or the process's resident peak on the CPU.
static double peak_memory(const Trainer *t) { return (double)t->model->ops->peak_bytes(); }

static void log_step(Trainer *t, double loss, double lr, double norm, double seconds,
                     const Verdict *v) {
    StepMetrics s = {.step = t->step + 1, .total_steps = t->total_steps, .loss = loss, .lr = lr,
                     .grad_norm = norm, .step_time = seconds,
                     .elapsed = now_seconds() - t->start_time, .skipped = v->skip,
                     .spike = v->spike, .loss_z = v->z, .bad_in_a_row = t->bad_steps};
    metrics_throughput(&s, step_tokens(t), seconds, t->flops_per_token, t->grid.world_size,
                       t->peak_tflops);
    s.peak_mem = peak_memory(t);
    comm_allreduce(&t->grid.world, &s.peak_mem, 1, DTYPE_F64, REDUCE_MAX);
    char line[512];
    metrics_console(&s, line, sizeof line);
    info("%s", line);
    if (t->log) {
        metrics_json(&s, line, sizeof line);
        logfile_line(t->log, line);
    }
}

// --profile: the counts start at the first measured step.
static void profile_start(Trainer *t) {
    if (!t->opt.profile) return;
    t->model->ops->sync();
    ops_profile_reset();
    t->comm0 = comm_dev_busy_seconds();
    t->data_seconds = 0;
}

static void print_profile(Trainer *t) {
    if (!t->opt.profile || t->grid.world_rank != 0) return;
    ProfileTotals p = {.steps = (int)(t->step - t->opt.bench_warmup),
                       .step_seconds = t->bench_seconds,
                       .comm_seconds = comm_dev_busy_seconds() - t->comm0,
                       .data_seconds = t->data_seconds};
    profile_report(&p, t->log);
}

// One step: forward and backward passes, then the update unless judge_step
// finds the step bad.  A skipped step still counts as an iteration (its data
// is consumed, t->step advances) but changes no weight, no Adam moment and not
// the schedule (Megatron's skipped iterations).  False when the step ended in
// a rollback (--max-bad-steps bad steps in a row).
static bool train_step(Trainer *t) {
    const Ops *ops = t->model->ops;
    bool profiled = t->step + 1 == t->opt.profile_step && ops->profiler_range;
    if (profiled) {
        ops->sync();
        ops->profiler_range(true);
    }
    watchdog_beat("in a training step", t->step + 1);
    bool measured = t->step >= t->opt.bench_warmup;
    if (t->step == t->opt.bench_warmup) profile_start(t);
    double t0 = now_seconds();
    uint64_t first = t->state.consumed;
    fill_rows(t);
    if (measured) t->data_seconds += now_seconds() - t0;
    double lr = lr_schedule_at(&t->optim->cfg.schedule, t->optim->step);
    double idle0 = pipeline_idle_seconds(t->pipeline);
    double local = pipeline_train(t->pipeline, &(PipelineFeed){feed_batch, feed_before_backward, t}, t->M, grad_scale(t, first));
    double norm = optimizer_reduce(t->optim);
    double loss = global_loss_sum(t, local) / step_tokens(t);
    Verdict v = judge_step(t, loss, norm);
    if (v.skip) optimizer_discard(t->optim);
    else optimizer_apply(t->optim, norm);
    ops->sync();
    double seconds = now_seconds() - t0;
    if (profiled) ops->profiler_range(false);
    if (v.loss_bad && t->opt.max_bad_steps == 0)
        fatal_all("the loss became %g at step %lld; lower --lr or raise --warmup-steps", loss,
                  (long long)t->step + 1);
    t->bad_steps = v.skip || v.spike ? t->bad_steps + 1 : 0;
    log_step(t, loss, lr, norm, seconds, &v);
    if (measured) {
        t->bench_tokens += step_tokens(t);
        t->bench_seconds += seconds;
        t->bench_idle += pipeline_idle_seconds(t->pipeline) - idle0;
    }
    t->step++;
    if (t->opt.max_bad_steps == 0 || t->bad_steps < t->opt.max_bad_steps) return true;
    char why[256];
    snprintf(why, sizeof why, "%d skipped or spiking steps in a row (steps %lld to %lld)",
             t->bad_steps, (long long)(t->step - t->bad_steps + 1), (long long)t->step);
    rollback(t, why);
    return false;
}

// True (why says so) when the model must not be written: a master weight is
// not finite, or the largest |w| passed WEIGHT_GROWTH_LIMIT × max(1, the
// largest |w| of the last checkpoint saved or loaded, or of the starting
// model).  *wmax: the largest |w|.
static bool diverged(Trainer *t, double *wmax, char *why, int len) {
    double w = *wmax = optimizer_max_abs_weight(t->optim);
    double base = fmax(1.0, t->weight_max0);
    if (!isfinite(w))
        snprintf(why, (size_t)len, "the master weights are not finite at step %lld",
                 (long long)t->step);
    else if (w > WEIGHT_GROWTH_LIMIT * base)
        snprintf(why, (size_t)len, "the largest master weight reached %.3g at step %lld, over "
                 "%g times the last checkpoint's largest (%.3g, at least 1)", w, (long long)t->step,
                 WEIGHT_GROWTH_LIMIT, base);
    else return false;
    return true;
}

// Saves a checkpoint of a healthy model.  A diverged model is never written
// (the checkpoints on disk stay as they are): the run rolls back (false) or stops.
static bool save_checked(Trainer *t) {
    char why[512];
    double w;
    if (diverged(t, &w, why, sizeof why)) {
        info("not saving a checkpoint: %s", why);
        rollback(t, why);
        return false;
    }
    watchdog_beat("saving a checkpoint", t->step);
    trainer_checkpoint_save(t);
    t->saved_step = t->step;
    t->weight_max0 = w;
    t->rollbacks = 0;
    return true;
}

// The signal any rank received (the largest number), or 0 (collective).
static int signal_anywhere(const Trainer *t) {
    int sig = signals_pending();
    comm_allreduce(&t->grid.world, &sig, 1, DTYPE_I32, REDUCE_MAX);
    return sig;
}

// Sequences an evaluation scores: --eval-steps batches of dp·B, or (0) every
// window of the validation split once.
static uint64_t eval_samples(const Trainer *t) {
    if (t->opt.eval_steps > 0) return (uint64_t)t->opt.eval_steps * t->B * t->grid.dp;
    return loader_samples(t->val);
}

// The sequences of this rank's micro-batch at global sample `consumed` that
// the evaluation scores (of `samples`); the rest of its B pad the last batch.
static int eval_rows(const Trainer *t, uint64_t consumed, uint64_t samples) {
    uint64_t first = consumed + (uint64_t)t->grid.dp_rank * t->B;
    if (first >= samples) return 0;
    return samples - first < (uint64_t)t->B ? (int)(samples - first) : t->B;
}

// Σ of the token losses of the micro-batch in t->rows on the last stage (0
// elsewhere), of its first `rows` sequences: the rest pad the split's last
// batch (they are computed, and left out).
static double eval_batch(Trainer *t, int rows) {
    if (rows == t->B) return pipeline_eval(t->pipeline, &(PipelineFeed){feed_batch, NULL, t}, 1);
    size_t n = (size_t)t->B * t->T / t->grid.cp;
    int32_t *ids = xmalloc(2 * n * sizeof(int32_t));   // (2, B, T / cp) inputs, targets
    loader_split_rows(t->rows, t->B, t->T, t->grid.cp, t->grid.cp_rank, ids, ids + n);
    model_set_batch(t->model, 0, ids, ids + n);
    pipeline_forward_logits(t->pipeline);
    free(ids);
    return t->part.last ? model_loss_sum(t->model, rows) : 0.0;
}

double trainer_evaluate(Trainer *t, double *tokens) {
    LoaderState st = {0};
    uint64_t samples = eval_samples(t), per_batch = (uint64_t)t->B * t->grid.dp;
    int64_t batches = (int64_t)((samples + per_batch - 1) / per_batch);
    double sum = 0;
    for (int64_t k = 0; k < batches; k++) {
        if (signal_anywhere(t)) {
            info("evaluation at step %lld stopped after %lld of %lld batches by a signal",
                 (long long)t->step, (long long)k, (long long)batches);
            return NAN;
        }
        watchdog_beat("evaluating", t->step);
        int rows = eval_rows(t, st.consumed, samples);
        loader_next(t->val, &st, t->grid.dp_rank, t->grid.dp, t->B, t->rows);
        sum += eval_batch(t, rows);
    }
    loader_state_free(&st);
    if (tokens) *tokens = (double)samples * t->T;
    return global_loss_sum(t, sum) / ((double)samples * t->T);
}

static void log_eval(Trainer *t) {
    double loss = trainer_evaluate(t, NULL);
    if (isnan(loss) && signal_anywhere(t)) return;   // stopped by a signal: nothing to log
    info("eval  step %lld | loss %.4f | perplexity %.2f", (long long)t->step, loss, exp(loss));
    if (t->log) {
        char line[256], v[32];   // non-finite: null (JSON has no NaN or Infinity)
        snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %s}", (long long)t->step,
                 metrics_json_number(loss, v));
        logfile_line(t->log, line);
    }
}

// The token after the first len of the batch's row 0, once the logits are
// there: greedy, or drawn by s with the uniform number (key, len) on the
// last stage's first rank, root, alone.  Every rank gets it from root.
static int32_t next_token(Trainer *t, int len, const SamplerConfig *s, uint64_t key, int root,
                          float *row) {
    int32_t next = 0;
    if (t->part.last && (!s || s->temperature == 0)) next = model_argmax(t->model, len - 1);
    else if (t->part.last) {
        model_logits_row(t->model, len - 1, row);
        if (t->grid.world_rank == root)
            next = sampler_draw(s, row, t->cfg.vocab_size, rng_uniform(key, (uint64_t)len));
    }
    comm_broadcast(&t->grid.world, &next, 1, DTYPE_I32, root);
    return next;
}

int trainer_generate(Trainer *t, const int32_t *prompt, int n, int n_new, const SamplerConfig *s,
                     uint64_t seed, int32_t *out) {
    int32_t *tokens = xcalloc((size_t)t->B * t->T, sizeof(int32_t));
    float *row = xmalloc((size_t)t->cfg.vocab_size * sizeof(float));   // (vocab) sampled logits
    uint64_t key = rng_key(seed, 0x73616d706c65 /* "sample" */);
    memcpy(out, prompt, (size_t)n * sizeof(int32_t));
    int len = n;
    // The token comes from the last stage's first rank: world rank (pp − 1)·replicas·tp.
    int root = (t->grid.pp - 1) * t->grid.replicas * t->grid.tp;
    while (len - n < n_new && len < t->T) {   // (n + n_new may overflow)
        memcpy(tokens, out, (size_t)len * sizeof(int32_t));
        model_set_batch(t->model, 0, tokens, tokens);
        pipeline_forward_logits(t->pipeline);
        out[len] = next_token(t, len, s, key, root, row);
        len++;
    }
    free(row);
    free(tokens);
    return len;
}

// The pipeline's idle share of the benchmarked steps, measured (each rank's
// time waiting for another stage, averaged over the ranks) and predicted; 0
// without a pipeline.
static double print_bench_bubble(Trainer *t) {
    if (t->grid.pp == 1) return 0;
    double share = t->bench_idle / t->bench_seconds;
    comm_allreduce(&t->grid.world, &share, 1, DTYPE_F64, REDUCE_SUM);
    share /= t->grid.world_size;
    int V = part_chunks(&t->part);
    info("bench: pipeline idle %.1f%% of the step (measured: waiting for another stage, mean of "
         "the ranks); bubble %.1f%% predicted for %d micro-batches on %d stages%s", 100 * share,
         100 * pipeline_bubble(t->grid.pp, t->M, V), t->M, t->grid.pp,
         V > 1 ? " interleaved" : "");
    return share;
}

static void print_bench(Trainer *t) {
    if (!t->opt.bench) return;
    if (t->bench_seconds <= 0) {
        info("bench: no steps after the %d warm-up steps; raise --steps", t->opt.bench_warmup);
        return;
    }
    StepMetrics s = {.step = t->step, .elapsed = t->bench_seconds};
    metrics_throughput(&s, t->bench_tokens, t->bench_seconds, t->flops_per_token,
                       t->grid.world_size, t->peak_tflops);
    s.peak_mem = peak_memory(t);
    comm_allreduce(&t->grid.world, &s.peak_mem, 1, DTYPE_F64, REDUCE_MAX);
    char mem[32], recompute[96] = "";
    if (t->model->recompute != RECOMPUTE_NONE)
        snprintf(recompute, sizeof recompute, ", recompute %s",
                 model_recompute_name(t->model->recompute));
    if (t->part.sp) strcat(recompute, ", sequence parallel");
    if (t->grid.cp > 1)
        snprintf(recompute + strlen(recompute), sizeof recompute - strlen(recompute),
                 ", context parallel %d", t->grid.cp);
    if (part_chunks(&t->part) > 1)
        snprintf(recompute + strlen(recompute), sizeof recompute - strlen(recompute),
                 ", %d chunks per stage interleaved", part_chunks(&t->part));
    const char *peak_from = t->opt.peak_tflops > 0            ? "given"
                            : !t->model->ops->host_memory ? "datasheet"
                            : t->opt.precision == PRECISION_BF16 ? "measured bf16 sgemm"
                                                                  : "measured sgemm";
    info("bench: %s, %d ranks (dp %d tp %d pp %d), micro-batch %d × %d, seq %d%s: %.2f samples/s, "
         "%.1f tokens/s, %.4f model TFLOP/s per device, MFU %.1f%% of %.4g TFLOP/s (%s), peak "
         "memory %s per rank", t->cfg.name, t->grid.world_size, t->grid.dp, t->grid.tp, t->grid.pp,
         t->B, t->M, t->T, recompute, s.tokens_per_s / t->T,
         s.tokens_per_s, s.tflops, 100 * s.mfu, t->peak_tflops,
         peak_from, format_bytes(s.peak_mem, mem, sizeof mem));
    double idle = print_bench_bubble(t);
    if (t->log) {
        char line[512];
        snprintf(line, sizeof line, "{\"bench\": true, \"samples_per_s\": %.6g, \"tokens_per_s\": %.6g, "
                 "\"tflops\": %.6g, \"mfu\": %.6g, \"peak_tflops\": %.6g, \"peak_mem_gib\": %.6g, "
                 "\"pipeline_idle\": %.6g, \"steps\": %lld}", s.tokens_per_s / t->T, s.tokens_per_s,
                 s.tflops, s.mfu, t->peak_tflops, s.peak_mem / 1073741824.0, idle,
                 (long long)(t->step - t->opt.bench_warmup));
        logfile_line(t->log, line);
    }
}

// Whether stopping now needs a save: not when this step's checkpoint is in
// --save-dir already, nor before the first step of a run that loaded none
// (a rerun with --load auto starts the same way).
static bool stop_needs_save(const Trainer *t) {
    return t->saved_step != t->step && (t->loaded || t->step > 0);
}

// True (on every rank) when any rank received SIGTERM, SIGUSR1, SIGINT or SIGHUP.
static bool stop_requested(Trainer *t) {
    int sig = signal_anywhere(t);
    if (sig) info("received %s: %s%s", sig == SIGTERM ? "SIGTERM" : sig == SIGUSR1 ? "SIGUSR1"
                                        : sig == SIGHUP ? "SIGHUP (the terminal closed)"
                                        : "SIGINT (Ctrl-C)",
                  t->opt.save_dir[0] && stop_needs_save(t) ? "saving a checkpoint and exiting"
                                                           : "exiting",
                  sig == SIGINT ? " (Ctrl-C again to stop at once)" : "");
    t->stop_signal = sig;
    return sig != 0;
}

// Every --save-interval steps, except inside a run of bad steps: that model
// is suspect, so the save waits for the next interval.
static bool periodic_save_due(const Trainer *t) {
    if (t->opt.save_interval <= 0 || t->step % t->opt.save_interval != 0) return false;
    if (t->bad_steps == 0) return true;
    info("not saving at step %lld: the last %d steps were skipped or spiking (the next interval "
         "saves)", (long long)t->step, t->bad_steps);
    return false;
}

// Rank 0 encodes the prompt (BOS first when the tokenizer has one); every
// rank gets the ids.  Returns the count.
static int encode_prompt(const Trainer *t, Tokenizer *tok, int32_t *ids, int max) {
    int n = 0;
    if (t->grid.world_rank == 0) {
        TokenIds enc = {0};
        if (tokenizer_bos_id(tok) >= 0) ids[n++] = (int32_t)tokenizer_bos_id(tok);
        tokenizer_encode(tok, t->opt.sample_prompt, strlen(t->opt.sample_prompt), false, &enc);
        for (size_t i = 0; i < enc.len && n < max; i++) ids[n++] = (int32_t)enc.ids[i];
        token_ids_free(&enc);
    }
    comm_broadcast(&t->grid.world, &n, 1, DTYPE_I32, 0);
    comm_broadcast(&t->grid.world, ids, (size_t)n, DTYPE_I32, 0);
    return n;
}

// Rank 0 prints out[0..len) (the prompt's n ids first) decoded, under a
// title naming how it was made.
static void print_continuation(const Trainer *t, Tokenizer *tok, const int32_t *out, int len,
                               int n, const char *how) {
    if (t->grid.world_rank != 0) return;
    uint32_t *u = xmalloc((size_t)len * sizeof(uint32_t));
    for (int i = 0; i < len; i++) u[i] = (uint32_t)out[i];
    size_t bytes;
    char *text = tokenizer_decode(tok, u, (size_t)len, &bytes);
    info("sample (%s, %d new tokens):\n%.*s", how, len - n, (int)bytes, text);
    free(text);
    free(u);
}

// "temperature 0.8, top-k 40, top-p 0.95, seed 7": the settings of a sampled continuation.
static void describe_sampling(const TrainOptions *o, uint64_t seed, char *out, size_t len) {
    int at = snprintf(out, len, "temperature %g", o->sample_temperature);
    if (o->sample_top_k > 0) at += snprintf(out + at, len - (size_t)at, ", top-k %d", o->sample_top_k);
    if (o->sample_top_p < 1) at += snprintf(out + at, len - (size_t)at, ", top-p %g", o->sample_top_p);
    snprintf(out + at, len - (size_t)at, ", seed %llu", (unsigned long long)seed);
}

// --sample-tokens: a greedy continuation of --sample-prompt, and with
// --sample-temperature a sampled one, decoded with --tokenizer.
static void print_sample(Trainer *t) {
    if (t->opt.sample_tokens <= 0) return;
    char err[1024] = "";
    Tokenizer *tok = t->opt.tokenizer[0] ? tokenizer_load(t->opt.tokenizer, err, sizeof err) : NULL;
    agree_or_exit(tok != NULL, t->opt.tokenizer[0] ? err : "--sample-tokens needs --tokenizer FILE");
    int32_t *ids = xmalloc((size_t)t->T * sizeof(int32_t)), *out = xmalloc((size_t)t->T * sizeof(int32_t));
    watchdog_beat("generating the sample", t->step);
    int n = encode_prompt(t, tok, ids, t->T - 1);
    if (n == 0) ids[n++] = 0;
    if ((int64_t)n + t->opt.sample_tokens > t->T)
        info("note: the samples stop at the sequence length, %d tokens: the prompt's %d and %d new "
             "(of --sample-tokens %d)", t->T, n, t->T - n, t->opt.sample_tokens);
    int len = trainer_generate(t, ids, n, t->opt.sample_tokens, NULL, 0, out);
    print_continuation(t, tok, out, len, n, "greedy");
    if (t->opt.sample_temperature > 0) {
        const TrainOptions *o = &t->opt;
        SamplerConfig s = {o->sample_temperature, o->sample_top_k, o->sample_top_p};
        uint64_t seed = o->sample_seed ? o->sample_seed : o->seed;
        char how[160];
        describe_sampling(o, seed, how, sizeof how);
        len = trainer_generate(t, ids, n, o->sample_tokens, &s, seed, out);
        print_continuation(t, tok, out, len, n, how);
    }
    free(ids);
    free(out);
    tokenizer_free(tok);
}

// --export-hf at the end, never of a diverged model.
static void finish(Trainer *t) {
    if (!t->opt.export_hf[0]) return;
    char why[512];
    double w;
    if (diverged(t, &w, why, sizeof why))
        fatal_all("not exporting to %s: %s; lower --lr or raise --warmup-steps", t->opt.export_hf, why);
    watchdog_beat("exporting Hugging Face weights", t->step);
    char err[2048], ck[4200];
    HfExportOptions x = {.bf16 = t->opt.export_dtype == PRECISION_BF16, .tokenizer = t->opt.tokenizer};
    bool sharded = !t->model->params;   // ZeRO-3: the full weights gathered for the export only
    if (sharded) zero_full_weights_hold(t->optim->zero, true);
    bool ok = hf_export_try(t->model, &t->grid, t->opt.export_hf, &x, err, sizeof err);
    if (sharded) zero_full_weights_drop(t->optim->zero, false);
    if (!ok) {
        if (!t->opt.save_dir[0])   // not the default folder other runs may use
            snprintf(t->opt.save_dir, sizeof t->opt.save_dir, "%s", DEFAULT_SAVE_DIR "-rescue");
        if (t->saved_step != t->step) trainer_checkpoint_save(t);   // the weights must survive
        ckpt_dir_name(t->opt.save_dir, t->step, false, ck, sizeof ck);
        fatal_all("--export-hf %s failed: %s; the trained weights are in %s (llama-ckpt "
                  "export-hf %s DIR exports them)", t->opt.export_hf, err, ck, ck);
    }
    info("exported Hugging Face weights to %s", t->opt.export_hf);
}

// The measured peak (RSS on the CPU, device memory on GPUs) of the busiest rank.
// Each rank's high-water mark of the backend's buffers against --describe's
// prediction (ranks 0–63; the CPU's resident peak adds the program and MPI).
static void report_buffer_peaks(const Trainer *t) {
    MemoryLayout lay = trainer_memory_layout(&t->opt, &t->cfg, t->grid.pp_rank);
    MemoryEstimate e = memory_estimate(&t->cfg, &t->part, &lay);
    const Ops *ops = t->model->ops;
    double predicted =
        t->opt.eval_only ? e.weights + e.grads + e.activations + e.backend : e.total;
    double mine[2] = {(double)ops->buffer_peak_bytes(), predicted};
    int n = t->grid.world_size;
    double *all = xmalloc(sizeof(double) * 2 * (size_t)n);   // (measured, predicted) per rank
    comm_allgather(&t->grid.world, mine, all, 2, DTYPE_F64);
    for (int r = 0; r < n && r < 64 && t->grid.world_rank == 0; r++) {
        char a[32], b[32];
        info("  rank %d: buffers' peak %s, predicted %s (%+.1f%%)", r,
             format_bytes(all[2 * r], a, sizeof a), format_bytes(all[2 * r + 1], b, sizeof b),
             100.0 * (all[2 * r] - all[2 * r + 1]) / all[2 * r + 1]);
    }
    free(all);
}

static void report_peak_memory(const Trainer *t) {
    double mine = peak_memory(t), all = mine;
    comm_allreduce(&t->grid.world, &all, 1, DTYPE_F64, REDUCE_MAX);
    char a[32], b[32];
    info("measured peak memory: %s on the busiest rank (rank 0: %s)", format_bytes(all, a, sizeof a),
         format_bytes(mine, b, sizeof b));
    report_buffer_peaks(t);
}

// A signal stopped a run that saves nothing: its exit status says so.
static void stopped_unsaved(const Trainer *t) {
    if (t->step > t->start_step)
        info("stopped at step %lld by a signal; nothing saved: the run has no --save-dir (-o) "
             "or --save-interval (-i), so its training is lost; give one to save on preemption",
             (long long)t->step);
    else
        info("stopped at step %lld by a signal, before training; nothing saved (a run without "
             "--save-dir (-o) or --save-interval (-i) saves nothing)", (long long)t->step);
}

// A signal stopped the run after this step's save: leave save_dir/preempted.
static void mark_preempted(Trainer *t) {
    char err[1024] = "";
    bool ok = t->grid.world_rank != 0 ||
              ckpt_dir_mark_preempted(t->opt.save_dir, t->step, err, sizeof err);
    agree_or_exit(ok, err);
    info("stopped at step %lld by a signal; resume with --load auto", (long long)t->step);
}

// Steps to the end, evaluating and saving on the way.  False when a signal
// stopped the run: one received before a step (during start-up too: loading
// a large checkpoint takes a while) stops it there, after a save when
// stop_needs_save.  A step or a save that rolls back just goes on from there.
static bool train_to_end(Trainer *t) {
    while (t->step < t->total_steps) {
        if (stop_requested(t)) {
            if (!t->opt.save_dir[0]) {
                stopped_unsaved(t);
                return false;
            }
            if (stop_needs_save(t) && !save_checked(t)) continue;
            mark_preempted(t);
            return false;
        }
        if (!train_step(t)) continue;
        if (t->val && t->opt.eval_interval > 0 && t->step % t->opt.eval_interval == 0)
            log_eval(t);
        if (periodic_save_due(t) && !save_checked(t)) continue;
    }
    return true;
}

// The closing evaluation and save (any run with a checkpoint folder, as
// Megatron saves at the end whenever --save is given); false when the final
// model diverged and the run rolled back.
static bool close_training(Trainer *t) {
    test_signal_at("LLAMA_TEST_SIGNAL_AT_CLOSE");
    if (t->val && t->opt.eval_interval > 0 && t->step % t->opt.eval_interval != 0) log_eval(t);
    return !t->opt.save_dir[0] || t->saved_step == t->step || save_checked(t);
}

// --eval-only: the held-out loss and perplexity, printed and logged, then
// the samples; nothing trained or saved.
static int run_eval_only(Trainer *t) {
    double tokens;
    double loss = trainer_evaluate(t, &tokens);
    int sig = isnan(loss) ? signal_anywhere(t) : 0;
    if (sig) return 128 + sig;   // stopped by a signal: no result, and the status says so
    info("eval loss %.6f perplexity %.4f over %.0f tokens", loss, exp(loss), tokens);
    info("  (%s at step %lld; %s: %.0f sequences of %d tokens)", t->opt.load[0] ? "checkpoint"
         : t->opt.init_hf[0] ? t->opt.init_hf : "initial weights", (long long)t->step,
         t->opt.eval_steps > 0 ? "--eval-steps batches" : "the whole validation split",
         tokens / t->T, t->T);
    if (t->log) {
        char line[320];
        char v[32], p[32];
        snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %s, \"eval_perplexity\": "
                 "%s, \"eval_tokens\": %.0f, \"eval_only\": true}", (long long)t->step,
                 metrics_json_number(loss, v), metrics_json_number(exp(loss), p), tokens);
        logfile_line(t->log, line);
    }
    print_sample(t);
    report_peak_memory(t);
    return 0;
}

int trainer_run(Trainer *t) {
    t->start_time = now_seconds();
    signals_install();
    if (t->opt.eval_only) return run_eval_only(t);
    if (t->step >= t->total_steps)
        info("note: the run is at step %lld, already at or past its %lld steps: nothing to "
             "train (give a larger --steps to continue)", (long long)t->step,
             (long long)t->total_steps);
    if (t->loaded && !t->opt.save_dir[0] && !t->opt.export_hf[0])
        info("note: this run continues a checkpoint but saves none (no --save-dir (-o) or "
             "--save-interval (-i)) and exports none: its training ends with it; add -o DIR to "
             "keep it");
    if (t->grid.world_rank == 0 && t->opt.save_dir[0]) ckpt_dir_clear_preempted(t->opt.save_dir);
    char cp[32] = "";   // as --describe names the layout
    if (t->grid.cp > 1) snprintf(cp, sizeof cp, ", cp %d", t->grid.cp);
    info("training %s for %lld steps: %d ranks (dp %d, tp %d%s, pp %d), %.0f tokens per step",
         t->cfg.name, (long long)t->total_steps, t->grid.world_size, t->grid.dp, t->grid.tp, cp,
         t->grid.pp, step_tokens(t));
    char schedule[256];
    lr_schedule_describe(&t->optim->cfg.schedule, t->total_steps, schedule, sizeof schedule);
    info("learning rate: %s", schedule);
    do {
        if (!train_to_end(t)) return t->opt.save_dir[0] ? 0 : 128 + t->stop_signal;
    } while (!close_training(t));
    // A signal during the closing evaluation or save: the steps are saved, but
    // what follows (the evaluation's line, the sample, the export) is left to
    // the requeued run (--load auto), which the preempted mark asks for.
    if (stop_requested(t)) {
        if (!t->opt.save_dir[0]) return 128 + t->stop_signal;
        mark_preempted(t);
        return 0;
    }
    finish(t);
    print_sample(t);
    print_bench(t);
    print_profile(t);
    report_peak_memory(t);
    return 0;
}
