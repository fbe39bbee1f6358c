// A shard whose vocab_size attribute is not positive (0 or negative: a
// damaged or hand-made file) is refused with a message about vocab_size,
// not about n_tokens (issue 11's validation list).
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "hdf5/shards.h"

static void test_vocab(const char *dir, int64_t vocab) {
    char name[128], path[512], err[1024] = "", want[128];
    snprintf(name, sizeof name, "a shard with vocab_size %lld is refused for its vocab_size",
             (long long)vocab);
    check_begin(name);
    uint32_t tok[16] = {0};
    uint64_t len = 16;
    ShardMeta meta = {vocab, -1, -1, "test", "src", "train", "generated"};
    snprintf(path, sizeof path, "%s/v%lld.h5", dir, (long long)vocab);
    if (!shard_write_collective(MPI_COMM_SELF, path, &meta, tok, 16, &len, 1, err, sizeof err)) {
        CHECK(0, "writing the test shard: %s", err);
        check_end();
        return;
    }
    Shard s;
    bool ok = shard_open(path, &s, err, sizeof err);
    if (ok) shard_close(&s);
    snprintf(want, sizeof want, "vocab_size attribute %lld is not positive", (long long)vocab);
    CHECK(!ok, "the shard opened");
    CHECK(strstr(err, want) && !strstr(err, "n_tokens"), "message: %s", err);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    char dir[256], cmd[300];
    snprintf(dir, sizeof dir, "/tmp/llama-test-shard-attrs.%d", (int)getpid());
    mkdir(dir, 0755);
    test_vocab(dir, 0);
    test_vocab(dir, -3);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    comm_world_end();
    return check_exit_code();
}
