#include "train/options.h"

#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/util.h"
#include "text/deck.h"
#include "train/sampler.h"

// The fields of TrainOptions the table sets (see core/cli.h).
#define STR(f) .kind = CLI_STRING, .size = sizeof(((TrainOptions *)0)->f), \
               .offset = offsetof(TrainOptions, f)
#define NUM(k, f) .kind = k, .offset = offsetof(TrainOptions, f)
#define CHOICE(f, list) .kind = CLI_CHOICE, .names = list, .offset = offsetof(TrainOptions, f)

// Choices: the names round-trip (options_format prints the first of a value),
// so a checkpoint's options read back as the run that wrote them.
static const CliName devices[] = {{"cpu", DEVICE_CPU}, {"cuda", DEVICE_CUDA}, {NULL, 0}};
static const CliName precisions[] = {{"fp32", PRECISION_FP32}, {"bf16", PRECISION_BF16},
                                     {NULL, 0}};
static const CliName mixed_precisions[] = {{"fp32", PRECISION_FP32}, {"bf16", PRECISION_BF16},
                                           {"", PRECISION_OF_DEVICE},
                                           {"default", PRECISION_OF_DEVICE}, {NULL, 0}};
static const CliName attentions[] = {{"cudnn", ATTENTION_CUDNN}, {"own", ATTENTION_OWN},
                                     {"", ATTENTION_DEFAULT}, {"default", ATTENTION_DEFAULT},
                                     {NULL, 0}};
static const CliName recomputes[] = {{"none", RECOMPUTE_NONE}, {"selective", RECOMPUTE_SELECTIVE},
                                     {"full", RECOMPUTE_FULL}, {NULL, 0}};
static const CliName offloads[] = {{"none", 0}, {"optimizer", 1}, {NULL, 0}};
static const CliName lr_decay_styles[] = {{"cosine", LR_DECAY_COSINE}, {"linear", LR_DECAY_LINEAR},
                                          {"constant", LR_DECAY_CONSTANT}, {"wsd", LR_DECAY_WSD},
                                          {NULL, 0}};
static const CliName device_comms[] = {{"nccl", DEVICE_COMM_NCCL}, {"mpi", DEVICE_COMM_MPI},
                                       {NULL, 0}};

