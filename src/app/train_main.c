// llama-train: pretrains a LLaMA-family model; every rank runs it (SPMD).
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "backend/ops.h"
#include "train/options.h"
#include "tokenizer/tokenizer.h"
#include "train/train.h"
#include "core/signals.h"
#include "core/file_kind.h"
#include "core/util.h"
#include "train/model_file.h"

// The model: -c, else the --init-hf folder's config.json, else the tiny
// preset; --tie-embeddings ties its head (an untied --init-hf folder then
// fails the import's check, which names both).
static bool model_config(TrainOptions *o, ModelConfig *cfg, char *err, int len) {
    if (!o->config[0] && o->init_hf[0]) {
        HfConfig hf;
        if (!hf_config_read(o->init_hf, &hf, err, len)) return false;
        *cfg = hf.model;
        snprintf(cfg->name, sizeof cfg->name, "%.63s", o->init_hf);
    } else {
        if (!o->config[0]) strcpy(o->config, "tiny");
        if (!config_load(o->config, cfg, err, len)) return false;
    }
    cfg->tie_embeddings = cfg->tie_embeddings || o->tie_embeddings;
    return true;
}

// ---- before anything is allocated: the paths the run writes, the sample's tokenizer ----

// path's parent in place ("a/b/" -> "a", "a" -> ".", "/a" -> "/").
static void parent_of(char *path) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') path[--n] = 0;
    char *slash = strrchr(path, '/');
    if (!slash) strcpy(path, ".");
    else if (slash == path) path[1] = 0;
    else *slash = 0;
}

// A folder the run creates (mkdir -p) and writes in: a writable folder, or
// one its nearest existing ancestor is.  what: the option that names it.
static bool folder_usable(const char *what, const char *dir, char *err, int len) {
    char at[4096];
    struct stat st;
    snprintf(at, sizeof at, "%s", dir);
    while (stat(at, &st) != 0) {
        bool top = !strcmp(at, ".") || !strcmp(at, "/");
        if ((errno != ENOENT && errno != ENOTDIR) || top) {
            snprintf(err, len, "%s %s: cannot look at '%s': %s", what, dir, at, strerror(errno));
            return false;
        }
        parent_of(at);
    }
    if (!S_ISDIR(st.st_mode))
        snprintf(err, len, "%s %s cannot be a folder: '%s' is a file; give another path", what,
                 dir, at);
    else if (access(at, W_OK | X_OK) != 0)
        snprintf(err, len, "%s %s: cannot write in '%s' (%s); give a folder you can write to",
                 what, dir, at, strerror(errno));
    else return true;
    return false;
}

