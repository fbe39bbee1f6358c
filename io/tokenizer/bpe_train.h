// Learning a byte-level BPE vocabulary (llama-tokenize train), GPT-2 style:
// texts are pre-tokenized with the GPT-2 regex, words counted, and, starting
// from the 256 single bytes (id = byte value), the most frequent adjacent
// pair is merged into a new token until the vocabulary is full.  Ties go to
// the smallest pair of ids (left, then right), so the result depends only on
// the word counts: the same for any order of the corpus and any rank count.
// Written as a Hugging Face tokenizer.json (ByteLevel pre-tokenizer, BPE,
// ByteLevel decoder), special tokens after the merges.
#ifndef LLAMA_BPE_TRAIN_H
#define LLAMA_BPE_TRAIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hashmap.h"
#include "tokenizer/pretokenizer.h"

typedef struct {
    StrMap words;        // word bytes -> count
    PreTokenizer *pt;
    PieceList pieces;
} WordCounts;

void word_counts_init(WordCounts *w);
void word_counts_free(WordCounts *w);
// Pre-tokenizes text and counts its words.
void word_counts_add_text(WordCounts *w, const char *text, size_t len);
// Serializes the counts (to send them to another rank); malloc'd.
char *word_counts_pack(const WordCounts *w, size_t *len);
// Adds counts serialized by word_counts_pack.
void word_counts_add_packed(WordCounts *w, const char *buf, size_t len);

typedef struct {
    unsigned char **bytes;   // token id -> its bytes
    size_t *len;
    int n_tokens;            // 256 + merges
    int32_t (*merges)[2];    // merge i made token 256 + i from these two
    int n_merges;
} BpeVocab;

// Learns up to n_merges merges.  Fewer when the words run out of pairs.
void bpe_train_learn(const WordCounts *w, int n_merges, BpeVocab *out);
void bpe_vocab_free(BpeVocab *v);
// The id of the vocabulary token whose (byte-level) string is text, or -1.
int bpe_train_vocab_id(const BpeVocab *v, const char *text);
// The byte whose byte-level symbol is text ("é" is byte 0xE9's), or -1.
int bpe_train_byte_symbol(const char *text);
// Writes the tokenizer.json (via a temporary name, renamed when complete).
// False when a special token's text is a vocabulary string: text holding it
// would then encode as the special token.
bool bpe_train_write(const BpeVocab *v, char **specials, int n_specials, const char *path,
                     char *err, int err_len);

#endif
