// Bad checkpoints never start a run: a truncated file, a tensor of the wrong
// shape, a flipped byte in a tensor, a checkpoint of another model, a missing
// path, a patched step, loader position or option (issue 11, case 6), a folder
// named for another step, an unknown format (refused naming its version and
// the ones this build reads); format-1, -2 and -3 checkpoints still load,
// format 2's 65-value loader position decoded (`--as-format2 DIR` and
// `--as-format3 DIR` rewrite a checkpoint the way those formats stored it,
// for validation/test_checkpoint.sh); format 4's names of the sources guarded
// by the digest.
// A good checkpoint is saved here, copies are damaged with the HDF5 library,
// and llama-train --load must refuse each with a clear message.  Non-finite
// weights (case 11): llama-ckpt compare, info and llama-train --load report
// them and fail, and a model with NaN weights is never saved.  RoPE scaling
// is stored, shown, compared on resume and digested; without it, plain RoPE.
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "hdf5/ckpt_file.h"
#include "hdf5/shards.h"
#include "train/loader.h"
#include "train/train.h"
#include "train/model_file.h"

static char dir[200], train_bin[512], ckpt_bin[512], self_bin[512];

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) printf("note: '%s' failed\n", cmd);
}

// Runs cmd; its output (stdout and stderr) in out; returns the exit status.
static int run(const char *cmd, char *out, size_t len) {
    char full[2200];
    snprintf(full, sizeof full, "%s 2>&1", cmd);
    FILE *p = popen(full, "r");
    size_t n = fread(out, 1, len - 1, p);
    out[n] = 0;
    return pclose(p);
}

// Runs llama-train --load CKPT and checks it fails with a message containing want.
static void expect_refused(const char *name, const char *ckpt, const char *config, const char *want) {
    check_begin(name);
    char cmd[2048], out[8192] = "";
    snprintf(cmd, sizeof cmd, "%s --bench -c %s -l 8 --steps 1 --load %s", train_bin, config, ckpt);
    int status = run(cmd, out, sizeof out);
    CHECK(status != 0, "llama-train accepted it (exit 0)");
    CHECK(strstr(out, want) != NULL, "message '%s' lacks '%s'", out, want);
    CHECK(strstr(out, "step 1/") == NULL, "training started");
    check_end();
}

static void copy_ckpt(const char *name, char *path, size_t len) {
    snprintf(path, len, "%s/%s", dir, name);
    sh("cp -r %s/good/step_0000000 %s", dir, path);
}

static void wrong_shape(const char *ckpt) {
    char f[700];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    hid_t file = H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
    H5Ldelete(file, "/adam_m/model.norm.weight", H5P_DEFAULT);
    hsize_t dims[2] = {32, 1};
    hid_t sp = H5Screate_simple(2, dims, NULL);
    hid_t d = H5Dcreate2(file, "/adam_m/model.norm.weight", H5T_IEEE_F32LE, sp, H5P_DEFAULT,
                         H5P_DEFAULT, H5P_DEFAULT);
    H5Dclose(d);
    H5Sclose(sp);
    H5Fclose(file);
}

static void flip_byte(const char *ckpt) {
    char f[700];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    hid_t file = H5Fopen(f, H5F_ACC_RDONLY, H5P_DEFAULT);
    hid_t d = H5Dopen2(file, "/master/model.layers.1.mlp.up_proj.weight", H5P_DEFAULT);
    haddr_t off = H5Dget_offset(d);
    H5Dclose(d);
    H5Fclose(file);
    FILE *fp = fopen(f, "r+b");
    fseek(fp, (long)off + 1000, SEEK_SET);
    int c = fgetc(fp);
    fseek(fp, (long)off + 1000, SEEK_SET);
    fputc(c ^ 0x10, fp);
    fclose(fp);
}

// ---- patching attributes (what a hand edit or a bad copy does) ----

static hid_t open_rw(const char *ckpt) {
    char f[700];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    return H5Fopen(f, H5F_ACC_RDWR, H5P_DEFAULT);
}

// Adds delta to element i of the int64 attribute name on "/".
static void patch_i64(const char *ckpt, const char *name, int i, int64_t delta) {
    hid_t file = open_rw(ckpt), a = H5Aopen(file, name, H5P_DEFAULT), sp = H5Aget_space(a);
    int64_t v[256] = {0};
    if (H5Sget_simple_extent_npoints(sp) <= 256 && H5Aread(a, H5T_NATIVE_INT64, v) >= 0) {
        v[i] += delta;
        H5Awrite(a, H5T_NATIVE_INT64, v);
    }
    H5Sclose(sp);
    H5Aclose(a);
    H5Fclose(file);
}

