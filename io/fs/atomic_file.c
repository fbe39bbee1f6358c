#include "fs/atomic_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/util.h"
#include "fs/dirs.h"
#include "fs/paths.h"

int atomic_file_create(const char *path, char **tmp, char *err, int err_len) {
    size_t n = strlen(path) + 5;
    *tmp = xmalloc(n);
    snprintf(*tmp, n, "%s.tmp", path);
    int fd = open(*tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        snprintf(err, err_len, "cannot create '%s': %s (is the directory there and writable?)",
                 *tmp, strerror(errno));
        free(*tmp);
        *tmp = NULL;
    }
    return fd;
}

void atomic_file_discard(int fd, const char *tmp) {
    if (fd >= 0) close(fd);
    if (tmp) unlink(tmp);
}

// fsync the directory holding path, so a rename in it survives a crash; 0 or errno.
static int dir_sync(const char *path) {
    char dir[4096];
    path_parent(path, dir, sizeof dir);
    return folder_sync(dir) ? 0 : errno;
}

bool atomic_file_commit(int fd, const char *tmp, const char *path, char *err, int err_len) {
    const char *what = NULL;
    int e = 0;
    if (fsync(fd) != 0) what = "fsync", e = errno;
    if (close(fd) != 0 && !what) what = "close", e = errno;
    if (!what && rename(tmp, path) != 0) what = "rename", e = errno;
    if (what) {
        snprintf(err, err_len, "%s: %s of '%s' failed: %s; nothing was written", path, what,
                 tmp, strerror(e));
        unlink(tmp);
        return false;
    }
    e = dir_sync(path);
    if (e)
        snprintf(err, err_len, "%s: written, but syncing its directory failed: %s", path,
                 strerror(e));
    return !e;
}

bool atomic_file_write(const char *path, const void *data, size_t n, char *err, int err_len) {
    char *tmp;
    int fd = atomic_file_create(path, &tmp, err, err_len);
    if (fd < 0) return false;
    const char *p = data;
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w < 0) {
            snprintf(err, err_len, "%s: writing '%s' failed: %s (disk full?)", path, tmp,
                     strerror(errno));
            atomic_file_discard(fd, tmp);
            free(tmp);
            return false;
        }
        p += w;
        n -= (size_t)w;
    }
    bool ok = atomic_file_commit(fd, tmp, path, err, err_len);
    free(tmp);
    return ok;
}
