// --eval-only of an --init-hf model against transformers: the held-out loss
// transformers computed (validation/golden/hf-roundtrip/golden.json: 3
// sequences of 48 predicted tokens, the model beside it) equals the trainer's
// whole-split evaluation of a validation split that holds exactly those
// windows — one shard per sequence of 49 tokens, so each shard is one window —
// with micro-batch 2, so the second batch is half padding that must be left
// out.  `test_eval_golden --write-shards DIR` only writes the shards, for
// validation/test_eval_sample.sh to run llama-train on other layouts.
#include <jansson.h>
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "comm/comm.h"
#include "hdf5/shards.h"
#include "hf/hf_config.h"
#include "train/train.h"

#define GOLDEN "validation/golden/hf-roundtrip"

// Writes row r of the golden's tokens to DIR/rowR.val.h5 (one document).
// Returns the golden's loss, or NAN after printing why.
static double write_shards(const char *dir, int *rows, int *T) {
    json_error_t jerr;
    json_t *g = json_load_file(GOLDEN "/golden.json", 0, &jerr);
    if (!g) {
        printf("FAIL eval golden: %s/golden.json: %s\n", GOLDEN, jerr.text);
        return NAN;
    }
    json_t *tokens = json_object_get(g, "tokens");
    *rows = (int)json_array_size(tokens);
    *T = (int)json_integer_value(json_object_get(g, "T"));
    double loss = json_real_value(json_object_get(g, "loss"));
    char err[512];
    for (int r = 0; r < *rows; r++) {
        json_t *row = json_array_get(tokens, (size_t)r);
        uint64_t n = json_array_size(row);
        uint32_t *ids = malloc(n * sizeof *ids);   // (T + 1)
        for (size_t i = 0; i < n; i++) ids[i] = (uint32_t)json_integer_value(json_array_get(row, i));
        char path[600], source[16];
        snprintf(source, sizeof source, "row%d", r);
        snprintf(path, sizeof path, "%s/%s.val.h5", dir, source);
        ShardMeta meta = {256, -1, -1, "", source, "val", GOLDEN "/golden.json"};
        bool ok = shard_write_collective(MPI_COMM_SELF, path, &meta, ids, (int64_t)n, &n, 1, err,
                                         sizeof err);
        free(ids);
        if (!ok) {
            printf("FAIL eval golden: writing %s: %s\n", path, err);
            loss = NAN;
            break;
        }
    }
    json_decref(g);
    return loss;
}

static void eval_golden(const char *dir) {
    check_begin("--eval-only --eval-steps 0 of the transformers golden model equals its loss");
    int rows, T;
    double want = write_shards(dir, &rows, &T);
    if (isnan(want)) {
        check_failures++;
        return;
    }
    TrainOptions o;
    options_defaults(&o);
    snprintf(o.init_hf, sizeof o.init_hf, "%s", GOLDEN);
    snprintf(o.dataset, sizeof o.dataset, "%s", dir);
    o.max_length = T;
    o.batch_size = 2;
    o.eval_steps = 0;
    o.eval_only = true;
    o.hang_timeout = 0;
    HfConfig hf;
    char err[1024];
    CHECK(hf_config_read(GOLDEN, &hf, err, sizeof err), "%s", err);
    Trainer *t = trainer_create(&ops_cpu, &o, &hf.model);
    double tokens, loss = trainer_evaluate(t, &tokens);
    CHECK(tokens == (double)rows * T, "scored %.0f tokens, want %d", tokens, rows * T);
    CHECK_CLOSE(loss, want, 1e-5, 0, "held-out loss vs transformers'");
    printf("eval loss %.9g, transformers %.9g\n", loss, want);
    trainer_free(t);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    if (argc == 3 && strcmp(argv[1], "--write-shards") == 0) {
        int rows, T;
        bool ok = !isnan(write_shards(argv[2], &rows, &T));
        comm_world_end();
        return ok ? 0 : 1;
    }
    char dir[64];
    snprintf(dir, sizeof dir, "/tmp/llama-test-evalgold.%d", (int)getpid());
    if (mkdir(dir, 0755) != 0) {
        printf("FAIL eval golden: cannot create %s\n", dir);
        return 1;
    }
    eval_golden(dir);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) printf("note: could not remove %s\n", dir);
    comm_world_end();
    return check_exit_code();
}
