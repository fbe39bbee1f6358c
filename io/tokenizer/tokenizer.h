// BPE tokenizers read from a Hugging Face tokenizer.json, giving the same ids
// as the `tokenizers` library: byte-level ones of the GPT-2 / LLaMA-3 family
// (a ByteLevel pre-tokenizer) and SentencePiece-style ones of the LLaMA-1/2
// family (tokens are UTF-8 text with "▁" for spaces, <0xNN> byte-fallback
// tokens); and the raw byte tokenizer ("bytes": vocabulary 256, id = byte).
//
// Supported tokenizer.json parts: model BPE (vocab, merges as "a b" or
// ["a", "b"], ignore_merges, unk_token/fuse_unk, byte_fallback), normalizer
// null / Prepend / Replace of a string / Sequence of them, pre_tokenizer null
// / ByteLevel / Split / Metaspace / Sequence, added_tokens, post_processor
// null / ByteLevel / TemplateProcessing / Sequence of them, decoder ByteLevel
// or null (byte-level), Replace / ByteFallback / Fuse / Strip / Metaspace /
// Sequence or null (the others).  Anything else is refused with the part
// named.  truncation and padding settings are ignored (whole documents are
// encoded).
//
// Also SentencePiece tokenizer.model files (BPE or unigram, through the
// library: sentencepiece_model.h): ids of sp.encode(text), the model's <s>
// before a text with add_special, its </s> as end of text, decoding as
// sp.decode.
//
// A Tokenizer keeps caches and scratch memory: use one per thread.
#ifndef LLAMA_TOKENIZER_H
#define LLAMA_TOKENIZER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "tokenizer/token_ids.h"

typedef struct Tokenizer Tokenizer;

// Loads a tokenizer.json or a SentencePiece tokenizer.model (told apart by
// content: JSON starts with '{'), or the byte tokenizer when spec is "bytes".  NULL
// with a one-line reason naming the file and the unsupported part in err.
Tokenizer *tokenizer_load(const char *spec, char *err, int err_len);
void tokenizer_free(Tokenizer *t);

// max id + 1 over the vocabulary and the added tokens.
int64_t tokenizer_vocab_size(const Tokenizer *t);
// The BOS the post-processor puts before every text, or -1.
int64_t tokenizer_bos_id(const Tokenizer *t);
// The end-of-text token that separates documents: the first special added
// token among <|endoftext|>, <|end_of_text|>, </s>, <eos>, ..., or -1.
int64_t tokenizer_eos_id(const Tokenizer *t);
// Chooses the end-of-text token by its text (a vocabulary or added token).
bool tokenizer_set_eos(Tokenizer *t, const char *token, char *err, int err_len);
// Whether token is a special added token (text never produces it by accident).
bool tokenizer_is_special(const Tokenizer *t, const char *token);
// The text of token id as the tokenizer's files name it (an added token's
// content, a vocabulary entry, a SentencePiece piece: "<s>", not what it
// decodes to), malloc'ed; NULL for none (and for the byte tokenizer).
char *tokenizer_token_text(const Tokenizer *t, int64_t id);
// The id of a token given by its text (as in tokenizer.json), or -1.
int64_t tokenizer_token_id(const Tokenizer *t, const char *token);
// SHA-256 of the tokenizer file (of the word "bytes" for the byte tokenizer),
// 64 hex digits.
const char *tokenizer_sha256(const Tokenizer *t);
// "bytes" or the path it was loaded from.
const char *tokenizer_name(const Tokenizer *t);

// Appends the ids of text[0, len), like tokenizers' encode(text,
// add_special_tokens=add_special).ids.  Any bytes are accepted.
void tokenizer_encode(Tokenizer *t, const char *text, size_t len, bool add_special,
                      TokenIds *out);
// Appends one document: encode(text, add_special=true) then the end-of-text
// token (unless the post-processor already ended it with that token).
void tokenizer_encode_document(Tokenizer *t, const char *text, size_t len, TokenIds *out);
// The bytes of ids (special tokens as their text), like tokenizers'
// decode(ids, skip_special_tokens=False); malloc'd, NUL-terminated, length in
// *len.  Ids outside the vocabulary are skipped.
char *tokenizer_decode(const Tokenizer *t, const uint32_t *ids, size_t n, size_t *len);

#endif
