// Hugging Face config.json for LlamaForCausalLM <-> ModelConfig.
//
// Read accepts what transformers 4.x and 5.x write (rope_theta / rope_scaling
// or rope_parameters, torch_dtype or dtype) and refuses, naming the key, any
// model this program cannot reproduce exactly: model_type other than "llama",
// hidden_act other than "silu", attention or MLP biases, RoPE scaling other
// than "linear" and "llama3" (with its reason: "dynamic" depends on the
// sequence length at inference), a partial_rotary_factor other than 1, a
// head_dim other than hidden_size / num_attention_heads.
// Write produces a config that transformers.LlamaForCausalLM.from_pretrained
// loads (legacy key names, which 4.x and 5.x both read).
#ifndef LLAMA_HF_CONFIG_H
#define LLAMA_HF_CONFIG_H

#include <stdbool.h>
#include <stdint.h>

#include <jansson.h>

#include "core/config.h"

typedef struct {
    ModelConfig model;
    int64_t bos_id, eos_id;      // -1 when absent or null; of a list of eos ids, the first
    int64_t pad_id;              // write only: -1 writes null
    char torch_dtype[16];        // read: as found ("" when absent); write: "float32",
                                 // "bfloat16" ("" = "float32"), the safetensors' dtype
} HfConfig;

// Reads `path` (a config.json, or a directory holding one) into hf.  On any
// problem returns false with a one-line reason naming the file and the key.
bool hf_config_read(const char *path, HfConfig *hf, char *err, int err_len);
// Writes hf as `path` (a file name, or an existing directory to hold
// config.json), atomically (via "<path>.tmp").  tie_word_embeddings is the
// model's tie_embeddings (tied: the folder holds no lm_head.weight).
bool hf_config_write(const char *path, const HfConfig *hf, char *err, int err_len);
// Whether dir's config.json says this program wrote it ("exported_by":
// "llama-hpc", which hf_config_write adds): an export it may replace.
bool hf_config_is_own_export(const char *dir);
// o as indented JSON with sorted keys (reals with `digits` significant digits)
// and a newline, to file atomically; false with the reason (o NULL: it could
// not be built).
bool hf_json_write(const char *file, json_t *o, int digits, char *err, int err_len);
// Writes DIR/generation_config.json (bos, eos and pad ids; null when -1), atomically.
bool hf_generation_config_write(const char *dir, const HfConfig *hf, char *err, int err_len);

#endif
