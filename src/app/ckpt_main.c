// llama-ckpt: inspects checkpoints, converts them to and from the Hugging Face
// LLaMA layout, and compares two models tensor by tensor.
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "hdf5/ckpt_file.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "hf/safetensors.h"
#include "train/train.h"
#include "core/util.h"

static void usage(FILE *out) {
    fprintf(out, "usage:\n"
           "  llama-ckpt info CKPT_DIR                 step, layout, options, tensors; verifies checksums and\n"
           "                                           finite values (exit 1 on NaN or Inf)\n"
           "  llama-ckpt export-hf CKPT_DIR OUT_DIR [--dtype fp32|bf16] [--tp N] [--pp N]\n"
           "                                           Hugging Face folder (model.safetensors + config.json)\n"
           "  llama-ckpt import-hf HF_DIR SAVE_DIR     a step-0 checkpoint to continue with llama-train --load\n"
           "                                           (SAVE_DIR new or empty)\n"
           "  llama-ckpt compare A B [--rtol R]        largest per-tensor relative difference ‖a−b‖/‖b‖ of\n"
           "                                           two checkpoints or Hugging Face folders; exit 1 above R\n"
           "                                           or when either holds NaN or Inf\n"
           "Run under mpirun to spread the work; --tp/--pp split the model for export-hf.\n");
}

static void print_info(const char *dir) {
    CheckpointInfo ci;
    char err[2048];
    agree_or_exit(checkpoint_info(dir, &ci, err, sizeof err), err);
    const ModelConfig *c = &ci.cfg;
    info("checkpoint %s: step %lld, saved by dp %lld × tp %lld × pp %lld with ZeRO-%lld (format %d%s)",
         dir, (long long)ci.step, (long long)ci.layout[0], (long long)ci.layout[1],
         (long long)ci.layout[2], (long long)ci.layout[3], ci.format,
         ci.format == 1 ? ": step, loader position and options carry no checksum" : "");
    info("model %s: dim %d, %d layers, %d heads (%d KV), FFN %d, vocab %d, max seq %d, "
         "%.4g M parameters", c->name, c->dim, c->n_layers, c->n_heads, c->n_kv_heads,
         c->ffn_dim, c->vocab_size, c->max_seq_len, (double)config_params_total(c) / 1e6);
    info("tokenizer sha256: %s", ci.tokenizer_sha256[0] ? ci.tokenizer_sha256 : "(none)");
    ParamTable pt;
    params_build_global(&pt, c);
    for (int i = 0; i < pt.n; i++)
        info("  %-52s %6lld x %-6lld  master + 2 Adam moments, fp32", pt.t[i].name,
             (long long)pt.t[i].rows, (long long)pt.t[i].cols);
    params_free(&pt);
    if (ci.options) info("options of the run that saved it:\n%s", ci.options);
    free(ci.options);
    Comm world;
    comm_init(&world, MPI_COMM_WORLD);
    CheckpointHealth h;
    checkpoint_verify(&world, dir, &h);   // ends the job when a checksum fails
    comm_free(&world);
    info("complete: yes, every tensor matches its checksum%s",
         ci.format == 2 ? ", and the attributes their digest" : "");
    long long bad = h.nonfinite[0] + h.nonfinite[1] + h.nonfinite[2];
    if (bad > 0)
        fatal_all("%s holds %lld non-finite values (NaN or Inf): %lld master weights, %lld and %lld "
                  "Adam moments, first in %s; the run that saved it had diverged", dir, bad,
                  h.nonfinite[0], h.nonfinite[1], h.nonfinite[2], h.first);
    info("finite: yes, no NaN or Inf in the weights or Adam moments");
}

// Options of a bare trainer: the layout given, no data.
static TrainOptions bare_options(int tp, int pp) {
    TrainOptions o;
    options_defaults(&o);
    o.tp = tp;
    o.pp = pp;
    o.bench = true;
    return o;
}

