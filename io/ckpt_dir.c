#define _XOPEN_SOURCE 700
#include "ckpt_dir.h"

#include <dirent.h>
#include <errno.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "logfile.h"
#include "util.h"

void ckpt_dir_name(const char *save_dir, int64_t step, bool tmp, char *out, int len) {
    snprintf(out, (size_t)len, "%s/step_%07lld%s", save_dir, (long long)step, tmp ? ".tmp" : "");
}

bool ckpt_dir_exists(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

static void remove_tree(const char *path) {
    if (ckpt_dir_exists(path)) nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

bool ckpt_dir_prepare(const char *tmp_dir, char *err, int err_len) {
    remove_tree(tmp_dir);
    return make_dirs(tmp_dir, err, err_len);
}

static bool write_latest(const char *save_dir, const char *final_dir, char *err, int err_len) {
    char tmp[4200], path[4200];
    snprintf(path, sizeof path, "%s/latest", save_dir);
    snprintf(tmp, sizeof tmp, "%s/latest.tmp", save_dir);
    const char *base = strrchr(final_dir, '/') ? strrchr(final_dir, '/') + 1 : final_dir;
    FILE *f = fopen(tmp, "w");
    bool ok = f && fprintf(f, "%s\n", base) > 0;
    if (f) ok = (fflush(f) == 0 && fsync(fileno(f)) == 0) && ok, fclose(f);
    if (ok) ok = rename(tmp, path) == 0;
    if (!ok) snprintf(err, err_len, "cannot update '%s': %s", path, strerror(errno));
    return ok;
}

bool ckpt_dir_commit(const char *save_dir, const char *tmp_dir, const char *final_dir,
                     char *err, int err_len) {
    remove_tree(final_dir);
    if (rename(tmp_dir, final_dir) != 0) {
        snprintf(err, err_len, "cannot rename '%s' to '%s': %s", tmp_dir, final_dir,
                 strerror(errno));
        return false;
    }
    return write_latest(save_dir, final_dir, err, err_len);
}

static int by_name_desc(const void *a, const void *b) {
    return strcmp(*(char *const *)b, *(char *const *)a);
}

static char *read_latest(const char *save_dir) {
    char path[4200], name[256] = "";
    snprintf(path, sizeof path, "%s/latest", save_dir);
    FILE *f = fopen(path, "r");
    if (!f) return NULL;
    bool ok = fgets(name, sizeof name, f) != NULL;
    fclose(f);
    name[strcspn(name, "\n")] = 0;
    if (!ok || strncmp(name, "step_", 5) != 0 || strchr(name, '/')) return NULL;
    snprintf(path, sizeof path, "%s/%s", save_dir, name);
    return ckpt_dir_exists(path) ? xstrdup(path) : NULL;
}

int ckpt_dir_list(const char *save_dir, char ***dirs) {
    *dirs = NULL;
    int n = 0;
    char *latest = read_latest(save_dir);
    if (latest) {
        *dirs = xmalloc(sizeof **dirs);
        (*dirs)[n++] = latest;
    }
    DIR *d = opendir(save_dir);
    if (!d) return n;
    int first_scanned = n;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "step_", 5) != 0 || strchr(e->d_name, '.')) continue;
        char full[4200];
        snprintf(full, sizeof full, "%s/%s", save_dir, e->d_name);
        if (latest && strcmp(full, latest) == 0) continue;
        if (!ckpt_dir_exists(full)) continue;
        *dirs = xrealloc(*dirs, (size_t)(n + 1) * sizeof **dirs);
        (*dirs)[n++] = xstrdup(full);
    }
    closedir(d);
    qsort(*dirs + first_scanned, (size_t)(n - first_scanned), sizeof **dirs, by_name_desc);
    return n;
}

void ckpt_dir_list_free(char **dirs, int n) {
    for (int i = 0; i < n; i++) free(dirs[i]);
    free(dirs);
}

void ckpt_dir_prune(const char *save_dir, int keep) {
    DIR *d = opendir(save_dir);
    if (!d) return;
    char **names = NULL;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        if (strncmp(e->d_name, "step_", 5) != 0) continue;
        char full[4200];
        snprintf(full, sizeof full, "%s/%s", save_dir, e->d_name);
        if (strstr(e->d_name, ".tmp")) {   // a save that never finished
            remove_tree(full);
            continue;
        }
        names = xrealloc(names, (size_t)(n + 1) * sizeof *names);
        names[n++] = xstrdup(full);
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof *names, by_name_desc);
    // Renamed out of the way first: a kill in the middle of the deletion then
    // leaves a ".tmp" folder (ignored, removed by the next prune), never a
    // complete-looking one without its file.
    for (int i = keep; i < n && keep > 0; i++) {
        char gone[4300];
        snprintf(gone, sizeof gone, "%s.pruned.tmp", names[i]);
        remove_tree(gone);
        remove_tree(rename(names[i], gone) == 0 ? gone : names[i]);
    }
    ckpt_dir_list_free(names, n);
}

bool ckpt_dir_mark_preempted(const char *save_dir, int64_t step, char *err, int err_len) {
    char path[4200];
    snprintf(path, sizeof path, "%s/preempted", save_dir);
    FILE *f = fopen(path, "w");
    bool ok = f && fprintf(f, "stopped by a signal after step %lld; resume with --load auto\n",
                           (long long)step) > 0;
    if (f) ok = fclose(f) == 0 && ok;
    if (!ok) snprintf(err, err_len, "cannot write '%s': %s", path, strerror(errno));
    return ok;
}

void ckpt_dir_clear_preempted(const char *save_dir) {
    char path[4200];
    snprintf(path, sizeof path, "%s/preempted", save_dir);
    unlink(path);
}
