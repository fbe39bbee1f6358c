// llama-tokenize: its options and subcommands (train, encode, inspect, verify,
// bench).
#ifndef LLAMA_TOKENIZE_H
#define LLAMA_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cli.h"
#include "text/corpus_files.h"

// What train makes (--kind).
typedef enum {
    TOKENIZER_KIND_DEFAULT = 0,     // not given: bpe
    TOKENIZER_KIND_BPE,             // byte-level BPE, a Hugging Face tokenizer.json
    TOKENIZER_KIND_SENTENCEPIECE,   // a LLaMA-style SentencePiece BPE tokenizer.model
} TokenizerKind;

typedef struct {
    CliList inputs;           // --input FILE|DIR ...
    const char *tokenizer;    // --tokenizer FILE|bytes
    const char *output;       // --output DIR (encode) or FILE (train)
    const char *text_key;     // --text-key
    const char *eos;          // --eos TOKEN
    double val_fraction;      // --val-fraction
    uint64_t seed;            // --seed
    bool skip_bad;            // --skip-bad
    bool overwrite;           // --overwrite (encode: delete the output folder's shards)
    int64_t max_record_bytes; // --max-record-bytes
    double progress_every;    // --progress SECONDS (0: off)
    int vocab_size;           // --vocab-size (train)
    CliList specials;         // --special a,b (train)
    int kind;                 // --kind bpe|sentencepiece (train): a TokenizerKind
    CliList shards;           // inspect, verify: the shard files (or folders)
} TokenizeOptions;

void tokenize_encode(const TokenizeOptions *o);
void tokenize_train(const TokenizeOptions *o);
void tokenize_train_sentencepiece(const TokenizeOptions *o);
// train: the tokenizer file path is none of the corpus files c (writing it
// would destroy that input), no folder, and new unless overwrite (shards
// encoded with an earlier tokenizer need it); else every rank ends with the
// reason.
void tokenize_train_output_check(const CorpusFiles *c, const char *path, bool overwrite);
void tokenize_inspect(const TokenizeOptions *o);
void tokenize_verify(const TokenizeOptions *o);
void tokenize_bench(const TokenizeOptions *o);

#endif
