#include "fs/dirs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/util.h"

bool make_dirs(const char *path, char *err, int err_len) {
    char *buf = xstrdup(path);
    bool ok = true;
    for (char *p = buf + 1; ok; p++) {
        char c = *p;
        if (c != '/' && c != 0) continue;
        *p = 0;
        struct stat st;
        if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
            snprintf(err, err_len, "cannot create folder '%s': %s", buf, strerror(errno));
            ok = false;
        } else if (stat(buf, &st) == 0 && !S_ISDIR(st.st_mode)) {   // EEXIST of a file
            snprintf(err, err_len, "cannot create folder '%s': '%s' is a file, not a folder", path,
                     buf);
            ok = false;
        }
        *p = c;
        if (!c) break;
    }
    free(buf);
    return ok;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st, (void)flag, (void)ftw;
    return remove(path);
}

void remove_tree(const char *path) {
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
        nftw(path, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

static int by_name(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

char **dir_names(const char *dir, bool (*keep)(const char *name), int *n) {
    *n = 0;
    DIR *d = opendir(dir);
    if (!d) return NULL;
    char **names = xmalloc(sizeof *names);
    struct dirent *e;
    while ((e = readdir(d)))
        if (keep(e->d_name)) {
            names = xrealloc(names, sizeof *names * (size_t)(*n + 1));
            names[(*n)++] = xstrdup(e->d_name);
        }
    int saved = errno;
    closedir(d);
    errno = saved;
    qsort(names, (size_t)*n, sizeof *names, by_name);
    return names;
}

void dir_names_free(char **names, int n) {
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

bool folder_sync(const char *dir) {
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return false;
    bool ok = fsync(fd) == 0;
    int e = errno;
    close(fd);
    errno = e;
    return ok;
}

bool names_contain(char **names, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(names[i], name) == 0) return true;
    return false;
}

bool name_has_suffix(const char *name, const char *suffix) {
    size_t n = strlen(name), k = strlen(suffix);
    return n > k && strcmp(name + n - k, suffix) == 0;
}
