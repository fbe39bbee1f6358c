// Pre-tokenization as Hugging Face `tokenizers` does it for byte-level BPE
// and SentencePiece-style BPE: a chain of steps, each splitting every piece
// of text into smaller pieces.
//   ByteLevel  optional leading space per piece, then (use_regex) the GPT-2 regex
//   Split      a regex (or literal string) with a split behaviour and invert
//   Metaspace  spaces replaced by a character ("▁"), put in front per its
//              prepend_scheme (always / first: of the original text's start
//              only / never), then (split) a piece before each of them
//   Sequence   the steps of its members, in order
// No pre-tokenizer (null) is the empty chain: the text is one piece.
// The byte-to-character mapping of ByteLevel is implicit: pieces stay raw
// bytes and the BPE model works on bytes.  Regexes are PCRE2 in UTF + UCP
// mode (\p{L}, \p{N} as in Oniguruma), JIT-compiled, with
// PCRE2_MATCH_INVALID_UTF so that arbitrary bytes never fail a match (an
// invalid sequence is left between matches, a piece of its own).
#ifndef LLAMA_PRETOKENIZER_H
#define LLAMA_PRETOKENIZER_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

// GPT-2's pre-tokenization regex, used by ByteLevel(use_regex=true).
#define GPT2_SPLIT_REGEX \
    "'s|'t|'re|'ve|'m|'ll|'d| ?\\p{L}+| ?\\p{N}+| ?[^\\s\\p{L}\\p{N}]+|\\s+(?!\\S)|\\s+"

typedef struct {
    const char *p;
    size_t len;
} Piece;

typedef struct {
    Piece *v;
    size_t n, cap;
} PieceList;

typedef struct PreTokenizer PreTokenizer;

// Builds the chain from a tokenizer.json "pre_tokenizer" value (NULL or null:
// the empty chain).  NULL with a reason in why for a kind or option it does
// not implement.
PreTokenizer *pretokenizer_from_json(const json_t *spec, char *why, int why_len);
// The GPT-2 chain: ByteLevel(add_prefix_space=false, use_regex=true).
PreTokenizer *pretokenizer_gpt2(void);
// True when the chain has a ByteLevel step (a byte-level BPE tokenizer).
bool pretokenizer_is_byte_level(const PreTokenizer *pt);
// Splits text[0, len) into pieces (replacing out's contents).  Pieces point
// into text or into memory owned by pt, valid until the next call.
void pretokenizer_run(PreTokenizer *pt, const char *text, size_t len, PieceList *out);
// The same for a part of a text: text_start says whether it begins the
// original text (Metaspace's prepend_scheme "first").
void pretokenizer_run_from(PreTokenizer *pt, const char *text, size_t len, bool text_start,
                           PieceList *out);
void pretokenizer_free(PreTokenizer *pt);

#endif
