#include "train/options.h"

#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "text/deck.h"
#include "core/util.h"

typedef enum { OPT_STR, OPT_INT, OPT_I64, OPT_U64, OPT_F64, OPT_FLAG } OptType;

typedef struct {
    const char *name;    // long name without "--"
    char short_name;     // 0 when none
    OptType type;
    size_t offset;
    size_t size;         // for strings
    const char *help;
} OptSpec;

#define STR(f) OPT_STR, offsetof(TrainOptions, f), sizeof(((TrainOptions *)0)->f)
#define NUM(t, f) t, offsetof(TrainOptions, f), 0

static const OptSpec specs[] = {
    {"config", 'c', STR(config), "preset or model file (default tiny, or the --init-hf model)"},
    {"dataset", 'd', STR(dataset), "HDF5 token shards: a file or a folder of them"},
    {"batch-size", 'b', NUM(OPT_INT, batch_size), "micro-batch: sequences per data-parallel rank"},
    {"grad-accum", 0, NUM(OPT_INT, grad_accum), "micro-steps per optimizer step"},
    {"max-length", 'l', NUM(OPT_INT, max_length),
     "sequence length (default, or 0: the model's max_seq_len)"},
    {"steps", 0, NUM(OPT_I64, steps), "optimizer steps (default: --num-epochs of the data)"},
    {"num-epochs", 'e', NUM(OPT_INT, num_epochs), "epochs when --steps is not given"},
    {"lr", 0, NUM(OPT_F64, lr), "peak learning rate"},
    {"weight-decay", 'w', NUM(OPT_F64, weight_decay), "AdamW decoupled weight decay"},
    {"warmup-steps", 's', NUM(OPT_I64, warmup_steps), "linear warm-up steps"},
    {"min-lr-ratio", 0, NUM(OPT_F64, min_lr_ratio), "cosine decays to this fraction of --lr"},
    {"grad-clip", 0, NUM(OPT_F64, grad_clip), "global gradient-norm clip (0: none)"},
    {"tp", 0, NUM(OPT_INT, tp), "tensor-parallel size"},
    {"pp", 0, NUM(OPT_INT, pp), "pipeline-parallel size"},
    {"pp-layers", 0, STR(pp_layers), "layers per pipeline stage, e.g. 3,5"},
    {"zero", 0, NUM(OPT_INT, zero), "ZeRO stage over data-parallel ranks: 0, 1 or 2"},
    {"overlap-grad-reduce", 0, NUM(OPT_INT, overlap_grad_reduce),
     "ZeRO 0: all-reduce each layer's gradients during the backward pass (1) or after it (0)"},
    {"grad-checkpoint", 'g', NUM(OPT_FLAG, grad_checkpoint), "recompute activations in backward"},
    {"mixed-precision", 'x', STR(mixed_precision), "fp32 or bf16 (default bf16 on cuda)"},
    {"device", 0, STR(device), "cpu or cuda"},
    {"attention", 0, STR(attention),
     "cuda: cudnn (cuDNN flash attention, the default when built in) or own (our kernels)"},
    {"device-comm", 0, STR(device_comm),
     "cuda: nccl (default) or mpi (host-staged MPI: several ranks may share one GPU)"},
    {"save-interval", 'i', NUM(OPT_I64, save_interval), "save a checkpoint every N steps"},
    {"save-dir", 'o', STR(save_dir), "checkpoint folder"},
    {"load", 'f', STR(load), "checkpoint to resume from, or auto (newest in --save-dir)"},
    {"override-checkpoint-config", 0, NUM(OPT_FLAG, override_checkpoint_config),
     "--load: accept a checkpoint whose rope_theta or norm_eps differ from the model's (the "
     "model's values are used)"},
    {"keep-checkpoints", 0, NUM(OPT_INT, keep_checkpoints),
     "keep the newest K complete checkpoints (default 0: all)"},
    {"spike-threshold", 0, NUM(OPT_F64, spike_threshold),
     "a loss N std devs above the last 100 steps' mean is a spike (default 6; 0: off)"},
    {"max-bad-steps", 0, NUM(OPT_INT, max_bad_steps),
     "N skipped or spiking steps in a row: roll back to the newest checkpoint, skip their "
     "data (default 5; 0: off)"},
    {"eval-interval", 0, NUM(OPT_I64, eval_interval), "held-out loss every N steps"},
    {"eval-steps", 0, NUM(OPT_I64, eval_steps), "micro-batches per evaluation"},
    {"seed", 0, NUM(OPT_U64, seed), "every random choice derives from it"},
    {"log", 0, STR(log), "metrics, one JSON object per step"},
    {"bench", 0, NUM(OPT_FLAG, bench),
     "synthetic seeded tokens, no I/O: throughput (--dataset and --data-mix are not read)"},
    {"bench-warmup", 0, NUM(OPT_INT, bench_warmup), "steps left out of --bench figures"},
    {"init-hf", 0, STR(init_hf), "start from Hugging Face LLaMA weights in DIR"},
    {"export-hf", 0, STR(export_hf),
     "write Hugging Face weights to DIR at the end (DIR new, empty or a Hugging Face folder)"},
    {"export-dtype", 0, STR(export_dtype), "fp32 or bf16 for --export-hf"},
    {"dump-batches", 0, STR(dump_batches), "append every micro-batch's tokens (int32) to FILE"},
    {"data-mix", 0, STR(data_mix), "source=weight,... sampling proportions"},
    {"describe", 0, NUM(OPT_FLAG, describe), "print sizes and memory per rank, then exit"},
    {"world-size", 0, NUM(OPT_INT, world_size),
     "--describe: ranks of the described job (default: the ranks started, or tp·pp)"},
    {"tokenizer", 0, STR(tokenizer),
     "tokenizer.json (or bytes) of the dataset, to print the generated sample"},
    {"sample-prompt", 0, STR(sample_prompt), "prompt for the greedy sample at the end"},
    {"sample-tokens", 0, NUM(OPT_INT, sample_tokens), "tokens to generate at the end"},
    {"peak-tflops", 0, NUM(OPT_F64, peak_tflops), "per-device peak TFLOP/s for MFU"},
    {"profile-step", 0, NUM(OPT_I64, profile_step),
     "GPU profilers (ncu --profile-from-start off): collect step N only (1 = the first)"},
    {"hang-timeout", 0, NUM(OPT_F64, hang_timeout),
     "end the job when a rank makes no progress for S seconds (default 300; 0: never)"},
};
#define N_SPECS (int)(sizeof specs / sizeof specs[0])

