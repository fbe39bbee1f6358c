#include "core/config.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"

typedef struct {
    const char *name;
    int dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len;
    double rope_theta, norm_eps;
    bool tie;             // tied embeddings
    RopeScaling rope;     // zero: plain RoPE
} Preset;

// LLaMA-3.1/3.2's RoPE scaling (their config.json's rope_scaling).
#define LLAMA31_ROPE(f) {ROPE_SCALING_LLAMA3, f, 1.0, 4.0, 8192}
#define PLAIN_ROPE {ROPE_SCALING_NONE, 0, 0, 0, 0}

// LLaMA-1 shapes from the paper, LLaMA-2/3 and TinyLlama from their released configs.
static const Preset presets[] = {
    {"tiny",       64,   4,  8,  4,   192,    256,  256, 10000.0,  1e-5, false, PLAIN_ROPE},
    {"small",      384,  6,  6,  2,   1024,   8192, 512, 10000.0,  1e-5, false, PLAIN_ROPE},
    {"1b",         2048, 22, 32, 4,   5632,  32000, 2048, 10000.0, 1e-5, false, PLAIN_ROPE},
    {"7b",         4096, 32, 32, 32, 11008,  32000, 2048, 10000.0, 1e-6, false, PLAIN_ROPE},
    {"13b",        5120, 40, 40, 40, 13824,  32000, 2048, 10000.0, 1e-6, false, PLAIN_ROPE},
    {"30b",        6656, 60, 52, 52, 17920,  32000, 2048, 10000.0, 1e-6, false, PLAIN_ROPE},
    {"65b",        8192, 80, 64, 64, 22016,  32000, 2048, 10000.0, 1e-6, false, PLAIN_ROPE},
    {"llama2-7b",  4096, 32, 32, 32, 11008,  32000, 4096, 10000.0, 1e-5, false, PLAIN_ROPE},
    {"llama2-13b", 5120, 40, 40, 40, 13824,  32000, 4096, 10000.0, 1e-5, false, PLAIN_ROPE},
    {"llama2-70b", 8192, 80, 64, 8,  28672,  32000, 4096, 10000.0, 1e-5, false, PLAIN_ROPE},
    {"llama3-8b",  4096, 32, 32, 8,  14336, 128256, 8192, 500000.0, 1e-5, false, PLAIN_ROPE},
    {"llama3.1-8b", 4096, 32, 32, 8, 14336, 128256, 131072, 500000.0, 1e-5, false, LLAMA31_ROPE(8.0)},
    {"llama3.2-1b", 2048, 16, 32, 8,  8192, 128256, 131072, 500000.0, 1e-5, true, LLAMA31_ROPE(32.0)},
    {"llama3.2-3b", 3072, 28, 24, 8,  8192, 128256, 131072, 500000.0, 1e-5, true, LLAMA31_ROPE(32.0)},
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
                       .rope_theta = p->rope_theta, .norm_eps = p->norm_eps,
                       .tie_embeddings = p->tie, .rope_scaling = p->rope};
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

// ---- RoPE scaling ----

static const char *const rope_scaling_names[] = {"none", "linear", "llama3"};
#define N_ROPE_SCALINGS (int)(sizeof rope_scaling_names / sizeof rope_scaling_names[0])

const char *config_rope_scaling_name(RopeScalingKind kind) {
    return (int)kind >= 0 && (int)kind < N_ROPE_SCALINGS ? rope_scaling_names[kind] : NULL;
}

bool config_rope_scaling_kind(const char *name, RopeScalingKind *kind) {
    for (int k = 0; k < N_ROPE_SCALINGS; k++)
        if (strcmp(rope_scaling_names[k], name) == 0) {
            *kind = (RopeScalingKind)k;
            return true;
        }
    return false;
}

bool config_rope_scaling_equal(const RopeScaling *a, const RopeScaling *b) {
    if (a->kind != b->kind) return false;
    if (a->kind == ROPE_SCALING_NONE) return true;
    return a->factor == b->factor &&
           (a->kind == ROPE_SCALING_LINEAR ||
            (a->low_freq_factor == b->low_freq_factor &&
             a->high_freq_factor == b->high_freq_factor &&
             a->original_max_seq_len == b->original_max_seq_len));
}

// v with the fewest significant digits that read back exactly.
static void exact_number(double v, char *out, int len) {
    for (int p = 1; p <= 17; p++) {
        snprintf(out, len, "%.*g", p, v);
        if (strtod(out, NULL) == v) return;
    }
}

