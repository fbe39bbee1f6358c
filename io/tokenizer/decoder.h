// The decoders of SentencePiece-style (LLaMA-1/2) tokenizer.json files, as
// Hugging Face `tokenizers` runs them: each step turns the list of token
// texts into a new list, and the text is the final list joined.
//   Replace       every occurrence of a String pattern in each token ("▁" -> " ")
//   ByteFallback  runs of <0xNN> tokens become their bytes when those are
//                 UTF-8, else one U+FFFD per byte
//   Fuse          all tokens joined into one
//   Strip         up to start / stop copies of a character off each token's ends
//   Metaspace     the replacement character as a space, dropped in the first
//                 token (unless prepend_scheme is "never")
//   Sequence      its members in order
// No decoder (null) joins the tokens with spaces, as tokenizers does.
// ByteLevel is not among them: byte-level tokenizers decode by table.
#ifndef LLAMA_DECODER_H
#define LLAMA_DECODER_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct Decoder Decoder;

// Builds it from a tokenizer.json "decoder" value (NULL or null: none).  NULL
// with a reason in why for a kind or option it does not implement.
Decoder *decoder_from_json(const json_t *spec, char *why, int why_len);
// The text of ids (malloc'd, NUL-terminated, length in *len); id i's token
// text is text[off[i], off[i + 1]).  Ids from n_tokens up, and ids with an
// empty text (no token), are skipped.
char *decoder_run(const Decoder *d, const char *text, const size_t *off, size_t n_tokens,
                  const uint32_t *ids, size_t n, size_t *len);
void decoder_free(Decoder *d);

#endif
