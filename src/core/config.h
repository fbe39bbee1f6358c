// Model shapes: the presets, validation, and the numbers
// derived from a shape (parameter count, FLOPs per token).
#ifndef LLAMA_CONFIG_H
#define LLAMA_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

// RoPE frequency scaling, transformers' rope_scaling (model/rope.c applies
// it): LINEAR divides every inverse frequency by factor; LLAMA3 (LLaMA 3.1)
// divides those of wavelength above original_max_seq_len / low_freq_factor
// by factor, keeps those below original_max_seq_len / high_freq_factor, and
// blends in between.  NONE (zero) is plain RoPE; unused fields are 0.
typedef enum { ROPE_SCALING_NONE, ROPE_SCALING_LINEAR, ROPE_SCALING_LLAMA3 } RopeScalingKind;
typedef struct {
    RopeScalingKind kind;
    double factor;              // LINEAR, LLAMA3: > 0
    double low_freq_factor;     // LLAMA3: > 0
    double high_freq_factor;    // LLAMA3: > low_freq_factor
    int original_max_seq_len;   // LLAMA3: original_max_position_embeddings, > 0
} RopeScaling;

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
    RopeScaling rope_scaling;
    double norm_eps;
    bool tie_embeddings;   // the LM head is the embedding matrix (one tensor, both uses)
} ModelConfig;

// Fills cfg from the preset of that name; false when there is none.  (A
// preset or a model file: config_load, train/model_file.h.)
bool config_preset(const char *name, ModelConfig *cfg);
// The most parameters a model may have (2^50, ~1e15: counts, bytes and
// FLOPs of it stay exact in int64 and double).
#define CONFIG_MAX_PARAMS 1125899906842624.0
// Checks the shape is usable (positive sizes, heads divide dim, KV-heads
// divide heads, at most CONFIG_MAX_PARAMS parameters).
bool config_validate(const ModelConfig *cfg, char *err, int err_len);
// "none", "linear", "llama3" (transformers' rope_type); NULL for another kind.
const char *config_rope_scaling_name(RopeScalingKind kind);
// The kind of that name; false for any other name.
bool config_rope_scaling_kind(const char *name, RopeScalingKind *kind);
// True when a and b scale alike (only the fields their kind uses count).
bool config_rope_scaling_equal(const RopeScaling *a, const RopeScaling *b);
// "none", "linear (factor 4)", "llama3 (factor 8, low_freq_factor 1,
// high_freq_factor 4, original_max_position_embeddings 8192)": every number
// with the digits that read back exactly.
void config_rope_scaling_describe(const RopeScaling *s, char *out, int len);
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
