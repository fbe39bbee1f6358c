// The loader: every sample of an epoch seen exactly once across DP = 1..4,
// resume from a stored position (encoded as checkpoints store it), also with
// sources added or removed (matched by name), mixing
// weights (an epoch counting the sources drawn), a dataset of more sources than
// the old fixed limit of 64, refusal of token ids outside the model's
// vocabulary, the windows of a shard of a multiple of the length, and shards
// without checksum tables.  Shards are written here: token i of a
// file is i + base (vocab 65536), so a window's first token names it.
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "train/loader.h"
#include "hdf5/shards.h"

#define L 8
static char dir[256], dir1[256], dir2[256];

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

// Draws `before` micro-batches from path with mix, stores the position as a
// checkpoint does (encoded), and checks that a new loader restarted there
// draws what the first one draws next, for `after` micro-batches.
static void check_restart(const char *path, const char *mix, int before, int after) {
    Loader *l = open_loader(path, mix, 65536);
    LoaderState a = {0}, b = {0};
    int32_t ra[2 * (L + 1)], rb[2 * (L + 1)];
    for (int k = 0; k < before; k++) loader_next(l, &a, 1, 2, 2, ra);
    int64_t *stored;
    int n = loader_state_encode(&a, &stored);   // what a checkpoint stores
    char err[256];
    CHECK(n == 1 + a.n_sources, "%d values for %d sources", n, a.n_sources);
    CHECK(loader_state_decode(stored, n, &b, err, sizeof err), "decode: %s", err);
    free(stored);
    Loader *l2 = open_loader(path, mix, 65536);
    for (int k = 0; k < after; k++) {
        loader_next(l, &a, 1, 2, 2, ra);
        loader_next(l2, &b, 1, 2, 2, rb);
        CHECK(memcmp(ra, rb, sizeof ra) == 0, "step %d after the restart differs", k);
    }
    loader_state_free(&a);
    loader_state_free(&b);
    loader_close(l);
    loader_close(l2);
}

static void test_resume(void) {
    check_begin("loader: a restart from the stored position sees the uninterrupted run's samples");
    check_restart(dir, "one=0.4,two=0.6", 37, 300);   // beyond an epoch of source "one"
    check_end();
}

static void test_position_codec(void) {
    check_begin("loader: the stored position decodes at any length, negative counts refused");
    int64_t old[65] = {24, 5, 7, 12};   // format 1 and 2: 65 values
    LoaderState st = {0};
    char err[256] = "";
    CHECK(loader_state_decode(old, 65, &st, err, sizeof err), "%s", err);
    CHECK(st.consumed == 24 && st.n_sources == 64 && st.source_consumed[2] == 12, "65 values");
    int64_t *v;
    int n = loader_state_encode(&st, &v);
    CHECK(n == 65 && memcmp(v, old, sizeof old) == 0, "re-encoded as %d values", n);
    free(v);
    int64_t one = 9, bad[3] = {9, 1, -1};
    CHECK(loader_state_decode(&one, 1, &st, err, sizeof err) && st.consumed == 9 && st.n_sources == 0,
          "one value");
    CHECK(!loader_state_decode(bad, 3, &st, err, sizeof err) && strstr(err, "negative") &&
          st.consumed == 9, "a negative count: '%s'", err);
    CHECK(!loader_state_decode(bad, 0, &st, err, sizeof err) && strstr(err, "empty"), "no values");
    loader_state_free(&st);
    check_end();
}

// 70 sources (one shard each, tokens from 900·i): more than the 64 a
// checkpoint's fixed-size position held before format 3.
static void test_many_sources(void) {
    check_begin("loader: 70 sources in one dataset mix and resume");
    char sub[300], name[64], mix[1024] = "";
    snprintf(sub, sizeof sub, "%s/many", dir);
    mkdir(sub, 0755);
    for (int i = 0; i < 70; i++) {
        char source[16];
        snprintf(name, sizeof name, "many/s%02d.h5", i);
        snprintf(source, sizeof source, "s%02d", i);
        write_shard(name, source, 201, 900u * (uint32_t)i, 65536);
        if (i % 23 == 0 || i == 69)
            snprintf(mix + strlen(mix), sizeof mix - strlen(mix), "%ss%02d=1", mix[0] ? "," : "", i);
    }
    Loader *l = open_loader(sub, mix, 65536);
    const char **names;
    const double *weights;
    CHECK(l && loader_sources(l, &names, &weights) == 70 && strcmp(names[69], "s69") == 0,
          "the 70 sources were not all opened");
    LoaderState st = {0};
    int32_t rows[L + 1];
    int from_last = 0;
    for (int k = 0; l && k < 400; k++) {
        loader_next(l, &st, 0, 1, 1, rows);
        from_last += rows[0] >= 69 * 900;
    }
    CHECK(st.n_sources == 70 && from_last > 0 && st.source_consumed[69] == (uint64_t)from_last,
          "source s69 drawn %d times, counted %llu", from_last,
          st.n_sources == 70 ? (unsigned long long)st.source_consumed[69] : 0ULL);
    loader_state_free(&st);
    loader_close(l);
    check_restart(sub, mix, 45, 200);
    check_end();
}

