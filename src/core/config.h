// Model shapes: the presets, validation, and the numbers
// derived from a shape (parameter count, FLOPs per token).
#ifndef LLAMA_CONFIG_H
#define LLAMA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

typedef struct {
    char name[64];      // preset name or model file path
    int dim;            // d_model
    int n_layers;
    int n_heads;
    int n_kv_heads;     // grouped-query attention: n_heads % n_kv_heads == 0
    int ffn_dim;        // SwiGLU hidden width
    int vocab_size;
    int max_seq_len;
    double rope_theta;
    double norm_eps;
} ModelConfig;

// Fills cfg from the preset of that name; false when there is none.  (A
// preset or a model file: config_load, train/model_file.h.)
bool config_preset(const char *name, ModelConfig *cfg);
// Checks the shape is usable (positive sizes, heads divide dim, KV-heads divide heads).
bool config_validate(const ModelConfig *cfg, char *err, int err_len);
// Space-separated list of preset names, for messages.
const char *config_preset_names(void);

static inline int config_head_dim(const ModelConfig *c) { return c->dim / c->n_heads; }

// Parameter counts for the full (unsharded) model.
int64_t config_params_per_layer(const ModelConfig *c);
int64_t config_params_total(const ModelConfig *c);
// Non-embedding parameters plus the LM head: the N of 6·N.
int64_t config_params_flop(const ModelConfig *c);
// Model FLOPs per token at sequence length seq, forward + backward:
// 6·N + 12·layers·dim·seq (PaLM / Megatron convention).
double config_flops_per_token(const ModelConfig *c, int seq);

#endif
