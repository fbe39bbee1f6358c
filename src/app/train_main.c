// llama-train: pretrains a LLaMA-family model; every rank runs it (SPMD).
#include <stdio.h>
#include <string.h>

#include "comm/comm.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "backend/ops.h"
#include "train/options.h"
#include "tokenizer/tokenizer.h"
#include "train/outputs.h"
#include "train/train.h"
#include "core/signals.h"
#include "core/util.h"
#include "train/model_file.h"

// The model: -c, else the --init-hf folder's config.json, else the tiny
// preset; --tie-embeddings ties its head (an untied --init-hf folder then
// fails the import's check, which names both).  A -c that names no preset
// and no readable model file is bad usage (exit 2); an --init-hf folder is
// data (exit 1).
static void model_config(TrainOptions *o, ModelConfig *cfg) {
    char err[1024] = "";
    if (!o->config[0] && o->init_hf[0]) {
        HfConfig hf;
        agree_or_exit(hf_config_read(o->init_hf, &hf, err, sizeof err), err);
        *cfg = hf.model;
        snprintf(cfg->name, sizeof cfg->name, "%.63s", o->init_hf);
    } else {
        if (!o->config[0]) strcpy(o->config, "tiny");
        agree_on_usage(config_load(o->config, cfg, err, sizeof err), err);
    }
    cfg->tie_embeddings = cfg->tie_embeddings || o->tie_embeddings;
}

// ---- before anything is allocated: the paths the run writes, the sample's tokenizer ----

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
    if (!prefix_error("--tokenizer", tok != NULL, err, len)) return false;
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
    bool ok = util_world_rank() != 0 || (outputs_check(o, deck, err, sizeof err) &&
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
    // acted on before the first step.
    signals_install();
    comm_world_start(&argc, &argv);
    util_set_program("llama-train");
    TrainOptions o;
    options_defaults(&o);
    bool help = false;
    char err[1024] = "";
    // Each check agreed over the ranks: a rank whose command line, deck or
    // model file differs (one node's copy missing) ends them all, not itself
    // alone while the others wait in their first collective.
    agree_on_usage(options_parse(&o, argc, argv, &help, err, sizeof err), err);
    agree_on_choice(help ? 2 : o.describe, "--help or --describe");
    if (help) {
        if (util_world_rank() == 0) options_print_help("llama-train");
        comm_world_end();
        return 0;
    }
    agree_on_usage(options_check(&o, err, sizeof err), err);   // the command line alone
    ModelConfig cfg;
    model_config(&o, &cfg);
    int world = util_world_size();
    if (o.describe && world > 1 && o.world_size > 0 && o.world_size != world)
        fatal_usage("--world-size %d differs from the %d ranks started; give one or the other",
                  o.world_size, world);
    if (o.describe && world == 1) world = o.world_size > 0 ? o.world_size : o.tp * o.cp * o.pp;
    // The options against the model and the ranks: still the command line's fault.
    agree_on_usage(trainer_check_options(&o, &cfg, world, err, sizeof err), err);
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