// Replaces (or with v NULL removes) the string attribute name on "/".
static void patch_str(const char *ckpt, const char *name, const char *v) {
    hid_t file = open_rw(ckpt);
    if (H5Aexists(file, name) > 0) H5Adelete(file, name);
    if (v) {
        hid_t t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
        H5Tset_size(t, strlen(v) + 1);
        hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
        H5Awrite(a, t, v);
        H5Aclose(a);
        H5Sclose(sp);
        H5Tclose(t);
    }
    H5Fclose(file);
}

// Rewrites the string attribute name on "/" as h5py writes strings
// (variable-length UTF-8), its value unchanged.
static void make_variable_str(const char *ckpt, const char *name) {
    char f[700], err[256];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    CkptFile *c = ckpt_file_open(f, err, sizeof err);
    char *v = c ? ckpt_file_get_str(c, name) : NULL;
    ckpt_file_close(c);
    if (!v) return;
    hid_t file = open_rw(ckpt), t = H5Tcopy(H5T_C_S1), sp = H5Screate(H5S_SCALAR);
    H5Tset_size(t, H5T_VARIABLE);
    H5Tset_cset(t, H5T_CSET_UTF8);
    H5Adelete(file, name);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, &v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Tclose(t);
    H5Fclose(file);
    free(v);
}

// Appends text to the "options" attribute.
static void patch_options(const char *ckpt, const char *text) {
    char f[700];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    char err[256];
    CkptFile *c = ckpt_file_open(f, err, sizeof err);
    char *old = c ? ckpt_file_get_str(c, "options") : NULL;
    ckpt_file_close(c);
    char *v = malloc((old ? strlen(old) : 0) + strlen(text) + 1);
    sprintf(v, "%s%s", old ? old : "", text);
    patch_str(ckpt, "options", v);
    free(v);
    free(old);
}

// A format-1 checkpoint (what the previous version wrote): no digest.
static void make_format1(const char *ckpt) {
    patch_str(ckpt, "state_sha256", NULL);
    patch_str(ckpt, "format", "llama-hpc checkpoint 1");
}

// Replaces the string attribute name on "/" by an array of n 65-byte strings
// (a hand-made file): it used to be read whole into room for one.
static void put_str_array(const char *ckpt, const char *name, int n) {
    hid_t file = open_rw(ckpt);
    if (H5Aexists(file, name) > 0) H5Adelete(file, name);
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL), t = H5Tcopy(H5T_C_S1);
    H5Tset_size(t, 65);
    char *v = calloc((size_t)n, 65);
    for (int i = 0; i < n; i++) memset(v + 65 * i, 'a', 64);
    hid_t a = H5Acreate2(file, name, t, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, t, v);
    H5Aclose(a);
    free(v);
    H5Tclose(t);
    H5Sclose(sp);
    H5Fclose(file);
}

// ---- formats 2 and 3, as the versions before wrote them ----

// Replaces the attribute name on "/" by n values v of memory type mem,
// stored as type stored.
static void put_values(const char *ckpt, const char *name, hid_t stored, hid_t mem, const void *v,
                       int n) {
    hid_t file = open_rw(ckpt);
    if (H5Aexists(file, name) > 0) H5Adelete(file, name);
    hsize_t dims = (hsize_t)n;
    hid_t sp = H5Screate_simple(1, &dims, NULL);
    hid_t a = H5Acreate2(file, name, stored, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, mem, v);
    H5Aclose(a);
    H5Sclose(sp);
    H5Fclose(file);
}

static void put_i64(const char *ckpt, const char *name, const int64_t *v, int n) {
    put_values(ckpt, name, H5T_STD_I64LE, H5T_NATIVE_INT64, v, n);
}

static void sha_str(EVP_MD_CTX *c, const char *key, const char *v) {
    char head[128];
    int n = snprintf(head, sizeof head, "%s %zu:", key, strlen(v ? v : ""));
    EVP_DigestUpdate(c, head, (size_t)n);
    EVP_DigestUpdate(c, v ? v : "", strlen(v ? v : ""));
    EVP_DigestUpdate(c, "\n", 1);
}

static void sha_i64(EVP_MD_CTX *c, CkptFile *f, const char *key, int n) {
    int64_t v[65] = {0};
    if (n > 65) n = 65;   // no test checkpoint holds more
    char line[64];
    ckpt_file_get_i64(f, key, v, n);
    EVP_DigestUpdate(c, key, strlen(key));
    for (int i = 0; i < n; i++)
        EVP_DigestUpdate(c, line, (size_t)snprintf(line, sizeof line, " %lld", (long long)v[i]));
    EVP_DigestUpdate(c, "\n", 1);
}

