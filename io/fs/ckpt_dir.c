#define _XOPEN_SOURCE 700
#include "fs/ckpt_dir.h"
#include "fs/atomic_file.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs/dirs.h"
#include "fs/paths.h"
#include "core/file_kind.h"
#include "core/util.h"

#define PATH_LEN 4400

void ckpt_dir_name(const char *save_dir, int64_t step, bool tmp, char *out, int len) {
    snprintf(out, (size_t)len, "%s/step_%07lld%s", save_dir, (long long)step, tmp ? ".tmp" : "");
}

void ckpt_dir_file(const char *dir, char *out, int len) {
    int n = (int)strlen(dir);
    while (n > 1 && dir[n - 1] == '/') n--;   // "step_N/" names step_N/checkpoint.h5
    snprintf(out, (size_t)len, "%.*s/checkpoint.h5", n, dir);
}

// The last component of path, trailing slashes ignored, into out.
static void base_name(const char *path, char *out, size_t len) {
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/') n--;
    size_t b = n;
    while (b > 0 && path[b - 1] != '/') b--;
    snprintf(out, len, "%.*s", (int)(n - b), path + b);
}

// N of "step_N" exactly (1 to 18 digits), else -1.
static int64_t step_of_name(const char *name) {
    if (strncmp(name, "step_", 5) != 0) return -1;
    const char *d = name + 5;
    size_t n = strlen(d);
    if (n < 1 || n > 18) return -1;
    int64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)d[i])) return -1;
        v = v * 10 + (d[i] - '0');
    }
    return v;
}

int64_t ckpt_dir_step_of(const char *path) {
    char name[1024];
    base_name(path, name, sizeof name);
    return step_of_name(name);
}

bool ckpt_dir_is_unfinished(const char *path) {
    char name[1024];
    base_name(path, name, sizeof name);
    return name_has_suffix(name, ".tmp");
}

bool ckpt_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

// Whether folder dir holds a checkpoint file (a copy stopped early, or a
// foreign folder named step_N, holds none).
static bool holds_checkpoint_file(const char *dir) {
    char file[PATH_LEN + 16];
    ckpt_dir_file(dir, file, sizeof file);
    struct stat st;
    return stat(file, &st) == 0 && S_ISREG(st.st_mode);
}

// The step N of a name "step_N.replaced" (the checkpoint a save of step N
// moved aside, see ckpt_dir_commit), with the path of its step_N in final;
// else -1.
static int64_t replaced_step(const char *save_dir, const char *name, char *final, int len) {
    size_t n = strlen(name), k = strlen(".replaced");
    if (!name_has_suffix(name, ".replaced") || n - k >= 256) return -1;
    char stem[256];
    snprintf(stem, sizeof stem, "%.*s", (int)(n - k), name);
    snprintf(final, (size_t)len, "%s/%s", save_dir, stem);
    return step_of_name(stem);
}

// N of a folder "step_N.replaced" whose step_N holds no checkpoint: a crash
// between ckpt_dir_commit's renames left the complete old checkpoint of step
// N under that name only (until a run takes the lock and renames it back);
// else -1.
static int64_t orphan_replaced_step(const char *save_dir, const char *name) {
    char final[PATH_LEN];
    int64_t step = replaced_step(save_dir, name, final, sizeof final);
    return step >= 0 && !holds_checkpoint_file(final) ? step : -1;
}

// Removes a checkpoint folder so that no crash leaves a half-deleted folder
// under a complete-looking name: renamed to "<path>.deleting" first.
static void retire_tree(const char *path) {
    if (!ckpt_dir_exists(path)) return;
    char doomed[PATH_LEN];
    snprintf(doomed, sizeof doomed, "%s.deleting", path);
    remove_tree(doomed);
    if (rename(path, doomed) == 0) remove_tree(doomed);
}

// ---- owners ----

