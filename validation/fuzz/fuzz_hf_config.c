// libFuzzer harness: the Hugging Face config.json reader (io/hf/hf_config.c).  A
// config that reads must write and read back as the same model.
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_input.h"
#include "hf/hf_config.h"

static bool same_model(const ModelConfig *a, const ModelConfig *b) {
    return a->dim == b->dim && a->n_layers == b->n_layers && a->n_heads == b->n_heads &&
           a->n_kv_heads == b->n_kv_heads && a->ffn_dim == b->ffn_dim &&
           a->vocab_size == b->vocab_size && a->max_seq_len == b->max_seq_len &&
           a->rope_theta == b->rope_theta && a->norm_eps == b->norm_eps &&
           config_rope_scaling_equal(&a->rope_scaling, &b->rope_scaling) &&
           a->tie_embeddings == b->tie_embeddings;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *path = fuzz_file(data, size, "config.json");
    HfConfig hf, back;
    char err[1024], out[512];
    if (!hf_config_read(path, &hf, err, sizeof err)) return 0;
    snprintf(out, sizeof out, "%s/written.json", fuzz_dir());
    if (!hf_config_write(out, &hf, err, sizeof err)) return 0;  // e.g. a dtype it does not write
    if (!hf_config_read(out, &back, err, sizeof err) || !same_model(&hf.model, &back.model) ||
        hf.bos_id != back.bos_id || hf.eos_id != back.eos_id)
        abort();  // what it wrote does not read back as the same model
    return 0;
}
