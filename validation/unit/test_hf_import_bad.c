// Hugging Face weights that do not fit the model are refused by the import
// with a message naming the file and the tensor: a missing tensor, a tensor
// of another dtype (I64), another shape; a tied model (tie_word_embeddings)
// whose file holds an lm_head.weight other than its embedding; an untied
// folder for a tied model.  The folders are written here.
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "parallel/grid.h"
#include "train/hf.h"
#include "hf/hf_config.h"
#include "model/model.h"
#include "hf/safetensors.h"

static ModelConfig cfg = {.name = "bad-import", .dim = 16, .n_layers = 1, .n_heads = 2,
                          .n_kv_heads = 1, .ffn_dim = 24, .vocab_size = 40, .max_seq_len = 16,
                          .rope_theta = 10000.0, .norm_eps = 1e-5};

// What a folder's config.json says beside the untied tensors it holds.
typedef enum { UNTIED, TIED_HEAD_EQUAL, TIED_HEAD_OTHER } Tying;

// Writes DIR/config.json and DIR/model.safetensors with every tensor of the
// untied cfg except `skip`, and `reshape` (if not NULL) one row short, and
// `extra` (if not NULL: a tensor of 8 values the model has no place for);
// tensor i holds the value i, or with TIED_HEAD_EQUAL the head the embedding's.
static void write_tensors(const char *dir, const char *skip, const char *reshape, Tying tying,
                          const char *extra) {
    mkdir(dir, 0755);
    char err[512], path[512];
    HfConfig hf = {.model = cfg, .bos_id = -1, .eos_id = -1, .pad_id = -1};
    hf.model.tie_embeddings = tying != UNTIED;
    hf_config_write(dir, &hf, err, sizeof err);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    SafetensorsWriter *w = safetensors_writer_create(path, err, sizeof err);
    ParamTable pt;
    params_build_global(&pt, &cfg);
    int *index = calloc((size_t)pt.n, sizeof(int));
    for (int i = 0; i < pt.n; i++) {
        const ParamTensor *t = &pt.t[i];
        int64_t shape[2] = {t->rows - (reshape && !strcmp(t->name, reshape)), t->cols};
        index[i] = skip && !strcmp(t->name, skip) ? -1
                   : safetensors_writer_declare(w, t->name, SAFETENSORS_F32, t->ndim, shape, err, sizeof err);
    }
    int64_t eight = 8;
    int extra_at = extra ? safetensors_writer_declare(w, extra, SAFETENSORS_F32, 1, &eight, err,
                                                      sizeof err) : -1;
    float zeros[8] = {0};
    if (extra) safetensors_writer_put(w, extra_at, zeros, err, sizeof err);
    for (int i = 0; i < pt.n; i++) {
        if (index[i] < 0) continue;
        size_t n = (size_t)(pt.t[i].rows * pt.t[i].cols);
        float *v = malloc(n * sizeof(float));
        bool head = i == pt.lm_head && tying == TIED_HEAD_EQUAL;
        for (size_t k = 0; k < n; k++) v[k] = (float)(head ? pt.embed : i);
        safetensors_writer_put(w, index[i], v, err, sizeof err);
        free(v);
    }
    safetensors_writer_close(w, err, sizeof err);
    free(index);
    params_free(&pt);
}

static void write_folder(const char *dir, const char *skip, const char *reshape) {
    write_tensors(dir, skip, reshape, UNTIED, NULL);
}

// A file whose first tensor (the embedding, the first the import reads) is
// I64: written by hand (8-byte header length, JSON header, data).
static void write_i64_folder(const char *dir, const char *name) {
    write_folder(dir, name, NULL);   // everything else, then replace the file
    char path[512], header[512];
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    int n = snprintf(header, sizeof header, "{\"%s\":{\"dtype\":\"I64\",\"shape\":[40,16],"
                     "\"data_offsets\":[0,5120]}}", name);
    while (n % 8) header[n++] = ' ';
    FILE *f = fopen(path, "wb");
    uint64_t len = (uint64_t)n;
    fwrite(&len, 8, 1, f);
    fwrite(header, 1, (size_t)n, f);
    for (int i = 0; i < 5120; i++) fputc(0, f);
    fclose(f);
}

static void expect(Model *m, const char *dir, const char *name, const char *want) {
    check_begin(name);
    char err[1024] = "";
    bool ok = hf_import(m, dir, err, sizeof err);
    CHECK(!ok, "the import accepted it");
    CHECK(strstr(err, want) != NULL, "message '%s' lacks '%s'", err, want);
    check_end();
}

