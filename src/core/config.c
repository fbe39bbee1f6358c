#include "core/config.h"

#include <stdio.h>
#include <string.h>

#include "core/util.h"

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len;
    double rope_theta, norm_eps;
} Preset;

// LLaMA-1 shapes from the paper, LLaMA-2/3 and TinyLlama from their released configs.
static const Preset presets[] = {
    {"tiny",       64,   4,  8,  4,   192,    256,  256, 10000.0,  1e-5},
    {"small",      384,  6,  6,  2,   1024,   8192, 512, 10000.0,  1e-5},
    {"1b",         2048, 22, 32, 4,   5632,  32000, 2048, 10000.0, 1e-5},
    {"7b",         4096, 32, 32, 32, 11008,  32000, 2048, 10000.0, 1e-6},
    {"13b",        5120, 40, 40, 40, 13824,  32000, 2048, 10000.0, 1e-6},
    {"30b",        6656, 60, 52, 52, 17920,  32000, 2048, 10000.0, 1e-6},
    {"65b",        8192, 80, 64, 64, 22016,  32000, 2048, 10000.0, 1e-6},
    {"llama2-7b",  4096, 32, 32, 32, 11008,  32000, 4096, 10000.0, 1e-5},
    {"llama2-13b", 5120, 40, 40, 40, 13824,  32000, 4096, 10000.0, 1e-5},
    {"llama2-70b", 8192, 80, 64, 8,  28672,  32000, 4096, 10000.0, 1e-5},
    {"llama3-8b",  4096, 32, 32, 8,  14336, 128256, 8192, 500000.0, 1e-5},
};
#define N_PRESETS (int)(sizeof presets / sizeof presets[0])

const char *config_preset_names(void) {
    static char names[256];
    if (!names[0])
        for (int i = 0; i < N_PRESETS; i++) {
            if (i) strcat(names, " ");
            strcat(names, presets[i].name);
        }
    return names;
}

static void config_from_preset(const Preset *p, ModelConfig *c) {
    *c = (ModelConfig){.dim = p->dim, .n_layers = p->n_layers, .n_heads = p->n_heads,
                       .n_kv_heads = p->n_kv_heads, .ffn_dim = p->ffn_dim,
                       .vocab_size = p->vocab_size, .max_seq_len = p->max_seq_len,
                       .rope_theta = p->rope_theta, .norm_eps = p->norm_eps};
    snprintf(c->name, sizeof c->name, "%s", p->name);
}

bool config_preset(const char *name, ModelConfig *cfg) {
    for (int i = 0; i < N_PRESETS; i++)
        if (strcmp(presets[i].name, name) == 0) {
            config_from_preset(&presets[i], cfg);
            return true;
        }
    return false;
}

bool config_validate(const ModelConfig *c, char *err, int err_len) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->ffn_dim <= 0 || c->vocab_size <= 1 || c->max_seq_len <= 0 || !(c->rope_theta > 0) ||
        !(c->norm_eps > 0)) {
        snprintf(err, err_len, "model %s: every size must be positive", c->name);
        return false;
    }
    if (c->dim % c->n_heads != 0) {
        snprintf(err, err_len, "model %s: n_heads %d does not divide dim %d", c->name,
                 c->n_heads, c->dim);
        return false;
    }
    if (c->n_heads % c->n_kv_heads != 0) {
        snprintf(err, err_len, "model %s: n_kv_heads %d does not divide n_heads %d", c->name,
                 c->n_kv_heads, c->n_heads);
        return false;
    }
    if (config_head_dim(c) % 2 != 0) {
        snprintf(err, err_len, "model %s: head dim %d must be even for rotary embeddings",
                 c->name, config_head_dim(c));
        return false;
    }
    return true;
}

int64_t config_params_per_layer(const ModelConfig *c) {
    int64_t d = c->dim, kv = (int64_t)c->n_kv_heads * config_head_dim(c);
    return 2 * d                       // two RMSNorm weights
           + d * d * 2 + d * kv * 2    // wq, wo, wk, wv
           + 3 * d * c->ffn_dim;       // gate, up, down
}

int64_t config_params_total(const ModelConfig *c) {
    return (int64_t)c->n_layers * config_params_per_layer(c) + c->dim  // final norm
           + 2 * (int64_t)c->vocab_size * c->dim;                      // embedding + head
}

int64_t config_params_flop(const ModelConfig *c) {
    return config_params_total(c) - (int64_t)c->vocab_size * c->dim;
}

double config_flops_per_token(const ModelConfig *c, int seq) {
    return 6.0 * (double)config_params_flop(c) + 12.0 * c->n_layers * (double)c->dim * seq;
}
