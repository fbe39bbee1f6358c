// Token shards against damage: every token read is checked against its
// block's SHA-256 (a changed token is found where it is read and by
// shard_verify, untouched blocks still read); the checksum table must fit its
// root; token ids must be integers (float /tokens refused); the split
// attribute is read whether h5py wrote it as a variable-length string or we
// wrote it fixed-length, and an unknown split is refused; a shard written
// before the checksums existed is read unchecked.  Files are made here with
// the HDF5 API, the way another tool would.  Attributes that would size an
// allocation or overflow (token_block, n_documents; found by make fuzz) are
// refused at open.
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

#define K SHARD_TOKEN_BLOCK
#define N_TOKENS (3 * K + 100)   // three whole blocks and a short one

static char dir[256];

static void path_of(char *out, size_t len, const char *name) { snprintf(out, len, "%s/%s", dir, name); }

// Token i is (7 i + 3) mod 50000, through shard_write_collective.
static void write_good(const char *name) {
    uint32_t *tok = malloc(N_TOKENS * sizeof *tok);
    for (int64_t i = 0; i < N_TOKENS; i++) tok[i] = (uint32_t)((7 * i + 3) % 50000);
    uint64_t len = N_TOKENS;
    ShardMeta meta = {50000, -1, -1, "test", "src", "train", "generated"};
    char path[512], err[512];
    path_of(path, sizeof path, name);
    if (!shard_write_collective(MPI_COMM_SELF, path, &meta, tok, N_TOKENS, &len, 1, err, sizeof err)) {
        printf("FAIL writing a test shard: %s\n", err);
        exit(1);
    }
    free(tok);
}

// Overwrites token `at` of a shard with `value` (the checksums are left alone).
static void poke_token(const char *name, int64_t at, uint32_t value) {
    char path[512];
    path_of(path, sizeof path, name);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "tokens", H5P_DEFAULT), fs = H5Dget_space(d);
    hsize_t off = (hsize_t)at, one = 1;
    hid_t ms = H5Screate_simple(1, &one, NULL);
    H5Sselect_hyperslab(fs, H5S_SELECT_SET, &off, NULL, &one, NULL);
    if (H5Dwrite(d, H5T_NATIVE_UINT32, ms, fs, H5P_DEFAULT, &value) < 0) printf("FAIL poke\n");
    H5Sclose(ms), H5Sclose(fs), H5Dclose(d), H5Fclose(f);
}

static bool open_shard(const char *name, Shard *s, char *err, int len) {
    char path[512];
    path_of(path, sizeof path, name);
    return shard_open(path, s, err, len);
}

static void test_checksums(void) {
    check_begin("shard token checksums: a table of 4 blocks, every block verifies, reads across blocks");
    write_good("good.h5");
    Shard s;
    char err[1024] = "";
    CHECK(open_shard("good.h5", &s, err, sizeof err), "open: %s", err);
    CHECK(s.info.token_block == K && strlen(s.info.token_sha256_root) == 64,
          "token_block %lld, root '%s'", (long long)s.info.token_block, s.info.token_sha256_root);
    int64_t checked = 0;
    CHECK(shard_verify(&s, 0, 1, &checked, err, sizeof err) && checked == 4,
          "verify: %s (%lld blocks)", err, (long long)checked);
    int32_t w[300];
    CHECK(shard_read_tokens(&s, K - 150, 300, w, err, sizeof err), "read: %s", err);
    for (int i = 0; i < 300; i++)
        CHECK(w[i] == (int32_t)((7 * (K - 150 + i) + 3) % 50000), "token %d is %d", K - 150 + i, w[i]);
    CHECK(shard_read_tokens(&s, N_TOKENS - 50, 50, w, err, sizeof err), "read the tail: %s", err);
    shard_close(&s);
    check_end();
}