static void export_hf(const char *dir, const char *out, bool bf16, int tp, int pp) {
    CheckpointInfo ci;
    char err[2048];
    agree_or_exit(checkpoint_info(dir, &ci, err, sizeof err), err);
    free(ci.options);
    if (!grid_check_layout(&ci.cfg, util_world_size(), tp, pp, 0, err, sizeof err))
        fatal_all("%s", err);
    TrainOptions o = bare_options(tp, pp);
    Trainer *t = trainer_create_bare(&o, &ci.cfg);
    checkpoint_load_weights(t, dir);
    hf_export(t->model, &t->grid, out, bf16);
    info("exported %s (step %lld) to %s", dir, (long long)ci.step, out);
    trainer_free(t);
}

static void import_hf(const char *hf_dir, const char *save_dir) {
    HfConfig hf;
    char err[2048], first[512];
    if (util_world_size() != 1) fatal_all("import-hf runs on one rank");
    if (!ckpt_dir_is_empty(save_dir, first, sizeof first))
        fatal_all("import-hf: '%s' is not an empty folder (it holds '%s'); a step-0 checkpoint "
                  "there would become its 'latest' and --load auto would restart from it: give "
                  "a new or empty folder", save_dir, first);
    agree_or_exit(hf_config_read(hf_dir, &hf, err, sizeof err), err);
    TrainOptions o = bare_options(1, 1);
    snprintf(o.init_hf, sizeof o.init_hf, "%s", hf_dir);
    snprintf(o.save_dir, sizeof o.save_dir, "%s", save_dir);
    o.seed = UINT64_MAX;   // no data position yet: any --seed may continue it
    snprintf(hf.model.name, sizeof hf.model.name, "%s", "hf-import");
    Trainer *t = trainer_create_bare(&o, &hf.model);
    checkpoint_save(t);
    checkpoint_release(t);
    trainer_free(t);
}

// ---- compare ----

// A model to compare: a checkpoint's master weights or a Hugging Face folder.
typedef struct {
    CkptFile *ckpt;
    Safetensors st;
    bool is_ckpt;
    ModelConfig cfg;
} Source;

