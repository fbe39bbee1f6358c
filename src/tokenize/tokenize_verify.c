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

enum { SHARD_OK, SHARD_UNREADABLE, SHARD_DAMAGED };   // ordered: the worst wins

// This rank's share of one shard: SHARD_OK, or why not (printed): it does not
// open as a shard (not HDF5, or no token shard: a checkpoint, another file),
// or a block fails its checksum.
static int verify_share(const char *path, int rank, int size, int64_t *blocks) {
    Shard s = {0};
    char err[1024];
    int verdict = !shard_open(path, &s, err, sizeof err) ? SHARD_UNREADABLE
                : !shard_verify(&s, rank, size, blocks, err, sizeof err) ? SHARD_DAMAGED : SHARD_OK;
    if (verdict != SHARD_OK) fprintf(stderr, "llama-tokenize: rank %d: %s\n", rank, err);
    if (s.path) shard_close(&s);
    return verdict;
}

void tokenize_verify(const TokenizeOptions *o) {
    Comm world;
    comm_world(&world);
    int rank = world.rank, size = world.size, bad = 0, unreadable = 0;
    for (int i = 0; i < o->shards.n; i++) {
        char **files, err[1024];
        int n = shards_list(o->shards.items[i], &files, err, sizeof err);
        if (n == 0) {
            if (rank == 0) fprintf(stderr, "llama-tokenize: %s\n", err);
            unreadable++;
        }
        for (int k = 0; k < n; k++) {
            int64_t mine = 0, blocks = 0;
            int32_t verdict = verify_share(files[k], rank, size, &mine);
            comm_allreduce(&world, &verdict, 1, DTYPE_I32, REDUCE_MAX);
            blocks = mine;
            comm_allreduce(&world, &blocks, 1, DTYPE_I64, REDUCE_SUM);
            if (rank == 0) {
                if (verdict == SHARD_OK)
                    printf("ok %s: %lld token blocks match their SHA-256\n", files[k],
                           (long long)blocks);
                else printf("%s %s\n", verdict == SHARD_DAMAGED ? "DAMAGED" : "UNREADABLE", files[k]);
            }
            bad += verdict == SHARD_DAMAGED;
            unreadable += verdict == SHARD_UNREADABLE;
        }
        shards_list_free(files, n);
    }
    fflush(stdout);
    comm_free(&world);
    if (bad + unreadable > 0) {
        if (rank == 0 && bad)
            fprintf(stderr, "llama-tokenize: verify: %d shard%s damaged; encode them again\n",
                    bad, bad == 1 ? "" : "s");
        if (rank == 0 && unreadable)
            fprintf(stderr, "llama-tokenize: verify: %d path%s not readable as token shards (the "
                    "reasons above)\n", unreadable, unreadable == 1 ? "" : "s");
        comm_world_end();
        exit(1);
    }
}
