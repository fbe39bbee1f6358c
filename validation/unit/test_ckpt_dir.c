// The checkpoint folder's rules (io/fs/ckpt_dir.c, src/train/checkpoint.c): numeric
// order of step names past step 9,999,999 (real saves through
// trainer_checkpoint_save, then llama-train --load auto); who owns a lock or a
// temporary folder and when that owner is provably gone; the lock refusing a
// live owner and taking over a dead one's; pruning that keeps the protected
// folders and the temporary folders of live processes; abandoned checkpoints
// moved aside; a replaced checkpoint never lost to a crash between renames.
// Live and dead processes are real children of this test (one blocked on a
// pipe, one already reaped).
#include <dirent.h>
#include <mpi.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "comm/comm.h"
#include "check.h"
#include "train/checkpoint.h"
#include "fs/ckpt_dir.h"
#include "train/train.h"
#include "train/model_file.h"

static char dir[200], train_bin[512];
static pid_t alive_pid, dead_pid;

static void sh(const char *cmd) {
    if (system(cmd) != 0) printf("note: '%s' failed\n", cmd);
}

// A checkpoint folder parent/name: an empty checkpoint.h5 in it stands for
// the file (which only --load opens).
static void make_dir(const char *parent, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", parent, name);
    mkdir(p, 0755);
    strcat(p, "/checkpoint.h5");
    FILE *f = fopen(p, "w");
    if (f) fclose(f);
}

static bool exists(const char *parent, const char *name) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s", parent, name);
    return ckpt_dir_exists(p);
}

static void read_latest(const char *save_dir, char *out, int len) {
    char p[1024];
    snprintf(p, sizeof p, "%s/latest", save_dir);
    out[0] = 0;
    FILE *f = fopen(p, "r");
    if (f && fgets(out, len, f)) out[strcspn(out, "\n")] = 0;
    if (f) fclose(f);
}

// An owner file at parent/name (a folder's "owner", or a lock) naming pid on host.
static void write_owner(const char *path, const char *host, long long pid, unsigned long long started) {
    FILE *f = fopen(path, "w");
    if (!f) return;
    fprintf(f, "host %s\npid %lld\nstarted %llu\nslurm_job \nslurm_restart 0\nsince 2026-01-01T00:00:00\n",
            host, pid, started);
    fclose(f);
}

static void tmp_owned_by(const char *save_dir, const char *name, const char *host, long long pid) {
    char p[1024];
    make_dir(save_dir, name);
    snprintf(p, sizeof p, "%s/%s/owner", save_dir, name);
    if (pid) write_owner(p, host, pid, 0);
}

// ---- numeric order through real saves ----