// State letter and start time (field 22 of /proc/PID/stat); false when unknown.
static bool process_stat(long long pid, char *state, unsigned long long *started) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%lld/stat", pid);
    FILE *f = fopen(path, "r");
    if (!f) return false;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = 0;
    char *p = strrchr(buf, ')');
    if (!p) return false;
    p++;
    // Fields after the command: 3 (state) ... 22 (start time).
    if (sscanf(p, " %c", state) != 1) return false;
    for (int field = 3; field < 22; field++) {
        p = strchr(p + 1, ' ');
        if (!p) return false;
    }
    return sscanf(p, " %llu", started) == 1;
}

void ckpt_owner_self(CkptOwner *o) {
    memset(o, 0, sizeof *o);
    if (gethostname(o->host, sizeof o->host - 1) != 0) snprintf(o->host, sizeof o->host, "unknown");
    o->pid = (long long)getpid();
    char state;
    if (!process_stat(o->pid, &state, &o->started)) o->started = 0;
    const char *job = getenv("SLURM_JOB_ID"), *restart = getenv("SLURM_RESTART_COUNT");
    snprintf(o->slurm_job, sizeof o->slurm_job, "%s", job ? job : "");
    int64_t r = 0;
    o->slurm_restart = restart && parse_int64(restart, &r) ? (long long)r : 0;
    time_t now = time(NULL);
    struct tm tm;
    strftime(o->since, sizeof o->since, "%Y-%m-%dT%H:%M:%S", localtime_r(&now, &tm));
}

// Writes o to path (exclusive: fails when path exists).
static bool owner_write(const char *path, const CkptOwner *o, bool exclusive, char *err,
                        int err_len) {
    int fd = open(path, O_WRONLY | O_CREAT | (exclusive ? O_EXCL : O_TRUNC), 0644);
    FILE *f = fd >= 0 ? fdopen(fd, "w") : NULL;
    if (!f && fd >= 0) close(fd);
    bool ok = f && fprintf(f, "host %s\npid %lld\nstarted %llu\nslurm_job %s\nslurm_restart %lld\n"
                              "since %s\n", o->host, o->pid, o->started, o->slurm_job,
                           o->slurm_restart, o->since) > 0;
    if (f) ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    int saved = errno;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        snprintf(err, err_len, "cannot write '%s': %s", path, strerror(saved ? saved : errno));
        if (fd >= 0) unlink(path);
    }
    return ok;
}

bool ckpt_owner_read(const char *path, CkptOwner *o) {
    memset(o, 0, sizeof *o);
    FILE *f = file_kind_irregular(path) ? NULL : fopen(path, "r");
    if (!f) return false;
    char line[512];
    while (fgets(line, sizeof line, f)) {
        line[strcspn(line, "\n")] = 0;
        char *v = strchr(line, ' ');
        if (!v) continue;
        *v++ = 0;
        int64_t n = 0;
        if (!strcmp(line, "host")) snprintf(o->host, sizeof o->host, "%s", v);
        else if (!strcmp(line, "pid") && parse_int64(v, &n)) o->pid = (long long)n;
        else if (!strcmp(line, "started") && parse_int64(v, &n)) o->started = (unsigned long long)n;
        else if (!strcmp(line, "slurm_job")) snprintf(o->slurm_job, sizeof o->slurm_job, "%s", v);
        else if (!strcmp(line, "slurm_restart") && parse_int64(v, &n)) o->slurm_restart = (long long)n;
        else if (!strcmp(line, "since")) snprintf(o->since, sizeof o->since, "%s", v);
    }
    fclose(f);
    return o->host[0] && o->pid > 0;
}

OwnerState ckpt_owner_state(const CkptOwner *o) {
    CkptOwner me;
    ckpt_owner_self(&me);
    if (strcmp(o->host, me.host) == 0) {
        if (o->pid == me.pid && (!o->started || o->started == me.started)) return OWNER_SELF;
        if (kill((pid_t)o->pid, 0) != 0 && errno == ESRCH) return OWNER_DEAD;
        char state;
        unsigned long long started;
        if (process_stat(o->pid, &state, &started) &&
            (state == 'Z' || state == 'X' || (o->started && started != o->started)))
            return OWNER_DEAD;   // a zombie, or the pid now belongs to a newer process
        return OWNER_ALIVE;
    }
    if (o->slurm_job[0] && strcmp(o->slurm_job, me.slurm_job) == 0 &&
        o->slurm_restart < me.slurm_restart)
        return OWNER_DEAD;
    return OWNER_UNKNOWN;
}