void config_rope_scaling_describe(const RopeScaling *s, char *out, int len) {
    const char *name = config_rope_scaling_name(s->kind);
    char f[32], lo[32], hi[32];
    exact_number(s->factor, f, sizeof f);
    exact_number(s->low_freq_factor, lo, sizeof lo);
    exact_number(s->high_freq_factor, hi, sizeof hi);
    if (s->kind == ROPE_SCALING_LINEAR) snprintf(out, len, "linear (factor %s)", f);
    else if (s->kind == ROPE_SCALING_LLAMA3)
        snprintf(out, len, "llama3 (factor %s, low_freq_factor %s, high_freq_factor %s, "
                 "original_max_position_embeddings %d)", f, lo, hi, s->original_max_seq_len);
    else snprintf(out, len, "%s", name ? name : "unknown");
}

static bool positive(double v) { return v > 0 && isfinite(v); }

static bool rope_scaling_check(const ModelConfig *c, char *err, int err_len) {
    const RopeScaling *s = &c->rope_scaling;
    const char *why = NULL;
    bool llama3 = s->kind == ROPE_SCALING_LLAMA3;
    if (!config_rope_scaling_name(s->kind)) why = "its kind is unknown";
    else if ((s->kind == ROPE_SCALING_NONE && s->factor != 0) ||
             (!llama3 && (s->low_freq_factor != 0 || s->high_freq_factor != 0 ||
                          s->original_max_seq_len != 0)))
        why = "it carries numbers its kind does not use";
    else if (s->kind == ROPE_SCALING_NONE) return true;
    else if (!positive(s->factor)) why = "factor must be a positive number";
    else if (!llama3) return true;
    else if (!positive(s->low_freq_factor) || !positive(s->high_freq_factor))
        why = "low_freq_factor and high_freq_factor must be positive numbers";
    else if (!(s->high_freq_factor > s->low_freq_factor))
        why = "high_freq_factor must be above low_freq_factor (llama3 blends between the "
              "two)";
    else if (s->original_max_seq_len <= 0)
        why = "original_max_position_embeddings must be positive";
    else return true;
    char d[256];
    config_rope_scaling_describe(s, d, sizeof d);
    snprintf(err, err_len, "model %s: RoPE scaling %s: %s", c->name, d, why);
    return false;
}

bool config_validate(const ModelConfig *c, char *err, int err_len) {
    if (c->dim <= 0 || c->n_layers <= 0 || c->n_heads <= 0 || c->n_kv_heads <= 0 ||
        c->ffn_dim <= 0 || c->vocab_size <= 1 || c->max_seq_len <= 0 ||
        !(c->rope_theta > 0 && isfinite(c->rope_theta)) ||
        !(c->norm_eps > 0 && isfinite(c->norm_eps))) {
        snprintf(err, err_len, "model %s: every size must be positive (and rope_theta and "
                 "norm_eps finite)", c->name);
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
    // Counted in double: the int64 counts below would wrap for such sizes.
    double d = c->dim, layer = 2 * d + 2 * d * d + 2 * d * c->n_kv_heads * (d / c->n_heads) +
                              3 * d * c->ffn_dim;
    double total = c->n_layers * layer + d + 2 * d * c->vocab_size;
    if (total > CONFIG_MAX_PARAMS) {
        snprintf(err, err_len, "model %s: %.3g parameters, more than the %.3g this program can "
                 "count; check dim, n_layers, ffn_dim and vocab_size", c->name, total,
                 CONFIG_MAX_PARAMS);
        return false;
    }
    return rope_scaling_check(c, err, err_len);
}

int64_t config_params_per_layer(const ModelConfig *c) {
    int64_t d = c->dim, kv = (int64_t)c->n_kv_heads * config_head_dim(c);
    return 2 * d                       // two RMSNorm weights
           + d * d * 2 + d * kv * 2    // wq, wo, wk, wv
           + 3 * d * c->ffn_dim;       // gate, up, down
}

int64_t config_params_total(const ModelConfig *c) {
    int64_t tables = c->tie_embeddings ? 1 : 2;   // embedding, and the head unless tied
    return (int64_t)c->n_layers * config_params_per_layer(c) + c->dim  // final norm
           + tables * c->vocab_size * c->dim;
}

// The head's matmul costs its FLOPs whether or not its weights are the embedding's.
int64_t config_params_flop(const ModelConfig *c) {
    return (int64_t)c->n_layers * config_params_per_layer(c) + c->dim +
           (int64_t)c->vocab_size * c->dim;
}

double config_flops_per_token(const ModelConfig *c, int seq) {
    return 6.0 * (double)config_params_flop(c) + 12.0 * c->n_layers * (double)c->dim * seq;
}
