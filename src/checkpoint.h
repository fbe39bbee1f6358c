// Sharded checkpoints: save_dir/step_NNNNNNN/checkpoint.h5, one parallel-HDF5
// file in which every tensor keeps its full logical shape.  Groups /master,
// /adam_m, /adam_v hold the fp32 master weights and Adam moments (the compute
// weights are the master weights rounded to the compute type); attributes hold
// the step, the loader position, the seed, the layout, the model shape, the
// tokenizer hash and the run's options; every dataset carries a checksum.
// Each rank writes and reads only its own hyperslabs, so a checkpoint saved
// by one layout (DP, TP, PP, ZeRO stage) loads into any other.
#ifndef LLAMA_CHECKPOINT_H
#define LLAMA_CHECKPOINT_H

#include <stdbool.h>

#include "train.h"

// Collective: saves the trainer's state after t->step steps, atomically
// (step_N.tmp renamed to step_N, then the "latest" marker), then prunes to
// --keep-checkpoints.  Fatal on failure (the previous checkpoint stays).
void checkpoint_save(Trainer *t);
// The checkpoint --load names: a folder, or "auto" (the newest complete one
// in --save-dir).  Returns false for "auto" with none (a fresh start); fatal
// for an explicit path that is not a checkpoint.
bool checkpoint_resolve(const Trainer *t, char *dir, int len);
// Collective: loads dir into the trainer (any layout), verifying shapes,
// the tokenizer and every checksum first.  Fatal with a clear message when
// the checkpoint cannot be used; nothing is changed then.
void checkpoint_load(Trainer *t, const char *dir);
// Like checkpoint_load, but only the model weights (verified), not the optimizer or position.
void checkpoint_load_weights(Trainer *t, const char *dir);
// What a checkpoint folder holds, without loading it (this rank alone).
typedef struct {
    ModelConfig cfg;
    int64_t step, seed;
    int64_t layout[4];        // dp, tp, pp, ZeRO stage of the run that saved it
    char *options;            // that run's options as a run deck (malloc'ed)
    char tokenizer_sha256[72];
} CheckpointInfo;
bool checkpoint_info(const char *dir, CheckpointInfo *ci, char *err, int err_len);
// Collective over world: reads every tensor once (split over the ranks) and
// checks it against its checksum.  Exits with the message when unreadable.
bool checkpoint_verify(const Comm *world, const char *dir, const ModelConfig *cfg, char *err,
                       int err_len);

#endif