static bool same_owner(const CkptOwner *a, const CkptOwner *b) {
    return strcmp(a->host, b->host) == 0 && a->pid == b->pid && a->started == b->started &&
           strcmp(a->since, b->since) == 0;
}

static void describe_owner(const CkptOwner *o, char *out, int len) {
    snprintf(out, (size_t)len, "pid %lld on host %s (since %s%s%s)", o->pid, o->host,
             o->since[0] ? o->since : "?", o->slurm_job[0] ? ", Slurm job " : "", o->slurm_job);
}

// ---- the lock ----

static char held_lock[PATH_LEN];

static void release_at_exit(void) {
    if (!held_lock[0]) return;
    CkptOwner o;
    if (ckpt_owner_read(held_lock, &o) && ckpt_owner_state(&o) == OWNER_SELF) unlink(held_lock);
    held_lock[0] = 0;
}

// Creates path holding me, unless it exists: 1 created, 0 exists, -1 error.
static int create_exclusive(const char *path, const CkptOwner *me, char *err, int err_len) {
    char tmp[PATH_LEN + 300];
    snprintf(tmp, sizeof tmp, "%s.%s.%lld", path, me->host, me->pid);
    if (!owner_write(tmp, me, false, err, err_len)) return -1;
    int rc = link(tmp, path) == 0 ? 1 : errno == EEXIST ? 0 : -1;
    int saved = errno;
    unlink(tmp);
    if (rc >= 0) return rc;
    if (saved == EPERM || saved == ENOTSUP || saved == ENOSYS || saved == EMLINK) {
        // a file system without hard links: exclusive creation instead
        if (owner_write(path, me, true, err, err_len)) return 1;
        return errno == EEXIST ? 0 : -1;
    }
    snprintf(err, err_len, "cannot create '%s': %s", path, strerror(saved));
    return -1;
}

// Moves a lock whose owner is dead out of the way; false when the file is no
// longer that owner's (another run took it over meanwhile).
static bool take_away(const char *lock, const CkptOwner *dead) {
    char aside[PATH_LEN + 32];
    snprintf(aside, sizeof aside, "%s.stale.%lld", lock, (long long)getpid());
    if (rename(lock, aside) != 0) return false;
    CkptOwner got;
    bool same = ckpt_owner_read(aside, &got) && same_owner(&got, dead);
    if (!same && link(aside, lock) != 0) { /* a third run holds it now: its lock stays */ }
    unlink(aside);
    return same;
}

// Every step_N entry is a folder (or a link: one to a folder is a
// checkpoint, and pruning removes links alone): a file there would fail the
// save of step N, long after the start.
static bool steps_are_folders(const char *save_dir, char *err, int err_len) {
    DIR *d = opendir(save_dir);
    bool ok = true;
    for (struct dirent *e; d && ok && (e = readdir(d));) {
        char path[PATH_LEN];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", save_dir, e->d_name);
        ok = step_of_name(e->d_name) < 0 || lstat(path, &st) != 0 || S_ISDIR(st.st_mode) ||
             S_ISLNK(st.st_mode);
        if (!ok)
            snprintf(err, err_len, "'%s' is a file, not a checkpoint folder: a save of that step "
                     "would fail; rename or remove it", path);
    }
    if (d) closedir(d);
    return ok;
}

// Whether name is "step_N" followed by one of the suffixes ("" included).
static bool is_step_name(const char *name, const char *const *suffixes, int n) {
    for (int i = 0; i < n; i++) {
        size_t len = strlen(name), k = strlen(suffixes[i]);
        char stem[256];
        if (!name_has_suffix(name, suffixes[i]) || len - k >= sizeof stem) continue;
        snprintf(stem, sizeof stem, "%.*s", (int)(len - k), name);
        if (step_of_name(stem) >= 0) return true;
    }
    return false;
}

