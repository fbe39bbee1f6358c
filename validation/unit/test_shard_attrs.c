// A shard whose vocab_size attribute is not positive (0 or negative: a
// damaged or hand-made file) is refused with a message about vocab_size,
// not about n_tokens (issue 11's validation list).  A split written as
// h5py writes strings (variable-length UTF-8) reads as written, not as
// "train"; a split that is no string is refused.
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "hdf5/shards.h"

// A test shard of 16 tokens at dir/name; false (and a failed check) when it
// cannot be written.
static bool write_test_shard(const char *dir, const char *name, char *path, size_t len) {
    char err[1024] = "";
    uint32_t tok[16] = {0};
    uint64_t n = 16;
    ShardMeta meta = {256, -1, 7, "test", "src", "train", "generated"};
    snprintf(path, len, "%s/%s", dir, name);
    bool ok = shard_write_collective(MPI_COMM_SELF, path, &meta, tok, 16, &n, 1, err, sizeof err);
    CHECK(ok, "writing the test shard: %s", err);
    return ok;
}

// Opening the shard at path fails with a message holding want (what: the
// case, for the failure's message).
static void expect_refused(const char *path, const char *want, const char *what) {
    Shard s;
    char err[1024] = "";
    bool ok = shard_open(path, &s, err, sizeof err);
    if (ok) shard_close(&s);
    CHECK(!ok && strstr(err, want), "%s: %s", what, ok ? "opened" : err);
}

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

// Replaces the shard's "split" by v: a variable-length UTF-8 string (h5py's
// way), or with utf8 false an integer.
static void set_split(const char *path, const char *v, bool utf8) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), sp = H5Screate(H5S_SCALAR);
    H5Adelete(f, "split");
    hid_t t = utf8 ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_NATIVE_INT);
    if (utf8) {
        H5Tset_size(t, H5T_VARIABLE);
        H5Tset_cset(t, H5T_CSET_UTF8);
    }
    int one = 1;
    hid_t a = H5Acreate2(f, "split", t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, utf8 ? (const void *)&v : (const void *)&one);
    H5Aclose(a);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

static void test_split(const char *dir) {
    check_begin("a split attribute as h5py writes it (UTF-8, variable length) reads as written");
    char path[512], err[1024] = "";
    uint32_t tok[16] = {0};
    uint64_t len = 16;
    ShardMeta meta = {256, -1, -1, "test", "src", "train", "generated"};
    snprintf(path, sizeof path, "%s/split.h5", dir);
    bool ok = shard_write_collective(MPI_COMM_SELF, path, &meta, tok, 16, &len, 1, err, sizeof err);
    CHECK(ok, "writing the test shard: %s", err);
    set_split(path, "val", true);
    Shard s;
    ok = ok && shard_open(path, &s, err, sizeof err);
    CHECK(ok && strcmp(s.info.split, "val") == 0, "split read as '%s' (%s)", ok ? s.info.split : "",
          err);
    if (ok) shard_close(&s);
    set_split(path, NULL, false);
    expect_refused(path, "its 'split' attribute cannot be read as a string", "an integer split");
    check_end();
}

// Replaces attribute name by an array of n values (int64 or, with str,
// fixed-length strings of 64 bytes): what a hand-made file may hold.
static void set_array(const char *path, const char *name, int n, bool str) {
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hsize_t dims[1] = {(hsize_t)n};
    hid_t sp = H5Screate_simple(1, dims, NULL);
    hid_t t = str ? H5Tcopy(H5T_C_S1) : H5Tcopy(H5T_NATIVE_INT64);
    if (str) H5Tset_size(t, 64);
    char *v = calloc((size_t)n, 64);
    for (int i = 0; i < n; i++) {
        if (str) snprintf(v + 64 * i, 64, "train");
        else ((int64_t *)v)[i] = 256 + i;
    }
    H5Adelete(f, name);
    hid_t a = H5Acreate2(f, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    free(v);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(f);
}

// An attribute holding an array where one value belongs (a damaged or
// hand-made shard) is refused by name; it used to be read whole into room
// for one value, overwriting memory.
static void test_arrays(const char *dir) {
    check_begin("shard attributes holding arrays (vocab_size, eos_id, split) are refused by name");
    const char *names[3] = {"vocab_size", "eos_id", "split"};
    const char *want[3] = {"not a single integer", "'eos_id' attribute is not a single integer",
                           "'split' attribute cannot be read as a string"};
    for (int k = 0; k < 3; k++) {
        char path[512], name[32];
        snprintf(name, sizeof name, "array%d.h5", k);
        if (!write_test_shard(dir, name, path, sizeof path)) continue;
        set_array(path, names[k], k == 2 ? 900 : 4000, k == 2);   // < 64 KiB: an attribute's limit
        expect_refused(path, want[k], names[k]);
    }
    check_end();
}

// A float where an integer belongs is refused, not rounded (255.5 read as 255).
static void test_float_vocab(const char *dir) {
    check_begin("a shard whose vocab_size is a float (255.5) is refused, not rounded");
    char path[512];
    if (write_test_shard(dir, "float.h5", path, sizeof path)) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT), sp = H5Screate(H5S_SCALAR);
        H5Adelete(f, "vocab_size");
        double v = 255.5;
        hid_t a = H5Acreate2(f, "vocab_size", H5T_NATIVE_DOUBLE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_DOUBLE, &v);
        H5Aclose(a);
        H5Sclose(sp);
        H5Fclose(f);
        expect_refused(path, "not a single integer", "a float vocab_size");
    }
    check_end();
}

// /tokens of 16 × 1 ids (a hand-made file): refused before any read, which
// selects one dimension (it read past its own arguments into HDF5).
static void test_tokens_2d(const char *dir) {
    check_begin("a shard whose /tokens is two-dimensional is refused as such");
    char path[512];
    if (write_test_shard(dir, "twod.h5", path, sizeof path)) {
        hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
        H5Ldelete(f, "tokens", H5P_DEFAULT);
        H5Ldelete(f, "token_sha256", H5P_DEFAULT);
        hsize_t dims[2] = {16, 1};
        uint32_t tok[16] = {0};
        hid_t sp = H5Screate_simple(2, dims, NULL);
        hid_t d = H5Dcreate2(f, "tokens", H5T_NATIVE_UINT32, sp, H5P_DEFAULT, H5P_DEFAULT,
                             H5P_DEFAULT);
        H5Dwrite(d, H5T_NATIVE_UINT32, H5S_ALL, H5S_ALL, H5P_DEFAULT, tok);
        H5Dclose(d);
        H5Sclose(sp);
        H5Fclose(f);
        expect_refused(path, "/tokens is not a one-dimensional dataset", "a 2-D /tokens");
    }
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    char dir[256], cmd[300];
    snprintf(dir, sizeof dir, "/tmp/llama-test-shard-attrs.%d", (int)getpid());
    mkdir(dir, 0755);
    test_vocab(dir, 0);
    test_vocab(dir, -3);
    test_split(dir);
    test_arrays(dir);
    test_float_vocab(dir);
    test_tokens_2d(dir);
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    comm_world_end();
    return check_exit_code();
}