// Format 2's or 3's state_sha256 of a checkpoint file of an untied model
// without RoPE scaling (an independent copy of the definition: the
// attributes, then every dataset's checksum); the loader position holds
// n_loader values (format 2: 65).
static void legacy_digest(CkptFile *f, int n_loader, char out[65]) {
    EVP_MD_CTX *c = EVP_MD_CTX_new();
    EVP_DigestInit_ex(c, EVP_sha256(), NULL);
    char *s = ckpt_file_get_str(f, "format");
    sha_str(c, "format", s);
    free(s);
    sha_i64(c, f, "step", 1);
    sha_i64(c, f, "optimizer_step", 1);
    sha_i64(c, f, "seed", 1);
    sha_i64(c, f, "loader", n_loader);
    sha_i64(c, f, "model_shape", 7);
    sha_i64(c, f, "layout", 4);
    double rope = 0, eps = 0;
    ckpt_file_get_f64(f, "rope_theta", &rope);
    ckpt_file_get_f64(f, "norm_eps", &eps);
    char line[512];
    EVP_DigestUpdate(c, line, (size_t)snprintf(line, sizeof line, "rope_theta %a\nnorm_eps %a\n", rope, eps));
    const char *names[3] = {"model_name", "options", "tokenizer_sha256"};
    for (int i = 0; i < 3; i++) {
        s = ckpt_file_get_str(f, names[i]);
        sha_str(c, names[i], s);
        free(s);
    }
    int64_t shape[7] = {0};
    ckpt_file_get_i64(f, "model_shape", shape, 7);
    ModelConfig cfg = {.dim = (int)shape[0], .n_layers = (int)shape[1], .n_heads = (int)shape[2],
                       .n_kv_heads = (int)shape[3], .ffn_dim = (int)shape[4],
                       .vocab_size = (int)shape[5], .max_seq_len = (int)shape[6]};
    ParamTable g;
    params_build_global(&g, &cfg);
    const char *groups[3] = {"master", "adam_m", "adam_v"};
    for (int i = 0; i < g.n; i++)
        for (int k = 0; k < 3; k++) {
            uint64_t sum = 0;
            ckpt_file_get_u64_on(f, groups[k], g.t[i].name, "checksum", &sum);
            EVP_DigestUpdate(c, line, (size_t)snprintf(line, sizeof line, "checksum %s/%s %016llx\n",
                                                       groups[k], g.t[i].name, (unsigned long long)sum));
        }
    params_free(&g);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    EVP_DigestFinal_ex(c, md, &n);
    EVP_MD_CTX_free(c);
    for (unsigned i = 0; i < 32; i++) sprintf(out + 2 * i, "%02x", md[i]);
}

// Rewrites a checkpoint the way format 2 stored it: the loader position as 65
// values (consumed, then 64 per-source counts: the saved ones, or with
// loader given those), format 2's name and digest.  False when the file
// cannot be read.
static bool make_format2(const char *ckpt, const int64_t *loader) {
    char f[700], err[512], digest[65];
    int64_t v[65] = {0};
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    CkptFile *c = ckpt_file_open(f, err, sizeof err);
    int n = c ? ckpt_file_attr_len(c, "loader") : -1;
    bool ok = n >= 1 && n <= 65 && ckpt_file_get_i64(c, "loader", v, n);
    ckpt_file_close(c);
    if (!ok) return false;
    if (loader) memcpy(v, loader, sizeof v);
    put_i64(ckpt, "loader", v, 65);
    patch_str(ckpt, "format", "llama-hpc checkpoint 2");
    c = ckpt_file_open(f, err, sizeof err);
    if (!c) return false;
    legacy_digest(c, 65, digest);
    ckpt_file_close(c);
    patch_str(ckpt, "state_sha256", digest);
    return true;
}

// Rewrites a checkpoint the way format 3 stored it: no names of the loader
// position's counts, format 3's name and digest.  False when the file cannot
// be read.
static bool make_format3(const char *ckpt) {
    char f[700], err[512], digest[65];
    snprintf(f, sizeof f, "%s/checkpoint.h5", ckpt);
    patch_str(ckpt, "loader_data", NULL);
    patch_str(ckpt, "format", "llama-hpc checkpoint 3");
    CkptFile *c = ckpt_file_open(f, err, sizeof err);
    if (!c) return false;
    legacy_digest(c, ckpt_file_attr_len(c, "loader"), digest);
    ckpt_file_close(c);
    patch_str(ckpt, "state_sha256", digest);
    return true;
}