// Saves the position after `before` draws from `from` (mix fmix) as a
// checkpoint does (counts and their names), restores it into a loader of
// `to` (mix tmix); *out holds both loaders' next `after` draws compared.
static bool restore_across(const char *from, const char *fmix, const char *to, const char *tmix,
                           int before, int after, char *err, int err_len) {
    Loader *a = open_loader(from, fmix, 65536), *b = open_loader(to, tmix, 65536);
    LoaderState sa = {0}, sb = {0};
    int32_t ra[2 * (L + 1)], rb[2 * (L + 1)];
    for (int k = 0; k < before; k++) loader_next(a, &sa, 0, 1, 2, ra);
    int64_t *stored;
    int n = loader_state_encode(&sa, &stored);
    char *names = loader_state_data(a, &sa);
    bool ok = loader_state_restore(b, stored, n, names, &sb, err, err_len);
    for (int k = 0; ok && k < after; k++) {
        loader_next(a, &sa, 0, 1, 2, ra);
        loader_next(b, &sb, 0, 1, 2, rb);
        if (memcmp(ra, rb, sizeof ra) != 0) {
            snprintf(err, err_len, "draw %d after the restart differs", k);
            ok = false;
        }
    }
    free(stored);
    free(names);
    loader_state_free(&sa);
    loader_state_free(&sb);
    loader_close(a);
    loader_close(b);
    return ok;
}

// What loader_state_data writes, with these names and sample counts.
#define DATA(names, samples) \
    "{\"window\": 8, \"samples\": 1, \"sources\": " names ", \"source_samples\": " samples "}"

// A source added before the others in name order (or removed) moves the
// others' indices; the position follows them by name.
static void test_sources_changed(void) {
    check_begin("loader: a position restored into a dataset with a source added or removed");
    char pair[300], trio[300], err[512] = "";
    snprintf(pair, sizeof pair, "%s/pair", dir);
    snprintf(trio, sizeof trio, "%s/trio", dir);
    mkdir(pair, 0755);
    mkdir(trio, 0755);
    write_shard("pair/b.h5", "b", 3001, 0, 65536);
    write_shard("pair/d.h5", "d", 1201, 30000, 65536);
    write_shard("trio/a.h5", "a", 801, 50000, 65536);
    write_shard("trio/b.h5", "b", 3001, 0, 65536);
    write_shard("trio/d.h5", "d", 1201, 30000, 65536);
    CHECK(restore_across(pair, "b=0.4,d=0.6", trio, "a=0,b=0.4,d=0.6", 60, 200, err, sizeof err),
          "source a added (weight 0): %s", err);
    CHECK(restore_across(trio, "a=0,b=0.4,d=0.6", pair, "b=0.4,d=0.6", 60, 200, err, sizeof err),
          "source a removed (never drawn): %s", err);
    CHECK(!restore_across(trio, "a=0.5,b=0.2,d=0.3", pair, "b=0.2,d=0.3", 60, 1, err, sizeof err),
          "source a removed after draws: the draws cannot match, yet they did");
    Loader *l = open_loader(trio, "a=1,b=1,d=1", 65536);
    LoaderState st = {0};
    int64_t two[3] = {50, 20, 30}, three[4] = {50, 10, 20, 20};
    CHECK(!loader_state_restore(l, two, 3, NULL, &st, err, sizeof err) &&
              strstr(err, "cannot be matched") && st.consumed == 0,
          "2 unnamed counts into 3 sources: '%s'", err);
    CHECK(loader_state_restore(l, three, 4, NULL, &st, err, sizeof err) && st.n_sources == 3 &&
              st.source_consumed[0] == 10, "3 unnamed counts into 3 sources: '%s'", err);
    CHECK(!loader_state_restore(l, three, 4, DATA("[\"b\",\"d\"]", "[1,1,1]"), &st, err, sizeof err) &&
              strstr(err, "malformed"), "3 counts, 2 names: '%s'", err);
    CHECK(!loader_state_restore(l, two, 3, DATA("[\"b\",\"d\",\"a\"]", "[1,1]"), &st, err, sizeof err) &&
              strstr(err, "malformed"), "2 counts, 3 names: '%s'", err);
    CHECK(!loader_state_restore(l, two, 3, DATA("[\"b\",\"b\"]", "[1,1]"), &st, err, sizeof err) &&
              strstr(err, "malformed"), "a name twice: '%s'", err);
    CHECK(!loader_state_restore(l, two, 3, "[\"d\",\"b\"]", &st, err, sizeof err) &&
              strstr(err, "malformed"), "names alone (an array): '%s'", err);
    CHECK(!loader_state_restore(l, two, 3, "{\"window\": \"8\", \"sources\": [\"d\", \"b\"], "
                                "\"source_samples\": [1, 1]}", &st, err, sizeof err) &&
              strstr(err, "malformed"), "a window that is a string: '%s'", err);
    CHECK(loader_state_restore(l, two, 3, DATA("[\"d\",\"b\"]", "[1,1]"), &st, err, sizeof err) &&
              st.source_consumed[0] == 0 && st.source_consumed[1] == 30 &&
              st.source_consumed[2] == 20, "names in another order: '%s'", err);
    loader_close(l);
    Loader *one = open_loader(trio, NULL, 65536);
    CHECK(loader_state_restore(one, two, 3, DATA("[\"b\",\"d\"]", "[1,1]"), &st, err, sizeof err) &&
              st.consumed == 50 && st.n_sources == 0, "per-source counts into one stream: '%s'", err);
    loader_close(one);
    loader_state_free(&st);
    check_end();
}