bool ckpt_dir_owns_name(const char *name) {
    const char *fixed[] = {"latest", "latest.tmp", "lock", "preempted"};
    for (int i = 0; i < 4; i++)
        if (strcmp(name, fixed[i]) == 0) return true;
    const char *suffixes[] = {"", ".tmp", ".deleting", ".replaced"};
    const char *prefixes[] = {"abandoned_step_", ".shared-probe-"};   // + step and time, + pid
    bool prefixed = false;
    for (int i = 0; i < 2; i++) prefixed |= strncmp(name, prefixes[i], strlen(prefixes[i])) == 0;
    return prefixed || is_step_name(name, suffixes, 4);
}

// The names the folder's rules write (latest, latest.tmp, preempted) are
// files, links (replaced) or absent: a folder there would fail the first
// save, hours in.
static bool names_writable(const char *save_dir, char *err, int err_len) {
    const char *names[] = {"latest", "latest.tmp", "preempted"};
    for (int i = 0; i < 3; i++) {
        char path[PATH_LEN];
        struct stat st;
        snprintf(path, sizeof path, "%s/%s", save_dir, names[i]);
        if (lstat(path, &st) != 0 || S_ISREG(st.st_mode) || S_ISLNK(st.st_mode)) continue;
        snprintf(err, err_len, "'%s' is %s, not a file: this run writes that name (it names the "
                 "newest checkpoint or a preemption); rename or remove it", path,
                 S_ISDIR(st.st_mode) ? "a folder" : "a special file");
        return false;
    }
    return steps_are_folders(save_dir, err, err_len);
}

// Finishes one replacement of step_N (final) a crash cut short (see
// ckpt_dir_commit): old, step_N.replaced, is the complete checkpoint step_N
// was.  Next to a complete step_N (the new save was renamed in) it is
// removed; without step_N it takes that name back.  *restored says which.
static bool finish_replacement(const char *old, const char *final, bool *restored, char *err,
                               int err_len) {
    *restored = false;
    if (holds_checkpoint_file(final)) {
        remove_tree(old);
        return true;
    }
    if (ckpt_dir_exists(final)) {
        snprintf(err, err_len, "'%s' (a checkpoint moved aside by a save of its step) and '%s' "
                 "both exist, but '%s' holds no checkpoint.h5: move one of them out of the folder",
                 old, final, final);
        return false;
    }
    if (rename(old, final) != 0) {
        snprintf(err, err_len, "cannot rename '%s' back to '%s' (a save that replaced it was "
                 "interrupted): %s; rename it by hand", old, final, strerror(errno));
        return false;
    }
    *restored = true;
    return true;
}

// Run by the lock's holder, the only writer of save_dir: every
// step_N.replaced left by a crash is finished, so no later save, prune or
// abandon sees it.  *note names what was restored.
static bool finish_replacements(const char *save_dir, char *note, int note_len, char *err,
                                int err_len) {
    DIR *d = opendir(save_dir);
    if (!d) {
        snprintf(err, err_len, "cannot read the folder '%s': %s", save_dir, strerror(errno));
        return false;
    }
    bool ok = true;
    int restored = 0;
    for (struct dirent *e; ok && (e = readdir(d));) {
        char old[PATH_LEN], final[PATH_LEN];
        snprintf(old, sizeof old, "%s/%s", save_dir, e->d_name);
        bool back = false;
        if (replaced_step(save_dir, e->d_name, final, sizeof final) < 0 || !ckpt_dir_exists(old))
            continue;
        ok = finish_replacement(old, final, &back, err, err_len);
        size_t used = strlen(note);
        if (back && restored++ == 0)
            snprintf(note + used, (size_t)note_len - used, "%srestored %s from %s: a save that "
                     "replaced it was interrupted", used ? "; " : "", final, e->d_name);
    }
    closedir(d);
    if (ok && restored > 0 && !folder_sync(save_dir)) {
        snprintf(err, err_len, "cannot flush the folder '%s': %s", save_dir, strerror(errno));
        return false;
    }
    return ok;
}