// Every master weight NaN, with checksums that match (a diverged run's save
// by the previous version, which checked nothing).
static void fill_nan(const char *ckpt) {
    hid_t file = open_rw(ckpt), g = H5Gopen2(file, "master", H5P_DEFAULT);
    H5G_info_t gi;
    H5Gget_info(g, &gi);
    for (hsize_t i = 0; i < gi.nlinks; i++) {
        char name[256];
        H5Lget_name_by_idx(g, ".", H5_INDEX_NAME, H5_ITER_INC, i, name, sizeof name, H5P_DEFAULT);
        hid_t d = H5Dopen2(g, name, H5P_DEFAULT), sp = H5Dget_space(d);
        hsize_t dims[2];
        H5Sget_simple_extent_dims(sp, dims, NULL);
        float *v = malloc(dims[0] * dims[1] * sizeof(float));
        for (hsize_t k = 0; k < dims[0] * dims[1]; k++) v[k] = NAN;
        H5Dwrite(d, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, v);
        Slab all = {0, (int64_t)dims[0], 0, (int64_t)dims[1]};
        uint64_t sum = ckpt_file_checksum((int64_t)dims[1], &all, 1, v);
        hid_t a = H5Aopen(d, "checksum", H5P_DEFAULT);
        H5Awrite(a, H5T_NATIVE_UINT64, &sum);
        H5Aclose(a);
        free(v);
        H5Sclose(sp);
        H5Dclose(d);
    }
    H5Gclose(g);
    H5Fclose(file);
}

// ---- the cases ----

static void attribute_cases(void) {
    char path[600], cmd[2048], out[8192];
    copy_ckpt("step", path, sizeof path);
    patch_i64(path, "step", 0, 1);
    expect_refused("patched step attribute: refused by its digest", path, "tiny",
                   "do not match their digest (state_sha256)");
    check_begin("patched step attribute: llama-ckpt info fails");
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, path);
    CHECK(run(cmd, out, sizeof out) != 0 && strstr(out, "do not match their digest"), "%s", out);
    check_end();
    copy_ckpt("loader", path, sizeof path);
    patch_i64(path, "loader", 0, 64);
    expect_refused("patched loader position: refused", path, "tiny", "do not match their digest");
    copy_ckpt("sources", path, sizeof path);
    patch_str(path, "loader_data", "[\"c4\"]");
    expect_refused("patched names of the data sources: refused", path, "tiny",
                   "do not match their digest");
    copy_ckpt("nosources", path, sizeof path);
    patch_str(path, "loader_data", NULL);
    expect_refused("format 4 without the names of the data sources: refused", path, "tiny",
                   "attribute 'loader_data' missing");
    copy_ckpt("options", path, sizeof path);
    patch_options(path, "lr = 1\n");
    expect_refused("patched options: refused", path, "tiny", "do not match their digest");
    char from[600];
    snprintf(from, sizeof from, "%s/good/step_0000000 %s/renamed/step_0000007", dir, dir);
    sh("mkdir -p %s/renamed && cp -r %s", dir, from);
    snprintf(path, sizeof path, "%s/renamed/step_0000007", dir);
    expect_refused("a folder named for another step: refused", path, "tiny",
                   "holds step 0 but its folder is named for step 7");
    copy_ckpt("future", path, sizeof path);
    patch_str(path, "format", "llama-hpc checkpoint 99");
    const char *future = "format 'llama-hpc checkpoint 99', which this build cannot read: that is "
                         "format version 99, and this build reads format versions 1, 2, 3 and 4";
    expect_refused("a future format (99): refused, naming its version and the ones read", path,
                   "tiny", future);
    check_begin("a future format (99): llama-ckpt info refuses it with the same message");
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, path);
    CHECK(run(cmd, out, sizeof out) != 0 && strstr(out, future), "%s", out);
    check_end();
    copy_ckpt("foreign", path, sizeof path);
    patch_str(path, "format", "some other program 3");
    expect_refused("a foreign format string: refused", path, "tiny",
                   "format 'some other program 3', which this build cannot read: that is no "
                   "llama-hpc format version, and this build reads format versions 1, 2, 3 and 4");

    check_begin("format-1 checkpoints still load (with a note)");
    copy_ckpt("v1", path, sizeof path);
    make_format1(path);
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s", train_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0, "refused: %s", out);
    CHECK(strstr(out, "is a format-1 checkpoint") && strstr(out, "loaded checkpoint"), "%s", out);
    check_end();
    copy_ckpt("relabel1", path, sizeof path);
    patch_str(path, "format", "llama-hpc checkpoint 1");   // the digest kept: a later format
    expect_refused("a later format relabelled as format 1 (digest kept): refused", path, "tiny",
                   "says format 1 but holds a digest (state_sha256)");
    copy_ckpt("v1neg", path, sizeof path);
    make_format1(path);
    patch_i64(path, "step", 0, -5);
    expect_refused("format 1 with a negative step: refused", path, "tiny",
                   "holds step -5 and optimizer step -5: impossible counts");
    check_begin("llama-ckpt info: a negative data position (format 1, no digest) fails, as --load");
    copy_ckpt("v1loader", path, sizeof path);
    make_format1(path);
    patch_i64(path, "loader", 0, -1000);
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, path);
    CHECK(run(cmd, out, sizeof out) != 0 && strstr(out, "negative count") &&
          strstr(out, "--load refuses it"), "%s", out);
    check_end();
    copy_ckpt("v1float", path, sizeof path);
    make_format1(path);
    double step = 3.7;
    put_values(path, "step", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &step, 1);
    expect_refused("format 1 with a float step (3.7): refused, not rounded", path, "tiny",
                   "attribute 'step' missing or malformed");
    copy_ckpt("v1wide", path, sizeof path);
    make_format1(path);
    int64_t shape[7] = {64 + (1LL << 32), 4, 8, 4, 192, 256, 256};
    put_i64(path, "model_shape", shape, 7);
    expect_refused("format 1 with a dim of 2^32 + 64: refused, not read as 64", path, "tiny",
                   "impossible model shape");
    copy_ckpt("v1inf", path, sizeof path);
    make_format1(path);
    double theta = INFINITY;
    put_values(path, "rope_theta", H5T_IEEE_F64LE, H5T_NATIVE_DOUBLE, &theta, 1);
    expect_refused("format 1 with rope_theta inf: refused as an impossible model", path, "tiny",
                   "rope_theta and norm_eps finite");
    check_begin("string attributes as h5py writes them (variable-length UTF-8) read as written");
    copy_ckpt("vlstr", path, sizeof path);
    make_variable_str(path, "format");
    make_variable_str(path, "options");
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "(format 4)"), "llama-ckpt info: %s", out);
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s", train_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "loaded checkpoint"), "--load: %s", out);
    check_end();
    copy_ckpt("strarray", path, sizeof path);
    put_str_array(path, "tokenizer_sha256", 900);
    expect_refused("a string attribute holding 900 strings: refused as malformed", path, "tiny",
                   "is not a complete llama-hpc checkpoint (attribute 'tokenizer_sha256' missing or "
                   "malformed)");
    snprintf(from, sizeof from, "%s/good/step_0000000 %s/v1step/step_0000000", dir, dir);
    sh("mkdir -p %s/v1step && cp -r %s", dir, from);
    snprintf(path, sizeof path, "%s/v1step/step_0000000", dir);
    make_format1(path);
    patch_i64(path, "step", 0, 5);
    expect_refused("format 1 with a patched step: refused by its folder name", path, "tiny",
                   "holds step 5 but its folder is named for step 0");
}

