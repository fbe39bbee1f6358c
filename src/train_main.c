// llama-train: pretrains a LLaMA-family model; every rank runs it (SPMD).
#include <mpi.h>
#include <stdio.h>
#include <string.h>

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
    int local_rank = 0;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, util_world_rank(), MPI_INFO_NULL,
                        &node);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_free(&node);
    bool ok = ops_select(o.device, trainer_precision(&o), local_rank, err, sizeof err);
    agree_or_exit(ok, err);
    Trainer *t = trainer_create(&o, &cfg);
    trainer_run(t);
    trainer_free(t);
    MPI_Finalize();
    return 0;
}
