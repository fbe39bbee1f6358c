#include "parallel/grid.h"

#include <stdio.h>

#include "core/util.h"

bool grid_check_layout(const ModelConfig *c, int world, int tp, int cp, int pp, int zero,
                       char *err, int err_len) {
    if (tp < 1 || cp < 1 || pp < 1) {
        snprintf(err, err_len, "--tp, --cp and --pp must be at least 1 (got tp %d, cp %d, pp %d)",
                 tp, cp, pp);
        return false;
    }
    if (world % (tp * cp * pp) != 0) {
        snprintf(err, err_len, "%d ranks cannot form a grid with tp %d × cp %d × pp %d: the rank "
                 "count must be a multiple of tp·cp·pp = %d (data-parallel size = ranks / "
                 "(tp·cp·pp))", world, tp, cp, pp, tp * cp * pp);
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
    int replicas = world / (tp * pp);
    if (zero < 0 || zero > 3) {
        snprintf(err, err_len, "--zero must be 0, 1, 2 or 3 (got %d)", zero);
        return false;
    }
    if (zero > 0 && replicas == 1) {
        snprintf(err, err_len, "--zero %d shards over data-parallel ranks (and context-"
                 "parallel ones), but the data-parallel size is 1 (%d ranks / (tp %d · pp %d)); "
                 "use --zero 0 or more ranks", zero, world, tp, pp);
        return false;
    }
    return true;
}

void grid_create(Grid *g, int tp, int cp, int pp, bool tied_embeddings) {
    comm_world(&g->world);
    g->world_rank = g->world.rank;
    g->world_size = g->world.size;
    g->tp = tp;
    g->cp = cp;
    g->pp = pp;
    g->dp = g->world_size / (tp * cp * pp);
    g->replicas = g->dp * cp;
    int r = g->world_rank;
    g->tp_rank = r % tp;
    g->cp_rank = (r / tp) % cp;
    g->dp_rank = (r / (tp * cp)) % g->dp;
    g->pp_rank = r / (tp * g->replicas);
    g->replica_rank = g->cp_rank + cp * g->dp_rank;
    // Same color = same group; key orders ranks inside it.  A (replica, tp)
    // place is the same on every stage.
    int place = g->replica_rank * tp + g->tp_rank;
    comm_split(&g->world, r / tp, g->tp_rank, &g->tp_comm);
    CommRing stages[2];   // activations, gradients
    comm_ring_links(&g->world, place, g->world_size / pp, g->pp_rank, pp, 2, stages);
    g->pp_act = stages[0];
    g->pp_grad = stages[1];
    comm_ring_links(&g->world, (g->pp_rank * g->dp + g->dp_rank) * tp + g->tp_rank,
                    g->world_size / cp, g->cp_rank, cp, 2, g->cp_ring);
    comm_split(&g->world, g->pp_rank * tp + g->tp_rank, g->replica_rank, &g->replica_comm);
    comm_split(&g->world, place, g->pp_rank, &g->pp_comm);
    bool ends = tied_embeddings && (g->pp_rank == 0 || g->pp_rank == pp - 1);
    comm_split(&g->world, ends ? place : g->replicas * tp + r, g->pp_rank, &g->embed_comm);
    comm_node_rank(&g->local_rank, &g->local_size);
}

void grid_free(Grid *g) {
    comm_free(&g->tp_comm);
    comm_free(&g->replica_comm);
    comm_free(&g->pp_comm);
    comm_ring_free(&g->pp_act);
    comm_ring_free(&g->pp_grad);
    comm_ring_free(&g->cp_ring[0]);
    comm_ring_free(&g->cp_ring[1]);
    comm_free(&g->embed_comm);
    comm_free(&g->world);
}
