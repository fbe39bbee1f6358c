// llama-ckpt: inspects checkpoints, converts them to and from the Hugging Face
// LLaMA layout, and compares two models tensor by tensor.
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "core/cli.h"
#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "hdf5/ckpt_file.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "hf/safetensors.h"
#include "fs/dirs.h"
#include "train/loader.h"
#include "model/model.h"
#include "parallel/pipeline.h"
#include "train/options.h"
#include "parallel/agreement.h"
#include "core/util.h"

// ---- the commands and their options ----

typedef struct {
    Precision dtype;   // export-hf --dtype
    int tp, pp;        // export-hf --tp, --pp
    char pp_layers[256];    // export-hf --pp-layers ("": pp equal stages)
    char tokenizer[1024];   // export-hf --tokenizer
    double rtol;       // compare --rtol
} CkptOptions;

static const CliName dtypes[] = {{"fp32", PRECISION_FP32}, {"bf16", PRECISION_BF16}, {NULL, 0}};
#define NUM(k, f) .kind = k, .offset = offsetof(CkptOptions, f)

static const CliOption export_options[] = {
    {"dtype", 0, .kind = CLI_CHOICE, .names = dtypes, .offset = offsetof(CkptOptions, dtype),
     "export-hf: the type of the weights in model.safetensors (default fp32)"},
    {"tp", 0, NUM(CLI_INT, tp), "export-hf: tensor-parallel ranks that share the model (default 1)",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"pp", 0, NUM(CLI_INT, pp), "export-hf: pipeline stages that share the model (default 1)",
     .bounds = CLI_AT_LEAST, .min = 1},
    {"pp-layers", 0, .kind = CLI_STRING, .size = sizeof(((CkptOptions *)0)->pp_layers),
     .offset = offsetof(CkptOptions, pp_layers),
     "export-hf: layers per pipeline stage, comma-separated (default: --pp equal stages)",
     .arg = "N,N,..."},
    {"tokenizer", 0, .kind = CLI_STRING, .size = sizeof(((CkptOptions *)0)->tokenizer),
     .offset = offsetof(CkptOptions, tokenizer),
     "export-hf: copy this tokenizer (tokenizer.json or tokenizer.model) into OUT_DIR and "
     "write its special token ids (else bos/eos are null)", .arg = "FILE"},
};
static const CliOption compare_options[] = {
    {"rtol", 0, NUM(CLI_DOUBLE, rtol), "compare: the largest ‖a−b‖/‖b‖ accepted (default 1e-5)",
     .arg = "R", .bounds = CLI_AT_LEAST, .min = 0},
};

// A command: its positional arguments (names for the usage, and how many),
// its options, and what it does (lines of the usage's right column).
typedef struct {
    const char *name, *paths;
    int n_paths;
    CliTable options;
    const char *what;
} Command;

static const Command commands[] = {
    {"info", "CKPT_DIR", 1, {NULL, 0, NULL, "info", NULL},
     "step, layout, options, tensors; verifies checksums and\n"
     "finite values (exit 1 on NaN or Inf)"},
    {"export-hf", "CKPT_DIR OUT_DIR", 2, {export_options, 5, NULL, "export-hf", NULL},
     "Hugging Face folder (model.safetensors + config.json)"},
    {"import-hf", "HF_DIR SAVE_DIR", 2, {NULL, 0, NULL, "import-hf", NULL},
     "a step-0 checkpoint to continue with llama-train --load\n(SAVE_DIR new or empty)"},
    {"compare", "A B", 2, {compare_options, 1, NULL, "compare", NULL},
     "largest per-tensor relative difference ‖a−b‖/‖b‖ of\n"
     "two checkpoints or Hugging Face folders; exit 1 above R\n"
     "or when either holds NaN or Inf"},
};
#define N_COMMANDS (int)(sizeof commands / sizeof commands[0])

