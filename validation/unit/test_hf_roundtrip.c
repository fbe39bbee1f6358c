// Hugging Face round trip: validation/golden/hf-roundtrip holds a model
// trained by 8 ranks (dp2 × tp2 × pp2), checkpointed and exported by
// llama-ckpt export-hf, and the loss transformers' LlamaForCausalLM computed
// with it on a held-out batch.  Importing the export must give that loss.
// (validation/test_hf_roundtrip.sh checks the export is what training makes.)
#include <jansson.h>
#include <mpi.h>
#include <stdlib.h>

#include "check.h"
#include "grid.h"
#include "hf.h"
#include "hf_config.h"
#include "model.h"

#define GOLDEN "validation/golden/hf-roundtrip"

int main(int argc, char **argv) {
    MPI_Init(&argc, &argv);
    check_begin("Hugging Face export of a multi-rank checkpoint: transformers' loss to 1e-5");
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
        Model *m = model_create(&hf.model, &part, &grid.tp_comm, B, T, 1, false);
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
        CHECK_CLOSE(loss, json_real_value(json_object_get(g, "loss")), 1e-5, 0, "held-out loss");
        free(in);
        free(tg);
        model_free(m);
        grid_free(&grid);
    }
    check_end();
    json_decref(g);
    MPI_Finalize();
    return check_exit_code();
}