// A file the run appends to: writable if it exists, else its folder exists
// and is writable (the folder is not created).
static bool file_usable(const char *what, const char *path, char *err, int len) {
    struct stat st;
    if (stat(path, &st) == 0) {
        if (S_ISDIR(st.st_mode))
            snprintf(err, len, "%s %s is a folder; give a file name", what, path);
        else if (access(path, W_OK) != 0)
            snprintf(err, len, "%s %s: cannot write it (%s)", what, path, strerror(errno));
        else return true;
        return false;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    parent_of(dir);
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        snprintf(err, len, "%s %s: the folder '%s' does not exist; create it or give another "
                 "path", what, path, dir);
    else if (access(dir, W_OK | X_OK) != 0)
        snprintf(err, len, "%s %s: cannot write in '%s' (%s)", what, path, dir, strerror(errno));
    else return true;
    return false;
}

// A check of io that does not name the option: its message gets it in front.
static bool named(const char *what, bool ok, char *err, int len) {
    if (ok) return true;
    char why[4096];
    snprintf(why, sizeof why, "%s", err);
    snprintf(err, len, "%s: %s", what, why);
    return false;
}

// Whether out is a file in folder dir (or dir itself).
static bool in_folder(const char *out, const char *dir) {
    if (file_kind_same(out, dir)) return true;
    DIR *d = dir[0] ? opendir(dir) : NULL;
    bool found = false;
    for (struct dirent *e; d && !found && (e = readdir(d));) {
        char path[8192];
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        found = e->d_name[0] != '.' && file_kind_same(out, path);
    }
    if (d) closedir(d);
    return found;
}

// An existing file the run appends to (--log, --dump-batches) is none of its
// inputs: appending would destroy the run deck, model file, tokenizer, an
// --init-hf file or a shard.
static bool output_not_input(const char *what, const char *out, const TrainOptions *o,
                             const char *deck, char *err, int len) {
    const char *inputs[] = {deck ? deck : "", o->config, o->tokenizer, o->init_hf, o->dataset};
    const char *names[] = {"the run deck", "the model file (-c)", "--tokenizer",
                           "a file of --init-hf", "a file of --dataset"};
    for (int i = 0; i < 5; i++)
        if (i < 3 ? file_kind_same(out, inputs[i]) : in_folder(out, inputs[i])) {
            snprintf(err, len, "%s %s is %s (%s): the run appends to it, which would destroy "
                     "it; give another file", what, out, names[i], inputs[i]);
            return false;
        }
    return true;
}

// path made absolute (cwd in front), "." components and repeated or trailing
// slashes removed: a lexical form (links are not followed) for comparisons.
static void lexical_path(const char *path, char *out, size_t len) {
    char cwd[4096] = "", raw[8400];
    if (path[0] != '/' && !getcwd(cwd, sizeof cwd)) cwd[0] = 0;
    snprintf(raw, sizeof raw, "%s/%s", cwd, path);
    size_t at = 0;
    for (char *save, *c = strtok_r(raw, "/", &save); c && at + 1 < len; c = strtok_r(NULL, "/", &save))
        if (strcmp(c, ".") != 0) at += (size_t)snprintf(out + at, len - at, "/%s", c);
    if (at == 0) snprintf(out, len, "/");
}

// Whether path is dir or lies inside it (lexically).
static bool path_within(const char *path, const char *dir) {
    char p[8400], d[8400];
    lexical_path(path, p, sizeof p);
    lexical_path(dir, d, sizeof d);
    size_t n = strlen(d);
    return strncmp(p, d, n) == 0 && (p[n] == 0 || p[n] == '/' || n == 1);
}

// --export-hf's folder holds the export alone: the checkpoints, the log or
// the dump inside it would fail the export after the whole run (an export
// inside the checkpoint folder is fine: its rules see only step_N names).
static bool export_apart(const TrainOptions *o, char *err, int len) {
    const char *x = o->export_hf, *what = NULL;
    if (!x[0]) return true;
    if (o->save_dir[0] && !o->eval_only && path_within(o->save_dir, x)) what = "--save-dir";
    else if (o->log[0] && path_within(o->log, x)) what = "--log";
    else if (o->dump_batches[0] && path_within(o->dump_batches, x)) what = "--dump-batches";
    if (!what) return true;
    snprintf(err, len, "--export-hf %s and %s share a folder: an export's folder holds the export "
             "alone (it would be refused after training); give separate folders", x, what);
    return false;
}

// --log and --dump-batches are not one file, nor an input.
static bool outputs_apart(const TrainOptions *o, const char *deck, char *err, int len) {
    bool dump = o->dump_batches[0] && !o->eval_only;
    if (dump && o->log[0] && (!strcmp(o->log, o->dump_batches) || file_kind_same(o->log, o->dump_batches))) {
        snprintf(err, len, "--log and --dump-batches are one file (%s): give two", o->log);
        return false;
    }
    return (!o->log[0] || output_not_input("--log", o->log, o, deck, err, len)) &&
           (!dump || output_not_input("--dump-batches", o->dump_batches, o, deck, err, len));
}

// Every path the run writes: a typo ends the job now, not after training.
static bool check_outputs(const TrainOptions *o, const char *deck, char *err, int len) {
    bool saves = !o->eval_only && o->save_dir[0];
    return outputs_apart(o, deck, err, len) && export_apart(o, err, len) &&
           (!saves || folder_usable("--save-dir", o->save_dir, err, len)) &&
           (!o->export_hf[0] || (folder_usable("--export-hf", o->export_hf, err, len) &&
                                 named("--export-hf", hf_export_dir_check(o->export_hf, err, len),
                                       err, len))) &&
           (!o->log[0] || file_usable("--log", o->log, err, len)) &&
           (!o->dump_batches[0] || o->eval_only ||
            file_usable("--dump-batches", o->dump_batches, err, len));
}

// --tokenizer (which --sample-tokens needs) loads and its ids fit the model's
// vocabulary; sha: its SHA-256, which the dataset's must match.
static bool check_tokenizer(const TrainOptions *o, const ModelConfig *cfg, char sha[65],
                            char *err, int len) {
    sha[0] = 0;
    if (o->sample_tokens > 0 && !o->tokenizer[0])
        snprintf(err, len, "--sample-tokens %d needs --tokenizer FILE (the tokenizer.json the "
                 "dataset was encoded with, or bytes)", o->sample_tokens);
    if (!o->tokenizer[0]) return o->sample_tokens <= 0;
    Tokenizer *tok = tokenizer_load(o->tokenizer, err, len);
    if (!named("--tokenizer", tok != NULL, err, len)) return false;
    int64_t vocab = tokenizer_vocab_size(tok);
    snprintf(sha, 65, "%s", tokenizer_sha256(tok));
    tokenizer_free(tok);
    if (vocab <= cfg->vocab_size) return true;
    snprintf(err, len, "--tokenizer %s has %lld tokens, more than the vocabulary of the model %s "
             "(%d): give the tokenizer the dataset was encoded with", o->tokenizer,
             (long long)vocab, cfg->name, cfg->vocab_size);
    return false;
}

// Rank 0 checks, every rank ends on a failure; deck: the run deck (or NULL).
static void check_before_start(const TrainOptions *o, const ModelConfig *cfg, const char *deck,
                               char sha[65]) {
    char err[8192] = "";
    sha[0] = 0;   // rank 0 alone loads the tokenizer
    bool ok = util_world_rank() != 0 || (check_outputs(o, deck, err, sizeof err) &&
                                         check_tokenizer(o, cfg, sha, err, sizeof err));
    agree_or_exit(ok, err);
    if (o->bench && (o->dataset[0] || o->data_mix[0]))
        info("note: --bench trains on synthetic tokens; --dataset and --data-mix are not read");
    char ignored[1024];
    if (o->eval_only) options_ignored_by_eval_only(o, ignored, sizeof ignored);
    if (o->eval_only && ignored[0])
        info("note: --eval-only trains nothing and saves nothing: %s ignored", ignored);
}

// The sample's tokenizer is the one the dataset was encoded with (its shards
// record that tokenizer's SHA-256): another one decodes into garbage.
static void check_tokenizer_of_data(const Trainer *t, const char *sha) {
    const Loader *l = t->train ? t->train : t->val;   // --eval-only: the validation split
    const char *data = l ? loader_tokenizer_sha256(l) : "";
    bool ok = !sha[0] || !data[0] || strcmp(sha, data) == 0;
    char err[4096] = "";
    if (!ok)
        snprintf(err, sizeof err, "--tokenizer %s is not the tokenizer the dataset %s was encoded "
                 "with (sha256 %.12s…, the shards say %.12s…): the sample would decode another "
                 "vocabulary's ids; give the dataset's tokenizer", t->opt.tokenizer,
                 t->opt.dataset, sha, data);
    agree_or_exit(ok, err);
}

// --device cuda: the device communication of --device-comm (NCCL or
// host-staged MPI), installed before trainer_create builds the grid's Comms.  NCCL
// cannot put two ranks of a communicator on one GPU: more ranks on a node
// than GPUs is an error that names the way out.
static void device_comm_select(const TrainOptions *o, const Ops *backend, int node_ranks) {
    if (backend->host_memory) return;   // the CPU: MPI on host memory
#ifdef LLAMA_CUDA
    bool staged = o->device_comm == DEVICE_COMM_MPI;
    comm_set_device_ops(staged ? comm_staged_device_ops(backend) : comm_nccl_device_ops());
    const DeviceCommOps *dev = comm_device_ops();
    int gpus = ops_cuda_device_count();
    char err[512] = "";
    bool ok = !dev || strncmp(dev->name, "nccl", 4) != 0 || node_ranks <= gpus;
    if (!ok)
        snprintf(err, sizeof err, "%d ranks on one node share %d GPU%s, and NCCL cannot put two "
                 "ranks on one GPU: launch one rank per GPU, or add --device-comm mpi "
                 "(host-staged, slower) to share them", node_ranks, gpus, gpus == 1 ? "" : "s");
    agree_or_exit(ok, err);
    info("device communication: %s", dev->name);
#else
    (void)o, (void)node_ranks;   // ops_select refused --device cuda already
#endif
}

int main(int argc, char **argv) {
    // Before MPI starts its threads, so that they too leave SIGTERM and
    // SIGUSR1 to the thread that takes them; a signal during start-up is
    // acted on at the first step.
    signals_install();
    comm_world_start(&argc, &argv);
    util_set_program("llama-train");
    TrainOptions o;
    options_defaults(&o);
    bool help;
    char err[1024];
    if (!options_parse(&o, argc, argv, &help, err, sizeof err)) fatal_all("%s", err);
    if (help) {
        if (util_world_rank() == 0) options_print_help("llama-train");
        comm_world_end();
        return 0;
    }
    if (!options_check(&o, err, sizeof err)) fatal_all("%s", err);
    ModelConfig cfg;
    if (!model_config(&o, &cfg, err, sizeof err)) fatal_all("%s", err);
    int world = util_world_size();
    if (o.describe && world > 1 && o.world_size > 0 && o.world_size != world)
        fatal_all("--world-size %d differs from the %d ranks started; give one or the other",
                  o.world_size, world);
    if (o.describe && world == 1) world = o.world_size > 0 ? o.world_size : o.tp * o.cp * o.pp;
    if (!trainer_check_options(&o, &cfg, world, err, sizeof err)) fatal_all("%s", err);
    if (o.describe) {
        trainer_describe(&o, &cfg, world);
        comm_world_end();
        return 0;
    }
    char tokenizer_sha[65];
    check_before_start(&o, &cfg, argc > 1 && argv[1][0] != '-' ? argv[1] : NULL, tokenizer_sha);
    int local_rank = 0, node_ranks = 1;   // one GPU per rank: its index on the node
    comm_node_rank(&local_rank, &node_ranks);
    const Ops *backend = ops_select(o.device, o.precision, local_rank, err, sizeof err);
    agree_or_exit(backend != NULL, err);
    device_comm_select(&o, backend, node_ranks);
    Trainer *t = trainer_create(backend, &o, &cfg);
    check_tokenizer_of_data(t, tokenizer_sha);
    int status = trainer_run(t);
    trainer_free(t);
    comm_world_end();
    return status;
}