bool ckpt_dir_lock(const char *save_dir, char *note, int note_len, char *err, int err_len) {
    note[0] = 0;
    if (!make_dirs(save_dir, err, err_len) || !names_writable(save_dir, err, err_len)) return false;
    if (!folder_lock(save_dir, "lock", "--save-dir", note, note_len, err, err_len)) return false;
    if (finish_replacements(save_dir, note, note_len, err, err_len)) return true;
    ckpt_dir_unlock(save_dir);
    return false;
}

bool folder_lock(const char *dir, const char *name, const char *option, char *note,
                 int note_len, char *err, int err_len) {
    note[0] = 0;
    char lock[PATH_LEN], who[512];
    snprintf(lock, sizeof lock, "%s/%s", dir, name);
    CkptOwner me, other;
    ckpt_owner_self(&me);
    for (int attempt = 0; attempt < 5; attempt++) {
        int rc = create_exclusive(lock, &me, err, err_len);
        if (rc < 0) return false;
        if (rc == 0 && !ckpt_owner_read(lock, &other)) {
            if (access(lock, F_OK) != 0) continue;   // released meanwhile
            snprintf(err, err_len, "'%s' exists but names no run (host and pid): remove it if no "
                     "run uses %s '%s'", lock, option, dir);
            return false;
        }
        OwnerState s = rc == 1 ? OWNER_SELF : ckpt_owner_state(&other);
        if (s == OWNER_ALIVE || s == OWNER_UNKNOWN) {
            describe_owner(&other, who, sizeof who);
            snprintf(err, err_len, "%s '%s' is in use by another run: %s%s; two runs must not "
                     "write one folder at once: wait for it to end or give another %s (remove "
                     "'%s' only if that run is gone)", option, dir, who,
                     s == OWNER_UNKNOWN ? ", which this host cannot check" : "", option, lock);
            return false;
        }
        if (s == OWNER_DEAD) {
            if (!take_away(lock, &other)) continue;
            describe_owner(&other, who, sizeof who);
            snprintf(note, (size_t)note_len, "took over the lock of '%s' left by %s, which is no "
                     "longer running", dir, who);
            continue;
        }
        if (!held_lock[0]) atexit(release_at_exit);
        snprintf(held_lock, sizeof held_lock, "%s", lock);
        return true;
    }
    snprintf(err, err_len, "cannot take '%s': other runs keep changing it", lock);
    return false;
}

void ckpt_dir_unlock(const char *save_dir) { folder_unlock(save_dir, "lock"); }

void folder_unlock(const char *dir, const char *name) {
    char lock[PATH_LEN];
    snprintf(lock, sizeof lock, "%s/%s", dir, name);
    CkptOwner o;
    if (ckpt_owner_read(lock, &o) && ckpt_owner_state(&o) == OWNER_SELF) unlink(lock);
    if (strcmp(held_lock, lock) == 0) held_lock[0] = 0;
}

// ---- saving ----

// Whether this process holds the lock of the folder that holds path.
static bool holds_lock_of(const char *path) {
    char folder[PATH_LEN], lock[PATH_LEN + 8];
    path_parent(path, folder, sizeof folder);
    snprintf(lock, sizeof lock, "%s/lock", folder);
    return held_lock[0] && file_kind_same(lock, held_lock);
}

// True when the temporary folder tmp may be removed: its owner is this
// process or dead, or it has none (only a crash between its creation and
// the owner file, or an older version, leaves one); else err names the owner.
static bool tmp_removable(const char *tmp, char *err, int err_len) {
    char path[PATH_LEN], who[512];
    snprintf(path, sizeof path, "%s/owner", tmp);
    CkptOwner o;
    if (!ckpt_owner_read(path, &o)) return true;
    OwnerState s = ckpt_owner_state(&o);
    if (s == OWNER_SELF || s == OWNER_DEAD) return true;
    // Another host's run, which this host cannot check, no longer writes
    // here when this run holds the folder's lock (a run's rank 0 restarted
    // on another node): its .tmp is an unfinished save, nothing to keep.
    if (s == OWNER_UNKNOWN && holds_lock_of(tmp)) return true;
    describe_owner(&o, who, sizeof who);
    snprintf(err, err_len, "'%s' is being written by another run, %s%s; give this run another "
             "--save-dir", tmp, who, s == OWNER_UNKNOWN ? ", which this host cannot check" : "");
    return false;
}

