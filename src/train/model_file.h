// Model shapes by name: a preset, or a model file of "key = value" lines
// (dim, n_layers, n_heads, n_kv_heads, ffn_dim, vocab_size, max_seq_len,
// rope_theta, norm_eps; every key once; optionally RoPE scaling:
// rope_scaling = linear with rope_scaling_factor, or rope_scaling = llama3
// with rope_scaling_factor, rope_scaling_low_freq_factor,
// rope_scaling_high_freq_factor, rope_scaling_original_max_position_embeddings).
#ifndef LLAMA_MODEL_FILE_H
#define LLAMA_MODEL_FILE_H

#include "core/config.h"

// Fills cfg from a preset name or, when no preset has that name, from a model
// file.  On failure returns false with a reason in err.
bool config_load(const char *name_or_file, ModelConfig *cfg, char *err, int err_len);

#endif