void options_defaults(TrainOptions *o) {
    memset(o, 0, sizeof *o);
    o->batch_size = 4;
    o->hang_timeout = 300;
    o->grad_accum = 1;
    o->num_epochs = 1;
    o->lr = 3e-4;
    o->weight_decay = 0.1;
    o->min_lr_ratio = 0.1;
    o->grad_clip = 1.0;
    o->tp = o->pp = 1;
    o->overlap_grad_reduce = 1;
    strcpy(o->device, "cpu");
    strcpy(o->device_comm, "nccl");
    strcpy(o->save_dir, "checkpoints");
    o->eval_steps = 10;
    o->seed = 42;
    o->bench_warmup = 2;
    o->spike_threshold = 6;
    o->max_bad_steps = 5;
    strcpy(o->export_dtype, "fp32");
}

// Long name with '_' accepted for '-' (run decks often use either).
static const OptSpec *find_long(const char *name) {
    char norm[64];
    snprintf(norm, sizeof norm, "%s", name);
    for (char *p = norm; *p; p++)
        if (*p == '_') *p = '-';
    for (int i = 0; i < N_SPECS; i++)
        if (strcmp(specs[i].name, norm) == 0) return &specs[i];
    return NULL;
}

static const OptSpec *find_short(char c) {
    for (int i = 0; i < N_SPECS; i++)
        if (specs[i].short_name == c) return &specs[i];
    return NULL;
}

static bool set_value(TrainOptions *o, const OptSpec *s, const char *value, char *err,
                      int err_len) {
    void *field = (char *)o + s->offset;
    bool ok = true;
    const char *kind = "";
    int64_t i64;
    switch (s->type) {
    case OPT_STR:
        if (strlen(value) >= s->size) {
            snprintf(err, err_len, "--%s: value longer than %zu characters", s->name, s->size - 1);
            return false;
        }
        strcpy(field, value);
        return true;
    case OPT_INT: ok = parse_int(value, field), kind = "an integer"; break;
    case OPT_I64: ok = parse_int64(value, field), kind = "an integer"; break;
    case OPT_U64:
        ok = parse_int64(value, &i64) && i64 >= 0, kind = "a non-negative integer";
        if (ok) *(uint64_t *)field = (uint64_t)i64;
        break;
    case OPT_F64: ok = parse_double(value, field), kind = "a number"; break;
    case OPT_FLAG:
        ok = !strcmp(value, "true") || !strcmp(value, "1") || !strcmp(value, "false") ||
             !strcmp(value, "0");
        kind = "true or false";
        if (ok) *(bool *)field = !strcmp(value, "true") || !strcmp(value, "1");
        break;
    }
    if (!ok) snprintf(err, err_len, "--%s: expected %s, got '%s'", s->name, kind, value);
    return ok;
}

static bool apply_deck(TrainOptions *o, const char *path, char *err, int err_len) {
    Deck deck;
    if (!deck_read(path, &deck, err, err_len)) return false;
    bool ok = true;
    for (int i = 0; ok && i < deck.count; i++) {
        const OptSpec *s = find_long(deck.entries[i].key);
        if (!s) {
            snprintf(err, err_len, "%s:%d: unknown option '%s' (see llama-train --help)", path,
                     deck.entries[i].line, deck.entries[i].key);
            ok = false;
        } else if (!set_value(o, s, deck.entries[i].value, err, err_len)) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s:%d: %s", path, deck.entries[i].line, err);
            snprintf(err, err_len, "%s", msg);
            ok = false;
        }
    }
    deck_free(&deck);
    return ok;
}

