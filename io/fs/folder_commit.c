#include "fs/folder_commit.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fs/dirs.h"

static void mark_path(const char *dir, char *out, size_t len) {
    snprintf(out, len, "%s/%s", dir, FOLDER_COMMIT_MARK);
}

// folder_sync, or false with the reason.
static bool sync_folder(const char *dir, char *err, int err_len) {
    if (folder_sync(dir)) return true;
    snprintf(err, err_len, "cannot sync the folder '%s': %s", dir, strerror(errno));
    return false;
}

// Written in place, not through a temporary file: its presence is what counts,
// and a kill while writing it must leave nothing of another name behind.
bool folder_commit_begin(const char *dir, const char *writer, char *err, int err_len) {
    char path[4200], text[512];
    mark_path(dir, path, sizeof path);
    int n = snprintf(text, sizeof text, "%s was moving its new files into this folder; if this "
                     "file stays, it was stopped midway and the folder mixes two versions\n",
                     writer);
    size_t len = (size_t)n < sizeof text ? (size_t)n : sizeof text - 1;
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    bool ok = fd >= 0 && write(fd, text, len) == (ssize_t)len && fsync(fd) == 0;
    if (fd >= 0 && close(fd) != 0) ok = false;
    if (!ok) {
        snprintf(err, err_len, "cannot write '%s': %s", path, strerror(errno));
        return false;
    }
    return sync_folder(dir, err, err_len);
}

bool folder_commit_end(const char *dir, char *err, int err_len) {
    char path[4200];
    mark_path(dir, path, sizeof path);
    if (!sync_folder(dir, err, err_len)) return false;   // the moves before the mark's removal
    if (unlink(path) != 0 && errno != ENOENT) {   // removed by hand meanwhile: done all the same
        snprintf(err, err_len, "cannot remove '%s': %s", path, strerror(errno));
        return false;
    }
    return sync_folder(dir, err, err_len);
}

bool folder_commit_unfinished(const char *dir) {
    char path[4200];
    struct stat st;
    mark_path(dir, path, sizeof path);
    return lstat(path, &st) == 0;
}
