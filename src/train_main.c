// llama-train: pretrains a LLaMA-family model; every rank runs it (SPMD).
#include <mpi.h>
#include <stdio.h>
#include <string.h>

#include "comm.h"
#include "hf_config.h"
#include "ops.h"
#include "options.h"
#include "train.h"
#include "util.h"

// The model: -c, else the --init-hf folder's config.json, else the tiny preset.
static bool model_config(TrainOptions *o, ModelConfig *cfg, char *err, int len) {
    if (!o->config[0] && o->init_hf[0]) {
        HfConfig hf;
        if (!hf_config_read(o->init_hf, &hf, err, len)) return false;
        *cfg = hf.model;
        snprintf(cfg->name, sizeof cfg->name, "%.63s", o->init_hf);
        return true;
    }
    if (!o->config[0]) strcpy(o->config, "tiny");
    return config_load(o->config, cfg, err, len);
}

// --device cuda: the device communication of --device-comm, installed before
// trainer_create builds the grid's Comms (ops_select installed NCCL's).  NCCL
// cannot put two ranks of a communicator on one GPU: more ranks on a node
// than GPUs is an error that names the way out.
static void device_comm_select(const TrainOptions *o, int node_ranks) {
    if (strcmp(o->device, "cuda") != 0) return;   // the CPU: MPI on host memory
    if (strcmp(o->device_comm, "mpi") == 0) comm_set_device_ops(comm_staged_device_ops());
    const DeviceCommOps *dev = comm_device_ops();
#ifdef LLAMA_CUDA
    int gpus = ops_cuda_device_count();
    char err[512] = "";
    bool ok = !dev || strncmp(dev->name, "nccl", 4) != 0 || node_ranks <= gpus;
    if (!ok)
        snprintf(err, sizeof err, "%d ranks on one node share %d GPU%s, and NCCL cannot put two "
                 "ranks on one GPU: launch one rank per GPU, or add --device-comm mpi "
                 "(host-staged, slower) to share them", node_ranks, gpus, gpus == 1 ? "" : "s");
    agree_or_exit(ok, err);
#else
    (void)node_ranks;
#endif
    info("device communication: %s", dev ? dev->name : "none");
}

int main(int argc, char **argv) {
    int provided;
    MPI_Init_thread(&argc, &argv, MPI_THREAD_FUNNELED, &provided);
    util_set_program("llama-train");
    TrainOptions o;
    options_defaults(&o);
    bool help;
    char err[1024];
    if (!options_parse(&o, argc, argv, &help, err, sizeof err)) fatal_all("%s", err);
    if (help) {
        if (util_world_rank() == 0) options_print_help("llama-train");
        MPI_Finalize();
        return 0;
    }
    ModelConfig cfg;
    if (!model_config(&o, &cfg, err, sizeof err)) fatal_all("%s", err);
    int world = util_world_size();
    if (o.describe && world == 1) world = o.world_size > 0 ? o.world_size : o.tp * o.pp;
    if (!trainer_check_options(&o, &cfg, world, err, sizeof err)) fatal_all("%s", err);
    if (o.describe) {
        trainer_describe(&o, &cfg, world);
        MPI_Finalize();
        return 0;
    }
    // One GPU per rank: the rank's index among the ranks of its node.
    MPI_Comm node;
    int local_rank = 0, node_ranks = 1;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, util_world_rank(), MPI_INFO_NULL,
                        &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_size(node, &node_ranks);
    MPI_Comm_free(&node);
    bool ok = ops_select(o.device, trainer_precision(&o), local_rank, err, sizeof err);
    agree_or_exit(ok, err);
    device_comm_select(&o, node_ranks);
    Trainer *t = trainer_create(&o, &cfg);
    trainer_run(t);
    trainer_free(t);
    MPI_Finalize();
    return 0;
}
