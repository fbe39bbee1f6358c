#include "train.h"

#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "checkpoint.h"
#include "ckpt_dir.h"
#include "hf.h"
#include "memory.h"
#include "metrics.h"
#include "pipeline.h"
#include "signals.h"
#include "traffic.h"
#include "tokenizer.h"
#include "util.h"

// ---- options and layout ----

int trainer_seq_len(const TrainOptions *o, const ModelConfig *cfg) {
    return o->max_length > 0 ? o->max_length : cfg->max_seq_len;
}

static bool check_ranges(const TrainOptions *o, const ModelConfig *cfg, char *err, int len) {
    int T = trainer_seq_len(o, cfg);
    const char *bad = NULL;
    if (o->batch_size < 1) bad = "--batch-size must be at least 1";
    else if (o->grad_accum < 1) bad = "--grad-accum must be at least 1";
    else if (o->max_length < 0) bad = "--max-length must be positive";
    else if (o->steps < 0) bad = "--steps must not be negative";
    else if (o->num_epochs < 1) bad = "--num-epochs must be at least 1";
    else if (!(o->lr > 0)) bad = "--lr must be positive";
    else if (o->weight_decay < 0) bad = "--weight-decay must not be negative";
    else if (o->min_lr_ratio < 0 || o->min_lr_ratio > 1) bad = "--min-lr-ratio must be in [0, 1]";
    else if (o->grad_clip < 0) bad = "--grad-clip must not be negative (0 disables clipping)";
    else if (o->warmup_steps < 0) bad = "--warmup-steps must not be negative";
    else if (o->eval_interval < 0 || o->eval_steps < 1) bad = "--eval-interval must be >= 0 and --eval-steps >= 1";
    else if (o->save_interval < 0) bad = "--save-interval must not be negative";
    else if (o->sample_tokens < 0) bad = "--sample-tokens must not be negative";
    else if (o->bench_warmup < 0) bad = "--bench-warmup must not be negative";
    else if (o->profile_step < 0) bad = "--profile-step must not be negative";
    else if (o->overlap_grad_reduce != 0 && o->overlap_grad_reduce != 1)
        bad = "--overlap-grad-reduce must be 0 or 1";
    else if (strcmp(o->export_dtype, "fp32") && strcmp(o->export_dtype, "bf16"))
        bad = "--export-dtype must be fp32 or bf16";
    else if (!o->bench && !o->dataset[0] && !o->describe)
        bad = "no training data: give --dataset PATH (HDF5 shards from llama-tokenize encode), "
              "or --bench for synthetic tokens";
    if (bad) {
        snprintf(err, len, "%s", bad);
        return false;
    }
    if (T > cfg->max_seq_len) {
        snprintf(err, len, "--max-length %d exceeds the model's max_seq_len %d", T,
                 cfg->max_seq_len);
        return false;
    }
    return true;
}

const char *trainer_precision(const TrainOptions *o) {
    if (o->mixed_precision[0]) return o->mixed_precision;
    return strcmp(o->device, "cuda") == 0 ? "bf16" : "fp32";
}

bool trainer_check_options(const TrainOptions *o, const ModelConfig *cfg, int world, char *err,
                           int err_len) {
    if (!check_ranges(o, cfg, err, err_len)) return false;
    const char *p = trainer_precision(o);
    if (strcmp(p, "fp32") && strcmp(p, "bf16")) {
        snprintf(err, err_len, "--mixed-precision must be fp32 or bf16, got '%s'", p);
        return false;
    }
    if (strcmp(o->device, "cpu") && strcmp(o->device, "cuda")) {
        snprintf(err, err_len, "--device must be cpu or cuda, got '%s'", o->device);
        return false;
    }
    if (!ops_attention_for(o->device, o->attention, err, err_len)) return false;
    if (strcmp(o->device_comm, "nccl") && strcmp(o->device_comm, "mpi")) {
        snprintf(err, err_len, "--device-comm must be nccl or mpi, got '%s'", o->device_comm);
        return false;
    }
    if (!grid_check_layout(cfg, world, o->tp, o->pp, o->zero, err, err_len)) return false;
    int counts[4096];
    if (o->pp > 4096) {
        snprintf(err, err_len, "--pp %d is too large", o->pp);
        return false;
    }
    return pipeline_split_layers(o->pp_layers, cfg->n_layers, o->pp, counts, err, err_len);
}

