// The training loop of llama-train: set-up from options, steps through the
// pipeline schedule and the optimizer, evaluation, metrics, sampling.
#ifndef LLAMA_TRAIN_H
#define LLAMA_TRAIN_H

#include <stdbool.h>

#include "core/config.h"
#include "parallel/grid.h"
#include "train/loader.h"
#include "train/memory.h"
#include "fs/logfile.h"
#include "train/metrics.h"
#include "model/model.h"
#include "train/optimizer.h"
#include "train/options.h"
#include "train/sampler.h"

typedef struct Trainer {
    TrainOptions opt;
    ModelConfig cfg;
    Grid grid;
    ModelPart part;
    int B, T, M;                 // micro-batch, sequence, micro-batches per step
    Model *model;
    Optimizer *optim;
    struct Pipeline *pipeline;
    Loader *train, *val;         // NULL under --bench / without a validation split
    LoaderState state;           // position in the training data
    int64_t step, total_steps;
    int32_t *rows;               // (M, B, T + 1) this step's token windows
    double flops_per_token, peak_tflops;
    double start_time;
    LogFile *log, *dump;
    double bench_tokens, bench_seconds;   // after the warm-up steps
    double bench_idle;       // of bench_seconds: waiting for another pipeline stage
    double comm0, data_seconds;   // --profile: communication time at the first measured
                                  // step, time reading batches since
    // Divergence handling (see DESIGN.md): skipped steps, spikes, rollback.
    LossWindow losses;           // losses of recent healthy steps, for spike z-scores
    int bad_steps;               // skipped or spiking steps in a row
    int rollbacks;               // rollbacks since this run last saved a checkpoint
    int64_t saved_step;          // step of this run's last save (-1: none yet), or of the
                                 // --save-dir checkpoint it loaded
    bool loaded;                 // it started from a checkpoint (else from initial or
                                 // --init-hf weights, which a rerun makes again)
    int64_t start_step;          // the step it started at
    char resumed_from[4200];     // the checkpoint it loaded at the start ("": none)
    int stop_signal;             // SIGTERM or SIGUSR1 that stopped the run (0: none)
    double weight_max0;          // largest |master weight| of the last save (or the start)
    uint64_t nan_window[2];      // test hooks (train.c): steps starting in these global
    int nan_rank;                // sample ranges [a, b) get NaN gradients (on this world
    uint64_t noise_window[2];    // rank, -1: all) or random tokens
} Trainer;

// Checks options that every rank can judge alone (sizes, layout, the attention
// this build has).
// False with one line in err.
bool trainer_check_options(const TrainOptions *o, const ModelConfig *cfg, int world, char *err,
                           int err_len);
// The learning-rate schedule of a run of total_steps steps under o.
LrSchedule trainer_lr_schedule(const TrainOptions *o, int64_t total_steps);
// The optimizer's settings under o (schedule, AdamW, ZeRO, offload).
OptimizerConfig trainer_optimizer_config(const TrainOptions *o, int64_t total_steps);
// The sequence length a run uses (--max-length or the model's).
int trainer_seq_len(const TrainOptions *o, const ModelConfig *cfg);
// The part of the model the rank at (tp_rank, cp_rank, pp_rank) holds under
// o; `replicas` ranks (data- × context-parallel) hold the same weights.
ModelPart trainer_part(const TrainOptions *o, const ModelConfig *cfg, int replicas, int tp_rank,
                       int cp_rank, int pp_rank);
// What the memory and traffic predictions of pipeline stage pp_rank need to
// know of o (--eval-only: the full weights, one micro-batch, no optimizer).
MemoryLayout trainer_memory_layout(const TrainOptions *o, const ModelConfig *cfg, int pp_rank);
// Prints parameter count, FLOPs per token and memory per rank for the layout.
void trainer_describe(const TrainOptions *o, const ModelConfig *cfg, int world);

// Collective: the run on backend ops (ops_select).
Trainer *trainer_create(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg);
// The model (seeded or --init-hf weights) and optimizer of a run without data
// (tests): micro-batch 1, sequence 1, one step.
Trainer *trainer_create_bare(const Ops *ops, const TrainOptions *o, const ModelConfig *cfg);
// Collective: checkpoint_save of t at t->step (train/checkpoint.h, its parts
// built from t), and checkpoint_release of its --save-dir.
void trainer_checkpoint_save(Trainer *t);
void trainer_checkpoint_release(const Trainer *t);
// Trains (or evaluates) to the end.  Returns the exit status: 0, or 128 +
// the signal when one stopped a run that saves nothing or an --eval-only run.
int trainer_run(Trainer *t);
void trainer_free(Trainer *t);

// Held-out loss, the mean over the tokens of --eval-steps micro-batches of
// the validation split read in order, or with --eval-steps 0 of every window
// of the split once (the last batch padded, its padding left out); *tokens
// (may be NULL) gets the count.  Every rank calls it.  NaN when SIGTERM or
// SIGUSR1 reached any rank meanwhile: the evaluation stops after the batch
// under way, so the run can save.
double trainer_evaluate(Trainer *t, double *tokens);
// Continuation of prompt (n ids) by n_new tokens into out (n + n_new ids, at
// most T): greedy when s is NULL or its temperature 0, else each token drawn
// by the sampler (train/sampler.h) from the whole vocabulary's logits with the
// uniform number of (seed, position), on one rank.  Identical on every rank
// and, for the same seed, under every layout.  Returns the length.
int trainer_generate(Trainer *t, const int32_t *prompt, int n, int n_new, const SamplerConfig *s,
                     uint64_t seed, int32_t *out);

#endif
