// llama-plan: ranks the layouts llama-train accepts for a model, sequence
// length, global batch and device count by predicted tokens/s on a machine
// profile (train/plan.h); no MPI, no device.
#include <stddef.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/cli.h"
#include "core/util.h"
#include "train/machine.h"
#include "train/model_file.h"
#include "train/plan.h"

// The largest --devices planned: the layout search walks every divisor (1,024
// nodes of 8 GPUs with room to spare; beyond, int arithmetic would wrap).
#define PLAN_MAX_DEVICES (1 << 20)

typedef struct {
    char config[256], machine[1024];
    bool tie_embeddings, all, tsv, exact, grad_checkpoint;
    int max_length, devices, top, max_micro_batch;
    int64_t global_tokens;
    int tp, cp, pp, vpp, zero, batch_size, grad_accum, recompute, offload;
    bool sp;
} PlanOptions;

#define STR(f) .kind = CLI_STRING, .size = sizeof(((PlanOptions *)0)->f), \
               .offset = offsetof(PlanOptions, f)
#define NUM(k, f) .kind = k, .offset = offsetof(PlanOptions, f)

static const CliName recomputes[] = {{"", -1}, {"any", -1}, {"none", RECOMPUTE_NONE},
                                     {"selective", RECOMPUTE_SELECTIVE},
                                     {"full", RECOMPUTE_FULL}, {NULL, 0}};
static const CliName offloads[] = {{"", -1}, {"any", -1}, {"none", 0}, {"optimizer", 1}, {NULL, 0}};

static const CliOption specs[] = {
    {"config", 'c', STR(config), "model: a preset (tiny, small, 1b, 7b, ..., 65b, llama2-70b, ...) "
     "or a model file"},
    {"tie-embeddings", 0, NUM(CLI_FLAG, tie_embeddings), "the model's LM head is its embedding"},
    {"max-length", 'l', NUM(CLI_INT, max_length), "sequence length (default: the model's max_seq_len)"},
    {"global-batch-tokens", 0, NUM(CLI_INT64, global_tokens),
     "tokens per optimizer step: a multiple of --max-length (dp · micro-batch · grad-accum sequences)"},
    {"devices", 0, NUM(CLI_INT, devices), "ranks (GPUs, or CPU ranks) of the job"},
    {"machine", 0, STR(machine), "machine profile (inputs/machines/*.machine)"},
    {"all", 0, NUM(CLI_FLAG, all), "also list the layouts that do not fit or that llama-train "
     "refuses, with the reason"},
    {"top", 0, NUM(CLI_INT, top), "layouts that fit to print (default 20; 0: all)"},
    {"tsv", 0, NUM(CLI_FLAG, tsv), "tab-separated numbers (bytes, seconds) instead of the table"},
    {"max-micro-batch", 0, NUM(CLI_INT, max_micro_batch), "largest micro-batch tried (default 64; "
     "with --grad-accum, or --exact without -b: whatever the global batch gives)",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"exact", 0, NUM(CLI_FLAG, exact), "the options below are the layout, as llama-train reads "
     "them (defaults: tp 1, cp 1, pp 1, vpp 1, zero 0, recompute none, no sp, grad-accum 1 with the "
     "micro-batch the global batch gives, when neither -b nor --grad-accum is); without it each one given narrows the search"},
    {"tp", 0, NUM(CLI_INT, tp), "tensor-parallel size", .bounds = CLI_AT_LEAST, .min = 1},
    {"cp", 0, NUM(CLI_INT, cp), "context-parallel size (on GPU profiles planned where ring attention runs on tensor cores: bf16, head dim 64 or 128)",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"pp", 0, NUM(CLI_INT, pp), "pipeline-parallel size", .bounds = CLI_AT_LEAST, .min = 1},
    {"vpp", 0, NUM(CLI_INT, vpp), "model chunks per pipeline rank", .bounds = CLI_AT_LEAST,
     .min = 1},
    {"zero", 0, NUM(CLI_INT, zero), "ZeRO stage (0 to 3)", .bounds = CLI_BETWEEN, .min = 0,
     .max = 3},
    {"offload", 0, .kind = CLI_CHOICE, .names = offloads, .offset = offsetof(PlanOptions, offload),
     "none or optimizer (planned on GPU profiles with host_memory_gib and host_optimizer_gbs)"},
    {"sp", 0, NUM(CLI_FLAG, sp), "sequence parallel layouts only"},
    {"batch-size", 'b', NUM(CLI_INT, batch_size), "micro-batch", .bounds = CLI_AT_LEAST, .min = 1},
    {"grad-accum", 0, NUM(CLI_INT, grad_accum), "micro-batches per step", .bounds = CLI_AT_LEAST,
     .min = 1},
    {"recompute", 0, .kind = CLI_CHOICE, .names = recomputes,
     .offset = offsetof(PlanOptions, recompute), "none, selective or full"},
    {"grad-checkpoint", 'g', NUM(CLI_FLAG, grad_checkpoint), "the same as --recompute full"},
};
static const CliTable table = {specs, (int)(sizeof specs / sizeof specs[0]), "llama-plan", NULL, NULL};

static void defaults(PlanOptions *o) {
    memset(o, 0, sizeof *o);
    o->top = 20;
    o->max_micro_batch = 0;   // not given
    o->tp = o->cp = o->pp = o->vpp = o->zero = o->batch_size = o->grad_accum = o->recompute = -1;
    o->offload = -1;
}

