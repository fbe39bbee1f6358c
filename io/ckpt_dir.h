// The checkpoint folder: save_dir/step_NNNNNNN/ directories, written under
// step_NNNNNNN.tmp/ and renamed when complete, and a "latest" marker file
// naming the newest complete one (replaced atomically, last).
#ifndef LLAMA_CKPT_DIR_H
#define LLAMA_CKPT_DIR_H

#include <stdbool.h>
#include <stdint.h>

// "save_dir/step_%07lld" (tmp adds ".tmp").
void ckpt_dir_name(const char *save_dir, int64_t step, bool tmp, char *out, int len);
// Removes a stale tmp folder of that name and creates it afresh.
bool ckpt_dir_prepare(const char *tmp_dir, char *err, int err_len);
// Renames tmp to final (replacing an older final of the same step) and
// points save_dir/latest at it.
bool ckpt_dir_commit(const char *save_dir, const char *tmp_dir, const char *final_dir,
                     char *err, int err_len);
// Complete checkpoint folders in save_dir, newest first (step_* without
// .tmp); returns the count, names in *dirs (full paths).  The "latest"
// marker's target comes first when it exists.
int ckpt_dir_list(const char *save_dir, char ***dirs);
void ckpt_dir_list_free(char **dirs, int n);
// Keeps the newest `keep` complete checkpoints, removes the rest and any
// stale .tmp folders.
void ckpt_dir_prune(const char *save_dir, int keep);
bool ckpt_dir_exists(const char *path);
// save_dir/preempted: written when a signal stopped the run after saving
// (the Slurm job script requeues the job when it finds it), removed when a
// run starts.
bool ckpt_dir_mark_preempted(const char *save_dir, int64_t step, char *err, int err_len);
void ckpt_dir_clear_preempted(const char *save_dir);

#endif
