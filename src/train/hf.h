// Hugging Face LLaMA folders (model.safetensors + config.json, the tensor names
// and shapes of transformers' LlamaForCausalLM) in and out of the model.
#ifndef LLAMA_HF_H
#define LLAMA_HF_H

#include <stdbool.h>
#include <stdint.h>

#include "hf/safetensors.h"
#include "model/model.h"
#include "parallel/grid.h"

// Loads this rank's block of every tensor it holds from DIR into the compute
// weights (each rank reads only its own slices).  The folder's config must
// describe the same model shape.  False with one line in err otherwise.
bool hf_import(Model *m, const char *dir, char *err, int err_len);
// 64-bit hashes of what a rank read, for the ranks that hold the same values
// to compare (each reads its own view of the folder): all of it (the
// data-parallel replicas), the tensors tensor parallelism does not split
// (the norms: its group), the embedding or the last stage's tied copy of it
// (tied, pipelined: the embedding group).
typedef struct {
    uint64_t all, unsplit, embedding;
} HfImportDigest;
// hf_import, and the hashes of what it read in *d.
bool hf_import_digest(Model *m, const char *dir, HfImportDigest *d, char *err, int err_len);
// Every tensor of st (the folder dir) has a place in the model cfg (RoPE's
// inv_freq buffers and a tied model's lm_head.weight aside): false naming
// the first that has none and how many.
bool hf_tensors_all_used(const Safetensors *st, const ModelConfig *cfg, const char *dir,
                         char *err, int err_len);
// How an export writes: the weights' type, and the tokenizer whose files go
// beside them (its special ids into config.json and generation_config.json).
typedef struct {
    bool bf16;               // bfloat16 weights (else fp32)
    const char *tokenizer;   // a tokenizer file; NULL, "" or "bytes": none (ids written null)
} HfExportOptions;

// A folder an export may write: new, empty, or a Hugging Face folder (it holds
// a config.json: an earlier export, replaced).  Any other folder is refused,
// so an export never mixes into unrelated files.  False with one line in err.
bool hf_export_dir_check(const char *dir, char *err, int err_len);
// Writes the whole model to DIR (checked as above), gathering each tensor's
// blocks to world rank 0 one tensor at a time (collective over the grid):
// model.safetensors (a tied model without lm_head.weight), config.json,
// generation_config.json and the tokenizer's files (HfExportOptions).
// Vocabulary padding is left out.  Returns the same verdict on every rank,
// with rank 0's reason in err (err_len bytes on every rank); a failed export
// leaves no partial model.safetensors.
bool hf_export_try(const Model *m, const Grid *g, const char *dir, const HfExportOptions *x,
                   char *err, int err_len);
// hf_export_try, ending the job (every rank, one message) on failure.
void hf_export(const Model *m, const Grid *g, const char *dir, const HfExportOptions *x);

#endif