static void test_corrupt_token(void) {
    check_begin("a changed token: its block fails where read and in verify, other blocks read");
    write_good("bad.h5");
    poke_token("bad.h5", 2 * K + 17, 12345);   // in block 2, value still in range
    Shard s;
    char err[1024] = "";
    CHECK(open_shard("bad.h5", &s, err, sizeof err), "open: %s", err);
    int32_t w[64];
    CHECK(shard_read_tokens(&s, 10, 64, w, err, sizeof err), "block 0 should read: %s", err);
    err[0] = 0;
    CHECK(!shard_read_tokens(&s, 2 * K + 5, 64, w, err, sizeof err), "the damaged block read");
    CHECK(strstr(err, "(block 2)") && strstr(err, "SHA-256"), "message: %s", err);
    int64_t checked = 0;
    CHECK(!shard_verify(&s, 0, 1, &checked, err, sizeof err) && checked == 2,
          "verify passed or stopped elsewhere (%lld blocks checked): %s", (long long)checked, err);
    CHECK(shard_verify(&s, 1, 2, &checked, err, sizeof err) && checked == 2,
          "verify of the odd blocks: %s", err);
    shard_close(&s);
    check_end();
}

// Makes a shard with the HDF5 API: tokens of `type` (0..n-1), a string split
// attribute (variable-length when vlen), no checksum table.
static void write_raw(const char *name, hid_t type, const char *split, bool vlen) {
    char path[512];
    path_of(path, sizeof path, name);
    hid_t f = H5Fcreate(path, H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
    hsize_t n = 600, n_off = 2;
    double *v = malloc(n * sizeof *v);
    for (hsize_t i = 0; i < n; i++) v[i] = (double)i + (H5Tget_class(type) == H5T_FLOAT ? 0.7 : 0);
    hid_t sp = H5Screate_simple(1, &n, NULL), d = H5Dcreate2(f, "tokens", type, sp, H5P_DEFAULT,
                                                              H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
    H5Dclose(d), H5Sclose(sp);
    uint64_t off[2] = {0, n};
    sp = H5Screate_simple(1, &n_off, NULL);
    d = H5Dcreate2(f, "doc_offsets", H5T_STD_U64LE, sp, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    H5Dwrite(d, H5T_NATIVE_UINT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, off);
    H5Dclose(d), H5Sclose(sp);
    const char *names[] = {"vocab_size", "n_tokens", "n_documents"};
    int64_t vals[] = {1000, (int64_t)n, 1};
    for (int i = 0; i < 3; i++) {
        sp = H5Screate(H5S_SCALAR);
        hid_t a = H5Acreate2(f, names[i], H5T_STD_I64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_INT64, &vals[i]);
        H5Aclose(a), H5Sclose(sp);
    }
    hid_t st = H5Tcopy(H5T_C_S1);
    H5Tset_size(st, vlen ? H5T_VARIABLE : strlen(split) + 1);
    sp = H5Screate(H5S_SCALAR);
    hid_t a = H5Acreate2(f, "split", st, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, st, vlen ? (const void *)&split : (const void *)split);
    H5Aclose(a), H5Sclose(sp), H5Tclose(st), H5Fclose(f);
    free(v);
}

static void test_raw_shards(void) {
    check_begin("h5py-style shards: vlen split 'val' read as val, float tokens and an unknown split refused, no checksums read unchecked");
    Shard s;
    char err[1024] = "";
    write_raw("vlen.h5", H5T_STD_U16LE, "val", true);
    CHECK(open_shard("vlen.h5", &s, err, sizeof err), "open: %s", err);
    CHECK(strcmp(s.info.split, "val") == 0, "split read as '%s'", s.info.split);
    CHECK(s.sums < 0 && s.info.token_block == 0, "a table where there is none");
    int32_t w[10];
    CHECK(shard_read_tokens(&s, 590, 10, w, err, sizeof err) && w[9] == 599, "unchecked read: %s", err);
    int64_t checked;
    CHECK(!shard_verify(&s, 0, 1, &checked, err, sizeof err) && strstr(err, "no token checksums"),
          "verify of a shard without checksums: %s", err);
    shard_close(&s);
    write_raw("float.h5", H5T_IEEE_F32LE, "train", false);
    err[0] = 0;
    CHECK(!open_shard("float.h5", &s, err, sizeof err) && strstr(err, "floating-point"),
          "float tokens: %s", err);
    write_raw("wide.h5", H5T_STD_I64LE, "train", false);
    err[0] = 0;
    CHECK(!open_shard("wide.h5", &s, err, sizeof err) && strstr(err, "8-byte integer"),
          "int64 tokens: %s", err);
    write_raw("split.h5", H5T_STD_U16LE, "validation", false);
    err[0] = 0;
    CHECK(!open_shard("split.h5", &s, err, sizeof err) && strstr(err, "'validation'"),
          "unknown split: %s", err);
    check_end();
}

// A table whose root no longer matches it (an attribute rewritten).
static void test_root(void) {
    check_begin("a checksum table that does not match token_sha256_root is refused by verify");
    write_good("root.h5");
    char path[512];
    path_of(path, sizeof path, "root.h5");
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t d = H5Dopen2(f, "token_sha256", H5P_DEFAULT);
    unsigned char row[4 * 32];
    H5Dread(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, row);
    row[40] ^= 1;   // block 1's hash
    H5Dwrite(d, H5T_NATIVE_UINT8, H5S_ALL, H5S_ALL, H5P_DEFAULT, row);
    H5Dclose(d), H5Fclose(f);
    Shard s;
    char err[1024] = "";
    int64_t checked;
    CHECK(open_shard("root.h5", &s, err, sizeof err), "open: %s", err);
    CHECK(!shard_verify(&s, 0, 1, &checked, err, sizeof err) && strstr(err, "token_sha256_root"),
          "verify: %s", err);
    shard_close(&s);
    check_end();
}

// Rewrites an int64 attribute of a shard.
static void set_attr(const char *name, const char *attr, int64_t v) {
    char path[512];
    path_of(path, sizeof path, name);
    hid_t f = H5Fopen(path, H5F_ACC_RDWR, H5P_DEFAULT);
    hid_t a = H5Aopen(f, attr, H5P_DEFAULT);
    if (H5Awrite(a, H5T_NATIVE_INT64, &v) < 0) printf("FAIL set_attr %s\n", attr);
    H5Aclose(a), H5Fclose(f);
}

// Attributes that would size an allocation or overflow (found by make fuzz).
static void test_bad_sizes(void) {
    check_begin("a damaged token_block (2^40, INT64_MAX) or n_documents (INT64_MAX) is refused at open");
    const int64_t blocks[] = {(int64_t)1 << 40, INT64_MAX};
    Shard s;
    char err[1024];
    for (int k = 0; k < 2; k++) {
        write_good("block.h5");
        set_attr("block.h5", "token_block", blocks[k]);
        err[0] = 0;
        CHECK(!open_shard("block.h5", &s, err, sizeof err) && strstr(err, "does not fit"),
              "token_block %lld: %s", (long long)blocks[k], err);
    }
    write_good("docs.h5");
    set_attr("docs.h5", "n_documents", INT64_MAX);
    err[0] = 0;
    CHECK(!open_shard("docs.h5", &s, err, sizeof err) && strstr(err, "/doc_offsets holds 2 entries"),
          "n_documents INT64_MAX: %s", err);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    H5Eset_auto2(H5E_DEFAULT, NULL, NULL);
    snprintf(dir, sizeof dir, "/tmp/llama-test-shards.%d", (int)getpid());
    mkdir(dir, 0755);
    test_checksums();
    test_corrupt_token();
    test_raw_shards();
    test_root();
    test_bad_sizes();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) printf("could not remove %s\n", dir);
    comm_world_end();
    return check_exit_code();
}