// "  llama-ckpt NAME PATHS [options]" and the description beside it (below
// it when the left side is wider than its column).
static void usage_command(const Command *c, FILE *out) {
    char left[256], synopsis[200];
    cli_synopsis(&c->options, synopsis, sizeof synopsis);
    snprintf(left, sizeof left, "llama-ckpt %s %s%s%s", c->name, c->paths, synopsis[0] ? " " : "",
             synopsis);
    if (strlen(left) > 40) fprintf(out, "  %s\n%43s", left, "");
    else fprintf(out, "  %-40s ", left);
    for (const char *line = c->what; *line;) {
        size_t n = strcspn(line, "\n");
        fprintf(out, "%*s%.*s\n", line == c->what ? 0 : 43, "", (int)n, line);
        line += n + (line[n] == '\n');
    }
}

static void usage(FILE *out) {
    fprintf(out, "usage:\n");
    for (int i = 0; i < N_COMMANDS; i++) usage_command(&commands[i], out);
    fprintf(out, "options:\n");
    for (int i = 0; i < N_COMMANDS; i++) cli_print_options(&commands[i].options, 18, out);
    fprintf(out, "Run under mpirun to spread the work; --tp/--pp split the model for export-hf.\n");
}

// dir's checkpoint_info, or every rank ends with why it is none (a .tmp
// folder's failure says what the folder is).
static void info_or_exit(const char *dir, CheckpointInfo *ci) {
    char err[2048], msg[2600];
    bool ok = checkpoint_info(dir, ci, err, sizeof err);
    snprintf(msg, sizeof msg, "%s%s", err, !ok && ckpt_dir_is_unfinished(dir)
             ? "; it is the folder of a save that did not finish (killed while saving): give "
               "a step_N folder" : "");
    agree_or_exit(ok, msg);
}

static void print_info(const char *dir) {
    CheckpointInfo ci;
    char err[2048];
    info_or_exit(dir, &ci);
    const ModelConfig *c = &ci.cfg;
    const char *saved = ci.options ? ci.options : "";   // cp, vpp and sp: the saved options'
    int64_t cp = options_saved_int(saved, "cp", 1), vpp = options_saved_int(saved, "vpp", 1);
    char cps[32] = "", vpps[48] = "";
    if (cp > 1) snprintf(cps, sizeof cps, " × cp %lld", (long long)cp);
    if (vpp > 1) snprintf(vpps, sizeof vpps, " (%lld chunks each)", (long long)vpp);
    info("checkpoint %s: step %lld, saved by dp %lld × tp %lld%s%s × pp %lld%s with ZeRO-%lld "
         "(format %d%s)", dir, (long long)ci.step, (long long)ci.layout[0],
         (long long)ci.layout[1], options_saved_flag(saved, "sp") ? " (sequence parallel)" : "",
         cps, (long long)ci.layout[2], vpps, (long long)ci.layout[3], ci.format,
         ci.format == 1 ? ": step, loader position and options carry no checksum" : "");
    info("model %s: dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d, max seq %d, "
         "%.4g M parameters%s", c->name, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
         c->ffn_dim, c->vocab_size, c->max_seq_len, (double)config_params_total(c) / 1e6,
         c->tie_embeddings ? ", LM head tied to the embedding" : "");
    char scaling[256];
    config_rope_scaling_describe(&c->rope_scaling, scaling, sizeof scaling);
    info("RoPE theta %g, scaling %s; norm eps %g", c->rope_theta, scaling, c->norm_eps);
    info("tokenizer sha256: %s", ci.tokenizer_sha256[0] ? ci.tokenizer_sha256 : "(none)");
    LoaderState st = {0};   // what --load checks of the position, without a dataset
    bool ok = loader_state_restore(NULL, ci.pos.loader, ci.pos.loader_len, ci.pos.loader_data,
                                   &st, err, sizeof err);
    loader_state_free(&st);
    char why[2200];
    snprintf(why, sizeof why, "checkpoint %s: %s: --load refuses it", dir, err);
    agree_or_exit(ok, why);
    char data[4096];
    loader_state_describe(ci.pos.loader, ci.pos.loader_len, ci.pos.loader_data, data,
                          sizeof data);
    info("data position: %s", data);
    ParamTable pt;
    params_build_global(&pt, c);
    for (int i = 0; i < pt.n; i++)
        info("  %-52s %6lld x %-6lld  master + 2 Adam moments, fp32", pt.t[i].name,
             (long long)pt.t[i].rows, (long long)pt.t[i].cols);
    params_free(&pt);
    if (ci.options) info("options of the run that saved it:\n%s", ci.options);
    checkpoint_info_free(&ci);
    Comm world;
    comm_world(&world);
    CheckpointHealth h;
    checkpoint_verify(&world, dir, &h);   // ends the job when a checksum fails
    comm_free(&world);
    info("complete: yes, every tensor matches its checksum%s",
         ci.format >= 2 ? ", and the attributes their digest" : "");
    if (ckpt_dir_is_unfinished(dir))
        info("note: %s is the folder of a save that did not finish (never renamed to its step_N "
             "name): --load refuses it, and the next save removes it", dir);
    long long bad = h.nonfinite[0] + h.nonfinite[1] + h.nonfinite[2];
    if (bad > 0)
        fatal_all("%s holds %lld non-finite values (NaN or Inf): %lld master weights, %lld and %lld "
                  "Adam moments, first in %s; the run that saved it had diverged", dir, bad,
                  h.nonfinite[0], h.nonfinite[1], h.nonfinite[2], h.first);
    info("finite: yes, no NaN or Inf in the weights or Adam moments");
}