bool ckpt_dir_prepare(const char *tmp_dir, char *err, int err_len) {
    if (ckpt_dir_exists(tmp_dir)) {
        if (!tmp_removable(tmp_dir, err, err_len)) return false;
        remove_tree(tmp_dir);
    }
    if (!make_dirs(tmp_dir, err, err_len)) return false;
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/owner", tmp_dir);
    CkptOwner me;
    ckpt_owner_self(&me);
    return owner_write(path, &me, false, err, err_len);
}

void ckpt_dir_discard(const char *tmp_dir) {
    char err[8];
    if (ckpt_dir_exists(tmp_dir) && tmp_removable(tmp_dir, err, sizeof err)) remove_tree(tmp_dir);
}

// Writes save_dir/latest.tmp naming dir (fsynced); its path in tmp.
static bool write_latest_tmp(const char *save_dir, const char *dir, char *tmp, int tmp_len,
                             char *err, int err_len) {
    char base[1024];
    base_name(dir, base, sizeof base);
    snprintf(tmp, (size_t)tmp_len, "%s/latest.tmp", save_dir);
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%s\n", base) > 0;
    if (f) ok = fflush(f) == 0 && fsync(fileno(f)) == 0 && ok;
    int saved = errno;
    if (f && fclose(f) != 0) ok = false;
    if (!ok) {
        snprintf(err, err_len, "cannot write '%s': %s", tmp, strerror(saved ? saved : errno));
        unlink(tmp);
    }
    return ok;
}

bool ckpt_dir_point_latest(const char *save_dir, const char *dir, char *err, int err_len) {
    char base[1024], line[1100], path[PATH_LEN];
    base_name(dir, base, sizeof base);
    int n = snprintf(line, sizeof line, "%s\n", base);
    snprintf(path, sizeof path, "%s/latest", save_dir);
    return atomic_file_write(path, line, (size_t)n, err, err_len);
}

// Moves the complete checkpoint final aside to old (its .replaced name; a
// stale one, left next to a complete final, is removed first).
static bool move_aside(const char *final, const char *old, char *err, int err_len) {
    remove_tree(old);
    if (rename(final, old) == 0) return true;
    snprintf(err, err_len, "cannot move '%s' aside to '%s': %s", final, old, strerror(errno));
    return false;
}

// Replacing a complete step_N (a stop or the final save at the step a
// rollback went back to, with the data position past the skipped window)
// must never leave the folder without that step: the old folder is renamed
// to step_N.replaced, the new one renamed to step_N, and the old one removed
// only after save_dir is flushed.  A crash between the two renames leaves
// step_N.replaced and no step_N: the next run that takes the lock renames it
// back (ckpt_dir_lock) and --load auto meanwhile lists it as step N; a crash
// after them leaves both, and the lock removes the .replaced.  Removing the
// old folder first, or renaming it to .deleting (which pruning removes),
// would lose the newest checkpoint in that window.  renameat2's
// RENAME_EXCHANGE would need the same fallback where the file system lacks it.
bool ckpt_dir_commit(const char *save_dir, const char *tmp_dir, const char *final_dir,
                     char *err, int err_len) {
    char latest_tmp[PATH_LEN], latest[PATH_LEN], old[PATH_LEN];
    if (!folder_sync(tmp_dir)) {
        snprintf(err, err_len, "cannot flush '%s' to disk: %s", tmp_dir, strerror(errno));
        return false;
    }
    if (!write_latest_tmp(save_dir, final_dir, latest_tmp, sizeof latest_tmp, err, err_len))
        return false;
    snprintf(latest, sizeof latest, "%s/latest", save_dir);
    snprintf(old, sizeof old, "%s.replaced", final_dir);
    bool replacing = ckpt_dir_exists(final_dir);
    if (replacing && !move_aside(final_dir, old, err, err_len)) {
        unlink(latest_tmp);
        return false;
    }
    if (rename(tmp_dir, final_dir) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", tmp_dir, final_dir, strerror(errno));
        if (replacing) rename(old, final_dir);
        unlink(latest_tmp);
        return false;
    }
    if (rename(latest_tmp, latest) != 0) {   // undone: latest keeps naming the last save
        snprintf(err, err_len, "cannot update '%s': %s", latest, strerror(errno));
        rename(final_dir, tmp_dir);
        if (replacing) rename(old, final_dir);
        unlink(latest_tmp);
        return false;
    }
    if (!folder_sync(save_dir)) {   // the old checkpoint stays as .replaced: the lock removes it
        snprintf(err, err_len, "'%s' is saved, but flushing the folder '%s' failed: %s", final_dir,
                 save_dir, strerror(errno));
        return false;
    }
    if (replacing) remove_tree(old);
    return true;
}