static const CliOption specs[] = {
    {"config", 'c', STR(config), "preset or model file (default tiny, or the --init-hf model)"},
    {"tie-embeddings", 0, NUM(CLI_FLAG, tie_embeddings),
     "one tensor for the embedding and the LM head (tied, like LLaMA-3.2 1B/3B); an --init-hf "
     "model keeps its own tie_word_embeddings"},
    {"dataset", 'd', STR(dataset), "HDF5 token shards: a file or a folder of them"},
    {"batch-size", 'b', NUM(CLI_INT, batch_size), "micro-batch: sequences per data-parallel rank",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"grad-accum", 0, NUM(CLI_INT, grad_accum), "micro-steps per optimizer step",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"max-length", 'l', NUM(CLI_INT, max_length),
     "sequence length (default, or 0: the model's max_seq_len)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"steps", 0, NUM(CLI_INT64, steps), "optimizer steps (default: --num-epochs of the data)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"num-epochs", 'e', NUM(CLI_INT, num_epochs), "epochs when --steps is not given",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"lr", 0, NUM(CLI_DOUBLE, lr), "peak learning rate"},
    {"weight-decay", 'w', NUM(CLI_DOUBLE, weight_decay), "AdamW decoupled weight decay",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"warmup-steps", 's', NUM(CLI_INT64, warmup_steps), "linear warm-up steps",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"min-lr-ratio", 0, NUM(CLI_DOUBLE, min_lr_ratio), "the decay ends at this fraction of --lr",
     .bounds = CLI_BETWEEN, .min = 0, .max = 1},
    {"lr-decay-style", 0, CHOICE(lr_decay_style, lr_decay_styles),
     "after the warm-up: cosine (default), linear, constant, or wsd (stable at --lr, then a "
     "linear decay over the last --lr-wsd-decay-steps)"},
    {"lr-decay-steps", 0, NUM(CLI_INT64, lr_decay_steps),
     "the step at which the decay reaches --min-lr-ratio·--lr, counted from step 0 like "
     "Megatron's --lr-decay-iters (default 0: the run's last step)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"lr-wsd-decay-steps", 0, NUM(CLI_INT64, lr_wsd_decay_steps),
     "wsd: the steps of the final decay, ending at --lr-decay-steps",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"adam-beta1", 0, NUM(CLI_DOUBLE, adam_beta1), "AdamW's first-moment decay (default 0.9)"},
    {"adam-beta2", 0, NUM(CLI_DOUBLE, adam_beta2), "AdamW's second-moment decay (default 0.95)"},
    {"adam-eps", 0, NUM(CLI_DOUBLE, adam_eps), "AdamW's denominator epsilon (default 1e-8)"},
    {"grad-clip", 0, NUM(CLI_DOUBLE, grad_clip), "global gradient-norm clip (0: none)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"tp", 0, NUM(CLI_INT, tp), "tensor-parallel size",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"sp", 0, NUM(CLI_FLAG, sp),
     "sequence parallel (Megatron's, with --tp > 1): norms, residual adds and the embedding's "
     "output split along the sequence over the tensor-parallel group (activations / tp)"},
    {"cp", 0, NUM(CLI_INT, cp),
     "context-parallel size: each sequence split over cp ranks (two chunks each, load-balanced), "
     "attention as ring attention over them (sequence a multiple of 2·cp)",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"pp", 0, NUM(CLI_INT, pp), "pipeline-parallel size",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"vpp", 0, NUM(CLI_INT, vpp),
     "model chunks per pipeline rank, run with interleaved 1F1B (Megatron's virtual pipeline: "
     "the bubble shrinks vpp-fold; --grad-accum a multiple of --pp)",
     .bounds = CLI_BETWEEN, .min = 1, .max = PART_MAX_CHUNKS},
    {"pp-layers", 0, STR(pp_layers), "layers per pipeline stage (with --vpp: per model chunk, "
     "pp · vpp of them in model order), e.g. 3,5"},
    {"zero", 0, NUM(CLI_INT, zero), "ZeRO stage over data-parallel ranks: 0 none, 1 optimizer states, 2 and gradients, 3 and weights",
     .bounds = CLI_BETWEEN, .min = 0, .max = 3},
    {"overlap-grad-reduce", 0, NUM(CLI_INT, overlap_grad_reduce),
     "ZeRO 0: all-reduce each layer's gradients during the backward pass (1) or after it (0)",
     .bounds = CLI_BETWEEN, .min = 0, .max = 1},
    {"recompute", 0, CHOICE(recompute, recomputes),
     "activations recomputed in the backward pass: none (default: all kept), selective (the "
     "norms and SwiGLU recomputed, matmul and attention outputs kept) or full (each layer's "
     "forward rerun from its input)"},
    {"grad-checkpoint", 'g', NUM(CLI_FLAG, grad_checkpoint), "the same as --recompute full"},
    {"offload", 0, CHOICE(offload, offloads),
     "none (default) or optimizer: fp32 master weights and Adam moments in pinned host memory, "
     "AdamW on the host (with any ZeRO stage; on CPU ranks they are host memory already)"},
    {"mixed-precision", 'x', CHOICE(mixed_precision, mixed_precisions),
     "fp32 or bf16 (default bf16 on cuda)"},
    {"device", 0, CHOICE(device, devices), "cpu or cuda"},
    {"attention", 0, CHOICE(attention, attentions),
     "cuda: cudnn (cuDNN flash attention, the default when built in) or own (our kernels)"},
    {"device-comm", 0, CHOICE(device_comm, device_comms),
     "cuda: nccl (default) or mpi (host-staged MPI: several ranks may share one GPU)"},
    {"save-interval", 'i', NUM(CLI_INT64, save_interval), "save a checkpoint every N steps",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"save-dir", 'o', STR(save_dir), "checkpoint folder (default: " DEFAULT_SAVE_DIR " when -i or "
     "--load auto is given; a run with none saves nothing, also on SIGTERM)"},
    {"load", 'f', STR(load), "checkpoint to resume from, or auto (newest in --save-dir)"},
    {"override-checkpoint-config", 0, NUM(CLI_FLAG, override_checkpoint_config),
     "--load: accept a checkpoint whose rope_theta, RoPE scaling or norm_eps differ from the "
     "model's (the model's values are used)"},
    {"keep-checkpoints", 0, NUM(CLI_INT, keep_checkpoints),
     "keep the newest K complete checkpoints (default 0: all)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"spike-threshold", 0, NUM(CLI_DOUBLE, spike_threshold),
     "a loss N std devs above the last 100 steps' mean is a spike (default 6; 0: off)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"max-bad-steps", 0, NUM(CLI_INT, max_bad_steps),
     "N skipped or spiking steps in a row: roll back to the newest checkpoint, skip their "
     "data (default 5; 0: off)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"eval-interval", 0, NUM(CLI_INT64, eval_interval), "held-out loss every N steps",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"eval-steps", 0, NUM(CLI_INT64, eval_steps),
     "micro-batches per evaluation (0: the whole validation split)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"eval-only", 0, NUM(CLI_FLAG, eval_only),
     "no training: load the model (--load or --init-hf), print the held-out loss and "
     "perplexity over --eval-steps (and the --sample-tokens sample), exit"},
    {"seed", 0, NUM(CLI_UINT64, seed), "every random choice derives from it"},
    {"log", 0, STR(log), "metrics, one JSON object per step"},
    {"bench", 0, NUM(CLI_FLAG, bench),
     "synthetic seeded tokens, no I/O: throughput (--dataset and --data-mix are not read)"},
    {"bench-warmup", 0, NUM(CLI_INT, bench_warmup), "steps left out of --bench figures",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"init-hf", 0, STR(init_hf), "start from Hugging Face LLaMA weights in DIR"},
    {"export-hf", 0, STR(export_hf),
     "write Hugging Face weights to DIR at the end (DIR new, empty or a Hugging Face folder)"},
    {"export-dtype", 0, CHOICE(export_dtype, precisions), "fp32 or bf16 for --export-hf"},
    {"dump-batches", 0, STR(dump_batches), "append every micro-batch's tokens (int32) to FILE"},
    {"data-mix", 0, STR(data_mix), "source=weight,... sampling proportions"},
    {"describe", 0, NUM(CLI_FLAG, describe), "print sizes and memory per rank, then exit"},
    {"world-size", 0, NUM(CLI_INT, world_size),
     "--describe: ranks of the described job (default: the ranks started, or tp·cp·pp)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"tokenizer", 0, STR(tokenizer),
     "tokenizer.json (or bytes) of the dataset, to print the generated sample"},
    {"sample-prompt", 0, STR(sample_prompt), "prompt for the samples at the end"},
    {"sample-tokens", 0, NUM(CLI_INT, sample_tokens),
     "tokens to generate at the end: a greedy continuation, and a sampled one with "
     "--sample-temperature",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"sample-temperature", 0, NUM(CLI_DOUBLE, sample_temperature),
     "> 0: also a sampled continuation at this temperature (default 0: greedy only)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"sample-top-k", 0, NUM(CLI_INT, sample_top_k),
     "sample among the K most likely tokens (after the temperature; 0: all)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"sample-top-p", 0, NUM(CLI_DOUBLE, sample_top_p),
     "then among the most likely tokens whose probability reaches P (default 1: all)"},
    {"sample-seed", 0, NUM(CLI_UINT64, sample_seed), "seed of the sampled draws (default 0: --seed)"},
    {"peak-tflops", 0, NUM(CLI_DOUBLE, peak_tflops), "per-device peak TFLOP/s for MFU (default "
     "0: the GPU's datasheet figure, or the CPU's measured sgemm)", .bounds = CLI_AT_LEAST,
     .min = 0},
    {"profile", 0, NUM(CLI_FLAG, profile),
     "time every op (synchronously: a GPU loses its overlap) over the steps after --bench-warmup; "
     "a table by op and shape at the end, and in --log"},
    {"profile-step", 0, NUM(CLI_INT64, profile_step),
     "GPU profilers (ncu --profile-from-start off): collect step N only (1 = the first)",
     .bounds = CLI_AT_LEAST, .min = 0},
    {"hang-timeout", 0, NUM(CLI_DOUBLE, hang_timeout),
     "end the job when a rank makes no progress for S seconds (default 300; 0: never)",
     .bounds = CLI_BELOW, .min = 0, .max = 1e9},
};
static const CliTable table = {specs, (int)(sizeof specs / sizeof specs[0]), "llama-train", NULL, NULL};
_Static_assert(sizeof(Device) == sizeof(int) && sizeof(Precision) == sizeof(int) &&
               sizeof(Attention) == sizeof(int) && sizeof(DeviceComm) == sizeof(int) &&
               sizeof(Recompute) == sizeof(int) && sizeof(LrDecayStyle) == sizeof(int),
               "CLI_CHOICE fields are int-sized enums");