// ---- export and import: a model alone, no optimizer ----

// A model to convert: the grid of tp × pp ranks (data-parallel over the rest)
// and this rank's part of the model, micro-batch 1, sequence 1, zero weights.
typedef struct {
    Grid grid;
    Model *model;
} Bare;

static void bare_create(Bare *b, const ModelConfig *cfg, int tp, int pp, const char *pp_layers) {
    char err[2048];
    if (!grid_check_layout(cfg, util_world_size(), tp, 1, pp, 0, err, sizeof err)) fatal_usage("%s", err);
    grid_create(&b->grid, tp, 1, pp, false);   // no optimizer: no gradient to sum
    const Grid *g = &b->grid;
    ModelPart part;
    agree_on_usage(pipeline_part(pp_layers, cfg, tp, g->tp_rank, g->dp, pp, 1, g->pp_rank, &part, err,
                                sizeof err), err);
    b->model = model_create(&ops_cpu, cfg, &part, &g->tp_comm, NULL, 1, 1, 1, RECOMPUTE_NONE, MODEL_HOLDS_ALL);
}

static void bare_free(Bare *b) {
    model_free(b->model);
    grid_free(&b->grid);
}

// The checkpoint parts of b's model: its weights, no optimizer.
static CheckpointParts bare_parts(const Bare *b) {
    Model *m = b->model;
    return (CheckpointParts){.ops = m->ops, .cfg = &m->cfg, .table = &m->table, .weights = m->params,
                             .seed = UINT64_MAX};
}

static void export_hf(const char *dir, const char *out, const CkptOptions *o) {
    CheckpointInfo ci;
    char err[2048];
    agree_or_exit(util_world_rank() != 0 || hf_export_dir_check(out, err, sizeof err), err);
    info_or_exit(dir, &ci);
    checkpoint_info_free(&ci);
    Bare b;
    bare_create(&b, &ci.cfg, o->tp, o->pp, o->pp_layers);
    CheckpointRun r = {.grid = &b.grid};
    CheckpointParts p = bare_parts(&b);
    checkpoint_load_weights(&r, &p, dir);
    hf_export(b.model, &b.grid, out,
              &(HfExportOptions){.bf16 = o->dtype == PRECISION_BF16, .tokenizer = o->tokenizer});
    info("exported %s (step %lld) to %s", dir, (long long)ci.step, out);
    bare_free(&b);
}

// The options an import records: the defaults, its source and folder, no seed.
static char *import_options(const char *hf_dir, const char *save_dir) {
    TrainOptions o;
    options_defaults(&o);
    snprintf(o.init_hf, sizeof o.init_hf, "%s", hf_dir);
    snprintf(o.save_dir, sizeof o.save_dir, "%s", save_dir);
    o.seed = UINT64_MAX;   // no data position yet: any --seed may continue it
    return options_format(&o);
}

