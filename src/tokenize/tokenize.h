// llama-tokenize: its options and subcommands (train, encode, inspect).
#ifndef LLAMA_TOKENIZE_H
#define LLAMA_TOKENIZE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    char **inputs;            // --input FILE|DIR ...
    int n_inputs;
    const char *tokenizer;    // --tokenizer FILE|bytes
    const char *output;       // --output DIR (encode) or FILE (train)
    const char *text_key;     // --text-key
    const char *eos;          // --eos TOKEN
    double val_fraction;      // --val-fraction
    int64_t seed;             // --seed
    bool skip_bad;            // --skip-bad
    bool overwrite;           // --overwrite (encode: delete the output folder's shards)
    int64_t max_record_bytes; // --max-record-bytes
    double progress_every;    // --progress SECONDS (0: off)
    int vocab_size;           // --vocab-size (train)
    char **specials;          // --special a,b (train)
    int n_specials;
    char **shards;            // inspect: the shard files
    int n_shards;
} TokenizeOptions;

void tokenize_encode(const TokenizeOptions *o);
void tokenize_train(const TokenizeOptions *o);
void tokenize_inspect(const TokenizeOptions *o);
void tokenize_verify(const TokenizeOptions *o);
void tokenize_bench(const TokenizeOptions *o);

#endif