// ---- finding, pruning, abandoning ----

void ckpt_dir_latest(const char *save_dir, char *name, int len) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/latest", save_dir);
    name[0] = 0;
    FILE *f = file_kind_irregular(path) ? NULL : fopen(path, "r");
    if (!f) return;
    if (!fgets(name, len, f)) name[0] = 0;
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    if (step_of_name(name) < 0) name[0] = 0;
}

typedef struct {
    int64_t step;
    char *path;
} Entry;

static int by_step_desc(const void *a, const void *b) {
    int64_t x = ((const Entry *)a)->step, y = ((const Entry *)b)->step;
    return (x < y) - (x > y);
}

// The step_N folders of save_dir, newest first: with need_file only those
// holding a checkpoint file (the ones to load, prune or point latest at; a
// step_N.replaced standing in for a missing step_N among them);
// without, every one (the ones a rollback moves aside: a folder that is no
// checkpoint is kept, never replaced by a save of its step).
static int step_folders(const char *save_dir, bool need_file, Entry **out) {
    *out = NULL;
    int n = 0;
    DIR *d = opendir(save_dir);
    if (!d) return 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        int64_t step = step_of_name(e->d_name);
        if (step < 0 && need_file) step = orphan_replaced_step(save_dir, e->d_name);
        char full[PATH_LEN];
        snprintf(full, sizeof full, "%s/%s", save_dir, e->d_name);
        if (step < 0 || !ckpt_dir_exists(full) || (need_file && !holds_checkpoint_file(full)))
            continue;
        *out = xrealloc(*out, (size_t)(n + 1) * sizeof **out);
        (*out)[n++] = (Entry){step, xstrdup(full)};
    }
    closedir(d);
    if (n > 1) qsort(*out, (size_t)n, sizeof **out, by_step_desc);
    return n;
}

static void entries_free(Entry *e, int n) {
    for (int i = 0; i < n; i++) free(e[i].path);
    free(e);
}

int ckpt_dir_list(const char *save_dir, char ***dirs) {
    Entry *e;
    int n = step_folders(save_dir, true, &e), out = 0;
    char name[256], target[PATH_LEN];
    ckpt_dir_latest(save_dir, name, sizeof name);
    snprintf(target, sizeof target, "%s/%s", save_dir, name);
    bool has_latest = name[0] && ckpt_dir_exists(target);
    if (has_latest && n > 0 && e[0].step > step_of_name(name))
        has_latest = false;   // a save stopped between its rename and latest's update
    *dirs = xmalloc((size_t)(n + 1) * sizeof **dirs);
    if (has_latest) (*dirs)[out++] = xstrdup(target);
    for (int i = 0; i < n; i++)
        if (!has_latest || strcmp(e[i].path, target) != 0) (*dirs)[out++] = xstrdup(e[i].path);
    entries_free(e, n);
    return out;
}

void ckpt_dir_list_free(char **dirs, int n) {
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
}

