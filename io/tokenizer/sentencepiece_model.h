// SentencePiece models (a `tokenizer.model`: LLaMA-1/2, TinyLlama, Mistral),
// BPE or unigram, through the SentencePiece library: a C face for its C++
// API.  Encoding gives the ids of the `sentencepiece` Python package's
// sp.encode(text) (no BOS or EOS: the caller adds them), decoding its
// sp.decode(ids) (control pieces such as <s> decode to nothing, byte pieces
// to their bytes).  Also trains a LLaMA-style BPE model.
//
// The one C++ file of io/ (sentencepiece_model.cc), because the library is
// C++: it catches every exception and returns failures as one line of text
// naming the file.  An SpmModel keeps scratch memory: use one per thread.
#ifndef LLAMA_SENTENCEPIECE_MODEL_H
#define LLAMA_SENTENCEPIECE_MODEL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct SpmModel SpmModel;

// True when data, a file's bytes, may be a serialized SentencePiece model
// (a protobuf ModelProto: its first field, the pieces, starts with 0x0A).
bool spm_looks_like_model(const void *data, size_t len);

// Loads a model from its file's bytes; name (the path) is for messages.
// NULL with "NAME: why" in err when the bytes are not a usable model.
SpmModel *spm_load(const void *data, size_t len, const char *name, char *err, int err_len);
void spm_free(SpmModel *m);

// The number of pieces (ids run from 0 to size - 1).
int spm_vocab_size(const SpmModel *m);
// The model's special ids, -1 when it has none.
int spm_bos_id(const SpmModel *m);
int spm_eos_id(const SpmModel *m);
int spm_unk_id(const SpmModel *m);
int spm_pad_id(const SpmModel *m);
// The id of a piece by its text ("▁the", "<s>", "<0x0A>"), or -1.
int spm_piece_id(const SpmModel *m, const char *piece, size_t len);
// The text of piece id, NUL-terminated; NULL when id is outside the vocabulary.
const char *spm_piece(const SpmModel *m, int id);

// The ids of text[0, len), like sp.encode(text): *n of them, valid until the
// next spm_encode on m.  NULL with a reason in err when the library fails.
const int *spm_encode(SpmModel *m, const char *text, size_t len, size_t *n, char *err,
                      int err_len);
// The text of ids, like sp.decode(ids); ids outside the vocabulary are
// skipped.  malloc'd, NUL-terminated, length in *len; NULL with a reason in
// err when the library fails.
char *spm_decode(const SpmModel *m, const uint32_t *ids, size_t n, size_t *len, char *err,
                 int err_len);

// Trains a BPE model as LLaMA's tokenizer.model was trained (pieces <unk> 0,
// <s> 1, </s> 2, then 256 byte-fallback pieces <0x00>..<0xFF>, then merges;
// split_digits, no normalization (identity), a dummy prefix space, extra
// whitespace kept, whitespace-only pieces allowed, character coverage
// 0.99995, pieces of at most 16 characters) on sentences: text[0, len), one
// sentence per line ('\n'; empty lines skipped; lines over 4192 bytes are
// left out, as the library does).  Deterministic: the same sentences give
// the same model bytes.  Writes the model to path (through path.tmp, then
// renamed).  False with a reason naming path in err.
bool spm_train_bpe(const char *text, size_t len, int vocab_size, const char *path, char *err,
                   int err_len);

#ifdef __cplusplus
}
#endif

#endif