// The format-2 copy at ckpt loads through the explicit parts (no trainer's
// help but its model): its 65-value loader position comes back as stored.
static void check_format2_position(const char *ckpt, const int64_t *want) {
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    ModelConfig cfg;
    char err[512];
    config_load("tiny", &cfg, err, sizeof err);
    Trainer *t = trainer_create_bare(&ops_cpu, &o, &cfg);
    CheckpointRun r = {.grid = &t->grid};
    CheckpointParts p = {.ops = t->model->ops, .cfg = &t->cfg, .table = &t->model->table, .weights = t->model->params,
                         .seed = o.seed};
    checkpoint_load(&r, &p, ckpt);   // ends the job when it cannot
    CHECK(p.pos.step == 0 && p.pos.loader_len == 65, "step %lld, %d loader values",
          (long long)p.pos.step, p.pos.loader_len);
    for (int i = 0; i < 65 && p.pos.loader_len == 65; i++)
        CHECK(p.pos.loader[i] == want[i], "loader value %d: %lld, saved %lld", i,
              (long long)p.pos.loader[i], (long long)want[i]);
    LoaderState st = {0};
    CHECK(loader_state_decode(p.pos.loader, p.pos.loader_len, &st, err, sizeof err), "%s", err);
    CHECK(st.consumed == 24 && st.n_sources == 64 && st.source_consumed[0] == 5 &&
          st.source_consumed[2] == 12 && st.source_consumed[63] == 0, "decoded: %llu drawn",
          (unsigned long long)st.consumed);
    loader_state_free(&st);
    checkpoint_position_free(&p.pos);
    trainer_free(t);
}

