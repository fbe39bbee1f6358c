// Sharded checkpoints: save_dir/step_NNNNNNN/checkpoint.h5, one parallel-HDF5
// file in which every tensor keeps its full logical shape.  Groups /master,
// /adam_m, /adam_v hold the fp32 master weights and Adam moments (the compute
// weights are the master weights rounded to the compute type); attributes hold
// the step, the loader position, the seed, the layout, the model shape, the
// tokenizer hash and the run's options; every dataset carries a checksum, and
// "state_sha256" covers every attribute and every dataset checksum (format 2;
// format-1 checkpoints, without it, still load).
// Each rank writes and reads only its own hyperslabs, so a checkpoint saved
// by one layout (DP, TP, PP, ZeRO stage) loads into any other.
//
// The folder rules (io/fs/ckpt_dir.h) that keep the newest good state: a run
// takes --save-dir's lock before it reads or writes checkpoints there; a run
// that starts from an older step than the folder's newest moves the newer
// checkpoints aside (abandoned_step_N_<time>); a save is renamed to step_N
// only after every rank flushed it and it was re-read and verified (every
// checksum, finite weights); "latest" names the last save; pruning keeps the
// checkpoint just written and the one loaded.  This state lives in this
// module (one run per process).
#ifndef LLAMA_CHECKPOINT_H
#define LLAMA_CHECKPOINT_H

#include <stdbool.h>

#include "train/train.h"

// Collective: takes --save-dir's lock (once per process; released when the
// process exits).  Ends the job with the other run's host and pid when a
// live run holds it.  checkpoint_resolve and checkpoint_save call it too.
void checkpoint_claim(const Trainer *t);
// Collective, once the run's starting step is known (after --load): when the
// run writes checkpoints (--save-interval, or --load auto), takes the lock
// and moves the checkpoints newer than t->step aside, saying so in one line.
// The first checkpoint_save does it when nobody did.
void checkpoint_start(const Trainer *t);
// Collective: saves the trainer's state after t->step steps (step_N.tmp,
// verified, renamed to step_N, then the "latest" marker), then prunes to
// --keep-checkpoints.  On failure the temporary folder is removed and the
// job ends with the reason; the previous checkpoints and "latest" stay.
void checkpoint_save(Trainer *t);
// The checkpoint --load names: a folder, or "auto" (the newest complete one
// in --save-dir, "latest" first).  Returns false for "auto" with none (a
// fresh start); fatal for an explicit path that is not a checkpoint.
bool checkpoint_resolve(const Trainer *t, char *dir, int len);
// Collective: the checkpoint --load auto picks (taking --save-dir's lock);
// false when --save-dir holds none.
bool checkpoint_newest(const Trainer *t, char *dir, int len);
// Collective: loads dir into the trainer (any layout), verifying the
// attributes' digest, the folder name against the step, shapes, the
// tokenizer, every checksum and that every value is finite first.  Fatal
// with a clear message when the checkpoint cannot be used; nothing is changed
// then.
void checkpoint_load(Trainer *t, const char *dir);
// Like checkpoint_load, but only the model weights (verified), not the optimizer or position.
void checkpoint_load_weights(Trainer *t, const char *dir);
// Collective: releases --save-dir's lock now (it is released at exit anyway).
void checkpoint_release(const Trainer *t);

// What a checkpoint folder holds, without loading it (this rank alone);
// fails when its attributes do not match their digest or the folder name
// names another step.
typedef struct {
    ModelConfig cfg;
    int format;               // 1 or 2
    int64_t step, seed;
    int64_t layout[4];        // dp, tp, pp, ZeRO stage of the run that saved it
    char *options;            // that run's options as a run deck (malloc'ed)
    char tokenizer_sha256[72];
} CheckpointInfo;
bool checkpoint_info(const char *dir, CheckpointInfo *ci, char *err, int err_len);

// Non-finite values (NaN, ±Inf) found by checkpoint_verify.
typedef struct {
    long long nonfinite[3];   // master weights, Adam m, Adam v
    char first[160];          // group/tensor of the first one ("" when none)
} CheckpointHealth;
// Collective over world: checks the attributes' digest and the folder name,
// reads every tensor once (split over the ranks), checks it against its
// checksum and counts non-finite values into *h.  Ends the job with the
// reason when the checkpoint is unreadable or corrupt.
void checkpoint_verify(const Comm *world, const char *dir, CheckpointHealth *h);

#endif