static void import_hf(const char *hf_dir, const char *save_dir) {
    HfConfig hf;
    char err[2048], first[512];
    if (util_world_size() != 1) fatal_usage("import-hf runs on one rank");
    if (!ckpt_dir_is_empty(save_dir, first, sizeof first))
        fatal_all("import-hf: '%s' is not an empty folder (it holds '%s'); a step-0 checkpoint "
                  "there would become its 'latest' and --load auto would restart from it: give "
                  "a new or empty folder", save_dir, first);
    char note[512];   // the folder made and locked before the model is read, not after
    agree_or_exit(ckpt_dir_lock(save_dir, note, sizeof note, err, sizeof err), err);
    if (note[0]) info("%s", note);
    agree_or_exit(hf_config_read(hf_dir, &hf, err, sizeof err), err);
    snprintf(hf.model.name, sizeof hf.model.name, "%s", "hf-import");
    Bare b;
    bare_create(&b, &hf.model, 1, 1, NULL);
    agree_or_exit(hf_import(b.model, hf_dir, err, sizeof err), err);
    info("initialised from Hugging Face weights in %s", hf_dir);
    CheckpointRun r = {.grid = &b.grid, .save_dir = save_dir, .writes_dir = true};
    CheckpointParts p = bare_parts(&b);
    LoaderState start = {0};   // the data's beginning
    p.pos.loader_len = loader_state_encode(&start, &p.pos.loader);
    char *options = import_options(hf_dir, save_dir);
    p.options = options;
    checkpoint_save(&r, &p);
    checkpoint_release(&r);
    free(options);
    checkpoint_position_free(&p.pos);
    bare_free(&b);
}

// ---- compare ----

// A model to compare: a checkpoint's master weights or a Hugging Face folder.
typedef struct {
    CkptFile *ckpt;
    Safetensors st;
    bool is_ckpt;
    ModelConfig cfg;
} Source;

// What path is, as this rank sees it: a checkpoint (its model read), a
// Hugging Face folder (opened), or neither (false, the reason in err).
static bool identify_source(const char *path, Source *s, char *err, int len) {
    char probe[4300];
    memset(s, 0, sizeof *s);
    ckpt_dir_file(path, probe, sizeof probe);
    CheckpointInfo ci;
    s->is_ckpt = checkpoint_info(path, &ci, err, len);
    if (s->is_ckpt) {
        s->cfg = ci.cfg;
        checkpoint_info_free(&ci);
        return true;
    }
    if (access(probe, F_OK) == 0) return false;   // a checkpoint that does not read
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISDIR(st.st_mode)) {
        snprintf(err, len, "%s is a file: give the folder that holds it (a checkpoint's step_N "
                 "folder, or a Hugging Face folder)", path);
        return false;
    }
    HfConfig hf;
    char why[2048] = "";
    if (!hf_config_read(path, &hf, why, sizeof why) ||
        !safetensors_open(path, &s->st, why, sizeof why)) {
        snprintf(err, len, "%s is neither a checkpoint nor a Hugging Face folder: %s", path, why);
        return false;
    }
    s->cfg = hf.model;
    return hf_tensors_all_used(&s->st, &s->cfg, path, err, len);
}

// Every rank identifies path alike (else all end with the first failing
// rank's reason); a checkpoint's tensors are then verified against their
// checksums by all ranks together, as --load does.
static void open_source(const char *path, Source *s) {
    char err[2048] = "", probe[4300];
    agree_or_exit(identify_source(path, s, err, sizeof err), err);
    Comm world;
    comm_world(&world);
    if (!agree_same_u64(&world, s->is_ckpt))
        fatal_all("%s is a checkpoint on some ranks and a Hugging Face folder on others: run "
                  "where every rank sees the same files", path);
    if (s->is_ckpt) {
        CheckpointHealth h;
        checkpoint_verify(&world, path, &h);
        ckpt_dir_file(path, probe, sizeof probe);
        s->ckpt = ckpt_file_open(probe, err, sizeof err);
        agree_or_exit(s->ckpt != NULL, err);
    }
    comm_free(&world);
}

static bool read_full(Source *s, const ParamTensor *t, float *out, char *err, int len) {
    if (s->is_ckpt) {
        Slab slab = {0, t->rows, 0, t->cols};
        return ckpt_file_read(s->ckpt, "master", t->name, t->rows, t->cols, &slab, 1, out, err, len);
    }
    int64_t shape[2] = {t->rows, t->cols};
    return safetensors_read(&s->st, t->name, t->ndim, shape, out, err, len);
}