static void test_big_steps(void) {
    check_begin("step names past 9,999,999 sort by number: pruning keeps the newest, --load auto resumes it");
    TrainOptions o;
    options_defaults(&o);
    o.bench = true;
    o.keep_checkpoints = 2;
    snprintf(o.save_dir, sizeof o.save_dir, "%s/big", dir);
    ModelConfig cfg;
    char err[512], latest[64];
    config_load("tiny", &cfg, err, sizeof err);
    Trainer *t = trainer_create_bare(&ops_cpu, &o, &cfg);
    const int64_t steps[4] = {9999998, 9999999, 10000000, 10000001};
    for (int i = 0; i < 4; i++) {
        t->step = steps[i];
        trainer_checkpoint_save(t);
    }
    trainer_checkpoint_release(t);
    trainer_free(t);
    CHECK(exists(o.save_dir, "step_10000001") && exists(o.save_dir, "step_10000000"),
          "the two newest checkpoints were pruned");
    CHECK(!exists(o.save_dir, "step_9999999") && !exists(o.save_dir, "step_9999998"),
          "older checkpoints were kept instead of the newest");
    read_latest(o.save_dir, latest, sizeof latest);
    CHECK(strcmp(latest, "step_10000001") == 0, "latest names '%s'", latest);
    char **dirs;
    int n = ckpt_dir_list(o.save_dir, &dirs);
    CHECK(n == 2 && strstr(dirs[0], "step_10000001") && strstr(dirs[1], "step_10000000"),
          "listed %d, first '%s'", n, n ? dirs[0] : "");
    ckpt_dir_list_free(dirs, n);
    char cmd[2048], out[8192] = "";
    snprintf(cmd, sizeof cmd, "%s --bench -c tiny -l 8 --steps 10000002 -i 1 -o %s -f auto 2>&1",
             train_bin, o.save_dir);
    FILE *p = popen(cmd, "r");
    size_t got = fread(out, 1, sizeof out - 1, p);
    out[got] = 0;
    int status = pclose(p);
    char want[1200];
    snprintf(want, sizeof want, "loaded checkpoint %s/step_10000001 at step 10000001", o.save_dir);
    CHECK(status == 0, "llama-train failed: %s", out);
    CHECK(strstr(out, want) != NULL, "'%s' not in: %s", want, out);
    CHECK(exists(o.save_dir, "step_10000002"), "no step_10000002 saved");
    read_latest(o.save_dir, latest, sizeof latest);
    CHECK(strcmp(latest, "step_10000002") == 0, "latest names '%s'", latest);
    check_end();

    check_begin("step names of any digit count order by number");
    char d[600];
    snprintf(d, sizeof d, "%s/order", dir);
    mkdir(d, 0755);
    const char *names[] = {"step_9", "step_0000010", "step_99999999", "step_100000000000",
                           "step_7x", "step_", "abandoned_step_0000011_20260101-000000"};
    for (int i = 0; i < 7; i++) make_dir(d, names[i]);
    char bare[700];   // a copy stopped before its file, or a foreign folder
    snprintf(bare, sizeof bare, "%s/step_200000000000", d);
    mkdir(bare, 0755);
    n = ckpt_dir_list(d, &dirs);
    CHECK(n == 4, "listed %d folders, expected the 4 step_N ones holding a checkpoint file", n);
    const char *order[4] = {"step_100000000000", "step_99999999", "step_0000010", "step_9"};
    for (int i = 0; i < n && i < 4; i++)
        CHECK(strcmp(strrchr(dirs[i], '/') + 1, order[i]) == 0, "position %d: %s, expected %s", i,
              dirs[i], order[i]);
    ckpt_dir_list_free(dirs, n);
    CHECK(ckpt_dir_step_of("/x/step_10000000/") == 10000000 && ckpt_dir_step_of("step_1.tmp") == -1,
          "ckpt_dir_step_of");
    check_end();
}

// ---- owners and the lock ----

static void test_owners(void) {
    CkptOwner me, o;
    ckpt_owner_self(&me);
    check_begin("owners: this process, a live one, a dead one, a reused pid, another host, an earlier Slurm run");
    CHECK(ckpt_owner_state(&me) == OWNER_SELF, "this process is not itself");
    o = me;
    o.pid = alive_pid;
    o.started = 0;
    CHECK(ckpt_owner_state(&o) == OWNER_ALIVE, "a running child is not alive");
    o.started = 12345;   // the pid, but not the process that started then
    CHECK(ckpt_owner_state(&o) == OWNER_DEAD, "a reused pid counts as its old owner");
    o.pid = dead_pid;
    o.started = 0;
    CHECK(ckpt_owner_state(&o) == OWNER_DEAD, "a reaped child is not dead");
    snprintf(o.host, sizeof o.host, "another-host.example");
    o.pid = 1;
    CHECK(ckpt_owner_state(&o) == OWNER_UNKNOWN, "another host's process was judged");
    setenv("SLURM_JOB_ID", "4242", 1);
    setenv("SLURM_RESTART_COUNT", "2", 1);
    snprintf(o.slurm_job, sizeof o.slurm_job, "4242");
    o.slurm_restart = 1;
    CHECK(ckpt_owner_state(&o) == OWNER_DEAD, "an earlier run of this Slurm job is not dead");
    o.slurm_restart = 2;
    CHECK(ckpt_owner_state(&o) == OWNER_UNKNOWN, "this Slurm run on another host counts as dead");
    unsetenv("SLURM_JOB_ID");
    unsetenv("SLURM_RESTART_COUNT");
    check_end();

    char d[600], lock[700], note[512], err[4096];
    snprintf(d, sizeof d, "%s/locked", dir);
    snprintf(lock, sizeof lock, "%s/lock", d);
    check_begin("lock: taken, held again by its owner, released");
    CHECK(ckpt_dir_lock(d, note, sizeof note, err, sizeof err), "%s", err);
    CHECK(ckpt_owner_read(lock, &o) && ckpt_owner_state(&o) == OWNER_SELF, "the lock does not name us");
    CHECK(ckpt_dir_lock(d, note, sizeof note, err, sizeof err), "taking it twice: %s", err);
    ckpt_dir_unlock(d);
    CHECK(access(lock, F_OK) != 0, "the lock was not removed");
    check_end();

    check_begin("lock: a live run's is refused with its host and pid");
    write_owner(lock, me.host, alive_pid, 0);
    bool ok = ckpt_dir_lock(d, note, sizeof note, err, sizeof err);
    char want[300];
    snprintf(want, sizeof want, "pid %lld on host %s", (long long)alive_pid, me.host);
    CHECK(!ok, "taken from a live run");
    CHECK(strstr(err, want) && strstr(err, "in use by another run"), "message '%s' lacks '%s'", err, want);
    CHECK(ckpt_owner_read(lock, &o) && o.pid == alive_pid, "the live run's lock was changed");
    check_end();

    check_begin("lock: another host's is refused (it cannot be checked)");
    write_owner(lock, "another-host.example", 77, 0);
    ok = ckpt_dir_lock(d, note, sizeof note, err, sizeof err);
    CHECK(!ok && strstr(err, "pid 77 on host another-host.example") && strstr(err, "cannot check"),
          "accepted or unclear: '%s'", err);
    check_end();

    check_begin("lock: a dead process's is taken over with a notice");
    write_owner(lock, me.host, dead_pid, 0);
    ok = ckpt_dir_lock(d, note, sizeof note, err, sizeof err);
    snprintf(want, sizeof want, "pid %lld on host %s", (long long)dead_pid, me.host);
    CHECK(ok, "refused: %s", err);
    CHECK(strstr(note, "took over") && strstr(note, want), "notice '%s'", note);
    CHECK(ckpt_owner_read(lock, &o) && ckpt_owner_state(&o) == OWNER_SELF, "the lock does not name us");
    ckpt_dir_unlock(d);
    check_end();

    check_begin("lock: one that names no run is refused");
    FILE *f = fopen(lock, "w");
    if (f) fputs("garbage\n", f), fclose(f);
    ok = ckpt_dir_lock(d, note, sizeof note, err, sizeof err);
    CHECK(!ok && strstr(err, "names no run"), "accepted or unclear: '%s'", err);
    unlink(lock);
    check_end();
}

