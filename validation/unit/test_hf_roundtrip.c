// Hugging Face round trip: validation/golden/hf-roundtrip holds a model that
// transformers initialised (validation/golden/hf-roundtrip-init, every tensor
// far from trivial), trained by 8 ranks (dp2 × tp2 × pp2), checkpointed and
// exported by llama-ckpt export-hf, and the logits transformers'
// LlamaForCausalLM computed with that export at every position of a held-out
// batch.  Importing the export must give those logits and that loss.
// (validation/test_hf_roundtrip.sh checks the export is what training makes.)
// The same for models with RoPE scaling that transformers wrote.
#include <jansson.h>
#include <math.h>
#include <mpi.h>
#include <stdlib.h>
#include <string.h>

#include "comm/comm.h"
#include "check.h"
#include "parallel/grid.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "model/model.h"
#include "hf/safetensors.h"

// The goldens: the round trip above, the same of the tied model of
// validation/golden/llama-tiny-tied (make_hf_roundtrip_golden.sh tied:
// transformers loads the export as tied), and two models transformers made with
// RoPE scaling (validation/reference/make_rope_scaling_golden.py: llama3 with
// 48 positions past an original context of 32, linear written the
// transformers 4 way), each with transformers' logits in the same layout.
static const char *const goldens[] = {"validation/golden/hf-roundtrip",
                                      "validation/golden/hf-roundtrip-tied",
                                      "validation/golden/rope-llama3",
                                      "validation/golden/rope-linear"};

// transformers' logits (rows × V) from dir/logits.safetensors, or NULL.
static float *golden_logits(const char *dir, int rows, int V) {
    Safetensors st;
    char err[512], path[512];
    int64_t shape[2] = {rows, V};
    float *out = malloc(sizeof(float) * (size_t)rows * V);
    snprintf(path, sizeof path, "%s/logits.safetensors", dir);
    bool ok = safetensors_open(path, &st, err, sizeof err) &&
              safetensors_read(&st, "logits", 2, shape, out, err, sizeof err);
    CHECK(ok, "%s", err);
    safetensors_close(&st);
    if (!ok) free(out);
    return ok ? out : NULL;
}

// The largest |difference| of a position's logits from want's, relative to
// want's largest |logit| there, over every position; *at: where.
static double logits_error(const Model *m, const float *want, int V, int *at) {
    double worst = 0;
    *at = 0;
    for (int r = 0; r < m->N; r++) {
        const float *got = (const float *)m->logits + (size_t)r * m->vocab_rows;
        const float *ref = want + (size_t)r * V;
        double err = 0, scale = 0;
        for (int v = 0; v < V; v++) {
            err = fmax(err, fabs((double)got[v] - ref[v]));
            scale = fmax(scale, fabs((double)ref[v]));
        }
        double rel = err / scale;
        if (!(rel <= worst)) worst = rel, *at = r;   // NaN is the worst
    }
    return worst;
}

typedef struct {
    int B, T;
    int32_t *in, *tg;   // (B·T) the inputs and their next tokens
    double loss;        // transformers' mean loss
} Batch;

static bool batch_read(const char *dir, Batch *b) {
    char path[512];
    json_error_t jerr;
    snprintf(path, sizeof path, "%s/golden.json", dir);
    json_t *g = json_load_file(path, 0, &jerr);
    CHECK(g != NULL, "%s: %s", path, jerr.text);
    if (!g) return false;
    b->B = (int)json_integer_value(json_object_get(g, "B"));
    b->T = (int)json_integer_value(json_object_get(g, "T"));
    b->loss = json_real_value(json_object_get(g, "loss"));
    b->in = malloc(sizeof(int32_t) * b->B * b->T), b->tg = malloc(sizeof(int32_t) * b->B * b->T);
    json_t *rows = json_object_get(g, "tokens");
    for (int i = 0; i < b->B; i++)
        for (int t = 0; t < b->T; t++) {
            json_t *row = json_array_get(rows, (size_t)i);
            b->in[i * b->T + t] = (int32_t)json_integer_value(json_array_get(row, (size_t)t));
            b->tg[i * b->T + t] = (int32_t)json_integer_value(json_array_get(row, (size_t)t + 1));
        }
    json_decref(g);
    return true;
}

