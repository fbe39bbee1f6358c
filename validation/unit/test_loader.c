// The loader: every sample of an epoch seen exactly once across DP = 1..4,
// resume from a stored position, mixing weights, and refusal of token ids
// outside the model's vocabulary.  Shards are written here: token i of a
// file is i + base (vocab 65536), so a window's first token names it.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "train/loader.h"
#include "hdf5/shards.h"

#define L 8
static char dir[256];

static void write_shard(const char *name, const char *source, int64_t n, uint32_t base,
                        int64_t vocab) {
    uint32_t *tok = malloc((size_t)n * sizeof *tok);
    for (int64_t i = 0; i < n; i++) tok[i] = base + (uint32_t)i;
    uint64_t len = (uint64_t)n;
    ShardMeta meta = {vocab, -1, -1, "test", source, "train", "generated"};
    char path[512], err[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    if (!shard_write_collective(MPI_COMM_SELF, path, &meta, tok, n, &len, 1, err, sizeof err)) {
        printf("FAIL writing test shard: %s\n", err);
        exit(1);
    }
    free(tok);
}

static Loader *open_loader(const char *path, const char *mix, int vocab) {
    char err[512];
    LoaderConfig c = {path, "train", L, vocab, 11, mix, true};
    Loader *l = loader_open(&c, err, sizeof err);
    if (!l) printf("FAIL loader_open: %s\n", err);
    return l;
}

// Draws the first n global samples with dp ranks of micro-batch B; seen[id]
// counts each window (id = first token / L for files of base 0).
static void draw(Loader *l, int dp, int B, uint64_t n, int *seen, int64_t max_id) {
    LoaderState st[4] = {{0}};
    int32_t *rows = malloc(sizeof(int32_t) * B * (L + 1));
    while (st[0].consumed < n) {
        uint64_t g0 = st[0].consumed;
        for (int r = 0; r < dp; r++) {
            loader_next(l, &st[r], r, dp, B, rows);
            for (int b = 0; b < B; b++) {
                uint64_t g = g0 + (uint64_t)r * B + b;
                int64_t id = rows[b * (L + 1)] / L;
                if (g < n && id >= 0 && id < max_id) seen[id]++;
            }
        }
    }
    free(rows);
}

static void test_exactly_once(void) {
    check_begin("loader: each sample of an epoch seen exactly once for DP = 1, 2, 3, 4");
    char path[512];
    snprintf(path, sizeof path, "%s/a.h5", dir);
    Loader *l = open_loader(path, NULL, 65536);
    uint64_t n = loader_samples(l);
    CHECK(n == (4001 - 1) / L, "%llu samples, expected %d", (unsigned long long)n, (4001 - 1) / L);
    for (int dp = 1; dp <= 4; dp++) {
        int *seen = calloc(n, sizeof(int));
        draw(l, dp, 3, n, seen, (int64_t)n);
        for (uint64_t i = 0; i < n; i++)
            CHECK(seen[i] == 1, "DP %d: sample %llu seen %d times", dp, (unsigned long long)i, seen[i]);
        free(seen);
    }
    loader_close(l);
    check_end();
}

static void test_resume(void) {
    check_begin("loader: a restart from the stored position sees the uninterrupted run's samples");
    Loader *l = open_loader(dir, "one=0.4,two=0.6", 65536);
    LoaderState a = {0}, b;
    int32_t ra[2 * (L + 1)], rb[2 * (L + 1)];
    for (int k = 0; k < 37; k++) loader_next(l, &a, 1, 2, 2, ra);
    b = a;   // what a checkpoint stores
    Loader *l2 = open_loader(dir, "one=0.4,two=0.6", 65536);
    for (int k = 0; k < 300; k++) {   // beyond an epoch of source "one"
        loader_next(l, &a, 1, 2, 2, ra);
        loader_next(l2, &b, 1, 2, 2, rb);
        CHECK(memcmp(ra, rb, sizeof ra) == 0, "step %d after the restart differs", k);
    }
    loader_close(l);
    loader_close(l2);
    check_end();
}

static void test_mix(void) {
    check_begin("loader: --data-mix weights honoured within sampling error");
    Loader *l = open_loader(dir, "one=0.3,two=0.7", 65536);
    LoaderState st = {0};
    int32_t rows[L + 1];
    int n = 20000, from_one = 0;
    for (int i = 0; i < n; i++) {
        loader_next(l, &st, 0, 1, 1, rows);
        from_one += rows[0] < 30000;
    }
    double p = (double)from_one / n, sigma = sqrt(0.3 * 0.7 / n);
    CHECK(fabs(p - 0.3) < 4 * sigma, "source one drawn %.4f of the time, expected 0.3 ± %.4f", p, 4 * sigma);
    CHECK(st.source_consumed[0] + st.source_consumed[1] == (uint64_t)n, "per-source counts do not add up");
    loader_close(l);
    check_end();
}

static void test_bad_ids(void) {
    check_begin("loader: a token id outside the model's vocabulary is a clear error");
    char path[512];
    snprintf(path, sizeof path, "%s/bad/bad.h5", dir);
    fflush(stdout);
    int pipefd[2];
    CHECK(pipe(pipefd) == 0, "pipe");
    pid_t pid = fork();
    if (pid == 0) {   // the child draws from a shard whose ids reach 300 with a vocab of 256
        dup2(pipefd[1], 2);
        Loader *l = open_loader(path, NULL, 256);
        LoaderState st = {0};
        int32_t rows[64 * (L + 1)];
        for (int k = 0; k < 8; k++) loader_next(l, &st, 0, 1, 64, rows);
        _exit(0);
    }
    close(pipefd[1]);
    char msg[1024] = "";
    ssize_t got = read(pipefd[0], msg, sizeof msg - 1);
    msg[got > 0 ? got : 0] = 0;
    int status;
    waitpid(pid, &status, 0);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) != 0, "the child exited %d", status);
    CHECK(strstr(msg, "outside the model's vocabulary of 256"), "message: %s", msg);
    check_end();
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    snprintf(dir, sizeof dir, "/tmp/llama-test-loader.%d", (int)getpid());
    mkdir(dir, 0755);
    write_shard("a.h5", "one", 4001, 0, 65536);
    write_shard("b.h5", "two", 2001, 30000, 65536);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    mkdir(bad, 0755);
    write_shard("bad/bad.h5", "bad", 400, 0, 256);   // ids 0..399, vocab attribute 256
    test_exactly_once();
    test_resume();
    test_mix();
    test_bad_ids();
    char cmd[600];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    MPI_Finalize();
    return check_exit_code();
}
