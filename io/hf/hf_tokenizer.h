// The tokenizer files of a Hugging Face model folder, so that
// transformers.AutoTokenizer.from_pretrained(folder) loads what the model was
// trained with: the tokenizer file copied beside the weights (tokenizer.json,
// or a SentencePiece tokenizer.model) and a tokenizer_config.json naming the
// class and the special tokens.
#ifndef LLAMA_HF_TOKENIZER_H
#define LLAMA_HF_TOKENIZER_H

#include <stdbool.h>

typedef struct {
    const char *file;        // the tokenizer file (tokenizer.json or a SentencePiece model)
    const char *bos, *eos;   // special tokens' texts; NULL: none
    const char *pad;         // NULL: none
    int max_length;          // model_max_length (the model's context)
} HfTokenizerFiles;

// Copies t->file into dir (as tokenizer.json when it is JSON, else as
// tokenizer.model) and writes dir/tokenizer_config.json, each atomically;
// then removes the other tokenizer files an earlier export left there.
// False with one line naming the file in err.
bool hf_tokenizer_write(const char *dir, const HfTokenizerFiles *t, char *err, int err_len);
// Removes every tokenizer file an earlier export left in dir (an export
// without a tokenizer), so none is taken for the new weights'.
bool hf_tokenizer_remove(const char *dir, char *err, int err_len);
// Whether name is one of the tokenizer files an export writes or removes.
bool hf_tokenizer_is_file(const char *name);

#endif