static void test_mix(void) {
    check_begin("loader: --data-mix weights honoured within sampling error, an epoch of the sources drawn");
    // An epoch: the windows of the sources drawn, not of one left out (weight 0).
    Loader *l = open_loader(dir, "one=1,two=0", 65536);
    CHECK(loader_samples(l) == (4001 - 1) / L, "%llu samples in an epoch of source one alone, "
          "expected %d", (unsigned long long)loader_samples(l), (4001 - 1) / L);
    loader_close(l);
    l = open_loader(dir, "one=0.3,two=0.7", 65536);
    CHECK(loader_samples(l) == (4001 - 1) / L + (2001 - 1) / L, "%llu samples in an epoch, expected %d",
          (unsigned long long)loader_samples(l), (4001 - 1) / L + (2001 - 1) / L);
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
    loader_state_free(&st);
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

// A shard of exactly k·L tokens holds k − 1 windows of L + 1 tokens (the last
// token of one is the first of the next), every one readable; shards without
// checksum tables (h5py-made, older) are not taken for copies of each other.
static void test_window_count_and_unchecked(void) {
    check_begin("loader: k·L tokens make k − 1 samples, all read; distinct unchecked shards accepted");
    char path[512], sub[600];
    snprintf(path, sizeof path, "%s/exact/e.h5", dir2);
    snprintf(sub, sizeof sub, "%s/exact", dir2);
    mkdir(sub, 0755);
    snprintf(dir, sizeof dir, "%s", dir2);   // write_shard writes under dir
    write_shard("exact/e.h5", "e", 100 * L, 0, 65536);
    Loader *l = open_loader(path, NULL, 65536);
    uint64_t n = l ? loader_samples(l) : 0;
    CHECK(n == 99, "%llu samples in %d tokens, expected 99", (unsigned long long)n, 100 * L);
    if (n == 99) {
        int seen[99] = {0};
        draw(l, 1, 1, n, seen, 99);
        for (int i = 0; i < 99; i++) CHECK(seen[i] == 1, "window %d seen %d times", i, seen[i]);
    }
    if (l) loader_close(l);
    // Two shards of other tokens, their checksum tables removed.
    snprintf(sub, sizeof sub, "%s/plain", dir2);
    mkdir(sub, 0755);
    write_shard("plain/p1.h5", "p", 400, 0, 65536);
    write_shard("plain/p2.h5", "p", 400, 1000, 65536);
    for (int k = 1; k <= 2; k++) {
        snprintf(path, sizeof path, "%s/plain/p%d.h5", dir2, k);
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        CHECK(f >= 0 && H5Ldelete(f, "token_sha256", H5P_DEFAULT) >= 0 &&
              H5Adelete(f, "token_sha256_root") >= 0, "removing the checksums of %s", path);
        if (f >= 0) H5Fclose(f);
    }
    char err[512] = "";
    LoaderConfig c = {sub, "train", L, 65536, 11, NULL, true};
    l = loader_open(&c, err, sizeof err);
    CHECK(l, "two distinct shards without checksums refused: %s", err);
    if (l) {
        CHECK(loader_unchecked_shards(l) == 2 && loader_samples(l) == 2 * ((400 - 1) / L),
              "%d unchecked shards, %llu samples", loader_unchecked_shards(l),
              (unsigned long long)loader_samples(l));
        loader_close(l);
    }
    snprintf(dir, sizeof dir, "%s", dir1);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    snprintf(dir, sizeof dir, "/tmp/llama-test-loader.%d", (int)getpid());
    mkdir(dir, 0755);
    snprintf(dir1, sizeof dir1, "%s", dir);
    snprintf(dir2, sizeof dir2, "%.200s.more", dir);   // not under dir: its own sources
    mkdir(dir2, 0755);
    write_shard("a.h5", "one", 4001, 0, 65536);
    write_shard("b.h5", "two", 2001, 30000, 65536);
    char bad[600];
    snprintf(bad, sizeof bad, "%s/bad", dir);
    mkdir(bad, 0755);
    write_shard("bad/bad.h5", "bad", 400, 0, 256);   // ids 0..399, vocab attribute 256
    test_exactly_once();
    test_resume();
    test_position_codec();
    test_many_sources();
    test_sources_changed();
    test_mix();
    test_bad_ids();
    test_window_count_and_unchecked();
    char cmd[800];
    snprintf(cmd, sizeof cmd, "rm -rf %s %s", dir, dir2);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    comm_world_end();
    return check_exit_code();
}
