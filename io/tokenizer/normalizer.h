// The normalizers of a tokenizer.json that SentencePiece-style (LLaMA-1/2)
// tokenizers use, applied as Hugging Face `tokenizers` applies them: to each
// piece of text between added tokens, before pre-tokenization.
//   Prepend  its string before a non-empty text (LLaMA's "▁" dummy prefix)
//   Replace  every occurrence of a String pattern, left to right, by content
//            (" " -> "▁")
//   Sequence its members in order; null or an empty Sequence does nothing
// Anything else (NFC, NFKC, Precompiled, Strip, a Regex pattern, ...) is
// refused with its name.  A Normalizer keeps scratch memory: one per thread.
#ifndef LLAMA_NORMALIZER_H
#define LLAMA_NORMALIZER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct Normalizer Normalizer;

// Builds it from a tokenizer.json "normalizer" value (NULL or null: none).
// NULL with a reason in why for a kind or option it does not implement.
Normalizer *normalizer_from_json(const json_t *spec, char *why, int why_len);
// True when it leaves every text as it is.
bool normalizer_is_identity(const Normalizer *n);
// The normalized form of text[0, len), length in *out_len; it lives in n's
// memory until the next call.
const char *normalizer_run(Normalizer *n, const char *text, size_t len, size_t *out_len);
void normalizer_free(Normalizer *n);

#endif