static ModelPart part_of(const TrainOptions *o, const ModelConfig *cfg, int dp, int tp_rank,
                         int pp_rank) {
    int counts[4096];
    char err[256];
    if (!pipeline_split_layers(o->pp_layers, cfg->n_layers, o->pp, counts, err, sizeof err))
        fatal("%s", err);
    ModelPart p = {.tp = o->tp, .tp_rank = tp_rank, .dp = dp};
    for (int s = 0; s < pp_rank; s++) p.layer0 += counts[s];
    p.n_layers = counts[pp_rank];
    p.first = pp_rank == 0;
    p.last = pp_rank == o->pp - 1;
    return p;
}

static MemoryLayout memory_layout(const TrainOptions *o, const ModelConfig *cfg, int pp_rank) {
    return (MemoryLayout){.B = o->batch_size, .T = trainer_seq_len(o, cfg),
                          .grad_accum = o->grad_accum, .pp = o->pp, .pp_rank = pp_rank,
                          .zero = o->zero, .recompute = o->grad_checkpoint,
                          .act_bytes = strcmp(trainer_precision(o), "bf16") ? 4 : 2,
                          .flash_attention = strcmp(o->device, "cuda") == 0};
}

void trainer_describe(const TrainOptions *o, const ModelConfig *c, int world) {
    int T = trainer_seq_len(o, c), dp = world / (o->tp * o->pp);
    info("model %s: dim %d, %d layers, %d heads (%d KV), head dim %d, FFN %d, vocab %d, "
         "max seq %d, rope theta %g, norm eps %g", c->name, c->dim, c->n_layers, c->n_heads,
         c->n_kv_heads, config_head_dim(c), c->ffn_dim, c->vocab_size, c->max_seq_len,
         c->rope_theta, c->norm_eps);
    char total[32], flop[32];
    info("parameters: %s total, %s non-embedding + LM head (the N of 6N)",
         format_count((double)config_params_total(c), total, sizeof total),
         format_count((double)config_params_flop(c), flop, sizeof flop));
    info("model FLOPs per token at sequence %d: %.4g (6N + 12·layers·dim·seq)", T,
         config_flops_per_token(c, T));
    bool overlap = optimizer_overlaps(o->overlap_grad_reduce, o->zero, dp);
    info("layout: %d ranks = dp %d × tp %d × pp %d, ZeRO-%d, micro-batch %d, grad-accum %d, "
         "%s on %s%s%s", world, dp, o->tp, o->pp, o->zero, o->batch_size, o->grad_accum,
         trainer_precision(o), o->device, o->grad_checkpoint ? ", activation recomputation" : "",
         overlap ? ", gradient all-reduce per layer during the backward pass" : "");
    char err[256];
    info("attention: %s", ops_attention_for(o->device, o->attention, err, sizeof err));
    for (int s = 0; s < o->pp; s++) {
        if (s > 0 && s < o->pp - 1) continue;   // middle stages look like stage 0 without the embedding
        ModelPart part = part_of(o, c, dp, 0, s);
        MemoryLayout lay = memory_layout(o, c, s);
        MemoryEstimate e = memory_estimate(c, &part, &lay);
        char title[64];
        snprintf(title, sizeof title, "memory per rank, stage %d", s);
        memory_print(title, &e);
        Traffic tr = traffic_estimate(c, &part, &lay, dp);
        snprintf(title, sizeof title, "communication, stage %d", s);
        traffic_print(title, &tr);
    }
}

// ---- set-up ----

static void init_weights(Trainer *t) {
    Model *m = t->model;
    if (t->opt.init_hf[0]) {
        char err[2048];
        bool ok = hf_import(m, t->opt.init_hf, err, sizeof err);
        comm_agree(&t->grid.world, ok, err);
        info("initialised from Hugging Face weights in %s", t->opt.init_hf);
        return;
    }
    float *host = xmalloc(m->table.numel * sizeof(float));
    params_init_host(&m->table, t->opt.seed, host);
    ops->act_from_host_f32(m->params, host, m->table.numel);
    free(host);
}