static void close_source(Source *s) {
    if (s->is_ckpt) ckpt_file_close(s->ckpt);
    else safetensors_close(&s->st);
}

// Relative difference of two tensors: ‖a − b‖ / ‖b‖ (Frobenius), the
// tolerance measure; also the largest elementwise |a − b| over max |b|, and
// the non-finite values of each (which no difference can be taken of).
typedef struct {
    double frobenius, elementwise;
    long long nonfinite[2];
} Difference;

static Difference compare_tensor(Source *a, Source *b, const ParamTensor *t) {
    size_t n = (size_t)(t->rows * t->cols);
    float *x = xmalloc(n * sizeof(float)), *y = xmalloc(n * sizeof(float));
    char err[2048];
    if (!read_full(a, t, x, err, sizeof err) || !read_full(b, t, y, err, sizeof err)) fatal("%s", err);
    double diff2 = 0, norm2 = 0, diff = 0, scale = 0;
    Difference out = {0, 0, {0, 0}};
    for (size_t i = 0; i < n; i++) {
        bool fx = isfinite(x[i]), fy = isfinite(y[i]);
        out.nonfinite[0] += !fx;
        out.nonfinite[1] += !fy;
        if (!fx || !fy) continue;
        double d = (double)x[i] - y[i];
        diff2 += d * d;
        norm2 += (double)y[i] * y[i];
        diff = fmax(diff, fabs(d));
        scale = fmax(scale, fabs((double)y[i]));
    }
    free(x);
    free(y);
    out.frobenius = norm2 > 0 ? sqrt(diff2 / norm2) : sqrt(diff2);
    out.elementwise = scale > 0 ? diff / scale : diff;
    return out;
}

// Equal weights under other RoPE compute other logits: not the same model.
static void rope_check(const char *pa, const ModelConfig *a, const char *pb, const ModelConfig *b) {
    if (a->rope_theta == b->rope_theta &&
        config_rope_scaling_equal(&a->rope_scaling, &b->rope_scaling))
        return;
    char sa[256], sb[256];
    config_rope_scaling_describe(&a->rope_scaling, sa, sizeof sa);
    config_rope_scaling_describe(&b->rope_scaling, sb, sizeof sb);
    fatal("%s has RoPE theta %g, scaling %s and %s theta %g, scaling %s: not the same model", pa,
          a->rope_theta, sa, pb, b->rope_theta, sb);
}

// Rank 0: the comparison of two open models, printed; 0 when they are equal.
static int compare_sources(const char *pa, Source *a, const char *pb, Source *b, double rtol) {
    if (a->cfg.dim != b->cfg.dim || a->cfg.n_layers != b->cfg.n_layers ||
        a->cfg.vocab_size != b->cfg.vocab_size || a->cfg.ffn_dim != b->cfg.ffn_dim)
        fatal("%s and %s hold models of different shapes", pa, pb);
    // The same tensors split into other heads, or normalised with another
    // epsilon, compute something else.
    if (a->cfg.n_heads != b->cfg.n_heads || a->cfg.n_kv_heads != b->cfg.n_kv_heads)
        fatal("%s has %d attention heads (%d key/value) and %s %d (%d): not the same model", pa,
              a->cfg.n_heads, a->cfg.n_kv_heads, pb, b->cfg.n_heads, b->cfg.n_kv_heads);
    if (a->cfg.norm_eps != b->cfg.norm_eps)
        fatal("%s has norm eps %g and %s %g: not the same model", pa, a->cfg.norm_eps, pb,
              b->cfg.norm_eps);
    if (a->cfg.tie_embeddings != b->cfg.tie_embeddings)
        fatal("%s %s its LM head to the embedding and %s %s: not the same model", pa,
              a->cfg.tie_embeddings ? "ties" : "does not tie", pb,
              b->cfg.tie_embeddings ? "does" : "does not");
    rope_check(pa, &a->cfg, pb, &b->cfg);
    ParamTable pt;
    params_build_global(&pt, &a->cfg);
    Difference worst = {0, 0, {0, 0}};
    const char *worst_name = pt.t[0].name, *first_bad[2] = {NULL, NULL};
    int bad_tensors[2] = {0, 0};
    for (int i = 0; i < pt.n; i++) {
        Difference d = compare_tensor(a, b, &pt.t[i]);
        if (d.frobenius > worst.frobenius) worst.frobenius = d.frobenius, worst_name = pt.t[i].name;
        worst.elementwise = fmax(worst.elementwise, d.elementwise);
        for (int s = 0; s < 2; s++) {
            worst.nonfinite[s] += d.nonfinite[s];
            bad_tensors[s] += d.nonfinite[s] > 0;
            if (d.nonfinite[s] && !first_bad[s]) first_bad[s] = pt.t[i].name;
        }
    }
    printf("largest relative difference ‖a−b‖/‖b‖ %.3g in %s (largest elementwise %.3g of max|b|; "
           "%d tensors, tolerance %g%s)\n", worst.frobenius, worst_name, worst.elementwise, pt.n,
           rtol, worst.nonfinite[0] + worst.nonfinite[1] ? "; over the finite values only" : "");
    const char *paths[2] = {pa, pb};
    for (int s = 0; s < 2; s++)
        if (worst.nonfinite[s])
            printf("%s holds %lld non-finite values (NaN or Inf) in %d of %d tensors, first in %s: "
                   "not comparable\n", paths[s], worst.nonfinite[s], bad_tensors[s], pt.n, first_bad[s]);
    params_free(&pt);
    return worst.frobenius <= rtol && worst.nonfinite[0] + worst.nonfinite[1] == 0 ? 0 : 1;
}