// Finds the spec of argv[*i] and its value ("--x=v", "--x v", "-x v"; flags take none).
static bool parse_arg(TrainOptions *o, int argc, char **argv, int *i, char *err, int err_len) {
    const char *arg = argv[*i], *value = NULL;
    const OptSpec *s = NULL;
    char name[64] = "";
    if (arg[0] == '-' && arg[1] == '-') {
        const char *eq = strchr(arg, '=');
        size_t n = eq ? (size_t)(eq - arg - 2) : strlen(arg + 2);
        snprintf(name, sizeof name, "%.*s", (int)n, arg + 2);
        s = find_long(name);
        if (eq) value = eq + 1;
    } else if (arg[0] == '-' && arg[1] && !arg[2]) {
        s = find_short(arg[1]);
    }
    if (!s) {
        snprintf(err, err_len, "unknown option '%s' (see llama-train --help)", arg);
        return false;
    }
    if (s->type == OPT_FLAG && !value) value = "true";
    if (!value) {
        if (*i + 1 >= argc) {
            snprintf(err, err_len, "option '%s' needs a value", arg);
            return false;
        }
        value = argv[++*i];
    }
    return set_value(o, s, value, err, err_len);
}

bool options_parse(TrainOptions *o, int argc, char **argv, bool *help, char *err, int err_len) {
    *help = false;
    int i = 1;
    if (argc > 1 && argv[1][0] != '-') {
        if (!apply_deck(o, argv[1], err, err_len)) return false;
        i = 2;
    }
    for (; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            *help = true;
            return true;
        }
        if (argv[i][0] != '-') {
            snprintf(err, err_len, "unexpected argument '%s' (a run deck must come first)",
                     argv[i]);
            return false;
        }
        if (!parse_arg(o, argc, argv, &i, err, err_len)) return false;
    }
    return true;
}

// --data-mix names each source once ("c4=1,c4=5" would keep only the last).
static bool check_data_mix(const char *mix, char *err, int err_len) {
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

bool options_check(const TrainOptions *o, char *err, int err_len) {
    if (o->max_length < 0)
        snprintf(err, err_len, "--max-length %d: must be at least 1 (or 0 for the model's "
                 "max_seq_len)", o->max_length);
    else if (o->keep_checkpoints < 0)
        snprintf(err, err_len, "--keep-checkpoints %d: must not be negative (0 keeps every "
                 "checkpoint)", o->keep_checkpoints);
    else if (o->world_size < 0)
        snprintf(err, err_len, "--world-size %d: must be positive (the ranks of the layout "
                 "--describe prints)", o->world_size);
    else if (o->world_size > 0 && !o->describe)
        snprintf(err, err_len, "--world-size %d belongs to --describe; a run has the ranks mpirun "
                 "or srun starts", o->world_size);
    else return check_data_mix(o->data_mix, err, err_len);
    return false;
}

void options_print_help(const char *program) {
    printf("usage: %s [RUN_DECK] [options]\n\nTrains a LLaMA-family model. Every option may also "
           "come from a run deck\n(\"key = value\" lines, same names), given first; the command "
           "line overrides it.\n\n", program);
    for (int i = 0; i < N_SPECS; i++) {
        char lhs[64];
        const char *arg = specs[i].type == OPT_FLAG ? "" : specs[i].type == OPT_STR ? " S" : " N";
        if (specs[i].short_name)
            snprintf(lhs, sizeof lhs, "-%c, --%s%s", specs[i].short_name, specs[i].name, arg);
        else
            snprintf(lhs, sizeof lhs, "    --%s%s", specs[i].name, arg);
        printf("  %-28s %s\n", lhs, specs[i].help);
    }
}

char *options_format(const TrainOptions *o) {
    size_t cap = 4096, at = 0;
    char *out = xmalloc(cap);
    out[0] = 0;
    for (int i = 0; i < N_SPECS; i++) {
        const void *f = (const char *)o + specs[i].offset;
        char v[1100];
        switch (specs[i].type) {
        case OPT_STR: snprintf(v, sizeof v, "%s", (const char *)f); break;
        case OPT_INT: snprintf(v, sizeof v, "%d", *(const int *)f); break;
        case OPT_I64: snprintf(v, sizeof v, "%lld", (long long)*(const int64_t *)f); break;
        case OPT_U64: snprintf(v, sizeof v, "%llu", (unsigned long long)*(const uint64_t *)f); break;
        case OPT_F64: snprintf(v, sizeof v, "%.17g", *(const double *)f); break;
        case OPT_FLAG: snprintf(v, sizeof v, "%s", *(const bool *)f ? "true" : "false"); break;
        }
        size_t need = strlen(specs[i].name) + strlen(v) + 5;   // "name = v\n" and the NUL
        if (at + need > cap) {
            cap = 2 * (at + need);
            out = xrealloc(out, cap);
        }
        at += (size_t)snprintf(out + at, cap - at, "%s = %s\n", specs[i].name, v);
    }
    return out;
}