// Format 2 (the loader position as 65 values) still loads, and its digest
// still guards it.
static void format2_cases(void) {
    char path[600], cmd[2048], out[8192];
    int64_t loader[65] = {24, 5, 7, 12};
    check_begin("format-2 checkpoints still load, their 65-value loader position decoded");
    copy_ckpt("v2", path, sizeof path);
    CHECK(make_format2(path, loader), "could not rewrite %s as format 2", path);
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "(format 2)") &&
          strstr(out, "and the attributes their digest"), "llama-ckpt info: %s", out);
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s", train_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "loaded checkpoint"), "refused: %s", out);
    check_format2_position(path, loader);
    check_end();
    copy_ckpt("v2loader", path, sizeof path);
    make_format2(path, loader);
    patch_i64(path, "loader", 3, 1);
    expect_refused("format 2 with a patched loader position: refused by its digest", path, "tiny",
                   "do not match their digest (state_sha256)");
}

// ---- RoPE scaling ----

// A step-0 checkpoint of cfg in dir/name (a bare trainer, as "good").
static void save_bare(const ModelConfig *cfg, const char *name) {
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    snprintf(o.save_dir, sizeof o.save_dir, "%s/%s", dir, name);
    Trainer *t = trainer_create_bare(&ops_cpu, &o, cfg);
    trainer_checkpoint_save(t);
    trainer_free(t);
}

// The tiny shape with llama3 RoPE scaling: a model file (its path in model)
// and its step-0 checkpoint (dir/scaled/step_0000000).
static bool make_scaled(char *model, size_t len) {
    snprintf(model, len, "%s/scaled.model", dir);
    FILE *f = fopen(model, "w");
    if (!f) return false;
    fprintf(f, "dim = 64\nn_layers = 4\nn_heads = 8\nn_kv_heads = 4\nffn_dim = 192\n"
            "vocab_size = 256\nmax_seq_len = 256\nrope_theta = 10000\nnorm_eps = 1e-5\n"
            "rope_scaling = llama3\nrope_scaling_factor = 8\nrope_scaling_low_freq_factor = 1\n"
            "rope_scaling_high_freq_factor = 4\n"
            "rope_scaling_original_max_position_embeddings = 64\n");
    fclose(f);
    ModelConfig cfg;
    char err[512];
    bool ok = config_load(model, &cfg, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) save_bare(&cfg, "scaled");
    return ok;
}

#define SCALED "llama3 (factor 8, low_freq_factor 1, high_freq_factor 4, " \
               "original_max_position_embeddings 64)"

// RoPE scaling belongs to the model a checkpoint holds: stored, shown,
// compared on resume like rope_theta, guarded by the digest; a checkpoint
// from before it (no rope_scaling attributes) is plain RoPE.
static void rope_scaling_cases(void) {
    char model[600], scaled[600], path[600], cmd[2048], out[8192];
    check_begin("RoPE scaling: saved in the checkpoint, shown by info, resumed with its model");
    bool ok = make_scaled(model, sizeof model);
    snprintf(scaled, sizeof scaled, "%s/scaled/step_0000000", dir);
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, scaled);
    CHECK(ok && run(cmd, out, sizeof out) == 0 && strstr(out, "scaling " SCALED), "info: %s", out);
    snprintf(cmd, sizeof cmd, "%s --bench -c %s -l 8 --steps 1 --load %s", train_bin, model,
             scaled);
    CHECK(ok && run(cmd, out, sizeof out) == 0 && strstr(out, "loaded checkpoint"), "resumed: %s",
          out);
    snprintf(cmd, sizeof cmd, "%s --describe -c %s", train_bin, model);
    CHECK(ok && run(cmd, out, sizeof out) == 0 && strstr(out, "rope theta 10000, RoPE scaling "
          SCALED ", norm eps"), "--describe: %s", out);
    check_end();
    expect_refused("resuming a llama3-scaled checkpoint with plain RoPE: refused", scaled, "tiny",
                   "was trained with RoPE scaling " SCALED " but the model tiny has RoPE scaling "
                   "none: give the checkpoint's model (-c), or add --override-checkpoint-config");
    snprintf(path, sizeof path, "%s/good/step_0000000", dir);
    expect_refused("resuming a plain checkpoint with llama3 scaling: refused", path, model,
                   "was trained with RoPE scaling none but the model");
    check_begin("--override-checkpoint-config resumes with the model's RoPE scaling, and says so");
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s "
             "--override-checkpoint-config", train_bin, scaled);
    CHECK(run(cmd, out, sizeof out) == 0 &&
          strstr(out, "RoPE scaling " SCALED " of ") && strstr(out, "replaced by the model's none"),
          "%s", out);
    check_end();
    copy_ckpt("rope-old", path, sizeof path);
    patch_str(path, "rope_scaling", NULL);
    patch_str(path, "rope_scaling_params", NULL);   // removes it, whatever its type
    check_begin("a checkpoint from before RoPE scaling (no rope_scaling attribute) loads, plain");
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s", train_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "loaded checkpoint"), "refused: %s", out);
    check_end();
    snprintf(cmd, sizeof cmd, "cp -r %s %s/rope-patched", scaled, dir);
    sh("%s%s", cmd, "");
    snprintf(path, sizeof path, "%s/rope-patched", dir);
    double v[4] = {9, 1, 4, 64};
    hid_t file = open_rw(path), sp = H5Screate_simple(1, (hsize_t[]){4}, NULL);
    H5Adelete(file, "rope_scaling_params");
    hid_t a = H5Acreate2(file, "rope_scaling_params", H5T_IEEE_F64LE, sp, H5P_DEFAULT, H5P_DEFAULT);
    H5Awrite(a, H5T_NATIVE_DOUBLE, v);
    H5Aclose(a), H5Sclose(sp), H5Fclose(file);
    expect_refused("a patched RoPE scaling factor: refused by the digest", path, model,
                   "do not match their digest (state_sha256)");
}