// Every rank opens both (a checkpoint's checksums are verified by all ranks
// together), rank 0 compares.
static int compare(const char *pa, const char *pb, double rtol) {
    Source a, b;
    open_source(pa, &a);
    open_source(pb, &b);
    int rc = util_world_rank() == 0 ? compare_sources(pa, &a, pb, &b, rtol) : 0;
    close_source(&a);
    close_source(&b);
    return rc;
}

// ---- main ----

// The command argv names, its options set in o and its paths; NULL with
// the reason in why (or with *help set).
static const Command *parse_command(int argc, char **argv, CkptOptions *o, CliList *paths,
                                    bool *help, char *why, int len) {
    *help = argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"));
    const Command *c = NULL;
    for (int i = 0; argc >= 2 && i < N_COMMANDS; i++)
        if (strcmp(argv[1], commands[i].name) == 0) c = &commands[i];
    if (argc < 2) snprintf(why, len, "no command given");
    else if (!c && !*help) snprintf(why, len, "unknown command '%s'", argv[1]);
    if (!c || !cli_parse(&c->options, o, argc, argv, 2, paths, help, why, len) || *help)
        return NULL;
    if (paths->n == c->n_paths) return c;
    snprintf(why, len, "%s takes %d path%s, got %d", c->name, c->n_paths,
             c->n_paths > 1 ? "s" : "", paths->n);
    return NULL;
}

// Bad usage: the reason and the usage on stderr, exit status 2.
static int usage_error(const char *why) {
    if (util_world_rank() == 0) {
        fprintf(stderr, "llama-ckpt: error: %s\n", why);
        usage(stderr);
    }
    comm_world_end();
    return EXIT_USAGE;
}

static int run_command(const Command *c, const CkptOptions *o, char **path) {
    if (!strcmp(c->name, "info")) print_info(path[0]);
    else if (!strcmp(c->name, "export-hf"))
        export_hf(path[0], path[1], o);
    else if (!strcmp(c->name, "import-hf")) import_hf(path[0], path[1]);
    else return compare(path[0], path[1], o->rtol);
    return 0;
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    util_set_program("llama-ckpt");
    CkptOptions o = {.dtype = PRECISION_FP32, .tp = 1, .pp = 1, .rtol = 1e-5};
    CliList paths = {0};
    bool help;
    char why[1024];
    const Command *c = parse_command(argc, argv, &o, &paths, &help, why, sizeof why);
    agree_on_choice(help, "--help");
    agree_on_choice(!help && !c, "a bad command line");   // a usage error on some ranks only
    if (help) {
        if (util_world_rank() == 0) usage(stdout);
        comm_world_end();
        return 0;
    }
    if (!c) return usage_error(why);
    int rc = run_command(c, &o, paths.items);
    cli_list_free(&paths);
    comm_world_end();
    return rc;
}
