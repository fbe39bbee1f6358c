// llama-train's options: names follow Colossal-AI's LLaMA example where one
// exists.  Every option can also come from a run deck ("key = value" lines,
// the same names) given as the first argument; the command line overrides it.
// One table (options.c, read by core/cli) parses both, prints --help and
// formats the options back; choices are enums, parsed once.
#ifndef LLAMA_OPTIONS_H
#define LLAMA_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "backend/ops.h"   // Device, Precision
#include "model/model.h"   // Recompute
#include "train/lr_schedule.h"   // LrDecayStyle

// --device-comm: how CUDA ranks exchange device buffers.
typedef enum { DEVICE_COMM_NCCL, DEVICE_COMM_MPI } DeviceComm;   // nccl | mpi (host-staged)
// --mixed-precision not given: the device's precision (bf16 on cuda, fp32 on cpu).
#define PRECISION_OF_DEVICE (-1)

typedef struct {
    char config[256];        // preset or model file
    char dataset[1024];      // HDF5 token shards: a file, or a folder of them
    int batch_size;          // micro-batch: sequences per DP rank per micro-step
    int grad_accum;          // micro-steps per optimizer step
    int max_length;          // sequence length (0: the model's max_seq_len)
    int64_t steps;           // optimizer steps (0: from num_epochs)
    int num_epochs;
    double lr, weight_decay, min_lr_ratio, grad_clip;
    double adam_beta1, adam_beta2, adam_eps;
    int64_t warmup_steps;
    LrDecayStyle lr_decay_style;
    int64_t lr_decay_steps;     // the step the decay ends at (0: the run's last)
    int64_t lr_wsd_decay_steps; // wsd: the final decay's length
    int tp, pp, zero;
    bool sp;                 // --sp: sequence parallel over the tensor-parallel group
    int vpp;                 // --vpp: model chunks per pipeline rank (interleaved 1F1B)
    int cp;                  // --cp: context-parallel size (each sequence split over cp ranks)
    bool profile;            // --profile: time every op over the steps after --bench-warmup
    char pp_layers[256];     // layers per pipeline stage by hand, "a,b,..."
    bool tie_embeddings;     // --tie-embeddings: the model's LM head is its embedding
    bool grad_checkpoint;    // -g: the old spelling of --recompute full
    Recompute recompute;     // --recompute as given; options_recompute resolves -g
    int overlap_grad_reduce;    // 0 or 1
    int offload;             // --offload: 0 none, 1 optimizer (master weights, Adam moments, update)
    int mixed_precision;     // --mixed-precision as given: a Precision or PRECISION_OF_DEVICE
    Precision precision;     // what the run computes in: mixed_precision resolved for the device
    Device device;
    Attention attention;     // --attention (backend/ops.h)
    DeviceComm device_comm;
    int64_t save_interval;
    char save_dir[1024];     // -o; "" (none given): DEFAULT_SAVE_DIR when the run saves
                             // (--save-interval or --load auto), else the run saves nothing
    char load[1024];         // checkpoint path or "auto"
    bool override_checkpoint_config;   // --load: the model's rope_theta/norm_eps win over the checkpoint's
    int keep_checkpoints;    // newest complete checkpoints kept (0: all)
    int64_t eval_interval, eval_steps;   // eval_steps 0: the whole validation split
    bool eval_only;          // load, evaluate (and sample), exit: no training, no checkpoint
    uint64_t seed;
    char log[1024];
    bool bench;
    int bench_warmup;        // steps excluded from the benchmark figures
    char init_hf[1024], export_hf[1024];
    Precision export_dtype;  // of the --export-hf weights
    char dump_batches[1024];
    char data_mix[1024];     // "source=weight,..."
    bool describe;           // print sizes and memory per rank, then exit
    int world_size;          // --describe: ranks to describe (default tp·pp, or the MPI world)
    char tokenizer[1024];    // for decoding the sample
    char sample_prompt[1024];
    int sample_tokens;       // tokens generated at the end (0: none)
    double sample_temperature;   // 0: greedy only; > 0: a sampled continuation too
    int sample_top_k;        // 0: no top-k
    double sample_top_p;     // 1: no top-p
    uint64_t sample_seed;    // 0: --seed
    double peak_tflops;      // per-device peak for MFU (0: the backend's default)
    int64_t profile_step;    // the step a GPU profiler collects (0: none)
    double hang_timeout;     // seconds without progress before the job ends (0: never)
    double spike_threshold;  // loss z-score that counts as a spike (0: no spike detection)
    int max_bad_steps;       // consecutive skipped/spiking steps before a rollback (0: none)
} TrainOptions;

#define DEFAULT_SAVE_DIR "checkpoints"
// The integer value of key ("cp", "batch-size") in a checkpoint's saved
// options (options_format's text), or fallback where it has none.
int64_t options_saved_int(const char *saved, const char *key, int64_t fallback);
// Whether the flag key ("sp") is true in a checkpoint's saved options.
bool options_saved_flag(const char *saved, const char *key);

void options_defaults(TrainOptions *o);
// The settings that follow from others: the compute precision (for the
// device) and the checkpoint folder (DEFAULT_SAVE_DIR when the run saves and
// none was given).  options_parse and trainer_create call it; idempotent.
void options_resolve(TrainOptions *o);
// What the backward pass recomputes: full with -g, else --recompute.
Recompute options_recompute(const TrainOptions *o);
// Parses a run deck (when argv[1] is not an option) and the command line,
// then resolves it (options_resolve).  On error returns false with one line in err.
// --help sets *help.
bool options_parse(TrainOptions *o, int argc, char **argv, bool *help, char *err, int err_len);
// Checks what the options alone decide (no model, no files) beyond the
// table's bounds: a positive --lr, AdamW's values in float, data given,
// --world-size with --describe, --data-mix naming each source once, the
// sampling settings, what --eval-only cannot do (--bench, --export-hf), -g
// with --recompute selective.  False with one line in err (llama-train: a
// usage error, exit 2).
bool options_check(const TrainOptions *o, char *err, int err_len);
// --eval-only: the training options given (set to other than their
// defaults), which it ignores, as "--steps, --lr, ..." in out ("" if none).
void options_ignored_by_eval_only(const TrainOptions *o, char *out, int len);
// A resume: the schedule and AdamW settings of o that differ from saved (the
// options text of the run that saved the checkpoint; a key it lacks counts
// as its default), as "--lr 0.001 (was 0.0003), ..." in out ("" if none).
void options_optimizer_changes(const char *saved, const TrainOptions *o, char *out, int len);
void options_print_help(const char *program);
// The options as "key = value" lines (a run deck that reproduces the run); malloc'd.
char *options_format(const TrainOptions *o);

#endif