Recompute options_recompute(const TrainOptions *o) {
    return o->grad_checkpoint ? RECOMPUTE_FULL : o->recompute;
}

void options_defaults(TrainOptions *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 4;
    o->hang_timeout = 300;
    o->grad_accum = 1;
    o->num_epochs = 1;
    o->lr = 3e-4;
    o->weight_decay = 0.1;
    o->min_lr_ratio = 0.1;
    o->adam_beta1 = 0.9;
    o->adam_beta2 = 0.95;
    o->adam_eps = 1e-8;
    o->grad_clip = 1.0;
    o->tp = o->pp = o->vpp = o->cp = 1;
    o->overlap_grad_reduce = 1;
    o->device = DEVICE_CPU;
    o->mixed_precision = PRECISION_OF_DEVICE;
    o->precision = PRECISION_FP32;
    o->attention = ATTENTION_DEFAULT;
    o->device_comm = DEVICE_COMM_NCCL;
    o->eval_steps = 10;
    o->seed = 42;
    o->bench_warmup = 2;
    o->spike_threshold = 6;
    o->max_bad_steps = 5;
    o->export_dtype = PRECISION_FP32;
    o->sample_top_p = 1.0;
}

static bool apply_deck(TrainOptions *o, const char *path, char *err, int err_len) {
    Deck deck;
    if (!deck_read(path, &deck, err, err_len)) return false;
    bool ok = true;
    for (int i = 0; ok && i < deck.count; i++) {
        const DeckEntry *e = &deck.entries[i];
        ok = cli_set(&table, o, e->key, e->value, err, err_len);
        if (!ok) {
            char msg[1024];
            snprintf(msg, sizeof msg, "%s:%d: %s", path, e->line, err);
            snprintf(err, err_len, "%s", msg);
        }
    }
    deck_free(&deck);
    return ok;
}

