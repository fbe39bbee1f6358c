// llama-tokenize verify SHARD|DIR ...: every token block of every shard
// against its SHA-256, and each checksum table against its root.  SPMD: the
// blocks are shared among the ranks (rank r checks blocks r, r + size, ...).
// One line per shard; exits 1 when any shard is damaged or unreadable.
#include <stdio.h>
#include <stdlib.h>

#include "comm/comm.h"
#include "hdf5/shards.h"
#include "tokenize/tokenize.h"
#include "core/util.h"

// This rank's share of one shard; false (the reason printed) when damaged.
static bool verify_share(const char *path, int rank, int size, int64_t *blocks) {
    Shard s;
    char err[1024];
    bool ok = shard_open(path, &s, err, sizeof err) &&
              shard_verify(&s, rank, size, blocks, err, sizeof err);
    if (!ok) fprintf(stderr, "llama-tokenize: rank %d: %s\n", rank, err);
    if (s.path) shard_close(&s);
    return ok;
}

void tokenize_verify(const TokenizeOptions *o) {
    Comm world;
    comm_world(&world);
    int rank = world.rank, size = world.size, bad = 0;
    for (int i = 0; i < o->shards.n; i++) {
        char **files, err[1024];
        int n = shards_list(o->shards.items[i], &files, err, sizeof err);
        if (n == 0) {
            if (rank == 0) fprintf(stderr, "llama-tokenize: %s\n", err);
            bad++;
        }
        for (int k = 0; k < n; k++) {
            int64_t mine = 0, blocks = 0;
            int32_t damaged = !verify_share(files[k], rank, size, &mine);
            comm_allreduce(&world, &damaged, 1, DTYPE_I32, REDUCE_MAX);
            bool all = !damaged;
            blocks = mine;
            comm_allreduce(&world, &blocks, 1, DTYPE_I64, REDUCE_SUM);
            if (rank == 0) {
                if (all) printf("ok %s: %lld token blocks match their SHA-256\n", files[k],
                                (long long)blocks);
                else printf("DAMAGED %s\n", files[k]);
            }
            bad += !all;
        }
        shards_list_free(files, n);
    }
    fflush(stdout);
    comm_free(&world);
    if (bad > 0) {
        if (rank == 0)
            fprintf(stderr, "llama-tokenize: verify: %d shard%s damaged or unreadable; encode "
                    "them again\n", bad, bad == 1 ? "" : "s");
        comm_world_end();
        exit(1);
    }
}