// The model of cfg with dir's weights after a forward pass over b (NULL when
// the import fails); *loss: its mean loss.
static Model *run(const char *dir, const ModelConfig *cfg, const Grid *grid, const Batch *b,
                  double *loss) {
    char err[1024];
    ModelPart part = {.tp = 1, .n_layers = cfg->n_layers, .first = true, .last = true, .dp = 1};
    Model *m = model_create(&ops_cpu, cfg, &part, &grid->tp_comm, NULL, b->B, b->T, 1, RECOMPUTE_NONE, MODEL_HOLDS_ALL);
    bool ok = hf_import(m, dir, err, sizeof err);
    CHECK(ok, "%s", err);
    if (!ok) {
        model_free(m);
        return NULL;
    }
    model_set_batch(m, 0, b->in, b->tg);
    model_forward(m, 0, 0);
    *loss = model_head_forward(m, 0, 0.0f) / (b->B * b->T);
    return m;
}

// Scaled goldens: the same weights under plain RoPE compute other logits,
// so the comparison above saw the scaling.
static void check_scaling_matters(const char *dir, const HfConfig *hf, const Grid *grid,
                                  const Batch *b, const float *want) {
    ModelConfig plain = hf->model;
    memset(&plain.rope_scaling, 0, sizeof plain.rope_scaling);
    double loss;
    int at;
    Model *m = run(dir, &plain, grid, b, &loss);
    if (!m) return;
    double off = logits_error(m, want, hf->model.vocab_size, &at);
    if (getenv("VERBOSE")) printf("  %s under plain RoPE: logits off by %.3g\n", dir, off);
    CHECK(off > 1e-3, "%s: without its RoPE scaling the logits differ by only %.3g: the golden "
          "does not exercise the scaling", dir, off);
    model_free(m);
}

static void check_golden(const char *dir, const Grid *grid) {
    char err[1024], scaling[256];
    HfConfig hf;
    Batch b;
    bool ok = hf_config_read(dir, &hf, err, sizeof err);
    CHECK(ok, "%s", err);
    if (!ok || !batch_read(dir, &b)) return;
    config_rope_scaling_describe(&hf.model.rope_scaling, scaling, sizeof scaling);
    float *want = golden_logits(dir, b.B * b.T, hf.model.vocab_size);
    double loss;
    Model *m = want ? run(dir, &hf.model, grid, &b, &loss) : NULL;
    if (m) {
        int at;
        double worst = logits_error(m, want, hf.model.vocab_size, &at);
        if (getenv("VERBOSE"))
            printf("  %s (RoPE scaling %s): logits within %.3g, loss %.9g vs %.9g\n", dir,
                   scaling, worst, loss, b.loss);
        CHECK(worst <= 1e-5, "%s (RoPE scaling %s): logits differ from transformers' by %.3g of "
              "the row's largest at position %d of %d", dir, scaling, worst, at % b.T, b.T);
        CHECK_CLOSE(loss, b.loss, 1e-6, 0, "held-out loss");
        model_free(m);
        if (hf.model.rope_scaling.kind != ROPE_SCALING_NONE)
            check_scaling_matters(dir, &hf, grid, &b, want);
    }
    free(want);
    free(b.in);
    free(b.tg);
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    check_begin("Hugging Face export of a multi-rank checkpoint (untied and tied), and models "
                "with llama3 and linear RoPE scaling: transformers' logits at every position to "
                "1e-5");
    Grid grid;
    grid_create(&grid, 1, 1, 1, false);
    for (size_t i = 0; i < sizeof goldens / sizeof goldens[0]; i++) check_golden(goldens[i], &grid);
    grid_free(&grid);
    check_end();
    comm_world_end();
    return check_exit_code();
}