int main(int argc, char **argv) {
    comm_world_start(&argc, &argv);
    char base[128], dir[256];
    snprintf(base, sizeof base, "/tmp/llama-test-hfbad.%d", (int)getpid());
    mkdir(base, 0755);
    Grid g;
    grid_create(&g, 1, 1, 1, false);
    ModelPart part = {.tp = 1, .n_layers = 1, .first = true, .last = true, .dp = 1};
    Model *m = model_create(&ops_cpu, &cfg, &part, &g.tp_comm, NULL, 1, 4, 1, RECOMPUTE_NONE, MODEL_HOLDS_ALL);

    snprintf(dir, sizeof dir, "%s/good", base);
    write_folder(dir, NULL, NULL);
    check_begin("hf import: a complete folder loads");
    char err[1024] = "";
    CHECK(hf_import(m, dir, err, sizeof err), "%s", err);
    check_end();
    snprintf(dir, sizeof dir, "%s/missing", base);
    write_folder(dir, "model.layers.0.mlp.up_proj.weight", NULL);
    expect(m, dir, "hf import: a missing tensor", "no tensor named 'model.layers.0.mlp.up_proj.weight'");
    snprintf(dir, sizeof dir, "%s/i64", base);
    write_i64_folder(dir, "model.embed_tokens.weight");
    expect(m, dir, "hf import: a tensor of dtype I64", "has dtype I64");
    snprintf(dir, sizeof dir, "%s/shape", base);
    write_folder(dir, NULL, "lm_head.weight");
    expect(m, dir, "hf import: a tensor of the wrong shape", "'lm_head.weight' has shape [39, 16], expected [40, 16]");
    // Weights config.json does not describe: refused, not left out; RoPE's
    // inv_freq buffer (older exports) is no weight.
    snprintf(dir, sizeof dir, "%s/bias", base);
    write_tensors(dir, NULL, NULL, UNTIED, "model.layers.0.self_attn.q_proj.bias");
    expect(m, dir, "hf import: a tensor the model has no place for (a bias)",
           "holds 1 tensor that the model its config.json describes has no place for (first "
           "'model.layers.0.self_attn.q_proj.bias')");
    snprintf(dir, sizeof dir, "%s/layer1", base);
    write_tensors(dir, NULL, NULL, UNTIED, "model.layers.1.input_layernorm.weight");
    expect(m, dir, "hf import: a layer past num_hidden_layers",
           "(first 'model.layers.1.input_layernorm.weight')");
    snprintf(dir, sizeof dir, "%s/invfreq", base);
    write_tensors(dir, NULL, NULL, UNTIED, "model.layers.0.self_attn.rotary_emb.inv_freq");
    check_begin("hf import: a folder with RoPE's inv_freq buffer loads");
    CHECK(hf_import(m, dir, err, sizeof err), "%s", err);
    check_end();
    model_free(m);

    // Tied: a folder may also hold lm_head.weight, but then equal to the embedding.
    ModelConfig tied = cfg;
    tied.tie_embeddings = true;
    m = model_create(&ops_cpu, &tied, &part, &g.tp_comm, NULL, 1, 4, 1, RECOMPUTE_NONE, MODEL_HOLDS_ALL);
    snprintf(dir, sizeof dir, "%s/tied-equal", base);
    write_tensors(dir, NULL, NULL, TIED_HEAD_EQUAL, NULL);
    check_begin("hf import: a tied model whose file also holds an equal lm_head.weight loads");
    CHECK(hf_import(m, dir, err, sizeof err), "%s", err);
    check_end();
    snprintf(dir, sizeof dir, "%s/tied-other", base);
    write_tensors(dir, NULL, NULL, TIED_HEAD_OTHER, NULL);
    expect(m, dir, "hf import: a tied model whose file holds another lm_head.weight",
           "hold an lm_head.weight that differs from model.embed_tokens.weight");
    check_begin("hf import: the error names the folder");
    CHECK(!hf_import(m, dir, err, sizeof err) && strstr(err, dir) == err, "'%s'", err);
    check_end();
    snprintf(dir, sizeof dir, "%s/good", base);
    expect(m, dir, "hf import: an untied folder into a tied model", "LM head of its own");
    model_free(m);
    grid_free(&g);
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", base);
    if (system(cmd) != 0) printf("note: could not remove %s\n", base);
    comm_world_end();
    return check_exit_code();
}