static void usage(void) {
    printf("usage: llama-plan -c MODEL --devices N --machine FILE --global-batch-tokens N "
           "[-l SEQ] [options]\n\nPredicts memory per rank and step time of every layout "
           "llama-train accepts and ranks them\nby tokens/s (see src/train/plan.h for the "
           "model).\n\n");
    cli_print_options(&table, 26, stdout);
}

static void check_required(const PlanOptions *o) {
    if (!o->config[0]) fatal_usage("give the model: -c PRESET|FILE");
    if (!o->machine[0]) fatal_usage("give a machine profile: --machine FILE (inputs/machines/)");
    if (o->devices < 1 || o->devices > PLAN_MAX_DEVICES)
        fatal_usage("--devices N: the number of ranks, 1 to %d (got %d)", PLAN_MAX_DEVICES, o->devices);
    if (o->global_tokens < 1) fatal_usage("give --global-batch-tokens N: tokens per optimizer step");
    if (o->max_length < 0 || o->top < 0)
        fatal_usage("--max-length and --top must not be negative");
    if (o->grad_checkpoint && o->recompute >= 0 && o->recompute != RECOMPUTE_FULL)
        fatal_usage("--grad-checkpoint (-g) is --recompute full and contradicts --recompute %s: "
                    "give one of them", cli_choice_name(recomputes, o->recompute));
}

// --exact: the unset layout options take llama-train's defaults.
static void exact_defaults(PlanOptions *o) {
    int *one[] = {&o->tp, &o->cp, &o->pp, &o->vpp};
    for (int i = 0; i < 4; i++)
        if (*one[i] < 0) *one[i] = 1;
    if (o->zero < 0) o->zero = 0;
    if (o->offload < 0) o->offload = 0;
    if (o->recompute < 0) o->recompute = RECOMPUTE_NONE;
    if (o->batch_size < 0 && o->grad_accum < 0) o->grad_accum = 1;   // the global batch gives B
}

static void request_of(const PlanOptions *o, const ModelConfig *cfg, const Machine *m,
                       PlanRequest *r) {
    plan_request_defaults(r);
    r->cfg = *cfg;
    r->T = o->max_length > 0 ? o->max_length : cfg->max_seq_len;
    r->global_tokens = o->global_tokens;
    r->devices = o->devices;
    r->machine = m;
    r->tp = o->tp, r->cp = o->cp, r->pp = o->pp, r->vpp = o->vpp, r->zero = o->zero;
    r->B = o->batch_size, r->M = o->grad_accum, r->offload = o->offload;
    r->recompute = o->grad_checkpoint ? RECOMPUTE_FULL : o->recompute;
    r->sp = o->sp ? 1 : o->exact ? 0 : -1;
    r->all = o->all;
    // Not given: 64, unless --grad-accum pins the split (then the global batch decides).
    int most = o->max_micro_batch > 0 ? o->max_micro_batch : o->grad_accum > 0 ? INT_MAX : 64;
    r->max_micro_batch = most > o->batch_size ? most : o->batch_size;
}

// No layout fits: why, in one line.
static void explain_none(const PlanRequest *r, const PlanRow *rows, int n) {
    const PlanRow *least = NULL;
    for (int i = 0; i < n; i++)
        if (strncmp(rows[i].why, "refused: ", 9) != 0 && (!least || rows[i].mem < least->mem))
            least = &rows[i];
    if (!least)
        fatal("no layout of model %s on %d devices can be planned with these options: %s",
              r->cfg.name, r->devices, rows[0].why + strlen("refused: "));
    char name[128];
    plan_layout_name(&least->lay, name, sizeof name);
    fatal("no layout of model %s fits %d devices of %s: the smallest (%s) %s; add devices, "
          "shorten --max-length or lower the global batch", r->cfg.name, r->devices,
          r->machine->name, name, least->why);
}

int main(int argc, char **argv) {
    util_set_program("llama-plan");
    PlanOptions o;
    defaults(&o);
    bool help;
    char err[1024];
    if (!cli_parse(&table, &o, argc, argv, 1, NULL, &help, err, sizeof err)) fatal_usage("%s", err);
    if (help) {
        usage();
        return 0;
    }
    check_required(&o);
    if (o.exact) exact_defaults(&o);
    ModelConfig cfg;
    if (!config_load(o.config, &cfg, err, sizeof err)) fatal("%s", err);
    cfg.tie_embeddings = cfg.tie_embeddings || o.tie_embeddings;
    Machine m;
    if (!machine_read(o.machine, &m, err, sizeof err)) fatal("%s", err);
    PlanRequest r;
    request_of(&o, &cfg, &m, &r);
    int n;
    PlanRow *rows = plan_layouts(&r, &n, err, sizeof err);
    if (!rows) fatal("%s", err);
    int fit = 0;
    while (fit < n && rows[fit].fits) fit++;
    if (fit == 0) {
        if (o.all) plan_print_table(&r, rows, n, o.tsv);
        explain_none(&r, rows, n);
    }
    if (!o.tsv)
        printf("model %s, sequence %d, %lld tokens per step, %d devices of %s (%s): %d layouts "
               "fit%s\n", cfg.name, r.T, (long long)r.global_tokens, r.devices, m.name, m.path,
               fit, o.all ? "" : " (--all lists those that do not, and those llama-train refuses)");
    int shown = o.top > 0 && o.top < fit ? o.top : fit;
    plan_print_table(&r, rows, o.all ? n : shown, o.tsv);
    free(rows);
    return 0;
}
