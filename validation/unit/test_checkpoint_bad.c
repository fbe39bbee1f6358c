// Bad checkpoints never start a run: a truncated file, a tensor of the wrong
// shape, a flipped byte in a tensor, a checkpoint of another model, a missing
// path, a patched step, loader position or option (issue 11, case 6), a folder
// named for another step, an unknown format; format-1 checkpoints still load.
// A good checkpoint is saved here, copies are damaged with the HDF5 library,
// and llama-train --load must refuse each with a clear message.  Non-finite
// weights (case 11): llama-ckpt compare, info and llama-train --load report
// them and fail, and a model with NaN weights is never saved.
#include <hdf5.h>
#include <math.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "hdf5/ckpt_file.h"
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
    patch_str(path, "format", "llama-hpc checkpoint 9");
    expect_refused("an unknown format: refused, naming the versions", path, "tiny",
                   "format 'llama-hpc checkpoint 9', which this build cannot read");

    check_begin("format-1 checkpoints still load (with a note)");
    copy_ckpt("v1", path, sizeof path);
    make_format1(path);
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 1 --load %s", train_bin, path);
    CHECK(run(cmd, out, sizeof out) == 0, "refused: %s", out);
    CHECK(strstr(out, "is a format-1 checkpoint") && strstr(out, "loaded checkpoint"), "%s", out);
    check_end();
    snprintf(from, sizeof from, "%s/good/step_0000000 %s/v1step/step_0000000", dir, dir);
    sh("mkdir -p %s/v1step && cp -r %s", dir, from);
    snprintf(path, sizeof path, "%s/v1step/step_0000000", dir);
    make_format1(path);
    patch_i64(path, "step", 0, 5);
    expect_refused("format 1 with a patched step: refused by its folder name", path, "tiny",
                   "holds step 5 but its folder is named for step 0");
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
    Trainer *t = trainer_create_bare(&o, &cfg);
    size_t n = t->optim->shard_len;
    float *v = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++) v[i] = NAN;
    ops->to_device(t->optim->master, v, n * sizeof(float));
    free(v);
    t->step = 3;
    checkpoint_save(t);
    trainer_free(t);
    MPI_Finalize();
    return 0;
}

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--save-nan") == 0) return save_nan(argv[2]);
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
    Trainer *t = trainer_create_bare(&o, &cfg);
    checkpoint_save(t);
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
    snprintf(path, sizeof path, "%s/good/step_0000000", dir);
    expect_refused("bad checkpoint: another model", path, "small", "holds a model of dim 64");
    snprintf(path, sizeof path, "%s/nowhere", dir);
    expect_refused("bad checkpoint: --load of a missing path", path, "tiny", "no such checkpoint folder");
    attribute_cases();
    nonfinite_cases();
    sh("rm -rf %s%s", dir, "");
    MPI_Finalize();
    return check_exit_code();
}