static void nonfinite_cases(void) {
    char nan[600], good[600], cmd[2048], out[8192];
    copy_ckpt("nan", nan, sizeof nan);
    make_format1(nan);
    fill_nan(nan);
    snprintf(good, sizeof good, "%s/good/step_0000000", dir);
    check_begin("llama-ckpt compare: an all-NaN checkpoint against a good one fails, naming the NaNs");
    snprintf(cmd, sizeof cmd, "%s compare %s %s", ckpt_bin, nan, good);
    int status = run(cmd, out, sizeof out);
    CHECK(status != 0, "exit 0: %s", out);
    CHECK(strstr(out, "non-finite values") && strstr(out, nan), "no report of the NaNs: %s", out);
    snprintf(cmd, sizeof cmd, "%s compare %s %s", ckpt_bin, good, nan);
    CHECK(run(cmd, out, sizeof out) != 0 && strstr(out, "non-finite"), "reversed: %s", out);
    snprintf(cmd, sizeof cmd, "%s compare %s %s", ckpt_bin, good, good);
    CHECK(run(cmd, out, sizeof out) == 0, "a good checkpoint against itself fails: %s", out);
    check_end();
    check_begin("llama-ckpt info: reports non-finite weights and fails");
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, nan);
    status = run(cmd, out, sizeof out);
    CHECK(status != 0 && strstr(out, "non-finite values") && strstr(out, "master weights"), "%s", out);
    snprintf(cmd, sizeof cmd, "%s info %s", ckpt_bin, good);
    CHECK(run(cmd, out, sizeof out) == 0 && strstr(out, "finite: yes"), "the good one: %s", out);
    check_end();
    expect_refused("llama-train --load of a NaN checkpoint: refused", nan, "tiny",
                   "non-finite values (NaN or Inf; first in master/");

    check_begin("a model with NaN weights is never saved; the folder stays as it was");
    snprintf(cmd, sizeof cmd, "%s --save-nan %s/nansave", self_bin, dir);
    status = run(cmd, out, sizeof out);
    CHECK(status != 0, "the save succeeded: %s", out);
    CHECK(strstr(out, "non-finite values") && strstr(out, "never saved"), "message: %s", out);
    char p[700];
    snprintf(p, sizeof p, "%s/nansave/step_0000003", dir);
    CHECK(!ckpt_dir_exists(p), "step_0000003 was written");
    snprintf(p, sizeof p, "%s/nansave/step_0000003.tmp", dir);
    CHECK(!ckpt_dir_exists(p), "its temporary folder was left behind");
    check_end();
}

// A child run of this program: a bare trainer whose master weights are NaN
// saves step 3 into save_dir (and must fail).
static int save_nan(const char *save_dir) {
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    snprintf(o.save_dir, sizeof o.save_dir, "%s", save_dir);
    ModelConfig cfg;
    char err[512];
    config_load("tiny", &cfg, err, sizeof err);
    Trainer *t = trainer_create_bare(&ops_cpu, &o, &cfg);
    size_t n = t->optim->shard_len;
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    t->model->ops->to_device(t->optim->master, v, n * sizeof(float));
    free(v);
    t->step = 3;
    trainer_checkpoint_save(t);
    trainer_free(t);
    comm_world_end();
    return 0;
}