void ckpt_dir_prune(const char *save_dir, int keep, const char *const *protect, int n_protect) {
    DIR *d = opendir(save_dir);
    if (!d) return;
    struct dirent *e;
    char err[8];
    while ((e = readdir(d))) {   // leftovers of saves and removals that never finished
        char full[PATH_LEN];
        snprintf(full, sizeof full, "%s/%s", save_dir, e->d_name);
        if (strncmp(e->d_name, "step_", 5) != 0) continue;
        if (name_has_suffix(e->d_name, ".deleting")) remove_tree(full);
        else if (name_has_suffix(e->d_name, ".tmp") && ckpt_dir_exists(full) &&
                 tmp_removable(full, err, sizeof err))
            remove_tree(full);
    }
    closedir(d);
    if (keep <= 0) return;
    Entry *c;
    int n = step_folders(save_dir, true, &c);
    for (int i = keep; i < n; i++) {
        bool kept = false;
        for (int k = 0; k < n_protect && !kept; k++)
            kept = protect[k] && protect[k][0] && file_kind_same(c[i].path, protect[k]);
        if (!kept) retire_tree(c[i].path);
    }
    entries_free(c, n);
}

int ckpt_dir_abandon_newer(const char *save_dir, int64_t step, char *moved, int moved_len,
                           char *err, int err_len) {
    Entry *c;
    int n = step_folders(save_dir, false, &c), count = 0;
    char stamp[32], latest[256];
    time_t now = time(NULL);
    struct tm tm;
    strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", localtime_r(&now, &tm));
    ckpt_dir_latest(save_dir, latest, sizeof latest);
    moved[0] = 0;
    for (int i = n - 1; i >= 0; i--) {   // oldest first, for the message
        if (c[i].step <= step) continue;
        char name[1024], to[PATH_LEN];
        base_name(c[i].path, name, sizeof name);
        snprintf(to, sizeof to, "%s/abandoned_%s_%s", save_dir, name, stamp);
        for (int k = 2; ckpt_dir_exists(to) && k < 1000; k++)
            snprintf(to, sizeof to, "%s/abandoned_%s_%s-%d", save_dir, name, stamp, k);
        if (rename(c[i].path, to) != 0) {
            snprintf(err, err_len, "cannot move the abandoned checkpoint '%s' aside to '%s': %s",
                     c[i].path, to, strerror(errno));
            entries_free(c, n);
            return -1;
        }
        size_t used = strlen(moved);
        snprintf(moved + used, (size_t)moved_len - used, "%s%s", count ? ", " : "", name);
        count++;
    }
    entries_free(c, n);
    char target[PATH_LEN];
    snprintf(target, sizeof target, "%s/%s", save_dir, latest);
    if (count > 0 && latest[0] && !ckpt_dir_exists(target)) {   // latest named an abandoned one
        n = step_folders(save_dir, true, &c);
        bool ok = true;
        if (n > 0) ok = ckpt_dir_point_latest(save_dir, c[0].path, err, err_len);
        else {
            snprintf(target, sizeof target, "%s/latest", save_dir);
            unlink(target);
        }
        entries_free(c, n);
        if (!ok) return -1;
    }
    if (count > 0 && !folder_sync(save_dir)) {
        snprintf(err, err_len, "cannot flush the folder '%s': %s", save_dir, strerror(errno));
        return -1;
    }
    return count;
}

bool ckpt_dir_is_empty(const char *dir, char *first, int first_len) {
    first[0] = 0;
    DIR *d = opendir(dir);
    if (!d) {
        if (errno == ENOENT || errno == ENOTDIR) return true;   // no folder: making it will say why
        snprintf(first, (size_t)first_len, "%s", strerror(errno));
        return false;
    }
    struct dirent *e;
    bool empty = true;
    while (empty && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..")) {
            snprintf(first, (size_t)first_len, "%s", e->d_name);
            empty = false;
        }
    closedir(d);
    return empty;
}

bool ckpt_dir_mark_preempted(const char *save_dir, int64_t step, char *err, int err_len) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/preempted", save_dir);
    FILE *f = fopen(path, "w");
    bool ok = f && fprintf(f, "stopped by a signal after step %lld; resume with --load auto\n",
                           (long long)step) > 0;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) snprintf(err, err_len, "cannot write '%s': %s", path, strerror(errno));
    return ok;
}

void ckpt_dir_clear_preempted(const char *save_dir) {
    char path[PATH_LEN];
    snprintf(path, sizeof path, "%s/preempted", save_dir);
    unlink(path);
}