// ---- pruning, temporary folders, abandoning ----

static void test_prune(void) {
    CkptOwner me;
    ckpt_owner_self(&me);
    char d[600], err[4096];
    snprintf(d, sizeof d, "%s/prune", dir);
    mkdir(d, 0755);
    const char *steps[] = {"step_0000001", "step_0000002", "step_0000003", "step_0000004", "step_0000005"};
    for (int i = 0; i < 5; i++) make_dir(d, steps[i]);
    tmp_owned_by(d, "step_0000006.tmp", me.host, alive_pid);
    tmp_owned_by(d, "step_0000007.tmp", "another-host.example", 5);
    tmp_owned_by(d, "step_0000008.tmp", me.host, dead_pid);
    tmp_owned_by(d, "step_0000009.tmp", me.host, me.pid);
    tmp_owned_by(d, "step_0000010.tmp", "", 0);   // no owner file
    make_dir(d, "step_0000003.deleting");
    check_begin("pruning keeps the K newest and the protected, and live runs' temporary folders");
    char loaded[700];
    snprintf(loaded, sizeof loaded, "%s/step_0000001/", d);
    const char *protect[2] = {loaded, ""};
    ckpt_dir_prune(d, 2, protect, 2);
    CHECK(exists(d, "step_0000005") && exists(d, "step_0000004"), "a newest one was removed");
    CHECK(exists(d, "step_0000001"), "the protected (loaded) checkpoint was removed");
    CHECK(!exists(d, "step_0000002") && !exists(d, "step_0000003"), "old ones were kept");
    CHECK(exists(d, "step_0000006.tmp"), "a live process's temporary folder was removed");
    CHECK(exists(d, "step_0000007.tmp"), "another host's temporary folder was removed");
    CHECK(!exists(d, "step_0000008.tmp"), "a dead process's temporary folder was kept");
    CHECK(!exists(d, "step_0000009.tmp"), "this process's stale temporary folder was kept");
    CHECK(!exists(d, "step_0000010.tmp"), "an ownerless temporary folder was kept");
    CHECK(!exists(d, "step_0000003.deleting"), "a .deleting folder was kept");
    check_end();

    check_begin("a save never replaces a temporary folder a live run is writing");
    char tmp[700];
    snprintf(tmp, sizeof tmp, "%s/step_0000006.tmp", d);
    char want[64];
    snprintf(want, sizeof want, "pid %lld", (long long)alive_pid);
    CHECK(!ckpt_dir_prepare(tmp, err, sizeof err) && strstr(err, want), "accepted or unclear: '%s'", err);
    CHECK(exists(d, "step_0000006.tmp"), "removed");
    snprintf(tmp, sizeof tmp, "%s/step_0000008.tmp", d);
    tmp_owned_by(d, "step_0000008.tmp", me.host, dead_pid);
    CHECK(ckpt_dir_prepare(tmp, err, sizeof err), "a dead run's folder was not replaced: %s", err);
    char owner[800];
    snprintf(owner, sizeof owner, "%s/owner", tmp);
    CkptOwner o;
    CHECK(ckpt_owner_read(owner, &o) && ckpt_owner_state(&o) == OWNER_SELF, "the new folder is not ours");
    check_end();

    check_begin("holding the folder's lock, another host's temporary folder is a dead run's");
    char note[512];
    CHECK(ckpt_dir_lock(d, note, sizeof note, err, sizeof err), "lock: %s", err);
    ckpt_dir_prune(d, 0, NULL, 0);
    CHECK(!exists(d, "step_0000007.tmp"), "another host's temporary folder was kept");
    CHECK(exists(d, "step_0000006.tmp"), "a live process's temporary folder was removed");
    tmp_owned_by(d, "step_0000011.tmp", "another-host.example", 5);
    snprintf(tmp, sizeof tmp, "%s/step_0000011.tmp", d);
    CHECK(ckpt_dir_prepare(tmp, err, sizeof err), "another host's folder was not replaced: %s", err);
    snprintf(owner, sizeof owner, "%s/owner", tmp);
    CHECK(ckpt_owner_read(owner, &o) && ckpt_owner_state(&o) == OWNER_SELF, "the new folder is not ours");
    ckpt_dir_unlock(d);
    tmp_owned_by(d, "step_0000012.tmp", "another-host.example", 5);
    snprintf(tmp, sizeof tmp, "%s/step_0000012.tmp", d);
    CHECK(!ckpt_dir_prepare(tmp, err, sizeof err), "without the lock, another host's folder was replaced");
    check_end();

    check_begin("abandoned checkpoints are moved aside, kept, skipped by --load auto; latest follows");
    snprintf(d, sizeof d, "%s/abandon", dir);
    mkdir(d, 0755);
    make_dir(d, "step_0000002");
    make_dir(d, "step_0000004");
    make_dir(d, "step_0000006");
    char path[700], moved[512], latest[64];
    snprintf(path, sizeof path, "%s/step_0000008", d);   // no checkpoint file: kept aside too
    mkdir(path, 0755);
    snprintf(path, sizeof path, "%s/step_0000006", d);
    ckpt_dir_point_latest(d, path, err, sizeof err);
    int n = ckpt_dir_abandon_newer(d, 2, moved, sizeof moved, err, sizeof err);
    CHECK(n == 3, "moved %d (%s)", n, err);
    CHECK(strcmp(moved, "step_0000004, step_0000006, step_0000008") == 0, "moved '%s'", moved);
    CHECK(exists(d, "step_0000002") && !exists(d, "step_0000004") && !exists(d, "step_0000006") &&
              !exists(d, "step_0000008"), "wrong folders moved");
    int found = 0;
    DIR *dd = opendir(d);
    struct dirent *e;
    while (dd && (e = readdir(dd)))
        found += !strncmp(e->d_name, "abandoned_step_0000004_", 23) ||
                 !strncmp(e->d_name, "abandoned_step_0000006_", 23) ||
                 !strncmp(e->d_name, "abandoned_step_0000008_", 23);
    if (dd) closedir(dd);
    CHECK(found == 3, "%d abandoned_step_* folders, expected 3", found);
    read_latest(d, latest, sizeof latest);
    CHECK(strcmp(latest, "step_0000002") == 0, "latest names '%s'", latest);
    char **dirs;
    n = ckpt_dir_list(d, &dirs);
    CHECK(n == 1 && strstr(dirs[0], "step_0000002"), "--load auto would see %d folders", n);
    ckpt_dir_list_free(dirs, n);
    check_end();
}

