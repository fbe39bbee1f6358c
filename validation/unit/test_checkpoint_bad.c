// Bad checkpoints never start a run: a truncated file, a tensor of the wrong
// shape, a flipped byte in a tensor, a checkpoint of another model, a missing
// path.  A good checkpoint is saved here, copies are damaged with the HDF5
// library, and llama-train --load must refuse each with a clear message.
#include <hdf5.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "checkpoint.h"
#include "train.h"

static char dir[200], train_bin[512];

static void sh(const char *fmt, const char *a, const char *b) {
    char cmd[2048];
    snprintf(cmd, sizeof cmd, fmt, a, b);
    if (system(cmd) != 0) printf("note: '%s' failed\n", cmd);
}

// Runs llama-train --load CKPT and checks it fails with a message containing want.
static void expect_refused(const char *name, const char *ckpt, const char *config, const char *want) {
    check_begin(name);
    char cmd[2048], out[4096] = "";
    snprintf(cmd, sizeof cmd, "%s --bench -c %s -l 8 --steps 1 --load %s 2>&1 >/dev/null", train_bin,
             config, ckpt);
    FILE *p = popen(cmd, "r");
    size_t n = fread(out, 1, sizeof out - 1, p);
    out[n] = 0;
    int status = pclose(p);
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

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(train_bin, sizeof train_bin, "%s/llama-train", build);
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
    sh("rm -rf %s%s", dir, "");
    MPI_Finalize();
    return check_exit_code();
}
