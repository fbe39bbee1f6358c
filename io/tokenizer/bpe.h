// The BPE model: a vocabulary of byte strings and ranked merges.  A word (one
// pre-token) starts as one symbol per byte (byte-level BPE) or per UTF-8
// character (`chars`: SentencePiece-style BPE, where a character without a
// token becomes its bytes' <0xNN> tokens with byte_fallback, else unk), and
// the adjacent pair of lowest merge rank is merged, leftmost first, until no
// pair has a merge: the same result as Hugging Face `tokenizers`' BPE.
// Frequent words are cached.
#ifndef LLAMA_BPE_H
#define LLAMA_BPE_H

#include <stdbool.h>
#include <stdint.h>

#include "core/hashmap.h"
#include "tokenizer/token_ids.h"

typedef struct {
    StrMap vocab;          // token bytes -> id
    U64Map merges;         // (left << 32 | right) -> (rank << 32 | merged id)
    int32_t byte_id[256];  // id of each single byte, -1 when absent
    int32_t unk_id;        // -1: bytes (characters) without a token are dropped
    bool fuse_unk;
    bool chars;            // symbols start as UTF-8 characters, not bytes
    bool byte_fallback;    // (chars) a character without a token: its <0xNN> tokens
    int32_t byte_token[256];  // id of <0xNN> for each byte, -1 when absent
    bool cut_at_metaspace; // words are cut before "▁" after another character
    bool ignore_merges;    // a word that is in the vocabulary is one token (LLaMA-3)
    StrMap cache;          // word -> (offset << 16 | count) into cache_ids
    TokenIds cache_ids;
    // scratch for merging
    int32_t *sym, *prev, *next, *rank;
    int64_t *heap;
    size_t scratch_cap, heap_cap;
} Bpe;

void bpe_init(Bpe *b);
void bpe_free(Bpe *b);
// Adds a vocabulary entry; false when the bytes are there already.
bool bpe_add_token(Bpe *b, const void *bytes, size_t len, int32_t id);
// Looks up a token by its bytes: its id or -1.
int32_t bpe_token_id(const Bpe *b, const void *bytes, size_t len);
// Registers merge number rank: (left, right) -> merged.  A later merge of
// the same pair replaces an earlier one, as in tokenizers.
void bpe_add_merge(Bpe *b, int32_t left, int32_t right, int32_t merged, int32_t rank);
// Fills byte_id and byte_token from the vocabulary; call after the last
// bpe_add_token.
void bpe_finish(Bpe *b);
// Lets SentencePiece-style words (a whole text when there is no pre-tokenizer)
// be cut before every "▁" that follows another character, when "▁" is a
// token and no token has "▁" after another character: no merge can cross
// such a cut, so the pieces encode alone (and are cached) to the same ids.
// Never with ignore_merges.  Call after the last bpe_add_token and after
// setting ignore_merges.
void bpe_allow_metaspace_cuts(Bpe *b);
// Appends the ids of one word.
void bpe_encode_word(Bpe *b, const char *word, size_t len, TokenIds *out);
// The merge loop alone, without cache or ignore_merges, by the O(n log n)
// heap algorithm (heap) or the O(n^2) scan used for short words; both give
// the same ids (exposed for tests).
void bpe_merge_word(Bpe *b, const char *word, size_t len, bool heap, TokenIds *out);

#endif
