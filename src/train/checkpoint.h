// Sharded checkpoints: save_dir/step_NNNNNNN/checkpoint.h5, one parallel-HDF5
// file in which every tensor keeps its full logical shape.  Groups /master,
// /adam_m, /adam_v hold the fp32 master weights and Adam moments (the compute
// weights are the master weights rounded to the compute type); attributes hold
// the step, the loader position, the seed, the layout, the model shape, the
// tokenizer hash and the run's options; every dataset carries a checksum, and
// "state_sha256" covers every attribute and every dataset checksum.
// Formats: 4 stores the names of the loader position's per-source counts
// beside it; 3 stored the position with its own length (1 + the sources of
// the run's --data-mix); 2 stored it as 65 values; 1 had no state_sha256.
// This build reads all four and writes 4; any other format is refused with
// its version and these.
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
//
// The module knows no trainer: a save or a load is given its parts
// (CheckpointRun, CheckpointParts).  llama-train builds them from its trainer
// (train.c), llama-ckpt from a model alone (no optimizer).
#ifndef LLAMA_CHECKPOINT_H
#define LLAMA_CHECKPOINT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "comm/comm.h"
#include "core/config.h"
#include "model/params.h"
#include "parallel/grid.h"
#include "train/zero.h"

// The run a checkpoint belongs to: its grid and its --save-dir settings.
typedef struct {
    const Grid *grid;         // layout (dp, tp, pp and this rank's place) and communicators
    const char *save_dir;     // --save-dir: the folder whose lock and rules apply
    int keep_checkpoints;     // --keep-checkpoints (0: keep every one)
    bool writes_dir;          // the run saves there (--save-interval, or --load auto)
} CheckpointRun;

// The optimizer's state over this rank's shard of the flat parameter buffers
// (train/zero.h: its chunk of every unit): fp32 buffers of layout->len
// elements in the memory of `ops`.
typedef struct {
    float *master, *m, *v;    // master weights, Adam's first and second moments
    const Ops *ops;           // whose memory they are (the CPU's with --offload optimizer)
    const ZeroLayout *layout;
    bool master_is_weights;   // master is the compute weights (fp32, no ZeRO): loaded with them
    int zero;                 // ZeRO stage; 0: data-parallel rank 0 writes the replicas
} CheckpointOptimizer;

// Where the run stands, saved with the tensors and restored by checkpoint_load.
typedef struct {
    int64_t step;             // training steps done
    int64_t optimizer_step;   // updates made: step less the skipped ones (the schedule's clock)
    int64_t *loader;          // the data position as loader_state_encode wrote it
    int loader_len;           // (checkpoint_load: malloc'ed; checkpoint_position_free)
    char *loader_data;        // names of loader[1..], loader_state_data' JSON array; NULL:
                              // none (saves: "[]"; loads: a checkpoint before format 4)
    char *options;            // loads: the saving run's options as a run deck (NULL: none)
} CheckpointPosition;

// What a checkpoint is saved from and loaded into.
typedef struct {
    const Ops *ops;                     // the backend of weights and optimizer buffers
    const ModelConfig *cfg;             // the model's shape
    const ParamTable *table;            // this rank's blocks and their place in the flat buffers
    void *weights;                      // compute weights (the backend's type, device memory)
    const CheckpointOptimizer *optim;   // NULL: the weights alone (saved with zero moments)
    CheckpointPosition pos;
    uint64_t seed;                      // --seed; UINT64_MAX: none (imports: any seed continues)
    const char *options;                // the run's options as a run deck (saved; NULL: none)
    const char *tokenizer_sha256;       // of the training data; NULL or "": no data
    bool override_config;               // --override-checkpoint-config (loads)
} CheckpointParts;

// Collective: takes --save-dir's lock (once per process; released when the
// process exits).  Ends the job with the other run's host and pid when a
// live run holds it.  checkpoint_resolve and checkpoint_save call it too.
void checkpoint_claim(const CheckpointRun *r);
// Collective, once the run's starting step is known (after --load): when the
// run writes checkpoints (r->writes_dir), takes the lock and moves the
// checkpoints newer than step aside, saying so in one line.  The first
// checkpoint_save does it when nobody did.
void checkpoint_start(const CheckpointRun *r, int64_t step);
// Collective: saves p at step p->pos.step (step_N.tmp, verified, renamed to
// step_N, then the "latest" marker), then prunes to r->keep_checkpoints.  On
// failure the temporary folder is removed and the job ends with the reason;
// the previous checkpoints and "latest" stay.
void checkpoint_save(const CheckpointRun *r, const CheckpointParts *p);
// The checkpoint --load (load) names: a folder, or "auto" (the newest
// complete one in --save-dir, "latest" first).  Returns false for "auto" with
// none (a fresh start); fatal for an explicit path that is not a checkpoint.
bool checkpoint_resolve(const CheckpointRun *r, const char *load, char *dir, int len);
// Collective: the checkpoint --load auto picks (taking --save-dir's lock when
// r->writes_dir; a reader such as --eval-only takes none, so it may look at a
// live run's folder); false when --save-dir holds none.
bool checkpoint_newest(const CheckpointRun *r, char *dir, int len);
// Collective: loads dir (any layout) into p's weights and optimizer state and
// sets p->pos (its loader values malloc'ed), verifying the attributes' digest,
// the folder name against the step, shapes, the tokenizer and seed, every
// checksum and that every value is finite first.  Fatal with a clear message
// when the checkpoint cannot be used; nothing is changed then.
void checkpoint_load(const CheckpointRun *r, CheckpointParts *p, const char *dir);
// The caller's position left the one checkpoint_load set at that same step (a
// rollback kept its data position past the skipped samples): a save of that
// step then writes it again, replacing the loaded folder, instead of keeping
// it as it is.  The next checkpoint_load forgets it.
void checkpoint_mark_moved(void);
// Like checkpoint_load, but only the weights (verified); p->optim and p->pos
// are not used, and --save-dir's rules not applied.
void checkpoint_load_weights(const CheckpointRun *r, const CheckpointParts *p, const char *dir);
void checkpoint_position_free(CheckpointPosition *pos);
// Collective: releases --save-dir's lock now (it is released at exit anyway).
void checkpoint_release(const CheckpointRun *r);

// What a checkpoint folder holds, without loading it (this rank alone);
// fails when its attributes do not match their digest or the folder name
// names another step.
typedef struct {
    ModelConfig cfg;
    int format;               // 1 to 4
    int64_t step, seed;
    CheckpointPosition pos;   // its loader values and their names (checkpoint_position_free)
    int64_t layout[4];        // dp, tp, pp, ZeRO stage of the run that saved it
    char *options;            // that run's options as a run deck (malloc'ed)
    char tokenizer_sha256[72];
} CheckpointInfo;
bool checkpoint_info(const char *dir, CheckpointInfo *ci, char *err, int err_len);
// Releases what checkpoint_info allocated (also after it failed).
void checkpoint_info_free(CheckpointInfo *ci);

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
