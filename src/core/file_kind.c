#include "core/file_kind.h"

#include <stddef.h>
#include <stdio.h>
#include <sys/stat.h>

bool file_kind_same(const char *a, const char *b) {
    struct stat x, y;
    return stat(a, &x) == 0 && stat(b, &y) == 0 && x.st_dev == y.st_dev && x.st_ino == y.st_ino;
}

const char *file_kind_irregular(const char *path) {
    struct stat st;
    if (stat(path, &st) != 0 || S_ISREG(st.st_mode)) return NULL;
    if (S_ISFIFO(st.st_mode)) return "a FIFO";
    if (S_ISDIR(st.st_mode)) return "a folder";
    if (S_ISSOCK(st.st_mode)) return "a socket";
    return "a device";
}

bool file_kind_check(const char *path, const char *what, char *err, int err_len) {
    const char *kind = file_kind_irregular(path);
    if (kind) snprintf(err, (size_t)err_len, "'%s' is %s, not %s", path, kind, what);
    return kind == NULL;
}