static void open_source(const char *path, Source *s) {
    char err[2048], probe[4300];
    memset(s, 0, sizeof *s);
    ckpt_dir_file(path, probe, sizeof probe);
    CheckpointInfo ci;
    s->is_ckpt = checkpoint_info(path, &ci, err, sizeof err);
    if (s->is_ckpt) {
        s->cfg = ci.cfg;
        free(ci.options);
        s->ckpt = ckpt_file_open(probe, err, sizeof err);
        if (!s->ckpt) fatal("%s", err);
        return;
    }
    FILE *probe_file = fopen(probe, "rb");
    if (probe_file) {   // a checkpoint that does not verify
        fclose(probe_file);
        fatal("%s", err);
    }
    HfConfig hf;
    if (!hf_config_read(path, &hf, err, sizeof err) || !safetensors_open(path, &s->st, err, sizeof err))
        fatal("%s is neither a checkpoint nor a Hugging Face folder: %s", path, err);
    s->cfg = hf.model;
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

static int compare(const char *pa, const char *pb, double rtol) {
    Source a, b;
    open_source(pa, &a);
    open_source(pb, &b);
    if (a.cfg.dim != b.cfg.dim || a.cfg.n_layers != b.cfg.n_layers ||
        a.cfg.vocab_size != b.cfg.vocab_size || a.cfg.ffn_dim != b.cfg.ffn_dim)
        fatal("%s and %s hold models of different shapes", pa, pb);
    ParamTable pt;
    params_build_global(&pt, &a.cfg);
    Difference worst = {0, 0, {0, 0}};
    const char *worst_name = pt.t[0].name, *first_bad[2] = {NULL, NULL};
    int bad_tensors[2] = {0, 0};
    for (int i = 0; i < pt.n; i++) {
        Difference d = compare_tensor(&a, &b, &pt.t[i]);
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
    close_source(&a);
    close_source(&b);
    return worst.frobenius <= rtol && worst.nonfinite[0] + worst.nonfinite[1] == 0 ? 0 : 1;
}

// ---- main ----

static const char *flag_value(int argc, char **argv, const char *flag, const char *fallback) {
    for (int i = 0; i < argc - 1; i++)
        if (strcmp(argv[i], flag) == 0) return argv[i + 1];
    return fallback;
}

static int flag_int(int argc, char **argv, const char *flag, int fallback) {
    const char *v = flag_value(argc, argv, flag, NULL);
    int out;
    if (!v) return fallback;
    if (!parse_int(v, &out) || out < 1) fatal_all("%s: expected a positive integer, got '%s'", flag, v);
    return out;
}

// The commands: positional arguments after the command, and the flags (each
// with a value) it takes.
typedef struct {
    const char *name;
    int n_args;
    const char *flags[3];
} Command;

static const Command commands[] = {
    {"info", 1, {NULL}},
    {"export-hf", 2, {"--dtype", "--tp", "--pp"}},
    {"import-hf", 2, {NULL}},
    {"compare", 2, {"--rtol"}},
};

static bool takes_flag(const Command *c, const char *flag) {
    for (int i = 0; i < 3 && c->flags[i]; i++)
        if (strcmp(c->flags[i], flag) == 0) return true;
    return false;
}

// Why argv does not form a command ("" when it does); *cmd: the command,
// path[]: its positional arguments (the flags may come anywhere).
static void check_command(int argc, char **argv, const Command **cmd, const char *path[2],
                          char *why, int len) {
    *cmd = NULL;
    why[0] = 0;
    for (size_t i = 0; argc >= 2 && i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(argv[1], commands[i].name) == 0) *cmd = &commands[i];
    if (argc < 2) snprintf(why, len, "no command given");
    else if (!*cmd) snprintf(why, len, "unknown command '%s'", argv[1]);
    if (!*cmd) return;
    int positional = 0;
    for (int i = 2; i < argc && !why[0]; i++) {
        if (strncmp(argv[i], "--", 2) != 0) {
            if (positional < 2) path[positional] = argv[i];
            positional++;
        } else if (!takes_flag(*cmd, argv[i]))
            snprintf(why, len, "%s does not take the option '%s'", argv[1], argv[i]);
        else if (++i >= argc)
            snprintf(why, len, "option '%s' needs a value", argv[i - 1]);
    }
    if (!why[0] && positional != (*cmd)->n_args)
        snprintf(why, len, "%s takes %d path%s, got %d", argv[1], (*cmd)->n_args,
                 (*cmd)->n_args > 1 ? "s" : "", positional);
}

// Bad usage: the reason and the usage on stderr, exit status 2.
static int usage_error(const char *why) {
    if (util_world_rank() == 0) {
        fprintf(stderr, "llama-ckpt: error: %s\n", why);
        usage(stderr);
    }
    MPI_Finalize();
    return 2;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    util_set_program("llama-ckpt");
    if (argc >= 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help"))) {
        if (util_world_rank() == 0) usage(stdout);
        MPI_Finalize();
        return 0;
    }
    const Command *c;
    const char *path[2] = {NULL, NULL};
    char why[512];
    check_command(argc, argv, &c, path, why, sizeof why);
    if (why[0]) return usage_error(why);
    const char *cmd = c->name;
    int rc = 0;
    if (!strcmp(cmd, "info")) print_info(path[0]);
    else if (!strcmp(cmd, "export-hf")) {
        const char *dtype = flag_value(argc, argv, "--dtype", "fp32");
        if (strcmp(dtype, "fp32") && strcmp(dtype, "bf16")) fatal_all("--dtype must be fp32 or bf16");
        export_hf(path[0], path[1], !strcmp(dtype, "bf16"), flag_int(argc, argv, "--tp", 1),
                  flag_int(argc, argv, "--pp", 1));
    } else if (!strcmp(cmd, "import-hf")) import_hf(path[0], path[1]);
    else {
        double rtol = 1e-5;
        const char *r = flag_value(argc, argv, "--rtol", NULL);
        if (r && !parse_double(r, &rtol)) fatal_all("--rtol: expected a number, got '%s'", r);
        rc = util_world_rank() == 0 ? compare(path[0], path[1], rtol) : 0;
    }
    MPI_Finalize();
    return rc;
}
