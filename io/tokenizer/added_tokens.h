// Added tokens (special tokens such as <|endoftext|>, and user-added ones):
// found in the text before pre-tokenization, as Hugging Face `tokenizers`
// does: leftmost-longest non-overlapping matches, first of the tokens with
// normalized=false over the whole text, then of those with normalized=true
// in the pieces between (added_tokens_split matches both on raw text; with
// a normalizer, added_tokens_split_stage matches each stage on its own);
// single_word, lstrip and rstrip are honoured.
#ifndef LLAMA_ADDED_TOKENS_H
#define LLAMA_ADDED_TOKENS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/hashmap.h"

typedef struct {
    char *content;
    size_t len;
    int32_t id;
    bool single_word, lstrip, rstrip, normalized, special;
} AddedToken;

typedef struct {
    U64Map edges;       // (node << 8 | byte) -> child node
    int32_t *terminal;  // node -> index of the token ending there, or -1
    int32_t n_nodes;
    bool first[256];    // bytes that start some token
} AddedTrie;

typedef struct {
    AddedToken *tokens;
    int n;
    AddedTrie trie[2];  // [0]: normalized=false tokens, [1]: normalized=true
    void *word_re, *space_re;  // pcre2_code for \w and \s (single_word, lstrip, rstrip)
    void *md;
} AddedTokens;

typedef struct {
    size_t start, end;
    int32_t id;         // the added token's id, or -1 for text to tokenize
} TextSplit;

typedef struct {
    TextSplit *v;
    size_t n, cap;
} SplitList;

void added_tokens_init(AddedTokens *a);
void added_tokens_free(AddedTokens *a);
// Adds a token (content copied); a token with the same content replaces the
// earlier one's id and flags.
void added_tokens_add(AddedTokens *a, const AddedToken *t);
// Builds the matchers; call after the last add.
void added_tokens_finish(AddedTokens *a);
// Finds the added token with this content: its index or -1.
int added_tokens_find(const AddedTokens *a, const char *content, size_t len);
// Splits text[0, len) into text pieces and added tokens, in order.
void added_tokens_split(AddedTokens *a, const char *text, size_t len, SplitList *out);
// One of the two stages alone: the tokens with normalized=false (to split
// the raw text) or with normalized=true (to split a normalized piece).
void added_tokens_split_stage(AddedTokens *a, bool normalized, const char *text, size_t len,
                              SplitList *out);

#endif