// --create-split DIR, under mpirun: rank r works in DIR/r, where only rank
// 0's holds the folder x (a folder not shared by the ranks).  Creating a
// checkpoint file and writing a shard in x must fail on every rank, naming
// rank 1, instead of leaving rank 0 waiting in the collective create.
static int create_split(const char *root) {
    int rank;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    char here[600], err[8192] = "", err2[8192] = "";
    snprintf(here, sizeof here, "%s/%d", root, rank);
    bool in = chdir(here) == 0;
    CkptFile *f = in ? ckpt_file_create(MPI_COMM_WORLD, "x/c.h5", err, sizeof err) : NULL;
    uint32_t tok[4] = {1, 2, 3, 4};
    uint64_t len = 4;
    ShardMeta meta = {256, -1, -1, "test", "s", "train", "generated"};
    bool wrote = in && shard_write_collective(MPI_COMM_WORLD, "x/s.h5", &meta, tok, 4, &len, 1,
                                              err2, sizeof err2);
    const char *want = "rank 1 of 2 cannot write in 'x' (No such file or directory)";
    bool ok = in && !f && !wrote && strstr(err, want) && strstr(err2, want);
    if (rank == 0)
        printf("%s a checkpoint file and a shard in a folder rank 1 lacks: refused on every rank "
               "(checkpoint: '%s'; shard: '%s')\n", ok ? "PASS" : "FAIL", err, err2);
    comm_world_end();
    return ok ? 0 : 1;
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--create-split") == 0) return create_split(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--save-nan") == 0) return save_nan(argv[2]);
    if (argc == 3 && strcmp(argv[1], "--as-format2") == 0) {
        bool ok = make_format2(argv[2], NULL);
        if (!ok) printf("--as-format2: %s is not a checkpoint this test can rewrite\n", argv[2]);
        comm_world_end();
        return ok ? 0 : 1;
    }
    if (argc == 3 && strcmp(argv[1], "--as-format3") == 0) {
        bool ok = make_format3(argv[2]);
        if (!ok) printf("--as-format3: %s is not a checkpoint this test can rewrite\n", argv[2]);
        comm_world_end();
        return ok ? 0 : 1;
    }
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(train_bin, sizeof train_bin, "%s/llama-train", build);
    snprintf(ckpt_bin, sizeof ckpt_bin, "%s/llama-ckpt", build);
    snprintf(self_bin, sizeof self_bin, "%s", argv[0]);
    snprintf(dir, sizeof dir, "/tmp/llama-test-ckbad.%d", (int)getpid());
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    snprintf(o.save_dir, sizeof o.save_dir, "%s/good", dir);
    ModelConfig cfg;
    char err[512];
    config_load("tiny", &cfg, err, sizeof err);
    Trainer *t = trainer_create_bare(&ops_cpu, &o, &cfg);
    trainer_checkpoint_save(t);
    trainer_free(t);

    char path[600], f[700];
    copy_ckpt("truncated", path, sizeof path);
    snprintf(f, sizeof f, "%s/checkpoint.h5", path);
    if (truncate(f, 200000) != 0) printf("note: truncate failed\n");
    expect_refused("bad checkpoint: a truncated file", path, "tiny", "truncated or not HDF5");
    copy_ckpt("shape", path, sizeof path);
    wrong_shape(path);
    expect_refused("bad checkpoint: a tensor of the wrong shape", path, "tiny",
                   "adam_m/model.norm.weight has shape (32, 1), expected (64, 1)");
    copy_ckpt("flipped", path, sizeof path);
    flip_byte(path);
    expect_refused("bad checkpoint: a flipped byte", path, "tiny",
                   "master/model.layers.1.mlp.up_proj.weight fails its checksum");
    check_begin("llama-ckpt compare: a checkpoint with a flipped byte is refused, not compared");
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd, "%s compare %s %s/good/step_0000000", ckpt_bin, path, dir);
    CHECK(run(cmd, out, sizeof out) != 0 &&
          strstr(out, "master/model.layers.1.mlp.up_proj.weight fails its checksum"), "%s", out);
    check_end();
    snprintf(path, sizeof path, "%s/good/step_0000000", dir);
    expect_refused("bad checkpoint: another model", path, "small", "holds a model of dim 64");
    snprintf(path, sizeof path, "%s/nowhere", dir);
    expect_refused("bad checkpoint: --load of a missing path", path, "tiny", "no such checkpoint folder");
    attribute_cases();
    format2_cases();
    rope_scaling_cases();
    nonfinite_cases();
    sh("rm -rf %s%s", dir, "");
    comm_world_end();
    return check_exit_code();
}
