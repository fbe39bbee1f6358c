// Hugging Face round trip: validation/golden/hf-roundtrip holds a model that
// transformers initialised (validation/golden/hf-roundtrip-init, every tensor
// far from trivial), trained by 8 ranks (dp2 × tp2 × pp2), checkpointed and
// exported by llama-ckpt export-hf, and the logits transformers'
// LlamaForCausalLM computed with that export at every position of a held-out
// batch.  Importing the export must give those logits and that loss.
// (validation/test_hf_roundtrip.sh checks the export is what training makes.)
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>

#include "comm/comm.h"
#include "check.h"
#include "parallel/grid.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "model/model.h"
#include "hf/safetensors.h"

#define GOLDEN "validation/golden/hf-roundtrip"

// transformers' logits (rows × V) from logits.safetensors, or NULL.
static float *golden_logits(int rows, int V) {
    Safetensors st;
    char err[512];
    int64_t shape[2] = {rows, V};
    float *out = malloc(sizeof(float) * (size_t)rows * V);
    bool ok = safetensors_open(GOLDEN "/logits.safetensors", &st, err, sizeof err) &&
              safetensors_read(&st, "logits", 2, shape, out, err, sizeof err);
    CHECK(ok, "%s", err);
    safetensors_close(&st);
    if (!ok) free(out);
    return ok ? out : NULL;
}

// Every position's logits against transformers': the largest |difference|
// relative to the row's largest |logit|, and the position where it is.
static void compare_logits(const Model *m, int V) {
    float *want = golden_logits(m->N, V);
    if (!want) return;
    double worst = 0;
    int at = 0;
    for (int r = 0; r < m->N; r++) {
        const float *got = (const float *)m->logits + (size_t)r * m->vocab_rows;
        const float *ref = want + (size_t)r * V;
        double err = 0, scale = 0;
        for (int v = 0; v < V; v++) {
            err = fmax(err, fabs((double)got[v] - ref[v]));
            scale = fmax(scale, fabs((double)ref[v]));
        }
        double rel = err / scale;
        if (!(rel <= worst)) worst = rel, at = r;   // NaN is the worst
    }
    CHECK(worst <= 1e-5, "logits differ from transformers' by %.3g of the row's largest at "
          "position %d", worst, at);
    free(want);
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    check_begin("Hugging Face export of a multi-rank checkpoint: transformers' logits at every "
                "position to 1e-5");
    json_error_t jerr;
    json_t *g = json_load_file(GOLDEN "/golden.json", 0, &jerr);
    HfConfig hf;
    char err[1024];
    CHECK(g != NULL, "golden.json: %s", jerr.text);
    bool ok = g && hf_config_read(GOLDEN, &hf, err, sizeof err);
    CHECK(ok, "%s", err);
    if (ok) {
        int B = (int)json_integer_value(json_object_get(g, "B"));
        int T = (int)json_integer_value(json_object_get(g, "T"));
        Grid grid;
        grid_create(&grid, 1, 1);
        ModelPart part = {.tp = 1, .n_layers = hf.model.n_layers, .first = true, .last = true, .dp = 1};
        Model *m = model_create(&ops_cpu, &hf.model, &part, &grid.tp_comm, B, T, 1, false);
        CHECK(hf_import(m, GOLDEN, err, sizeof err), "%s", err);
        int32_t *in = malloc(sizeof(int32_t) * B * T), *tg = malloc(sizeof(int32_t) * B * T);
        json_t *rows = json_object_get(g, "tokens");
        for (int b = 0; b < B; b++)
            for (int t = 0; t < T; t++) {
                json_t *row = json_array_get(rows, (size_t)b);
                in[b * T + t] = (int32_t)json_integer_value(json_array_get(row, (size_t)t));
                tg[b * T + t] = (int32_t)json_integer_value(json_array_get(row, (size_t)t + 1));
            }
        model_set_batch(m, 0, in, tg);
        model_forward(m, 0);
        double loss = model_head_forward(m, 0, 0.0f) / (B * T);
        compare_logits(m, hf.model.vocab_size);
        CHECK_CLOSE(loss, json_real_value(json_object_get(g, "loss")), 1e-6, 0, "held-out loss");
        free(in);
        free(tg);
        model_free(m);
        grid_free(&grid);
    }
    check_end();
    json_decref(g);
    comm_world_end();
    return check_exit_code();
}
