#include "parallel/grid.h"

#include <stdio.h>

#include "core/util.h"

bool grid_check_layout(const ModelConfig *c, int world, int tp, int pp, int zero, char *err,
                       int err_len) {
    if (tp < 1 || pp < 1) {
        snprintf(err, err_len, "--tp and --pp must be at least 1 (got tp %d, pp %d)", tp, pp);
        return false;
    }
    if (world % (tp * pp) != 0) {
        snprintf(err, err_len, "%d ranks cannot form a grid with tp %d × pp %d: the rank count "
                 "must be a multiple of tp·pp = %d (data-parallel size = ranks / (tp·pp))",
                 world, tp, pp, tp * pp);
        return false;
    }
    const char *what = NULL;
    int n = 0;
    if (c->n_heads % tp) what = "attention heads", n = c->n_heads;
    else if (c->n_kv_heads % tp) what = "KV heads", n = c->n_kv_heads;
    else if (c->ffn_dim % tp) what = "the FFN width", n = c->ffn_dim;
    if (what) {
        snprintf(err, err_len, "--tp %d does not divide %s (%d) of model %s; choose a tensor-"
                 "parallel size that divides heads %d, KV heads %d and FFN width %d", tp, what,
                 n, c->name, c->n_heads, c->n_kv_heads, c->ffn_dim);
        return false;
    }
    if (pp > c->n_layers) {
        snprintf(err, err_len, "--pp %d is larger than the %d layers of model %s", pp,
                 c->n_layers, c->name);
        return false;
    }
    int dp = world / (tp * pp);
    if (zero < 0 || zero > 2) {
        snprintf(err, err_len, "--zero must be 0, 1 or 2 (got %d)", zero);
        return false;
    }
    if (zero > 0 && dp == 1) {
        snprintf(err, err_len, "--zero %d shards over data-parallel ranks, but the data-parallel "
                 "size is 1 (%d ranks / (tp %d · pp %d)); use --zero 0 or more ranks", zero,
                 world, tp, pp);
        return false;
    }
    return true;
}

static void split(Comm *out, int color, int key) {
    MPI_Comm c;
    if (MPI_Comm_split(MPI_COMM_WORLD, color, key, &c) != MPI_SUCCESS)
        fatal("MPI_Comm_split failed while building the process grid");
    comm_init(out, c);
    MPI_Comm_free(&c);
}

void grid_create(Grid *g, int tp, int pp) {
    MPI_Comm_rank(MPI_COMM_WORLD, &g->world_rank);
    MPI_Comm_size(MPI_COMM_WORLD, &g->world_size);
    g->tp = tp;
    g->pp = pp;
    g->dp = g->world_size / (tp * pp);
    int r = g->world_rank;
    g->tp_rank = r % tp;
    g->dp_rank = (r / tp) % g->dp;
    g->pp_rank = r / (tp * g->dp);
    comm_init(&g->world, MPI_COMM_WORLD);
    // Same color = same group; key orders ranks inside it.
    split(&g->tp_comm, g->pp_rank * g->dp + g->dp_rank, g->tp_rank);
    split(&g->dp_comm, g->pp_rank * tp + g->tp_rank, g->dp_rank);
    split(&g->pp_comm, g->dp_rank * tp + g->tp_rank, g->pp_rank);
    split(&g->pp_grad_comm, g->dp_rank * tp + g->tp_rank, g->pp_rank);
    grid_node_rank(&g->local_rank, &g->local_size);
}

void grid_node_rank(int *rank, int *size) {
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, util_world_rank(), MPI_INFO_NULL,
                        &node);
    MPI_Comm_rank(node, rank);
    MPI_Comm_size(node, size);
    MPI_Comm_free(&node);
}

void grid_free(Grid *g) {
    comm_free(&g->tp_comm);
    comm_free(&g->dp_comm);
    comm_free(&g->pp_comm);
    comm_free(&g->pp_grad_comm);
    comm_free(&g->world);
}
