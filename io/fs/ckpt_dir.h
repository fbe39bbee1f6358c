// The checkpoint folder (--save-dir) and its rules, which never lose the
// newest good state:
//   step_N/            complete checkpoints (N in at least 7 digits, ordered
//                      by number, so step_10000000 is newer than step_9999999)
//   step_N.tmp/        a save under way; its "owner" file names the process
//                      (host, pid, start time); renamed to step_N once the
//                      save is verified complete on disk
//   step_N.deleting/   a checkpoint being removed (renamed first, so no crash
//                      leaves a half-deleted folder under a complete name)
//   step_N.replaced/   the complete step_N a new save of step N is replacing
//                      (after a rollback that skipped data): moved aside, not
//                      removed, until the new one is in place; the next run
//                      taking the lock renames it back when step_N is missing
//                      (a crash between the renames) and removes it otherwise
//   abandoned_step_N_<time>/  a checkpoint newer than the one a run resumed
//                      from, moved aside (kept; --load auto skips it)
//   latest             names the checkpoint saved last (replaced atomically)
//   lock               names the run using the folder (host, pid, ...)
// Rank 0 alone calls these; nothing here uses MPI.
#ifndef LLAMA_CKPT_DIR_H
#define LLAMA_CKPT_DIR_H

#include <stdbool.h>
#include <stdint.h>

// "save_dir/step_%07lld" (tmp adds ".tmp").
void ckpt_dir_name(const char *save_dir, int64_t step, bool tmp, char *out, int len);
// The checkpoint file of checkpoint folder dir: "dir/checkpoint.h5".
void ckpt_dir_file(const char *dir, char *out, int len);
// The step N of a folder named exactly "step_N" (a path's last component,
// trailing slashes ignored; N of 1 to 18 digits), else -1.
int64_t ckpt_dir_step_of(const char *path);
// Whether path names a save under way or killed: a folder "*.tmp" (trailing
// slashes ignored), never verified and removed by the next save.
bool ckpt_dir_is_unfinished(const char *path);
bool ckpt_dir_exists(const char *path);
// Whether the folder's rules write or move a file or folder of this name in
// save_dir (step_N and its .tmp / .deleting / .replaced forms, abandoned_*, latest,
// latest.tmp, lock, preempted, the shared-folder probe): anything else put
// there under such a name would be replaced, moved or deleted.
bool ckpt_dir_owns_name(const char *name);

// ---- owners of the lock and of temporary folders ----

// A process: its host, pid and start time (clock ticks after boot, so a
// reused pid is not taken for it; 0 when unknown), and its Slurm job.  Stored
// as "key value" lines.
typedef struct {
    char host[256];
    long long pid;
    unsigned long long started;
    char slurm_job[64];          // SLURM_JOB_ID, "" outside Slurm
    long long slurm_restart;     // SLURM_RESTART_COUNT
    char since[32];              // when it took the lock / started the save
} CkptOwner;

typedef enum {
    OWNER_SELF,     // this process
    OWNER_ALIVE,    // a running process on this host
    OWNER_DEAD,     // provably gone: no such process on this host (or the pid
                    // belongs to a newer process), or an earlier run of this
                    // Slurm job (Slurm ends a job before requeueing it)
    OWNER_UNKNOWN,  // another host: cannot be proven gone
} OwnerState;

void ckpt_owner_self(CkptOwner *o);
bool ckpt_owner_read(const char *path, CkptOwner *o);
OwnerState ckpt_owner_state(const CkptOwner *o);

// ---- the lock: one run per folder ----

// Creates save_dir and takes save_dir/lock for this process until it exits
// (released by an atexit handler, or ckpt_dir_unlock).  False, with the
// other run's host and pid in err, when a live run (or one on another host,
// which cannot be proven gone) holds it.  A lock left by a dead process is
// taken over; *note then says so (else "").  Holding the lock, it finishes
// the replacements a crash cut short (step_N.replaced; *note says so).
bool ckpt_dir_lock(const char *save_dir, char *note, int note_len, char *err, int err_len);
// Removes save_dir/lock if this process holds it.
void ckpt_dir_unlock(const char *save_dir);
// The same lock for any folder a run writes alone: dir/name (dir exists),
// option names the folder in messages.  One lock per process.
bool folder_lock(const char *dir, const char *name, const char *option, char *note,
                 int note_len, char *err, int err_len);
void folder_unlock(const char *dir, const char *name);

// ---- saving ----

// Creates tmp_dir with this process's owner file.  A stale folder of that
// name (this process's, a dead owner's, or one without owner) is removed
// first; one a live process owns is refused.
bool ckpt_dir_prepare(const char *tmp_dir, char *err, int err_len);
// Removes a temporary folder of this process (a save that failed).
void ckpt_dir_discard(const char *tmp_dir);
// Makes a verified save visible: fsyncs tmp_dir, writes "latest.tmp" naming
// final_dir, renames tmp_dir to final_dir (a folder of that name is moved to
// final_dir.replaced first and removed once save_dir is flushed), then
// latest.tmp to latest, and fsyncs save_dir.  On failure nothing is renamed
// (or the rename is undone) and latest is unchanged.
bool ckpt_dir_commit(const char *save_dir, const char *tmp_dir, const char *final_dir,
                     char *err, int err_len);
// Points save_dir/latest at dir (an existing complete checkpoint).
bool ckpt_dir_point_latest(const char *save_dir, const char *dir, char *err, int err_len);

// ---- finding, pruning, abandoning ----

// Complete checkpoint folders in save_dir, newest first by step (step_N
// without suffix, or step_N.replaced where step_N holds no checkpoint: a
// replacement cut short, until a run takes the lock), full paths in *dirs;
// the "latest" marker's target comes first when it exists and no complete
// folder is newer (a save stopped between renaming its folder and updating
// latest leaves latest behind).
// Returns the count.
int ckpt_dir_list(const char *save_dir, char ***dirs);
void ckpt_dir_list_free(char **dirs, int n);
// The folder name save_dir/latest holds ("" when none or malformed).
void ckpt_dir_latest(const char *save_dir, char *name, int len);
// Keeps the `keep` newest complete checkpoints (keep <= 0: all) and every
// folder in protect (the one just written, the one loaded), removing the
// others; removes .deleting folders and the .tmp folders of this process,
// of dead owners or without owner, never those of a live process.
void ckpt_dir_prune(const char *save_dir, int keep, const char *const *protect, int n_protect);
// Renames every step_N folder newer than step (a checkpoint or not: one that
// holds no checkpoint file is kept aside too, never replaced by a save) to
// "abandoned_step_N_<YYYYmmdd-HHMMSS>" and, when latest named one of them,
// points latest at the newest remaining one (or removes it).  Returns how
// many were moved (their old names, comma-separated, in moved), or -1 with
// err.
int ckpt_dir_abandon_newer(const char *save_dir, int64_t step, char *moved, int moved_len,
                           char *err, int err_len);
// True when dir holds nothing (or does not exist); *first names an entry.
bool ckpt_dir_is_empty(const char *dir, char *first, int first_len);

// save_dir/preempted: written when a signal stopped the run after saving
// (the Slurm job script requeues the job when it finds it), removed when a
// run starts.
bool ckpt_dir_mark_preempted(const char *save_dir, int64_t step, char *err, int err_len);
void ckpt_dir_clear_preempted(const char *save_dir);

#endif