// ---- replacing a complete checkpoint (a save of the step a rollback went back to) ----

// Writes word into parent/name/which (which save a folder holds).
static void mark(const char *parent, const char *name, const char *word) {
    char p[1024];
    snprintf(p, sizeof p, "%s/%s/which", parent, name);
    FILE *f = fopen(p, "w");
    if (f) fprintf(f, "%s\n", word);
    if (f) fclose(f);
}

// Whether parent/name/which holds word.
static bool marked(const char *parent, const char *name, const char *word) {
    char p[1024], got[64] = "";
    snprintf(p, sizeof p, "%s/%s/which", parent, name);
    FILE *f = fopen(p, "r");
    if (f && fgets(got, sizeof got, f)) got[strcspn(got, "\n")] = 0;
    if (f) fclose(f);
    return strcmp(got, word) == 0;
}

static void test_replace(void) {
    char d[600], err[4096], note[4096], tmp[700], final[700];
    snprintf(d, sizeof d, "%s/replace", dir);
    mkdir(d, 0755);
    make_dir(d, "step_0000002");
    make_dir(d, "step_0000004");
    mark(d, "step_0000004", "old");
    snprintf(tmp, sizeof tmp, "%s/step_0000004.tmp", d);
    snprintf(final, sizeof final, "%s/step_0000004", d);

    check_begin("a save of an existing step replaces it, and nothing of the old one stays");
    CHECK(ckpt_dir_prepare(tmp, err, sizeof err), "prepare: %s", err);
    make_dir(d, "step_0000004.tmp");
    mark(d, "step_0000004.tmp", "new");
    CHECK(ckpt_dir_commit(d, tmp, final, err, sizeof err), "commit: %s", err);
    CHECK(marked(d, "step_0000004", "new"), "step 4 is not the new save");
    CHECK(!exists(d, "step_0000004.tmp") && !exists(d, "step_0000004.replaced") &&
              !exists(d, "step_0000004.deleting"), "a leftover of the replacement stays");
    CHECK(ckpt_dir_owns_name("step_0000004.replaced"), "the folder's rules do not own .replaced");
    check_end();

    check_begin("a crash between the renames (step_N.replaced, no step_N): step N is found and restored");
    char cmd[2000];
    snprintf(cmd, sizeof cmd, "mv %s %s.replaced", final, final);
    sh(cmd);
    make_dir(d, "step_0000004.tmp");   // the new save, complete but never renamed
    mark(d, "step_0000004.tmp", "newer");
    char **dirs;
    int n = ckpt_dir_list(d, &dirs);   // a reader without the lock (--eval-only)
    CHECK(n == 2 && strstr(dirs[0], "step_0000004"), "--load auto would take %s",
          n > 0 ? dirs[0] : "nothing");
    ckpt_dir_list_free(dirs, n);
    CHECK(ckpt_dir_lock(d, note, sizeof note, err, sizeof err), "lock: %s", err);
    CHECK(strstr(note, "restored") && strstr(note, "step_0000004"), "no note: '%s'", note);
    CHECK(marked(d, "step_0000004", "new") && !exists(d, "step_0000004.replaced"),
          "step 4 is not the complete checkpoint it was");
    n = ckpt_dir_list(d, &dirs);
    CHECK(n == 2 && strcmp(dirs[0], final) == 0, "--load auto takes %s", n > 0 ? dirs[0] : "nothing");
    ckpt_dir_list_free(dirs, n);
    ckpt_dir_unlock(d);
    check_end();

    check_begin("a crash after the renames (step_N and step_N.replaced): the new one stays");
    make_dir(d, "step_0000004.replaced");
    mark(d, "step_0000004.replaced", "old");
    CHECK(ckpt_dir_lock(d, note, sizeof note, err, sizeof err), "lock: %s", err);
    CHECK(marked(d, "step_0000004", "new") && !exists(d, "step_0000004.replaced"),
          "the new step 4 was replaced, or the old one kept");
    ckpt_dir_unlock(d);
    check_end();
}

int main(int argc, char **argv) {
    // The children first, before MPI: one alive until this test ends (blocked
    // on a pipe), one that ended and was reaped.
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) return 1;
    alive_pid = fork();
    if (alive_pid == 0) {
        char c;
        close(fds[1]);
        while (read(fds[0], &c, 1) > 0) {}
        _exit(0);
    }
    close(fds[0]);
    dead_pid = fork();
    if (dead_pid == 0) _exit(0);
    waitpid(dead_pid, NULL, 0);

    comm_world_start(&argc, &argv);
    const char *build = getenv("BUILD") ? getenv("BUILD") : "build";
    snprintf(train_bin, sizeof train_bin, "%s/llama-train", build);
    snprintf(dir, sizeof dir, "/tmp/llama-test-ckdir.%d", (int)getpid());
    mkdir(dir, 0755);
    test_big_steps();
    test_owners();
    test_prune();
    test_replace();
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    sh(cmd);
    kill(alive_pid, SIGKILL);   // the live child ends (MPI's helpers may hold the pipe)
    waitpid(alive_pid, NULL, 0);
    comm_world_end();
    return check_exit_code();
}