void options_resolve(TrainOptions *o) {
    if (o->mixed_precision != PRECISION_OF_DEVICE) o->precision = (Precision)o->mixed_precision;
    else o->precision = o->device == DEVICE_CUDA ? PRECISION_BF16 : PRECISION_FP32;
    // Only a run that asked for checkpoints uses the shared default folder: a
    // signal must not make a run without -o save (and claim, and move aside
    // another run's checkpoints) there.
    if (!o->save_dir[0] && (o->save_interval > 0 || strcmp(o->load, "auto") == 0))
        snprintf(o->save_dir, sizeof o->save_dir, "%s", DEFAULT_SAVE_DIR);
}

bool options_parse(TrainOptions *o, int argc, char **argv, bool *help, char *err, int err_len) {
    *help = false;
    int first = 1;
    if (argc > 1 && argv[1][0] != '-') {
        if (!apply_deck(o, argv[1], err, err_len)) return false;
        first = 2;
    }
    CliList extra = {0};
    bool ok = cli_parse(&table, o, argc, argv, first, &extra, help, err, err_len);
    if (ok && extra.n > 0) {
        snprintf(err, err_len, "unexpected argument '%s' (a run deck must come first)",
                 extra.items[0]);
        ok = false;
    }
    cli_list_free(&extra);
    options_resolve(o);
    return ok;
}

