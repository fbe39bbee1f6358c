// Hugging Face LLaMA folders (model.safetensors + config.json, the tensor names
// and shapes of transformers' LlamaForCausalLM) in and out of the model.
#ifndef LLAMA_HF_H
#define LLAMA_HF_H

#include <stdbool.h>

#include "parallel/grid.h"
#include "model/model.h"

// Loads this rank's block of every tensor it holds from DIR into the compute
// weights (each rank reads only its own slices).  The folder's config must
// describe the same model shape.  False with one line in err otherwise.
bool hf_import(Model *m, const char *dir, char *err, int err_len);
// A folder an export may write: new, empty, or a Hugging Face folder (it holds
// a config.json: an earlier export, replaced).  Any other folder is refused,
// so an export never mixes into unrelated files.  False with one line in err.
bool hf_export_dir_check(const char *dir, char *err, int err_len);
// Writes the whole model to DIR (checked as above), gathering each tensor's
// blocks to world rank 0 one tensor at a time (collective over the grid).
// Vocabulary padding is left out.  Returns the same verdict on every rank,
// with rank 0's reason in err (err_len bytes on every rank); a failed export
// leaves no partial model.safetensors.
bool hf_export_try(const Model *m, const Grid *g, const char *dir, bool bf16, char *err,
                   int err_len);
// hf_export_try, ending the job (every rank, one message) on failure.
void hf_export(const Model *m, const Grid *g, const char *dir, bool bf16);

#endif