// --load: a checkpoint folder, or "auto" for the newest in --save-dir.
static void resume(Trainer *t) {
    if (!t->opt.load[0]) return;
    char dir[4200];
    if (checkpoint_resolve(t, dir, sizeof dir)) checkpoint_load(t, dir);
    else info("no checkpoint in %s: starting from step 0", t->opt.save_dir);
}

static void open_data(Trainer *t) {
    if (t->opt.bench) return;
    char err[1024];
    LoaderConfig lc = {.path = t->opt.dataset, .split = "train", .max_length = t->T,
                       .vocab_size = t->cfg.vocab_size, .seed = t->opt.seed,
                       .data_mix = t->opt.data_mix, .shuffle = true};
    t->train = loader_open(&lc, err, sizeof err);
    if (!t->train) fatal("%s", err);
    lc.split = "val";
    lc.shuffle = false;
    lc.data_mix = NULL;
    t->val = loader_open(&lc, err, sizeof err);
    if (!t->val && t->opt.eval_interval > 0)
        fatal("--eval-interval needs a validation split: %s (tokenize with --val-fraction)", err);
}

static void count_steps(Trainer *t) {
    uint64_t per_step = (uint64_t)t->B * t->M * t->grid.dp;
    if (t->opt.steps > 0) t->total_steps = t->opt.steps;
    else if (t->opt.bench) t->total_steps = 10;
    else t->total_steps = (int64_t)(loader_samples(t->train) * t->opt.num_epochs / per_step);
    if (t->total_steps < 1)
        fatal("the dataset has %llu samples of %d tokens, fewer than one step's %llu; use a "
              "smaller --batch-size or --max-length", (unsigned long long)loader_samples(t->train),
              t->T + 1, (unsigned long long)per_step);
}

static void open_outputs(Trainer *t) {
    char err[1024];
    if (t->opt.log[0] && t->grid.world_rank == 0 && !(t->log = logfile_open(t->opt.log, err, sizeof err)))
        fatal("%s", err);
    if (t->opt.dump_batches[0] && t->grid.tp_rank == 0 && t->grid.pp_rank == 0) {
        char path[1100];
        if (t->grid.dp > 1) snprintf(path, sizeof path, "%s.dp%d", t->opt.dump_batches, t->grid.dp_rank);
        else snprintf(path, sizeof path, "%s", t->opt.dump_batches);
        if (!(t->dump = logfile_open(path, err, sizeof err))) fatal("%s", err);
    }
}

