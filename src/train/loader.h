// The training-data loader.  A sample is a window of max_length + 1 tokens of
// a shard's packed stream (windows overlap by one token).  Each epoch visits a
// seeded permutation of the samples.  Global sample g of the run goes to
// data-parallel rank (g / B) % dp; each rank reads only its own samples, with
// HDF5 hyperslab reads.  With --data-mix, every global sample first draws its
// source by weight; each source then has its own permuted epochs.  The whole
// position is LoaderState, which checkpoints store: a resumed run continues
// with exactly the samples the uninterrupted run would have seen.
#ifndef LLAMA_LOADER_H
#define LLAMA_LOADER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

// A position in the data.  {0} is the start; loader_next grows the per-source
// counts to the loader's source count (with --data-mix).  It owns its array:
// copy it with loader_state_copy, release it with loader_state_free.
typedef struct {
    uint64_t consumed;            // global samples drawn so far
    uint64_t *source_consumed;    // (n_sources) samples drawn from each source, in the
    int n_sources;                // loader's order; sources past n_sources: none yet
} LoaderState;

// A copy of st with its own array.
LoaderState loader_state_copy(const LoaderState *st);
void loader_state_free(LoaderState *st);
// The position as int64 values, what checkpoints store: consumed, then the
// per-source counts (n_sources of them).  Returns the count (1 + n_sources);
// *out is malloc'ed.
int loader_state_encode(const LoaderState *st, int64_t **out);
// The inverse, for any count n >= 1 (a checkpoint of format 1 or 2 holds 65
// values: 64 per-source counts).  On success *st (its old array released)
// holds the position; false with a reason in err when n < 1 or a value is
// negative, *st untouched.
bool loader_state_decode(const int64_t *v, int n, LoaderState *st, char *err, int err_len);

typedef struct Loader Loader;

typedef struct {
    const char *path;       // a shard file or a folder of them
    const char *split;      // "train" or "val"
    int max_length;
    int vocab_size;         // the model's: shards with larger ids are refused
    uint64_t seed;
    const char *data_mix;   // "source=weight,..." or NULL / "" (all sources as one stream)
    bool shuffle;           // permute each epoch (evaluation reads in order)
} LoaderConfig;

// Opens the shards of one split.  Returns NULL with a reason in err (no
// shards, damaged file, vocabulary larger than the model's, unknown source
// in the mix, a shard too short for one sample).
Loader *loader_open(const LoaderConfig *cfg, char *err, int err_len);
void loader_close(Loader *l);
uint64_t loader_samples(const Loader *l);          // samples per epoch (all sources)
int loader_sources(const Loader *l, const char ***names, const double **weights);
const char *loader_tokenizer_sha256(const Loader *l);
// The two datasets (a run's training and validation splits) hold ids of one
// tokenizer with one document separator; false with the reason.
bool loader_same_tokens(const Loader *a, const Loader *b, char *err, int err_len);
// A checkpoint's stored data description (loader_state_data) names the
// document separator of l's data, or none (older checkpoints); false with
// the reason.
bool loader_data_same_separator(const Loader *l, const char *data, char *err, int err_len);
// One line per shard, in the loader's order: file name, split, source,
// tokens, documents, vocabulary and token checksum root ("unchecked" for a
// shard without checksums), for ranks to compare at start.
void loader_describe(const Loader *l, char *out, size_t len);
// Shards without token checksums (written before encode kept them).
int loader_unchecked_shards(const Loader *l);
// What checkpoints store beside the counts of st, as a JSON object: the
// tokens per window, the samples of an epoch, the names of st's per-source
// counts (this loader's first st->n_sources sources) and each one's samples,
// {"window": T, "samples": N, "sources": [...], "source_samples": [...]}, so
// that a resumed run finds each source's position by name and notices data
// that changed under it; malloc'ed.
char *loader_state_data(const Loader *l, const LoaderState *st);
// Decodes a stored position (loader_state_encode's v, n) into *st with the
// counts matched to this loader's sources by name: `data` is
// loader_state_data's object for it.  A source of the checkpoint that this
// run lacks loses its position (a note says so); a new source starts at 0.
// Another window length, or a source (or the stream) with another number of
// samples, gets a note: the position then no longer continues the same
// samples.  data NULL (checkpoints before format 4): the counts are taken in
// order, refused when the source count differs from this loader's (added or
// removed sources would shift them).  False with a reason in err (malformed
// data, a negative count), *st untouched.
bool loader_state_restore(const Loader *l, const int64_t *v, int n, const char *data,
                          LoaderState *st, char *err, int err_len);
// The stored position in words for `llama-ckpt info`: "48 samples drawn of
// 256 tokens (per source: c4 20, wikipedia_sample 28)"; data NULL: "source 1
// 20, ...".
void loader_state_describe(const int64_t *v, int n, const char *data, char *out, size_t len);
// Draws dp·B global samples at st->consumed; this rank's B samples (rows of
// max_length + 1 tokens) go to rows.  Fatal on I/O errors or bad token ids.
void loader_next(Loader *l, LoaderState *st, int dp_rank, int dp, int B, int32_t *rows);
// --bench data: like loader_next, but token j of global sample g is a pure
// function of (seed, g, j), uniform over the vocabulary; no I/O.
void loader_synthetic_next(uint64_t seed, int vocab_size, int max_length, LoaderState *st,
                           int dp_rank, int dp, int B, int32_t *rows);
// Splits rows (B, max_length + 1) into inputs and next-token targets of the
// rows context-parallel rank cp_rank of cp holds (B·T / cp each: its two
// chunks of each sequence, model/context_parallel.h; cp 1: all of them).
void loader_split_rows(const int32_t *rows, int B, int T, int cp, int cp_rank, int32_t *tokens,
                       int32_t *targets);

#endif