// --data-mix names each source once ("c4=1,c4=5" would keep only the last).
static bool check_data_mix(const char *mix, char *err, int err_len) {
    if (list_has_empty_item(mix)) {
        snprintf(err, err_len, "--data-mix '%s' has an empty item (a comma too many); give "
                 "source=weight,... with one comma between items", mix);
        return false;
    }
    char buf[sizeof ((TrainOptions *)0)->data_mix];
    snprintf(buf, sizeof buf, "%s", mix);
    const char *names[sizeof buf / 2];
    int n = 0;
    for (char *save, *item = strtok_r(buf, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
        char *eq = strchr(item, '=');
        if (eq) *eq = 0;
        for (int i = 0; i < n; i++)
            if (strcmp(names[i], item) == 0) {
                snprintf(err, err_len, "--data-mix '%s' names the source '%s' twice; give each "
                         "source one weight", mix, item);
                return false;
            }
        names[n++] = item;
    }
    return true;
}

// Values no bound of the table says: a rate positive unless nothing trains,
// AdamW's values as the float arithmetic sees them (a beta that rounds to 1,
// an eps that rounds to 0 break it), data given.
static const char *value_problem(const TrainOptions *o) {
    if (!(o->lr > 0) && !o->eval_only) return "--lr must be positive";
    if (!(o->adam_beta1 >= 0 && (float)o->adam_beta1 < 1) ||
        !(o->adam_beta2 >= 0 && (float)o->adam_beta2 < 1))
        return "--adam-beta1 and --adam-beta2 must be in [0, 1), and below 1 in float (at most "
               "0.99999994)";
    if (!((float)o->adam_eps > 0)) return "--adam-eps must be positive, and in float (at least 1.5e-45)";
    if (o->eval_only && !o->dataset[0])
        return "--eval-only needs --dataset PATH: HDF5 shards with a validation split "
               "(llama-tokenize encode --val-fraction)";
    if (!o->bench && !o->dataset[0] && !o->describe)
        return "no training data: give --dataset PATH (HDF5 shards from llama-tokenize encode), "
               "or --bench for synthetic tokens";
    return NULL;
}

bool options_check(const TrainOptions *o, char *err, int err_len) {
    const char *bad = value_problem(o);
    if (o->world_size > 0 && !o->describe)
        snprintf(err, err_len, "--world-size %d belongs to --describe; a run has the ranks mpirun "
                 "or srun starts", o->world_size);
    else if (o->grad_checkpoint && o->recompute == RECOMPUTE_SELECTIVE)
        snprintf(err, err_len, "--grad-checkpoint (-g) is --recompute full and contradicts "
                 "--recompute selective: give one of them (--grad-checkpoint=false overrides a "
                 "run deck's)");
    else if (o->eval_only && o->bench)
        snprintf(err, err_len, "--eval-only evaluates on the validation split of --dataset; "
                 "--bench has no data: leave one out");
    else if (o->eval_only && o->export_hf[0])
        snprintf(err, err_len, "--eval-only writes nothing; to export a checkpoint use "
                 "llama-ckpt export-hf CHECKPOINT DIR");
    else if (bad)
        snprintf(err, err_len, "%s", bad);
    else if (!sampler_check(&(SamplerConfig){o->sample_temperature, o->sample_top_k,
                                             o->sample_top_p}, err, err_len))
        return false;
    else return check_data_mix(o->data_mix, err, err_len);
    return false;
}

// The options of training alone: --eval-only ignores them.
static const char *const training_only[] = {
    "grad-accum", "steps", "num-epochs", "lr", "weight-decay", "warmup-steps", "min-lr-ratio",
    "lr-decay-style", "lr-decay-steps", "lr-wsd-decay-steps", "adam-beta1", "adam-beta2", "adam-eps",
    "grad-clip", "zero", "overlap-grad-reduce", "recompute", "grad-checkpoint", "offload", "save-interval",
    "keep-checkpoints", "spike-threshold", "max-bad-steps", "eval-interval", "bench-warmup",
    "dump-batches", "data-mix", "profile-step", NULL};

// The "name = value" line of name in text (options_format's), up to its end.
static const char *line_of(const char *text, const char *name, size_t *len) {
    size_t n = strlen(name);
    for (const char *p = text; *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : p + strlen(p))
        if (strncmp(p, name, n) == 0 && strncmp(p + n, " = ", 3) == 0) {
            *len = strcspn(p, "\n");
            return p;
        }
    *len = 0;
    return "";
}

void options_ignored_by_eval_only(const TrainOptions *o, char *out, int len) {
    TrainOptions d;
    options_defaults(&d);
    char *given = options_format(o), *plain = options_format(&d);
    int at = 0;
    out[0] = 0;
    for (int i = 0; training_only[i] && at < len; i++) {
        size_t a, b;
        const char *x = line_of(given, training_only[i], &a), *y = line_of(plain, training_only[i], &b);
        if (a == b && strncmp(x, y, a) == 0) continue;
        int n = snprintf(out + at, (size_t)(len - at), "%s--%s", at ? ", " : "", training_only[i]);
        at += n > 0 ? n : 0;
    }
    free(given);
    free(plain);
}

static const char *const optimizer_keys[] = {
    "lr", "min-lr-ratio", "warmup-steps", "lr-decay-style", "lr-decay-steps", "lr-wsd-decay-steps",
    "weight-decay", "grad-clip", "adam-beta1", "adam-beta2", "adam-eps", NULL};

// The value of a "name = value" line (of line_of's length n) into out.
static void value_of(const char *line, size_t n, char *out, size_t len) {
    const char *eq = memchr(line, '=', n);
    size_t skip = eq ? (size_t)(eq - line) + 2 : n;
    snprintf(out, len, "%.*s", (int)(n > skip ? n - skip : 0), line + skip);
}

// The value of key in saved options text into out ("" when it has none).
static void saved_value(const char *saved, const char *key, char *out, size_t len) {
    size_t n;
    const char *line = line_of(saved, key, &n);
    value_of(line, n, out, len);
}

int64_t options_saved_int(const char *saved, const char *key, int64_t fallback) {
    char value[64];
    saved_value(saved, key, value, sizeof value);
    int64_t v;
    return value[0] && parse_int64(value, &v) ? v : fallback;
}

bool options_saved_flag(const char *saved, const char *key) {
    char value[16];
    saved_value(saved, key, value, sizeof value);
    return strcmp(value, "true") == 0;
}

void options_optimizer_changes(const char *saved, const TrainOptions *o, char *out, int len) {
    TrainOptions d;
    options_defaults(&d);
    char *now = options_format(o), *plain = options_format(&d);
    int at = 0;
    out[0] = 0;
    for (int i = 0; optimizer_keys[i] && at < len; i++) {
        size_t a, b;
        const char *x = line_of(now, optimizer_keys[i], &a), *y = line_of(saved, optimizer_keys[i], &b);
        if (b == 0) y = line_of(plain, optimizer_keys[i], &b);   // saved before the key existed
        char va[64], vb[64];
        value_of(x, a, va, sizeof va);
        value_of(y, b, vb, sizeof vb);
        double da, db;
        bool numbers = parse_double(va, &da) && parse_double(vb, &db);
        if (numbers ? da == db : strcmp(va, vb) == 0) continue;
        int n = numbers ? snprintf(out + at, (size_t)(len - at), "%s--%s %g (was %g)", at ? ", " : "",
                                   optimizer_keys[i], da, db)
                        : snprintf(out + at, (size_t)(len - at), "%s--%s %s (was %s)", at ? ", " : "",
                                   optimizer_keys[i], va, vb);
        at += n > 0 ? n : 0;
    }
    free(now);
    free(plain);
}

void options_print_help(const char *program) {
    printf("usage: %s [RUN_DECK] [options]\n\nTrains a LLaMA-family model. Every option may also "
           "come from a run deck\n(\"key = value\" lines, same names), given first; the command "
           "line overrides it.\n\n", program);
    cli_print_options(&table, 28, stdout);
}

char *options_format(const TrainOptions *o) { return cli_format(&table, o); }