// Peak for MFU: --peak-tflops, else on the CPU the measured sgemm rate, on a
// GPU the datasheet's dense rate for the compute precision (0, no MFU, for a
// card the table does not know).
static void set_peak(Trainer *t) {
    t->flops_per_token = config_flops_per_token(&t->cfg, t->T);
    t->peak_tflops = t->opt.peak_tflops;
    if (t->peak_tflops > 0) return;
    if (strcmp(ops->name, "cpu") == 0) {
        if (t->grid.world_rank == 0) t->peak_tflops = metrics_sgemm_tflops();
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
    MemoryLayout lay = memory_layout(&t->opt, &t->cfg, t->grid.pp_rank);
    MemoryEstimate e = memory_estimate(&t->cfg, &t->part, &lay);
    double mine[2] = {e.total, (double)e.n_params}, all[2 * 4096];
    if (t->grid.world_size > 4096) return;
    comm_allgather(&t->grid.world, mine, all, 2, DTYPE_F64);
    memory_print("memory (rank 0)", &e);
    Traffic tr = traffic_estimate(&t->cfg, &t->part, &lay, t->grid.dp);
    traffic_print("predicted communication (rank 0)", &tr);
    if (t->grid.world_rank != 0 || t->grid.world_size == 1) return;
    for (int r = 0; r < t->grid.world_size && r < 64; r++) {
        char b[32];
        info("  rank %d: %.4g M parameters, %s predicted", r, all[2 * r + 1] / 1e6,
             format_bytes(all[2 * r], b, sizeof b));
    }
}

// Grid, model part and model for micro-batch B, sequence T, M micro-batches.
static Trainer *trainer_alloc(const TrainOptions *o, const ModelConfig *cfg, int B, int T, int M) {
    Trainer *t = xcalloc(1, sizeof *t);
    t->opt = *o;
    t->cfg = *cfg;
    t->B = B;
    t->T = T;
    t->M = M;
    grid_create(&t->grid, o->tp, o->pp);
    t->part = part_of(o, cfg, t->grid.dp, t->grid.tp_rank, t->grid.pp_rank);
    t->model = model_create(cfg, &t->part, &t->grid.tp_comm, B, T, pipeline_slots(&t->grid, M),
                            o->grad_checkpoint);
    t->pipeline = pipeline_create(t->model, &t->grid);
    init_weights(t);
    return t;
}

static void create_optimizer(Trainer *t) {
    const TrainOptions *o = &t->opt;
    OptimizerConfig oc = {.lr = o->lr, .min_lr_ratio = o->min_lr_ratio,
                          .weight_decay = o->weight_decay, .grad_clip = o->grad_clip,
                          .beta1 = 0.9, .beta2 = 0.95, .eps = 1e-8,
                          .warmup_steps = o->warmup_steps, .total_steps = t->total_steps,
                          .zero = o->zero, .overlap_grad_reduce = o->overlap_grad_reduce};
    t->optim = optimizer_create(&oc, t->model, &t->grid);
    optimizer_sync_master(t->optim);
}

// The backend's attention implementation (--attention), said once at start-up.
static void select_attention(const TrainOptions *o) {
    char err[512] = "";
    agree_or_exit(ops_select_attention(o->attention, err, sizeof err), err);
    char line[256];
    ops_attention_summary(line, sizeof line);
    info("attention: %s", line);
}

Trainer *trainer_create(const TrainOptions *o, const ModelConfig *cfg) {
    select_attention(o);
    Trainer *t = trainer_alloc(o, cfg, o->batch_size, trainer_seq_len(o, cfg), o->grad_accum);
    open_data(t);
    count_steps(t);
    create_optimizer(t);
    resume(t);
    t->rows = xmalloc((size_t)t->M * t->B * (t->T + 1) * sizeof(int32_t));
    open_outputs(t);
    set_peak(t);
    report_memory(t);
    return t;
}

Trainer *trainer_create_bare(const TrainOptions *o, const ModelConfig *cfg) {
    Trainer *t = trainer_alloc(o, cfg, 1, 1, 1);
    t->total_steps = 1;
    create_optimizer(t);
    return t;
}

void trainer_free(Trainer *t) {
    if (!t) return;
    logfile_close(t->log);
    logfile_close(t->dump);
    loader_close(t->train);
    loader_close(t->val);
    optimizer_free(t->optim);
    pipeline_free(t->pipeline);
    model_free(t->model);
    grid_free(&t->grid);
    free(t->rows);
    free(t);
}

// ---- steps ----

static void fill_rows(Trainer *t) {
    size_t per_micro = (size_t)t->B * (t->T + 1);
    for (int k = 0; k < t->M; k++) {
        int32_t *rows = t->rows + (size_t)k * per_micro;
        if (t->train)
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

static void log_step(Trainer *t, double loss, double lr, double norm, double seconds) {
    StepMetrics s = {.step = t->step + 1, .total_steps = t->total_steps, .loss = loss, .lr = lr,
                     .grad_norm = norm, .step_time = seconds,
                     .elapsed = now_seconds() - t->start_time};
    metrics_throughput(&s, step_tokens(t), seconds, t->flops_per_token, t->grid.world_size,
                       t->peak_tflops);
    s.peak_mem = ops->peak_bytes() ? (double)ops->peak_bytes() : metrics_peak_rss();
    comm_allreduce(&t->grid.world, &s.peak_mem, 1, DTYPE_F64, REDUCE_MAX);
    char line[512];
    metrics_console(&s, line, sizeof line);
    info("%s", line);
    if (t->log) {
        metrics_json(&s, line, sizeof line);
        logfile_line(t->log, line);
    }
}

static void train_step(Trainer *t) {
    bool profiled = t->step + 1 == t->opt.profile_step && ops->profiler_range;
    if (profiled) {
        ops->sync();
        ops->profiler_range(true);
    }
    double t0 = now_seconds();
    fill_rows(t);
    double lr = lr_at(&t->optim->cfg, t->step);
    double local = pipeline_train(t->pipeline, t->optim, t->rows, t->M,
                                  (float)(1.0 / step_tokens(t)));
    double norm = optimizer_step(t->optim);
    double loss = global_loss_sum(t, local) / step_tokens(t);
    ops->sync();
    double seconds = now_seconds() - t0;
    if (profiled) ops->profiler_range(false);
    if (!isfinite(loss)) fatal("the loss became %g at step %lld; lower --lr or raise --warmup-steps",
                               loss, (long long)t->step + 1);
    log_step(t, loss, lr, norm, seconds);
    if (t->step >= t->opt.bench_warmup) {
        t->bench_tokens += step_tokens(t);
        t->bench_seconds += seconds;
    }
    t->step++;
}

double trainer_evaluate(Trainer *t) {
    LoaderState st = {0};
    double sum = 0;
    for (int64_t k = 0; k < t->opt.eval_steps; k++) {
        loader_next(t->val, &st, t->grid.dp_rank, t->grid.dp, t->B, t->rows);
        sum += pipeline_eval(t->pipeline, t->rows, 1);
    }
    double tokens = (double)t->opt.eval_steps * t->B * t->T * t->grid.dp;
    return global_loss_sum(t, sum) / tokens;
}

static void log_eval(Trainer *t) {
    double loss = trainer_evaluate(t);
    info("eval  step %lld | loss %.4f | perplexity %.2f", (long long)t->step, loss, exp(loss));
    if (t->log) {
        char line[256];
        snprintf(line, sizeof line, "{\"step\": %lld, \"eval_loss\": %.9g}", (long long)t->step,
                 loss);
        logfile_line(t->log, line);
    }
}

int trainer_generate(Trainer *t, const int32_t *prompt, int n, int n_new, int32_t *out) {
    int32_t *tokens = xcalloc((size_t)t->B * t->T, sizeof(int32_t));
    memcpy(out, prompt, (size_t)n * sizeof(int32_t));
    int len = n;
    // The token comes from the last stage's first rank: world rank (pp − 1)·dp·tp.
    int root = (t->grid.pp - 1) * t->grid.dp * t->grid.tp;
    while (len < n + n_new && len < t->T) {
        memcpy(tokens, out, (size_t)len * sizeof(int32_t));
        model_set_batch(t->model, 0, tokens, tokens);
        pipeline_forward_logits(t->pipeline);
        int32_t next = t->part.last ? model_argmax(t->model, len - 1) : 0;
        comm_broadcast(&t->grid.world, &next, 1, DTYPE_I32, root);
        out[len++] = next;
    }
    free(tokens);
    return len;
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
    s.peak_mem = ops->peak_bytes() ? (double)ops->peak_bytes() : metrics_peak_rss();
    comm_allreduce(&t->grid.world, &s.peak_mem, 1, DTYPE_F64, REDUCE_MAX);
    char mem[32];
    info("bench: %s, %d ranks (dp %d tp %d pp %d), micro-batch %d × %d, seq %d%s: %.2f samples/s, "
         "%.1f tokens/s, %.4f model TFLOP/s per device, MFU %.1f%% of %.4g TFLOP/s (%s), peak "
         "memory %s per rank", t->cfg.name, t->grid.world_size, t->grid.dp, t->grid.tp, t->grid.pp,
         t->B, t->M, t->T, t->opt.grad_checkpoint ? ", recompute" : "", s.tokens_per_s / t->T,
         s.tokens_per_s, s.tflops, 100 * s.mfu, t->peak_tflops,
         t->opt.peak_tflops > 0 ? "given" : strcmp(ops->name, "cpu") == 0 ? "measured sgemm" : "datasheet",
         format_bytes(s.peak_mem, mem, sizeof mem));
    if (t->log) {
        char line[512];
        snprintf(line, sizeof line, "{\"bench\": true, \"samples_per_s\": %.6g, \"tokens_per_s\": %.6g, "
                 "\"tflops\": %.6g, \"mfu\": %.6g, \"peak_tflops\": %.6g, \"peak_mem_gib\": %.6g, "
                 "\"steps\": %lld}", s.tokens_per_s / t->T, s.tokens_per_s, s.tflops, s.mfu,
                 t->peak_tflops, s.peak_mem / 1073741824.0, (long long)(t->step - t->opt.bench_warmup));
        logfile_line(t->log, line);
    }
}

// True (on every rank) when any rank received SIGTERM or SIGUSR1.
static bool stop_requested(const Trainer *t) {
    int sig = signals_pending();
    comm_allreduce(&t->grid.world, &sig, 1, DTYPE_I32, REDUCE_MAX);
    if (sig) info("received %s: saving a checkpoint and exiting", sig == SIGTERM ? "SIGTERM" : "SIGUSR1");
    return sig != 0;
}

static bool save_due(const Trainer *t) {
    return t->opt.save_interval > 0 && t->step % t->opt.save_interval == 0;
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

// --sample-tokens: a greedy continuation of --sample-prompt, decoded with --tokenizer.
static void print_sample(Trainer *t) {
    if (t->opt.sample_tokens <= 0) return;
    char err[1024] = "";
    Tokenizer *tok = t->opt.tokenizer[0] ? tokenizer_load(t->opt.tokenizer, err, sizeof err) : NULL;
    agree_or_exit(tok != NULL, t->opt.tokenizer[0] ? err : "--sample-tokens needs --tokenizer FILE");
    int32_t *ids = xmalloc((size_t)t->T * sizeof(int32_t)), *out = xmalloc((size_t)t->T * sizeof(int32_t));
    int n = encode_prompt(t, tok, ids, t->T - 1);
    if (n == 0) ids[n++] = 0;
    int len = trainer_generate(t, ids, n, t->opt.sample_tokens, out);
    if (t->grid.world_rank == 0) {
        uint32_t *u = xmalloc((size_t)len * sizeof(uint32_t));
        for (int i = 0; i < len; i++) u[i] = (uint32_t)out[i];
        size_t bytes;
        char *text = tokenizer_decode(tok, u, (size_t)len, &bytes);
        info("sample (greedy, %d new tokens):\n%.*s", len - n, (int)bytes, text);
        free(text);
        free(u);
    }
    free(ids);
    free(out);
    tokenizer_free(tok);
}

static void finish(Trainer *t) {
    if (t->opt.save_interval > 0 && !save_due(t)) checkpoint_save(t);
    if (t->opt.export_hf[0]) {
        hf_export(t->model, &t->grid, t->opt.export_hf, strcmp(t->opt.export_dtype, "bf16") == 0);
        info("exported Hugging Face weights to %s", t->opt.export_hf);
    }
}

// The measured peak (RSS on the CPU, device memory on GPUs) of the busiest rank.
static void report_peak_memory(const Trainer *t) {
    double mine = ops->peak_bytes() ? (double)ops->peak_bytes() : metrics_peak_rss(), all = mine;
    comm_allreduce(&t->grid.world, &all, 1, DTYPE_F64, REDUCE_MAX);
    char a[32], b[32];
    info("measured peak memory: %s on the busiest rank (rank 0: %s)", format_bytes(all, a, sizeof a),
         format_bytes(mine, b, sizeof b));
}

void trainer_run(Trainer *t) {
    t->start_time = now_seconds();
    signals_install();
    if (t->grid.world_rank == 0) ckpt_dir_clear_preempted(t->opt.save_dir);
    info("training %s for %lld steps: %d ranks (dp %d, tp %d, pp %d), %.0f tokens per step",
         t->cfg.name, (long long)t->total_steps, t->grid.world_size, t->grid.dp, t->grid.tp,
         t->grid.pp, step_tokens(t));
    while (t->step < t->total_steps) {
        train_step(t);
        if (t->val && t->opt.eval_interval > 0 && t->step % t->opt.eval_interval == 0)
            log_eval(t);
        if (save_due(t)) checkpoint_save(t);
        if (stop_requested(t)) {
            if (!save_due(t)) checkpoint_save(t);
            char err[1024] = "";
            bool ok = t->grid.world_rank != 0 ||
                      ckpt_dir_mark_preempted(t->opt.save_dir, t->step, err, sizeof err);
            agree_or_exit(ok, err);
            info("stopped at step %lld by a signal; resume with --load auto", (long long)t->step);
            return;
        }
    }
    if (t->val && t->opt.eval_interval > 0 && t->step % t->opt.eval_interval != 0) log_eval(t);
    finish(t);
    print_sample(t);
    print_bench(t);
    report_peak_memory(t);
}
